import collections
import time

import pytest

import obce
from obce.data import GLUE_TASKS, load_corpus, load_glue, read_glue_tsv
from obce.errors import MissingResourceError, ObceInputError

OFFICIAL_ROWS = {  # (task, split): (rows, label counts by hub class id or None)
    ("cola", "train"): (8551, {1: 6023, 0: 2528}), ("cola", "validation"): (1043, {1: 721, 0: 322}),
    ("sst2", "train"): (67349, {1: 37569, 0: 29780}), ("sst2", "validation"): (872, {1: 444, 0: 428}),
    ("mrpc", "train"): (3668, {1: 2474, 0: 1194}), ("mrpc", "validation"): (408, {1: 279, 0: 129}),
    ("stsb", "train"): (5749, None), ("stsb", "validation"): (1500, None),
    ("qnli", "validation"): (5463, {0: 2702, 1: 2761}),
    ("rte", "train"): (2490, {0: 1249, 1: 1241}), ("rte", "validation"): (277, {0: 146, 1: 131}),
    ("wnli", "train"): (635, {1: 312, 0: 323}), ("wnli", "validation"): (71, {1: 31, 0: 40}),
}


@pytest.mark.parametrize("task,split", sorted(OFFICIAL_ROWS))
def test_real_glue_files_parse_with_official_counts(glue_dir, task, split):
    rows, labels = OFFICIAL_ROWS[task, split]
    ds = load_glue(task, split, glue_dir=glue_dir)
    info = GLUE_TASKS[task]
    assert len(ds) == rows
    assert ds.column_names == [*info.text_fields, "label", "idx"]
    assert all(isinstance(t, str) and t for t in ds[info.text_fields[0]][:50])
    if labels is None:
        assert 0.0 <= min(ds["label"]) and max(ds["label"]) <= 5.0
    else:
        assert dict(collections.Counter(ds["label"])) == labels


def test_quotes_are_text_not_quoting(glue_dir):
    ds = load_glue("mrpc", "validation", glue_dir=glue_dir)
    assert ds[0]["sentence2"].startswith('" The foodservice pie business')  # a leading quote kept
    cola = load_glue("cola", "validation", glue_dir=glue_dir)
    assert cola[0]["sentence"] == "The sailors rode the breeze clear of the rocks."


def test_glue_dir_from_environment(glue_dir, monkeypatch):
    monkeypatch.setenv("OBCE_GLUE_DIR", str(glue_dir))
    assert len(load_glue("rte", "validation")) == 277


@pytest.mark.parametrize("task,split,filename", [("mnli", "validation", "MNLI/dev_matched.tsv"),
                                                 ("qqp", "train", "QQP/train.tsv"),
                                                 ("qnli", "train", "QNLI/train.tsv")])
def test_missing_files_name_the_file_and_both_remedies(glue_dir, task, split, filename):
    with pytest.raises(MissingResourceError) as err:
        load_glue(task, split, glue_dir=glue_dir)
    msg = str(err.value)
    assert filename in msg and "OBCE_GLUE_DIR" in msg and "nyu-mll/glue" in msg


def _no_glue_dir_offline(monkeypatch, tmp_path):
    """No GLUE directory, the offline flag, and empty Hugging Face caches: only the sample is at hand."""
    from obce import data

    monkeypatch.delenv("OBCE_GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for name in ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        monkeypatch.setenv(name, str(tmp_path / "hf" / name))
    data._fallback_root.cache_clear()


def test_without_data_the_embedded_sample_is_used_and_said(monkeypatch, tmp_path, caplog):
    from obce.data import SAMPLE_DIR, data_description, glue_root

    _no_glue_dir_offline(monkeypatch, tmp_path)
    start = time.perf_counter()
    with caplog.at_level("WARNING", logger="obce.data"):
        dev = load_glue("rte", "validation")
        train = load_glue("rte", "train")
    assert time.perf_counter() - start < 30
    assert (len(train), len(dev)) == (300, 200)
    assert glue_root() == SAMPLE_DIR
    said = [r.getMessage() for r in caplog.records if "embedded sample" in r.getMessage()]
    assert len(said) == 1 and "OBCE_GLUE_DIR" in said[0]  # once per process, with the remedy
    described = data_description("rte")
    assert "embedded GLUE sample RTE" in described and "/" not in described  # no machine path
    with pytest.raises(MissingResourceError) as err:  # a file the sample lacks still names both remedies
        load_glue("mnli", "validation")
    assert "embedded sample has no MNLI/dev_matched.tsv" in str(err.value) and "nyu-mll/glue" in str(err.value)


def test_a_cached_hub_copy_is_preferred_to_the_sample(monkeypatch, tmp_path):
    from obce.data import glue_root

    _no_glue_dir_offline(monkeypatch, tmp_path)
    (tmp_path / "hf" / "HF_DATASETS_CACHE" / "nyu-mll___glue").mkdir(parents=True)
    assert glue_root() is None  # the hub route, through its local cache


def test_grids_refuse_the_sample_before_any_compute(monkeypatch, tmp_path, capsys):
    """Planning a grid works on the sample (the book counts its runs); running one refuses, exit 2."""
    from obce.cli import main
    from obce.experiments.config import PipelineConfig
    from obce.experiments.glue_protocol import run_pipeline

    _no_glue_dir_offline(monkeypatch, tmp_path)
    cfg = PipelineConfig(out=str(tmp_path / "out"), tasks=["rte"], importances=["random"], levels=[2], seeds=[0])
    cfg.validate()
    with pytest.raises(ObceInputError, match="pipeline config glue_dir: no GLUE directory was given"):
        run_pipeline(cfg)
    config = tmp_path / "grid.yaml"
    config.write_text(f"out: {tmp_path / 'out'}\ntasks: [rte]\nimportances: [random]\nlevels: [2]\nseeds: [0]\n")
    assert main(["pipeline", "--config", str(config), "--dry-run"]) in (0, None)
    assert main(["pipeline", "--config", str(config)]) == 2
    assert "embedded sample" in capsys.readouterr().err
    assert not (tmp_path / "out" / "glue").exists()


def test_embedded_sample_is_the_rule_applied_to_the_classic_tsvs(glue_dir, tmp_path):
    """Byte for byte what write_glue_sample draws from the classic files, and small."""
    from obce.data import SAMPLE_DIR, write_glue_sample

    written = write_glue_sample(glue_dir, tmp_path)
    shipped = sorted(p.relative_to(SAMPLE_DIR) for p in SAMPLE_DIR.glob("*/*.tsv"))
    assert sorted(p.relative_to(tmp_path) for p in written) == shipped
    for rel in shipped:
        assert (tmp_path / rel).read_bytes() == (SAMPLE_DIR / rel).read_bytes(), rel
        full = set((glue_dir / rel).read_bytes().decode().split("\n"))
        assert set((SAMPLE_DIR / rel).read_bytes().decode().rstrip("\n").split("\n")) <= full, rel
    assert sum((SAMPLE_DIR / rel).stat().st_size for rel in shipped) < 700_000
    sources = (SAMPLE_DIR / "SOURCES.md").read_text()
    assert all(f"| {rel.as_posix()} |" in sources for rel in shipped)


def test_majority_floors_from_the_sample_are_the_full_data_floors(glue_dir, monkeypatch, tmp_path):
    """A book built from the sample reads its comparisons against the full dev sets' floors."""
    from obce.analysis.stats import majority_floors

    tasks = ["cola", "sst2", "mrpc", "stsb", "rte", "wnli"]
    full = majority_floors(tasks, glue_dir)
    _no_glue_dir_offline(monkeypatch, tmp_path)
    assert majority_floors(tasks) == full


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "stsb", "rte", "wnli"])
def test_every_sample_split_parses(task):
    from obce.data import SAMPLE_DIR

    train, dev = (load_glue(task, s, glue_dir=SAMPLE_DIR) for s in ("train", "validation"))
    assert len(train) == 300 and 71 <= len(dev) <= 200
    if task != "stsb":
        assert len(set(train["label"])) == 2  # both classes, so a model can learn something


def _write(tmp_path, task_dir, text):
    (tmp_path / task_dir).mkdir(exist_ok=True)
    (tmp_path / task_dir / "dev.tsv").write_text(text)
    return tmp_path


def test_tsv_with_a_missing_column(tmp_path):
    root = _write(tmp_path, "RTE", "index\tsentence1\tsentence2\n0\ta\tb\n")
    with pytest.raises(ObceInputError, match=r"RTE/dev.tsv: missing column\(s\) \['label'\]"):
        load_glue("rte", "validation", glue_dir=root)


def test_row_with_wrong_field_count_names_the_line(tmp_path):
    root = _write(tmp_path, "RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tentailment\n")
    with pytest.raises(ObceInputError, match=r"dev.tsv:3: expected 4 tab-separated fields, found 3"):
        load_glue("rte", "validation", glue_dir=root)


def test_label_outside_the_label_set(tmp_path):
    root = _write(tmp_path, "RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n")
    with pytest.raises(ObceInputError, match=r"dev.tsv:2: label 'neutral' is not one of"):
        load_glue("rte", "validation", glue_dir=root)
    root = _write(tmp_path, "STS-B", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
                                     "sentence1\tsentence2\tscore\n0\tg\tf\ty\to\ts\ts\ta\tb\t7.5\n")
    with pytest.raises(ObceInputError, match=r"label '7.5' is not a similarity score"):
        read_glue_tsv(root / "STS-B" / "dev.tsv", "stsb")


def test_unknown_task_and_split(glue_dir):
    with pytest.raises(ObceInputError, match="unknown GLUE task 'imdb'"):
        load_glue("imdb", glue_dir=glue_dir)
    with pytest.raises(ObceInputError, match="split 'test'"):
        load_glue("rte", "test", glue_dir=glue_dir)
    with pytest.raises(ObceInputError, match="does not exist"):
        load_glue("rte", glue_dir=glue_dir / "nope")


def test_corpus_is_seeded_and_keeps_pairs(glue_dir):
    a = load_corpus("sst2", n=20, glue_dir=glue_dir, seed=3)
    assert a == load_corpus("sst2", n=20, glue_dir=glue_dir, seed=3) != load_corpus("sst2", n=20, glue_dir=glue_dir, seed=4)
    assert len(a) == 20 and all(isinstance(t, str) for t in a)
    pairs = load_corpus("rte", n=5, glue_dir=glue_dir)
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
    assert len(load_corpus("wnli", n=None, split="validation", glue_dir=glue_dir)) == 71
    with pytest.raises(ObceInputError, match="n=1"):
        load_corpus("sst2", n=1, glue_dir=glue_dir)


def test_task_table_covers_all_nine():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert obce.get_task("SST-2").name == "sst2" and obce.get_task("stsb").num_labels == 1
    assert obce.get_task("mnli").num_labels == 3 and obce.get_task("mnli").file_for("validation") == "dev_matched.tsv"

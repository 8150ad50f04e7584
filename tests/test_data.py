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


def test_hub_fallback_fails_fast_offline(monkeypatch):
    monkeypatch.delenv("OBCE_GLUE_DIR", raising=False)
    start = time.perf_counter()
    with pytest.raises(MissingResourceError, match="nyu-mll/glue"):
        load_glue("rte", "validation")
    assert time.perf_counter() - start < 30


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

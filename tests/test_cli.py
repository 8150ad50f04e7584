import json
import logging

import numpy as np
import pytest

from obce.cli import build_parser, main


@pytest.mark.parametrize("cmd", [[], ["score"], ["prune"], ["glue"], ["pipeline"], ["posttrain"], ["explain"], ["params"], ["book"],
                                 ["report"]])
def test_help_on_every_command(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: obce" in capsys.readouterr().out


def test_score_then_prune_then_reload(tiny_dir, glue_dir, tmp_path, capsys, caplog):
    from transformers import AutoModel

    out = tmp_path / "scores"
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir),
                 "--samples", "16", "--max-length", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "merge_radius of 3 layers x 64 neurons" in printed and "median" in printed
    with caplog.at_level(logging.INFO, logger="obce"):
        assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir),
                     "--samples", "16", "--max-length", "16", "--out", str(out)]) == 0
    assert "reusing cached h0_deaths of layers [0, 1, 2]" in caplog.text
    summary = json.loads((out / "scores.json").read_text())
    assert summary["shape"] == [3, 64] and summary["provenance"]["params"]["samples"] == 16
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(out), "--level", "3",
                 "--out", str(tmp_path / "small")]) == 0
    assert "intermediate_size 64 -> 16" in capsys.readouterr().out
    assert AutoModel.from_pretrained(tmp_path / "small").config.intermediate_size == 16
    assert main(["glue", "--model", str(tmp_path / "small"), "--task", "rte", "--glue-dir", str(glue_dir),
                 "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--max-train-samples", "16",
                 "--max-eval-samples", "16", "--out", str(tmp_path / "small.json")]) == 0
    prov = json.loads((tmp_path / "small.json").read_text())["provenance"]
    assert (prov["importance"], prov["level"], prov["intermediate_size"]) == ("merge_radius", 3, 16)
    assert prov["parameters"] < prov["parameters_full"]


def test_params_command(capsys):
    assert main(["params", "--model", "bert-base-uncased", "--levels", "0", "3"]) == 0
    out = capsys.readouterr().out
    assert "109,482,240" in out and "66,987,264" in out


@pytest.mark.parametrize("args,needle", [
    (["score", "--task", "imdb", "--out", "X"], "unknown GLUE task 'imdb'"),
    (["score", "--task", "sst2", "--samples", "1", "--out", "X"], "--samples 1"),
    (["score", "--task", "sst2", "--samples", "8", "--max-length", "0", "--out", "X"], "--max-length 0"),
    (["score", "--model", "no-such/model-xyz", "--task", "sst2", "--out", "X"], "no-such/model-xyz"),
    (["score", "--task", "mnli", "--out", "X"], "MNLI/train.tsv"),
    (["prune", "--scores", "nope", "--level", "1", "--out", "X"], "scores file"),
])
def test_input_errors_exit_2_with_a_message(args, needle, glue_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OBCE_GLUE_DIR", str(glue_dir))
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prune", "--scores", "s", "--out", "o"])  # neither --level nor --keep-fraction
    assert exc.value.code == 2


def test_prune_rejects_bad_level_and_mismatched_scores(tiny_dir, tmp_path, capsys):
    from obce.scoring import save_scores

    save_scores(tmp_path / "s.npz", np.zeros((3, 64)), {})
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(tmp_path / "s.npz"), "--level", "4",
                 "--out", str(tmp_path / "o")]) == 2
    assert "level=4" in capsys.readouterr().err
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(tmp_path / "s.npz"),
                 "--keep-fraction", "1.5", "--out", str(tmp_path / "o")]) == 2
    save_scores(tmp_path / "wrong.npz", np.zeros((6, 1536)), {})
    assert main(["prune", "--model", str(tiny_dir), "--scores", str(tmp_path / "wrong.npz"), "--level", "1",
                 "--out", str(tmp_path / "o")]) == 2
    assert "do not match" in capsys.readouterr().err


def test_unwritable_cache_directory(tiny_dir, glue_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["score", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir),
                 "--samples", "8", "--max-length", "8", "--cache-dir", str(blocker / "cache"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the score cache to" in err and "activations" not in err  # before any compute


def test_parser_lists_all_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"score", "prune", "glue", "pipeline", "posttrain", "explain", "params", "book",
                                "report"}


def test_glue_command_writes_a_valid_record(tiny_dir, glue_dir, tmp_path, capsys):
    from obce.results import validate_record

    out = tmp_path / "rte.json"
    assert main(["glue", "--model", str(tiny_dir), "--task", "rte", "--glue-dir", str(glue_dir), "--epochs", "1",
                 "--batch-size", "8", "--max-length", "32", "--max-train-samples", "16",
                 "--max-eval-samples", "16", "--out", str(out)]) == 0
    assert "rte: accuracy=" in capsys.readouterr().out
    validate_record(json.loads(out.read_text()))


def test_report_command_summarizes_committed_records(capsys, tmp_path):
    from tests.conftest import REPO

    assert main(["report", str(REPO / "results" / "glue_short" / "glue")]) == 0
    out = capsys.readouterr().out
    assert "| level | importance | parameters |" in out and "| 0 | none |" in out
    assert main(["report", str(tmp_path)]) == 2
    # a tree holding two fine-tuning protocols is summarized per protocol, never averaged together
    assert main(["report", str(REPO / "results")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n## ") >= 2
    assert "max_train_samples=2000" in out and "max_train_samples=None" in out
    # an ablation shares the full-train protocol but is its own section, not more seeds of r_f
    n_mean = len(list((REPO / "results" / "ablations_cpu" / "representation_mean" / "glue").rglob("*.json")))
    assert n_mean >= 3 and f"ablations_cpu/representation_mean/glue: {n_mean} records" in out
    # by level: a row per (task, level) of a pruned model, a column per score, the unpruned mean beside
    assert main(["report", str(REPO / "results" / "glue_short" / "glue"), "--by-level"]) == 0
    out = capsys.readouterr().out
    assert "| task | level | unpruned | merge_radius | random | magnitude |" in out and "| 0 |" not in out
    assert main(["report", str(REPO / "results" / "diagnostics"), "--by-level"]) == 0
    assert "no pruned models" in capsys.readouterr().out
    # averages: one row per level over the section's tasks, or over exactly --tasks
    fulltrain = str(REPO / "results" / "glue_fulltrain" / "glue")
    assert main(["report", fulltrain, "--averages", "--tasks", "rte", "stsb"]) == 0
    out = capsys.readouterr().out
    assert "average over rte, stsb" in out and "| level | unpruned | merge_radius |" in out and "\n| 2 |" in out
    assert main(["report", str(REPO / "results"), "--averages", "--tasks", "rte", "stsb"]) == 0
    assert "only tasks ['stsb'] here: no average over ['rte', 'stsb']" in capsys.readouterr().out
    # pooled: r_f (or --score) against each other score over tasks, levels and seeds
    assert main(["report", fulltrain, "--pooled", "--tasks", "stsb"]) == 0
    out = capsys.readouterr().out
    assert "| a | b | pairs | wins | losses | p_sign | cells |" in out and "| merge_radius | random | 9 |" in out
    assert main(["report", str(REPO / "results" / "diagnostics"), "--pooled"]) == 0
    assert "no merge_radius records here" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # one view at a time
        main(["report", fulltrain, "--pooled", "--averages"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["report", fulltrain, "--tasks", "colaa"]) == 2  # an unknown task is an error, not an empty table
    assert "unknown GLUE task 'colaa'" in capsys.readouterr().err
    assert main(["report", fulltrain, "--tasks", "qnli"]) == 2  # a known task without records


def test_explain_prints_the_atlas_entry_of_a_neuron(tiny_dir, glue_dir, capsys):
    assert main(["explain", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir), "--layer", "1",
                 "--neuron", "5", "--samples", "16", "--max-length", "16"]) == 0
    out = capsys.readouterr().out
    assert "## layer 1, neuron 5" in out and "merge_radius" in out and "percentile" in out
    assert "label information" in out and "AUC" in out and "top tokens:" in out and "r_f isolates" in out
    assert main(["explain", "--model", str(tiny_dir), "--task", "stsb", "--glue-dir", str(glue_dir), "--layer", "0",
                 "--samples", "16", "--max-length", "16"]) == 0
    assert capsys.readouterr().out.count("## layer 0, neuron") == 6  # 3 highest and 3 lowest by r_f
    assert main(["explain", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir), "--layer", "9"]) == 2
    assert "--layer 9: the model has layers 0..2" in capsys.readouterr().err
    assert main(["explain", "--model", str(tiny_dir), "--task", "sst2", "--glue-dir", str(glue_dir), "--layer", "0",
                 "--neuron", "64", "--samples", "16", "--max-length", "16"]) == 2
    assert "neurons [64]" in capsys.readouterr().err


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_reader_that_stops_early_is_not_an_error(unbuffered):
    """`obce ... | head` closes the pipe: the command stops quietly instead of printing a traceback,
    whether the closed pipe shows while it prints (unbuffered) or when it flushes at the end."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | ({"PYTHONUNBUFFERED": "1"} if unbuffered
                                                                              else {})
    # `true` exits before reading anything, so what obce prints meets a closed pipe
    cmd = f"{sys.executable} -m obce.cli pipeline --config params/protocols/cpu_fulltrain/glue.yaml --dry-run | true"
    run = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.stderr == "" and run.returncode == 0

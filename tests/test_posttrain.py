"""The retraining-free protocol: one resumable JSONL table, compensation applied, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from obce.cli import main
from obce.errors import ObceInputError
from obce.posttrain import PostTrainConfig, cells, read_table, run_posttrain


@pytest.fixture()
def config(tiny_bert, glue_dir, tmp_path):
    model, tok = tiny_bert
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    return dict(model=str(tmp_path / "tiny"), out=str(tmp_path / "out"), glue_dir=str(glue_dir), tasks=["rte"],
                seeds=[0], draws=[0, 1], importances=["merge_radius", "random", "fisher"],
                keep_fractions=[0.5, 0.25], compensations=["none", "bias", "ls"],
                corpus=dict(samples=12, max_length=16),
                finetune=dict(epochs=1, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=None))


def test_table_has_one_row_per_cell_and_resumes(config, tmp_path, monkeypatch):
    import obce.glue

    cfg = PostTrainConfig.from_dict(config)
    planned = list(cells(cfg))
    assert len(planned) == 1 + 2 * 3 * 2 * 3
    table = run_posttrain(cfg, progress=False)
    rows = read_table(table.parent)
    assert [r["cell"] for r in rows] == [f"{c[0]}/s{c[1]}/d{c[2]}/{c[3]}/{c[4]:.4f}/{c[5]}" for c in planned]
    assert len(read_table(table.parent, "runs.jsonl")) == 1  # provenance once per run
    unpruned = rows[0]
    assert unpruned["importance"] == "none" and unpruned["level"] == 0 and unpruned["intermediate_size"] == 64
    half = [r for r in rows if r["keep_fraction"] == 0.5]
    assert {r["level"] for r in half} == {2} and {r["intermediate_size"] for r in half} == {32}
    assert all(r["parameters"] < unpruned["parameters"] for r in half)
    # the draws change the corpus (and random's neurons); magnitude-free scores see another corpus per draw
    assert len({r["corpus"] for r in rows if r["importance"] == "merge_radius"}) == 2
    # compensation changes what the pruned model predicts, not its size
    by = {(r["draw"], r["importance"], r["keep_fraction"], r["compensation"]): r for r in rows}
    assert by[0, "random", 0.25, "ls"]["parameters"] == by[0, "random", 0.25, "none"]["parameters"]
    # a killed run's unfinished last row is dropped and its cell rerun; finished cells are not
    path = table
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:20])
    calls = []
    real = obce.glue.evaluate
    monkeypatch.setattr(obce.glue, "evaluate", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    run_posttrain(cfg, progress=False)
    assert len(calls) == 1 and len(read_table(table.parent)) == len(planned)
    assert json.loads(path.read_text().splitlines()[-1])["cell"] == rows[-1]["cell"]


def test_another_configs_inputs_are_refused(config, tmp_path, capsys):
    cfg = PostTrainConfig.from_dict({**config, "draws": [0], "importances": ["magnitude"], "keep_fractions": [0.5],
                                     "compensations": ["none"]})
    run_posttrain(cfg, progress=False)
    before = (tmp_path / "out" / "posttrain.jsonl").read_text()
    other = {**config, "draws": [0], "importances": ["magnitude"], "keep_fractions": [0.5],
             "compensations": ["none"], "corpus": {"samples": 10, "max_length": 16}}
    with pytest.raises(ObceInputError, match="other inputs"):
        run_posttrain(PostTrainConfig.from_dict(other), progress=False)
    assert (tmp_path / "out" / "posttrain.jsonl").read_text() == before
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(other))
    assert main(["posttrain", "--config", str(path)]) == 2
    assert main(["posttrain", "--config", str(path), "--dry-run"]) == 0
    assert "2 planned cells, 0 already done" in capsys.readouterr().out


@pytest.mark.parametrize("change,needle", [
    ({"keep_fractions": [1.5]}, "keep_fractions [1.5]"),
    ({"compensations": ["lsq"]}, "compensations ['lsq']"),
    ({"draws": 3}, "draws: 3"),
    ({"importances": ["entropy"]}, "importances ['entropy']"),
    ({"finetune": {"lr": "x"}}, "finetune.lr"),
])
def test_config_is_validated_before_any_compute(config, change, needle):
    with pytest.raises(ObceInputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        PostTrainConfig.from_dict({**config, **change})


def test_committed_posttrain_configs_are_valid():
    from tests.conftest import REPO

    paths = sorted((REPO / "params").glob("posttrain_*.yaml"))
    assert len(paths) >= 2
    for path in paths:
        cfg = PostTrainConfig.from_yaml(path)
        assert len(list(cells(cfg))) > len(cfg.tasks)

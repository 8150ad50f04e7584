"""The retraining-free protocol: one resumable JSONL table, compensation applied, refusals."""
from __future__ import annotations

import json

import pytest
import yaml

from obce.cli import main
from obce.errors import ObceInputError
from obce.experiments.config import PostTrainConfig
from obce.experiments.posttrain import cells, run_posttrain
from obce.results import POSTTRAIN_RUNS, read_jsonl


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
    rows = read_jsonl(table)
    assert [r["cell"] for r in rows] == [f"{c[0]}/s{c[1]}/d{c[2]}/{c[3]}/{c[4]:.4f}/{c[5]}" for c in planned]
    assert len(read_jsonl(table.parent / POSTTRAIN_RUNS)) == 1  # provenance once per run
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
    real = obce.glue.dev_predictions
    monkeypatch.setattr(obce.glue, "dev_predictions", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    run_posttrain(cfg, progress=False)
    assert len(calls) == 1 and len(read_jsonl(table)) == len(planned)
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


def _table(extra_fractions=()):
    """A synthetic retraining-free table: STS-B, 1 seed, 3 draws; r_f keeps f x 80 + draw, variance
    f x 84 (draw-free), under no compensation and under ls (+2 for both)."""
    import pandas as pd

    rows = [dict(task="stsb", seed=0, draw=-1, importance="none", keep_fraction=1.0, compensation="none", main=85.0)]
    for f in (0.75, 0.5, 0.25, *extra_fractions):
        for comp, gain in (("none", 0.0), ("ls", 2.0)):
            for d in range(3):
                rows.append(dict(task="stsb", seed=0, draw=d, importance="merge_radius", keep_fraction=f,
                                 compensation=comp, main=f * 80 + d + gain))
                rows.append(dict(task="stsb", seed=0, draw=d, importance="activation_variance", keep_fraction=f,
                                 compensation=comp, main=f * 84 + gain))
    return pd.DataFrame(rows)


def test_posttrain_summaries_read_the_table():
    import pandas as pd

    from obce.analysis.posttrain import curves, draw_verdicts, kept_at_99, level_means

    df = _table()
    c = curves(df)
    rf = c[(c["importance"] == "merge_radius") & (c["compensation"] == "none")].set_index("keep_fraction")
    assert rf.loc[0.5, "mean"] == pytest.approx(41.0) and rf.loc[0.5, "std"] == pytest.approx(1.0)
    assert rf.loc[1.0, "mean"] == 85.0 and rf.loc[0.5, "draws"] == 3  # the unpruned model ends every curve
    means = level_means(df, ["stsb"])
    assert means.loc[("ls", 0.25), "activation_variance"] == pytest.approx(23.0)
    assert means["unpruned"].iloc[0] == 85.0
    v = draw_verdicts(df).set_index(["compensation", "keep_fraction"])
    assert v.loc[("none", 0.75), "mean_diff"] == pytest.approx(round(0.75 * 80 + 1 - 0.75 * 84, 1))
    # differences -3, -2, -1 over the draws: t = -3.46 with 2 degrees of freedom, p = 0.074, a tie
    assert v.loc[("none", 0.75), "p_value"] == 0.074 and v.loc[("none", 0.75), "verdict"] == "tie"
    assert v.loc[("none", 0.75), "wins"] == 0
    # 99% of 85 is 84.15: nothing reaches it at 0.75, so no neuron can be removed
    assert (kept_at_99(df).to_numpy() == 0).all()
    assert kept_at_99(df, threshold=0.7).loc[("activation_variance", "none"), "stsb"] == 0.25
    # a task where nothing reaches the threshold still has its column (zeros), and tasks= picks the columns
    other = df.assign(task="mrpc", main=df["main"] / 2)
    other.loc[other["importance"] == "none", "main"] = 85.0
    both = pd.concat([df, other], ignore_index=True)
    assert list(kept_at_99(both, threshold=0.7).columns) == ["mrpc", "stsb"]
    assert (kept_at_99(both, threshold=0.7)["mrpc"] == 0).all()
    assert list(kept_at_99(both, threshold=0.7, tasks=["stsb"]).columns) == ["stsb"]


def test_a_finer_curve_in_the_same_table_leaves_the_level_summaries_unchanged():
    from obce.analysis.facts import posttrain_facts
    from obce.analysis.posttrain import curves, level_means

    coarse, fine = _table(), _table(extra_fractions=(0.9, 0.2))
    assert level_means(fine, ["stsb"]).equals(level_means(coarse, ["stsb"]))
    a, b = posttrain_facts(coarse, {"stsb": 0.0}), posttrain_facts(fine, {"stsb": 0.0})
    same = json.dumps({k: v for k, v in a.items() if k not in ("pt_cells", "pt_curve")}, sort_keys=True, default=float)
    assert same == json.dumps({k: v for k, v in b.items() if k not in ("pt_cells", "pt_curve")}, sort_keys=True,
                              default=float)
    assert a["pt_best_L2_none"] == "activation variance" and a["pt_comp_gain_ls"] == pytest.approx(2.0)
    assert set(curves(fine)["keep_fraction"]) == {1.0, 0.9, 0.75, 0.5, 0.25, 0.2}  # the figure draws them all
    assert a["pt_curve"] == "" and b["pt_curve"].startswith(
        "The curves run finer on some tasks: STS-B also at keep fractions 0.9 and 0.2 (without compensation and "
        "with the least-squares refit, 3 draws).")


def test_the_checked_refit_records_its_check(config):
    cfg = PostTrainConfig.from_dict({**config, "draws": [0], "importances": ["random"], "keep_fractions": [0.5],
                                     "compensations": ["ls", "refit"]})
    rows = read_jsonl(run_posttrain(cfg, progress=False))
    refit = [r for r in rows if r["compensation"] == "refit"]
    unchecked = [r for r in rows if r["compensation"] == "ls"]
    assert len(refit) == 1 and {"error_none", "error_refit", "refit_applied"} <= set(refit[0])
    assert "refit_applied" not in unchecked[0]
    # the check chose: where the refit was kept it predicts as the unchecked refit does
    if refit[0]["refit_applied"]:
        assert refit[0]["metrics"] == unchecked[0]["metrics"]

"""Pooled claims carry their per-task breakdown, and degenerate runs are counted where they are averaged."""
from __future__ import annotations

import pytest

from obce.analysis.facts import findings_text, glue_facts
from obce.analysis.methods import level_breakdown, method_points, ranking
from obce.analysis.stats import carrier, pooled_comparison
from obce.data import get_task

TASKS = ("mrpc", "rte", "stsb")
FLOORS = {"mrpc": 0.5, "rte": 0.5, "stsb": 0.0}


def _rec(task, imp, level, seed, value, degenerate=False):
    metric = get_task(task).main_metric
    return {"task": task, "metrics": {metric: value}, "degenerate": degenerate,
            "provenance": {"importance": imp, "level": level, "seed": seed, "intermediate_size": 1536 - 384 * level,
                           "parameters": 100 - 10 * level, "wall_time_s": 1.0, "params": {"epochs": 3}}}


def _records(lead=None, degenerate=()):
    """r_f, random and variance at levels 1-3 with 3 seeds: r_f ahead of random by 0.3 points on MRPC
    and RTE and by ``lead[task]`` on the tasks it names; variance 1 point ahead of r_f everywhere."""
    lead = {"stsb": 0.20} if lead is None else lead
    recs = []
    for t in TASKS:
        for s in range(3):
            recs.append(_rec(t, "none", 0, s, 0.80 + 0.001 * s))
            for lv in (1, 2, 3):
                rf = 0.75 - 0.02 * lv + 0.002 * s
                recs.append(_rec(t, "merge_radius", lv, s, rf, degenerate=(t, lv, s) in degenerate))
                recs.append(_rec(t, "random", lv, s, rf - lead.get(t, 0.003)))
                recs.append(_rec(t, "activation_variance", lv, s, rf + 0.01))
    return recs


def test_the_carrier_is_the_task_the_size_comes_from():
    assert carrier({"a": {"mean_diff": 0.2}, "b": {"mean_diff": 0.003}, "c": {"mean_diff": -0.01}}) == "a"
    assert carrier({"a": {"mean_diff": 0.02}, "b": {"mean_diff": 0.015}, "c": {"mean_diff": 0.018}}) is None
    assert carrier({"a": {"mean_diff": 0.05}}) is None  # one task carries nothing beyond itself
    pooled = pooled_comparison(_records(), "merge_radius", "random")
    assert pooled["carrier"] == "stsb" and pooled["per_task"]["stsb"]["ahead"] == 3
    assert pooled["per_task"]["rte"]["mean_diff"] == pytest.approx(0.003)


def test_a_pooled_claim_is_never_reported_without_its_per_task_breakdown():
    text = findings_text(_records(), FLOORS)
    pooled = text[text.index("Pooled"):]
    assert "most of the difference from STS-B" in pooled  # the task that carries the lead over random
    for t in TASKS:  # and every task's own count beside it, for both pooled claims
        assert pooled.count(f"{get_task(t).dir_name} 3 of 3") == 2, t
    spread = findings_text(_records(lead={"mrpc": 0.02, "rte": 0.02, "stsb": 0.02}), FLOORS)
    assert spread.count("spread over the tasks") == 2 and "most of the difference from" not in spread


def test_a_degenerate_run_in_an_average_is_counted_beside_it():
    clean = findings_text(_records(), FLOORS)
    assert "predicting one class" not in clean
    one = findings_text(_records(degenerate={("rte", 2, 1)}), FLOORS)
    assert "1 of 9 runs predicting one class" in one
    assert glue_facts(_records(degenerate={("rte", 2, 1)}), FLOORS)["degenerate_merge_radius_L2"] == 1
    points = method_points(_records(degenerate={("rte", 2, 1)}), TASKS)
    assert "OBCE (r_f) 71.2 (1 of 9 runs predict one class)" in ranking([p for p in points if p["level"] == 2
                                                                       and p["method"] == "merge_radius"])


def test_a_pooled_ranking_says_when_its_leader_rests_on_one_task():
    recs = _records(lead={"stsb": -0.30})  # random far ahead on STS-B alone, a little behind elsewhere
    recs = [r for r in recs if r["provenance"]["importance"] != "activation_variance"]
    out = level_breakdown(recs, TASKS, level=2)
    assert "on STS-B FFN pruning of random neurons" in out["mt2_by_task"] and "on RTE OBCE (r_f)" in out["mt2_by_task"]
    assert out["mt2_carrier"].startswith("FFN pruning of random neurons's first place rests on STS-B")
    steady = level_breakdown(_records(), TASKS, level=2)
    assert "leads on every average that leaves one task out" in steady["mt2_carrier"]


def test_the_moonshot_is_the_smallest_model_at_97_percent_and_never_a_degenerate_one():
    from obce.analysis.methods import moonshot

    pts = [dict(method="none", level=0, parameters=100, score=80.0, cells=3, degenerate=0),
           dict(method="masks", level=2, parameters=60, score=78.0, cells=3, degenerate=0),
           dict(method="kronecker_19x", level=3, parameters=5, score=79.0, cells=3, degenerate=3, own=True),
           dict(method="combined", level=3, parameters=50, score=70.0, cells=3, degenerate=0, own=True)]
    out = moonshot(pts, "RTE")
    assert out["mt_moon_params"] == 60 / 1e6  # KroneckerBERT at 19x predicts one class: not a model that keeps 97%
    assert "adapting by pruning (masks) at level 2's budget" in out["mt_moon"]
    assert "87.5% of the unpruned average" in out["mt_moon"]  # the combination, 70 of 80


def test_a_claim_is_as_strong_as_its_conservative_test():
    facts = glue_facts(_records(), FLOORS)  # r_f ahead of random in 9 of 9 cells, most of it on STS-B
    assert facts["claim_random"].startswith("Across cells, r_f is ahead of random neurons beyond chance")
    assert "most of the difference comes from STS-B" in facts["claim_random"]
    few = [r for r in _records() if r["provenance"]["level"] in (0, 2)]  # 3 cells: p = 0.25 at best
    weak = glue_facts(few, FLOORS)["claim_random"]
    assert "is not significant (p = 0.25)" in weak and "a finding of STS-B, not of every task" in weak

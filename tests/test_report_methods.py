"""The comparison of compression methods: points, equal-budget verdicts and the chapter's facts."""
from __future__ import annotations

import numpy as np
import pytest

from obce.analysis.methods import equal_budget_verdicts, method_points, methods_facts
from obce.errors import ObceInputError


def _rec(task, method, level, seed, value, params):
    metric = {"rte": "accuracy", "stsb": "pearson"}[task]
    return {"task": task, "metrics": {metric: value, **({"spearman": value} if task == "stsb" else {})},
            "provenance": {"importance": method, "level": level, "seed": seed, "parameters": params,
                           "parameters_full": 100, "wall_time_s": 10.0 * (1 + level), "params": {"epochs": 3}}}


@pytest.fixture()
def records():
    recs = []
    for seed in (0, 1, 2):
        for task, base in (("rte", 0.6), ("stsb", 0.8)):
            recs.append(_rec(task, "none", 0, seed, base + 0.01 * seed, 100))
            for level in (1, 2):
                recs.append(_rec(task, "merge_radius", level, seed, base - 0.05 * level + 0.01 * seed, 100 - 10 * level))
                recs.append(_rec(task, "masks", level, seed, base - 0.02 * level + 0.011 * seed, 100 - 10 * level))
    recs.append(_rec("rte", "layer_removal", 2, 0, 0.5, 79))  # one task only: no point
    return recs


def test_method_points_average_tasks_and_spread_over_seeds(records):
    points = {(p["method"], p["level"]): p for p in method_points(records, ("rte", "stsb"))}
    assert set(points) == {("none", 0), ("merge_radius", 1), ("merge_radius", 2), ("masks", 1), ("masks", 2)}
    p = points["masks", 2]
    per_seed = [np.mean([0.6 - 0.04 + 0.011 * s, 0.8 - 0.04 + 0.011 * s]) for s in (0, 1, 2)]
    assert p["score"] == pytest.approx(100 * np.mean(per_seed))
    assert p["seed_std"] == pytest.approx(100 * np.std(per_seed, ddof=1))
    assert p["parameters"] == 80 and p["seeds"] == 3 and p["train_time_s"] == 30.0
    assert points["none", 0]["parameters"] == 100
    with pytest.raises(ObceInputError, match="at least one task"):
        method_points(records, ())


def test_equal_budget_verdicts_and_facts(records):
    verdicts = equal_budget_verdicts(records, ("rte", "stsb"))
    masks = [v for v in verdicts if v["method"] == "masks"]
    # masks beat r_f by 0.03 x level plus 0.001 x seed in every pair: significant in every cell
    assert [(v["level"], v["wins"], v["ties"], v["losses"]) for v in masks] == [(1, 2, 0, 0), (2, 2, 0, 0)]
    assert masks[1]["mean_diff"] == pytest.approx(100 * (0.06 + 0.001))
    lr = [v for v in verdicts if v["method"] == "layer_removal"]
    assert lr == [dict(method="layer_removal", against="merge_radius", level=2, tasks=1, wins=0, ties=1, losses=0,
                       mean_diff=pytest.approx(100 * (0.5 - 0.5)))]
    facts = methods_facts(method_points(records, ("rte", "stsb")), verdicts)
    assert facts["mt_best_L2"] == "adapting by pruning (masks)"
    assert facts["mt_masks_L2"] > facts["mt_ref_L2"] and np.isnan(facts["mt_layer_removal_L2"])
    assert facts["mt_masks_record"].startswith("4 wins, 0 ties and 0 losses") and facts["mt_levels"] == "1, 2"


def test_layer_removal_is_judged_against_r_f_at_its_own_count_where_that_ran(records):
    """FFN sub-layer removal reaches whole blocks: where r_f pruning matched to its count ran, it is the
    reference (and no row of its own); r_f at the level's budget would flatter or punish it."""
    for seed in (0, 1, 2):
        if seed:  # the fixture has seed 0's
            records.append(_rec("rte", "layer_removal", 2, seed, 0.50 + 0.01 * seed, 79))
        records.append(_rec("rte", "merge_radius_at_layer_removal", 2, seed, 0.58 + 0.011 * seed, 79))
    verdicts = equal_budget_verdicts(records, ("rte",))
    lr = [v for v in verdicts if v["method"] == "layer_removal"]
    assert [(v["against"], v["losses"]) for v in lr] == [("merge_radius_at_layer_removal", 1)]
    assert lr[0]["mean_diff"] == pytest.approx(100 * np.mean([0.5 - 0.58, 0.51 - 0.591, 0.52 - 0.602]))
    assert not [v for v in verdicts if v["method"] == "merge_radius_at_layer_removal"]
    facts = methods_facts(method_points(records, ("rte",)), verdicts, others=("layer_removal",))
    assert "against r_f at layer removal's size" in facts["mt_layer_removal_record"]


def test_covered_tasks_need_every_level_of_every_method(records):
    from obce.analysis.methods import covered_tasks

    assert covered_tasks(records, ("rte", "stsb"), ("masks",)) == ("rte", "stsb")
    # layer removal ran level 2 on RTE only: STS-B is not covered
    assert covered_tasks(records, ("rte", "stsb"), ("masks", "layer_removal")) == ("rte",)
    records.append({"task": "rte", "metrics": {"accuracy": 0.5}, "provenance": {"importance": "layer_removal",
                                                                                 "level": 3, "seed": 0}})
    assert covered_tasks(records, ("rte", "stsb"), ("masks", "layer_removal")) == ("rte",)
    assert covered_tasks(records, ("rte",), ("kronecker",)) == ()


def test_a_method_with_its_own_size_is_a_point_but_never_an_equal_budget_verdict(records):
    from obce.analysis.methods import method_table

    for seed in (0, 1, 2):
        for task in ("rte", "stsb"):
            rec = _rec(task, "kronecker_19x", 3, seed, 0.55, 5)
            rec["provenance"]["budget"] = "own"
            records.append(rec)
    points = method_points(records, ("rte", "stsb"))
    tiny = [p for p in points if p["method"] == "kronecker_19x"]
    assert len(tiny) == 1 and tiny[0]["own"] and tiny[0]["parameters"] == 5
    assert not any(p["own"] for p in points if p["method"] != "kronecker_19x")
    verdicts = equal_budget_verdicts(records, ("rte", "stsb"))
    assert "kronecker_19x" not in {v["method"] for v in verdicts}
    facts = methods_facts(points, verdicts)
    assert facts["mt_best_score_L3"] != facts["mt_best_score_L3"]  # no level-3 point but the own size: NaN
    table = method_table(points, records)
    assert table["budget"].tolist()[-1] == "own" and table["budget"].tolist()[0] == "full"


def test_compare_methods_reads_level_2_over_the_tasks_where_it_ran(records):
    """Layer removal ran level 2 on one task, masks on two: rather than shrink every average to RTE,
    the comparison leaves layer removal out and says so; with only RTE to compare, it ranks it there."""
    from obce.analysis.methods import compare_methods, methods_findings

    scores = [r for r in records if r["provenance"]["importance"] in ("none", "merge_radius")]
    methods = [r for r in records if r["provenance"]["importance"] in ("masks", "layer_removal")]
    cmp = compare_methods(scores, methods, {"rte": 0.5, "stsb": 0.0})
    assert cmp["tasks"] == cmp["tasks_l2"] == ("rte", "stsb")
    assert "FFN sub-layer removal" not in cmp["facts"]["mt2_order"]
    assert cmp["facts"]["mt_partial"] == ("Run so far on fewer tasks, and so left out of these averages: "
                                          "FFN sub-layer removal (RTE).")
    only_rte = [r for r in records if r["task"] == "rte"]
    cmp = compare_methods([r for r in only_rte if r in scores], [r for r in only_rte if r in methods],
                          {"rte": 0.5, "stsb": 0.0})
    assert cmp["tasks_l2"] == ("rte",) and {p["level"] for p in cmp["points_l2"]} == {0, 2}
    order = cmp["facts"]["mt2_order"]
    assert order.index("adapting by pruning") < order.index("OBCE (r_f)") < order.index("FFN sub-layer removal")
    assert "averaged over RTE" in methods_findings(cmp["facts"]) and cmp["facts"]["mt_own"] == "none yet"
    assert cmp["facts"]["mt_partial"] == "Every method that ran is in these averages."
    methods = [r for r in methods if r["provenance"]["importance"] == "masks"]
    tiny = []
    for seed in (0, 1, 2):
        rec = _rec("stsb", "kronecker_19x", 3, seed, 0.55, 5)
        rec["provenance"]["budget"] = "own"
        tiny.append(rec)
    cmp = compare_methods(scores, methods + tiny, {"rte": 0.5, "stsb": 0.0})
    assert cmp["tasks_l2"] == ("rte", "stsb") and cmp["tasks_own"] == ("stsb",)  # each view its own tasks
    assert cmp["facts"]["mt_own"] == "KroneckerBERT at 19x (two-stage distillation) (0.00M parameters) 55.0"
    assert "over STS-B (unpruned 81.0, majority class 0.0)" in methods_findings(cmp["facts"])
    assert cmp["facts"]["mt2_floor"] == pytest.approx(25.0)  # the floors of RTE (given as 0.5) and STS-B (0)
    methods = [r for r in methods if r["provenance"]["importance"] == "masks"]
    cmp = compare_methods(scores, methods, {"rte": 0.5, "stsb": 0.0})
    assert cmp["tasks"] == cmp["tasks_l2"] == ("rte", "stsb")


def test_a_method_whose_runs_all_predict_one_class_did_not_learn_and_is_never_ranked(records):
    """Masks at level 2 score best on both tasks, but every one of their runs is degenerate: the ranking
    says "did not learn" (last, without a number), the level's best is another method, and the table
    counts the degenerate runs. One degenerate run of r_f is counted, not hidden."""
    from obce.analysis.methods import method_points, method_table, methods_facts, ranking

    for r in records:
        p = r["provenance"]
        if p["importance"] == "masks" and p["level"] == 2:
            r["metrics"] = {k: 0.99 for k in r["metrics"]}
            r["degenerate"] = True
        if p["importance"] == "merge_radius" and p["level"] == 2 and p["seed"] == 0 and r["task"] == "rte":
            r["degenerate"] = True
    points = method_points(records, ("rte", "stsb"))
    at2 = sorted((p for p in points if p["level"] == 2), key=lambda p: -p["score"])
    assert at2[0]["method"] == "masks"  # by its number it would lead
    phrase = ranking(at2)
    assert phrase.endswith("adapting by pruning (masks) did not learn (all 6 runs predict one class)")
    assert "99" not in phrase and phrase.startswith("OBCE (r_f) ")
    assert "(1 of 6 runs predict one class)" in phrase
    facts = methods_facts(points, [])
    assert facts["mt_best_L2"] == "OBCE (r_f)"
    table = method_table(points, records)
    row = table[(table["method"] == "adapting by pruning (masks)") & (table["budget"] == "level 2")]
    assert row["degenerate runs"].tolist() == ["6 of 6"]


def test_budget_offsets_and_the_general_distillations_cost_come_from_the_records(records):
    from obce.analysis.methods import budget_offsets, general_distillation_cost

    for level, params in ((1, 103), (3, 66)):
        rec = _rec("rte", "layer_removal", level, 0, 0.5, params)
        rec["provenance"]["budget_parameters"] = 100 - 10 * level
        records.append(rec)
    records[-3]["provenance"]["budget_parameters"] = 80  # the fixture's level-2 run, 79 parameters
    assert budget_offsets(records) == "+14.4%, -1.2% and -5.7% of the level's budget at levels 1, 2 and 3"
    assert budget_offsets(records, "kronecker") == "not run yet"
    gd = dict(key="k1", texts=1000, steps=600, seconds=600.0, texts_per_second=32.0, settings={"batch_size": 32})
    for task in ("rte", "stsb"):  # two records of one distillation (the second from the cache) count once
        rec = _rec(task, "eelbert", 3, 0, 0.5, 50)
        rec["provenance"].update(general_distillation=dict(gd), device="cpu: x86_64 (2 cores)")
        records.append(rec)
    records[-1]["provenance"]["general_distillation"].update(key="k2", texts_per_second=48.0, seconds=400.0)
    cost = general_distillation_cost(records)
    assert cost["mt_gd_students"] == 2 and cost["mt_gd_rate"] == 40.0 and cost["mt_gd_minutes"] == 500 / 60
    assert cost["mt_gd_epoch_minutes"] == pytest.approx(1000 / 40 / 60) and cost["mt_gd_steps"] == "600"
    assert cost["mt_gd_host"] == "cpu: x86_64 (2 cores)"
    assert general_distillation_cost(records[:3])["mt_gd_students"] == 0

import copy
import json
import re

import pytest

from obce.analysis.stats import paired_comparison, summarize_records
from obce.errors import ObceInputError
from obce.results import CHECKPOINT_RECORD, load_records, validate_record
from tests.conftest import REPO

#: every committed results tree of GLUE records (one per protocol)
RESULT_TREES = [REPO / "results" / "glue_short" / "glue", REPO / "results" / "glue_fulltrain" / "glue",
                REPO / "results" / "glue_sst2_subset" / "glue", REPO / "results" / "glue_gpu" / "glue",
                REPO / "results" / "glue_gpu_sst2" / "glue",
                *sorted((REPO / "results" / "ablations_cpu").glob("*/glue"))]


def _record(task="rte", importance="merge_radius", level=2, seed=0, value=0.6):
    metric = {"rte": "accuracy", "stsb": "pearson", "cola": "matthews_correlation"}[task]
    metrics = {metric: value} if task != "stsb" else {"pearson": value, "spearman": value}
    return {"kind": "glue_result", "task": task, "metrics": metrics, "provenance": {
        "params": {"epochs": 1}, "seed": seed, "device": "cpu", "versions": {"torch": "2", "transformers": "5"},
        "git_commit": "abc", "wall_time_s": 1.0, "model": "minilm", "data": "local", "train_size": 10,
        "eval_size": {"validation": 10}, "importance": importance, "level": level, "parameters": 100}}


def test_committed_records_are_valid():
    """Every committed GLUE record: metrics in range, provenance complete (a broken record fails CI)."""
    records = [rec for tree in RESULT_TREES for rec in load_records(tree)]
    for tree in RESULT_TREES:
        assert any(rec["path"].startswith(str(tree)) for rec in records), f"{tree} holds no records"
    for rec in records:
        prov = rec["provenance"]
        assert prov["importance"] in ("none", "merge_radius", "total_persistence", "random", "magnitude",
                                      "mean_abs_activation", "activation_variance", "mean_death", "taylor")
        assert (prov["level"] == 0) == (prov["importance"] == "none")
        assert prov["parameters"] <= prov["parameters_full"]
        if prov["model"] in ("minilm", ".carry/minilm-fp16"):  # the encoder's count: 6 layers x (2 x 384 + 1) per FFN neuron removed
            assert prov["parameters_full"] - prov["parameters"] == 6 * 769 * (1536 - prov["intermediate_size"]), rec["path"]
        expected = rec["path"].split("/")[-1]
        assert expected == f"{prov['importance']}-L{prov['level']}-s{prov['seed']}.json"
    load_records(REPO / "results" / "diagnostics")  # validated too


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r["metrics"].update(accuracy=1.5), r"metrics.accuracy=1.5: expected a number in \[0.0, 1.0\]"),
    (lambda r: r["metrics"].update(accuracy=float("nan")), "metrics.accuracy=nan: expected a number"),
    (lambda r: r["metrics"].pop("accuracy"), "metrics.accuracy='\\(absent\\)'"),
    (lambda r: r["provenance"].pop("git_commit"), "git_commit"),
    (lambda r: r["provenance"]["versions"].pop("torch"), "torch"),
    (lambda r: r.update(task="imdb"), "unknown GLUE task"),
])
def test_broken_records_are_rejected(mutate, match):
    rec = _record()
    validate_record(copy.deepcopy(rec))
    mutate(rec)
    with pytest.raises(ObceInputError, match=match):
        validate_record(rec)


def test_summary_and_paired_comparison(tmp_path):
    recs = [_record(seed=s, value=v) for s, v in [(0, 0.60), (1, 0.62), (2, 0.64)]]
    recs += [_record(importance="random", seed=s, value=v) for s, v in [(0, 0.55), (1, 0.60), (2, 0.58)]]
    for i, r in enumerate(recs):
        (tmp_path / f"{i}.json").write_text(json.dumps(r))
    checkpoint = tmp_path / "finetuned" / "rte-0123abcd"
    checkpoint.mkdir(parents=True)  # a fine-tuned checkpoint's own record is not a run
    (checkpoint / CHECKPOINT_RECORD).write_text(json.dumps(_record(importance="none", level=0, seed=0)))
    loaded = load_records(tmp_path)
    assert len(loaded) == 6
    rows = {(r["importance"], r["level"]): r for r in summarize_records(loaded)}
    assert rows["merge_radius", 2]["mean"] == pytest.approx(0.62) and rows["merge_radius", 2]["std"] == pytest.approx(0.02)
    assert rows["random", 2]["n"] == 3
    [pair] = paired_comparison(loaded, "merge_radius", "random")
    assert pair["mean_diff"] == pytest.approx((0.05 + 0.02 + 0.06) / 3) and pair["wins"] == 3
    assert 0 < pair["p_value"] < 0.2
    assert pair["verdict"] == "tie"  # not significant at 0.05 with 3 seeds
    assert paired_comparison(loaded, "merge_radius", "random", alpha=0.2)[0]["verdict"] == "win"
    assert paired_comparison(loaded, "random", "merge_radius", alpha=0.2)[0]["verdict"] == "loss"
    assert paired_comparison(loaded, "merge_radius", "random", floors={"rte": 0.62})[0]["verdict"] == "no learning"
    assert paired_comparison(loaded, "merge_radius", "random", floors={"rte": 0.55})[0]["verdict"] == "tie"


def test_majority_baselines(glue_dir):
    from obce.analysis.stats import majority_baseline

    assert majority_baseline("rte", glue_dir)["accuracy"] == pytest.approx(146 / 277)  # "entailment"
    mrpc = majority_baseline("mrpc", glue_dir)
    assert mrpc["accuracy"] == pytest.approx(279 / 408) and mrpc["f1"] == pytest.approx(2 * 279 / (279 + 408))
    assert majority_baseline("cola", glue_dir)["matthews_correlation"] == 0.0
    assert majority_baseline("stsb", glue_dir)["pearson"] == 0.0


def test_records_of_different_protocols_are_not_mixed():
    """Averaging or pairing seeds fine-tuned under different budgets would be meaningless."""
    short = [_record(seed=s) for s in range(2)]
    longer = [_record(importance="random", seed=s) for s in range(2)]
    for r in longer:
        r["provenance"]["params"] = {"epochs": 3.0}
    with pytest.raises(ObceInputError, match="2 fine-tuning protocols"):
        summarize_records(short + longer)
    with pytest.raises(ObceInputError, match="protocols"):
        paired_comparison(short + longer, "merge_radius", "random")
    for r in longer:
        r["provenance"]["params"] = {"epochs": 1.0}  # 1.0 and 1 are the same protocol
    assert len(paired_comparison(short + longer, "merge_radius", "random")) == 1


def test_score_and_paired_tables():
    from obce.analysis.tables import markdown_summary, paired_table, score_table

    recs = [_record(seed=s, value=v) for s, v in [(0, 0.60), (1, 0.62), (2, 0.64)]]
    recs += [_record(importance="random", seed=s, value=v) for s, v in [(0, 0.55), (1, 0.60), (2, 0.58)]]
    wide = score_table(recs)
    assert wide.loc[(2, "merge_radius"), "rte"] == "62.0 ± 2.0 (n=3)"
    assert wide.loc[(2, "random"), "parameters"] == "100"
    pairs = paired_table(recs, controls=("random",))
    assert list(pairs["mean_diff"]) == [4.3] and list(pairs["wins"]) == [3]  # x 100, one decimal
    md = markdown_summary(recs)
    assert "| 2 | merge_radius | 100 | 62.0 ± 2.0 (n=3) |" in md and "| rte | 2 | random | 3 | 4.3 |" in md
    assert "average" not in wide.columns  # one task: nothing to average


def test_tables_with_several_tasks_and_controls():
    """The average is over every task of the table, and only for rows that ran all of them; the
    paired table compares r_f with every other importance present by default."""
    from obce.analysis.stats import controls_of
    from obce.analysis.tables import NOT_RUN, paired_table, score_table

    recs = [_record(seed=s, value=0.60 + s / 100) for s in range(3)]
    recs += [_record("stsb", seed=s, value=0.80) for s in range(3)]
    recs += [_record("stsb", importance=imp, seed=s, value=0.70 + s / 50)
             for imp in ("mean_abs_activation", "random") for s in range(3)]
    wide = score_table(recs)
    assert wide.loc[(2, "merge_radius"), "average"] == "70.5"  # (61.0 + 80.0) / 2
    assert wide.loc[(2, "random"), "average"] == wide.loc[(2, "random"), "rte"] == NOT_RUN  # no RTE run
    assert controls_of(recs) == ("random", "mean_abs_activation")
    pairs = paired_table(recs)
    assert list(zip(pairs["task"], pairs["b"])) == [("stsb", "random"), ("stsb", "mean_abs_activation")]
    assert list(pairs["mean_diff"]) == [8.0, 8.0] and list(pairs["wins"]) == [3, 3]


def test_verdict_grid_has_a_cell_per_task_level_and_control():
    from obce.analysis.tables import NOT_RUN, paired_table, verdict_grid

    recs = [_record(seed=s, value=0.60 + s / 100) for s in range(3)]
    recs += [_record(importance="random", seed=s, value=0.50) for s in range(3)]
    recs += [_record("stsb", seed=s, value=0.80) for s in range(2)]
    recs += [_record("stsb", importance="magnitude", seed=s, value=0.70 + s / 50) for s in range(2)]
    pairs = paired_table(recs)
    grid = verdict_grid(pairs)
    assert list(grid.columns) == ["magnitude", "random"] and list(grid.index) == [("rte", 2), ("stsb", 2)]
    assert grid.loc[("rte", 2), "random"] == "win (+11.0)"
    assert grid.loc[("rte", 2), "magnitude"] == NOT_RUN  # no magnitude run on RTE
    assert verdict_grid(pairs, show_n=True).loc[("stsb", 2), "magnitude"].endswith(", n=2)")
    assert verdict_grid(pairs.iloc[:0]).empty


def test_levels_table_has_a_row_per_task_and_level_and_a_column_per_score():
    from obce.analysis.tables import levels_table

    recs = [_record(importance="none", level=0, seed=s, value=0.70) for s in range(2)]
    recs += [_record(level=lv, seed=s, value=0.60 + lv / 100 + s / 100) for lv in (1, 3) for s in range(2)]
    recs += [_record(importance="random", level=3, seed=s, value=0.50) for s in range(2)]
    recs += [_record("stsb", importance="random", level=1, seed=s, value=0.80) for s in range(2)]
    table = levels_table(recs)
    assert list(table.columns) == ["unpruned", "merge_radius", "random"]
    assert list(table.index) == [("rte", 1), ("rte", 3), ("stsb", 1)]
    assert table.loc[("rte", 3), "merge_radius"] == "63.5 ± 0.7" and table.loc[("rte", 3), "random"] == "50.0 ± 0.0"
    assert table.loc[("rte", 1), "random"] == "–" and table.loc[("rte", 1), "unpruned"] == "70.0"
    assert table.loc[("stsb", 1), "unpruned"] == "–"  # no unpruned STS-B record
    assert list(levels_table(recs, importances=("random",)).columns) == ["unpruned", "random"]
    assert levels_table(recs[:-1]).loc[("stsb", 1), "random"] == "80.0 ± 0.0 (n=1)"  # fewer seeds than the rest
    assert levels_table(recs[:2]).empty  # the unpruned model alone: nothing pruned to tabulate


def test_average_table_averages_the_tasks_per_level_and_score():
    from obce.analysis.tables import average_table

    recs = [_record(importance="none", level=0, seed=s, value=0.70) for s in range(2)]
    recs += [_record("stsb", importance="none", level=0, seed=s, value=0.90) for s in range(2)]
    recs += [_record(level=lv, seed=s, value=0.60 + s / 100) for lv in (1, 2) for s in range(2)]
    recs += [_record("stsb", level=lv, seed=s, value=0.80 - s / 100) for lv in (1, 2) for s in range(2)]
    recs += [_record(importance="random", level=2, seed=s, value=0.50) for s in range(2)]  # RTE only
    table = average_table(recs)
    assert list(table.columns) == ["unpruned", "merge_radius", "random"] and list(table.index) == [1, 2]
    # rte 60.5 and stsb 79.5 average to 70.0; unpruned (70 + 90) / 2
    assert table.loc[1, "merge_radius"] == "70.0" and table.loc[1, "unpruned"] == "80.0"
    assert table.loc[2, "random"] == "–"  # not run on STS-B: no average over both tasks
    only_rte = average_table(recs, tasks=("rte",))
    assert only_rte.loc[2, "random"] == "50.0" and only_rte.loc[2, "merge_radius"] == "60.5"
    assert only_rte.loc[1, "unpruned"] == "70.0"
    with pytest.raises(ObceInputError, match="cola"):
        average_table(recs, tasks=("rte", "cola"))
    assert average_table(recs[:4]).empty  # unpruned models alone


def test_learned_tasks_are_those_whose_unpruned_model_clears_the_baseline():
    from obce.analysis.stats import learned_tasks

    recs = [_record(importance="none", level=0, seed=s, value=0.60) for s in range(2)]
    recs += [_record("stsb", importance="none", level=0, seed=s, value=0.105) for s in range(2)]
    recs += [_record("stsb", level=2, seed=s, value=0.9) for s in range(2)]  # a pruned model does not count
    assert learned_tasks(recs, {"rte": 0.5, "stsb": 0.1}) == ("rte",)  # stsb 0.105: within the 0.01 margin
    assert learned_tasks(recs, {"rte": 0.5, "stsb": 0.1}, margin=0.001) == ("rte", "stsb")


def test_pooled_comparison_counts_pairs_and_cells_and_sign_tests_them():
    from obce.analysis.stats import pooled_comparison
    from obce.analysis.tables import pooled_table

    recs = []
    # r_f ahead of random on 2 of 3 seeds in 3 cells, behind on all 3 seeds in the fourth; one seed equal
    for task, level, diffs in [("rte", 1, (1, 1, -1)), ("rte", 2, (2, 1, -1)), ("stsb", 1, (1, 1, 0)),
                               ("stsb", 2, (-1, -1, -1))]:
        for seed, d in enumerate(diffs):
            recs.append(_record(task, "random", level, seed, value=0.5))
            recs.append(_record(task, "merge_radius", level, seed, value=0.5 + d / 100))
    out = pooled_comparison(recs, "merge_radius", "random")
    assert (out["pairs"], out["wins"], out["losses"]) == (12, 6, 5)  # the equal pair is neither
    assert (out["cells"], out["cells_ahead"], out["cells_behind"]) == (4, 3, 1)
    assert out["p_sign"] == pytest.approx(1.0)  # 6 of 11: no direction
    assert out["p_cells"] == pytest.approx(0.625)  # 3 of 4 cells: two-sided binomial, 2 * 5/16
    assert out["tasks"] == ["rte", "stsb"] and out["levels"] == [1, 2]
    only = pooled_comparison(recs, "merge_radius", "random", tasks=("rte",), levels=(2,))
    assert (only["pairs"], only["wins"], only["cells_ahead"]) == (3, 2, 1)
    # mirror image: random against r_f swaps wins and losses, the p-values stay
    back = pooled_comparison(recs, "random", "merge_radius")
    assert (back["wins"], back["losses"], back["cells_behind"], back["p_cells"]) == (5, 6, 3, out["p_cells"])
    # 8 of 8 decided pairs in one direction: 2 / 2**8
    strong = [_record("rte", imp, 1, s, value=v) for s in range(8) for imp, v in (("random", 0.5), ("magnitude", 0.6))]
    assert pooled_comparison(strong, "magnitude", "random")["p_sign"] == pytest.approx(2 / 2**8)
    assert pooled_comparison(strong, "magnitude", "merge_radius")["pairs"] == 0  # nothing to pair
    table = pooled_table(recs)
    assert list(table.b) == ["random"] and table.loc[0, "tasks"] == "rte, stsb" and table.loc[0, "levels"] == "1, 2"


def test_relabelled_ablation_records_pair_with_the_main_ones():
    from obce.analysis.tables import paired_table
    from obce.results import relabel

    main = [_record("stsb", seed=s, value=0.80) for s in range(3)]
    ablation = [_record("stsb", seed=s, value=0.75 - s / 100) for s in range(3)]
    renamed = relabel(ablation, "merge_radius[mean]")
    assert {r["provenance"]["importance"] for r in ablation} == {"merge_radius"}  # inputs untouched
    [row] = paired_table(main + renamed).to_dict("records")
    assert row["b"] == "merge_radius[mean]" and row["mean_diff"] == 6.0 and row["wins"] == 3
    assert [r["provenance"]["importance"] for r in relabel(ablation[:1], "{importance}[n128]")] == [
        "merge_radius[n128]"]  # a record's own importance in the label


def test_ablation_sets_pair_with_the_main_records_and_their_own_random_control(tmp_path):
    from obce.analysis.tables import ablation_table
    from obce.results import load_ablations

    sets = {"corpus_n128": {"merge_radius": 0.70}, "score_finetuned": {"taylor": 0.86, "merge_radius": 0.85,
                                                                       "random": 0.84}}
    for name, imps in sets.items():
        for imp, value in imps.items():
            for s in range(3):
                path = tmp_path / name / "glue" / "stsb" / f"{imp}-L2-s{s}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(_record("stsb", imp, seed=s, value=value + s / 100)))
    found = load_ablations(tmp_path)
    assert sorted({r["provenance"]["importance"] for r in found}) == [
        "merge_radius[corpus_n128]", "merge_radius[score_finetuned]", "random[score_finetuned]",
        "taylor[score_finetuned]"]
    main = [_record("stsb", imp, seed=s, value=v - s / 100) for imp, v in (("merge_radius", 0.8), ("random", 0.6))
            for s in range(3)]
    table = ablation_table(main + [_record("rte", seed=s) for s in range(3)], found)
    pairs = {(row["a"], row["b"]): round(row["mean_diff"], 6) for row in table.to_dict("records")}
    assert pairs == {
        ("merge_radius", "merge_radius[corpus_n128]"): 8.0, ("merge_radius", "merge_radius[score_finetuned]"): -7.0,
        ("merge_radius", "taylor[score_finetuned]"): -8.0,
        ("merge_radius[corpus_n128]", "random"): 12.0,  # no own control: the main random
        ("merge_radius[score_finetuned]", "random[score_finetuned]"): 1.0,  # same two fine-tunes
        ("taylor[score_finetuned]", "random[score_finetuned]"): 2.0,
        ("merge_radius[score_finetuned]", "taylor[score_finetuned]"): -1.0}  # within the set
    assert load_ablations(tmp_path / "absent") == []
    # main scores named in `also` pair with the sets trained as the main records, not with score_finetuned
    main.extend(_record("stsb", "activation_variance", seed=s, value=0.75) for s in range(3))
    table = ablation_table(main, found, also=("activation_variance",))
    pairs_also = {(row["a"], row["b"]): round(row["mean_diff"], 6) for row in table.to_dict("records")}
    assert set(pairs_also) - set(pairs) == {("merge_radius[corpus_n128]", "activation_variance")}
    assert pairs_also["merge_radius[corpus_n128]", "activation_variance"] == -4.0


def test_draw_facts_compare_the_verdict_with_the_corpus_drawn_per_seed_and_with_one_draw():
    from obce.analysis.facts import draw_facts
    from obce.results import relabel

    # one draw: r_f 0.80, 0.79, 0.78 against variance 0.82 each seed (behind by 3.0 on average)
    main = [_record("stsb", imp, seed=s, value=v - s / 100)
            for imp, v in (("merge_radius", 0.80), ("random", 0.60)) for s in range(3)]
    main += [_record("stsb", "activation_variance", seed=s, value=0.82) for s in range(3)]
    main += [_record("rte", imp, seed=s, value=0.6) for imp in ("merge_radius", "activation_variance") for s in range(3)]
    # per-seed draws: r_f 0.70, 0.72, 0.74 against variance 0.71 (ahead by 1.0), spread 2 points
    drawn = [_record("stsb", "merge_radius", seed=s, value=0.70 + 2 * s / 100) for s in range(3)]
    drawn += [_record("stsb", "activation_variance", seed=s, value=0.71) for s in range(3)]
    facts = draw_facts(main, relabel(drawn, "{importance}[corpus_per_seed]"))
    assert (facts["drw_cells"], facts["drw_seeds"], facts["drw_tasks"], facts["drw_levels"]) == (1, 3, "STS-B", "2")
    assert (facts["drw_behind"], facts["drw_pairs"], facts["drw_fixed_behind"], facts["drw_fixed_pairs"]) == (0, 1, 1, 1)
    assert facts["drw_diff"] == pytest.approx(1.0) and facts["drw_fixed_diff"] == pytest.approx(-3.0)
    assert facts["drw_sd"] == pytest.approx(2.0) and facts["drw_fixed_sd"] == pytest.approx(1.0)
    assert (facts["drw_ahead_random"], facts["drw_random_cells"]) == (1, 1)  # RTE is not in the set's cells
    assert facts["drw_text"].startswith("The corpus draw does matter") and "+1.0" in facts["drw_text"]
    assert draw_facts(main, [])["drw_text"].endswith("yet.") and "stand in" not in facts["drw_text"]
    # a main record scored on its own seed's draw (seed 0 on corpus seed 0) stands in for the set's missing run
    for r in main:
        r["provenance"]["scoring"] = {"seed": 0}
    facts = draw_facts(main, relabel(drawn[1:3] + drawn[4:], "{importance}[corpus_per_seed]"))
    assert facts["drw_borrowed"] == "0" and facts["drw_seeds"] == 3 and "seed 0 draws" in facts["drw_text"]
    assert facts["drw_diff"] == pytest.approx(100 * (0.80 - 0.82 + 0.72 + 0.74 - 2 * 0.71) / 3)


def test_random_draw_of_old_and_new_records():
    from obce.results import random_draw

    rec = _record(importance="random", seed=2)
    rec["provenance"]["scoring"] = {"seed": 0}
    assert random_draw(rec) == 0  # made before per-seed draws: the corpus seed
    rec["provenance"]["scoring"]["random_seed"] = 2
    assert random_draw(rec) == 2
    assert random_draw(_record()) is None


def test_reported_numbers_are_labelled_and_in_range():
    """Published numbers carry their source and split, name only GLUE tasks, and are x100 scores."""
    from obce.analysis.published import REPORTED
    from obce.data import GLUE_TASKS

    for row in REPORTED:
        assert row["model"] and row["source"] and row["split"] in ("dev", "test", "unstated"), row
        scores = {k: v for k, v in row.items() if k not in ("model", "source", "split", "params_m", "note")}
        assert scores and set(scores) <= set(GLUE_TASKS), row["model"]
        assert all(0 < v <= 100 for v in scores.values()), row["model"]


def test_the_same_run_twice_is_refused():
    """An ablation's records loaded with the main ones would pass for extra seeds."""
    main = [_record("stsb", seed=s, value=0.80) for s in range(2)]
    ablation = [_record("stsb", seed=s, value=0.50) for s in range(2)]
    for r in ablation:
        r["path"] = "results/ablations_cpu/representation_mean/glue/stsb/merge_radius-L2-s0.json"
    with pytest.raises(ObceInputError, match="two records of task=stsb importance=merge_radius level=2 seed=0"):
        summarize_records(main + ablation)
    with pytest.raises(ObceInputError, match="relabel"):
        paired_comparison(main + ablation, "merge_radius", "random")


#: the README's findings pasted from `obce report ...` (the marker comment above names the command)
README_TABLES = ["results/methods_fulltrain/glue --methods results/glue_fulltrain/glue --findings",
                 "results/glue_fulltrain/glue --findings",
                 "results/posttrain --tables results/posttrain_sst2 --findings"]


@pytest.mark.parametrize("command", README_TABLES)
def test_readme_findings_are_the_ones_the_records_give(command, glue_dir):
    """The README's sentences pasted from `obce report` must be what that command prints from the
    committed records now: no number in them is typed."""
    from tests.readme_tables import pasted_table, printed_table

    text = (REPO / "README.md").read_text()
    assert f"<!-- obce report {command} -->" in text, f"README lost the output of `obce report {command}`"
    assert pasted_table(text, command) == printed_table(command), \
        f"README's output of `obce report {command}` is stale: `python tests/readme_tables.py` reprints it"


def test_every_generated_readme_block_is_checked_and_refreshable(glue_dir):
    from tests.readme_tables import commands, refresh

    text = (REPO / "README.md").read_text()
    assert sorted(commands(text)) == sorted(README_TABLES)
    stale = text.replace("tasks that learn", "tasks that learned", 1)
    assert stale != text and refresh(stale) == refresh(text)  # a changed block is reprinted, the rest kept


def test_report_writes_the_readme_figure_and_never_overwrites_it(glue_dir, tmp_path, capsys):
    from obce.cli import main

    fig = tmp_path / "levels.png"
    assert main(["report", str(REPO / "results" / "glue_fulltrain" / "glue"), "--figure", str(fig)]) == 0
    assert fig.read_bytes().startswith(b"\x89PNG")
    assert main(["report", str(REPO / "results" / "glue_fulltrain" / "glue"), "--figure", str(fig)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["report", str(REPO / "results"), "--findings"]) == 2  # several protocols: no one answer
    readme = (REPO / "README.md").read_text()
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme):
        assert (REPO / image).is_file(), f"README shows {image}, which does not exist"


def test_report_reads_several_retraining_free_tables_together(glue_dir, tmp_path, capsys):
    from obce.cli import main

    one, two = tmp_path / "one", tmp_path / "two"
    rows = (REPO / "results" / "posttrain" / "posttrain.jsonl").read_text().splitlines(keepends=True)
    for d, task in ((one, "rte"), (two, "mrpc")):
        d.mkdir()
        (d / "posttrain.jsonl").write_text("".join(r for r in rows if f'"task": "{task}"' in r))
    assert main(["report", str(one), "--findings"]) == 0
    alone = capsys.readouterr().out
    assert main(["report", str(one), "--tables", str(two), "--findings"]) == 0
    both = capsys.readouterr().out
    assert "(RTE;" in alone and "(MRPC, RTE;" in both
    assert main(["report", str(one), "--tables", str(tmp_path / "absent"), "--findings"]) == 2
    assert "--tables" in capsys.readouterr().err and not (tmp_path / "absent").exists()
    assert main(["report", str(one), "--tables", str(two)]) == 2  # only with --findings


def test_report_compares_methods_with_the_scores_and_draws_their_figure(glue_dir, tmp_path, capsys):
    from obce.analysis.methods import compare_methods, methods_findings
    from obce.cli import main
    from obce.results import load_records

    methods, scores = REPO / "results" / "methods_fulltrain" / "glue", REPO / "results" / "glue_fulltrain" / "glue"
    assert main(["report", str(methods), "--methods", str(scores), "--glue-dir", str(glue_dir), "--findings"]) == 0
    out = capsys.readouterr().out
    from obce.analysis.stats import majority_baseline
    from obce.data import get_task

    floors = {t: majority_baseline(t, glue_dir)[get_task(t).main_metric] for t in ("cola", "mrpc", "rte", "stsb", "wnli")}
    cmp = compare_methods(load_records(scores), load_records(methods), floors)
    assert out.strip() == "> " + methods_findings(cmp["facts"])
    assert "unpruned" in out and "level 2" in out and len(re.findall(r"\. ", out)) >= 1
    fig = tmp_path / "methods.png"
    assert main(["report", str(methods), "--methods", str(scores), "--glue-dir", str(glue_dir), "--figure",
                 str(fig)]) == 0 and fig.read_bytes().startswith(b"\x89PNG")
    assert main(["report", str(methods), "--methods", str(tmp_path / "none"), "--findings"]) == 2
    assert "does not exist" in capsys.readouterr().err

"""The numbers a chapter or the README states in its sentences, computed from the records.

Prose never types a measured number: the GLUE chapter glues the values of :func:`glue_facts` into its
text (myst-nb ``glue``), and the README's findings are the output of :func:`findings_text`
(``obce report DIR --findings``), pasted and checked by the tests. A rerun with other records or
parameters therefore leaves no stale number.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data import get_task
from ..results import run_key
from .names import join_words, prose_name
from .stats import (controls_of, degenerate_runs, learned_tasks, level_averages, paired_comparison, pooled_comparison,
                    summarize_records)

__all__ = ["DRAW_SET", "STRONGEST", "ablation_facts", "by_task_phrase", "curve_text", "draw_facts", "draw_text", "explain_facts",
           "findings_text", "glue_facts", "posttrain_facts", "posttrain_text"]

#: The strongest control of the records' protocols (the score that beats r_f most often).
STRONGEST = "activation_variance"


def glue_facts(records: list[dict[str, Any]], floors: dict[str, float], a: str = "merge_radius",
               strongest: str = STRONGEST) -> dict[str, Any]:
    """Every number the GLUE chapter's discussion states, by name (metric values x 100).

    Parameters
    ----------
    records : GLUE records of one fine-tuning protocol
    floors : dict of task to the majority-class main metric (0-1 scale)
    a : the score the chapter is about (OBCE's r_f)
    strongest : the control it is measured against hardest

    Returns
    -------
    dict of str to float, int or str
        ``tasks_learn`` (names), ``n_learn``; ``avg_<score>_L<level>`` and ``avg_unpruned``; for each
        control ``c``: ``cells_<c>``, ``ahead_<c>``, ``behind_<c>``, ``p_cells_<c>``, ``wins_<c>``,
        ``losses_<c>``, ``p_sign_<c>`` (``a`` against ``c`` pooled over the tasks that learn and every
        level); ``best_*`` the cell where ``a`` leads random neurons most, ``worst_*`` the cell where
        it trails ``strongest`` most, each with task, level, a's and the control's mean, difference,
        p-value and verdict; ``kept_L<level>`` and ``full_neurons``.
    """
    learn = learned_tasks(records, floors)
    facts: dict[str, Any] = {"tasks_learn": ", ".join(get_task(t).dir_name for t in learn), "n_learn": len(learn)}
    averages = level_averages(records, learn)
    levels = sorted({lv for _, lv in averages if lv})
    facts["avg_unpruned"] = 100 * averages.get(("none", 0), np.nan)
    for (imp, lv), value in averages.items():
        if lv:
            facts[f"avg_{imp}_L{lv}"] = 100 * value
    for p in (r["provenance"] for r in records):
        facts[f"kept_L{p['level']}"] = p["intermediate_size"]
    facts["full_neurons"] = facts.get("kept_L0")
    facts["levels"] = f"{levels[0]}-{levels[-1]}" if levels else ""
    for c in controls_of(records, a):
        pooled = pooled_comparison(records, a, c, tasks=learn)
        for key in ("cells", "wins", "losses", "p_sign", "p_cells"):
            facts[f"{key}_{c}"] = pooled[key]
        facts[f"ahead_{c}"], facts[f"behind_{c}"] = pooled["cells_ahead"], pooled["cells_behind"]
        facts[f"decided_{c}"] = pooled["wins"] + pooled["losses"]
        facts[f"bytask_{c}"] = by_task_phrase(pooled["per_task"])
        facts[f"bytask_{c}_ahead"] = by_task_phrase(pooled["per_task"], reverse=True)  # the control's view
        facts[f"carrier_{c}"] = get_task(pooled["carrier"]).dir_name if pooled["carrier"] else "no single task"
        facts[f"claim_{c}"] = pooled_claim(pooled, facts[f"bytask_{c}"])
    for (imp, lv), (bad, runs) in degenerate_runs(records, learn).items():
        facts[f"degenerate_{imp}_L{lv}"] = bad
        facts[f"runs_{imp}_L{lv}"] = runs
    means = {(r["task"], r["importance"], r["level"]): 100 * r["mean"] for r in summarize_records(records)}
    for name, control, pick in (("best", "random", max), ("worst", strongest, min)):
        pairs = [p for p in paired_comparison(records, a, control, floors=floors) if p["task"] in learn]
        if not pairs:
            continue
        cell = pick(pairs, key=lambda p: p["mean_diff"])
        facts.update({f"{name}_task": get_task(cell["task"]).dir_name, f"{name}_level": cell["level"],
                      f"{name}_a": means[cell["task"], a, cell["level"]],
                      f"{name}_b": means[cell["task"], control, cell["level"]],
                      f"{name}_diff": 100 * cell["mean_diff"], f"{name}_wins": cell["wins"], f"{name}_n": cell["n"],
                      f"{name}_p": cell["p_value"] if cell["p_value"] is not None else np.nan,
                      f"{name}_verdict": cell["verdict"]})
    return facts


def ablation_facts(main: list[dict[str, Any]], ablation: list[dict[str, Any]], floors: dict[str, float],
                   a: str = "merge_radius", strongest: str = STRONGEST) -> dict[str, Any]:
    """How the ablated readings of ``a`` (``a[<set>]``) fare against ``strongest``: ``abl_pairs``
    (variant, cell) pairings, ``abl_behind`` of them with ``a[<set>]`` behind on the mean,
    ``abl_losses`` of them significant losses, ``abl_sets`` the number of ablation sets in those
    pairings."""
    from .tables import ablation_table

    if not ablation:
        return {"abl_pairs": 0, "abl_behind": 0, "abl_losses": 0, "abl_sets": 0}
    table = ablation_table(main, ablation, floors=floors, also=(strongest,))
    rows = table[table["a"].str.startswith(a + "[") & (table["b"] == strongest)]
    return {"abl_pairs": int(len(rows)), "abl_behind": int((rows["mean_diff"] < 0).sum()),
            "abl_losses": int((rows["verdict"] == "loss").sum()),
            "abl_sets": int(rows["a"].nunique())}  # the sets that entered the pairings, not every set run


#: The ablation set that draws the scoring corpus per seed (``params/protocols/cpu_fulltrain/ablations/corpus_per_seed.yaml``).
DRAW_SET = "corpus_per_seed"


def draw_facts(main: list[dict[str, Any]], ablation: list[dict[str, Any]], a: str = "merge_radius",
               strongest: str = STRONGEST, name: str = DRAW_SET) -> dict[str, Any]:
    """Whether ``a`` against ``strongest`` reads the same when the scoring corpus is drawn per seed
    (the ablation set ``name``, e.g. ``merge_radius[corpus_per_seed]``) as with the main protocol's one
    draw, in the (task, level) cells the set ran; and ``a`` drawn per seed against the main random
    neurons (which read no corpus, so they are the same control). A main record whose run seed is its
    corpus seed (seed 0 of a protocol scored on corpus seed 0) is the per-seed draw of that seed, the
    same inputs, and stands in for it where the set lacks that run.

    Returns
    -------
    dict of str to float, int or str
        ``drw_cells``, ``drw_seeds``, ``drw_tasks`` (names), ``drw_levels``, ``drw_borrowed`` (the seeds
        whose main records stand in, as text); for the per-seed draws
        (``drw_``) and the one draw (``drw_fixed_``): ``behind`` (cells with ``a`` behind ``strongest``
        on the mean over seeds), ``losses`` (significant), ``diff`` (mean difference x 100 over the
        cells) and ``sd`` (``a``'s median standard deviation over seeds x 100); ``drw_ahead_random``
        (cells with ``a`` drawn per seed ahead of random neurons); ``drw_text``, a sentence that states
        them (Markdown), or that the set has no records.
    """
    tag = f"[{name}]"
    drawn = [{**r, "provenance": {**r["provenance"], "importance": r["provenance"]["importance"][:-len(tag)]}}
             for r in ablation if r["provenance"].get("importance", "").endswith(tag)]
    cells = sorted({(r["task"], r["provenance"]["level"]) for r in drawn})
    have = {run_key(r) for r in drawn}
    borrowed = [r for r in main if r["provenance"].get("importance") in (a, strongest) and run_key(r) not in have
                and (r["task"], r["provenance"].get("level", 0)) in cells
                and (r["provenance"].get("scoring") or {}).get("seed") == r["provenance"]["seed"]]
    drawn = drawn + borrowed
    facts: dict[str, Any] = {"drw_cells": len(cells), "drw_tasks": ", ".join(get_task(t).dir_name
                                                                           for t in sorted({t for t, _ in cells})),
                             "drw_levels": ", ".join(str(lv) for lv in sorted({lv for _, lv in cells})),
                             "drw_seeds": len({r["provenance"]["seed"] for r in drawn}),
                             "drw_borrowed": ", ".join(map(str, sorted({r["provenance"]["seed"] for r in borrowed})))}
    fixed = [r for r in main if (r["task"], r["provenance"].get("level", 0)) in cells]
    for key, records in (("drw", drawn), ("drw_fixed", fixed)):
        pairs = [p for p in paired_comparison(records, a, strongest) if (p["task"], p["level"]) in cells]
        sd = [100 * r["std"] for r in summarize_records(records) if r["importance"] == a and r["level"]]
        facts.update({f"{key}_behind": sum(p["mean_diff"] < 0 for p in pairs),
                      f"{key}_losses": sum(p["verdict"] == "loss" for p in pairs),
                      f"{key}_pairs": len(pairs),
                      f"{key}_diff": 100 * float(np.mean([p["mean_diff"] for p in pairs])) if pairs else np.nan,
                      f"{key}_sd": float(np.median(sd)) if sd else np.nan})
    controls = [r for r in fixed if r["provenance"].get("importance") == "random"]
    vs_random = paired_comparison(drawn + controls, a, "random")
    facts["drw_ahead_random"] = sum(p["mean_diff"] > 0 for p in vs_random)
    facts["drw_random_cells"] = len(vs_random)
    facts["drw_text"] = draw_text(facts, a, strongest)
    return facts


def draw_text(facts: dict[str, Any], a: str = "merge_radius", strongest: str = STRONGEST) -> str:
    """The sentence that states :func:`draw_facts` (Markdown)."""
    if not facts["drw_pairs"]:
        return (f"The corpus-draw ablation ({DRAW_SET}) has no records with both {prose_name(a)} and "
                f"{prose_name(strongest)} yet.")
    names = {"a": prose_name(a).replace("r_f", "$r_f$"), "b": prose_name(strongest)}
    opening = ("Nor does it rest on one corpus draw" if 2 * facts["drw_behind"] > facts["drw_pairs"]
               else "The corpus draw does matter")
    return opening + (
        f": with the scoring corpus drawn per seed ({facts['drw_tasks']}, level {facts['drw_levels']}, "
        f"{facts['drw_seeds']} seeds" + (f"; seed {facts['drw_borrowed']} draws the main protocol's corpus, so its "
                                         "records stand in" if facts["drw_borrowed"] else "") + f"), "
        f"{names['a']} is behind {names['b']} in {facts['drw_behind']} of "
        f"{facts['drw_pairs']} cells (mean difference {facts['drw_diff']:+.1f}, {facts['drw_losses']} "
        f"significant), against {facts['drw_fixed_behind']} of {facts['drw_fixed_pairs']} with one draw "
        f"({facts['drw_fixed_diff']:+.1f}); it is ahead of random neurons in {facts['drw_ahead_random']} of "
        f"{facts['drw_random_cells']} cells, and its spread over seeds is {facts['drw_sd']:.1f} points "
        f"(median standard deviation) against {facts['drw_fixed_sd']:.1f} with one draw.")


def pooled_claim(pooled: dict[str, Any], by_task: str, alpha: float = 0.05) -> str:
    """The sentence a pooled comparison of ``a`` against ``b`` (:func:`pooled_comparison`) supports, as
    strong as its conservative test (the sign test over (task, level) cells) allows, naming the task
    that carries it (``pooled["carrier"]``) beside the per-task breakdown ``by_task``."""
    a, b = prose_name(pooled["a"]), prose_name(pooled["b"])
    carrier = get_task(pooled["carrier"]).dir_name if pooled["carrier"] else None
    p = pooled["p_cells"]
    where = (f"; most of the difference comes from {carrier} ({by_task})" if carrier else
             f", spread over the tasks ({by_task})")
    if p is not None and p < alpha and pooled["cells_ahead"] > pooled["cells_behind"]:
        return f"Across cells, {a} is ahead of {b} beyond chance (p = {p:.2g}){where}."
    if p is not None and p < alpha:
        return f"Across cells, {a} is behind {b} beyond chance (p = {p:.2g}){where}."
    shown = "n/a" if p is None else f"{p:.2g}"
    if pooled["cells_ahead"] <= pooled["cells_behind"]:
        return f"Across cells, {a} is not ahead of {b} (p = {shown}){where}."
    lead = f"Across cells, the conservative test, {a}'s lead over {b} is not significant (p = {shown}){where}"
    return f"{lead}: on this evidence the lead is a finding of {carrier}, not of every task." if carrier else f"{lead}."


def by_task_phrase(per_task: dict[str, dict[str, Any]], reverse: bool = False) -> str:
    """A pooled comparison's per-task breakdown as "STS-B 3 of 3 cells ahead (+16.9), CoLA 1 of 3
    (-1.5), ..." (mean differences x 100), largest difference first; ``reverse``: counted and signed for
    the second score of the comparison (cells where it is ahead)."""
    key, sign = ("behind", -1) if reverse else ("ahead", 1)
    order = sorted(per_task, key=lambda t: -abs(per_task[t]["mean_diff"]))
    return ", ".join(f"{get_task(t).dir_name} {per_task[t][key]} of {per_task[t]['cells']}"
                     f"{' cells ahead' if i == 0 else ''} ({100 * sign * per_task[t]['mean_diff']:+.1f})"
                     for i, t in enumerate(order))


def findings_text(records: list[dict[str, Any]], floors: dict[str, float], level: int = 2) -> str:
    """The README's two sentences of findings, computed from one protocol's records."""
    f = glue_facts(records, floors)
    if not f["n_learn"]:
        return ("Nothing can be concluded from these records yet: on none of their tasks does the unpruned model score "
                "more than a point above the majority class.")
    kept, full = f.get(f"kept_L{level}"), f.get("full_neurons")

    def avg(score: str) -> str:
        if f"avg_{score}_L{level}" not in f:
            return "not run"
        bad, runs = f.get(f"degenerate_{score}_L{level}", 0), f.get(f"runs_{score}_L{level}", 0)
        note = f", {bad} of {runs} runs predicting one class" if bad else ""
        return f"{f[f'avg_{score}_L{level}']:.1f}{note}"

    first = (f"Over the {f['n_learn']} tasks that learn ({f['tasks_learn']}), keeping {kept} of {full} FFN neurons "
             f"per layer (level {level}) by r_f gives a mean dev score of {avg('merge_radius')} (unpruned "
             f"{f['avg_unpruned']:.1f}), ahead of random neurons ({avg('random')}) and weight magnitude "
             f"({avg('magnitude')}) but behind plain activation variance ({avg(STRONGEST)}).")
    def carried(c: str) -> str:
        who = f[f"carrier_{c}"]
        return f"most of the difference from {who}" if who != "no single task" else "spread over the tasks"

    second = (f"Pooled over levels {f['levels']}, r_f is ahead of random neurons in {f['ahead_random']} of "
              f"{f['cells_random']} (task, level) cells (sign test over cells, p = {f['p_cells_random']:.2g}; "
              f"{carried('random')}: {f['bytask_random']}), and activation variance is ahead of r_f in "
              f"{f[f'behind_{STRONGEST}']} of {f[f'cells_{STRONGEST}']} (p = {f[f'p_cells_{STRONGEST}']:.2g}; "
              f"{carried(STRONGEST)}: {f[f'bytask_{STRONGEST}_ahead']}).")
    return first + " " + second


def posttrain_facts(df, floors: dict[str, float], a: str = "merge_radius",
                    strongest: str = STRONGEST) -> dict[str, Any]:
    """Every number the retraining-free chapter states, by name (metric values x 100).

    Parameters
    ----------
    df : the table(s) of :func:`obce.analysis.posttrain.load_table`
    floors : task -> majority-class main metric (0-1 scale)

    Returns
    -------
    dict: ``pt_curve`` (:func:`curve_text`), ``pt_tasks``, ``pt_n_tasks``, ``pt_cells``, ``pt_draws``; read
    at the levels' keep fractions only (:func:`obce.analysis.posttrain.at_levels`), per level ``k`` and
    compensation
    ``c``: ``pt_best_L{k}_{c}`` (the score with the best mean over the tasks that learn) and its mean
    ``pt_best_mean_L{k}_{c}``, ``pt_a_L{k}_{c}`` (r_f's mean), ``pt_var_L{k}_{c}``; ``pt_unpruned``;
    ``pt_comp_gain_{c}`` the mean gain of compensation ``c`` over none (all scores, levels and tasks);
    ``pt_same_best`` how many levels keep their best score under every compensation; r_f against
    ``strongest`` across draws: ``pt_wins``, ``pt_losses``, ``pt_ties``, ``pt_cells_paired``; the median
    standard deviation over draws ``pt_sd_draws``.
    """
    from .posttrain import at_levels, draw_verdicts, learned, level_means, spread

    learn = learned(df, floors)
    facts: dict[str, Any] = {"pt_curve": curve_text(df),
                             "pt_tasks": ", ".join(get_task(t).dir_name for t in learn) or "none yet",
                             "pt_n_tasks": len(learn), "pt_cells": int(len(df)),
                             "pt_draws": int(df["draw"].max() + 1) if len(df) else 0}
    # every name the chapter uses exists, "not run" / NaN until the table holds its cells
    for k in (1, 2, 3):
        for comp in ("none", "bias", "ls"):
            facts.update({f"pt_best_L{k}_{comp}": "not run", f"pt_best_mean_L{k}_{comp}": float("nan"),
                          f"pt_a_L{k}_{comp}": float("nan"), f"pt_var_L{k}_{comp}": float("nan")})
    facts.update({"pt_comp_gain_bias": float("nan"), "pt_comp_gain_ls": float("nan"), "pt_same_best": 0,
                  "pt_levels": 0, "pt_unpruned": float("nan")})
    if not learn:
        facts.update({"pt_cells_paired": 0, "pt_wins": 0, "pt_losses": 0, "pt_ties": 0, "pt_sd_draws": float("nan")})
        return facts
    means = level_means(df, learn)
    if len(means):
        facts["pt_unpruned"] = float(means["unpruned"].iloc[0])
    levels = {0.75: 1, 0.5: 2, 0.25: 3}
    bests = {}
    for (comp, f), row in means.drop(columns="unpruned").iterrows():
        if f not in levels:
            continue
        k = levels[f]
        best = row.idxmax()
        bests.setdefault(k, set()).add(best)
        facts[f"pt_best_L{k}_{comp}"] = prose_name(best)
        facts[f"pt_best_mean_L{k}_{comp}"] = float(row.max())
        facts[f"pt_a_L{k}_{comp}"] = float(row.get(a, float("nan")))
        facts[f"pt_var_L{k}_{comp}"] = float(row.get(strongest, float("nan")))
    facts["pt_same_best"] = sum(len(v) == 1 for v in bests.values())
    facts["pt_levels"] = len(bests)
    flat = means.drop(columns="unpruned").stack()
    if "none" in flat.index.get_level_values(0):
        for comp in sorted(set(flat.index.get_level_values(0)) - {"none"}):
            gain = (flat.loc[comp] - flat.loc["none"]).mean()
            facts[f"pt_comp_gain_{comp}"] = float(gain)
    levels_only = at_levels(df)
    verdicts = draw_verdicts(levels_only[levels_only["task"].isin(learn) | (levels_only["importance"] == "none")], a=a)
    vs = verdicts[verdicts["b"] == strongest] if len(verdicts) else verdicts
    facts["pt_cells_paired"] = int(len(vs))
    for name, word in (("pt_wins", "win"), ("pt_losses", "loss"), ("pt_ties", "tie")):
        facts[name] = int((vs["verdict"] == word).sum()) if len(vs) else 0
    sd = spread(levels_only)
    facts["pt_sd_draws"] = float(sd["std_draws"].median()) if len(sd) else float("nan")
    return facts


def curve_text(df) -> str:
    """A sentence naming the keep fractions a retraining-free table holds beyond the levels' (a finer
    curve), per task, with their compensations (Markdown); empty when it holds none."""
    from ..pruning import LEVEL_FRACTIONS

    extra = df[~df["keep_fraction"].isin(list(LEVEL_FRACTIONS)) & (df["importance"] != "none")] if len(df) else df
    if not len(extra):
        return ""
    comps = {"none": "without compensation", "bias": "with bias compensation", "ls": "with the least-squares refit"}
    parts = []
    for task, rows in extra.groupby("task"):
        fractions = sorted(set(rows["keep_fraction"]), reverse=True)
        how = " and ".join(comps.get(c, c) for c in sorted(set(rows["compensation"]), key=list(comps).index))
        parts.append(f"{get_task(task).dir_name} also at keep fractions {join_words([f'{f:g}' for f in fractions])} "
                     f"({how}, {rows['draw'].nunique()} draws)")
    levels = join_words([f"{f:g}" for f in sorted(LEVEL_FRACTIONS, reverse=True)])
    return f"The curves run finer on some tasks: {'; '.join(parts)}. The level summaries read {levels} only."


def floor_cells(df, floors: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Per compensation, how many pruned cells of the tasks that learn score at or below the majority
    class (a model that predicts one class, or no better), and how many cells there are."""
    from .posttrain import learned

    learn = learned(df, floors)
    pruned = df[(df["importance"] != "none") & df["task"].isin(learn)]
    low = pruned["main"] <= [100 * floors[t] + 1e-6 for t in pruned["task"]]
    return {c: (int(low[pruned["compensation"] == c].sum()), int((pruned["compensation"] == c).sum()))
            for c in sorted(set(pruned["compensation"]))}


def posttrain_text(df, floors: dict[str, float]) -> str:
    """The README's two sentences on pruning without retraining, computed from the table(s)."""
    f = posttrain_facts(df, floors)
    if not f["pt_n_tasks"]:
        return ("Nothing can be concluded from this table yet: on none of its tasks does the unpruned fine-tuned model "
                "score more than a point above the majority class, so no score's pruning can be told from chance.")
    levels = [k for k in (1, 2, 3) if f"pt_best_L{k}_none" in f]
    best = "; ".join(f"at level {k}, {f[f'pt_best_L{k}_none']} ({f[f'pt_best_mean_L{k}_none']:.1f}; r_f "
                     f"{f[f'pt_a_L{k}_none']:.1f})" for k in levels)
    gains = [(c[len("pt_comp_gain_"):], g) for c, g in f.items() if c.startswith("pt_comp_gain_") and g == g]
    floored = floor_cells(df, floors)
    names = {"ls": "the token-pooled refit", "refit": "the checked refit"}
    gain = " and ".join(f"{g:+.1f} points ({names.get(c, c)}; {floored[c][0]} of {floored[c][1]} of its cells at or "
                        f"below the majority class)" for c, g in gains)
    first = (f"Pruning the fine-tuned model without retraining, the score that keeps the most over the tasks that "
             f"learn ({f['pt_tasks']}; unpruned {f['pt_unpruned']:.1f}) is, {best}.")
    plain = floored.get("none", (0, 0))
    second = (f"Compensation changes the mean over scores, levels and tasks by {gain}, against {plain[0]} of "
              f"{plain[1]} without it, and the best score stays the same under every compensation at "
              f"{f['pt_same_best']} of {f['pt_levels']} levels.")
    return first + " " + second


def explain_facts(depth: dict[str, float], null_ratio: dict[str, float], profile: dict, info_rows: list[dict],
                  stable: dict[str, dict[str, float]], n_texts: int, a: str = "merge_radius",
                  strongest: str = STRONGEST) -> dict[str, str]:
    """The answers of the explainability chapter, one computed sentence or two per question.

    Parameters
    ----------
    depth : score -> Spearman correlation of the score with the layer index (:func:`obce.explain.depth_trend`)
    null_ratio : null corpus kind -> median over layers of (median r_f on it / median r_f on the real corpus)
    profile : :func:`obce.explain.isolation_profile` of all neurons, with ``by_source``
    info_rows : :func:`obce.explain.information_by_score` rows for ``a`` and ``strongest``
    stable : comparison ("draws", "halves", "tasks") -> score -> mean rank correlation over layers
    n_texts : corpus size

    Returns
    -------
    dict: ``ex_where``, ``ex_outliers``, ``ex_sources``, ``ex_information``, ``ex_stability``
    """
    def trend(rho: float) -> str:
        word = "grows" if rho > 0.1 else "shrinks" if rho < -0.1 else "hardly changes"
        return f"{word} with depth (Spearman correlation with the layer index {rho:+.2f})"

    name = prose_name(strongest)
    nulls = " and ".join(f"{r:.2f} times the real one on {kind} words" for kind, r in null_ratio.items())
    where = (f"r_f {trend(depth[a])}, total persistence {trend(depth['total_persistence'])}. "
             f"A layer's median r_f is {nulls} (medians over layers).")
    feats = ", ".join(f"{k[4:].replace('_', ' ')} {v:+.2f}" for k, v in profile.items() if k.startswith("rho_"))
    single = profile["single_share"]
    outliers = (f"For {100 * single:.0f}% of all neurons r_f is the distance from one sentence to the rest of the "
                f"cloud: " + ("r_f mostly measures how far a neuron's most unusual sentence stands out. " if single > 0.5
                              else "r_f is mostly a distance between groups of sentences, not an outlier's. ") +
                f"{profile['isolating_sentences']} of the {n_texts} sentences are isolated at least once; the five "
                f"most isolating ones take {100 * profile['top_share']:.0f}% of the isolations (Spearman correlation "
                f"of a sentence's isolation count with its {feats}).")
    rho_len = profile.get("rho_tokens", 0.0)
    if rho_len > 0.5:
        outliers += (" The sentences that stand out are the long ones: with padding at 0, a longer sentence has "
                     "more non-zero coordinates and lies farther from the rest.")
    shares = "; ".join(f"{src}: {100 * v['corpus_share']:.0f}% of the corpus, {100 * v['isolation_share']:.0f}% of "
                       f"the isolations" for src, v in profile.get("by_source", {}).items())
    info = {}
    for score in (a, strongest):
        rows = [r for r in info_rows if r["score"] == score]
        info[score] = {k: float(np.mean([r[k] for r in rows])) for k in ("top_quarter", "bottom_quarter", "rho")}
    ra, rs = info[a], info[strongest]
    better = "more" if ra["top_quarter"] > ra["bottom_quarter"] else "less"
    versus = "above" if ra["top_quarter"] > rs["top_quarter"] else "below"
    information = (f"The quarter of neurons with the highest r_f is {better} informative than the lowest quarter "
                   f"(mean AUC {ra['top_quarter']:.3f} against {ra['bottom_quarter']:.3f}; Spearman correlation of "
                   f"r_f with the AUC {ra['rho']:+.2f}), and {versus} the top quarter by {name} "
                   f"({rs['top_quarter']:.3f}; correlation {rs['rho']:+.2f}).")
    parts = [f"{what}: r_f {v[a]:.2f}, {name} {v[strongest]:.2f}" for what, v in stable.items()]
    steadier = sum(v[a] < v[strongest] for v in stable.values())
    stability = (f"Mean rank correlation of the scores of one layer across {'; '.join(parts)}. "
                 f"r_f depends more on the data than {name} in {steadier} of {len(stable)} comparisons.")
    draws_gap = stable.get("draws", {a: 1.0, strongest: 1.0})
    meaning = (f"r_f is one edge of a minimum spanning tree, and for {100 * single:.0f}% of the neurons that edge "
               f"joins a single sentence to the rest: a neuron's r_f speaks of its most unusual sentence in this "
               f"corpus. Across corpus draws, r_f keeps a rank correlation of {draws_gap[a]:.2f} and {name} "
               f"{draws_gap[strongest]:.2f}, so " +
               ("an explanation read from r_f depends more on the corpus than one read from the variance; it should "
                "name the corpus it was computed on, as the atlas does." if draws_gap[a] < draws_gap[strongest] else
                "r_f is at least as steady as the variance across corpora."))
    return {"ex_meaning": meaning, "ex_where": where, "ex_outliers": outliers, "ex_sources": shares or "one source only",
            "ex_information": information, "ex_stability": stability}

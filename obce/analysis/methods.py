"""Compression methods side by side: parameters against the GLUE score, at equal budgets.

The records are GLUE records of one fine-tuning protocol: FFN neuron pruning by every importance
score (``obce pipeline`` with ``importances``) and the other methods (``methods``; their
``importance`` is the method's label), so every function of :mod:`obce.analysis.stats` applies to them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data import get_task
from ..errors import ObceInputError
from ..results import main_value, run_key
from .names import join_words, method_name, prose_name
from .stats import learned_tasks, paired_comparison


def own_size_labels(records: list[dict[str, Any]]) -> set[str]:
    """The labels of the methods whose records have a size of their own (``budget: "own"``), not a
    level's budget: they are points of the figure, never in an equal-budget comparison."""
    return {r["provenance"].get("importance") for r in records if r["provenance"].get("budget") == "own"}


def method_points(records: list[dict[str, Any]], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """One point per (method, level) that ran on every one of ``tasks`` with the same seeds: the
    encoder's parameters (exact; for masks the weights left), the mean over tasks of each task's
    mean main metric (x 100), and the standard deviation over seeds of the per-seed task average.

    Returns
    -------
    list of dict: ``method``, ``level``, ``parameters``, ``score``, ``seed_std``, ``seeds``,
    ``train_time_s`` (mean wall time of a run: compressing, training and evaluating), ``own`` (a size
    of its own rather than the level's budget), ``cells`` (the runs averaged) and ``degenerate`` (how
    many of them predicted one class: :func:`is_degenerate`)
    """
    if not tasks:
        raise ObceInputError("method_points needs at least one task")
    own = own_size_labels(records)
    by_run = {run_key(r): r for r in records if r["task"] in tasks}
    groups: dict[tuple[str, int], dict[int, dict[str, dict]]] = {}
    for (task, method, level, seed), rec in by_run.items():
        groups.setdefault((method, level), {}).setdefault(seed, {})[task] = rec
    points = []
    for (method, level), seeds in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        complete = {s: runs for s, runs in seeds.items() if set(runs) == set(tasks)}
        if not complete:
            continue
        per_seed = [np.mean([_main(runs[t]) for t in tasks]) for runs in complete.values()]
        recs = [r for runs in complete.values() for r in runs.values()]
        params = {r["provenance"].get("parameters") or r["provenance"].get("parameters_full") for r in recs}
        points.append(dict(method=method, level=level, parameters=int(max(params)),
                           score=100 * float(np.mean(per_seed)),
                           seed_std=100 * float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"),
                           seeds=len(per_seed), own=method in own, cells=len(recs),
                           degenerate=sum(is_degenerate(r) for r in recs),
                           train_time_s=float(np.mean([r["provenance"]["wall_time_s"] for r in recs]))))
    return points


def equal_budget_verdicts(records: list[dict[str, Any]], tasks: tuple[str, ...], reference: str = "merge_radius",
                          floors: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every method against ``reference`` (OBCE's r_f) at each level, over ``tasks``: the paired
    verdicts per task (:func:`obce.analysis.stats.paired_comparison`, seeds paired) counted as wins, ties and
    losses of the method, and its mean difference (x 100). A method with a matched reference
    (:data:`MATCHED_REFERENCES`, e.g. FFN sub-layer removal against r_f pruned to the count it
    reaches) is compared with that one where its records exist, and the matched reference itself is
    not a row.

    Returns
    -------
    list of dict: ``method``, ``against`` (the reference's label), ``level``, ``tasks``, ``wins``,
    ``ties``, ``losses``, ``mean_diff``
    """
    rows = []
    labels = {run_key(r)[1] for r in records}
    methods = sorted(labels - {reference, "none", *MATCHED_REFERENCES.values()} - own_size_labels(records))
    for m in methods:
        against = MATCHED_REFERENCES.get(m) if MATCHED_REFERENCES.get(m) in labels else reference
        cells = [c for c in paired_comparison([r for r in records if r["task"] in tasks], m, against,
                                              floors=floors) if c["task"] in tasks]
        for level in sorted({c["level"] for c in cells}):
            own = [c for c in cells if c["level"] == level]
            rows.append(dict(method=m, against=against, level=level, tasks=len(own),
                             wins=sum(c["verdict"] == "win" for c in own),
                             ties=sum(c["verdict"] in ("tie", "no learning") for c in own),
                             losses=sum(c["verdict"] == "loss" for c in own),
                             mean_diff=100 * float(np.mean([c["mean_diff"] for c in own]))))
    return rows


#: Methods compared at equal size with a reference of their own rather than r_f at the level's budget:
#: FFN sub-layer removal reaches a whole number of blocks, and r_f pruning matched to that count
#: (``ffn_pruning`` with ``match: layer_removal``) is its fair comparison.
MATCHED_REFERENCES = {"layer_removal": "merge_radius_at_layer_removal"}


def is_degenerate(record: dict[str, Any]) -> bool:
    """Whether a GLUE record's model predicted one class for every dev example (or a constant value):
    its ``degenerate`` field, ``False`` where a record has none."""
    return bool(record.get("degenerate"))


def did_not_learn(point: dict[str, Any]) -> bool:
    """Whether every run averaged into a point (:func:`method_points`) is degenerate: its number is the
    majority class's, not a result, and it is reported as "did not learn", never ranked."""
    return point.get("cells", 0) > 0 and point.get("degenerate", 0) == point["cells"]


def _point_phrase(p: dict[str, Any], size: str = "") -> str:
    if did_not_learn(p):
        return f"{method_name(p['method'])}{size} did not learn (all {p['cells']} runs predict one class)"
    note = f" ({p['degenerate']} of {p['cells']} runs predict one class)" if p.get("degenerate") else ""
    return f"{method_name(p['method'])}{size} {p['score']:.1f}{note}"


def ranking(points: list[dict[str, Any]]) -> str:
    """Points (best first) as the phrase "<method> <score>, <method> <score>, ..." ("nothing yet" when
    empty). A point whose runs are all degenerate is not ranked: it comes last, as "<method> did not
    learn"; one with some degenerate runs says how many."""
    learned = [p for p in points if not did_not_learn(p)]
    return ", ".join(_point_phrase(p) for p in [*learned, *(p for p in points if did_not_learn(p))]) or "nothing yet"


def methods_facts(points: list[dict[str, Any]], verdicts: list[dict[str, Any]], reference: str = "merge_radius",
                  others: tuple[str, ...] = ("layer_removal", "masks", "kronecker", "hash_table",
                                                              "kronecker_task_only")) -> dict[str, Any]:
    """The numbers the comparison chapter states, by name: ``mt_best_L{k}`` (the method with the best
    average at level k) and its score ``mt_best_score_L{k}``; ``mt_ref_L{k}`` r_f's; for each other
    method ``m``: ``mt_{m}_L{k}``, and ``mt_{m}_record`` its wins/ties/losses against r_f (or its
    matched reference, :data:`MATCHED_REFERENCES`) over every
    level as a phrase; ``mt_records`` those phrases of the methods that ran, as one sentence;
    ``mt_level2`` every method's and score's level-2 average, best first, as a phrase; ``mt_unpruned``;
    ``mt_levels`` the levels where some other method ran (points with a size of their own are left
    out: :func:`compare_methods` reads them)."""
    facts: dict[str, Any] = {"mt_unpruned": float("nan"), "mt_levels": "none yet"}
    for p in points:
        if p["method"] == "none":
            facts["mt_unpruned"] = p["score"]
    points = [p for p in points if not p.get("own")]
    levels = sorted({p["level"] for p in points if p["method"] in others})
    facts["mt_levels"] = ", ".join(str(k) for k in levels) or "none yet"
    for k in (1, 2, 3):
        at = [p for p in points if p["level"] == k]
        candidates = [p for p in at if not did_not_learn(p)]
        best = max(candidates, key=lambda p: p["score"]) if candidates else None
        facts[f"mt_best_L{k}"] = method_name(best["method"]) if best else "not run"
        facts[f"mt_best_score_L{k}"] = best["score"] if best else float("nan")
        ref = [p["score"] for p in at if p["method"] == reference]
        facts[f"mt_ref_L{k}"] = ref[0] if ref else float("nan")
        for m in others:
            own = [p["score"] for p in at if p["method"] == m]
            facts[f"mt_{m}_L{k}"] = own[0] if own else float("nan")
    for m in others:
        own = [v for v in verdicts if v["method"] == m]
        w, t, lo = (sum(v[key] for v in own) for key in ("wins", "ties", "losses"))
        against = prose_name(own[0]["against"]) if own else "r_f"
        facts[f"mt_{m}_record"] = (f"{w} wins, {t} ties and {lo} losses against {against} over {w + t + lo} "
                                   f"(task, level) cells" if own else "not run yet")
    ran = [m for m in others if any(v["method"] == m for v in verdicts)]
    facts["mt_records"] = ("; ".join(f"{method_name(m)}, {facts[f'mt_{m}_record']}" for m in ran) + "."
                           if ran else "No other method has run yet.")
    at2 = sorted((p for p in points if p["level"] == 2), key=lambda p: -p["score"])
    facts["mt_level2"] = ranking(at2)
    return facts


def _main(record: dict[str, Any]) -> float:
    return main_value(record)


def widest_comparison(records: list[dict[str, Any]], tasks: tuple[str, ...], methods: tuple[str, ...],
                      left_out: dict[str, tuple[str, ...]] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The comparison a partial grid allows: the tasks every method covers (:func:`covered_tasks`),
    except that a method run on fewer tasks than the others cover together is left out (and, with
    ``left_out``, entered there with its tasks) instead of shrinking everybody's average to its
    tasks. One at a time, the method whose absence adds the most tasks is left out, while it adds some.

    Returns
    -------
    (tasks, methods) : the tasks every kept method covers, and the kept methods
    """
    kept = list(methods)
    common = covered_tasks(records, tasks, tuple(kept))
    while len(kept) > 1:
        gains = {m: covered_tasks(records, tasks, tuple(k for k in kept if k != m)) for m in kept}
        best = max(kept, key=lambda m: (len(gains[m]), -kept.index(m)))
        if len(gains[best]) <= len(common):
            break
        kept.remove(best)
        common = gains[best]
        if left_out is not None:
            left_out[best] = covered_tasks(records, tasks, (best,))
    return common, tuple(kept)


def covered_tasks(records: list[dict[str, Any]], tasks: tuple[str, ...], methods: tuple[str, ...]) -> tuple[str, ...]:
    """The tasks of ``tasks`` on which every one of ``methods`` has run every level it has run anywhere:
    the tasks a partial grid lets the methods be averaged over at every level."""
    levels: dict[str, set] = {}
    for r in records:
        p = r["provenance"]
        if p.get("importance") in methods:
            levels.setdefault(p["importance"], set()).add((r["task"], p.get("level")))
    every = {m: {lv for _, lv in pairs} for m, pairs in levels.items()}
    return tuple(t for t in tasks if all(m in levels and all((t, lv) in levels[m] for lv in every[m])
                                         for m in methods))


def method_table(points: list[dict[str, Any]], records: list[dict[str, Any]]):
    """The figure's points as a table, with each (method, level)'s mean size on disk (MB, where the
    records measured it; for learned masks the weights left plus the masks' storage, one bit per
    weight), mean run time, and how many of its runs are degenerate ("k of n"), rows ordered by budget
    (levels 1-3, then own sizes) then score."""
    import pandas as pd

    disk: dict[tuple[str, int], list[int]] = {}
    for r in records:
        size = r["provenance"].get("size_with_masks_bytes") or r["provenance"].get("size_on_disk_bytes")
        if size:
            disk.setdefault(run_key(r)[1:3], []).append(size)
    rows = [{"budget": "own" if p.get("own") else f"level {p['level']}" if p["level"] else "full", "method": method_name(p["method"]), "parameters (M)": p["parameters"] / 1e6,
             "GLUE average": p["score"], "sd over seeds": p["seed_std"], "seeds": p["seeds"],
             "disk (MB)": np.mean(disk[p["method"], p["level"]]) / 1e6 if (p["method"], p["level"]) in disk
             else float("nan"), "run time (min)": p["train_time_s"] / 60,
             "degenerate runs": f"{p.get('degenerate', 0)} of {p.get('cells', p['seeds'])}"} for p in points]
    return pd.DataFrame(rows).sort_values(["budget", "GLUE average"], ascending=[True, False]).reset_index(drop=True)


def removed_blocks(records: list[dict[str, Any]], label: str = "layer_removal") -> str:
    """How many FFN blocks the layer-removal records removed at each level, as a phrase
    ("1, 3 and 4 of the 6 blocks at levels 1, 2 and 3"); "not run yet" without records."""
    found: dict[int, tuple[int, int]] = {}
    for r in records:
        p = r["provenance"]
        if p.get("importance") == label and isinstance(p.get("intermediate_size"), list):
            found[p["level"]] = (len(p["removed_layers"]), len(p["intermediate_size"]))
    if not found:
        return "not run yet"
    levels = sorted(found)
    return (f"{join_words([str(found[k][0]) for k in levels])} of the {found[levels[0]][1]} blocks at "
            f"level{'s' if len(levels) > 1 else ''} {join_words([str(k) for k in levels])}")


def budget_offsets(records: list[dict[str, Any]], label: str = "layer_removal") -> str:
    """How far a method's records land from the budget they aimed at, per level, as a phrase
    ("+2.8%, +0.0% and +3.4% of the level's budget at levels 1, 2 and 3"); "not run yet" without records."""
    found: dict[int, list[float]] = {}
    for r in records:
        p = r["provenance"]
        if p.get("importance") == label and p.get("budget_parameters") and p.get("budget") != "own":
            found.setdefault(p["level"], []).append(p["parameters"] / p["budget_parameters"] - 1)
    if not found:
        return "not run yet"
    levels = sorted(found)
    return (f"{join_words([f'{100 * np.mean(found[k]):+.1f}%' for k in levels])} of the level's budget at "
            f"level{'s' if len(levels) > 1 else ''} {join_words([str(k) for k in levels])}")


def general_distillation_cost(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the general distillation cost, from the records that used it (each distinct run once, by its
    cache key): ``mt_gd_students`` (distinct runs), ``mt_gd_rate`` (texts per second, their mean),
    ``mt_gd_minutes`` (minutes of one run, mean), ``mt_gd_steps`` and ``mt_gd_batch`` (of the runs,
    as a phrase where they differ), ``mt_gd_texts`` (the corpus' texts) and ``mt_gd_epoch_minutes``
    (minutes for one pass over the corpus at that rate), ``mt_gd_host`` (the device the records name)."""
    runs: dict[str, tuple[dict, str]] = {}
    for r in records:
        gd = r["provenance"].get("general_distillation")
        if isinstance(gd, dict) and gd.get("texts_per_second") and gd.get("key"):
            runs.setdefault(gd["key"], (gd, str(r["provenance"].get("device", "cpu"))))
    if not runs:
        return dict(mt_gd_students=0, mt_gd_rate=float("nan"), mt_gd_minutes=float("nan"), mt_gd_steps="none",
                    mt_gd_batch="none", mt_gd_texts=0, mt_gd_epoch_minutes=float("nan"), mt_gd_host="none")
    gds = [g for g, _ in runs.values()]
    rate = float(np.mean([g["texts_per_second"] for g in gds]))
    texts = max(g["texts"] for g in gds)

    def phrase(values) -> str:
        return join_words([f"{v:,}" for v in sorted(set(values))])

    return dict(mt_gd_students=len(gds), mt_gd_rate=rate, mt_gd_minutes=float(np.mean([g["seconds"] for g in gds])) / 60,
                mt_gd_steps=phrase(g["steps"] for g in gds),
                mt_gd_batch=phrase(g.get("settings", {}).get("batch_size", 0) for g in gds),
                mt_gd_texts=texts, mt_gd_epoch_minutes=texts / rate / 60,
                mt_gd_host=join_words(sorted({d for _, d in runs.values()})))


#: The importance scores the comparison draws beside the other methods, and the methods' labels.
COMPARED_SCORES = ("merge_radius", "activation_variance", "random")
COMPARED_METHODS = ("layer_removal", "merge_radius_at_layer_removal", "masks", "kronecker", "eelbert",
                    "kronecker_19x", "eelbert_3l", "combined", "combined_eelbert", "kronecker_task_only",
                    "kronecker_19x_task_only", "hash_table", "hash_table_1k")


def compare_methods(score_records: list[dict[str, Any]], method_records: list[dict[str, Any]],
                    floors: dict[str, float], scores: tuple[str, ...] = COMPARED_SCORES,
                    methods: tuple[str, ...] = COMPARED_METHODS) -> dict[str, Any]:
    """The comparison the book's chapter 7 and ``obce report --methods`` show, from the records of the
    importance scores (with the unpruned model) and of the other methods (one fine-tuning protocol).

    Parameters
    ----------
    floors : task -> the majority-class main metric (:func:`obce.analysis.stats.majority_floors`)

    Returns
    -------
    dict: ``records`` (those compared), ``tasks`` (the tasks that learn and that every method that ran
    covers, :func:`covered_tasks`), ``points`` (:func:`method_points`), ``verdicts``
    (:func:`equal_budget_verdicts`) and ``facts`` (:func:`methods_facts`, with ``mt_tasks``); and
    the same for level 2 alone and for the sizes of their own alone, which the grid runs first on
    more tasks: ``tasks_l2``, ``points_l2``, ``tasks_own``, ``points_own`` and the facts
    ``mt2_tasks``, ``mt2_order`` (level 2, best first), ``mt2_unpruned``, ``mt_own_tasks``,
    ``mt_own`` (their averages and sizes, smallest first), ``mt_own_unpruned``, and ``mt2_floor`` and
    ``mt_own_floor``: the majority-class prediction's average over the same tasks (x 100)
    """
    records = [r for r in [*score_records, *method_records]
               if r["provenance"].get("importance", "none") in ("none", *scores, *methods)]
    ran = tuple(m for m in methods if any(r["provenance"].get("importance") == m for r in records))
    own = own_size_labels(records)  # points where they cover the tasks, but never what sets them
    learned = learned_tasks(score_records, floors)
    partial: dict[str, tuple[str, ...]] = {}
    tasks, kept = widest_comparison(records, learned, tuple(m for m in ran if m not in own), partial)
    records = [r for r in records if r["provenance"].get("importance") not in partial or
               r["provenance"].get("importance") in own]
    if not tasks:
        raise ObceInputError(f"no task that learns has records of every method that ran ({', '.join(ran)}) "
                             "and of the scores")
    points = method_points(records, tasks)
    verdicts = equal_budget_verdicts(records, tasks, floors=floors)
    facts = methods_facts(points, verdicts)
    facts["mt_tasks"] = join_words([get_task(t).dir_name for t in tasks])
    # level 2 alone, and the sizes of their own alone: the clearest comparisons, run first on more tasks
    views = {}
    for name, keep in (("l2", lambda r: r["provenance"].get("level", 0) in (0, 2) and
                        r["provenance"].get("importance") not in own),
                       ("own", lambda r: r["provenance"].get("level", 0) == 0 or r["provenance"].get("importance") in own)):
        recs = [r for r in records if keep(r)]
        labels = tuple(m for m in ran if any(r["provenance"].get("importance") == m for r in recs))
        view_tasks, kept = widest_comparison(recs, learned, labels, partial) if labels else ((), ())
        recs = [r for r in recs if r["provenance"].get("importance") not in set(labels) - set(kept)]
        views[name] = (view_tasks, method_points(recs, view_tasks) if view_tasks else [])
        if name == "l2":
            l2_records = recs
    (tasks2, points2), (tasks_own, points_own) = views["l2"], views["own"]
    ranked = sorted((p for p in points2 if p["level"] == 2), key=lambda p: -p["score"])
    unpruned = {k: next((p["score"] for p in pts if p["method"] == "none"), float("nan"))
                for k, pts in (("l2", points2), ("own", points_own))}
    floor = {k: 100 * float(np.mean([floors[t] for t in ts])) if ts else float("nan")
             for k, ts in (("l2", tasks2), ("own", tasks_own))}
    facts.update(mt2_floor=floor["l2"], mt_own_floor=floor["own"])
    facts["mt_partial"] = ("Run so far on fewer tasks, and so left out of these averages: " + join_words(
        [f"{method_name(m)} ({join_words([get_task(t).dir_name for t in ts]) or 'no task that learns'})"
         for m, ts in partial.items()]) + "." if partial else "Every method that ran is in these averages.")
    facts.update(level_breakdown(l2_records, tasks2, level=2, prefix="mt2"))
    facts.update(moonshot(points, join_words([get_task(t).dir_name for t in tasks])))
    facts.update(mt2_tasks=join_words([get_task(t).dir_name for t in tasks2]) or "no task yet",
                 mt2_order=ranking(ranked),
                 mt2_unpruned=unpruned["l2"], mt_own_unpruned=unpruned["own"],
                 mt_own_tasks=join_words([get_task(t).dir_name for t in tasks_own]) or "no task yet",
                 mt_own="; ".join(_point_phrase(p, f" ({p['parameters'] / 1e6:.2f}M parameters)")
                                  for p in sorted((p for p in points_own if p["own"]),
                                                  key=lambda p: p["parameters"])) or "none yet")
    return dict(records=records, tasks=tasks, points=points, verdicts=verdicts, facts=facts, tasks_l2=tasks2,
                points_l2=points2, tasks_own=tasks_own, points_own=points_own)


def _leader(points: list[dict[str, Any]], level: int) -> dict[str, Any] | None:
    at = [p for p in points if p["level"] == level and not did_not_learn(p)]
    return max(at, key=lambda p: p["score"]) if at else None


def level_breakdown(records: list[dict[str, Any]], tasks: tuple[str, ...], level: int = 2,
                    prefix: str = "mt2") -> dict[str, str]:
    """The per-task view beside a ranking pooled over ``tasks`` at ``level``: which method leads on each
    task (``<prefix>_by_task``), and whether the pooled leader's first place rests on one task
    (``<prefix>_carrier``: the leader without each task in turn).

    Returns
    -------
    dict of str to str (phrases for the chapter and the README)
    """
    if not tasks:
        return {f"{prefix}_by_task": "no task yet", f"{prefix}_carrier": ""}
    pooled = _leader(method_points(records, tasks), level)
    leaders = {t: _leader(method_points(records, (t,)), level) for t in tasks}
    by_task = "; ".join(f"on {get_task(t).dir_name} {method_name(p['method'])} {p['score']:.1f}"
                        for t, p in leaders.items() if p)
    carrier = ""
    if pooled and len(tasks) > 1:
        without = {t: _leader(method_points(records, tuple(x for x in tasks if x != t)), level) for t in tasks}
        rests = [t for t, p in without.items() if p and p["method"] != pooled["method"]]
        name = method_name(pooled["method"])
        carrier = (f"{name}'s first place rests on {join_words([get_task(t).dir_name for t in rests])} (without "
                   f"{'it' if len(rests) == 1 else 'any one of them'}, "
                   f"{join_words(sorted({method_name(without[t]['method']) for t in rests}))} leads)" if rests else
                   f"{name} leads on every average that leaves one task out")
    return {f"{prefix}_by_task": by_task or "no method learned", f"{prefix}_carrier": carrier}


def moonshot(points: list[dict[str, Any]], tasks: str, share: float = 0.97,
             combined: tuple[str, ...] = ("combined", "combined_eelbert")) -> dict[str, Any]:
    """The smallest model that keeps ``share`` of the unpruned average (:func:`method_points` over one
    set of tasks, named in ``tasks``), and whether the combined method reaches it: facts
    ``mt_moon`` (a sentence), ``mt_moon_params`` (M) and ``mt_moon_share`` (x 100). A point whose runs
    all predict one class never qualifies."""
    unpruned = next((p["score"] for p in points if p["method"] == "none"), float("nan"))
    target = share * unpruned
    keep = sorted((p for p in points if p["method"] != "none" and not did_not_learn(p) and p["score"] >= target),
                  key=lambda p: p["parameters"])
    if unpruned != unpruned:
        return {"mt_moon": "There is no unpruned model to measure 97% of yet.", "mt_moon_params": float("nan"),
                "mt_moon_share": 100 * share}
    best = keep[0] if keep else None
    level = lambda p: "its own size" if p.get("own") else f"level {p['level']}'s budget"  # noqa: E731
    first = (f"The smallest model that keeps {100 * share:.0f}% of the unpruned average over {tasks} "
             f"({target:.1f} of {unpruned:.1f}) is {method_name(best['method'])} at {level(best)}: "
             f"{best['parameters'] / 1e6:.2f}M encoder parameters, {best['score']:.1f}" if best else
             f"No compressed model keeps {100 * share:.0f}% of the unpruned average over {tasks} ({target:.1f} of "
             f"{unpruned:.1f})")
    found = [p for p in points if p["method"] in combined]
    if found:
        parts = [f"{method_name(p['method'])} ({p['parameters'] / 1e6:.2f}M) scores {p['score']:.1f}, "
                 f"{100 * p['score'] / unpruned:.1f}% of the unpruned average"
                 + (" (its runs predict one class)" if did_not_learn(p) else "") for p in found]
        second = "; ".join(parts) + "."
    else:
        second = "The combined method has not run on every one of these tasks yet."
    return {"mt_moon": first + ". " + second, "mt_moon_params": best["parameters"] / 1e6 if best else float("nan"),
            "mt_moon_share": 100 * share}


#: The benchmark of every method's CPU latency (``benchmarks/bench_methods.py``), relative to the project.
LATENCY_RECORD = "benchmarks/results/methods_inference-cpu.json"


def measured_latencies(root=None) -> list[dict[str, Any]] | None:
    """The rows of the committed latency benchmark (:data:`LATENCY_RECORD` under the project root, or
    under ``root``), ``None`` where it is not there (the figure then shows run time)."""
    from ..files import read_json
    from ..paths import project_root

    path = project_root(root) / LATENCY_RECORD
    return read_json(path)["rows"] if path.is_file() else None


def point_latencies(points: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """The measured CPU latency (ms) of each point's model: ``(method, level) -> ms`` from the rows of
    ``benchmarks/bench_methods.py`` (FFN pruning by any score shares the ``ffn_pruning`` row of its
    level, a size of its own is the row of level 0; the unpruned model is ``("none", 0)``). Points with
    no row are left out."""
    from ..scoring import GRADIENT_SCORES, IMPORTANCES

    by = {(r["method"], r["level"]): r["latency_ms"] for r in rows}
    scores = {*IMPORTANCES, *GRADIENT_SCORES}
    out = {}
    for p in points:
        key = ("none", 0) if p["method"] == "none" else (
            ("ffn_pruning", p["level"]) if p["method"] in scores else (p["method"], 0 if p.get("own") else p["level"]))
        if key in by:
            out[p["method"], p["level"]] = float(by[key])
    return out


def methods_findings(facts: dict[str, Any]) -> str:
    """The README's two sentences on the other methods, from :func:`compare_methods`'s level-2 and
    own-size facts."""
    return (f"At the parameter budget of OBCE level 2, averaged over {facts['mt2_tasks']} with MiniLM (unpruned "
            f"{facts['mt2_unpruned']:.1f}, majority class {facts['mt2_floor']:.1f}), the order is {facts['mt2_order']}; "
            f"by task, the best is {facts['mt2_by_task']}, and {facts['mt2_carrier']}. "
            f"Far smaller, over {facts['mt_own_tasks']} (unpruned {facts['mt_own_unpruned']:.1f}, majority class "
            f"{facts['mt_own_floor']:.1f}): {facts['mt_own']}.")

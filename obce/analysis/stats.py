"""Statistics over GLUE records: summaries over seeds, paired and pooled comparisons, the tasks a
model learns, and the majority-class floors every comparison is read against.

Every function takes records as :func:`obce.results.load_records` gives them (validated, one
fine-tuning protocol, one record per run); metric values are on the 0-1 scale.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from ..data import get_task
from ..results import check_one_protocol, check_one_run_each, main_value, run_key

__all__ = ["LEARNING_MARGIN", "carrier", "controls_of", "degenerate_runs", "learned_tasks", "level_averages", "main_metric_by_run",
           "majority_baseline", "majority_floors", "paired_comparison", "pooled_comparison", "summarize_records"]

#: how far above the majority-class baseline (main metric) a model must score to count as having learned a task
LEARNING_MARGIN = 0.01


def majority_baseline(task: str, glue_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Dev metrics of always predicting the most frequent training label (the mean score for
    STS-B): what a fine-tuned model scores when it has learned nothing of the task. A correlation of
    these constant predictions is undefined; its floor is 0 (they correlate with nothing). Where only
    the embedded sample is at hand, the full splits' label counts (:data:`obce.data.FULL_LABEL_COUNTS`)
    give the same floors as the full files."""
    from ..data import FULL_LABEL_COUNTS, glue_root, is_sample, load_glue
    from ..glue import compute_metrics

    info = get_task(task)
    if is_sample(glue_root(glue_dir)) and info.name in FULL_LABEL_COUNTS:
        train_counts, dev_counts = FULL_LABEL_COUNTS[info.name]
        train = np.repeat(list(train_counts), list(train_counts.values()))
        dev = np.repeat(list(dev_counts), list(dev_counts.values()))
    else:
        train = np.asarray(load_glue(task, "train", glue_dir)["label"])
        dev = np.asarray(load_glue(task, "validation", glue_dir)["label"])
    constant = train.mean() if info.is_regression else np.bincount(train.astype(int)).argmax()
    found = compute_metrics(task, np.full(len(dev), constant, dtype=dev.dtype), dev)
    return {k: 0.0 if v is None else v for k, v in found.items()}


def majority_floors(tasks: Iterable[str], glue_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """The main metric of the majority-class prediction (:func:`majority_baseline`) of each task:
    what a model that learned nothing scores, the floor of every comparison.

    Returns
    -------
    dict of task name to float (0-1 scale)
    """
    return {t: majority_baseline(t, glue_dir)[get_task(t).main_metric] for t in sorted(set(tasks))}


def summarize_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each (task, importance, level) main metric.
    Records must share one fine-tuning protocol and be one run each (else ``ObceInputError``)."""
    check_one_protocol(records)
    check_one_run_each(records)
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(run_key(r)[:3], []).append(r)
    rows = []
    for (task, imp, level), recs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        metric = get_task(task).main_metric
        vals = np.array([main_value(r) for r in recs])
        rows.append(dict(task=task, importance=imp, level=level, metric=metric, n=len(vals),
                         mean=float(vals.mean()), std=float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                         seeds=sorted(r["provenance"]["seed"] for r in recs),
                         parameters=recs[0]["provenance"].get("parameters"),
                         intermediate_size=recs[0]["provenance"].get("intermediate_size")))
    return rows


def learned_tasks(records: list[dict[str, Any]], floors: dict[str, float],
                  margin: float = LEARNING_MARGIN) -> tuple[str, ...]:
    """The tasks, sorted, whose unpruned model's mean main metric is more than ``margin`` above its
    majority-class baseline (``floors``: task -> main metric): the tasks a comparison can speak to."""
    return tuple(r["task"] for r in summarize_records(records)
                 if r["importance"] == "none" and r["mean"] > floors[r["task"]] + margin)


def level_averages(records: list[dict[str, Any]], tasks: tuple[str, ...]) -> dict[tuple[str, int], float]:
    """Mean over ``tasks`` of each (importance, level)'s main-metric mean (0-1 scale), for the
    (importance, level) pairs run on every one of those tasks; the unpruned model at level 0."""
    rows = [r for r in summarize_records(records) if r["task"] in tasks]
    means: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        means.setdefault((r["importance"], r["level"]), {})[r["task"]] = r["mean"]
    return {key: float(np.mean(list(v.values()))) for key, v in means.items() if set(v) == set(tasks)}


def main_metric_by_run(records: list[dict[str, Any]]) -> dict[tuple[str, str, int, int], float]:
    """Each run's main metric, keyed by :func:`run_key`; the records must share one fine-tuning
    protocol and be one run each (else ``ObceInputError``)."""
    check_one_protocol(records)
    check_one_run_each(records)
    return {run_key(r): main_value(r) for r in records}


def paired_comparison(records: list[dict[str, Any]], a: str, b: str, alpha: float = 0.05,
                      floors: dict[str, float] | None = None,
                      margin: float = LEARNING_MARGIN) -> list[dict[str, Any]]:
    """Per (task, level): mean difference a - b of the main metric over seeds both ran, the paired
    t-test p-value (None with fewer than 2 pairs), and a verdict: ``win``/``loss`` when p < alpha,
    else ``tie`` (the difference is within seed noise); ``no learning`` when ``floors`` (main
    metric of the majority-class prediction per task) is given and both means are within ``margin``
    of it, so neither model learned the task."""
    from scipy.stats import ttest_rel

    index = main_metric_by_run(records)
    out = []
    for task, level in sorted({(k[0], k[2]) for k in index if k[1] == a}):
        seeds = sorted(k[3] for k in index if k[:3] == (task, a, level) and (task, b, level, k[3]) in index)
        if not seeds:
            continue
        x = np.array([index[task, a, level, s] for s in seeds])
        y = np.array([index[task, b, level, s] for s in seeds])
        p = float(ttest_rel(x, y).pvalue) if len(seeds) > 1 and np.ptp(x - y) > 0 else None
        diff = float((x - y).mean())
        significant = p is not None and p < alpha
        verdict = ("win" if diff > 0 else "loss") if significant else "tie"
        if floors is not None and task in floors and max(x.mean(), y.mean()) <= floors[task] + margin:
            verdict = "no learning"
        out.append(dict(task=task, level=level, a=a, b=b, n=len(seeds), mean_diff=diff,
                        wins=int((x > y).sum()), p_value=p, verdict=verdict))
    return out


def pooled_comparison(records: list[dict[str, Any]], a: str, b: str, tasks: tuple[str, ...] | None = None,
                      levels: tuple[int, ...] | None = None) -> dict[str, Any]:
    """``a`` against ``b`` pooled over every (task, level, seed) both ran, restricted to ``tasks`` and
    ``levels`` when given: how many paired runs ``a`` won and lost, the two-sided sign test of those
    (scale-free, so tasks with different metrics pool), and in how many (task, level) cells the mean
    over seeds favours ``a``, with the sign test over cells. Three seeds per cell rarely make one
    cell significant; the pooled tests ask whether the same direction recurs across cells. The runs
    of one cell share the neurons kept (the scores are seed-free except ``random``), so they are not
    independent: the test over cells is the conservative one.

    Returns
    -------
    dict with a, b, pairs, wins, losses (equal pairs count in neither), p_sign (None without a
    decided pair), cells, cells_ahead, cells_behind, p_cells, tasks, levels
    """
    from scipy.stats import binomtest

    index = main_metric_by_run(records)
    keep = [k for k in index if k[1] == a and (tasks is None or k[0] in tasks) and (levels is None or k[2] in levels)
            and (k[0], b, k[2], k[3]) in index]
    diffs = {k: index[k] - index[k[0], b, k[2], k[3]] for k in keep}
    wins, losses = sum(d > 0 for d in diffs.values()), sum(d < 0 for d in diffs.values())
    cells: dict[tuple[str, int], list[float]] = {}
    for k, d in diffs.items():
        cells.setdefault((k[0], k[2]), []).append(d)
    ahead = int(sum(np.mean(v) > 0 for v in cells.values()))
    behind = int(sum(np.mean(v) < 0 for v in cells.values()))

    def sign_test(k: int, n: int) -> float | None:
        return float(binomtest(k, n).pvalue) if n else None

    per_task = {}
    for t in sorted({t for t, _ in cells}):
        means = [np.mean(v) for (task, _), v in cells.items() if task == t]
        per_task[t] = dict(cells=len(means), ahead=int(sum(m > 0 for m in means)),
                           behind=int(sum(m < 0 for m in means)), mean_diff=float(np.mean(means)))
    return dict(a=a, b=b, pairs=len(diffs), wins=int(wins), losses=int(losses), p_sign=sign_test(wins, wins + losses),
                cells=len(cells), cells_ahead=ahead, cells_behind=behind, p_cells=sign_test(ahead, ahead + behind),
                tasks=sorted({t for t, _ in cells}), levels=sorted({lv for _, lv in cells}), per_task=per_task,
                carrier=carrier(per_task))


def carrier(per_task: dict[str, dict[str, Any]]) -> str | None:
    """The task that carries a pooled comparison (:func:`pooled_comparison`'s ``per_task``): the one
    whose mean difference is largest in size, where the other tasks' mean has the other sign or its
    difference is more than the others' together (most of the pooled difference comes from it);
    ``None`` when the size is spread over tasks.

    Parameters
    ----------
    per_task : task -> dict with ``mean_diff`` (mean over its cells of the mean difference over seeds)
    """
    if len(per_task) < 2:
        return None
    diffs = {t: v["mean_diff"] for t, v in per_task.items()}
    top = max(diffs, key=lambda t: abs(diffs[t]))
    rest = [d for t, d in diffs.items() if t != top]
    rest_mean = float(np.mean(rest))
    if np.sign(rest_mean) != np.sign(diffs[top]) or abs(diffs[top]) > sum(abs(d) for d in rest):
        return top
    return None


def degenerate_runs(records: list[dict[str, Any]], tasks: tuple[str, ...]) -> dict[tuple[str, int], tuple[int, int]]:
    """How many of the runs that an average over ``tasks`` (:func:`level_averages`) takes in predict one
    class: ``(importance, level) -> (degenerate, runs)``."""
    out: dict[tuple[str, int], list[int]] = {}
    for r in records:
        if r["task"] in tasks:
            key = (r["provenance"].get("importance", "none"), r["provenance"].get("level", 0))
            n = out.setdefault(key, [0, 0])
            n[0] += bool(r.get("degenerate"))
            n[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def controls_of(records: list[dict[str, Any]], a: str = "merge_radius") -> tuple[str, ...]:
    """The importance scores in ``records`` other than ``a`` and the unpruned model ("none"):
    random and magnitude first, then the others by name."""
    present = {r["provenance"].get("importance", "none") for r in records} - {a, "none"}
    first = [c for c in ("random", "magnitude") if c in present]
    return (*first, *sorted(present - set(first)))

"""Summaries of the retraining-free protocol's table (``obce posttrain``): curves over keep fractions,
spread over corpus draws and over fine-tuning seeds, paired verdicts across draws, and the largest
pruning that keeps 99% of the unpruned dev metric.

Every function takes the table as a DataFrame from :func:`load_table` (one row per cell, ``main`` the
task's main dev metric x 100).
"""
from __future__ import annotations

import os

import numpy as np

from ..pruning import LEVEL_FRACTIONS
from .names import short_name
from .stats import LEARNING_MARGIN

#: the columns that name a curve (one line of a figure)
CURVE = ["task", "seed", "importance", "compensation"]


def load_table(out: str | os.PathLike):
    """The table of a retraining-free run as a DataFrame (``main`` x 100): the rows of its current
    inputs, one per cell (:func:`obce.results.posttrain_rows`); empty when absent.

    Returns
    -------
    pandas.DataFrame with columns task, seed, draw, importance, keep_fraction, level, compensation,
    intermediate_size, parameters, main, score_s, eval_s (and the others of the rows)
    """
    import pandas as pd

    from ..results import posttrain_rows

    rows = posttrain_rows(out)
    df = pd.DataFrame(rows)
    if len(df):
        # an undefined correlation (constant predictions) counts as the floor, 0; its row says degenerate
        df["main"] = 100 * df["main"].astype(float).fillna(0.0)
    return df


def posttrain_protocol_table(configs: dict[str, dict]):
    """The protocol of one or more tables, from their run records' configs (table directory -> config).

    Returns
    -------
    pandas.DataFrame with columns item and value
    """
    import pandas as pd

    first = next(iter(configs.values()))

    def training(f: dict) -> str:
        size = "whole training set" if f.get("max_train_samples") is None else f"{f['max_train_samples']:,} examples"
        return f"{size}, {f['epochs']} epoch(s), lr {f['lr']}, max_length {f['max_length']}"

    items = [
        ("model", first["model"]),
        ("tasks (table)", "; ".join(f"{', '.join(c['tasks'])} ({d})" for d, c in configs.items())),
        ("fine-tuning, once per task and seed", "; ".join(training(c["finetune"]) for c in configs.values())),
        ("seeds (fine-tuning)", ", ".join(map(str, first["seeds"]))),
        ("corpus draws", f"{len(first['draws'])} draws of {first['corpus']['samples']} training sentences "
                         f"(max_length {first['corpus']['max_length']}); random neurons: another set per draw"),
        ("scores", ", ".join(first["importances"])),
        ("keep fractions", ", ".join(map(str, first["keep_fractions"])) + " (levels 1-3: 0.75, 0.5, 0.25)"),
        ("compensation", "none; bias: the removed neurons' mean output added to the bias; ls: the token-pooled "
                         "refit (least squares of the kept neurons' output weights to the unpruned layer's output "
                         "over all tokens pooled), unchecked; refit: the same, kept only where it lowers the "
                         "end-to-end error on held-out training texts"),
        ("evaluation", "the task's main dev metric x 100, no training after pruning"),
    ]
    return pd.DataFrame(items, columns=["item", "value"])


def unpruned(df) -> dict[tuple[str, int], float]:
    """The unpruned fine-tuned model's main metric (x 100) per (task, seed)."""
    base = df[df["importance"] == "none"]
    return {(t, s): float(m) for t, s, m in zip(base["task"], base["seed"], base["main"])}


def learned(df, floors: dict[str, float], margin: float = LEARNING_MARGIN) -> list[str]:
    """Tasks whose unpruned models (mean over seeds) are more than ``margin`` above the majority class
    (``floors``: task -> main metric on the 0-1 scale)."""
    base = df[df["importance"] == "none"].groupby("task")["main"].mean()
    return sorted(t for t, m in base.items() if m > 100 * (floors[t] + margin))


def curves(df):
    """Mean and standard deviation over corpus draws of every (task, seed, score, compensation, keep
    fraction), the unpruned model at keep fraction 1 in every curve of its task and seed.

    Returns
    -------
    pandas.DataFrame with columns task, seed, importance, compensation, keep_fraction, mean, std, draws
    """
    import pandas as pd

    pruned = df[df["importance"] != "none"]
    out = (pruned.groupby([*CURVE, "keep_fraction"])["main"].agg(["mean", "std", "count"])
           .rename(columns={"count": "draws"}).reset_index())
    base = unpruned(df)
    ends = out[CURVE].drop_duplicates().assign(keep_fraction=1.0, std=0.0, draws=1)
    ends["mean"] = [base.get((t, s), np.nan) for t, s in zip(ends["task"], ends["seed"])]
    return pd.concat([out, ends], ignore_index=True).sort_values([*CURVE, "keep_fraction"], ignore_index=True)


def spread(df):
    """Where the noise is: per (task, score, compensation, level), the standard deviation over corpus
    draws (mean over seeds) and over fine-tuning seeds (of the draw means; NaN with one seed).

    Returns
    -------
    pandas.DataFrame with columns task, importance, compensation, keep_fraction, std_draws, std_seeds,
    seeds, draws
    """
    pruned = df[df["importance"] != "none"]
    keys = ["task", "importance", "compensation", "keep_fraction"]
    per_seed = pruned.groupby([*keys, "seed"])["main"].agg(["mean", "std", "count"]).reset_index()
    return (per_seed.groupby(keys).agg(std_draws=("std", "mean"), std_seeds=("mean", "std"),
                                       seeds=("seed", "nunique"), draws=("count", "max"))
            .reset_index())


def draw_verdicts(df, a: str = "merge_radius", alpha: float = 0.05, floors: dict[str, float] | None = None):
    """``a`` against every other score on the same corpus draws: per (task, compensation, keep
    fraction), the mean difference x 100, the draws ``a`` won, the paired t-test p-value, and the
    verdict (win / loss at p < alpha, else tie; no learning when ``floors`` puts the task's
    unpruned model within a point of the majority class).

    Returns
    -------
    pandas.DataFrame with columns task, compensation, keep_fraction, a, b, n, mean_diff, wins, p_value,
    verdict
    """
    import pandas as pd
    from scipy.stats import ttest_rel

    pruned = df[df["importance"] != "none"]
    learned_tasks = set(learned(df, floors)) if floors else None
    rows = []
    for (task, comp, f), cell in pruned.groupby(["task", "compensation", "keep_fraction"]):
        mine = cell[cell["importance"] == a].set_index(["seed", "draw"])["main"]
        for b in sorted(set(cell["importance"]) - {a}):
            theirs = cell[cell["importance"] == b].set_index(["seed", "draw"])["main"]
            both = mine.index.intersection(theirs.index)
            if not len(both):
                continue
            x, y = mine.loc[both].to_numpy(), theirs.loc[both].to_numpy()
            p = float(ttest_rel(x, y).pvalue) if len(both) > 1 and np.ptp(x - y) > 0 else None
            diff = float((x - y).mean())
            verdict = ("win" if diff > 0 else "loss") if p is not None and p < alpha else "tie"
            if learned_tasks is not None and task not in learned_tasks:
                verdict = "no learning"
            rows.append(dict(task=task, compensation=comp, keep_fraction=f, a=a, b=b, n=len(both),
                             mean_diff=round(diff, 1), wins=int((x > y).sum()),
                             p_value=None if p is None else float(f"{p:.2g}"), verdict=verdict))
    return pd.DataFrame(rows)


def at_levels(df):
    """The rows at the pruning levels' keep fractions (0.75, 0.5, 0.25) and the unpruned rows: a table
    that also holds a finer curve (other keep fractions) reads its level summaries from these only."""
    return df[df["keep_fraction"].isin(list(LEVEL_FRACTIONS)) | (df["importance"] == "none")]


def level_means(df, tasks: list[str]):
    """Per (compensation, level's keep fraction), every score's mean over ``tasks`` of its mean over
    draws and seeds (x 100), and the unpruned models' mean: which score keeps the most without
    retraining. Other keep fractions (a finer curve) are left out (:func:`at_levels`).

    Returns
    -------
    pandas.DataFrame indexed by (compensation, keep_fraction), one column per score, plus ``unpruned``
    """
    sub = at_levels(df[df["task"].isin(tasks)])
    pruned = sub[sub["importance"] != "none"]
    per_task = pruned.groupby(["compensation", "keep_fraction", "importance", "task"])["main"].mean()
    complete = per_task.groupby(level=[0, 1, 2]).filter(lambda s: len(s) == len(tasks))
    table = complete.groupby(level=[0, 1, 2]).mean().unstack("importance").round(1)
    table["unpruned"] = round(float(sub[sub["importance"] == "none"].groupby("task")["main"].mean().mean()), 1)
    return table


def keep_fraction_table(df, tasks: list[str]):
    """:func:`level_means` laid out long for the page: one row per (compensation, score), one column
    per keep fraction (largest first), x 100.

    Returns
    -------
    pandas.DataFrame indexed by (compensation, importance)
    """
    means = level_means(df, tasks).drop(columns="unpruned")
    long = means.stack().unstack("keep_fraction")
    long = long[sorted(long.columns, reverse=True)]
    long.columns = [f"keep {f:g}" for f in long.columns]
    return long.rename(index=short_name, level="importance")


def kept_at_99(df, threshold: float = 0.99, tasks: list[str] | None = None):
    """For every task, score and compensation: the largest fraction of FFN neurons removed (among the
    keep fractions run) at which the mean over draws keeps ``threshold`` of the unpruned dev metric
    (Kwon et al. 2022's criterion); 0 when none does.

    Parameters
    ----------
    tasks : the columns (default every task of ``df``), e.g. the tasks that learn: where the unpruned
        model sits at or below the majority class, "keeping" its score means nothing

    Returns
    -------
    pandas.DataFrame indexed by (importance, compensation), one column per task (0 where no keep
    fraction reaches the threshold)
    """
    tasks = sorted(set(df["task"])) if tasks is None else list(tasks)
    df = df[df["task"].isin(tasks)]
    c = curves(df)
    c = c[c["keep_fraction"] < 1]
    base = unpruned(df)
    ok = c[[m >= threshold * base[(t, s)] for t, s, m in zip(c["task"], c["seed"], c["mean"])]]
    removed = (1 - ok.groupby(["importance", "compensation", "task"])["keep_fraction"].min()).round(2)
    table = removed.unstack("task").reindex(columns=tasks)
    return table.reindex(c.groupby(["importance", "compensation"]).size().index).fillna(0.0)

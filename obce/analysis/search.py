"""Summaries of the retraining-free search protocol's table (``search.jsonl``): Kwon et al.'s framework
driven by each score, at each FLOPs constraint and variant.

Every function takes the table as a DataFrame from :func:`load_search` (one row per cell, ``main`` the
task's main dev metric x 100, an undefined metric counted as 0 and its row flagged degenerate).
"""
from __future__ import annotations

import os

import numpy as np

from .posttrain import learned

__all__ = ["VARIANT_NAMES", "best_at", "load_search", "search_curves", "search_verdicts", "variant_gains"]

#: How the book names the variants of the search protocol.
VARIANT_NAMES = {"search": "search", "rearranged": "search + rearrangement",
                 "tuned": "search + rearrangement + mask tuning", "uniform_ffn": "every head, uniform FFN width"}


def load_search(out: str | os.PathLike):
    """The rows of a search table's current inputs (:func:`obce.results.posttrain_rows`), ``main`` x 100;
    empty when absent.

    Returns
    -------
    pandas.DataFrame with columns task, seed, draw, score, flops_fraction, variant, main, degenerate,
    heads_kept, neurons_kept, flops_kept (and the others of the rows)
    """
    import pandas as pd

    from ..results import SEARCH_TABLE, posttrain_rows

    if not (os.path.isfile(os.path.join(out, SEARCH_TABLE))):
        return pd.DataFrame()
    df = pd.DataFrame(posttrain_rows(out, SEARCH_TABLE))
    if len(df):
        df["main"] = 100 * df["main"].astype(float).fillna(0.0)
    return df


def _unpruned(df) -> dict[tuple[str, int], float]:
    base = df[df["score"] == "none"]
    return {(t, s): float(m) for t, s, m in zip(base["task"], base["seed"], base["main"])}


def search_curves(df):
    """Mean and standard deviation over corpus draws of every (task, seed, score, variant, FLOPs
    constraint), with the count of degenerate draws (one predicted class) and the share of the unpruned
    model's dev metric that the mean keeps.

    Returns
    -------
    pandas.DataFrame with columns task, seed, score, variant, flops_fraction, mean, std, draws, degenerate,
    retained (mean / unpruned)
    """
    pruned = df[df["score"] != "none"]
    keys = ["task", "seed", "score", "variant", "flops_fraction"]
    out = (pruned.groupby(keys).agg(mean=("main", "mean"), std=("main", "std"), draws=("main", "size"),
                                    degenerate=("degenerate", "sum"))
           .reset_index())
    base = _unpruned(df)
    out["retained"] = [m / base[(t, s)] if base.get((t, s)) else np.nan
                       for t, s, m in zip(out["task"], out["seed"], out["mean"])]
    out["degenerate"] = out["degenerate"].astype(int)
    return out


def search_verdicts(df, b: str = "fisher", variant: str = "tuned", alpha: float = 0.05,
                    floors: dict[str, float] | None = None):
    """Every score against ``b`` inside the same variant, on the same corpus draws: per (task, FLOPs
    constraint), the mean difference x 100, draws won, the paired t-test p-value and the verdict (win /
    loss at p < alpha, else tie; "no learning" where ``floors`` puts the unpruned model within a point of
    the majority class).

    Returns
    -------
    pandas.DataFrame with columns task, flops_fraction, a, b, n, mean_diff, wins, p_value, verdict
    """
    import pandas as pd
    from scipy.stats import ttest_rel

    cells = df[(df["variant"] == variant) & (df["score"] != "none")]
    learned_tasks = set(learned(df.rename(columns={"score": "importance"}), floors)) if floors else None
    rows = []
    for (task, f), cell in cells.groupby(["task", "flops_fraction"]):
        theirs = cell[cell["score"] == b].set_index(["seed", "draw"])["main"]
        for a in sorted(set(cell["score"]) - {b}):
            mine = cell[cell["score"] == a].set_index(["seed", "draw"])["main"]
            both = mine.index.intersection(theirs.index)
            if not len(both):
                continue
            x, y = mine.loc[both].to_numpy(), theirs.loc[both].to_numpy()
            p = float(ttest_rel(x, y).pvalue) if len(both) > 1 and np.ptp(x - y) > 0 else None
            diff = float((x - y).mean())
            verdict = ("win" if diff > 0 else "loss") if p is not None and p < alpha else "tie"
            if learned_tasks is not None and task not in learned_tasks:
                verdict = "no learning"
            rows.append(dict(task=task, flops_fraction=f, a=a, b=b, n=len(both), mean_diff=round(diff, 1),
                             wins=int((x > y).sum()), p_value=None if p is None else float(f"{p:.2g}"),
                             verdict=verdict))
    return pd.DataFrame(rows)


def variant_gains(df, base: str = "uniform_ffn"):
    """What each variant buys over ``base`` (default: every head kept and one FFN width, obce's former
    protocol) at equal FLOPs: per (task, score, FLOPs constraint), the mean over draws of the paired
    difference x 100.

    Returns
    -------
    pandas.DataFrame with columns task, score, flops_fraction, one column per other variant
    """
    pruned = df[df["score"] != "none"]
    wide = pruned.pivot_table(index=["task", "score", "flops_fraction", "seed", "draw"], columns="variant",
                              values="main")
    if base not in wide.columns:
        return wide.iloc[0:0]
    gains = wide.drop(columns=base).sub(wide[base], axis=0)
    return gains.groupby(level=["task", "score", "flops_fraction"]).mean().round(1).reset_index()


def best_at(df, flops: float, tasks: list[str] | None = None):
    """Per task, the (score, variant) whose mean over draws keeps the largest share of the unpruned dev
    metric at the FLOPs constraint ``flops`` (the moonshot: 99% at 60%).

    Returns
    -------
    pandas.DataFrame with columns task, score, variant, mean, unpruned, retained, degenerate
    """
    import pandas as pd

    c = search_curves(df)
    c = c[np.isclose(c["flops_fraction"], flops)]
    if tasks is not None:
        c = c[c["task"].isin(tasks)]
    if not len(c):
        return pd.DataFrame(columns=["task", "score", "variant", "mean", "unpruned", "retained", "degenerate"])
    top = c.loc[c.groupby("task")["retained"].idxmax()]
    base = _unpruned(df)
    top = top.assign(unpruned=[base[(t, s)] for t, s in zip(top["task"], top["seed"])])
    return top[["task", "score", "variant", "mean", "unpruned", "retained", "degenerate"]].reset_index(drop=True)


def search_facts(df, floors: dict[str, float], flops: float = 0.6, a: str = "merge_radius", b: str = "fisher",
                 threshold: float = 0.99) -> dict[str, object]:
    """The numbers chapter 8 says about the search table, computed (glued by name, prefix ``srch_``).

    At the constraint ``flops`` and over the tasks that learn: each score's mean share of the unpruned
    dev metric kept by the whole framework (``tuned``); ``a`` against ``b`` paired over draws in every
    (task, constraint) of ``tuned``; what the joint search buys over every head and one FFN width; the
    best (score, variant) per task and how many tasks keep ``threshold``; the degenerate cells.
    """
    from .names import prose_name

    if not len(df):  # every name exists before the table does
        return {"srch_cells": 0, "srch_draws": 0, "srch_tasks": "none yet", "srch_flops_percent": round(100 * flops),
                "srch_threshold_percent": round(100 * threshold), "srch_wins": 0, "srch_losses": 0, "srch_ties": 0,
                "srch_pairs": 0, "srch_best_min": float("nan"), "srch_best_reach": 0, "srch_best_worst_task": "none",
                "srch_best_scores": "none", "srch_degenerate": 0, "srch_degenerate_tuned": 0}
    c = search_curves(df)
    learn = learned(df.rename(columns={"score": "importance"}), floors)
    here = c[np.isclose(c["flops_fraction"], flops) & c["task"].isin(learn)]
    facts: dict[str, object] = {
        "srch_cells": int(len(df)), "srch_draws": int(df[df["score"] != "none"]["draw"].nunique()),
        "srch_tasks": ", ".join(learn) if learn else "none", "srch_flops_percent": round(100 * flops),
        "srch_threshold_percent": round(100 * threshold),
    }
    for score in sorted(set(c["score"])):
        for variant in sorted(set(c["variant"])):
            cell = here[(here["score"] == score) & (here["variant"] == variant)]
            if len(cell) and len(cell) == len(learn):
                facts[f"srch_{score}_{variant}"] = round(100 * float(cell["retained"].mean()), 1)
    v = search_verdicts(df, b=b, floors=floors)
    v = v[v["a"] == a] if len(v) else v
    for verdict, name in (("win", "wins"), ("loss", "losses"), ("tie", "ties")):
        facts[f"srch_{name}"] = int((v["verdict"] == verdict).sum()) if len(v) else 0
    facts["srch_pairs"] = int(len(v[v["verdict"] != "no learning"])) if len(v) else 0
    gains = variant_gains(df[df["task"].isin(learn)])
    if "tuned" in gains:
        at = gains[np.isclose(gains["flops_fraction"], flops)]
        for score in (a, b):
            g = at[at["score"] == score]["tuned"]
            if len(g):
                facts[f"srch_gain_{score}"] = round(float(g.mean()), 1)
    best = best_at(df, flops, learn)
    facts["srch_best_min"] = round(100 * float(best["retained"].min()), 1) if len(best) else 0.0
    facts["srch_best_reach"] = int((best["retained"] >= threshold).sum()) if len(best) else 0
    facts["srch_best_worst_task"] = (best.loc[best["retained"].idxmin(), "task"] if len(best) else "none")
    facts["srch_best_scores"] = ", ".join(sorted({prose_name(s) for s in best["score"]})) if len(best) else "none"
    facts["srch_degenerate"] = int(df["degenerate"].sum())
    facts["srch_degenerate_tuned"] = int(df[df["variant"] == "tuned"]["degenerate"].sum())
    return facts


__all__ += ["search_facts"]

"""Tables of GLUE records for the book and ``obce report``: scores per level and task, GLUE-style
averages, paired verdicts as grids, pooled comparisons, ablations, and the protocol a set of records
ran. Every table goes to the page through :func:`obce.book.table`; :func:`markdown_table` writes one
for the terminal.

Values are x 100 (the book's scale), one decimal; p-values two significant digits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ObceInputError
from .names import SHORT_VERDICTS, short_name
from .stats import controls_of, paired_comparison, pooled_comparison, summarize_records

__all__ = ["NOT_RUN", "ablation_table", "latency_table", "average_table", "glue_protocol_table", "levels_table", "markdown_summary",
           "markdown_table", "paired_table", "pooled_table", "score_table", "short_columns", "verdict_grid"]

#: what every table prints in a cell whose runs do not exist
NOT_RUN = "–"


def ablation_table(main: list[dict[str, Any]], ablation: list[dict[str, Any]], a: str = "merge_radius",
                   floors: dict[str, float] | None = None, also: tuple[str, ...] = ()):
    """Paired comparisons of ablation sets (from :func:`load_ablations`) on their tasks and levels:
    the main ``a`` against every ablation importance but the random controls, then each of those
    against its random control: the set's own ``random[<name>]`` where it has one (same training),
    else the main ``random`` and the main scores named in ``also`` (e.g. ``("activation_variance",)``;
    a set with its own random control was trained otherwise, so it is not paired with them); and
    within a set, its ``a`` against its other scores. Columns as :func:`paired_table`."""
    import pandas as pd

    where = {(r["task"], r["provenance"]["level"]) for r in ablation}
    base = [r for r in main if (r["task"], r["provenance"]["level"]) in where
            and r["provenance"]["importance"] in (a, "random", *also)]
    records = base + ablation
    labels = sorted({r["provenance"]["importance"] for r in ablation})
    variants = [v for v in labels if not v.startswith("random[")]
    tables = [paired_table(records, a=a, controls=tuple(variants), floors=floors)]
    for v in variants:
        tag = v[v.find("["):] if "[" in v else ""  # "[<name>]", the set's label
        own = "random" + tag
        tables.append(paired_table(records, a=v, controls=(own,) if own in labels else ("random", *also),
                                   floors=floors))
        if tag and v == a + tag:  # within a set: its a against its other scores (same training)
            others = tuple(w for w in variants if w != v and w.endswith(tag))
            tables.append(paired_table(records, a=v, controls=others, floors=floors))
    return pd.concat(tables, ignore_index=True)


def pooled_table(records: list[dict[str, Any]], a: str = "merge_radius", controls: tuple[str, ...] | None = None,
                 tasks: tuple[str, ...] | None = None, levels: tuple[int, ...] | None = None):
    """:func:`pooled_comparison` of ``a`` against each control (default every other importance in
    ``records``, :func:`controls_of`), as a table.

    Returns
    -------
    pandas.DataFrame with columns a, b, pairs, wins, losses, p_sign, cells, cells_ahead, cells_behind,
    p_cells, tasks, levels
    """
    import pandas as pd

    controls = controls_of(records, a) if controls is None else controls
    table = pd.DataFrame([pooled_comparison(records, a, c, tasks, levels) for c in controls])
    if len(table):
        for col in ("p_sign", "p_cells"):  # two significant digits: a tiny p stays visible (3e-08, not 0.0)
            table[col] = [None if pd.isna(p) else float(f"{p:.2g}") for p in table[col]]
        table["tasks"] = [", ".join(t) for t in table["tasks"]]
        table["levels"] = [", ".join(map(str, lv)) for lv in table["levels"]]
    return table


def score_table(records: list[dict[str, Any]]):
    """The summary as a table: one row per (level, importance), one column per task with the main
    metric x 100 as "mean ± std (n=seeds)" (``NOT_RUN`` where not run), the parameters kept, and (with
    several tasks) their GLUE-style average: the mean over the table's tasks of the main metric's
    mean, given only for rows that ran every one of those tasks.

    Returns
    -------
    pandas.DataFrame indexed by (level, importance); empty when there are no records
    """
    import pandas as pd

    rows = summarize_records(records)
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    table["score"] = [f"{100 * m:.1f} ± {100 * s:.1f} (n={n})" for m, s, n in zip(table["mean"], table["std"], table["n"])]
    wide = table.pivot_table(index=["level", "importance"], columns="task", values="score", aggfunc="first")
    wide = wide.fillna(NOT_RUN)  # a score not run on that task
    params = table.groupby(["level", "importance"])["parameters"].first()
    wide.insert(0, "parameters", params.map(lambda v: NOT_RUN if pd.isna(v) else f"{int(v):,}"))
    tasks = sorted(table["task"].unique())
    if len(tasks) > 1:
        means = table.pivot_table(index=["level", "importance"], columns="task", values="mean", aggfunc="first")
        complete = means[tasks].notna().all(axis=1)
        wide["average"] = [f"{100 * v:.1f}" if ok else NOT_RUN for v, ok in zip(means[tasks].mean(axis=1), complete)]
    wide.columns.name = None
    return wide


def _score_columns(records: list[dict[str, Any]], pruned: list[dict[str, Any]]) -> tuple[str, ...]:
    """The importance scores of the summary rows ``pruned``, ``merge_radius`` first, then :func:`controls_of`."""
    present = {r["importance"] for r in pruned}
    return tuple(c for c in ("merge_radius", *controls_of(records)) if c in present)


def levels_table(records: list[dict[str, Any]], importances: tuple[str, ...] | None = None):
    """The summary across levels: one row per (task, level) of a pruned model, one column per
    importance score with the main metric x 100 as "mean ± std" ("–" where not run; "(n=k)" after a
    cell with fewer seeds than the most any cell has), and the unpruned model's mean for reference.

    Parameters
    ----------
    records : GLUE records of one fine-tuning protocol
    importances : the columns, in order; default ``merge_radius`` then :func:`controls_of`

    Returns
    -------
    pandas.DataFrame indexed by (task, level) with columns ``unpruned`` and one per importance;
    empty when no pruned model is among the records
    """
    import pandas as pd

    rows = summarize_records(records)
    pruned = [r for r in rows if r["importance"] != "none"]
    if not pruned:
        return pd.DataFrame()
    importances = _score_columns(records, pruned) if importances is None else importances
    most = max(r["n"] for r in pruned)  # a cell with fewer seeds says how many
    cells = {(r["task"], r["level"], r["importance"]):
             f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" + (f" (n={r['n']})" if r["n"] < most else "")
             for r in pruned}
    unpruned = {r["task"]: f"{100 * r['mean']:.1f}" for r in rows if r["importance"] == "none"}
    keys = sorted({(r["task"], r["level"]) for r in pruned})
    table = pd.DataFrame([{"unpruned": unpruned.get(task, NOT_RUN),
                           **{imp: cells.get((task, level, imp), NOT_RUN) for imp in importances}}
                          for task, level in keys],
                         index=pd.MultiIndex.from_tuples(keys, names=["task", "level"]))
    return table


def average_table(records: list[dict[str, Any]], tasks: tuple[str, ...] | None = None,
                  importances: tuple[str, ...] | None = None):
    """The GLUE-style average across levels: one row per level of a pruned model, one column per
    importance score with the mean over ``tasks`` of each task's main-metric mean (x 100, "–" where
    a score has not run on every one of those tasks), and the unpruned model's average beside them.

    Parameters
    ----------
    records : GLUE records of one fine-tuning protocol
    tasks : the tasks averaged; default every task in ``records``. A task without records raises
        ``ObceInputError``.
    importances : the columns, in order; default ``merge_radius`` then :func:`controls_of`

    Returns
    -------
    pandas.DataFrame indexed by level with columns ``unpruned`` and one per importance; empty when
    no pruned model is among the records
    """
    import pandas as pd

    rows = summarize_records(records)
    present_tasks = sorted({r["task"] for r in rows})
    tasks = tuple(present_tasks) if tasks is None else tuple(tasks)
    missing = sorted(set(tasks) - set(present_tasks))
    if missing:
        raise ObceInputError(f"tasks {missing} have no records here (tasks with records: {present_tasks})")
    rows = [r for r in rows if r["task"] in tasks]
    pruned = [r for r in rows if r["importance"] != "none"]
    if not pruned:
        return pd.DataFrame()
    importances = _score_columns(records, pruned) if importances is None else importances
    means = {(r["task"], r["level"], r["importance"]): r["mean"] for r in rows}

    def cell(level: int, imp: str) -> str:
        vals = [means.get((t, level, imp)) for t in tasks]
        return NOT_RUN if None in vals else f"{100 * float(np.mean(vals)):.1f}"

    levels = sorted({r["level"] for r in pruned})
    unpruned = {r["level"] for r in rows if r["importance"] == "none"}
    base = cell(min(unpruned), "none") if unpruned else NOT_RUN
    table = pd.DataFrame([{"unpruned": base, **{imp: cell(level, imp) for imp in importances}} for level in levels],
                         index=pd.Index(levels, name="level"))
    return table


def paired_table(records: list[dict[str, Any]], a: str = "merge_radius", controls: tuple[str, ...] | None = None,
                 floors: dict[str, float] | None = None):
    """:func:`paired_comparison` of ``a`` against each control (default: every other importance in
    ``records``, :func:`controls_of`), as a table (mean difference x 100).

    Returns
    -------
    pandas.DataFrame with columns task, level, a, b, n, mean_diff, wins, p_value, verdict
    """
    import pandas as pd

    controls = controls_of(records, a) if controls is None else controls
    rows = [row for c in controls for row in paired_comparison(records, a, c, floors=floors)]
    table = pd.DataFrame(rows)
    if len(table):
        table["mean_diff"] = (100 * table["mean_diff"]).round(1)  # x 100, one decimal, as every table
        table["p_value"] = [None if pd.isna(p) else float(f"{p:.2g}") for p in table["p_value"]]  # 2 significant
    return table


def short_columns(table):
    """``table`` with its score columns renamed by :func:`obce.analysis.names.short_name` (others unchanged)."""
    return table.rename(columns=lambda c: short_name(c))


def verdict_grid(pairs, show_n: bool = False, short: bool = False):
    """A :func:`paired_table` as a grid: one row per (task, level), one column per control, each cell
    the verdict and the mean difference x 100 ("tie (+1.2)"; with ``show_n`` also the number of
    paired seeds), ``NOT_RUN`` where the control has no pair.

    Returns
    -------
    pandas.DataFrame indexed by (task, level); empty for an empty ``pairs``
    """
    import pandas as pd

    if not len(pairs):
        return pd.DataFrame()
    verdicts = [SHORT_VERDICTS.get(v, v) if short else v for v in pairs["verdict"]]
    cells = [f"{v} ({d:+.1f}, n={n})" if show_n else f"{v} {d:+.1f}" if short else f"{v} ({d:+.1f})"
             for v, d, n in zip(verdicts, pairs["mean_diff"], pairs["n"])]
    grid = pairs.assign(cell=cells).pivot_table(index=["task", "level"], columns="b", values="cell",
                                                 aggfunc="first")
    grid.columns.name = None
    grid = grid.fillna(NOT_RUN)
    return short_columns(grid) if short else grid


def markdown_summary(records: list[dict[str, Any]], controls: tuple[str, ...] | None = None) -> str:
    """:func:`score_table` and :func:`paired_table` (r_f against each control, default every other
    importance in ``records``) as markdown tables."""
    out = [markdown_table(score_table(records).reset_index())]
    pairs = paired_table(records, "merge_radius", controls)
    if len(pairs):
        out += ["", markdown_table(pairs.drop(columns="a").rename(columns={"b": "r_f vs", "mean_diff": "mean diff (x100)"}))]
    return "\n".join(out)


def markdown_table(table) -> str:
    """A DataFrame as a markdown table (missing cells as "-")."""
    import pandas as pd

    cols = [str(c) for c in table.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for values in table.itertuples(index=False):
        rows.append("| " + " | ".join("-" if pd.isna(v) else str(v) for v in values) + " |")
    return "\n".join(rows)


def glue_protocol_table(records: list[dict[str, Any]]):
    """The fine-tuning and scoring protocol of one protocol's records, as a two-column table.

    Returns
    -------
    pandas.DataFrame with columns ``item`` and ``value``
    """
    import pandas as pd

    prov = [r["provenance"] for r in records]
    ft = prov[0]["params"]
    scoring = next((p["scoring"] for p in prov if isinstance(p.get("scoring"), dict)), {})
    sizes = sorted({(p.get("level"), p.get("intermediate_size")) for p in prov})
    full = next((n for lv, n in sizes if lv == 0), None)
    train = "whole training sets" if ft.get("max_train_samples") is None else \
        f"{ft['max_train_samples']:,} training examples"
    items = [
        ("model", prov[0].get("model", "?")),
        ("tasks", ", ".join(sorted({r["task"] for r in records}))),
        ("importance scores", ", ".join(controls_of(records, "none"))),
        ("levels (FFN neurons kept per layer)", "; ".join(f"{lv}: {n}" + (f" of {full}" if full and lv else "")
                                                          for lv, n in sizes)),
        ("scoring corpus", f"{scoring.get('samples', '?')} training sentences of the task, max_length "
                           f"{scoring.get('max_length', '?')}, {scoring.get('representation', 'tokens')} "
                           f"representation; scored on the {scoring.get('score_model', 'pretrained')} model"),
        ("fine-tuning", f"{train}, {ft.get('epochs')} epochs, lr {ft.get('lr')}, batch {ft.get('batch_size')}, "
                        f"max_length {ft.get('max_length')}, AdamW with linear warm-up and decay (HF Trainer)"),
        ("seeds", ", ".join(map(str, sorted({p["seed"] for p in prov})))
         + " (the head, data order and dropout; random neurons draw another set per seed)"),
        ("metric", "the task's main GLUE metric on the dev set, x 100"),
        ("verdict", "paired t-test over seeds: win or loss at p < 0.05, else tie; no learning when both "
                    "means are within one point of the majority class"),
        ("device", sorted({p.get("device", "?").split(" (")[0] for p in prov})[0]),
    ]
    return pd.DataFrame(items, columns=["item", "value"])


def latency_table(runs: dict[str, dict[str, Any]]):
    """The pruned models' measured speed (``benchmarks/bench_pruned.py``'s records), one column of
    speedups per device: ``runs`` maps a device label to a record (``rows`` with ``level``,
    ``params``, ``speedup``, ``flop_ratio``).

    Returns
    -------
    pandas.DataFrame, one row per level: level, parameters, FLOP ratio, and each device's speedup
    """
    import pandas as pd

    by = {name: {r["level"]: r for r in rec["rows"]} for name, rec in runs.items()}
    first = next(iter(by.values()))  # the levels, parameters and FLOP ratios (the same model on every device)
    return pd.DataFrame([{"level": lv, "parameters": base["params"], "FLOP ratio": base["flop_ratio"],
                          **{f"speedup, {name}": by[name].get(lv, {}).get("speedup", float("nan")) for name in by}}
                         for lv, base in sorted(first.items())])

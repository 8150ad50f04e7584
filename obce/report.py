"""GLUE result records: loading, schema validation, summaries and paired comparisons."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data import get_task
from .errors import ObceInputError
from .results import CHECKPOINT_RECORD, read_json

METRIC_RANGES = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "matthews_correlation": (-1.0, 1.0),
                 "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}
#: how far above the majority-class baseline (main metric) a model must score to count as having learned a task
LEARNING_MARGIN = 0.01
#: what every table prints in a cell whose runs do not exist
NOT_RUN = "–"
REQUIRED_PROVENANCE = ("params", "seed", "device", "versions", "git_commit", "wall_time_s", "model",
                       "data", "train_size", "eval_size")

#: Published GLUE numbers (x100), labelled with their source and split, for context only; the book
#: prints them as "reported", never mixed with measured ones. BERT: the paper's Table 1; TinyBERT-4:
#: only the values a second listing corroborated (checked 2026-11); DistilBERT and MiniLM: the
#: authors' model cards on the Hugging Face hub (checked 2026-11). A missing key means "not
#: transcribed", and other methods' tables are left to the papers. Metrics as in the sources (BERT:
#: MRPC/QQP F1, STS-B Spearman, CoLA Matthews corr., MNLI matched accuracy, others accuracy; the
#: cards do not say, see ``note``).
REPORTED = [
    dict(model="BERT-Base", source="Devlin et al. 2019, Table 1", split="test", params_m=110,
         cola=52.1, sst2=93.5, mrpc=88.9, stsb=85.8, qqp=71.2, mnli=84.6, qnli=90.5, rte=66.4),
    dict(model="BERT-Large", source="Devlin et al. 2019, Table 1", split="test", params_m=340,
         cola=60.5, sst2=94.9, mrpc=89.3, stsb=86.5, qqp=72.1, mnli=86.7, qnli=92.7, rte=70.1),
    dict(model="TinyBERT-4", source="Jiao et al. 2020, Table 1", split="test", params_m=14.5,
         cola=43.3, mrpc=86.4, mnli=82.5),
    dict(model="DistilBERT (base, cased)", source="model card distilbert/distilbert-base-cased", split="test",
         params_m=65, cola=47.2, sst2=90.4, mrpc=85.6, stsb=85.5, qqp=87.8, mnli=81.5, qnli=88.2, rte=60.6,
         note="the card states no metric per task (QQP 87.8 is not an F1 of the test server)"),
    dict(model="MiniLM-L12xH384", source="model card microsoft/MiniLM-L12-H384-uncased", split="dev",
         params_m=33, cola=58.5, sst2=93.0, mrpc=89.5, qqp=91.3, mnli=85.7, qnli=91.5, rte=73.3,
         note="the card states no metric per task (MRPC/QQP likely accuracy)"),
    dict(model="BERT-of-Theseus (6 layers, MNLI-pretrained)",
         source="README of JetRunner/BERT-of-Theseus; model card canwenxu/BERT-of-Theseus-MNLI", split="dev",
         params_m=66, sst2=91.8, mrpc=87.5, stsb=87.8, qqp=88.8, mnli=82.1, qnli=88.8, rte=70.1,
         note="the authors' general-purpose model, fine-tuned per task; the model card gives the split "
              "(\"GLUE (dev set)\") but not the metric of each task"),
]


def join_words(words: list[str]) -> str:
    """Words in prose: ``a``, ``a and b``, ``a, b and c`` (empty for none)."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def validate_record(record: dict[str, Any], where: str = "record") -> None:
    """Check a GLUE record: known task, the task's metrics all present, finite and in range,
    complete provenance. Raises ``ObceInputError`` naming the problem."""
    for key in ("task", "metrics", "provenance"):
        if key not in record:
            raise ObceInputError(f"{where}: missing key {key!r}")
    info = get_task(record["task"])
    metrics = record["metrics"]
    suffixes = [""] + (["_mm"] if len(info.dev_files) > 1 else [])
    for name in info.metrics:
        for sfx in suffixes:
            value = metrics.get(name + sfx)
            lo, hi = METRIC_RANGES[name]
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
                raise ObceInputError(f"{where}: metric {name + sfx}={value!r} missing or outside [{lo}, {hi}]")
    prov = record["provenance"]
    missing = [k for k in REQUIRED_PROVENANCE if prov.get(k) in (None, "", {})]
    if missing:
        raise ObceInputError(f"{where}: provenance lacks {missing}")
    if not prov["versions"].get("torch") or not prov["versions"].get("transformers"):
        raise ObceInputError(f"{where}: provenance versions lack torch/transformers")


def load_records(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every GLUE record under ``root`` (recursively), validated, with its ``path``. A fine-tuned
    checkpoint's own record (``CHECKPOINT_RECORD``, beside its weights) describes the checkpoint, not
    a run of the experiment, and is skipped."""
    records = []
    for path in sorted(Path(root).rglob("*.json")):
        if path.name == CHECKPOINT_RECORD:
            continue
        rec = read_json(path)
        if rec.get("kind") != "glue_result":
            continue
        validate_record(rec, str(path))
        rec["path"] = str(path)
        records.append(rec)
    return records


def protocol(record: dict[str, Any]) -> str:
    """The fine-tuning protocol of a record: its training hyper-parameters (without the task)."""
    params = {k: int(v) if isinstance(v, float) and v.is_integer() else v
              for k, v in record["provenance"].get("params", {}).items() if k not in ("task", "bf16")}
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def random_draw(record: dict[str, Any]) -> int | None:
    """The seed of a ``random`` record's neuron draw (records made before draws followed the run's
    seed drew with the corpus seed); None for other importances."""
    if record["provenance"].get("importance") != "random":
        return None
    scoring = record["provenance"].get("scoring") or {}
    return scoring.get("random_seed", scoring.get("seed", 0))


def _one_protocol(records: list[dict[str, Any]]) -> None:
    """Raise when records of different fine-tuning protocols would be averaged or paired together."""
    found = sorted({protocol(r) for r in records})
    if len(found) > 1:
        raise ObceInputError(f"records from {len(found)} fine-tuning protocols ({'; '.join(found)}) under "
                             f"{', '.join(record_dirs(records))}: summarize each protocol's records separately")


def run_key(record: dict[str, Any]) -> tuple[str, str, int, int]:
    """What identifies a run: (task, importance, level, seed); the unpruned model is ("none", 0)."""
    p = record["provenance"]
    return record["task"], p.get("importance", "none"), p.get("level", 0), p["seed"]


def _one_run_each(records: list[dict[str, Any]]) -> None:
    """Raise when two records are the same run (:func:`run_key`), e.g. an ablation's records loaded
    together with the main ones: they would be averaged as if they were more seeds."""
    seen: dict[tuple, str] = {}
    for r in records:
        key = run_key(r)
        if key in seen:
            raise ObceInputError(f"two records of task={key[0]} importance={key[1]} level={key[2]} seed={key[3]}: "
                                 f"{seen[key]} and {r.get('path', '?')}; summarize each experiment's records "
                                 "separately, or relabel one set (obce.report.relabel)")
        seen[key] = r.get("path", "?")


def record_dir(record: dict[str, Any]) -> str:
    """The results directory a record was loaded from: ``<out>/glue`` for a record stored as
    ``<out>/glue/<task>/<name>.json``, else the record's own directory."""
    parent = Path(record.get("path", "?")).parent
    return str(parent.parent if parent.name == record["task"] else parent)


def record_dirs(records: list[dict[str, Any]]) -> list[str]:
    """The results directories (:func:`record_dir`) the records were loaded from."""
    return sorted({record_dir(r) for r in records})


def relabel(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """Copies of ``records`` whose importance reads ``label`` (e.g. ``"merge_radius[mean]"`` for an
    ablation's records), so that they can be summarized and paired next to the main records;
    ``{importance}`` in ``label`` stands for each record's own importance."""
    return [{**r, "provenance": {**r["provenance"],
                                 "importance": label.format(importance=r["provenance"]["importance"])}}
            for r in records]


def load_ablations(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of every ablation set under ``root`` (one directory each, ``<root>/<name>/glue``),
    validated, their importance renamed ``"<importance>[<name>]"`` so that they pair with the main
    records and each set's own controls stay apart. No directory: an empty list."""
    return [r for tree in sorted(Path(root).glob("*/glue"))
            for r in relabel(load_records(tree), "{importance}[" + tree.parent.name + "]")]


def ablation_table(main: list[dict[str, Any]], ablation: list[dict[str, Any]], a: str = "merge_radius",
                   baselines: dict[str, float] | None = None, also: tuple[str, ...] = ()):
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
    tables = [paired_table(records, a=a, controls=tuple(variants), baselines=baselines)]
    for v in variants:
        tag = v[v.find("["):] if "[" in v else ""  # "[<name>]", the set's label
        own = "random" + tag
        tables.append(paired_table(records, a=v, controls=(own,) if own in labels else ("random", *also),
                                   baselines=baselines))
        if tag and v == a + tag:  # within a set: its a against its other scores (same training)
            others = tuple(w for w in variants if w != v and w.endswith(tag))
            tables.append(paired_table(records, a=v, controls=others, baselines=baselines))
    return pd.concat(tables, ignore_index=True)


def summarize_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each (task, importance, level) main metric.
    Records must share one fine-tuning protocol and be one run each (else ``ObceInputError``)."""
    _one_protocol(records)
    _one_run_each(records)
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(run_key(r)[:3], []).append(r)
    rows = []
    for (task, imp, level), recs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        metric = get_task(task).main_metric
        vals = np.array([r["metrics"][metric] for r in recs])
        rows.append(dict(task=task, importance=imp, level=level, metric=metric, n=len(vals),
                         mean=float(vals.mean()), std=float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                         seeds=sorted(r["provenance"]["seed"] for r in recs),
                         parameters=recs[0]["provenance"].get("parameters"),
                         intermediate_size=recs[0]["provenance"].get("intermediate_size")))
    return rows


def learned_tasks(records: list[dict[str, Any]], baselines: dict[str, float],
                  margin: float = LEARNING_MARGIN) -> tuple[str, ...]:
    """The tasks, sorted, whose unpruned model's mean main metric is more than ``margin`` above its
    majority-class baseline (``baselines``: task -> main metric): the tasks a comparison can speak to."""
    return tuple(r["task"] for r in summarize_records(records)
                 if r["importance"] == "none" and r["mean"] > baselines[r["task"]] + margin)


def _main_metric_by_run(records: list[dict[str, Any]]) -> dict[tuple[str, str, int, int], float]:
    """Each run's main metric, keyed by :func:`run_key`; the records must share one fine-tuning
    protocol and be one run each (else ``ObceInputError``)."""
    _one_protocol(records)
    _one_run_each(records)
    return {run_key(r): r["metrics"][get_task(r["task"]).main_metric] for r in records}


def paired_comparison(records: list[dict[str, Any]], a: str, b: str, alpha: float = 0.05,
                      baselines: dict[str, float] | None = None,
                      margin: float = LEARNING_MARGIN) -> list[dict[str, Any]]:
    """Per (task, level): mean difference a - b of the main metric over seeds both ran, the paired
    t-test p-value (None with fewer than 2 pairs), and a verdict: ``win``/``loss`` when p < alpha,
    else ``tie`` (the difference is within seed noise); ``no learning`` when ``baselines`` (main
    metric of the majority-class prediction per task) is given and both means are within ``margin``
    of it, so neither model learned the task."""
    from scipy.stats import ttest_rel

    index = _main_metric_by_run(records)
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
        if baselines is not None and task in baselines and max(x.mean(), y.mean()) <= baselines[task] + margin:
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

    index = _main_metric_by_run(records)
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

    return dict(a=a, b=b, pairs=len(diffs), wins=int(wins), losses=int(losses), p_sign=sign_test(wins, wins + losses),
                cells=len(cells), cells_ahead=ahead, cells_behind=behind, p_cells=sign_test(ahead, ahead + behind),
                tasks=sorted({t for t, _ in cells}), levels=sorted({lv for _, lv in cells}))


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


def controls_of(records: list[dict[str, Any]], a: str = "merge_radius") -> tuple[str, ...]:
    """The importance scores in ``records`` other than ``a`` and the unpruned model ("none"):
    random and magnitude first, then the others by name."""
    present = {r["provenance"].get("importance", "none") for r in records} - {a, "none"}
    first = [c for c in ("random", "magnitude") if c in present]
    return (*first, *sorted(present - set(first)))


def paired_table(records: list[dict[str, Any]], a: str = "merge_radius", controls: tuple[str, ...] | None = None,
                 baselines: dict[str, float] | None = None):
    """:func:`paired_comparison` of ``a`` against each control (default: every other importance in
    ``records``, :func:`controls_of`), as a table (mean difference x 100).

    Returns
    -------
    pandas.DataFrame with columns task, level, a, b, n, mean_diff, wins, p_value, verdict
    """
    import pandas as pd

    controls = controls_of(records, a) if controls is None else controls
    rows = [row for c in controls for row in paired_comparison(records, a, c, baselines=baselines)]
    table = pd.DataFrame(rows)
    if len(table):
        table["mean_diff"] = (100 * table["mean_diff"]).round(1)  # x 100, one decimal, as every table
        table["p_value"] = [None if pd.isna(p) else float(f"{p:.2g}") for p in table["p_value"]]  # 2 significant
    return table


#: Short column names for tables that must fit the book's width.
SHORT_NAMES = {"merge_radius": "r_f", "activation_variance": "variance", "mean_abs_activation": "mean |a|",
               "total_persistence": "total pers.", "magnitude": "magnitude", "random": "random"}
#: Short verdicts for the same tables ("n.l.": neither model learned the task).
SHORT_VERDICTS = {"no learning": "n.l."}


def short_columns(table):
    """``table`` with its score columns renamed by :data:`SHORT_NAMES` (others unchanged)."""
    return table.rename(columns=lambda c: SHORT_NAMES.get(c, c))


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


def majority_baseline(task: str, glue_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Dev metrics of always predicting the most frequent training label (the mean score for
    STS-B): what a fine-tuned model scores when it has learned nothing of the task."""
    from .data import load_glue
    from .glue import compute_metrics

    info = get_task(task)
    train = np.asarray(load_glue(task, "train", glue_dir)["label"])
    dev = np.asarray(load_glue(task, "validation", glue_dir)["label"])
    constant = train.mean() if info.is_regression else np.bincount(train.astype(int)).argmax()
    return compute_metrics(task, np.full(len(dev), constant, dtype=dev.dtype), dev)

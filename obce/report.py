"""GLUE result records: loading, schema validation, summaries and paired comparisons."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data import get_task
from .errors import ObceInputError
from .results import read_json

METRIC_RANGES = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "matthews_correlation": (-1.0, 1.0),
                 "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}
REQUIRED_PROVENANCE = ("params", "seed", "device", "versions", "git_commit", "wall_time_s", "model",
                       "data", "train_size", "eval_size")

#: Published GLUE numbers (x100), labelled with their source and split, for context only; the book
#: prints them as "reported", never mixed with measured ones. BERT: the paper's Table 1; TinyBERT-4:
#: only the values a second listing corroborated (checked 2026-11); a missing key means "not
#: transcribed", and other methods' tables are left to the papers. Metrics as in the
#: sources: MRPC/QQP F1, STS-B Spearman, CoLA Matthews corr., MNLI matched accuracy, others accuracy.
REPORTED = [
    dict(model="BERT-Base", source="Devlin et al. 2019, Table 1", split="test", params_m=110,
         cola=52.1, sst2=93.5, mrpc=88.9, stsb=85.8, qqp=71.2, mnli=84.6, qnli=90.5, rte=66.4),
    dict(model="BERT-Large", source="Devlin et al. 2019, Table 1", split="test", params_m=340,
         cola=60.5, sst2=94.9, mrpc=89.3, stsb=86.5, qqp=72.1, mnli=86.7, qnli=92.7, rte=70.1),
    dict(model="TinyBERT-4", source="Jiao et al. 2020, Table 1", split="test", params_m=14.5,
         cola=43.3, mrpc=86.4, mnli=82.5),
]


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
    """Every GLUE record under ``root`` (recursively), validated, with its ``path``."""
    records = []
    for path in sorted(Path(root).rglob("*.json")):
        rec = read_json(path)
        if rec.get("kind") != "glue_result":
            continue
        validate_record(rec, str(path))
        rec["path"] = str(path)
        records.append(rec)
    return records


def summarize_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each (task, importance, level) main metric."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        p = r["provenance"]
        groups.setdefault((r["task"], p.get("importance", "none"), p.get("level", 0)), []).append(r)
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


def paired_comparison(records: list[dict[str, Any]], a: str, b: str, alpha: float = 0.05,
                      baselines: dict[str, float] | None = None, margin: float = 0.01) -> list[dict[str, Any]]:
    """Per (task, level): mean difference a - b of the main metric over seeds both ran, the paired
    t-test p-value (None with fewer than 2 pairs), and a verdict: ``win``/``loss`` when p < alpha,
    else ``tie`` (the difference is within seed noise); ``no learning`` when ``baselines`` (main
    metric of the majority-class prediction per task) is given and both means are within ``margin``
    of it, so neither model learned the task."""
    from scipy.stats import ttest_rel

    index = {(r["task"], r["provenance"].get("importance"), r["provenance"].get("level"), r["provenance"]["seed"]):
             r["metrics"][get_task(r["task"]).main_metric] for r in records}
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


def markdown_summary(records: list[dict[str, Any]], controls: tuple[str, ...] = ("random", "magnitude")) -> str:
    """The summary (main metric x 100, mean ± std over seeds) and the paired verdicts of r_f against
    each control, as markdown tables."""
    rows = summarize_records(records)
    tasks = sorted({r["task"] for r in rows})
    configs = sorted({(r["level"], r["importance"]) for r in rows})
    cell = {(r["task"], r["level"], r["importance"]): r for r in rows}
    out = ["| level | importance | parameters | " + " | ".join(
        f"{t} ({get_task(t).main_metric})" for t in tasks) + " |",
        "|---|---|---|" + "---|" * len(tasks)]
    for level, imp in configs:
        params = next((cell[t, level, imp]["parameters"] for t in tasks if (t, level, imp) in cell), None)
        vals = [f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f} (n={c['n']})" if (c := cell.get((t, level, imp))) else "-"
                for t in tasks]
        out.append(f"| {level} | {imp} | {params:,} | " + " | ".join(vals) + " |")
    pairs = [p for c in controls for p in paired_comparison(records, "merge_radius", c)]
    if pairs:
        out += ["", "| task | level | r_f vs | n | mean diff (x100) | seeds won | p (paired t) | verdict |",
                "|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            pv = "-" if p["p_value"] is None else f"{p['p_value']:.3f}"
            out.append(f"| {p['task']} | {p['level']} | {p['b']} | {p['n']} | {100 * p['mean_diff']:+.2f} | "
                       f"{p['wins']}/{p['n']} | {pv} | {p['verdict']} |")
    return "\n".join(out)


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

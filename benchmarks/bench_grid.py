"""Cells per hour of a small real grid on this machine: the sequential executor against Ray with one
and with two cells in parallel, in fp32 and under bf16 autocast, in one run.

The grid is MiniLM on one GLUE task (default RTE): the unpruned model, and random and magnitude
pruning at levels 1 and 2 (scores that need no corpus, so every cell is a fine-tune and an
evaluation), each cell fine-tuned on a seeded subset of the training set. Every configuration runs
the same cells into a fresh output directory; its wall time includes starting Ray. Two processes
with one thread each against one process with two threads is the question on a 2-core machine;
bf16 autocast is the other (AMX Xeons).

    python benchmarks/bench_grid.py [--task rte] [--train 256] [--glue-dir DIR]

With ``--precision-check`` it instead compares the records of the bf16 protocol
(``params/protocols/cpu_fulltrain/bf16.yaml``) with the fp32 ones of ``results/glue_fulltrain``,
paired by seed: the mean difference of the dev metric per task, the paired t-test, and the fp32 seed
standard deviation.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from _common import save, table

REPO = Path(__file__).resolve().parents[1]

#: The configurations measured: (name, executor, cells in parallel, precision).
CONFIGS = [("sequential fp32", "sequential", 1, "fp32"), ("ray 1 cell fp32", "ray", 1, "fp32"),
           ("ray 2 cells fp32", "ray", 2, "fp32"), ("sequential bf16", "sequential", 1, "bf16"),
           ("ray 2 cells bf16", "ray", 2, "bf16")]


def grid_config(out: Path, task: str, train: int, precision: str, glue_dir: str | None) -> dict:
    """The benchmark's pipeline config (5 cells)."""
    return dict(model="minilm", out=str(out), glue_dir=glue_dir, tasks=[task], levels=[0, 1, 2], seeds=[0],
                importances=["random", "magnitude"], corpus=dict(samples=16, max_length=64),
                finetune=dict(epochs=1, batch_size=32, max_length=64, max_train_samples=train,
                              max_eval_samples=256, precision=precision))


def measure(task: str, train: int, glue_dir: str | None, cores: int) -> list[dict]:
    from obce.experiments.config import PipelineConfig
    from obce.experiments.executor import RaySettings
    from obce.experiments.glue_protocol import planned_runs, run_pipeline

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, executor, parallel, precision in CONFIGS:
            cfg = PipelineConfig.from_dict(grid_config(Path(tmp) / name.replace(" ", "_"), task, train, precision,
                                                       glue_dir))
            threads = max(1, cores // parallel)
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            t = time.perf_counter()
            try:
                run_pipeline(cfg, progress=False, executor=executor,
                             ray=RaySettings(num_cpus=cores, cpus_per_cell=threads) if executor == "ray" else None)
            finally:
                torch.set_num_threads(before)
            seconds = time.perf_counter() - t
            cells = len(planned_runs(cfg))
            rows.append(dict(config=name, cells=cells, threads_per_cell=threads, seconds=round(seconds, 1),
                             cells_per_hour=round(3600 * cells / seconds, 1)))
            print(rows[-1], flush=True)
    base = rows[0]["cells_per_hour"]
    for r in rows:
        r["vs_sequential_fp32"] = round(r["cells_per_hour"] / base, 2)
    return rows


def precision_check(glue_dir: str | None) -> list[dict]:
    """bf16 against fp32 records of the same protocol, per task, paired by seed."""
    import numpy as np
    from scipy.stats import ttest_rel

    from obce.results import load_records, main_value

    def by_seed(path: Path) -> dict:
        return {(r["task"], r["provenance"]["seed"]): main_value(r) for r in load_records(path)
                if r["provenance"].get("level") == 0}

    bf16, fp32 = by_seed(REPO / "results/bf16_fulltrain/glue"), by_seed(REPO / "results/glue_fulltrain/glue")
    rows = []
    for task in sorted({t for t, _ in bf16}):
        seeds = sorted(s for t, s in bf16 if t == task and (t, s) in fp32)
        x = np.array([bf16[task, s] for s in seeds])
        y = np.array([fp32[task, s] for s in seeds])
        p = float(ttest_rel(x, y).pvalue) if len(seeds) > 1 and np.ptp(x - y) > 0 else float("nan")
        rows.append(dict(task=task, seeds=len(seeds), fp32_mean=round(100 * y.mean(), 2),
                         bf16_mean=round(100 * x.mean(), 2), mean_diff=round(100 * (x - y).mean(), 2),
                         fp32_seed_sd=round(100 * y.std(ddof=1), 2) if len(seeds) > 1 else float("nan"),
                         p_value=round(p, 3)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="rte")
    ap.add_argument("--train", type=int, default=256, help="training texts per cell (default 256)")
    ap.add_argument("--glue-dir", default=os.environ.get("OBCE_GLUE_DIR"))
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--precision-check", action="store_true", help="compare the bf16 protocol's records with fp32")
    args = ap.parse_args()
    if args.precision_check:
        rows = precision_check(args.glue_dir)
        table(rows, list(rows[0]))
        save("precision_check", rows, dict(bf16="results/bf16_fulltrain", fp32="results/glue_fulltrain"), "cpu")
        return
    rows = measure(args.task, args.train, args.glue_dir, args.cores)
    table(rows, ["config", "cells", "threads_per_cell", "seconds", "cells_per_hour", "vs_sequential_fp32"])
    save("grid", rows, dict(task=args.task, train=args.train, cores=args.cores), "cpu")


if __name__ == "__main__":
    main()

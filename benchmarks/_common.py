"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from obce.files import write_json
from obce.results import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn, repeat: int = 5, warmup: int = 1, sync=None) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def save(name: str, rows: list[dict], params: dict, device: str | None) -> Path:
    path = RESULTS / f"{name}-{(device or 'cpu').split(':')[0]}.json"
    write_json(path, {"kind": "benchmark", "benchmark": name, "rows": rows,
                      "provenance": provenance(params=params, device=device)})
    print(f"-> {path}")
    return path


def table(rows: list[dict], cols: list[str]) -> None:
    print(" ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]:>14.4g}" if isinstance(r[c], float) else f"{str(r[c]):>14}" for c in cols))

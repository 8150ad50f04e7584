"""Result records: their provenance, their schema, and the tables that hold them.

* Every record obce writes is JSON with a ``provenance`` block (:func:`provenance`): library versions,
  device, git commit, seed, parameters and wall time.
* A GLUE record (``kind: glue_result``) is validated against the schema whenever it is read
  (:func:`validate_record`, :func:`load_records`); :func:`run_key` says which run it is.
* A JSONL table (the retraining-free protocol's) is read with :func:`read_jsonl` (a last line cut
  short by a killed run is left out) and appended with :func:`append_jsonl`.

No stage imports :mod:`obce.analysis`; this module is what the stages and the analysis share.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from .data import get_task
from .errors import ObceInputError
from .files import read_json, to_jsonable

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_RECORD", "LOADED_COMMIT", "METRIC_RANGES", "POSTTRAIN_RUNS", "POSTTRAIN_TABLE", "SEARCH_ROW", "SEARCH_TABLE",
           "REQUIRED_PROVENANCE", "SCHEMA_VERSION", "append_jsonl", "check_one_protocol", "check_one_run_each",
           "device_description", "finetune_protocol", "git_commit", "load_ablations", "load_records", "main_value", "posttrain_rows", "provenance", "validate_row",
           "random_draw", "read_jsonl", "record_dir", "record_dirs", "relabel", "run_key", "validate_record",
           "versions"]

SCHEMA_VERSION = 1
#: file name of a fine-tuned checkpoint's own record, saved beside its weights (not a run of an experiment)
CHECKPOINT_RECORD = "obce_finetune.json"
#: a retraining-free protocol's table inside its ``out`` directory (one row per cell), and the
#: provenance of each run that wrote rows (one row per run)
POSTTRAIN_TABLE, POSTTRAIN_RUNS = "posttrain.jsonl", "runs.jsonl"
#: the table of the retraining-free search protocol (heads and neurons under a FLOPs budget,
#: :mod:`obce.experiments.search_protocol`), beside its own ``runs.jsonl``
SEARCH_TABLE = "search.jsonl"


def versions() -> dict[str, str]:
    """Versions of Python and the libraries results depend on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("obce", "torch", "transformers", "datasets", "gudhi", "numpy", "numba", "scikit-learn", "scipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the obce source tree (suffixed ``-dirty`` with local changes), if any."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        if not commit:
            return None
        # only changes to the code itself (results written into the checkout do not count)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None

#: The commit of the code this process runs: taken when obce was imported, since the checkout may
#: move on while a long run is in progress.
LOADED_COMMIT = git_commit()


def device_description(device: str | None = None) -> str:
    """Human-readable device: the GPU's name on CUDA, the CPU's on CPU."""
    import torch

    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(*, params: dict[str, Any], seed: int | None = None, device: str | None = None,
               wall_time_s: float | None = None, **extra: Any) -> dict[str, Any]:
    """A provenance block for a result record. ``git_commit`` is the commit of the running code (when
    obce was imported); ``git_commit_at_save`` is added when the checkout has changed since."""
    now = git_commit()
    moved = {"git_commit_at_save": now} if now != LOADED_COMMIT else {}
    return {"schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": to_jsonable(params), "seed": seed, "device": device_description(device),
            "versions": versions(), "git_commit": LOADED_COMMIT, **moved, "wall_time_s": wall_time_s,
            "host": platform.node(), **to_jsonable(extra)}


METRIC_RANGES = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "matthews_correlation": (-1.0, 1.0),
                 "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}

REQUIRED_PROVENANCE = ("params", "seed", "device", "versions", "git_commit", "wall_time_s", "model",
                       "data", "train_size", "eval_size")


def validate_record(record: dict[str, Any], where: str = "record") -> None:
    """Check a GLUE record against the schema; raises ``ObceInputError`` naming ``where`` and the field.

    A record is an object with a known ``task``; ``metrics`` holds each of the task's metrics as a
    number in its range (never a bool), or ``None`` with the reason in ``metrics_undefined``;
    ``degenerate``, where present, is a bool; ``provenance`` is complete and says which run it is:
    ``importance`` (a name), ``level`` (0-3) and ``seed`` (an integer >= 0).
    """
    from .pruning import LEVELS

    if not isinstance(record, dict):
        raise ObceInputError(f"{where}: a JSON {type(record).__name__}, not a record (an object)")
    for key in ("task", "metrics", "provenance"):
        if key not in record:
            raise ObceInputError(f"{where}: missing key {key!r}")
    info = get_task(record["task"])
    metrics, undefined = record["metrics"], record.get("metrics_undefined") or {}
    if not isinstance(metrics, dict) or not isinstance(undefined, dict):
        raise ObceInputError(f"{where}: metrics (and metrics_undefined) must be objects")
    suffixes = [""] + (["_mm"] if len(info.dev_files) > 1 else [])
    for name in info.metrics:
        for sfx in suffixes:
            value = metrics.get(name + sfx, "(absent)")
            lo, hi = METRIC_RANGES[name]
            if value is None and isinstance(undefined.get(name + sfx), str):
                continue  # undefined, and the record says why
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not lo <= value <= hi):
                raise ObceInputError(f"{where}: field metrics.{name + sfx}={value!r}: expected a number in [{lo}, {hi}]"
                                     " (or null with its reason in metrics_undefined)")
    if "degenerate" in record and not isinstance(record["degenerate"], (bool, type(None))):
        raise ObceInputError(f"{where}: field degenerate={record['degenerate']!r}: expected true or false")
    prov = record["provenance"]
    if not isinstance(prov, dict):
        raise ObceInputError(f"{where}: field provenance: expected an object")
    missing = [k for k in REQUIRED_PROVENANCE if prov.get(k) in (None, "", {})]
    if missing:
        raise ObceInputError(f"{where}: provenance lacks {missing}")
    if not isinstance(prov["versions"], dict) or not prov["versions"].get("torch") or \
            not prov["versions"].get("transformers"):
        raise ObceInputError(f"{where}: provenance versions lack torch/transformers")
    for key, ok, expected in (("importance", lambda v: isinstance(v, str) and v, "a score or method name"),
                              ("level", lambda v: isinstance(v, int) and not isinstance(v, bool) and v in LEVELS,
                               f"one of {LEVELS}"),
                              ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                               "an integer >= 0")):
        if key == "level" and prov.get(key) is None and isinstance(prov.get("keep_fraction"), (int, float)) \
                and 0 < prov["keep_fraction"] <= 1:
            continue  # pruned to a keep fraction (obce prune --keep-fraction), not to a level
        if not ok(prov.get(key)):
            raise ObceInputError(f"{where}: field provenance.{key}={prov.get(key, '(absent)')!r}: expected {expected}")


def main_value(record: dict[str, Any]) -> float:
    """A record's main dev metric for averages: the metric, or 0 where a correlation is undefined
    (constant predictions correlate with nothing: the majority-class floor of CoLA and STS-B)."""
    value = record["metrics"][get_task(record["task"]).main_metric]
    return 0.0 if value is None else float(value)


def load_records(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every GLUE record under ``root`` (recursively), validated, with its ``path``. A fine-tuned
    checkpoint's own record (``CHECKPOINT_RECORD``, beside its weights) describes the checkpoint, not
    a run of the experiment, and is skipped."""
    records = []
    for path in sorted(Path(root).rglob("*.json")):
        if path.name == CHECKPOINT_RECORD:
            continue
        rec = read_json(path)
        if not isinstance(rec, dict):
            raise ObceInputError(f"{path}: a JSON {type(rec).__name__}, not a record (an object)")
        if rec.get("kind") != "glue_result":
            continue
        validate_record(rec, str(path))
        rec["path"] = str(path)
        records.append(rec)
    return records


def finetune_protocol(record: dict[str, Any]) -> str:
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


def check_one_protocol(records: list[dict[str, Any]]) -> None:
    """Raise when records of different fine-tuning protocols would be averaged or paired together."""
    found = sorted({finetune_protocol(r) for r in records})
    if len(found) > 1:
        raise ObceInputError(f"records from {len(found)} fine-tuning protocols ({'; '.join(found)}) under "
                             f"{', '.join(record_dirs(records))}: summarize each protocol's records separately")


def run_key(record: dict[str, Any]) -> tuple[str, str, int, int]:
    """What identifies a run: (task, importance, level, seed); the unpruned model is ("none", 0)."""
    p = record["provenance"]
    return record["task"], p.get("importance", "none"), p.get("level", 0), p["seed"]


def check_one_run_each(records: list[dict[str, Any]]) -> None:
    """Raise when two records are the same run (:func:`run_key`), e.g. an ablation's records loaded
    together with the main ones: they would be averaged as if they were more seeds."""
    seen: dict[tuple, str] = {}
    for r in records:
        key = run_key(r)
        if key in seen:
            raise ObceInputError(f"two records of task={key[0]} importance={key[1]} level={key[2]} seed={key[3]}: "
                                 f"{seen[key]} and {r.get('path', '?')}; summarize each experiment's records "
                                 "separately, or relabel one set (obce.results.relabel)")
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


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSONL table (a last line cut short by a killed run is left out)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True), 1):
        if not line.endswith("\n"):
            logger.warning("%s:%d: an unfinished row (the run was killed); it is rerun", path, i)
            break
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ObceInputError(f"{path}:{i}: not a JSON row ({exc})") from exc
    return rows


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one row, flushed to disk, after cutting any unfinished last line."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(to_jsonable(row)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


#: The fields every row of a retraining-free table has, and what each must be.
POSTTRAIN_ROW = {"cell": str, "task": str, "seed": int, "draw": int, "importance": str, "keep_fraction": (int, float),
                 "compensation": str, "metrics": dict, "run": str, "inputs_key": str}


SEARCH_ROW = {"cell": str, "task": str, "seed": int, "draw": int, "score": str, "flops_fraction": (int, float),
              "search": str, "rearranged": bool, "tuning": str, "heads_kept": list, "neurons_kept": list,
              "metrics": dict, "degenerate": bool, "run": str, "inputs_key": str}


def validate_row(row: Any, where: str, schema: dict[str, Any] | None = None) -> None:
    """Check one row of a retraining-free table (``schema``: :data:`POSTTRAIN_ROW`, the default, or
    :data:`SEARCH_ROW`); raises ``ObceInputError`` naming ``where`` and the field."""
    schema = POSTTRAIN_ROW if schema is None else schema
    if not isinstance(row, dict):
        raise ObceInputError(f"{where}: a JSON {type(row).__name__}, not a row (an object)")
    for key, kind in schema.items():
        value = row.get(key)
        if kind is bool:
            if not isinstance(value, bool):
                raise ObceInputError(f"{where}: field {key}={value!r}: expected true or false")
        elif isinstance(value, bool) or not isinstance(value, kind):
            raise ObceInputError(f"{where}: field {key}={value!r}: expected {getattr(kind, '__name__', 'a number')}")
    get_task(row["task"])
    main = row.get("main")
    if main is not None and (isinstance(main, bool) or not isinstance(main, (int, float)) or not math.isfinite(main)):
        raise ObceInputError(f"{where}: field main={main!r}: expected a number or null (undefined)")
    fraction = row["keep_fraction"] if "keep_fraction" in schema else row["flops_fraction"]
    if not 0 < fraction <= 1 or row["seed"] < 0 or row["draw"] < -1:
        raise ObceInputError(f"{where}: {'keep_fraction' if 'keep_fraction' in schema else 'flops_fraction'}, seed "
                             f"or draw out of range ({fraction}, {row['seed']}, {row['draw']})")


def posttrain_rows(out: str | os.PathLike, table: str = POSTTRAIN_TABLE) -> list[dict[str, Any]]:
    """The rows of a retraining-free table (``<out>/posttrain.jsonl``, or ``table``: :data:`SEARCH_TABLE`) that a reader should use: those
    of the table's current inputs (the latest run's inputs key and model fingerprint), one per cell
    (the last written), each validated (:func:`validate_row`). Rows of other inputs, which ``--force``
    wrote beside them, are left out with a warning."""
    out = Path(out)
    runs = read_jsonl(out / POSTTRAIN_RUNS)
    rows = read_jsonl(out / table)
    schema = SEARCH_ROW if table == SEARCH_TABLE else POSTTRAIN_ROW
    for i, row in enumerate(rows, 1):
        validate_row(row, f"{out / table}:{i}", schema)
    if not runs:
        return list({r["cell"]: r for r in rows}.values())
    last = runs[-1]
    current = {r.get("run") for r in runs if r.get("inputs_key") == last.get("inputs_key")
               and r.get("model_fingerprint") == last.get("model_fingerprint")}
    kept = [r for r in rows if r["run"] in current]
    if len(kept) < len(rows):
        logger.warning("%s: %d row(s) of other inputs than the latest run's are left out", out / table,
                       len(rows) - len(kept))
    return list({r["cell"]: r for r in kept}.values())

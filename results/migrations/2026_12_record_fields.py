"""Migration of the GLUE records made before issue #35's fields existed, run once and committed with
its output. Idempotent: a second run changes nothing.

* ``degenerate`` (every dev prediction one class, or a regression's predictions with zero variance).
  Records made before the field did not store their predictions, so it is inferred from the metrics,
  against the metrics of predicting each class for the whole dev set (``constant_metrics``):
  - STS-B: Pearson's r is undefined exactly when the predictions have zero variance: exact.
  - MRPC: accuracy and F1 together equal those of a constant prediction only when every prediction is
    that class (TP + TN and 2TP / (2TP + FP + FN) fix TP, TN, FP and FN): exact.
  - Accuracy-only tasks (RTE, SST-2, WNLI) and CoLA (MCC): metrics that differ from every constant
    prediction's prove the model is not degenerate; metrics equal to one are marked degenerate, which is
    necessary but not proof (a model can score a class's share by chance). Those records say so in
    ``provenance.degenerate_from``.
* The records of adapting by pruning (``method: masks``) made before the pooler was frozen get the size
  with and without the mask's storage, as :mod:`obce.methods.masks` now records it:
  ``size_nonzero_bytes`` (4 bytes per weight left), ``mask_storage_bytes`` (one bit per masked weight, as
  recorded), ``size_with_masks_bytes`` (their sum), and ``pooler_trained: true`` (those runs trained the
  pooler densely). ``mask_changed`` was not measured and stays absent: a rerun measures it.

Each migrated record gets ``provenance.migrated`` listing this script. Metrics, parameters and every
other field are unchanged. Run from the repository root with the GLUE dev files available
(``OBCE_GLUE_DIR``): ``python results/migrations/2026_12_record_fields.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NOTE = "results/migrations/2026_12_record_fields.py"
EXACT = {"stsb", "mrpc"}
WEIGHT_BYTES = 4


def constant_metrics(task: str) -> list[dict]:
    """The dev metrics of predicting each class for every dev example (classification tasks)."""
    from obce.data import get_task, load_glue
    from obce.glue import compute_metrics

    dev = np.asarray(load_glue(task, "validation")["label"])
    return [compute_metrics(task, np.full(len(dev), c, dtype=dev.dtype), dev)
            for c in range(get_task(task).num_labels)]


def infer_degenerate(record: dict, constants: dict[str, list[dict]]) -> tuple[bool, str]:
    """Whether the record's metrics are those of a degenerate model, and how sure that is."""
    task, metrics = record["task"], record.get("metrics") or {}
    if task == "stsb":
        return metrics.get("pearson") is None or not np.isfinite(metrics["pearson"]), "metrics (exact)"
    if task not in constants:
        constants[task] = constant_metrics(task)
    same = any(all(k in m and m[k] is not None and metrics.get(k) is not None and abs(m[k] - metrics[k]) < 1e-9
                   for k in metrics) for m in constants[task])
    if task in EXACT or not same:
        return same, "metrics (exact)"
    return True, "metrics equal to a constant prediction's (predictions not stored; not proof)"


def _append_note(prov: dict) -> dict:
    notes = prov.get("migrated")
    if notes is None:
        return dict(prov, migrated=NOTE)
    if NOTE in str(notes):
        return prov
    return dict(prov, migrated=f"{notes}; {NOTE}")


def migrate(record: dict, constants: dict[str, list[dict]]) -> dict | None:
    """The migrated record, or ``None`` when it needs nothing."""
    prov = record["provenance"]
    changed = dict(record)
    if "degenerate" not in record:
        degenerate, how = infer_degenerate(record, constants)
        changed["degenerate"] = bool(degenerate)
        prov = dict(prov, degenerate_from=how)
    if prov.get("method") == "masks" and "size_with_masks_bytes" not in prov:
        nonzero = WEIGHT_BYTES * int(prov["parameters"])
        prov = dict(prov, size_nonzero_bytes=nonzero,
                    size_with_masks_bytes=nonzero + int(prov["mask_storage_bytes"]), pooler_trained=True)
    if changed == record and prov == record["provenance"]:
        return None
    changed["provenance"] = _append_note(prov)
    # keep the field order of new records: kind, task, metrics, degenerate, provenance
    order = ["kind", "task", "metrics", "metrics_undefined", "degenerate", "provenance"]
    return {k: changed[k] for k in order if k in changed} | {k: v for k, v in changed.items() if k not in order}


def main() -> None:
    constants: dict[str, list[dict]] = {}
    counts = {"records": 0, "degenerate": 0, "not proof": 0, "masks": 0}
    for path in sorted((ROOT / "results").glob("*/glue/*/*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "provenance" not in record:
            continue
        new = migrate(record, constants)
        if new is None:
            continue
        path.write_text(json.dumps(new, indent=2) + "\n")
        counts["records"] += 1
        if new["degenerate"] and "degenerate" not in record:
            counts["degenerate"] += 1
            flag = "degenerate" + ("" if "exact" in new["provenance"]["degenerate_from"] else " (not proof)")
            counts["not proof"] += "exact" not in new["provenance"]["degenerate_from"]
            print(f"{path.relative_to(ROOT)}: {flag}")
        if new["provenance"].get("method") == "masks" and record["provenance"].get("size_with_masks_bytes") is None:
            counts["masks"] += 1
    print(f"{counts['records']} records migrated: {counts['degenerate']} marked degenerate "
          f"({counts['not proof']} of them by a constant prediction's metrics, not proof), "
          f"{counts['masks']} masks records given their sizes")


if __name__ == "__main__":
    main()

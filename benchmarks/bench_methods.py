"""Every compression method of the methods protocol at the budgets of OBCE levels 1-3, and at the
sizes of their own (level 0 in the table): encoder parameters, size on disk and inference latency
(batch x seq tokens) as ratios to the unpruned MiniLM, measured in one run.

The models are built as the protocol builds them (:func:`obce.methods.compress` on each entry of
``params/protocols/cpu_fulltrain/methods.yaml``), before any training: the shapes, not the trained
values, set the cost. FFN pruning (``ffn_pruning``: any importance score, the shapes are the same)
prunes by random scores; the data-driven choices read 64 SST-2 training sentences; the masks are
applied as zeros (a dense model, which is what their checkpoint is).

    python benchmarks/bench_methods.py            # -> benchmarks/results/methods_inference-cpu.json
"""
from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from _common import median_time, save, table

from obce import count_parameters, load_corpus, load_model
from obce.methods import masks, method_budget, method_spec, own_size, size_on_disk
from obce.methods.registry import compress

CONFIG = Path(__file__).resolve().parents[1] / "params" / "protocols" / "cpu_fulltrain" / "methods.yaml"
#: Entries of the protocol kept out: the earlier protocol's, whose shapes equal an entry measured here.
SAME_SHAPE = ("kronecker_task_only", "kronecker_19x_task_only", "hash_table")


def entries(path: Path = CONFIG) -> list[dict]:
    """The methods protocol's entries, completed (:func:`obce.methods.method_spec`), FFN pruning first."""
    specs = [method_spec(e) for e in yaml.safe_load(path.read_text())["methods"]]
    return [method_spec({"name": "ffn_pruning"}), *(s for s in specs if s["label"] not in SAME_SHAPE)]


def built(spec: dict, model, tokenizer, level: int, texts, scores):
    """The entry's model for level ``level`` (or its own size), ready to run as its checkpoint would."""
    small, _ = compress(spec, model, method_budget(spec, model, level), tokenizer=tokenizer, texts=texts, seed=0,
                        scores=scores, max_length=64)
    return masks.apply_masks(small) if spec["name"] == "masks" else small


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    model, tokenizer = load_model("minilm")
    texts = load_corpus("sst2", n=64, split="train")
    n_layers, width = model.config.num_hidden_layers, model.config.intermediate_size
    scores = np.random.default_rng(0).random((n_layers, width))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
    mask = torch.ones_like(ids)
    plan = [("none", None, 0)] + [(s["label"], s, k) for s in entries() for k in ((0,) if own_size(s) else (1, 2, 3))]
    with torch.inference_mode():  # the first forwards of a process are slow (allocator, kernels): not the baseline's
        for _ in range(5):
            model(input_ids=ids, attention_mask=mask)
    rows, base = [], None
    for label, spec, level in plan:
        m = (model if spec is None else built(spec, copy.deepcopy(model), tokenizer, level, texts, scores)).eval()

        def run():
            with torch.inference_mode():
                m(input_ids=ids, attention_mask=mask)

        t = median_time(run, repeat=7, warmup=2)
        params = count_parameters(m)
        disk = size_on_disk(m, Path(tempfile.gettempdir()))
        base = base or (t, params, disk)
        rows.append(dict(method=label, level=level, parameters=params, latency_ms=1e3 * t, speedup=base[0] / t,
                         param_ratio=base[1] / params, disk_mb=disk / 1e6, disk_ratio=base[2] / disk))
        print(rows[-1], flush=True)
    table(rows, ["method", "level", "parameters", "latency_ms", "speedup", "param_ratio", "disk_mb", "disk_ratio"])
    save("methods_inference", rows, vars(args), "cpu")


if __name__ == "__main__":
    main()

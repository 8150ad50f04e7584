"""Every compression method at the budgets of OBCE levels 1-3, and at the sizes of their own (level 0
in the table): encoder parameters, size on disk and inference latency (batch x seq tokens) as ratios
to the unpruned MiniLM, measured in one run.

OBCE prunes neurons by random scores here (the score does not change the shapes); layer removal
removes the last blocks (the criterion does not change the shapes); the masks are drawn at random
at the level's sparsity and applied as zeros: a dense model, which is what its checkpoint is; the
Kronecker factors are the nearest ones with the budget's ranks (untrained); EELBERT's table is fitted
for one step only (its shape, not its values, sets the cost).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import median_time, save, table

from obce import count_parameters, load_model, prune
from obce.methods import (
    eelbert,
    kronecker,
    layer_removal,
    level_budget,
    masks,
    method_budget,
    method_spec,
    size_on_disk,
)

#: The sizes of their own that params/methods_cpu.yaml runs (labels as there).
OWN = {"kronecker_19x": dict(name="kronecker", compression=19, embedding_factor=24),
       "eelbert_1k": dict(name="eelbert", buckets=1000)}


def compressed(model, tokenizer, method: str, level: int):
    """``model`` compressed by ``method`` to level ``level``'s budget, or to the size of its own of an
    :data:`OWN` label (shapes as the real runs')."""
    if method == "none":
        return model
    spec = method_spec(OWN[method]) if method in OWN else None
    params = spec["params"] if spec else {}
    budget = method_budget(spec, model, level) if spec else level_budget(model, level)
    remove = count_parameters(model) - budget
    method = spec["name"] if spec else method
    if method == "kronecker":
        return kronecker.compress_to(model, budget, embedding_factor=params.get("embedding_factor") or None)
    if method == "eelbert":
        import copy

        buckets = int(params.get("buckets", 0)) or eelbert.buckets_for(model, remove)
        return eelbert.replace_embeddings(copy.deepcopy(model), tokenizer, buckets=buckets, epochs=1)
    if method == "obce":
        return prune(model, np.random.default_rng(level).random((6, 1536)), level=level)
    if method == "layer_removal":
        return layer_removal.remove_blocks(model, n_remove=layer_removal.blocks_for(model, remove))
    import copy

    m = masks.add_masks(copy.deepcopy(model), masks.sparsity_for(model, remove))
    gen = torch.Generator().manual_seed(level)
    for parent, name in masks.masked_linears(m):
        with torch.no_grad():
            getattr(parent, name).scores.copy_(torch.rand(getattr(parent, name).scores.shape, generator=gen))
    return masks.apply_masks(m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    model, tokenizer = load_model("minilm")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
    mask = torch.ones_like(ids)
    rows, base = [], None
    for method, level in [("none", 0)] + [(m, k) for k in (1, 2, 3) for m in ("obce", "layer_removal", "masks",
                                                                            "kronecker", "eelbert")] + [
            (label, 0) for label in OWN]:
        m = compressed(model, tokenizer, method, level).eval()

        def run():
            with torch.inference_mode():
                m(input_ids=ids, attention_mask=mask)

        t = median_time(run, repeat=5, warmup=1)
        params = masks.remaining_parameters(m) if method == "masks" else count_parameters(m)
        disk = size_on_disk(m, Path(tempfile.gettempdir()))
        base = base or (t, params, disk)
        rows.append(dict(method=method, level=level, parameters=params, latency_ms=1e3 * t, speedup=base[0] / t,
                         param_ratio=base[1] / params, disk_mb=disk / 1e6, disk_ratio=base[2] / disk))
        print(rows[-1], flush=True)
    table(rows, ["method", "level", "parameters", "latency_ms", "speedup", "param_ratio", "disk_mb", "disk_ratio"])
    save("methods_inference", rows, vars(args), "cpu")


if __name__ == "__main__":
    main()

"""One retraining-free cell (score + prune + compensate + evaluate on dev) against one fine-tune of the
same task, timed in one run: the ratio says how many cells cost one fine-tune.

    python benchmarks/bench_posttrain.py --task rte --glue-dir ../shared/glue
"""
from __future__ import annotations

import argparse
import time

from _common import save, table

from obce import load_corpus, load_model, select_neurons
from obce.compensation import compensate, ffn_statistics
from obce.glue import encode_dev, evaluate, finetune_and_evaluate
from obce.pruning import prune_ffn_neurons
from obce.scoring import score_neurons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--task", default="rte")
    ap.add_argument("--glue-dir", default=None)
    ap.add_argument("--importance", default="merge_radius")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--keep-fraction", type=float, default=0.5)
    args = ap.parse_args()
    base, tok = load_model(args.model)
    t0 = time.perf_counter()
    res = finetune_and_evaluate(base, args.task, tokenizer=tok, glue_dir=args.glue_dir, epochs=args.epochs, lr=5e-5,
                                batch_size=32, max_length=args.max_length, seed=0, keep_model=True, progress=False)
    finetune_s = time.perf_counter() - t0
    model = res.model
    dev = encode_dev(args.task, tok, args.max_length, args.glue_dir)
    texts = load_corpus(args.task, n=args.samples, split="train", glue_dir=args.glue_dir, seed=0)
    rows = []
    for comp in ("none", "bias", "ls"):
        t = time.perf_counter()
        scores = score_neurons(model, tok, texts, importance=args.importance, max_length=args.max_length,
                               progress=False)
        t_score = time.perf_counter()
        stats = ffn_statistics(model, tok, texts, max_length=args.max_length) if comp != "none" else None
        keep = select_neurons(scores, keep_fraction=args.keep_fraction)
        small = compensate(prune_ffn_neurons(model, keep), model, keep, stats, method=comp)
        t_prune = time.perf_counter()
        metrics = evaluate(small, tok, args.task, dev)
        t_eval = time.perf_counter()
        cell = t_eval - t
        rows.append(dict(compensation=comp, score_s=t_score - t, prune_compensate_s=t_prune - t_score,
                         evaluate_s=t_eval - t_prune, cell_s=cell, finetune_s=finetune_s,
                         cells_per_finetune=finetune_s / cell, metric=next(iter(metrics.values()))))
        print(rows[-1], flush=True)
    table(rows, ["compensation", "score_s", "prune_compensate_s", "evaluate_s", "cell_s", "finetune_s",
                 "cells_per_finetune"])
    save("posttrain_cell", rows, vars(args), "cpu")


if __name__ == "__main__":
    main()

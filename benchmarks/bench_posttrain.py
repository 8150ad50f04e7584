"""One retraining-free cell (score + prune + compensate + evaluate on dev) against one fine-tune of the
same task, timed in one run: the ratio says how many cells cost one fine-tune. With ``--search``, one
cell of Kwon et al.'s framework instead (mask gradients, the score of every head and neuron, the
FLOPs-constrained search, rearrangement, mask tuning, physical pruning and evaluation; issue #36 asks
for at most 1/10 of one fine-tune).

    python benchmarks/bench_posttrain.py --task rte --glue-dir ../shared/glue
    python benchmarks/bench_posttrain.py --task rte --glue-dir ../shared/glue --search --flops 0.6
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
    ap.add_argument("--search", action="store_true", help="time a cell of Kwon et al.'s framework instead")
    ap.add_argument("--flops", type=float, default=0.6)
    ap.add_argument("--finetuned", default=None, help="a checkpoint fine-tuned on the task: its fine-tune is not "
                    "timed again (the ratio then needs --finetune-s)")
    ap.add_argument("--finetune-s", type=float, default=None, help="the seconds of that fine-tune, measured before")
    args = ap.parse_args()
    if args.search:
        search_cell(args)
        return
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


def search_cell(args) -> None:
    """One (task, score, FLOPs constraint) cell of the search protocol, each step timed."""
    import math

    from transformers import AutoModelForSequenceClassification

    from obce.experiments.search_protocol import masks_of
    from obce.search import average_length, search, tune_masks
    from obce.unit_scores import mask_gradients, unit_scores
    from obce.units import head_dim, prune_units, unit_macs

    base, tok = load_model(args.model)
    if args.finetuned:
        model, finetune_s = AutoModelForSequenceClassification.from_pretrained(args.finetuned).eval(), args.finetune_s
    else:
        t0 = time.perf_counter()
        model = finetune_and_evaluate(base, args.task, tokenizer=tok, glue_dir=args.glue_dir, epochs=args.epochs,
                                      lr=5e-5, batch_size=32, max_length=args.max_length, seed=0, keep_model=True,
                                      progress=False).model
        finetune_s = time.perf_counter() - t0
    dev = encode_dev(args.task, tok, args.max_length, args.glue_dir)
    seq_len = average_length([r["input_ids"] for r in next(iter(dev.values()))[0]])
    texts, labels = load_corpus(args.task, n=args.samples, split="train", glue_dir=args.glue_dir, seed=0,
                                return_labels=True)
    rows = []
    for score in ("fisher", "merge_radius"):
        t = [time.perf_counter()]
        grads = mask_gradients(model, tok, texts, labels, args.max_length)
        scores = unit_scores(score, model, tok, texts, labels, max_length=args.max_length, grads=grads)
        t.append(time.perf_counter())
        (hm, nm), searched = masks_of("rearranged", score, scores, grads, args.flops, seq_len, model)
        t.append(time.perf_counter())
        h, n = unit_macs(seq_len, model.config.hidden_size, head_dim(model))
        teacher = search(*searched, math.sqrt(args.flops), h, n)
        hs, ns, _ = tune_masks(model, tok, texts, hm, nm, *teacher, max_length=args.max_length)
        t.append(time.perf_counter())
        keep_h, keep_n = [m.nonzero()[0] for m in hm], [m.nonzero()[0] for m in nm]
        small = prune_units(model, keep_h, keep_n, [s[k] for s, k in zip(hs, keep_h)], [s[k] for s, k in zip(ns, keep_n)])
        metrics = evaluate(small, tok, args.task, dev)
        t.append(time.perf_counter())
        cell = t[-1] - t[0]
        rows.append(dict(score=score, scores_s=t[1] - t[0], search_rearrange_s=t[2] - t[1], tuning_s=t[3] - t[2],
                         prune_evaluate_s=t[4] - t[3], cell_s=cell, finetune_s=finetune_s,
                         cell_per_finetune=cell / finetune_s if finetune_s else None,
                         metric=next(iter(metrics.values()))))
        print(rows[-1], flush=True)
    table(rows, ["score", "scores_s", "search_rearrange_s", "tuning_s", "prune_evaluate_s", "cell_s", "finetune_s",
                 "cell_per_finetune"])
    save("posttrain_search_cell", rows, vars(args), "cpu")


if __name__ == "__main__":
    main()

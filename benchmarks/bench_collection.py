"""Activation collection: forward with obce's hooks versus a plain forward; peak memory.

``overhead`` compares collection with a whole plain forward (collection stops after the last FFN
activation it needs, which saves the rest of that block); ``copy_overhead`` compares it with a plain
forward stopped at the same place, i.e. the cost of the hooks' copies alone."""
from __future__ import annotations

import argparse
import resource
import statistics

import torch
from _common import median_time, save, table

from obce import load_model
from obce.activations import _StopForward, collect_ffn_activations, token_lengths, tokenize
from obce.models import intermediate_modules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="minilm", help="name or checkpoint directory (e.g. the carried .carry/minilm-fp16)")
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=7, help="alternating plain/hooked/stopped-early runs")
    args = ap.parse_args()
    model, tok = load_model(args.model, device=args.device)
    words = "the quick brown fox jumps over the lazy dog while a gentle rain falls on the quiet town".split()
    texts = [" ".join(words[: 5 + (i * 7) % (len(words) - 5)] * 4) for i in range(args.texts)]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    rows = []
    for L in (64, 128):
        def plain(stop_early: bool = False):
            """A forward pass over the corpus; ``stop_early``: stopped where collection stops (after
            the last FFN activation), the same work collection does besides its copies."""
            def stop(*_):
                raise _StopForward
            handle = intermediate_modules(model)[-1].register_forward_hook(stop) if stop_early else None
            try:
                with torch.inference_mode():
                    for i in range(0, len(texts), 32):
                        try:
                            model(**tokenize(tok, texts[i:i + 32], L, args.device))
                        except _StopForward:
                            pass
            finally:
                if handle is not None:
                    handle.remove()

        def truncated():
            plain(stop_early=True)

        def hooked():
            collect_ffn_activations(model, tok, texts, max_length=L, batch_size=32, progress=False)

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        plain(), truncated(), hooked()  # warm up
        triples = [tuple(median_time(f, 1, 0, sync) for f in (plain, hooked, truncated)) for _ in range(args.repeat)]
        t_plain, t_hook, t_trunc = (statistics.median(t[i] for t in triples) for i in range(3))
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        clouds_mib = 6 * 1536 * len(texts) * int(token_lengths(tok, texts, L).max()) * 4 / 2**20
        rows.append(dict(max_length=L, texts=len(texts), plain_s=t_plain, truncated_s=t_trunc, hooked_s=t_hook,
                         overhead=t_hook / t_plain - 1, copy_overhead=t_hook / t_trunc - 1, clouds_MiB=clouds_mib,
                         peak_rss_growth_MiB=(rss1 - rss0) / 1024))
        print(rows[-1], flush=True)
    table(rows, ["max_length", "texts", "plain_s", "truncated_s", "hooked_s", "overhead", "copy_overhead", "clouds_MiB"])
    save("collection", rows, vars(args), args.device)


if __name__ == "__main__":
    main()

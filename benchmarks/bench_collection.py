"""Activation collection: forward with obce's hooks versus a plain forward; peak memory."""
from __future__ import annotations

import argparse
import resource
import statistics

import torch

from _common import median_time, save, table
from obce import load_model
from obce.activations import collect_ffn_activations, token_lengths, tokenize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=7, help="alternating plain/hooked pairs")
    args = ap.parse_args()
    model, tok = load_model("minilm", device=args.device)
    words = "the quick brown fox jumps over the lazy dog while a gentle rain falls on the quiet town".split()
    texts = [" ".join(words[: 5 + (i * 7) % (len(words) - 5)] * 4) for i in range(args.texts)]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    rows = []
    for L in (64, 128):
        def plain():
            with torch.inference_mode():
                for i in range(0, len(texts), 32):
                    model(**tokenize(tok, texts[i:i + 32], L, args.device))

        def hooked():
            collect_ffn_activations(model, tok, texts, max_length=L, batch_size=32, progress=False)

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        plain(), hooked()  # warm up
        pairs = [(median_time(plain, 1, 0, sync), median_time(hooked, 1, 0, sync)) for _ in range(args.repeat)]
        t_plain = statistics.median(p for p, _ in pairs)
        t_hook = statistics.median(h for _, h in pairs)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        clouds_mib = 6 * 1536 * len(texts) * int(token_lengths(tok, texts, L).max()) * 4 / 2**20
        rows.append(dict(max_length=L, texts=len(texts), plain_s=t_plain, hooked_s=t_hook,
                         overhead=t_hook / t_plain - 1, clouds_MiB=clouds_mib,
                         peak_rss_growth_MiB=(rss1 - rss0) / 1024))
        print(rows[-1], flush=True)
    table(rows, ["max_length", "texts", "plain_s", "hooked_s", "overhead", "clouds_MiB"])
    save("collection", rows, vars(args), args.device)


if __name__ == "__main__":
    main()

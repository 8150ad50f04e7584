"""Inference of MiniLM pruned to levels 0-3: latency and throughput versus level 0, and FLOP ratio."""
from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import median_time, save, table

from obce import count_parameters, load_model, prune


def encoder_flops(config, seq: int) -> float:
    """Multiply-adds x 2 of the encoder's linear layers and attention products for one sequence."""
    h, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * seq * (4 * h * h + 2 * h * f) + 2 * 2 * seq * seq * h
    return float(n * per_layer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="minilm", help="name or checkpoint directory (e.g. the carried .carry/minilm-fp16)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    model, _ = load_model(args.model, device=args.device)
    scores = np.random.default_rng(0).random((6, 1536))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g).to(args.device)
    mask = torch.ones_like(ids)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    rows, base = [], None
    for level in (0, 1, 2, 3):
        m = prune(model, scores, level=level).to(args.device).eval()

        def run():
            with torch.inference_mode():
                m(input_ids=ids, attention_mask=mask)

        t = median_time(run, repeat=7, warmup=2, sync=sync)
        flops = encoder_flops(m.config, args.seq)
        base = base or (t, flops)
        rows.append(dict(level=level, intermediate=m.config.intermediate_size, params=count_parameters(m),
                         latency_ms=1e3 * t, seq_per_s=args.batch / t, speedup=base[0] / t,
                         flop_ratio=base[1] / flops, speedup_over_flop_ratio=(base[0] / t) / (base[1] / flops)))
        print(rows[-1], flush=True)
    table(rows, ["level", "intermediate", "latency_ms", "seq_per_s", "speedup", "flop_ratio",
                 "speedup_over_flop_ratio"])
    save("pruned_inference", rows, vars(args), args.device)


if __name__ == "__main__":
    main()

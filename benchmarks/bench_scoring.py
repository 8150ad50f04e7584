"""Scoring one FFN layer: fast exact H0 versus a gudhi RipsComplex loop (ratio in one run)."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import median_time, save, table

from obce.persistence import h0_deaths


def realistic_clouds(n_neurons: int, n_points: int, dim: int, seed: int = 0) -> torch.Tensor:
    """GELU outputs of random pre-activations, with zero padding tails: shaped like real clouds."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.gelu(torch.randn(n_neurons, n_points, dim, generator=g) - 0.5)
    lengths = torch.randint(dim // 4, dim + 1, (n_points,), generator=g)
    mask = torch.arange(dim)[None, :] < lengths[:, None]
    return x * mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gudhi-sample", type=int, default=24)
    ap.add_argument("--full", action="store_true", help="also BERT-base-sized (12 x 3072, N=512, L=128)")
    ap.add_argument("--reference", choices=["gudhi", "cpu"], default="gudhi",
                    help="what the sample is checked against: a gudhi loop (timed and scaled to the layer), "
                         "or, where gudhi is not installed, the fast path on the CPU (exactness only)")
    args = ap.parse_args()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    rows = []
    for n_points, dim, neurons in [(256, 64, 1536), (512, 64, 1536), (256, 128, 3072), (512, 128, 3072)]:
        x = realistic_clouds(neurons, n_points, dim).to(args.device)
        h0_deaths(x[:8], device=args.device)  # compile / warm up
        fast_s = median_time(lambda: h0_deaths(x, device=args.device), repeat=3, sync=sync)
        sample = x[: args.gudhi_sample].cpu()
        t = time.perf_counter()
        ref = h0_deaths(sample, method="gudhi") if args.reference == "gudhi" else h0_deaths(sample, device="cpu")
        gudhi_per_neuron = (time.perf_counter() - t) / len(sample) if args.reference == "gudhi" else float("nan")
        fast_sample = h0_deaths(sample.to(args.device), device=args.device)
        rel = float(np.abs(fast_sample - ref).max() / ref.max())
        gudhi_layer = gudhi_per_neuron * neurons
        rows.append(dict(points=n_points, dim=dim, neurons=neurons, fast_s=fast_s,
                         gudhi_s_est=gudhi_layer, gudhi_ms_per_neuron=1e3 * gudhi_per_neuron,
                         speedup=gudhi_layer / fast_s, max_rel_diff=rel))
        print(rows[-1], flush=True)
    if args.full:
        x = realistic_clouds(3072, 512, 128).to(args.device)
        t = time.perf_counter()
        for _ in range(12):
            h0_deaths(x, device=args.device)
        if sync:
            sync()
        rows.append(dict(points=512, dim=128, neurons=12 * 3072, fast_s=time.perf_counter() - t,
                         gudhi_s_est=float("nan"), gudhi_ms_per_neuron=float("nan"), speedup=float("nan"),
                         max_rel_diff=float("nan")))
    table(rows, ["points", "dim", "neurons", "fast_s", "gudhi_s_est", "speedup", "max_rel_diff"])
    save("scoring", rows, vars(args), args.device)


if __name__ == "__main__":
    main()

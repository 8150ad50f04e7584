"""Importance scores other than persistence, for controls at the same sparsity.

All return an array of shape (n_layers, n_neurons) where higher means more important, so that
:func:`obce.prune` takes any of them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .models import ffn_layers


def random_scores(model: nn.Module, seed: int = 0) -> np.ndarray:
    """Uniform random scores (a seeded random choice of neurons), shape (n_layers, n_neurons)."""
    layers = ffn_layers(model)
    return np.random.default_rng(seed).random((len(layers), layers[0][0].out_features))


def magnitude_scores(model: nn.Module) -> np.ndarray:
    """L2 norm of each neuron's weights: its row of ``intermediate.dense`` (with bias) and its
    column of ``output.dense``. Shape (n_layers, n_neurons)."""
    rows = []
    with torch.no_grad():
        for inter, out in ffn_layers(model):
            w_in = torch.cat([inter.weight, inter.bias[:, None]], dim=1) if inter.bias is not None else inter.weight
            norm = torch.sqrt((w_in.double() ** 2).sum(1) + (out.weight.double() ** 2).sum(0))
            rows.append(norm.cpu().numpy())
    return np.stack(rows)


def activation_scores(clouds: torch.Tensor, statistic: str = "mean_abs",
                      lengths: torch.Tensor | None = None) -> np.ndarray:
    """Activation statistics of one layer's clouds.

    Parameters
    ----------
    clouds : Tensor of shape (n_neurons, n_texts, D)
        As collected by :mod:`obce.activations` (padding positions are 0).
    statistic : {"mean_abs", "variance"}
        Mean absolute activation, or variance of the activation, over the real tokens.
    lengths : Tensor of shape (n_texts,), optional
        Real token counts; default: every position counts.

    Returns
    -------
    ndarray of shape (n_neurons,)
    """
    x = clouds.double()
    count = float(x.shape[1] * x.shape[2]) if lengths is None else float(lengths.sum())
    if statistic == "mean_abs":
        return (x.abs().sum((1, 2)) / count).cpu().numpy()
    if statistic == "variance":
        mean = x.sum((1, 2)) / count
        return ((x * x).sum((1, 2)) / count - mean**2).clamp_min(0).cpu().numpy()
    raise ValueError(f"statistic {statistic!r}: expected 'mean_abs' or 'variance'")

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


def taylor_scores(model: nn.Module, tokenizer, texts, labels, *, max_length: int = 128, batch_size: int = 32,
                  device: str | torch.device | None = None) -> np.ndarray:
    """First-order Taylor importance: sum over real tokens and texts of |activation x d loss / d activation|
    (Molchanov et al.; Michel et al. 2019 for heads; TextPruner's FFN importance).

    Parameters
    ----------
    model : a ``...ForSequenceClassification`` model (a task head is needed for a loss)
    texts : sequence of str or (str, str)
    labels : sequence of int (float for regression), one per text

    Returns
    -------
    ndarray of shape (n_layers, n_neurons)
    """
    from .activations import tokenize
    from .data import validate_texts
    from .errors import ObceInputError
    from .models import intermediate_modules

    texts = validate_texts(texts)
    if "ForSequenceClassification" not in type(model).__name__:
        raise ObceInputError("taylor importance needs a model with a task head (e.g. a fine-tuned "
                             "BertForSequenceClassification) to define a loss")
    if len(labels) != len(texts):
        raise ObceInputError(f"{len(labels)} labels for {len(texts)} texts")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    modules = intermediate_modules(model)
    totals = [torch.zeros(m.dense.out_features, dtype=torch.float64, device=device) for m in modules]
    outputs: dict[int, torch.Tensor] = {}

    def make_hook(i):
        def hook(_m, _inp, out):
            out.retain_grad()
            outputs[i] = out
        return hook

    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(modules)]
    was_training = model.training
    model.eval()
    regression = getattr(model.config, "problem_type", None) == "regression" or model.config.num_labels == 1
    try:
        for i0 in range(0, len(texts), batch_size):
            batch = tokenize(tokenizer, texts[i0:i0 + batch_size], max_length, device)
            y = torch.tensor(labels[i0:i0 + batch_size], device=device,
                             dtype=torch.float32 if regression else torch.long)
            model.zero_grad(set_to_none=True)
            loss = model(**batch, labels=y).loss
            loss.backward()
            mask = batch["attention_mask"][..., None].to(torch.float64)
            for i, out in outputs.items():
                totals[i] += ((out.detach().double() * out.grad.double()).abs() * mask).sum((0, 1))
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return torch.stack(totals).cpu().numpy()

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
    (Molchanov et al.; Michel et al. 2019 for heads; TextPruner's FFN importance), with the batch's mean
    loss.

    Parameters
    ----------
    model : a ``...ForSequenceClassification`` model (a task head is needed for a loss)
    texts : sequence of str or (str, str)
    labels : sequence of int (float for regression), one per text

    Returns
    -------
    ndarray of shape (n_layers, n_neurons)
    """
    totals = None
    for mask, acts, grads in _activation_gradients(model, tokenizer, texts, labels, max_length, batch_size, device,
                                                   summed_loss=False):
        terms = [((a.double() * g.double()).abs() * mask[..., None]).sum((0, 1)) for a, g in zip(acts, grads)]
        totals = terms if totals is None else [t + u for t, u in zip(totals, terms)]
    return torch.stack(totals).cpu().numpy()


def fisher_scores(model: nn.Module, tokenizer, texts, labels, *, max_length: int = 128, batch_size: int = 32,
                  device: str | torch.device | None = None) -> np.ndarray:
    """Fisher importance of a per-neuron mask (Kwon et al. 2022): with a mask ``m`` multiplying each
    neuron's activation (``m = 1``), the sum over texts ``i`` of ``(d L_i / d m_j)^2``, where
    ``d L_i / d m_j = sum_t a_{i,t,j} d L_i / d a_{i,t,j}`` over the real tokens of text ``i``.

    The texts are independent in a forward pass, so one backward pass of the batch's summed loss gives
    every text's own gradient.

    Parameters
    ----------
    model : a ``...ForSequenceClassification`` model
    texts : sequence of str or (str, str); labels : one per text

    Returns
    -------
    ndarray of shape (n_layers, n_neurons)
    """
    totals = None
    for mask, acts, grads in _activation_gradients(model, tokenizer, texts, labels, max_length, batch_size, device,
                                                   summed_loss=True):
        per_text = [((a.double() * g.double()) * mask[..., None]).sum(1) for a, g in zip(acts, grads)]  # (B, n)
        terms = [(d * d).sum(0) for d in per_text]
        totals = terms if totals is None else [t + u for t, u in zip(totals, terms)]
    return torch.stack(totals).cpu().numpy()


def wifv_scores(model: nn.Module, variance: np.ndarray) -> np.ndarray:
    """FLAP's weighted input feature variance: each neuron's activation variance times the squared norm
    of its output weights (its column of ``output.dense``).

    Parameters
    ----------
    variance : ndarray of shape (n_layers, n_neurons)
        Activation variance over the corpus (``score_neurons(..., importance="activation_variance")``).

    Returns
    -------
    ndarray of shape (n_layers, n_neurons)
    """
    norms = np.stack([(out.weight.detach().double() ** 2).sum(0).cpu().numpy() for _, out in ffn_layers(model)])
    return np.asarray(variance, dtype=np.float64) * norms


def _activation_gradients(model: nn.Module, tokenizer, texts, labels, max_length: int, batch_size: int,
                          device, summed_loss: bool):
    """Per batch: the real-token mask (B, T) as float64, and per layer the FFN activations and the
    gradients of the loss with respect to them, each (B, T, n_neurons). The loss is the batch's mean
    (the model's own), or with ``summed_loss`` its sum over texts."""
    from .activations import tokenize
    from .data import validate_texts
    from .errors import ObceInputError
    from .models import intermediate_modules

    texts = validate_texts(texts)
    if "ForSequenceClassification" not in type(model).__name__:
        raise ObceInputError("gradient-based importance needs a model with a task head (e.g. a fine-tuned "
                             "BertForSequenceClassification) to define a loss")
    if len(labels) != len(texts):
        raise ObceInputError(f"{len(labels)} labels for {len(texts)} texts")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    modules = intermediate_modules(model)
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
            (loss * len(y) if summed_loss else loss).backward()  # the model's loss is the batch mean
            mask = batch["attention_mask"].to(torch.float64)
            yield mask, [outputs[i].detach() for i in range(len(modules))], \
                [outputs[i].grad for i in range(len(modules))]
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)

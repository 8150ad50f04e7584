"""Select and physically remove FFN intermediate neurons; count parameters.

Level ``k`` in {0, 1, 2, 3} keeps, in every layer, the neurons whose score is above that layer's
k-th quartile, i.e. a fraction ``1 - k/4`` of them; ``keep_fraction`` allows any percentile. Every
layer keeps exactly ``ceil(keep_fraction * intermediate_size)`` neurons, the highest scores first,
ties broken by the lower neuron index, so the pruned model has one ``intermediate_size`` and is a
vanilla ``transformers`` checkpoint (``save_pretrained`` / ``AutoModel.from_pretrained``).

Pruning is physical: rows of ``intermediate.dense`` and the matching columns of ``output.dense``
are removed with ``transformers.pytorch_utils.prune_linear_layer``.
"""
from __future__ import annotations

import copy
import logging
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .errors import ObceInputError
from .models import build_architecture, ffn_layers

logger = logging.getLogger(__name__)

LEVELS = (0, 1, 2, 3)
#: the pruning levels 1-3 as keep fractions (1 - k/4), and the level of each
LEVEL_FRACTIONS = {0.75: 1, 0.5: 2, 0.25: 3}


def keep_fraction_of(level: int | None = None, keep_fraction: float | None = None) -> float:
    """The fraction of neurons kept per layer, from a quartile level or directly."""
    if (level is None) == (keep_fraction is None):
        raise ObceInputError("give exactly one of level (0-3) and keep_fraction (0 < f <= 1)")
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in LEVELS:
            raise ObceInputError(f"level={level!r}: expected one of {LEVELS} "
                                 "(0 keeps all; k keeps neurons above the k-th quartile)")
        return 1.0 - level / 4.0
    f = float(keep_fraction)
    if not (0.0 < f <= 1.0) or math.isnan(f):
        raise ObceInputError(f"keep_fraction={keep_fraction!r}: expected a number in (0, 1]")
    return f


def keep_count(n_neurons: int, level: int | None = None, keep_fraction: float | None = None) -> int:
    """Neurons kept per layer: ``ceil(fraction * n_neurons)`` (at least 1)."""
    f = keep_fraction_of(level, keep_fraction)
    return max(1, math.ceil(round(f * n_neurons, 9)))


def select_neurons(scores, level: int | None = None, keep_fraction: float | None = None) -> np.ndarray:
    """Indices of the neurons to keep in every layer.

    Parameters
    ----------
    scores : array_like of shape (n_layers, n_neurons)
        Importance of every neuron (higher is more important).
    level, keep_fraction : see :func:`keep_fraction_of`

    Returns
    -------
    ndarray of shape (n_layers, k), int64
        Kept neuron indices per layer, ascending; the k highest scores, ties to the lower index.
    """
    s = as_scores(scores)
    if s.ndim != 2:
        raise ObceInputError(f"scores of shape {s.shape}: expected (n_layers, n_neurons)")
    if np.isnan(s).any():
        raise ObceInputError("scores contain NaN")
    k = keep_count(s.shape[1], level, keep_fraction)
    flat = [i for i, row in enumerate(s) if np.ptp(row) == 0]
    if flat and k < s.shape[1]:
        logger.warning("layer(s) %s: every neuron has the same score, so the score chooses nothing there; the tie "
                       "rule keeps the lowest indices (0..%d). Check the corpus (e.g. identical sentences)",
                       ", ".join(map(str, flat)), k - 1)
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=-1)
    return np.sort(order[:, :k], axis=1)


def as_scores(scores) -> np.ndarray:
    """Scores as a float64 array; anything but numbers (strings, objects) raises ``ObceInputError``."""
    try:
        raw = np.asarray(scores)
    except ValueError as exc:  # ragged nested lists
        raise ObceInputError(f"scores: not a rectangular array of numbers ({exc})") from exc
    if raw.dtype.kind not in "biuf":
        raise ObceInputError(f"scores of dtype {raw.dtype}: expected numbers (an array of shape "
                             "(n_layers, n_neurons))")
    return raw.astype(np.float64)


def prune(model: nn.Module, scores, level: int | None = None, keep_fraction: float | None = None,
          inplace: bool = False) -> nn.Module:
    """Prune a BERT-family model's FFN neurons by importance scores.

    Parameters
    ----------
    model : BERT-family ``transformers`` model (with or without a task head)
    scores : array_like of shape (n_layers, n_neurons)
        Any importance score (persistence, a baseline); checked against the model's shape.
    level : int in 0..3, optional
        Keep the neurons above the level-th quartile of each layer.
    keep_fraction : float in (0, 1], optional
        Keep this fraction of each layer instead.
    inplace : bool
        Modify ``model`` itself instead of a deep copy.

    Returns
    -------
    The pruned model, with ``config.intermediate_size`` updated.
    """
    expected = (len(ffn_layers(model)), ffn_layers(model)[0][0].out_features)
    s = as_scores(scores)
    if s.shape != expected:
        raise ObceInputError(f"scores of shape {s.shape} do not match the model's FFN "
                             f"(n_layers, intermediate_size) = {expected}")
    return prune_ffn_neurons(model, select_neurons(s, level, keep_fraction), inplace=inplace)


def prune_ffn_neurons(model: nn.Module, keep: Sequence[Sequence[int]], inplace: bool = False) -> nn.Module:
    """Keep only the given FFN neurons of every layer.

    Parameters
    ----------
    model : BERT-family ``transformers`` model
    keep : array_like of shape (n_layers, k)
        Neuron indices to keep in each layer (same count in every layer).

    Returns
    -------
    The pruned model (a copy unless ``inplace``).
    """
    from transformers.pytorch_utils import prune_linear_layer

    keep = np.asarray(keep)
    pairs = ffn_layers(model)
    if keep.ndim != 2 or keep.shape[0] != len(pairs):
        raise ObceInputError(f"keep of shape {keep.shape}: expected ({len(pairs)}, k)")
    if not inplace:
        model = copy.deepcopy(model)
    for block, idx in zip(_blocks(model), keep):
        inter, out = block.intermediate.dense, block.output.dense
        if idx.min() < 0 or idx.max() >= inter.out_features or len(np.unique(idx)) != len(idx):
            raise ObceInputError(f"keep indices must be distinct and in 0..{inter.out_features - 1}")
        index = torch.as_tensor(np.sort(idx), dtype=torch.long)
        block.intermediate.dense = prune_linear_layer(inter, index, dim=0)
        block.output.dense = prune_linear_layer(out, index, dim=1)
    model.config.intermediate_size = int(keep.shape[1])
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases) of a model, shared tensors counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def parameter_table(models: Sequence[str] = ("bert-base-uncased", "bert-large-uncased"),
                    levels: Sequence[int] = LEVELS) -> list[dict]:
    """Exact parameter accounting of pruned architectures (random weights on the meta device).

    Returns
    -------
    list of dict
        One row per (model, level): ``model``, ``level``, ``intermediate_size``, ``parameters``,
        ``ffn_parameters``, ``kept_fraction`` (of all parameters) and ``reduction_percent``.
    """
    rows = []
    for name in models:
        full = build_architecture(name)
        n_full = count_parameters(full)
        for level in levels:
            f = keep_fraction_of(level)
            layers = ffn_layers(full)
            k = keep_count(layers[0][0].out_features, keep_fraction=f)
            small = prune_ffn_neurons(full, np.tile(np.arange(k), (len(layers), 1)))
            n = count_parameters(small)
            ffn = sum(count_parameters(a) + count_parameters(b) for a, b in ffn_layers(small))
            rows.append(dict(model=name, level=level, intermediate_size=k, parameters=n,
                             ffn_parameters=ffn, kept_fraction=n / n_full,
                             reduction_percent=100.0 * (1 - n / n_full)))
    return rows


def _blocks(model: nn.Module):
    from .models import encoder_layers

    return list(encoder_layers(model))

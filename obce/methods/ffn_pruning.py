"""OBCE's method and every importance score: remove each layer's least important FFN neurons.

The pipeline runs it for every entry of a config's ``importances`` (scores from :mod:`obce.scoring`,
a level's quartile); :func:`compress` is the registry's entry point for users who have scores and a
parameter budget instead (e.g. the count of another method, to compare at equal size).
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ..errors import ObceInputError
from ..pruning import count_parameters, prune
from ..models import ffn_layers

NAME = "ffn_pruning"

__all__ = ["NAME", "compress", "keep_for_budget"]


def keep_for_budget(model: nn.Module, budget: int) -> int:
    """The neurons per layer (the same in every layer) that bring the encoder nearest ``budget``
    parameters: each neuron removed from a layer takes its input row, its bias and its output column.

    Raises
    ------
    ObceInputError
        ``budget`` is above the model's count or below one neuron per layer.
    """
    layers = ffn_layers(model)
    n, hidden = layers[0][0].out_features, layers[0][0].in_features
    per_neuron = len(layers) * (2 * hidden + 1)
    full = count_parameters(model)
    k = n - int(round((full - budget) / per_neuron))
    if not 1 <= k <= n:
        raise ObceInputError(f"budget {budget:,}: FFN pruning reaches {full - (n - 1) * per_neuron:,} to {full:,} "
                             "parameters on this model")
    return k


def compress(model: nn.Module, budget: int, *, scores, **_) -> tuple[nn.Module, dict]:
    """A copy of ``model`` keeping, in every layer, the neurons with the highest ``scores`` that bring
    it nearest ``budget`` encoder parameters (:func:`keep_for_budget`).

    Parameters
    ----------
    scores : array_like of shape (n_layers, n_neurons), e.g. :func:`obce.score_neurons`'s r_f

    Returns
    -------
    model, info
        ``info``: ``intermediate_size`` (the neurons kept per layer) and ``keep_fraction``.
    """
    k = keep_for_budget(model, budget)
    n = ffn_layers(model)[0][0].out_features
    small = prune(model, np.asarray(scores), keep_fraction=k / n)
    return small, dict(intermediate_size=small.config.intermediate_size, keep_fraction=k / n)

"""OBCE's method and every importance score: remove each layer's least important FFN neurons.

The pipeline runs it for every entry of a config's ``importances`` (scores from :mod:`obce.scoring`);
this module is its entry point for users who already have scores.
"""
from __future__ import annotations

from torch import nn

from ..pruning import prune


def compress(model: nn.Module, scores, level: int | None = None, keep_fraction: float | None = None) -> nn.Module:
    """A copy of ``model`` keeping, in every layer, the neurons above the ``level``-th quartile of
    ``scores`` (or the ``keep_fraction`` best).

    Parameters
    ----------
    scores : array_like of shape (n_layers, n_neurons), e.g. :func:`obce.score_neurons`'s r_f
    """
    return prune(model, scores, level=level, keep_fraction=keep_fraction)

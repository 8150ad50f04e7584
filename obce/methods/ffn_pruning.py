"""OBCE's method and every importance score: remove each layer's least important FFN neurons.

The pipeline runs it for every entry of a config's ``importances`` (scores from :mod:`obce.scoring`,
a level's quartile). As a registered method (``methods: [{name: ffn_pruning, ...}]``) it prunes by a
``score`` to a parameter budget instead, the same number of neurons in every layer; with
``match: layer_removal`` the budget is the count that FFN sub-layer removal reaches at the level (a
whole number of blocks), so that the two are compared at exactly the same size.
:func:`compress` is also the entry point for users who have scores and a budget of their own.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ..errors import ObceInputError, check_choice
from ..pruning import count_parameters, prune
from ..models import ffn_layers

#: The registry's name, its parameters' defaults (the score that ranks the neurons; the method whose
#: parameter count the budget matches, "" for the level's own) and the parameter that gives it a size
#: of its own (none).
NAME = "ffn_pruning"
DEFAULTS = dict(score="merge_radius", match="")
OWN_SIZE = None
#: The methods whose reached count ``match`` can take.
MATCHES = ("", "layer_removal")

__all__ = ["DEFAULTS", "MATCHES", "NAME", "adjust_budget", "check_fits", "compress", "keep_for_budget", "score_of"]


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for a score that is not a corpus or weight score, or an unknown match."""
    from ..scoring import IMPORTANCES

    check_choice("method ffn_pruning score", params["score"], IMPORTANCES)
    check_choice("method ffn_pruning match", params["match"], MATCHES)


def distils(params: dict) -> bool:
    """Whether the method trains from a teacher: never (it fine-tunes as the pipeline does)."""
    return False


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: its score does (``score_of``)."""
    return True


def score_of(params: dict) -> str:
    """The importance score whose per-neuron scores :func:`compress` needs (the pipeline's cached ones)."""
    return params["score"]


def adjust_budget(model: nn.Module, budget: int, params: dict) -> int:
    """The budget the method aims at, from a level's ``budget``: the level's own, or with
    ``match: layer_removal`` the count that whole-block removal reaches for it
    (:func:`obce.methods.layer_removal.reached`)."""
    if params["match"] == "layer_removal":
        from .layer_removal import reached

        return reached(model, budget)
    return budget


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` if no number of neurons per layer reaches ``budget`` (:func:`keep_for_budget`)."""
    keep_for_budget(model, budget)


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


def compress(model: nn.Module, budget: int, *, scores=None, score: str = "merge_radius", **_) -> tuple[nn.Module, dict]:
    """A copy of ``model`` keeping, in every layer, the neurons with the highest ``scores`` that bring
    it nearest ``budget`` encoder parameters (:func:`keep_for_budget`).

    Parameters
    ----------
    scores : array_like of shape (n_layers, n_neurons), e.g. :func:`obce.score_neurons`'s r_f
    score : the score's name, for the record

    Returns
    -------
    model, info
        ``info``: ``score``, ``intermediate_size`` (the neurons kept per layer) and ``keep_fraction``.
    """
    if scores is None:
        raise ObceInputError(f"method ffn_pruning needs the neurons' scores ({score}) as scores=")
    k = keep_for_budget(model, budget)
    n = ffn_layers(model)[0][0].out_features
    small = prune(model, np.asarray(scores), keep_fraction=k / n)
    return small, dict(score=score, intermediate_size=small.config.intermediate_size, keep_fraction=k / n)

"""One entry point for every neuron importance score: collect -> score, layer by layer."""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import baselines
from .activations import DEFAULT_MEMORY_BUDGET, iter_ffn_activations, token_lengths
from .data import Text, validate_texts
from .errors import ObceInputError
from .models import ffn_layers
from .persistence import SUMMARIES, h0_deaths, summarize

logger = logging.getLogger(__name__)

PERSISTENCE_SCORES = tuple(SUMMARIES)
ACTIVATION_SCORES = {"mean_abs_activation": "mean_abs", "activation_variance": "variance"}
WEIGHT_SCORES = ("random", "magnitude")
IMPORTANCES = (*PERSISTENCE_SCORES, *ACTIVATION_SCORES, *WEIGHT_SCORES)


def score_neurons(model: nn.Module, tokenizer, texts: Sequence[Text] | None = None, *,
                  importance: str = "merge_radius", max_length: int = 64,
                  representation: str = "tokens", method: str = "fast", batch_size: int = 32,
                  device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                  memory_budget: int = DEFAULT_MEMORY_BUDGET, seed: int = 0,
                  progress: bool = True) -> np.ndarray:
    """Importance of every FFN intermediate neuron of a BERT-family model.

    Parameters
    ----------
    model, tokenizer : as returned by :func:`obce.load_model`
    texts : sequence of str or (str, str)
        Scoring corpus (at least 2 texts); not needed for ``random`` and ``magnitude``.
    importance : str
        ``merge_radius`` (OBCE's r_f), ``total_persistence``, ``mean_death`` (persistence of the
        neurons' point clouds); ``mean_abs_activation``, ``activation_variance``; ``magnitude``
        (weight norm); ``random`` (seeded).
    max_length, representation, batch_size, memory_budget :
        See :func:`obce.activations.iter_ffn_activations`.
    method : {"fast", "gudhi"}
        Persistence computation (same deaths; ``gudhi`` is the slow reference).
    device : optional
        Where activations are collected and persistence computed.
    dtype : torch.float32 or torch.float64
        Precision of the fast persistence path.

    Returns
    -------
    ndarray of shape (n_layers, n_neurons), float64
        Higher means more important.
    """
    if importance not in IMPORTANCES:
        raise ObceInputError(f"importance {importance!r}: expected one of {IMPORTANCES}")
    if importance == "random":
        return baselines.random_scores(model, seed=seed)
    if importance == "magnitude":
        return baselines.magnitude_scores(model)
    if texts is None:
        raise ObceInputError(f"importance {importance!r} needs a corpus (texts)")
    texts = validate_texts(texts)
    layers = ffn_layers(model)
    scores = np.full((len(layers), layers[0][0].out_features), np.nan)
    lengths = token_lengths(tokenizer, texts, max_length) if importance in ACTIVATION_SCORES else None
    stream = iter_ffn_activations(model, tokenizer, texts, max_length=max_length,
                                  representation=representation, batch_size=batch_size, device=device,
                                  memory_budget=memory_budget, progress=progress)
    for layer, clouds in stream:
        if importance in ACTIVATION_SCORES:
            scores[layer] = baselines.activation_scores(
                clouds, ACTIVATION_SCORES[importance], lengths if representation == "tokens" else None)
        else:
            scores[layer] = summarize(h0_deaths(clouds, method=method, dtype=dtype), importance)
        logger.info("layer %d scored (%s): median %.4g", layer, importance, np.median(scores[layer]))
        del clouds
    return scores

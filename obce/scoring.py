"""One entry point for every neuron importance score: collect -> score, layer by layer.

Every score returned is finite (:func:`check_finite_scores`): a NaN score is an error naming its
layer and neuron, never a file."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import baselines
from ._version import __version__
from .activations import (DEFAULT_MEMORY_BUDGET, check_collection_params, iter_ffn_activations,
                          token_lengths)
from .data import Text, validate_texts
from .errors import ObceInputError
from .models import ffn_layers
from .models import model_fingerprint
from .persistence import SUMMARIES, h0_deaths, summarize
from .files import cache_key, corpus_hash, load_arrays, save_arrays, write_error

logger = logging.getLogger(__name__)

PERSISTENCE_SCORES = tuple(SUMMARIES)
#: scores of the activations over the corpus; ``wifv`` (FLAP) weighs the variance by the squared norm
#: of the neuron's output weights
ACTIVATION_SCORES = {"mean_abs_activation": "mean_abs", "activation_variance": "variance", "wifv": "variance"}
WEIGHT_SCORES = ("random", "magnitude")
IMPORTANCES = (*PERSISTENCE_SCORES, *ACTIVATION_SCORES, *WEIGHT_SCORES)
#: scores that need a task loss (a model with its head, and labels): :func:`gradient_scores`
GRADIENT_SCORES = ("taylor", "fisher")


def score_neurons(model: nn.Module, tokenizer, texts: Sequence[Text] | None = None, *,
                  importance: str = "merge_radius", max_length: int = 64,
                  representation: str = "tokens", method: str = "fast", batch_size: int = 32,
                  device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                  memory_budget: int = DEFAULT_MEMORY_BUDGET, seed: int = 0,
                  cache_dir: str | os.PathLike | None = None, recompute: bool = False,
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
    cache_dir : path, optional
        Cache every layer's result (persistence: all H0 deaths, so any summary reuses it) under a
        key of the model's weights, the corpus and the parameters. A rerun reuses finished layers
        (an interrupted run resumes), a corrupt cache file is reported and recomputed.
    recompute : bool
        Ignore (and overwrite) cached layers.

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
        return check_finite_scores(baselines.magnitude_scores(model), importance)
    if texts is None:
        raise ObceInputError(f"importance {importance!r} needs a corpus (texts)")
    texts = validate_texts(texts)
    check_collection_params(max_length, representation, batch_size, model, tokenizer, texts)
    layers = ffn_layers(model)
    if cache_dir is not None:  # an unwritable cache fails here, before the activations are collected
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(Path(cache_dir), "the score cache", exc) from exc
    scores = np.full((len(layers), layers[0][0].out_features), np.nan)
    persistence = importance in PERSISTENCE_SCORES
    cache = _LayerCache(cache_dir, dict(
        stage="h0_deaths" if persistence else importance, model=model_fingerprint(model),
        corpus=corpus_hash(texts), max_length=max_length, representation=representation,
        method=method if persistence else None, dtype=str(dtype) if persistence else None,
        version=__version__)) if cache_dir is not None else None
    # what a layer's cached values must look like: all H0 deaths, or one value per neuron
    expected = (layers[0][0].out_features, len(texts) - 1) if persistence else (layers[0][0].out_features,)
    todo = []
    for layer in range(len(layers)):
        values = None if cache is None or recompute else cache.load(layer, expected)
        if values is None:
            todo.append(layer)
        else:
            scores[layer] = summarize(values, importance) if persistence else values
    if cache is not None and len(todo) < len(layers):
        logger.info("reusing cached %s of layers %s from %s", cache.meta["stage"],
                    sorted(set(range(len(layers))) - set(todo)), cache_dir)
    if not todo:
        return check_finite_scores(scores, importance)
    lengths = token_lengths(tokenizer, texts, max_length) if importance in ACTIVATION_SCORES else None
    stream = iter_ffn_activations(model, tokenizer, texts, layers=todo, max_length=max_length,
                                  representation=representation, batch_size=batch_size, device=device,
                                  memory_budget=memory_budget, progress=progress)
    for layer, clouds in stream:
        if persistence:
            values = h0_deaths(clouds, method=method, dtype=dtype)
            scores[layer] = summarize(values, importance)
        else:
            values = baselines.activation_scores(
                clouds, ACTIVATION_SCORES[importance], lengths if representation == "tokens" else None)
            if importance == "wifv":
                values = values * (layers[layer][1].weight.detach().double() ** 2).sum(0).cpu().numpy()
            scores[layer] = values
        if cache is not None:
            cache.save(layer, values)
        if not np.any(scores[layer]):
            logger.warning("layer %d: every %s score is 0: the corpus gives every neuron identical points "
                           "(e.g. texts that all tokenize to [UNK]); check the corpus", layer, importance)
        logger.info("layer %d scored (%s): median %.4g", layer, importance, np.median(scores[layer]))
        del clouds
    return check_finite_scores(scores, importance)


class _LayerCache:
    """One ``.npz`` file per layer under ``root``, named by a key of the inputs."""

    def __init__(self, root: str | os.PathLike, meta: dict):
        self.root, self.meta = Path(root), meta
        self.key = cache_key(**meta)

    def path(self, layer: int) -> Path:
        return self.root / f"{self.meta['stage']}-{self.key}-layer{layer:02d}.npz"

    def load(self, layer: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """The cached values of a layer, or None when absent or not what the stage would produce
        (another key, another ``shape``, a non-finite value): then the layer is recomputed."""
        path = self.path(layer)
        if not path.exists():
            return None
        try:
            meta, arrays = load_arrays(path)
            if meta.get("key") != self.key or "values" not in arrays:
                raise ObceInputError(f"{path}: cache file does not match its key")
            values = arrays["values"]
            if values.shape != shape or values.dtype.kind != "f" or not np.isfinite(values).all():
                raise ObceInputError(f"{path}: cached values of shape {values.shape} ({values.dtype}), expected "
                                     f"finite floats of shape {shape}")
        except ObceInputError as exc:
            logger.warning("corrupt cache file %s (%s): recomputing layer %d", path, exc, layer)
            return None
        return values

    def save(self, layer: int, values: np.ndarray) -> None:
        save_arrays(self.path(layer), {**self.meta, "key": self.key, "layer": layer}, values=values)


def gradient_scores(importance: str, model: nn.Module, tokenizer, texts: Sequence[Text], labels: Sequence,
                    max_length: int = 128, batch_size: int = 32,
                    device: str | torch.device | None = None) -> np.ndarray:
    """A score that needs the task loss (:data:`GRADIENT_SCORES`): ``taylor`` (|activation x gradient|)
    or ``fisher`` (Fisher information of a neuron mask), of a model with its task head.

    Returns
    -------
    ndarray of shape (n_layers, n_neurons)
    """
    if importance not in GRADIENT_SCORES:
        raise ObceInputError(f"gradient score {importance!r}: expected one of {GRADIENT_SCORES}")
    fn = baselines.taylor_scores if importance == "taylor" else baselines.fisher_scores
    return check_finite_scores(fn(model, tokenizer, texts, labels, max_length=max_length, batch_size=batch_size,
                                  device=device), importance)


def check_finite_scores(scores: np.ndarray, importance: str) -> np.ndarray:
    """``scores`` (shape (n_layers, n_neurons)) if every one is finite; else ``ObceInputError`` naming
    the first layer and neuron whose score is NaN or infinite (broken weights, or a corpus that
    overflows), before anything is written."""
    bad = np.argwhere(~np.isfinite(np.asarray(scores, dtype=np.float64)))
    if len(bad):
        layer, neuron = (int(v) for v in bad[0])
        raise ObceInputError(f"{importance} scores: layer {layer}, neuron {neuron} is {scores[layer, neuron]} "
                             f"({len(bad)} non-finite score(s) in all): the model's weights or activations are not "
                             "finite; nothing is written")
    return scores


def save_scores(path: str | os.PathLike, scores: np.ndarray, meta: dict) -> Path:
    """Write a scores array of shape (n_layers, n_neurons) with its metadata (``.npz``, atomic)."""
    return save_arrays(path, meta, scores=np.asarray(scores, dtype=np.float64))


def load_scores(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read scores written by :func:`save_scores` (a file, or a directory holding ``scores.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "scores.npz"
    if not path.is_file():
        raise ObceInputError(f"scores file {str(path)!r} does not exist (expected the output of `obce score`)")
    meta, arrays = load_arrays(path)
    if "scores" not in arrays or arrays["scores"].ndim != 2:
        raise ObceInputError(f"{path}: no scores array of shape (n_layers, n_neurons)")
    scores = arrays["scores"]
    if scores.dtype.kind not in "fiu" or not np.isfinite(scores).all():
        raise ObceInputError(f"{path}: scores must be finite numbers (found {scores.dtype}, or NaN/inf)")
    return scores, meta


def summarize_scores(scores: np.ndarray) -> list[dict]:
    """Per-layer summary of a scores array of shape (n_layers, n_neurons): min, quartiles (the
    thresholds of levels 1-3), max."""
    s = np.asarray(scores, dtype=np.float64)
    q1, med, q3 = np.quantile(s, [0.25, 0.5, 0.75], axis=1)
    return [dict(layer=i, min=float(s[i].min()), q1=float(q1[i]), median=float(med[i]), q3=float(q3[i]),
                 max=float(s[i].max())) for i in range(len(s))]

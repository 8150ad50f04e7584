"""Neuron-level explanations: what a neuron responds to, how scores agree, how outputs drift."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .activations import collect_ffn_activations, tokenize
from .data import Text


def top_activating_tokens(model: nn.Module, tokenizer, texts: Sequence[Text], layer: int, neuron: int,
                          max_length: int = 64, k: int = 10, clouds: torch.Tensor | None = None) -> list[dict]:
    """The k (text, token) positions where a neuron's output is largest.

    Parameters
    ----------
    clouds : Tensor of shape (n_neurons, n_texts, D), optional
        The layer's collected clouds (token representation), to avoid recomputing them.

    Returns
    -------
    list of dict
        ``token``, ``activation``, ``text`` (index), ``position``, ``context`` (the text with the token
        in brackets), highest first.
    """
    if clouds is None:
        clouds = collect_ffn_activations(model, tokenizer, texts, layers=[layer], max_length=max_length,
                                         progress=False)[layer]
    acts = clouds[neuron]  # (n_texts, D); padding is 0
    flat = torch.topk(acts.flatten(), k=min(k, acts.numel()))
    rows = []
    for value, idx in zip(flat.values.tolist(), flat.indices.tolist()):
        i, pos = divmod(idx, acts.shape[1])
        ids = tokenize(tokenizer, [texts[i]], max_length)["input_ids"][0].tolist()
        tokens = tokenizer.convert_ids_to_tokens(ids)
        context = " ".join(f"[{t}]" if j == pos else t for j, t in enumerate(tokens) if t not in ("[PAD]",))
        rows.append(dict(token=tokens[pos], activation=value, text=i, position=pos, context=context))
    return rows


def rank_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of two score arrays, per layer.

    Parameters
    ----------
    a, b : ndarray of shape (n_layers, n_neurons)

    Returns
    -------
    ndarray of shape (n_layers,)
    """
    from scipy.stats import spearmanr

    return np.array([spearmanr(x, y)[0] for x, y in zip(np.asarray(a), np.asarray(b))])


def kept_overlap(a: np.ndarray, b: np.ndarray, level: int) -> np.ndarray:
    """Fraction of the neurons kept at ``level`` by scores ``a`` that scores ``b`` keep too, per layer
    (1: the same neurons; the keep fraction itself: what two independent random choices share).

    Parameters
    ----------
    a, b : ndarray of shape (n_layers, n_neurons)
    level : int in 1..3

    Returns
    -------
    ndarray of shape (n_layers,)
    """
    from .pruning import select_neurons

    ka, kb = select_neurons(a, level=level), select_neurons(b, level=level)
    return np.array([np.intersect1d(x, y).size / x.size for x, y in zip(ka, kb)])


def output_drift(model: nn.Module, pruned: nn.Module, tokenizer, texts: Sequence[Text],
                 max_length: int = 64) -> float:
    """Relative L2 change ||h_pruned - h|| / ||h|| of the last hidden state over real tokens."""
    enc = tokenize(tokenizer, list(texts), max_length)
    mask = enc["attention_mask"].bool()
    with torch.inference_mode():
        h = model(**enc).last_hidden_state[mask]
        hp = pruned(**enc).last_hidden_state[mask]
    return float(torch.linalg.vector_norm(hp - h) / torch.linalg.vector_norm(h))

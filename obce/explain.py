"""Neuron-level explanations: what a neuron responds to, how scores agree, how outputs drift."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .activations import collect_ffn_activations, token_lengths, tokenize
from .data import Text
from .errors import ObceInputError
from .persistence import _as_clouds
from .pruning import select_neurons


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
    acts = clouds[neuron].clone()  # (n_texts, D); padding is 0
    # padding is never a candidate: for a neuron that is never positive its zeros would win
    lengths = token_lengths(tokenizer, texts, max_length)
    real = torch.arange(acts.shape[1])[None, :] < lengths[:, None]
    acts[~real] = -torch.inf
    flat = torch.topk(acts.flatten(), k=min(k, int(real.sum())))
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
    return np.array([np.intersect1d(x, y).size / x.size for x, y in zip(*_kept_by_both(a, b, level))])


def kept_only(a: np.ndarray, b: np.ndarray, level: int) -> list[np.ndarray]:
    """Neurons kept at ``level`` by scores ``a`` and pruned by scores ``b``, per layer.

    Parameters
    ----------
    a, b : ndarray of shape (n_layers, n_neurons)
    level : int in 1..3

    Returns
    -------
    list of n_layers int ndarrays, sorted neuron indices
    """
    return [np.setdiff1d(x, y) for x, y in zip(*_kept_by_both(a, b, level))]


def _kept_by_both(a: np.ndarray, b: np.ndarray, level: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer neurons kept at ``level`` by scores ``a`` and by scores ``b``."""
    return select_neurons(a, level=level), select_neurons(b, level=level)


def top_edge_ratio(deaths: np.ndarray) -> np.ndarray:
    """Largest finite H0 death over the second largest: how far the merge radius r_f stands out
    from the neuron's other minimum-spanning-tree edges (1: it does not).

    Parameters
    ----------
    deaths : ndarray of shape (..., n_points - 1), n_points >= 3
        Finite deaths, as :func:`obce.h0_deaths` returns them (any order).

    Returns
    -------
    ndarray of shape (...), float64
        inf where only the largest death is non-zero, nan where both are zero.
    """
    d = np.asarray(deaths, dtype=np.float64)
    if d.ndim < 1 or d.shape[-1] < 2:
        raise ObceInputError(f"deaths of shape {d.shape}: expected at least 2 finite deaths per neuron "
                             "(clouds of 3 or more points)")
    top2 = np.partition(d, d.shape[-1] - 2, axis=-1)[..., -2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return top2[..., 1] / top2[..., 0]


def longest_edge_split(clouds) -> np.ndarray:
    """Size of the smaller part each neuron's cloud splits into when the longest edge of its minimum
    spanning tree (the edge whose length is r_f) is cut: 1 means r_f is the distance from a single
    isolated point (sentence) to its nearest neighbour.

    Parameters
    ----------
    clouds : array or Tensor of shape (n_neurons, n_points, dim), n_points >= 2

    Returns
    -------
    ndarray of shape (n_neurons,), int
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
    from scipy.spatial.distance import pdist, squareform

    x = _as_clouds(clouds).detach().cpu().double().numpy()
    out = np.empty(x.shape[0], dtype=int)
    for j, cloud in enumerate(x):
        # coincident points give zero distances, which a sparse graph would drop: offset all edges
        dist = squareform(pdist(cloud)) + 1.0
        np.fill_diagonal(dist, 0.0)
        tree = minimum_spanning_tree(dist).tocoo()
        keep = np.arange(tree.nnz) != np.argmax(tree.data)
        forest = coo_matrix((tree.data[keep], (tree.row[keep], tree.col[keep])), shape=tree.shape)
        _, labels = connected_components(forest, directed=False)
        out[j] = np.bincount(labels).min()
    return out


def output_drift(model: nn.Module, pruned: nn.Module, tokenizer, texts: Sequence[Text],
                 max_length: int = 64) -> float:
    """Relative L2 change ||h_pruned - h|| / ||h|| of the last hidden state over real tokens."""
    enc = tokenize(tokenizer, list(texts), max_length)
    mask = enc["attention_mask"].bool()
    with torch.inference_mode():
        h = model(**enc).last_hidden_state[mask]
        hp = pruned(**enc).last_hidden_state[mask]
    return float(torch.linalg.vector_norm(hp - h) / torch.linalg.vector_norm(h))

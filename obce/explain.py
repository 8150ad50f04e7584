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
        in brackets), ``snippet`` (eight tokens either side of it), highest first.
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
        marked = [f"[{t}]" if j == pos else t for j, t in enumerate(tokens) if t not in ("[PAD]",)]
        rows.append(dict(token=tokens[pos], activation=value, text=i, position=pos, context=" ".join(marked),
                         snippet=" ".join(marked[max(0, pos - 8):pos + 9])))
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
    return np.array([np.bincount(labels).min() for labels in _longest_edge_cut(clouds)], dtype=int)


def _longest_edge_cut(clouds):
    """Per neuron, the component label of every point once the longest edge of its cloud's minimum
    spanning tree is cut (two components); ``clouds`` of shape (n_neurons, n_points, dim)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
    from scipy.spatial.distance import pdist, squareform

    for cloud in _as_clouds(clouds).detach().cpu().double().numpy():
        # coincident points give zero distances, which a sparse graph would drop: offset all edges
        dist = squareform(pdist(cloud)) + 1.0
        np.fill_diagonal(dist, 0.0)
        tree = minimum_spanning_tree(dist).tocoo()
        keep = np.arange(tree.nnz) != np.argmax(tree.data)
        forest = coo_matrix((tree.data[keep], (tree.row[keep], tree.col[keep])), shape=tree.shape)
        yield connected_components(forest, directed=False)[1]


def output_drift(model: nn.Module, pruned: nn.Module, tokenizer, texts: Sequence[Text],
                 max_length: int = 64) -> float:
    """Relative L2 change ||h_pruned - h|| / ||h|| of the last hidden state over real tokens."""
    enc = tokenize(tokenizer, list(texts), max_length)
    mask = enc["attention_mask"].bool()
    with torch.inference_mode():
        h = model(**enc).last_hidden_state[mask]
        hp = pruned(**enc).last_hidden_state[mask]
    return float(torch.linalg.vector_norm(hp - h) / torch.linalg.vector_norm(h))


def isolated_sentence(clouds) -> np.ndarray:
    """The sentence each neuron's merge radius r_f isolates: cutting the longest edge of the cloud's
    minimum spanning tree splits off one point (that sentence's index) or a larger group (-1).

    Parameters
    ----------
    clouds : array or Tensor of shape (n_neurons, n_points, dim), n_points >= 3

    Returns
    -------
    ndarray of shape (n_neurons,), int: the isolated point's index, or -1
    """
    n_points = _as_clouds(clouds).shape[1]
    if n_points < 3:
        raise ObceInputError(f"clouds of {n_points} points: an isolated point needs at least 3")
    out = []
    for labels in _longest_edge_cut(clouds):
        sizes = np.bincount(labels)
        out.append(int(np.flatnonzero(labels == np.argmin(sizes))[0]) if sizes.min() == 1 else -1)
    return np.array(out, dtype=int)


def pooled_activations(clouds, lengths) -> np.ndarray:
    """Each neuron's mean output over the real tokens of each text.

    Parameters
    ----------
    clouds : array or Tensor of shape (n_neurons, n_texts, D), token representation (padding 0)
    lengths : array of shape (n_texts,), real tokens per text

    Returns
    -------
    ndarray of shape (n_neurons, n_texts)
    """
    x = torch.as_tensor(clouds).double()
    n = torch.as_tensor(np.asarray(lengths), dtype=torch.float64)
    if x.ndim != 3 or n.shape != (x.shape[1],) or bool((n <= 0).any()):
        raise ObceInputError(f"clouds {tuple(x.shape)} and lengths {tuple(n.shape)}: expected (neurons, texts, D) "
                             "and one positive length per text")
    return (x.sum(2) / n).numpy()


def label_information(pooled: np.ndarray, labels, regression: bool = False) -> np.ndarray:
    """How well each neuron's pooled activation tells the task's label, per neuron.

    Binary labels: the ROC AUC of the activation as a classifier, oriented (max(AUC, 1 - AUC)): 0.5
    is chance, 1 a perfect split. Regression (STS-B): the absolute Spearman correlation with the label.

    Parameters
    ----------
    pooled : ndarray of shape (n_neurons, n_texts); labels : array of shape (n_texts,)

    Returns
    -------
    ndarray of shape (n_neurons,)
    """
    from scipy.stats import rankdata, spearmanr

    x = np.asarray(pooled, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(y) != x.shape[1]:
        raise ObceInputError(f"pooled {x.shape} and {len(y)} labels: expected (neurons, texts) and one label per text")
    if regression:
        return np.array([abs(spearmanr(row, y)[0]) if np.ptp(row) > 0 else 0.0 for row in x])
    classes = np.unique(y)
    if len(classes) != 2:
        raise ObceInputError(f"labels have {len(classes)} classes; label_information's AUC needs 2")
    positive = y == classes[1]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = np.apply_along_axis(rankdata, 1, x)  # ties share their mean rank (the AUC's 1/2 for ties)
    auc = (ranks[:, positive].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.maximum(auc, 1 - auc)


def stability(score_sets) -> np.ndarray:
    """How much a score depends on the data it was computed from: the mean Spearman correlation, per
    layer, over every pair of score arrays (e.g. from several corpus draws, sizes or tasks).

    Parameters
    ----------
    score_sets : sequence of ndarrays of shape (n_layers, n_neurons), at least 2

    Returns
    -------
    ndarray of shape (n_layers,): 1 for identical scores
    """
    sets = [np.asarray(s, dtype=np.float64) for s in score_sets]
    if len(sets) < 2 or any(s.shape != sets[0].shape for s in sets):
        raise ObceInputError("stability needs at least 2 score arrays of one shape (n_layers, n_neurons)")
    pairs = [rank_agreement(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    return np.mean(pairs, axis=0)


def neuron_atlas(model: nn.Module, tokenizer, texts: Sequence[Text], labels, layer: int,
                 neurons: Sequence[int] | None = None, max_length: int = 64, regression: bool = False,
                 top_k: int = 5, extremes: int = 3) -> list[dict]:
    """Atlas entries of neurons of one layer: their importance under every score (and its percentile
    in the layer), the sentence r_f isolates, the top-activating tokens in context and the label
    information of their pooled activation on ``texts``.

    Parameters
    ----------
    texts, labels : a corpus and its labels (one per text)
    neurons : indices; default the ``extremes`` highest and lowest neurons by r_f

    Returns
    -------
    list of dict, one per neuron
    """
    from .baselines import activation_scores, magnitude_scores
    from .persistence import h0_deaths, summarize

    clouds = collect_ffn_activations(model, tokenizer, texts, layers=[layer], max_length=max_length,
                                     progress=False)[layer]
    lengths = token_lengths(tokenizer, texts, max_length)
    deaths = h0_deaths(clouds)
    scores = {"merge_radius": summarize(deaths, "merge_radius"),
              "total_persistence": summarize(deaths, "total_persistence"),
              "activation_variance": activation_scores(clouds, "variance", lengths),
              "mean_abs_activation": activation_scores(clouds, "mean_abs", lengths),
              "magnitude": magnitude_scores(model)[layer]}
    if neurons is None:
        order = np.argsort(-scores["merge_radius"], kind="stable")
        neurons = [*order[:extremes], *order[-extremes:]]
    bad = [j for j in neurons if not 0 <= int(j) < clouds.shape[0]]
    if bad:
        raise ObceInputError(f"neurons {bad}: layer {layer} has neurons 0..{clouds.shape[0] - 1}")
    info = label_information(pooled_activations(clouds, lengths), labels, regression)
    isolated = isolated_sentence(clouds[list(neurons)])
    entries = []
    for j, iso in zip(neurons, isolated):
        j = int(j)
        entries.append(dict(
            layer=layer, neuron=j,
            scores={k: float(v[j]) for k, v in scores.items()},
            percentiles={k: float(100 * (v < v[j]).mean()) for k, v in scores.items()},
            isolated_sentence=None if iso < 0 else texts[iso],
            top_tokens=top_activating_tokens(model, tokenizer, texts, layer, j, max_length, k=top_k, clouds=clouds),
            label_information=float(info[j])))
    return entries

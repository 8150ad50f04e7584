"""Neuron-level explanations: what a neuron responds to, how scores agree, how outputs drift."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .activations import collect_ffn_activations, token_lengths, tokenize
from .data import Text
from .errors import ObceInputError
from .persistence import as_clouds
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

    for cloud in as_clouds(clouds).detach().cpu().double().numpy():
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
    n_points = as_clouds(clouds).shape[1]
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
    ranks = np.apply_along_axis(rankdata, 1, x)  # ties share their mean rank (the AUC's 1/2 for ties)
    return _oriented_auc(ranks, y == classes[1])


def _oriented_auc(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """max(AUC, 1 - AUC) per row of ``ranks`` (n_neurons, n_texts) for the texts marked ``positive``."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    auc = (ranks[:, positive].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.maximum(auc, 1 - auc)


def label_information_null(pooled: np.ndarray, labels, regression: bool = False, permutations: int = 20,
                           seed: int = 0) -> np.ndarray:
    """What :func:`label_information` gives a neuron that knows nothing of the label: the same
    measure with the labels permuted, ``permutations`` times (seeded). The oriented AUC
    max(AUC, 1 - AUC) is above one half by chance, the more so the fewer the texts; this is its
    chance level, per neuron, to read the measured values against.

    Parameters
    ----------
    pooled : ndarray of shape (n_neurons, n_texts); labels : array of shape (n_texts,)
    permutations : how many label permutations; seed : their seed

    Returns
    -------
    ndarray of shape (permutations, n_neurons)
    """
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ObceInputError(f"permutations={permutations!r}: expected a positive whole number")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if regression:
        return np.stack([label_information(pooled, y[rng.permutation(len(y))], True) for _ in range(permutations)])
    label_information(pooled, y)  # the same checks of the shapes and the two classes
    from scipy.stats import rankdata

    ranks = np.apply_along_axis(rankdata, 1, np.asarray(pooled, dtype=np.float64))  # permuting labels keeps them
    positive = y == np.unique(y)[1]
    return np.stack([_oriented_auc(ranks, positive[rng.permutation(len(y))]) for _ in range(permutations)])


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

    clouds = collect_ffn_activations(model, tokenizer, texts, layers=[layer], max_length=max_length,
                                     progress=False)[layer]
    lengths = token_lengths(tokenizer, texts, max_length)
    scores = {name: values[0] for name, values in layer_scores({layer: clouds}, lengths).items()}
    scores.update(mean_abs_activation=activation_scores(clouds, "mean_abs", lengths),
                  magnitude=magnitude_scores(model)[layer])
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


def null_corpus(texts: Sequence[Text], kind: str = "shuffled", seed: int = 0) -> list[Text]:
    """A control corpus with the same number of texts and words as ``texts``, and no sense.

    Parameters
    ----------
    texts : sequence of str or (str, str), n_texts items
    kind : {"shuffled", "random"}
        ``shuffled`` permutes the words within each text (same words, no syntax); ``random`` draws each
        word uniformly from all words of the corpus (same lengths, no sentence).
    seed : int

    Returns
    -------
    list of n_texts texts of the same structure (pairs stay pairs)
    """
    if kind not in ("shuffled", "random"):
        raise ObceInputError(f"null corpus kind {kind!r}: expected 'shuffled' or 'random'")
    rng = np.random.default_rng(seed)
    pool = [w for t in texts for side in ((t,) if isinstance(t, str) else t) for w in side.split()]
    if not pool:
        raise ObceInputError("null_corpus needs texts with at least one word")

    def scramble(side: str) -> str:
        words = side.split()
        if kind == "shuffled":
            return " ".join(words[i] for i in rng.permutation(len(words)))
        return " ".join(pool[i] for i in rng.integers(len(pool), size=len(words)))

    return [scramble(t) if isinstance(t, str) else tuple(scramble(s) for s in t) for t in texts]


def depth_trend(scores: np.ndarray) -> tuple[np.ndarray, float]:
    """How a score changes with depth: its median per layer, and the Spearman correlation between
    the layer index and the scores of all neurons.

    Parameters
    ----------
    scores : ndarray of shape (n_layers, n_neurons)

    Returns
    -------
    medians : ndarray of shape (n_layers,)
    rho : float in [-1, 1] (positive: the score grows with depth)
    """
    from scipy.stats import spearmanr

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ObceInputError(f"scores of shape {s.shape}: expected (n_layers >= 2, n_neurons)")
    depth = np.repeat(np.arange(s.shape[0]), s.shape[1])
    return np.median(s, axis=1), float(spearmanr(depth, s.ravel())[0])


def sentence_features(tokenizer, texts: Sequence[Text], max_length: int = 64) -> dict[str, np.ndarray]:
    """What might make a sentence stand apart: its length and its rare tokens.

    Returns
    -------
    dict of ndarrays of shape (n_texts,)
        ``tokens``: real tokens as the model sees them (special tokens included, truncated at
        ``max_length``); ``subword_share``: the share of content tokens that continue a word
        (``##`` pieces: rare words split into pieces); ``unknown``: [UNK] tokens.
    """
    ids = tokenize(tokenizer, list(texts), max_length)
    rows = [tokenizer.convert_ids_to_tokens(row[mask.bool()].tolist())
            for row, mask in zip(ids["input_ids"], ids["attention_mask"])]
    special = set(tokenizer.all_special_tokens) - {tokenizer.unk_token}
    content = [[t for t in toks if t not in special] for toks in rows]
    return {"tokens": np.array([len(t) for t in rows]),
            "subword_share": np.array([np.mean([t.startswith("##") for t in c]) if c else 0.0 for c in content]),
            "unknown": np.array([sum(t == tokenizer.unk_token for t in c) for c in content])}


def isolation_profile(isolated: np.ndarray, features: dict[str, np.ndarray] | None = None,
                      sources: Sequence[str] | None = None, top: int = 5) -> dict:
    """What the sentences that r_f isolates have in common, over many neurons.

    Parameters
    ----------
    isolated : int ndarray of shape (n_neurons,)
        As :func:`isolated_sentence` returns it: a sentence index, or -1 (no single sentence).
    features : dict of ndarrays of shape (n_texts,), optional
        e.g. :func:`sentence_features`; each gets its Spearman correlation with the isolation count.
    sources : sequence of n_texts labels, optional
        Where each text comes from (e.g. its GLUE task).
    top : int
        How many of the most isolating sentences ``top_share`` counts.

    Returns
    -------
    dict
        ``single_share``: share of neurons whose longest edge isolates one sentence; ``counts``
        (n_texts,): neurons isolating each sentence; ``isolating_sentences``: sentences isolated at
        least once; ``top_share``: share of the isolations that go to the ``top`` most isolating
        sentences; ``rho_<feature>``: Spearman of each feature with ``counts``; ``by_source``:
        per source, its share of the corpus and of the isolations.
    """
    from scipy.stats import spearmanr

    iso = np.asarray(isolated).ravel()
    n_texts = (len(next(iter(features.values()))) if features else len(sources) if sources is not None
               else int(iso.max()) + 1)
    if iso.size == 0 or iso.max() >= n_texts:
        raise ObceInputError(f"isolated indices up to {iso.max() if iso.size else None} for {n_texts} texts")
    counts = np.bincount(iso[iso >= 0], minlength=n_texts)
    total = max(int(counts.sum()), 1)
    out = dict(single_share=float(np.mean(iso >= 0)), counts=counts,
               isolating_sentences=int((counts > 0).sum()),
               top_share=float(np.sort(counts)[::-1][:top].sum() / total))
    for name, values in (features or {}).items():
        v = np.asarray(values, dtype=np.float64)
        out[f"rho_{name}"] = float(spearmanr(v, counts)[0]) if np.ptp(v) > 0 and np.ptp(counts) > 0 else 0.0
    if sources is not None:
        src = np.asarray(sources)
        out["by_source"] = {str(s): dict(corpus_share=float(np.mean(src == s)),
                                         isolation_share=float(counts[src == s].sum() / total))
                            for s in dict.fromkeys(src.tolist())}
    return out


def information_by_score(information: np.ndarray, scores: dict[str, np.ndarray]) -> list[dict]:
    """Are the neurons a score ranks high more informative about the label? Per layer and score:
    the mean label information of the top and the bottom quarter of neurons by the score, and the
    Spearman correlation between the score and the information.

    Parameters
    ----------
    information : ndarray of shape (n_layers, n_neurons), e.g. :func:`label_information` per layer
    scores : dict of name to ndarray of shape (n_layers, n_neurons)

    Returns
    -------
    list of dict: ``layer``, ``score``, ``top_quarter``, ``bottom_quarter``, ``rho``
    """
    info = np.asarray(information, dtype=np.float64)
    rows = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.shape != info.shape:
            raise ObceInputError(f"scores {name!r} of shape {s.shape}; information has {info.shape}")
        rho = rank_agreement(s, info)
        for layer, (x, y) in enumerate(zip(s, info)):
            order = np.argsort(x, kind="stable")
            q = max(len(order) // 4, 1)
            rows.append(dict(layer=layer, score=name, top_quarter=float(y[order[-q:]].mean()),
                             bottom_quarter=float(y[order[:q]].mean()), rho=float(rho[layer])))
    return rows


def layer_scores(clouds: dict[int, torch.Tensor], lengths) -> dict[str, np.ndarray]:
    """r_f, total persistence and activation variance of every neuron, from one collection.

    Parameters
    ----------
    clouds : dict of layer to Tensor of shape (n_neurons, n_texts, D), as collected (padding 0)
    lengths : array of shape (n_texts,), real tokens per text

    Returns
    -------
    dict of name to ndarray of shape (n_layers, n_neurons)
    """
    from .baselines import activation_scores
    from .persistence import h0_deaths, summarize

    out: dict[str, list] = {"merge_radius": [], "total_persistence": [], "activation_variance": []}
    n = torch.as_tensor(np.asarray(lengths))
    for layer in sorted(clouds):
        deaths = h0_deaths(clouds[layer])
        out["merge_radius"].append(summarize(deaths, "merge_radius"))
        out["total_persistence"].append(summarize(deaths, "total_persistence"))
        out["activation_variance"].append(activation_scores(clouds[layer], "variance", n))
    return {k: np.stack(v) for k, v in out.items()}


def atlas_table(entries: Sequence[dict], tokens: int = 3) -> list[dict]:
    """Flat rows of :func:`neuron_atlas` entries for a compact table: one row per neuron.

    Returns
    -------
    list of dict: ``neuron``, ``r_f``, the percentile in the layer of every score, ``label AUC``,
    ``top tokens`` (the ``tokens`` best, each with its context) and ``isolated sentence``
    """
    short = {"merge_radius": "r_f pct", "total_persistence": "total pers. pct", "activation_variance": "variance pct",
             "mean_abs_activation": "mean |act| pct", "magnitude": "magnitude pct"}
    rows = []
    for e in entries:
        row = {"neuron": e["neuron"], "r_f": e["scores"]["merge_radius"]}
        row.update({short.get(k, k): v for k, v in e["percentiles"].items()})
        row["label AUC"] = e["label_information"]
        row["top tokens"] = " | ".join(f"{t['token']}: …{t['snippet']}…" for t in e["top_tokens"][:tokens])
        iso = e["isolated_sentence"]
        row["isolated sentence"] = "none (a group)" if iso is None else iso if isinstance(iso, str) else " / ".join(iso)
        rows.append(row)
    return rows


def mixed_corpus(tasks: Sequence[str], n_texts: int, seed: int = 0, glue_dir=None,
                 split: str = "train") -> tuple[list[Text], list[str]]:
    """``n_texts // len(tasks)`` texts of each task (one seeded draw), and the task of each text.

    Returns
    -------
    texts : list of n texts; sources : list of n task names
    """
    from .data import load_corpus

    if not tasks:
        raise ObceInputError("mixed_corpus needs at least one task")
    parts = [load_corpus(t, n=n_texts // len(tasks), split=split, glue_dir=glue_dir, seed=seed) for t in tasks]
    return [x for p in parts for x in p], [t for t, p in zip(tasks, parts) for _ in p]


def corpus_scores(model: nn.Module, tokenizer, texts: Sequence[Text], max_length: int = 64
                  ) -> tuple[dict[int, torch.Tensor], dict[str, np.ndarray]]:
    """The clouds of every layer over ``texts`` and :func:`layer_scores` of them.

    Returns
    -------
    clouds : dict of layer to Tensor of shape (n_neurons, n_texts, D)
    scores : dict of name to ndarray of shape (n_layers, n_neurons)
    """
    clouds = collect_ffn_activations(model, tokenizer, texts, max_length=max_length, progress=False)
    return clouds, layer_scores(clouds, token_lengths(tokenizer, texts, max_length))


def subset_scores(clouds: dict[int, torch.Tensor], lengths, index) -> dict[str, np.ndarray]:
    """:func:`layer_scores` of a subset of the texts (their points of every neuron's cloud).

    Parameters
    ----------
    clouds : dict of layer to Tensor of shape (n_neurons, n_texts, D); lengths : (n_texts,)
    index : int array of the texts kept, at least 2
    """
    idx = np.asarray(index)
    return layer_scores({layer: c[:, torch.as_tensor(idx)] for layer, c in clouds.items()}, np.asarray(lengths)[idx])

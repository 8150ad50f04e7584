"""Kronecker factors (KroneckerBERT, Tahaei et al. 2022): a linear map's weight as a sum of Kronecker
products ``W = sum_k A_k (x) B_k``.

:func:`nearest_kronecker` initialises the factors from a pre-trained weight by the nearest Kronecker
product (Van Loan and Pitsianis 1993): rearranging ``W`` so that each ``A (x) B`` becomes the rank-one
matrix ``vec(A) vec(B)^T`` turns the problem into a truncated SVD, so ``rank`` terms leave exactly the
Frobenius error of that SVD. :class:`KroneckerLinear` stores only the factors. For a few tokens it
applies them as ``y = A X B^T`` (``X`` the input reshaped to ``(n1, n2)``); for a batch, where that
costs more than forming ``W`` once, it forms ``W`` and multiplies.

:func:`factor` replaces every linear map of the encoder (and optionally the word-embedding table)
by its factors; :func:`ranks_for_budget` picks the ranks that meet a parameter budget. Training the
factors by distillation from the unpruned model (:mod:`obce.distill`) is the method's second step.

A vanilla ``BertConfig`` cannot express factored maps: :func:`save` writes ``save_pretrained``'s files
plus :data:`CONFIG_FILE` (the factor shapes), and :func:`load` rebuilds the model from them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..distill import DISTILL_DEFAULTS
from ..errors import ObceInputError

#: The file :func:`save` writes beside the weights: every factored map's factor shapes, the word
#: table's factor and the model class.
CONFIG_FILE = "obce_kronecker.json"
#: The registry's name of the method, its parameters' defaults (the distillation's, the word table's
#: factor, 0: a dense table; the general distillation's steps, the paper's first stage) and the
#: parameter that gives it a size of its own: the compression factor of the whole encoder (the
#: paper's 19x; 0: the level's budget).
NAME = "kronecker"
DEFAULTS = dict(DISTILL_DEFAULTS, embedding_factor=0, compression=0, general_steps=600)
OWN_SIZE = "compression"


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for a compression factor that does not compress."""
    if 0 < params["compression"] <= 1:
        raise ObceInputError(f"method kronecker compression={params['compression']!r}: expected a factor > 1 "
                             "(the full encoder's parameters over the compressed one's), or 0 for the level's budget")


def distils(params: dict) -> bool:
    """Whether the method trains from a teacher: always (the paper's knowledge distillation)."""
    return True


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: never."""
    return False


def own_budget(model: nn.Module, params: dict) -> int:
    """The size of its own: the full encoder's parameters over ``compression``."""
    from ..pruning import count_parameters

    return int(count_parameters(model) / params["compression"])


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` if the factors cannot reach ``budget`` (:func:`ranks_to`)."""
    ranks_to(model, budget, params["embedding_factor"] or None)


def compress(model: nn.Module, budget: int, *, embedding_factor: int = 0, **_) -> tuple[nn.Module, dict]:
    """The registry's entry point: ``model`` factored to about ``budget`` parameters
    (:func:`compress_to`), before its distillation.

    Returns
    -------
    model, info
        ``info``: ``ranks``, the rank of each linear map in :func:`linear_maps` order; ``init_error``,
        the mean over the maps of the initial factors' relative Frobenius error
        ``||W - sum_k A_k (x) B_k|| / ||W||``; ``init_error_embeddings``, the word table's (where factored).
    """
    small = compress_to(model, budget, embedding_factor=embedding_factor or None)
    errors = init_errors(model, small)
    info = dict(ranks=[getattr(q, n).a.shape[0] for q, n in linear_maps(small)],
                init_error=round(float(sum(errors) / len(errors)), 6))
    if embedding_factor:
        k = small.base_model.embeddings.word_embeddings
        info["init_error_embeddings"] = k.relative_error(model.base_model.embeddings.word_embeddings.weight)
    return small, info


def init_errors(dense: nn.Module, factored: nn.Module) -> list[float]:
    """The relative Frobenius error of each factored map against the dense map it replaced, in
    :func:`linear_maps` order: ``||W - W_hat|| / ||W||``."""
    out = []
    for (p, n), (q, m) in zip(linear_maps(dense), linear_maps(factored)):
        w = getattr(p, n).weight.detach().double()
        out.append(float((w - getattr(q, m).weight().detach().double()).norm() / w.norm()))
    return out


def nearest_kronecker(weight: torch.Tensor, a_shape: tuple[int, int], b_shape: tuple[int, int],
                      rank: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``rank`` Kronecker terms nearest to ``weight`` in the Frobenius norm.

    Parameters
    ----------
    weight : Tensor of shape (m1 * m2, n1 * n2)
    a_shape : (m1, n1); b_shape : (m2, n2)
    rank : int, the number of terms (at most min(m1 * n1, m2 * n2))

    Returns
    -------
    A : Tensor of shape (rank, m1, n1); B : Tensor of shape (rank, m2, n2)
        ``sum_k kron(A[k], B[k])`` is the best approximation with ``rank`` terms.
    """
    (m1, n1), (m2, n2) = a_shape, b_shape
    w = torch.as_tensor(weight)
    if w.shape != (m1 * m2, n1 * n2):
        raise ObceInputError(f"weight of shape {tuple(w.shape)} is not ({m1} * {m2}, {n1} * {n2}): the factor "
                             f"shapes {a_shape} and {b_shape} do not tile it")
    if not 1 <= rank <= min(m1 * n1, m2 * n2):
        raise ObceInputError(f"rank {rank}: expected 1..{min(m1 * n1, m2 * n2)}")
    # R[(i1, j1), (i2, j2)] = W[i1 * m2 + i2, j1 * n2 + j2]
    r = w.double().reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)
    u, s, vh = torch.linalg.svd(r, full_matrices=False)
    root = s[:rank].sqrt()
    a = (u[:, :rank] * root).T.reshape(rank, m1, n1)
    b = (vh[:rank].T * root).T.reshape(rank, m2, n2)
    return a.to(w.dtype), b.to(w.dtype)


def kronecker_error_bound(weight: torch.Tensor, a_shape: tuple[int, int], b_shape: tuple[int, int],
                          rank: int = 1) -> float:
    """The Frobenius error of the best ``rank``-term approximation: the norm of the singular values of
    the rearranged weight beyond the first ``rank``."""
    (m1, n1), (m2, n2) = a_shape, b_shape
    r = torch.as_tensor(weight).detach().double().reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)
    return float(torch.linalg.svdvals(r)[rank:].norm())


class KroneckerLinear(nn.Module):
    """A linear map whose weight is ``sum_k kron(A[k], B[k])``, storing only the factors.

    Parameters
    ----------
    a : Tensor of shape (rank, m1, n1); b : Tensor of shape (rank, m2, n2)
    bias : Tensor of shape (m1 * m2,), optional
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
            raise ObceInputError(f"factors of shapes {tuple(a.shape)} and {tuple(b.shape)}: expected (rank, m1, n1) "
                                 "and (rank, m2, n2)")
        self.a = nn.Parameter(a.detach().clone())
        self.b = nn.Parameter(b.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.in_features = a.shape[2] * b.shape[2]
        self.out_features = a.shape[1] * b.shape[1]

    @classmethod
    def from_linear(cls, linear: nn.Linear, a_shape: tuple[int, int], b_shape: tuple[int, int],
                    rank: int = 1) -> "KroneckerLinear":
        """The layer initialised from ``linear`` by :func:`nearest_kronecker` (its bias kept)."""
        a, b = nearest_kronecker(linear.weight.detach(), a_shape, b_shape, rank)
        return cls(a, b, None if linear.bias is None else linear.bias.detach())

    def weight(self) -> torch.Tensor:
        """The dense weight ``sum_k kron(A[k], B[k])`` of shape (out_features, in_features)."""
        r, m1, n1 = self.a.shape
        _, m2, n2 = self.b.shape
        return torch.einsum("kij,kml->imjl", self.a, self.b).reshape(m1 * m2, n1 * n2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.numel() // self.in_features
        r, m1, n1 = self.a.shape
        _, m2, n2 = self.b.shape
        if tokens * (n1 * n2 * m2 + m1 * n1 * m2) > m1 * m2 * n1 * n2:  # forming W once is cheaper
            return nn.functional.linear(x, self.weight(), self.bias)
        lead = x.shape[:-1]
        xs = x.reshape(-1, n1, n2)
        y = torch.einsum("kij,bjl,kml->bim", self.a, xs, self.b).reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias


def balanced_shapes(out_features: int, in_features: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Factor shapes ``(m1, n1), (m2, n2)`` with ``m1 * m2 = out_features`` and ``n1 * n2 = in_features``,
    ``m1`` and ``n1`` the divisors nearest the square roots (so that both factors keep structure)."""
    def near_root(n: int) -> int:
        return min(_divisors(n), key=lambda d: (abs(d - n ** 0.5), -d))

    m1, n1 = near_root(out_features), near_root(in_features)
    return (m1, n1), (out_features // m1, in_features // n1)


def linear_maps(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent, attribute) of every linear map the factors replace: all of the encoder's blocks'
    (:func:`obce.models.encoder_linear_maps`)."""
    from ..models import encoder_linear_maps

    return encoder_linear_maps(model)


def ranks_for_budget(model: nn.Module, remove: int) -> list[int]:
    """The rank of each linear map (:func:`linear_maps`, balanced shapes) so that the Kronecker layers
    hold ``remove`` fewer parameters than the dense ones, every map keeping the same share of its
    weights (at least rank 1)."""
    maps = [getattr(p, n) for p, n in linear_maps(model)]
    dense = [m.weight.numel() for m in maps]
    per_rank = [sum(a * b for a, b in balanced_shapes(m.out_features, m.in_features)) for m in maps]
    floor = sum(per_rank)  # rank 1 everywhere
    if not 0 <= remove <= sum(dense) - floor:
        raise ObceInputError(f"removing {remove} parameters from the linear maps: they hold {sum(dense)}, and "
                             f"at rank 1 still {floor}; a larger embedding_factor or a smaller compression "
                             "reaches the budget")
    share = (sum(dense) - remove) / sum(dense)
    return [max(1, round(share * d / p)) for d, p in zip(dense, per_rank)]


def embedding_saving(model: nn.Module, factor: int) -> int:
    """The parameters that :class:`KroneckerEmbedding` with ``factor`` saves on the word-embedding table
    (V, h): ``V * h - (V * h / factor + factor)``."""
    v, h = model.base_model.embeddings.word_embeddings.weight.shape
    if factor < 1 or h % factor:
        raise ObceInputError(f"embedding factor {factor}: expected a divisor of the hidden size {h}")
    return v * h - (v * h // factor + factor)


def factor(model: nn.Module, ranks: Sequence[int] | int, embedding_factor: int | None = None) -> nn.Module:
    """A copy of ``model`` with every encoder linear map replaced by :class:`KroneckerLinear`
    (balanced factor shapes, the given rank per map, initialised by :func:`nearest_kronecker`), and,
    with ``embedding_factor`` f, the word-embedding table (V, h) by the nearest ``A (V, h/f) (x) B (1, f)``.

    Parameters
    ----------
    ranks : one rank for every map, or a rank per map in :func:`linear_maps` order
    """
    import copy

    small = copy.deepcopy(model)
    maps = linear_maps(small)
    ranks = [ranks] * len(maps) if isinstance(ranks, int) else list(ranks)
    if len(ranks) != len(maps):
        raise ObceInputError(f"{len(ranks)} ranks for {len(maps)} linear maps")
    for (parent, name), rank in zip(maps, ranks):
        lin = getattr(parent, name)
        a_shape, b_shape = balanced_shapes(lin.out_features, lin.in_features)
        setattr(parent, name, KroneckerLinear.from_linear(lin, a_shape, b_shape, min(rank, min(
            a_shape[0] * a_shape[1], b_shape[0] * b_shape[1]))))
    if embedding_factor:
        emb = small.base_model.embeddings
        small.base_model.embeddings.word_embeddings = KroneckerEmbedding.from_embedding(emb.word_embeddings,
                                                                                        embedding_factor)
    return small


def compress_to(model: nn.Module, budget: int, embedding_factor: int | None = None) -> nn.Module:
    """A copy of ``model`` factored (:func:`factor`) to about ``budget`` parameters: the word table
    by ``embedding_factor`` (if given), then every linear map at the ranks that
    :func:`ranks_for_budget` gives for the rest."""
    return factor(model, ranks_to(model, budget, embedding_factor), embedding_factor=embedding_factor)


def ranks_to(model: nn.Module, budget: int, embedding_factor: int | None = None) -> list[int]:
    """The ranks (:func:`ranks_for_budget`) that bring ``model`` to about ``budget`` parameters once
    its word table is factored by ``embedding_factor`` (if given); raises if they cannot."""
    from ..pruning import count_parameters

    saved = embedding_saving(model, embedding_factor) if embedding_factor else 0
    return ranks_for_budget(model, count_parameters(model) - budget - saved)


class KroneckerEmbedding(nn.Module):
    """A token table ``W (V, h) = A (V, h/f) (x) B (1, f)``: each token stores ``h/f`` numbers, and one
    shared vector of ``f`` spreads them over the hidden size (the vocabulary rarely factors)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, padding_idx: int | None = None):
        super().__init__()
        self.a, self.b = nn.Parameter(a.detach().clone()), nn.Parameter(b.detach().clone())
        self.padding_idx = padding_idx
        self.num_embeddings, self.embedding_dim = a.shape[0], a.shape[1] * b.shape[1]

    @classmethod
    def from_embedding(cls, emb: nn.Embedding, factor: int) -> "KroneckerEmbedding":
        v, h = emb.weight.shape
        if factor < 1 or h % factor:
            raise ObceInputError(f"embedding factor {factor}: expected a divisor of the hidden size {h}")
        a, b = nearest_kronecker(emb.weight.detach(), (v, h // factor), (1, factor))
        return cls(a[0], b[0], emb.padding_idx)

    def relative_error(self, dense: torch.Tensor) -> float:
        """``||W - A (x) B|| / ||W||`` against the dense table ``W`` of shape (V, h), to 6 decimals."""
        dense = dense.detach()
        approx = (self.a.detach()[:, :, None] * self.b.detach()[0]).flatten(-2)
        return round(float((dense - approx).norm() / dense.norm()), 6)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = nn.functional.embedding(input_ids, self.a)  # (..., h / f)
        return (rows[..., :, None] * self.b[0]).flatten(-2)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def save(model: nn.Module, path: str | os.PathLike, tokenizer=None) -> Path:
    """``save_pretrained`` (the factors are its weights) plus :data:`CONFIG_FILE`: the factor shapes of
    every map in :func:`linear_maps` order, and the word table's factor (``null``: a dense table)."""
    path = Path(path)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    maps = []
    for parent, name in linear_maps(model):
        lin = getattr(parent, name)
        maps.append(dict(a=list(lin.a.shape), b=list(lin.b.shape), bias=lin.bias is not None)
                    if isinstance(lin, KroneckerLinear) else None)
    emb = model.base_model.embeddings.word_embeddings
    meta = dict(maps=maps, embedding_factor=emb.b.shape[1] if isinstance(emb, KroneckerEmbedding) else None,
                model_class=type(model).__name__)
    (path / CONFIG_FILE).write_text(json.dumps(meta) + "\n")
    return path


def load(path: str | os.PathLike) -> nn.Module:
    """Load a model written by :func:`save`: the architecture from its config, every factored map and
    the word table rebuilt with the saved shapes, then the weights (which must match exactly)."""
    import transformers

    from ..checkpoint import load_weights, read_meta

    path = Path(path)
    meta, config = read_meta(path, CONFIG_FILE, "kronecker.save")
    model = getattr(transformers, meta["model_class"])(config)
    maps = linear_maps(model)
    if len(maps) != len(meta["maps"]):
        raise ObceInputError(f"{path / CONFIG_FILE}: {len(meta['maps'])} maps for an architecture of {len(maps)}")
    for (parent, name), shapes in zip(maps, meta["maps"]):
        if shapes is not None:
            setattr(parent, name, KroneckerLinear(torch.zeros(shapes["a"]), torch.zeros(shapes["b"]),
                                                  torch.zeros(shapes["a"][1] * shapes["b"][1]) if shapes["bias"]
                                                  else None))
    f = meta["embedding_factor"]
    if f:
        emb = model.base_model.embeddings.word_embeddings
        v, h = emb.weight.shape
        model.base_model.embeddings.word_embeddings = KroneckerEmbedding(torch.zeros(v, h // f), torch.zeros(1, f),
                                                                         emb.padding_idx)
    return load_weights(model, path)

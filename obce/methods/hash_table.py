"""A hashed n-gram table fitted to the word table: obce's earlier stand-in for EELBERT, kept as a
variant of its own (``hash_table``). It is not EELBERT: EELBERT stores no table at all
(:mod:`obce.methods.eelbert`); this variant keeps ``buckets`` trainable rows and fits them to the
pre-trained token embeddings.

A token's embedding is the mean of the rows of a small table that its character n-grams hash to
(sizes ``ngram_sizes``, ``buckets`` rows). A word-initial token is written ``<token``, a word piece
``##piece`` as ``#piece``, and both end with ``>``, so that the n-grams see word boundaries. The
hash is a stable digest (BLAKE2b), so the same token gets the same vector in every process, and any
string gets one, including tokens the vocabulary never had (:meth:`DynamicEmbedding.embed_strings`).

**Adaptation.** EELBERT pre-trains a model with this embedding, out of reach here. obce fits the
table instead to reproduce the pre-trained model's token embeddings (:func:`fit_to_embeddings`:
least squares over the vocabulary), then the model is fine-tuned on the task as usual. The stored
parameters are the table alone: the n-gram index of each vocabulary id is recomputed from the
tokenizer when the model loads (:func:`load`).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..distill import DISTILL_DEFAULTS
from ..errors import ObceInputError

CONFIG_FILE = "obce_hash_table.json"
#: The registry's name of the method, its parameters' defaults (the distillation's, whether to distil,
#: the n-gram sizes, the fit's epochs, the table's rows; 0: as many as a level's budget leaves) and the
#: parameter that gives it a size of its own (the rows).
NAME = "hash_table"
DEFAULTS = dict(DISTILL_DEFAULTS, distill=False, ngram_sizes=[2, 3, 4], fit_epochs=200, buckets=0)
OWN_SIZE = "buckets"


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for a number of rows that is not whole."""
    if not float(params["buckets"]).is_integer():
        raise ObceInputError(f"method hash_table buckets={params['buckets']!r}: expected a whole number of hash buckets")


def distils(params: dict) -> bool:
    """Whether the method trains from a teacher: with ``distill``."""
    return bool(params["distill"])


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: never."""
    return False


def own_budget(model: nn.Module, params: dict) -> int:
    """The size of its own: the model with ``buckets`` table rows instead of the word table."""
    from ..pruning import count_parameters

    table = model.base_model.embeddings.word_embeddings.weight
    return count_parameters(model) - table.numel() + int(params["buckets"]) * table.shape[1]


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` for more rows than the word table has, or a budget the table cannot give."""
    from ..pruning import count_parameters

    rows = model.base_model.embeddings.word_embeddings.weight.shape[0]
    if int(params["buckets"]) > rows:
        raise ObceInputError(f"method hash_table buckets={params['buckets']}: more rows than the word table's {rows}")
    if not params["buckets"]:
        buckets_for(model, count_parameters(model) - budget)


def compress(model: nn.Module, budget: int, *, tokenizer=None, seed: int = 0, buckets: int = 0,
             ngram_sizes: Sequence[int] = (2, 3, 4), fit_epochs: int = 200, **_) -> tuple[nn.Module, dict]:
    """The registry's entry point: a copy of ``model`` whose word table is replaced by a
    :class:`DynamicEmbedding` of ``buckets`` rows (0: as many as ``budget`` leaves, :func:`buckets_for`)
    fitted to it (:func:`replace_embeddings`).

    Returns
    -------
    model, info
        ``info``: ``buckets``.
    """
    import copy

    from ..pruning import count_parameters

    if tokenizer is None:
        raise ObceInputError("method hash_table needs the tokenizer (its n-grams are the tokens' strings)")
    rows = int(buckets) or buckets_for(model, count_parameters(model) - budget)
    small = replace_embeddings(copy.deepcopy(model), tokenizer, buckets=rows, ngram_sizes=ngram_sizes,
                               epochs=fit_epochs, seed=seed)
    return small, dict(buckets=rows)


def token_ngrams(token: str, sizes: Sequence[int] = (2, 3, 4)) -> list[str]:
    """The character n-grams of one token with word-boundary marks (the whole marked token if it is
    shorter than every size)."""
    text = ("#" + token[2:] if token.startswith("##") else "<" + token) + ">"
    grams = [text[i:i + n] for n in sizes for i in range(len(text) - n + 1)]
    return grams or [text]


def ngram_buckets(token: str, sizes: Sequence[int] = (2, 3, 4), buckets: int = 4096) -> list[int]:
    """The table rows a token's n-grams hash to (stable across processes)."""
    return [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") % buckets
            for g in token_ngrams(token, sizes)]


class DynamicEmbedding(nn.Module):
    """Token embeddings computed from hashed character n-grams.

    Parameters
    ----------
    vocabulary : sequence of str, the token of each input id (``tokenizer.convert_ids_to_tokens``)
    dim : int, the embedding size (the model's hidden size)
    buckets : int, the table's rows; ngram_sizes : the n-gram lengths
    """

    def __init__(self, vocabulary: Sequence[str], dim: int, buckets: int = 4096,
                 ngram_sizes: Sequence[int] = (2, 3, 4), padding_idx: int | None = 0):
        super().__init__()
        if buckets < 1 or not ngram_sizes or min(ngram_sizes) < 1:
            raise ObceInputError(f"buckets={buckets!r}, ngram_sizes={ngram_sizes!r}: expected positive values")
        self.buckets, self.ngram_sizes, self.padding_idx = int(buckets), tuple(int(n) for n in ngram_sizes), padding_idx
        self.table = nn.EmbeddingBag(self.buckets, dim, mode="mean")
        nn.init.normal_(self.table.weight, std=0.02)
        index, offsets = self._index(vocabulary)
        self.register_buffer("index", index, persistent=False)  # rebuilt from the vocabulary, never stored
        self.register_buffer("offsets", offsets, persistent=False)

    @property
    def embedding_dim(self) -> int:
        return self.table.weight.shape[1]

    def _index(self, tokens: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [ngram_buckets(t, self.ngram_sizes, self.buckets) for t in tokens]
        offsets = torch.tensor([0] + [len(r) for r in rows[:-1]], dtype=torch.long).cumsum(0)
        return torch.tensor([b for r in rows for b in r], dtype=torch.long), offsets

    def vocabulary_embeddings(self) -> torch.Tensor:
        """Every vocabulary id's embedding, of shape (vocab_size, dim); the padding id's is 0."""
        out = self.table(self.index, self.offsets)
        if self.padding_idx is not None:
            out = out.index_fill(0, torch.tensor([self.padding_idx], device=out.device), 0.0)
        return out

    def embed_strings(self, tokens: Sequence[str]) -> torch.Tensor:
        """Embeddings of any token strings, in the vocabulary or not, of shape (len(tokens), dim)."""
        index, offsets = self._index(tokens)
        return self.table(index.to(self.table.weight.device), offsets.to(self.table.weight.device))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(input_ids, self.vocabulary_embeddings())


def fit_to_embeddings(dyn: DynamicEmbedding, target: torch.Tensor, epochs: int = 200, lr: float = 0.05,
                      seed: int = 0) -> list[float]:
    """Fit the table so that each vocabulary id's dynamic embedding approaches its row of ``target``
    (least squares over the vocabulary, full-batch Adam).

    Parameters
    ----------
    target : Tensor of shape (vocab_size, dim), e.g. the pre-trained ``word_embeddings.weight``

    Returns
    -------
    list of float: the mean squared error after each epoch
    """
    if target.shape != (len(dyn.offsets), dyn.embedding_dim):
        raise ObceInputError(f"target of shape {tuple(target.shape)}: expected ({len(dyn.offsets)}, "
                             f"{dyn.embedding_dim})")
    torch.manual_seed(seed)
    opt = torch.optim.Adam(dyn.parameters(), lr=lr)
    target = target.detach().to(dyn.table.weight)
    keep = torch.ones(len(target), dtype=torch.bool)
    if dyn.padding_idx is not None:
        keep[dyn.padding_idx] = False
    history = []
    for _ in range(epochs):
        loss = (dyn.vocabulary_embeddings()[keep] - target[keep]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return history


def buckets_for(model: nn.Module, remove: int) -> int:
    """The table rows left when the word-embedding table (V, h) gives up ``remove`` parameters:
    ``(V * h - remove) // h``."""
    table = model.base_model.embeddings.word_embeddings.weight
    buckets = (table.numel() - remove) // table.shape[1]
    if buckets < 1:
        raise ObceInputError(f"removing {remove} parameters: the word-embedding table holds only {table.numel()}")
    return int(buckets)


def replace_embeddings(model: nn.Module, tokenizer, buckets: int = 4096, ngram_sizes: Sequence[int] = (2, 3, 4),
             epochs: int = 200, lr: float = 0.05, seed: int = 0) -> nn.Module:
    """``model`` with its word-embedding table replaced by a :class:`DynamicEmbedding` fitted to it (in
    place; returns ``model``)."""
    emb = model.base_model.embeddings
    vocab = tokenizer.convert_ids_to_tokens(list(range(emb.word_embeddings.num_embeddings)))
    dyn = DynamicEmbedding(vocab, emb.word_embeddings.embedding_dim, buckets, ngram_sizes,
                           padding_idx=emb.word_embeddings.padding_idx)
    fit_to_embeddings(dyn, emb.word_embeddings.weight, epochs=epochs, lr=lr, seed=seed)
    emb.word_embeddings = dyn
    return model


def save(model: nn.Module, path: str | os.PathLike, tokenizer) -> Path:
    """The weights (without a vocabulary table), the tokenizer and ``obce_hash_table.json``."""
    from ..checkpoint import save_with_embedding

    dyn = model.base_model.embeddings.word_embeddings
    return save_with_embedding(model, path, tokenizer, CONFIG_FILE, dict(
        buckets=dyn.buckets, ngram_sizes=list(dyn.ngram_sizes), padding_idx=dyn.padding_idx))


def load(path: str | os.PathLike) -> nn.Module:
    """Load a model written by :func:`save` (the n-gram index is rebuilt from its tokenizer)."""
    from ..checkpoint import load_with_embedding

    return load_with_embedding(Path(path), CONFIG_FILE, "hash_table.save", lambda vocab, config, meta: DynamicEmbedding(
        vocab, config.hidden_size, meta["buckets"], meta["ngram_sizes"], meta["padding_idx"]))

"""EELBERT (Cohn et al. 2023): the input embedding table replaced by an embedding computed on the fly.

A token's embedding is the mean, over its character n-grams, of a pseudo-random vector that the
n-gram's hash seeds (the paper's n-gram pooling hash function): nothing is stored, the same token gets
the same vector in every sentence and every process, and any string gets one, including tokens the
vocabulary never had. :class:`HashEmbedding` does this with no parameters.

* A word-initial token is written ``<token>``, a word piece ``##piece`` as ``#piece>``, so that the
  n-grams see word boundaries; a token shorter than the n-gram size is one n-gram, itself.
* Special tokens (``[CLS]``, ``[SEP]``, ``[MASK]``, ``[UNK]``) get vectors of their own, seeded from
  their name with a prefix no text can produce; padding embeds to 0.
* Each n-gram's vector has entries uniform in ``[-1, 1)`` (a counter-based generator, SplitMix64,
  seeded by the n-gram's 64-bit BLAKE2b digest), times one constant ``scale`` that matches the
  pre-trained table's entry spread, so the position and token-type embeddings keep their share.

**Adaptation, and how it differs from the paper.** EELBERT pre-trains BERT with these embeddings
from scratch; that is out of reach here. obce starts from MiniLM's pre-trained encoder without its
word table, adapts it to the new inputs by the general distillation stage (:func:`obce.distill.
general_distillation`: the student learns the unpruned MiniLM's hidden states and attention outputs
on unlabeled GLUE training sentences), then fine-tunes it on the task. The position and token-type
embeddings and the embedding LayerNorm stay, as in the paper. The size is EELBERT's own (the encoder
without its word table), so a level's budget does not apply; ``layers`` keeps only the first blocks
for a smaller model (as the paper's UNO-EELBERT is a smaller BERT with dynamic embeddings).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..distill import DISTILL_DEFAULTS
from ..errors import ObceInputError

CONFIG_FILE = "obce_eelbert.json"
#: The registry's name of the method and its parameters' defaults: the task-stage distillation's (and
#: whether to distil), the n-gram size, the blocks kept (0: all) and the general distillation's steps
#: (the adaptation to the new inputs, :mod:`obce.distill`).
NAME = "eelbert"
DEFAULTS = dict(DISTILL_DEFAULTS, distill=False, ngram_size=3, layers=0, general_steps=600)
#: EELBERT always has a size of its own (the encoder without its word table); ``layers`` makes it smaller.
OWN_SIZE = "layers"
ALWAYS_OWN = True
#: The prefix of a special token's seed string (a NUL: no tokenizer's text contains one).
SPECIAL_PREFIX = "\x00special\x00"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for an n-gram size or a number of blocks that is not a whole number."""
    for key in ("ngram_size", "layers"):
        if not float(params[key]).is_integer():
            raise ObceInputError(f"method eelbert {key}={params[key]!r}: expected a whole number")


def distils(params: dict) -> bool:
    """Whether the method trains from the fine-tuned teacher in the task stage: with ``distill``."""
    return bool(params["distill"])


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: never (its general distillation reads its own)."""
    return False


def kept_layers(model: nn.Module, params: dict) -> int:
    """The blocks EELBERT keeps: ``layers``, or all of them (0)."""
    n = model.base_model.config.num_hidden_layers
    return int(params["layers"]) or n


def own_budget(model: nn.Module, params: dict) -> int:
    """Its size: the encoder's parameters without the word table and the blocks beyond ``layers``."""
    from ..models import encoder_layers
    from ..pruning import count_parameters

    base = model.base_model
    blocks = encoder_layers(base)
    removed = sum(count_parameters(b) for b in blocks[kept_layers(model, params):])
    return count_parameters(base) - base.embeddings.word_embeddings.weight.numel() - removed


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` for more blocks than the model has, or an n-gram size below 1."""
    n = model.base_model.config.num_hidden_layers
    if not 0 <= int(params["layers"]) <= n:
        raise ObceInputError(f"method eelbert layers={params['layers']}: the model has {n} blocks")
    if int(params["ngram_size"]) < 1:
        raise ObceInputError(f"method eelbert ngram_size={params['ngram_size']}: expected 1 or more")


def compress(model: nn.Module, budget: int, *, tokenizer=None, ngram_size: int = 3, layers: int = 0,
             **_) -> tuple[nn.Module, dict]:
    """The registry's entry point: a copy of ``model`` whose word table is replaced by a
    :class:`HashEmbedding` (no parameters), keeping its first ``layers`` blocks (0: all). ``budget``
    is not used: EELBERT's size is its own.

    Returns
    -------
    model, info
        ``info``: ``embedding_table_parameters`` (0), ``layers_kept``, ``ngram_size``, ``scale``.
    """
    import copy

    if tokenizer is None:
        raise ObceInputError("method eelbert needs the tokenizer (its n-grams are the tokens' strings)")
    small = copy.deepcopy(model)
    keep = kept_layers(small, {"layers": layers})
    truncate_layers(small, keep)
    dyn = replace_embeddings(small, tokenizer, ngram_size=ngram_size)
    return small, dict(embedding_table_parameters=0, layers_kept=keep, ngram_size=int(ngram_size),
                       scale=dyn.scale)


def truncate_layers(model: nn.Module, keep: int) -> nn.Module:
    """Keep the first ``keep`` encoder blocks of ``model`` (in place; its config says so)."""
    base = model.base_model
    base.encoder.layer = nn.ModuleList(list(base.encoder.layer)[:keep])
    base.config.num_hidden_layers = keep
    model.config.num_hidden_layers = keep
    return model


def token_ngrams(token: str, n: int = 3) -> list[str]:
    """The character n-grams of one token with word-boundary marks (the whole marked token if it is
    shorter than ``n``)."""
    text = ("#" + token[2:] if token.startswith("##") else "<" + token) + ">"
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return grams or [text]


def seed_of(text: str) -> int:
    """A stable 64-bit seed of a string (BLAKE2b), the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def hash_vectors(seeds: np.ndarray, dim: int) -> np.ndarray:
    """The pseudo-random vector of each seed: entry ``j`` of seed ``s`` is SplitMix64 of
    ``s + (j + 1) * golden``, mapped to ``[-1, 1)``.

    Parameters
    ----------
    seeds : ndarray of uint64, shape (m,)

    Returns
    -------
    ndarray of float32, shape (m, dim)
    """
    x = seeds.astype(np.uint64)[:, None] + (np.arange(1, dim + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    with np.errstate(over="ignore"):
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0).astype(np.float32)


class HashEmbedding(nn.Module):
    """Token embeddings computed on the fly from hashed character n-grams: no parameters, no table.

    Parameters
    ----------
    vocabulary : sequence of str, the token of each input id (``tokenizer.convert_ids_to_tokens``)
    dim : int, the embedding size (the model's hidden size)
    ngram_size : int, the n-gram length
    special_tokens : the tokens that get a vector of their own instead of their n-grams'
    padding_idx : the id that embeds to 0 (``None``: none)
    scale : float, every entry's factor
    """

    def __init__(self, vocabulary: Sequence[str], dim: int, ngram_size: int = 3,
                 special_tokens: Sequence[str] = (), padding_idx: int | None = 0, scale: float = 1.0):
        super().__init__()
        if dim < 1 or ngram_size < 1 or not scale > 0:
            raise ObceInputError(f"dim={dim!r}, ngram_size={ngram_size!r}, scale={scale!r}: expected positive values")
        self.vocabulary, self.dim, self.ngram_size = list(vocabulary), int(dim), int(ngram_size)
        self.special_tokens, self.padding_idx, self.scale = tuple(special_tokens), padding_idx, float(scale)
        self._seeds: dict[str, np.ndarray] = {}  # a memo of each token's n-gram seeds (integers, not vectors)
        # an empty buffer that follows the model's .to(device, dtype), so the vectors come in its dtype
        self.register_buffer("_like", torch.zeros(0), persistent=False)

    @property
    def embedding_dim(self) -> int:
        return self.dim

    @property
    def num_embeddings(self) -> int:
        return len(self.vocabulary)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, ngram_size={self.ngram_size}, scale={self.scale:.6g}, "
                f"special_tokens={list(self.special_tokens)}, padding_idx={self.padding_idx}, "
                f"vocabulary={len(self.vocabulary)}")

    def token_seeds(self, token: str) -> np.ndarray:
        """The seeds of a token's n-grams (one seed of its own for a special token), uint64 of shape (k,)."""
        if token not in self._seeds:
            grams = [SPECIAL_PREFIX + token] if token in self.special_tokens else token_ngrams(token, self.ngram_size)
            self._seeds[token] = np.array([seed_of(g) for g in grams], dtype=np.uint64)
        return self._seeds[token]

    def embed_strings(self, tokens: Sequence[str]) -> torch.Tensor:
        """Embeddings of any token strings, in the vocabulary or not, of shape (len(tokens), dim)."""
        seeds = [self.token_seeds(t) for t in tokens]
        counts = np.array([len(s) for s in seeds])
        vectors = hash_vectors(np.concatenate(seeds), self.dim)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pooled = np.add.reduceat(vectors, starts, axis=0) / counts[:, None].astype(np.float32)
        return torch.from_numpy((pooled * np.float32(self.scale)).astype(np.float32))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids, inverse = torch.unique(input_ids, return_inverse=True)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(self.vocabulary)):
            raise ObceInputError(f"input id {int(ids.max())} outside the vocabulary of {len(self.vocabulary)} tokens")
        table = self.embed_strings([self.vocabulary[i] for i in ids.tolist()])
        if self.padding_idx is not None:
            table[ids == self.padding_idx] = 0.0
        return table.to(self._like)[inverse.to(self._like.device)]


def entry_scale(table: torch.Tensor) -> float:
    """The factor that gives uniform ``[-1, 1)`` entries the standard deviation of ``table``'s entries."""
    return float(table.detach().float().std()) * 3 ** 0.5


def replace_embeddings(model: nn.Module, tokenizer, ngram_size: int = 3, scale: float | None = None) -> HashEmbedding:
    """Replace ``model``'s word table by a :class:`HashEmbedding` (in place; ``scale`` default:
    :func:`entry_scale` of the table it replaces). Returns the new embedding."""
    emb = model.base_model.embeddings
    old = emb.word_embeddings
    vocab = tokenizer.convert_ids_to_tokens(list(range(old.num_embeddings)))
    specials = [t for t in tokenizer.all_special_tokens if t != tokenizer.pad_token]
    if scale is None:
        scale = entry_scale(old.weight)
    dyn = HashEmbedding(vocab, old.embedding_dim, ngram_size, specials, padding_idx=old.padding_idx, scale=scale)
    emb.word_embeddings = dyn
    return dyn


def save(model: nn.Module, path: str | os.PathLike, tokenizer) -> Path:
    """The weights (no word table), the tokenizer and ``obce_eelbert.json`` (the n-gram size, the
    scale, the special tokens, the padding id, the model class)."""
    from ..checkpoint import save_with_embedding

    dyn = model.base_model.embeddings.word_embeddings
    return save_with_embedding(model, path, tokenizer, CONFIG_FILE, dict(
        ngram_size=dyn.ngram_size, scale=dyn.scale, special_tokens=list(dyn.special_tokens),
        padding_idx=dyn.padding_idx))


def load(path: str | os.PathLike) -> nn.Module:
    """Load a model written by :func:`save` (the embedding is rebuilt from the tokenizer's vocabulary)."""
    from ..checkpoint import load_with_embedding

    return load_with_embedding(Path(path), CONFIG_FILE, "eelbert.save", lambda vocab, config, meta: HashEmbedding(
        vocab, config.hidden_size, meta["ngram_size"], meta["special_tokens"], meta["padding_idx"], meta["scale"]))

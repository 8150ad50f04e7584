"""A combination, the way a user would compress MiniLM for real: FFN neurons pruned by a score, the
word table compressed (EELBERT's table-free embedding or a Kronecker-factored table), and
distillation (the general stage, then the task stage).

The word table is half of MiniLM's parameters, and no FFN pruning reaches below about two thirds of
the encoder; together the two reach half of it (11.4M of 22.7M parameters) and less. The size is
its own: ``size`` is the fraction of the full encoder's parameters to keep (0: a level's budget).
The embedding is compressed first; FFN pruning keeps, in every layer, as many of the best-scoring
neurons as the rest of the budget allows (all of them when the compressed embedding alone is
already below it). A budget that even one neuron per layer exceeds is refused before any compute.
"""
from __future__ import annotations

import copy

import numpy as np
from torch import nn

from ..distill import DISTILL_DEFAULTS
from ..errors import ObceInputError, check_choice
from ..models import ffn_layers
from ..pruning import count_parameters, prune

#: The registry's name and its parameters' defaults: the task-stage distillation's (and whether to
#: distil), the score that ranks the FFN neurons, the embedding (``kronecker``, ``eelbert`` or
#: ``none``) with its factor or n-gram size, the fraction of the encoder kept (0: a level's budget) and
#: the general distillation's steps.
NAME = "combined"
DEFAULTS = dict(DISTILL_DEFAULTS, distill=True, score="merge_radius", embedding="kronecker", embedding_factor=4,
                ngram_size=3, size=0.5, general_steps=600)
OWN_SIZE = "size"
EMBEDDINGS = ("kronecker", "eelbert", "none")

__all__ = ["DEFAULTS", "EMBEDDINGS", "NAME", "check_fits", "compress", "embedding_after", "neurons_for", "own_budget"]


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for an unknown score or embedding, or a size outside [0, 1)."""
    from ..scoring import IMPORTANCES

    check_choice("method combined score", params["score"], IMPORTANCES)
    check_choice("method combined embedding", params["embedding"], EMBEDDINGS)
    if not 0 <= params["size"] < 1:
        raise ObceInputError(f"method combined size={params['size']!r}: expected the fraction of the encoder's "
                             "parameters to keep, in (0, 1), or 0 for a level's budget")
    if not float(params["ngram_size"]).is_integer() or params["ngram_size"] < 1:
        raise ObceInputError(f"method combined ngram_size={params['ngram_size']!r}: expected a whole number >= 1")


def distils(params: dict) -> bool:
    """Whether the task stage trains from the fine-tuned teacher: with ``distill`` (the default)."""
    return bool(params["distill"])


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: its score does."""
    return True


def score_of(params: dict) -> str:
    """The importance score whose per-neuron scores :func:`compress` needs."""
    return params["score"]


def own_budget(model: nn.Module, params: dict) -> int:
    """Its size: ``size`` times the full encoder's parameters."""
    return int(round(params["size"] * count_parameters(model)))


def embedding_after(model: nn.Module, params: dict) -> int:
    """The word table's parameters once compressed: ``V * h`` (``none``), ``V * h / f + f``
    (``kronecker``, :class:`obce.methods.kronecker.KroneckerEmbedding`) or 0 (``eelbert``)."""
    from .kronecker import embedding_saving

    table = model.base_model.embeddings.word_embeddings.weight.numel()
    if params["embedding"] == "eelbert":
        return 0
    if params["embedding"] == "kronecker":
        return table - embedding_saving(model, int(params["embedding_factor"]))
    return table


def neurons_for(model: nn.Module, budget: int, params: dict) -> int:
    """The FFN neurons per layer that bring the encoder, its word table compressed
    (:func:`embedding_after`), nearest ``budget``; all of them when the compressed table alone brings
    it below.

    Raises
    ------
    ObceInputError
        Even one neuron per layer leaves more than ``budget`` parameters.
    """
    from .ffn_pruning import keep_for_budget

    table = model.base_model.embeddings.word_embeddings.weight.numel()
    saved = table - embedding_after(model, params)
    full = count_parameters(model)
    try:  # FFN pruning of the rest of the budget; all neurons when the table alone brings it below
        return keep_for_budget(model, min(full, budget + saved))
    except ObceInputError:
        layers = ffn_layers(model)
        floor = full - saved - (layers[0][0].out_features - 1) * len(layers) * (2 * layers[0][0].in_features + 1)
        raise ObceInputError(f"method combined: a budget of {budget:,} parameters is out of reach with the "
                             f"{params['embedding']} embedding: it reaches {floor:,} at one FFN neuron per layer "
                             "(a larger embedding_factor, the eelbert embedding or a larger size reaches "
                             "further)") from None


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` before any compute if the budget is out of reach (:func:`neurons_for`)
    or the embedding factor does not divide the hidden size."""
    neurons_for(model, budget, params)


def compress(model: nn.Module, budget: int, *, scores=None, tokenizer=None, score: str = "merge_radius",
             embedding: str = "kronecker", embedding_factor: int = 4, ngram_size: int = 3,
             **_) -> tuple[nn.Module, dict]:
    """The registry's entry point: a copy of ``model`` with its word table compressed and, in every
    layer, the FFN neurons with the highest ``scores`` that bring it nearest ``budget``.

    Parameters
    ----------
    scores : array_like of shape (n_layers, n_neurons), the neurons' ``score``
    tokenizer : the model's tokenizer (the ``eelbert`` embedding hashes its tokens' strings)

    Returns
    -------
    model, info
        ``info``: ``score``, ``intermediate_size``, ``keep_fraction``, ``embedding``,
        ``embedding_table_parameters``, and ``init_error_embeddings`` (the factored table's relative
        Frobenius error, ``kronecker``) or ``ngram_size`` and ``scale`` (``eelbert``).
    """
    from . import eelbert
    from .kronecker import KroneckerEmbedding

    params = dict(embedding=embedding, embedding_factor=embedding_factor)
    if scores is None:
        raise ObceInputError(f"method combined needs the neurons' scores ({score}) as scores=")
    if embedding == "eelbert" and tokenizer is None:
        raise ObceInputError("method combined with the eelbert embedding needs the tokenizer")
    k = neurons_for(model, budget, params)
    n = ffn_layers(model)[0][0].out_features
    small = prune(model, np.asarray(scores), keep_fraction=k / n) if k < n else copy.deepcopy(model)
    info = dict(score=score, intermediate_size=small.config.intermediate_size, keep_fraction=k / n,
                embedding=embedding, embedding_table_parameters=embedding_after(model, params))
    emb = small.base_model.embeddings
    if embedding == "kronecker":
        dense = emb.word_embeddings.weight
        emb.word_embeddings = KroneckerEmbedding.from_embedding(emb.word_embeddings, int(embedding_factor))
        info["init_error_embeddings"] = emb.word_embeddings.relative_error(dense)
    elif embedding == "eelbert":
        dyn = eelbert.replace_embeddings(small, tokenizer, ngram_size=int(ngram_size))
        info.update(ngram_size=int(ngram_size), scale=dyn.scale)
    return small, info

"""Removing whole FFN sub-layers ("the importance of intermediate layers" in BERT).

A removed block's FFN contributes nothing: its ``intermediate.dense`` has no output neuron and its
``output.dense`` maps those zero neurons to the hidden size without a bias, so the block computes
``LayerNorm(attention_output + 0)``: the residual connection and the LayerNorm stay as they are.
Every weight of the removed FFN is gone, biases included: on MiniLM 1,181,568 parameters per block,
so removing 3 of the 6 blocks removes 3,544,704, 1,152 more than OBCE's level 2 (neuron pruning keeps
each layer's output bias).

A vanilla ``BertConfig`` has one ``intermediate_size`` for every layer, so the saved checkpoint also
holds ``obce_layers.json`` with each layer's FFN size, and :func:`load` (not ``AutoModel``) loads it.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from torch import nn

from ..errors import ObceInputError
from ..models import encoder_layers, ffn_layers

CRITERIA = ("last", "first", "every_other", "residual_change")
LAYERS_FILE = "obce_layers.json"

#: The registry's name of the method, its parameters' defaults, and the parameter that gives it a
#: size of its own (none: it takes a level's budget).
NAME = "layer_removal"
DEFAULTS = dict(criterion="residual_change")
OWN_SIZE = None


def validate(params: dict) -> None:
    """Raise ``ObceInputError`` for parameters the method cannot take."""
    if params["criterion"] not in CRITERIA:
        raise ObceInputError(f"method layer_removal criterion {params['criterion']!r}: expected one of {CRITERIA}")


def distils(params: dict) -> bool:
    """Whether the method trains from a teacher: never (it fine-tunes as the pipeline does)."""
    return False


def reads_corpus(params: dict) -> bool:
    """Whether the method's choice reads the scoring corpus: with ``residual_change``."""
    return params["criterion"] == "residual_change"


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Every budget between the full model and no FFN at all is reachable to the nearest block."""


def compress(model: nn.Module, budget: int, *, tokenizer=None, texts=None, max_length: int = 64,
             criterion: str = "residual_change", **_) -> tuple[nn.Module, dict]:
    """The registry's entry point: a copy of ``model`` without the whole FFN blocks that come nearest
    to ``budget`` encoder parameters (:func:`blocks_for`), chosen by ``criterion``.

    Returns
    -------
    model, info
        ``info``: ``removed_layers`` and ``intermediate_size`` (each layer's FFN size, 0 where removed).
    """
    from ..pruning import count_parameters

    n_remove = blocks_for(model, count_parameters(model) - budget)
    small = remove_blocks(model, n_remove=n_remove, criterion=criterion, tokenizer=tokenizer, texts=texts,
                          max_length=max_length)
    sizes = layer_sizes(small)
    return small, dict(removed_layers=[i for i, s in enumerate(sizes) if s == 0], intermediate_size=sizes)


def remove_blocks(model: nn.Module, n_remove: int | None = None, layers: Sequence[int] | None = None,
             criterion: str = "last", tokenizer=None, texts=None, max_length: int = 64) -> nn.Module:
    """A copy of ``model`` without the FFN sub-layers of ``layers`` (or ``n_remove`` chosen by
    ``criterion``).

    Parameters
    ----------
    n_remove : int, optional
        How many FFN blocks to remove (with ``criterion``).
    layers : sequence of int, optional
        The blocks to remove, instead of ``n_remove``.
    criterion : {"last", "first", "every_other", "residual_change"}
        ``residual_change`` removes the blocks whose FFN changes the residual stream least over the
        corpus (:func:`residual_change`; needs ``tokenizer`` and ``texts``).
    """
    n_layers = len(encoder_layers(model))
    if (n_remove is None) == (layers is None):
        raise ObceInputError("give exactly one of n_remove and layers")
    if layers is None:
        layers = choose_layers(model, n_remove, criterion, tokenizer, texts, max_length)
    chosen = sorted({int(i) for i in layers})
    if any(not 0 <= i < n_layers for i in chosen):
        raise ObceInputError(f"layers {list(layers)}: expected block indices in 0..{n_layers - 1}")
    small = copy.deepcopy(model)
    for i in chosen:
        remove_ffn(encoder_layers(small)[i])
    return small


def choose_layers(model: nn.Module, n_remove: int, criterion: str = "last", tokenizer=None, texts=None,
                  max_length: int = 64) -> list[int]:
    """The ``n_remove`` blocks a criterion picks (see :func:`remove_blocks`)."""
    n_layers = len(encoder_layers(model))
    if isinstance(n_remove, bool) or not isinstance(n_remove, (int, np.integer)) or not 0 <= n_remove <= n_layers:
        raise ObceInputError(f"n_remove={n_remove!r}: expected an integer in 0..{n_layers}")
    if criterion == "last":
        return list(range(n_layers - n_remove, n_layers))
    if criterion == "first":
        return list(range(n_remove))
    if criterion == "every_other":
        order = [*range(1, n_layers, 2), *range(0, n_layers, 2)]
        return sorted(order[:n_remove])
    if criterion == "residual_change":
        if tokenizer is None or texts is None:
            raise ObceInputError("criterion 'residual_change' needs tokenizer= and texts=")
        change = residual_change(model, tokenizer, texts, max_length)
        return sorted(np.argsort(change, kind="stable")[:n_remove].tolist())
    raise ObceInputError(f"criterion {criterion!r}: expected one of {CRITERIA}")


def residual_change(model: nn.Module, tokenizer, texts, max_length: int = 64) -> np.ndarray:
    """How much each block's FFN changes the residual stream: the mean over real tokens of
    ``||FFN(x)|| / ||x||``, ``x`` the FFN's input (the attention output).

    Returns
    -------
    ndarray of shape (n_layers,)
    """
    from ..activations import run_corpus
    from ..data import validate_texts

    texts = validate_texts(texts)
    blocks = encoder_layers(model)
    sums = np.zeros(len(blocks))

    def add_change(i: int):
        def hook(module, inputs, _output, mask):  # BertOutput(hidden_states=FFN hidden, input_tensor=x)
            h, x = inputs[0], inputs[1]
            y = module.dense(h)
            sums[i] += float((y.norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-12))[mask].sum())
        return hook

    count = run_corpus(model, tokenizer, texts, [(b.output, add_change(i)) for i, b in enumerate(blocks)], max_length)
    return sums / count


def remove_ffn(block: nn.Module) -> None:
    """Remove one block's FFN in place: no intermediate neuron, an output map without bias."""
    import warnings

    inter, out = block.intermediate.dense, block.output.dense
    with warnings.catch_warnings():  # "Initializing zero-element tensors is a no-op": nothing to initialize
        warnings.simplefilter("ignore", UserWarning)
        block.intermediate.dense = nn.Linear(inter.in_features, 0, dtype=inter.weight.dtype)
        block.output.dense = nn.Linear(0, out.out_features, bias=False, dtype=out.weight.dtype)


def blocks_for(model: nn.Module, remove: int) -> int:
    """How many whole FFN blocks come nearest to removing ``remove`` parameters (each block: both
    maps with their biases, :func:`block_parameters`)."""
    return int(np.clip(round(remove / block_parameters(model)), 0, len(layer_sizes(model))))


def block_parameters(model: nn.Module) -> int:
    """The parameters of one FFN block (the first layer's two maps with their biases)."""
    inter, out = ffn_layers(model)[0]
    return sum(p.numel() for p in (*inter.parameters(), *out.parameters()))


def reached(model: nn.Module, budget: int) -> int:
    """The encoder's parameter count after removing the whole blocks that come nearest ``budget``
    (:func:`blocks_for`): what the method reaches, to which FFN pruning is matched
    (:mod:`obce.methods.ffn_pruning`'s ``match``)."""
    from ..pruning import count_parameters

    full = count_parameters(model)
    return full - blocks_for(model, full - budget) * block_parameters(model)


def layer_sizes(model: nn.Module) -> list[int]:
    """Each layer's FFN size (0 for a removed block)."""
    return [inter.out_features for inter, _ in ffn_layers(model)]


def save(model: nn.Module, path: str | os.PathLike, tokenizer=None) -> Path:
    """``save_pretrained`` plus ``obce_layers.json`` (each layer's FFN size)."""
    path = Path(path)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    (path / LAYERS_FILE).write_text(json.dumps({"intermediate_sizes": layer_sizes(model)}) + "\n")
    return path


def load(path: str | os.PathLike, model_class=None) -> nn.Module:
    """Load a checkpoint written by :func:`save` (``AutoModel`` by default, or ``model_class``)."""
    from transformers import AutoModel

    from ..checkpoint import load_weights, read_meta

    path = Path(path)
    meta, config = read_meta(path, LAYERS_FILE, "layer_removal.save")
    model = (model_class or AutoModel).from_config(config)
    for block, size in zip(encoder_layers(model), meta["intermediate_sizes"]):
        if size == 0:
            remove_ffn(block)
        elif size != block.intermediate.dense.out_features:
            raise ObceInputError(f"{path / LAYERS_FILE}: layer size {size} differs from the config's "
                                 f"{block.intermediate.dense.out_features}")
    return load_weights(model, path)

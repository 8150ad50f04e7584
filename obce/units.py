"""Attention heads and FFN neurons as one currency: masks over both, their cost in MACs, and physical
pruning to widths that differ by layer (Kwon et al. 2022's units).

* :func:`unit_masks` multiplies a mask into every layer's heads (each head's context vectors, before
  the attention output projection) and FFN neurons (their activations, before the output map), by
  forward pre-hooks; a mask of ones leaves every output unchanged, and a mask that requires grad
  gives its gradient (the Fisher score).
* :func:`unit_macs` gives the multiply-accumulates of one head and one neuron at a sequence length
  (Kwon's cost model: heads ``4 s d d_h + 2 s^2 d_h``, neurons ``2 s d``; embeddings and heads of the
  task are not counted), :func:`macs_fraction` a pruned model's share of the unpruned cost.
* :func:`prune_units` removes heads (their query, key and value rows and their columns of the output
  projection) and neurons from each layer, folding per-unit scales into the output maps;
  :func:`save` and :func:`load` write and read the result (``obce_units.json`` records each layer's
  heads and FFN width, so it reloads to the same logits).
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ObceInputError
from .models import encoder_layers

UNITS_FILE = "obce_units.json"

__all__ = ["UNITS_FILE", "head_dim", "layer_widths", "load", "macs_fraction", "prune_units", "save", "unit_macs",
           "unit_masks"]


def head_dim(model: nn.Module) -> int:
    """The size of one attention head's context vector (``attention_head_size``)."""
    return int(encoder_layers(model)[0].attention.self.attention_head_size)


def layer_widths(model: nn.Module) -> tuple[list[int], list[int]]:
    """Each layer's number of attention heads and FFN neurons, as the modules hold them."""
    layers = encoder_layers(model)
    heads = [layer.attention.self.query.out_features // head_dim(model) for layer in layers]
    neurons = [layer.intermediate.dense.out_features for layer in layers]
    return heads, neurons


@contextmanager
def unit_masks(model: nn.Module, head_mask: Sequence[torch.Tensor] | torch.Tensor | None = None,
               neuron_mask: Sequence[torch.Tensor] | torch.Tensor | None = None) -> Iterator[None]:
    """Multiply masks into the model's heads and neurons while the context is open.

    Parameters
    ----------
    head_mask : Tensor of shape (n_layers, n_heads), or one Tensor of shape (n_heads_l,) per layer
        Scales each head's context vectors before the attention output projection (0 removes it).
    neuron_mask : Tensor of shape (n_layers, n_neurons), or one Tensor of shape (n_neurons_l,) per layer
        Scales each FFN neuron's activation before the FFN output map.
    """
    layers = encoder_layers(model)
    d_h = head_dim(model)
    hooks = []

    def scale_heads(mask):
        def hook(_module, args):
            ctx = args[0]
            shaped = ctx.view(*ctx.shape[:-1], -1, d_h) * mask.to(ctx).view(-1, 1)
            return (shaped.reshape(ctx.shape), *args[1:])
        return hook

    def scale_neurons(mask):
        def hook(_module, args):
            return (args[0] * mask.to(args[0]), *args[1:])
        return hook

    try:
        for i, layer in enumerate(layers):
            if head_mask is not None:
                hooks.append(layer.attention.output.register_forward_pre_hook(scale_heads(head_mask[i])))
            if neuron_mask is not None:
                hooks.append(layer.output.register_forward_pre_hook(scale_neurons(neuron_mask[i])))
        yield
    finally:
        for h in hooks:
            h.remove()


def unit_macs(seq_len: float, hidden: int, d_h: int) -> tuple[float, float]:
    """The multiply-accumulates of one attention head and of one FFN neuron on a sequence of
    ``seq_len`` tokens (Kwon et al.'s cost model): a head's query, key, value and output slices
    ``4 s d d_h`` plus its attention ``2 s^2 d_h``; a neuron's two weight vectors ``2 s d``.

    Returns
    -------
    (head_macs, neuron_macs)
    """
    if not seq_len > 0:
        raise ObceInputError(f"sequence length {seq_len!r}: expected a positive number")
    return 4 * seq_len * hidden * d_h + 2 * seq_len ** 2 * d_h, 2 * seq_len * hidden


def macs_fraction(heads: Sequence[int], neurons: Sequence[int], full_heads: int, full_neurons: int,
                  seq_len: float, hidden: int, d_h: int) -> float:
    """A model's share of the unpruned model's head and neuron MACs, with ``heads[l]`` heads and
    ``neurons[l]`` neurons in layer ``l`` (every layer of the unpruned model has ``full_heads`` and
    ``full_neurons``)."""
    h, n = unit_macs(seq_len, hidden, d_h)
    full = len(heads) * (full_heads * h + full_neurons * n)
    return float(sum(a * h + b * n for a, b in zip(heads, neurons)) / full)


def prune_units(model: nn.Module, keep_heads: Sequence[Sequence[int]], keep_neurons: Sequence[Sequence[int]],
                head_scales: Sequence[Sequence[float]] | None = None,
                neuron_scales: Sequence[Sequence[float]] | None = None) -> nn.Module:
    """A copy of ``model`` that keeps, in layer ``l``, the heads ``keep_heads[l]`` and the FFN neurons
    ``keep_neurons[l]`` (at least one of each), with the scales (mask tuning's) folded into the
    attention output projection and the FFN output map, so that the copy computes what the masked
    model computes.

    Parameters
    ----------
    keep_heads, keep_neurons : one sequence of kept indices per layer (ascending or not)
    head_scales, neuron_scales : optional, one scale per kept unit, in the same order

    Returns
    -------
    The pruned copy; its config records each layer's widths (``obce_units``), and :func:`save`
    writes it so that :func:`load` rebuilds the same architecture.
    """
    from transformers.pytorch_utils import prune_linear_layer

    small = copy.deepcopy(model)
    layers = encoder_layers(small)
    d_h = head_dim(small)
    if len(keep_heads) != len(layers) or len(keep_neurons) != len(layers):
        raise ObceInputError(f"keep_heads/keep_neurons: expected one list per layer ({len(layers)})")
    full_heads, _ = layer_widths(small)
    for i, layer in enumerate(layers):
        heads = np.asarray(keep_heads[i], dtype=int)
        neurons = np.asarray(keep_neurons[i], dtype=int)
        if not len(heads) or not len(neurons):
            raise ObceInputError(f"layer {i}: keep at least one head and one neuron (kept {len(heads)} heads, "
                                 f"{len(neurons)} neurons)")
        if len(set(heads)) != len(heads) or heads.min() < 0 or heads.max() >= full_heads[i]:
            raise ObceInputError(f"layer {i}: head indices {heads.tolist()}: expected distinct values in 0..{full_heads[i] - 1}")
        with torch.no_grad():
            out = layer.attention.output.dense
            if head_scales is not None:
                for h, s in zip(heads, head_scales[i]):
                    out.weight[:, h * d_h:(h + 1) * d_h] *= float(s)
            w2 = layer.output.dense
            if neuron_scales is not None:
                w2.weight[:, neurons] *= torch.as_tensor(np.asarray(neuron_scales[i]), dtype=w2.weight.dtype)
        order = np.argsort(heads, kind="stable")
        rows = torch.as_tensor(np.concatenate([np.arange(h * d_h, (h + 1) * d_h) for h in heads[order]]))
        att = layer.attention.self
        for name in ("query", "key", "value"):
            setattr(att, name, prune_linear_layer(getattr(att, name), rows, dim=0))
        layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, rows, dim=1)
        att.num_attention_heads = len(heads)
        att.all_head_size = len(heads) * d_h
        index = torch.as_tensor(np.sort(neurons))
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, index, dim=0)
        layer.output.dense = prune_linear_layer(layer.output.dense, index, dim=1)
    heads_l, neurons_l = layer_widths(small)
    small.config.obce_units = {"heads": heads_l, "intermediate_sizes": neurons_l}
    return small


def save(model: nn.Module, path: str | os.PathLike, tokenizer=None) -> Path:
    """``save_pretrained`` plus :data:`UNITS_FILE` (each layer's heads and FFN width, the model class)."""
    path = Path(path)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    heads, neurons = layer_widths(model)
    (path / UNITS_FILE).write_text(json.dumps({"heads": heads, "intermediate_sizes": neurons,
                                               "model_class": type(model).__name__}) + "\n")
    return path


def load(path: str | os.PathLike) -> nn.Module:
    """Load a checkpoint written by :func:`save`: the architecture from its config, every layer resized
    to its recorded heads and FFN width, then the weights, which must fit exactly (eval mode)."""
    import transformers

    from .checkpoint import load_weights, read_meta

    path = Path(path)
    meta, config = read_meta(path, UNITS_FILE, "units.save")
    model = getattr(transformers, meta["model_class"])(config)
    layers = encoder_layers(model)
    if len(meta["heads"]) != len(layers):
        raise ObceInputError(f"{path / UNITS_FILE}: {len(meta['heads'])} layers for an architecture of {len(layers)}")
    d_h = head_dim(model)
    for layer, n_heads, width in zip(layers, meta["heads"], meta["intermediate_sizes"]):
        att, hidden = layer.attention.self, layer.attention.self.query.in_features
        for name in ("query", "key", "value"):
            setattr(att, name, nn.Linear(hidden, n_heads * d_h))
        att.num_attention_heads, att.all_head_size = n_heads, n_heads * d_h
        layer.attention.output.dense = nn.Linear(n_heads * d_h, hidden)
        layer.intermediate.dense = nn.Linear(hidden, width)
        layer.output.dense = nn.Linear(width, hidden)
    return load_weights(model, path)

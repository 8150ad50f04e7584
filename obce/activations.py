"""Collect the outputs of FFN intermediate neurons with forward hooks.

For a corpus of N texts and max_length L, the point cloud of neuron ``j`` of layer ``l`` is an
array of shape ``(N, D)``: one point per text. With ``representation="tokens"`` (the OBCE default)
the point is the neuron's output at token positions ``0..L-1``, positions past the text's real
length (padding) being 0; positions that are padding for every text of the corpus are not stored
(``D`` = the longest text's length, at most L), since they add nothing to any distance; ``"mean"`` averages over the real tokens (``D = 1``);
``"cls"`` takes position 0 (``D = 1``).

Memory bound: a layer's clouds take ``intermediate_size * N * D * 4`` bytes (float32), D <= L. Layers are
collected in groups whose clouds fit ``memory_budget`` bytes; each group costs one forward pass over
the corpus, stopped after the group's last layer. Nothing else is kept: the hooks write the padded,
masked activations straight into the preallocated output tensors.
"""
from __future__ import annotations

import logging

from typing import Iterator, Sequence

import torch
from torch import nn
from tqdm import tqdm

from ._transpose import masked_transpose_into
from .data import Text, validate_texts
from .errors import ObceInputError
from .models import intermediate_modules

logger = logging.getLogger(__name__)

REPRESENTATIONS = ("tokens", "mean", "cls")
DEFAULT_MEMORY_BUDGET = 4 * 2**30


def collect_ffn_activations(model: nn.Module, tokenizer, texts: Sequence[Text], *,
                            layers: Sequence[int] | None = None, max_length: int = 64,
                            representation: str = "tokens", batch_size: int = 32,
                            device: str | torch.device | None = None,
                            progress: bool = True) -> dict[int, torch.Tensor]:
    """Point clouds of the FFN neurons of the chosen layers, all in one forward pass.

    Parameters
    ----------
    model : BERT-family ``transformers`` model
    tokenizer : its tokenizer
    texts : sequence of str or (str, str)
        The corpus, at least 2 items.
    layers : sequence of int, optional
        Block indices (default: all).
    max_length : int
        L: texts are truncated to L tokens.
    representation : {"tokens", "mean", "cls"}
    batch_size : int
    device : optional
        Where to run the model (default: where it is). Outputs are stored on that device.

    Returns
    -------
    dict of int to Tensor of shape (n_neurons, n_texts, D)
        For ``"tokens"``, ``D`` = the longest tokenized text (at most ``max_length``; positions past
        it would be 0 for every text, so no distance depends on them); 1 otherwise. float32.
    """
    return dict(iter_ffn_activations(model, tokenizer, texts, layers=layers, max_length=max_length,
                                     representation=representation, batch_size=batch_size, device=device,
                                     memory_budget=None, progress=progress))


def iter_ffn_activations(model: nn.Module, tokenizer, texts: Sequence[Text], *,
                         layers: Sequence[int] | None = None, max_length: int = 64,
                         representation: str = "tokens", batch_size: int = 32,
                         device: str | torch.device | None = None,
                         memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
                         progress: bool = True) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(layer, clouds)`` layer by layer, holding at most ``memory_budget`` bytes of clouds.

    Same parameters and cloud shapes as :func:`collect_ffn_activations`. Layers are grouped so that
    each group's clouds fit the budget (at least one layer per group; ``None``: all in one group);
    one forward pass per group.
    """
    texts = validate_texts(texts)
    check_collection_params(max_length, representation, batch_size, model, tokenizer, texts)
    chosen = _check_layers(model, layers)
    # Coordinates past the longest text are 0 for every point: dropping them changes no distance.
    depth = int(token_lengths(tokenizer, texts, max_length).max()) if representation == "tokens" else 1
    n_neurons = intermediate_modules(model)[chosen[0]].dense.out_features
    per_layer = 4 * n_neurons * len(texts) * depth
    group = len(chosen) if memory_budget is None else max(1, int(memory_budget // per_layer))
    if group < len(chosen):
        logger.info("clouds take %.1f MiB per layer; collecting %d layer(s) per pass", per_layer / 2**20, group)
    for start in range(0, len(chosen), group):
        part = chosen[start:start + group]
        yield from _collect_group(model, tokenizer, texts, part, max_length, depth, representation,
                                  batch_size, device, progress)


def activation_bytes(n_neurons: int, n_texts: int, max_length: int, representation: str = "tokens") -> int:
    """Bytes of one layer's float32 point clouds."""
    return 4 * n_neurons * n_texts * (max_length if representation == "tokens" else 1)


def tokenize(tokenizer, texts: Sequence[Text], max_length: int, device=None) -> dict[str, torch.Tensor]:
    """Tokenize a batch of texts (or text pairs) padded to its longest item, truncated to ``max_length``."""
    enc = _encode(tokenizer, texts, max_length, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items()} if device is not None else dict(enc)


def _encode(tokenizer, texts: Sequence[Text], max_length: int, **kwargs):
    """Encode strings, or (first, second) pairs as the model sees them in fine-tuning."""
    if isinstance(texts[0], str):
        return tokenizer(list(texts), truncation=True, max_length=max_length, **kwargs)
    first, second = zip(*texts)
    return tokenizer(list(first), list(second), truncation="longest_first", max_length=max_length, **kwargs)


class _StopForward(Exception):
    """Raised by the hook of a group's last layer: later layers are not needed."""


def _collect_group(model, tokenizer, texts, layers, max_length, depth, representation, batch_size,
                   device, progress) -> Iterator[tuple[int, torch.Tensor]]:
    """One forward pass over the (validated) corpus filling clouds of shape (neurons, texts, depth)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    modules = intermediate_modules(model)
    n = len(texts)
    clouds = {l: torch.empty(modules[l].dense.out_features, n, depth, device=device) for l in layers}
    state: dict = {}

    def make_hook(layer: int, last: bool):
        def hook(_module, _inputs, output):
            b, t, f = output.shape
            # one reduction: a NaN or inf anywhere makes the sum non-finite (an overflowing sum of
            # finite values only sends it to the exact check below, which then passes)
            if not bool(torch.isfinite(output.sum())) and not bool(torch.isfinite(output).all()):
                neuron = int((~torch.isfinite(output)).reshape(-1, f).any(0).nonzero()[0, 0])
                raise ObceInputError(f"non-finite activation (NaN or inf) in layer {layer}, neuron {neuron}; "
                                     "check the model weights and inputs")
            i0, i1 = state["rows"]
            buf = clouds[layer]
            if representation == "tokens" and buf.device.type == "cpu" and output.dtype == torch.float32:
                masked_transpose_into(output.contiguous().numpy(), state["mask"].numpy(), buf.numpy(), i0)
            elif representation == "tokens":
                # one contiguous transpose to (F, B, T), padding zeroed in place, then a block copy
                staged = output.detach().float().reshape(b * t, f).t().contiguous().view(f, b, t)
                staged.mul_(state["mask"])
                buf[:, i0:i1, :t] = staged
                buf[:, i0:i1, t:] = 0
            elif representation == "mean":
                mask = state["mask"]
                buf[:, i0:i1, 0] = ((output.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).T
            else:
                buf[:, i0:i1, 0] = output[:, 0, :].float().T
            if last:
                raise _StopForward
        return hook

    handles = [modules[l].register_forward_hook(make_hook(l, l == layers[-1])) for l in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            starts = range(0, n, batch_size)
            desc = f"activations L{layers[0]}-{layers[-1]}"
            for i0 in tqdm(starts, desc=desc, disable=not progress, unit="batch"):
                batch = tokenize(tokenizer, texts[i0:i0 + batch_size], max_length, device)
                state["mask"] = batch["attention_mask"].float()
                state["rows"] = (i0, i0 + len(batch["input_ids"]))
                try:
                    model(**batch)
                except _StopForward:
                    pass
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for l in layers:
        yield l, clouds.pop(l)


def run_corpus(model: nn.Module, tokenizer, texts: Sequence[Text], hooks: Sequence[tuple[nn.Module, object]],
               max_length: int = 64, batch_size: int = 32, device: str | torch.device | None = None) -> int:
    """Run a (validated) corpus through ``model`` in eval and inference mode with forward hooks.

    ``hooks`` pairs modules with functions ``fn(module, inputs, output, mask)``, ``mask`` the batch's
    real-token mask of shape (batch, tokens), bool. Returns the number of real tokens.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    state: dict = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, fn=fn: fn(mod, inp, out, state["mask"]))
               for m, fn in hooks]
    was_training, count = model.training, 0
    model.eval()
    try:
        with torch.inference_mode():
            for i0 in range(0, len(texts), batch_size):
                batch = tokenize(tokenizer, texts[i0:i0 + batch_size], max_length, device)
                state["mask"] = batch["attention_mask"].bool()
                count += int(state["mask"].sum())
                model(**batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return count


def check_collection_params(max_length: int, representation: str, batch_size: int = 1, model=None,
                            tokenizer=None, texts: Sequence[Text] | None = None) -> None:
    """Raise ``ObceInputError`` for a bad max_length, representation or batch size; given the model,
    tokenizer and (validated) texts, also for a max_length above the model's positions or one that
    leaves no content token."""
    from .models import check_max_length

    if representation not in REPRESENTATIONS:
        raise ObceInputError(f"representation {representation!r}: expected one of {REPRESENTATIONS}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ObceInputError(f"max_length={max_length!r}: expected an integer >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ObceInputError(f"batch_size={batch_size!r}: expected an integer >= 1")
    if model is not None and getattr(model, "config", None) is not None:
        check_max_length(max_length, model.config, tokenizer, pair=bool(texts) and not isinstance(texts[0], str))


def _check_layers(model: nn.Module, layers: Sequence[int] | None) -> list[int]:
    n = len(intermediate_modules(model))
    if layers is None:
        return list(range(n))
    chosen = sorted({int(l) for l in layers})
    if not chosen or chosen[0] < 0 or chosen[-1] >= n:
        raise ObceInputError(f"layers={list(layers)!r}: expected indices in 0..{n - 1}")
    return chosen




def token_lengths(tokenizer, texts: Sequence[Text], max_length: int) -> torch.Tensor:
    """Number of real (non-padding) tokens of every text after truncation, shape (n_texts,)."""
    enc = _encode(tokenizer, validate_texts(texts), max_length)
    return torch.tensor([len(ids) for ids in enc["input_ids"]])

"""Kwon et al. (2022)'s retraining-free framework, driven by any score: a FLOPs-constrained search over
attention heads and FFN neurons together, mask rearrangement, and mask tuning.

* :func:`search` (Kwon's ``search_mac``): rank every head and every neuron of the model globally by
  its score; for each number of heads, fill the rest of the MACs budget with the best neurons; keep
  the split of largest total score. Layers end with different widths. obce keeps at least one head
  and one neuron per layer (the best of each), so that every layer remains and can be pruned
  physically (:func:`obce.units.prune_units`); a budget below that is refused.
* :func:`commensurate`: Fisher scores are estimates of the loss increase, so a head and a neuron
  compare directly. Other scores (r_f, a variance) are in units that differ between heads, neurons
  and layers; each layer's head (neuron) scores are divided by their mean and multiplied by the
  unit's MACs, so that the search weighs relative importance within a layer by cost.
* :func:`rearrange` (Kwon's ``greedy_rearrange``): within each layer, keep the number of units the
  search chose, but pick which by a greedy minimisation of ``|| sum_pruned g ||^2`` over the
  per-batch mask gradients ``g`` (the Fisher information's block of the pruned units). It reads
  gradients whatever score drove the search.
* :func:`tune_masks` (Kwon's ``rescale_mask``): layer after layer, on the pruned model's own inputs,
  one scale per kept head and neuron fitted by damped least squares (scipy's LSMR on the normal
  equations, damping 1, around scales of 1) so that each sub-layer's output before its LayerNorm,
  residual included, matches a teacher's; the last layer fits the [CLS] token only (the classifier
  reads nothing else); layer 0's attention is left as it is (its inputs are the teacher's). Safeguards:
  tuning stops (the layers tuned so far keep their scales) when the solver fails or a scale leaves
  [-10, 10]. The teacher is the search's mask at ``sqrt(flops_fraction)`` (the released code's
  choice), or the unpruned model.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Text, validate_texts
from .errors import ObceInputError
from .models import encoder_layers
from .units import head_dim, layer_widths, macs_fraction, unit_macs, unit_masks

logger = logging.getLogger(__name__)

#: Tuning stops when a scale leaves this interval (Kwon et al.'s safeguard).
SCALE_LIMIT = 10.0
#: The teachers mask tuning can fit to.
TEACHERS = ("sqrt", "unpruned")

__all__ = ["SCALE_LIMIT", "TEACHERS", "average_length", "check_flops", "commensurate", "end_to_end_error",
           "rearrange", "search", "tune_masks", "uniform_ffn"]


def average_length(token_ids: Sequence[Sequence[int]]) -> float:
    """The mean number of tokens of encoded texts (Kwon's ``seq_len``: the dev set's, special tokens
    included), which sets the MACs of a head and a neuron (:func:`obce.units.unit_macs`)."""
    if not len(token_ids):
        raise ObceInputError("average_length: no texts")
    return float(np.mean([len(t) for t in token_ids]))


def check_flops(flops_fraction: float, n_layers: int, n_heads: int, n_neurons: int, head_macs: float,
                neuron_macs: float, what: str = "flops") -> float:
    """The MACs budget of ``flops_fraction`` of the unpruned model, or ``ObceInputError`` when it is not a
    number in (0, 1], or is below what one head and one neuron per layer cost."""
    if isinstance(flops_fraction, bool) or not isinstance(flops_fraction, (int, float)) \
            or not math.isfinite(flops_fraction) or not 0 < flops_fraction <= 1:
        raise ObceInputError(f"{what} {flops_fraction!r}: expected a fraction of the unpruned model's FLOPs in (0, 1]")
    full = n_layers * (n_heads * head_macs + n_neurons * neuron_macs)
    floor = n_layers * (head_macs + neuron_macs) / full
    if flops_fraction < floor:
        raise ObceInputError(f"{what} {flops_fraction}: below {floor:.4f}, the share of one head and one neuron per "
                             f"layer (every layer keeps at least one of each)")
    return flops_fraction * full


def commensurate(head_scores: np.ndarray, neuron_scores: np.ndarray, head_macs: float,
                 neuron_macs: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores of other units than Fisher's made comparable across heads, neurons and layers: each layer's
    scores of a kind divided by their mean, times the unit's MACs (a layer whose scores are all 0
    scores 0).

    Parameters
    ----------
    head_scores : ndarray of shape (n_layers, n_heads)
    neuron_scores : ndarray of shape (n_layers, n_neurons)

    Returns
    -------
    (head_scores, neuron_scores) of the same shapes
    """
    def scaled(s, macs):
        s = np.asarray(s, dtype=np.float64)
        mean = s.mean(axis=1, keepdims=True)
        return np.divide(s, mean, out=np.zeros_like(s), where=mean > 0) * macs

    return scaled(head_scores, head_macs), scaled(neuron_scores, neuron_macs)


def search(head_scores: np.ndarray, neuron_scores: np.ndarray, flops_fraction: float, head_macs: float,
           neuron_macs: float) -> tuple[np.ndarray, np.ndarray]:
    """Kwon's FLOPs-constrained global search over heads and neurons (see the module's docstring).

    Parameters
    ----------
    head_scores : ndarray of shape (n_layers, n_heads), higher is more important
    neuron_scores : ndarray of shape (n_layers, n_neurons)
    flops_fraction : the share of the unpruned model's head and neuron MACs to keep, in (0, 1]
    head_macs, neuron_macs : the MACs of one head and of one neuron (:func:`obce.units.unit_macs`)

    Returns
    -------
    head_mask : bool ndarray of shape (n_layers, n_heads), True where kept
    neuron_mask : bool ndarray of shape (n_layers, n_neurons)
        Their MACs are at most the budget, and within one unit of it unless every unit is kept.
    """
    hs, ns = np.asarray(head_scores, dtype=np.float64), np.asarray(neuron_scores, dtype=np.float64)
    n_layers, n_heads = hs.shape
    n_neurons = ns.shape[1]
    budget = check_flops(flops_fraction, n_layers, n_heads, n_neurons, head_macs, neuron_macs)
    head_mask = np.zeros(hs.shape, dtype=bool)
    neuron_mask = np.zeros(ns.shape, dtype=bool)
    head_mask[np.arange(n_layers), hs.argmax(1)] = True  # every layer keeps its best head and neuron
    neuron_mask[np.arange(n_layers), ns.argmax(1)] = True
    left = budget - n_layers * (head_macs + neuron_macs)
    h_order = np.flatnonzero(~head_mask.ravel())[np.argsort(-hs.ravel()[~head_mask.ravel()], kind="stable")]
    n_order = np.flatnonzero(~neuron_mask.ravel())[np.argsort(-ns.ravel()[~neuron_mask.ravel()], kind="stable")]
    h_cum = np.concatenate([[0.0], np.cumsum(hs.ravel()[h_order])])
    n_cum = np.concatenate([[0.0], np.cumsum(ns.ravel()[n_order])])
    extra_heads = np.arange(0, min(len(h_order), int(left // head_macs)) + 1)
    extra_neurons = np.minimum(((left - extra_heads * head_macs) // neuron_macs).astype(int), len(n_order))
    total = h_cum[extra_heads] + n_cum[extra_neurons]
    best = int(np.argmax(total))  # the first of equal totals: the fewest heads
    head_mask.ravel()[h_order[:extra_heads[best]]] = True
    neuron_mask.ravel()[n_order[:extra_neurons[best]]] = True
    return head_mask, neuron_mask


def uniform_ffn(neuron_scores: np.ndarray, n_heads: int, flops_fraction: float, head_macs: float,
                neuron_macs: float) -> tuple[np.ndarray, np.ndarray]:
    """The protocol obce had before the search: every head kept, the same number of FFN neurons kept in
    every layer (each layer's best by score), as many as the budget allows.

    Returns
    -------
    (head_mask, neuron_mask) as :func:`search`'s
    """
    ns = np.asarray(neuron_scores, dtype=np.float64)
    n_layers, n_neurons = ns.shape
    budget = check_flops(flops_fraction, n_layers, n_heads, n_neurons, head_macs, neuron_macs)
    per_layer = int((budget / n_layers - n_heads * head_macs) // neuron_macs)
    if per_layer < 1:
        raise ObceInputError(f"flops {flops_fraction}: with every head kept, no FFN neuron fits the budget")
    per_layer = min(per_layer, n_neurons)
    neuron_mask = np.zeros(ns.shape, dtype=bool)
    top = np.argsort(-ns, axis=1, kind="stable")[:, :per_layer]
    np.put_along_axis(neuron_mask, top, True, axis=1)
    return np.ones((n_layers, n_heads), dtype=bool), neuron_mask


def _greedy_layer(mask: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """One layer's rearranged mask: as many units pruned as ``mask`` prunes, chosen greedily to minimise
    ``|| sum_pruned grads ||^2`` (``grads``: (n_batches, n_units)), starting from the unit of least
    squared gradient (Kwon's ``greedy_rearrange``, vectorised over the candidates)."""
    n_pruned = int((~mask).sum())
    if n_pruned == 0 or n_pruned == mask.size:
        return mask.copy()
    g = np.asarray(grads, dtype=np.float64).T  # (n_units, n_batches)
    sq = (g ** 2).sum(1)
    first = int(np.argsort(sq, kind="stable")[0])
    pruned = np.zeros(mask.size, dtype=bool)
    pruned[first] = True
    total = g[first].copy()
    for _ in range(1, n_pruned):
        error = sq + 2 * g @ total  # || total + g_j ||^2 - || total ||^2
        error[pruned] = np.inf
        j = int(np.argmin(error))
        pruned[j] = True
        total += g[j]
    return ~pruned


def rearrange(head_mask: np.ndarray, neuron_mask: np.ndarray, head_grads, neuron_grads) -> tuple[np.ndarray, np.ndarray]:
    """Kwon's mask rearrangement, layer by layer (see the module's docstring).

    Parameters
    ----------
    head_mask, neuron_mask : bool ndarrays of shapes (n_layers, n_heads) and (n_layers, n_neurons)
    head_grads, neuron_grads : per-batch mask gradients of shapes (n_batches, n_layers, n_heads) and
        (n_batches, n_layers, n_neurons) (:func:`obce.unit_scores.mask_gradients`)

    Returns
    -------
    (head_mask, neuron_mask) with each layer's counts unchanged
    """
    hg, ng = np.asarray(head_grads), np.asarray(neuron_grads)
    heads = np.stack([_greedy_layer(head_mask[i], hg[:, i]) for i in range(head_mask.shape[0])])
    neurons = np.stack([_greedy_layer(neuron_mask[i], ng[:, i]) for i in range(neuron_mask.shape[0])])
    return heads, neurons


class _Stop(Exception):
    pass


def _layer_inputs(model: nn.Module, tokenizer, texts: Sequence[Text], max_length: int, batch_size: int):
    """Per batch: the first encoder layer's input (the embeddings' output), the positional and keyword
    arguments the encoder passes to every layer, and the batch's attention mask."""
    from .activations import tokenize

    layer0 = encoder_layers(model)[0]
    device = next(model.parameters()).device
    out = []
    seen: dict[str, Any] = {}

    def grab(_module, args, kwargs):
        seen.update(hidden=args[0].detach(), args=args[1:], kwargs=kwargs)
        raise _Stop

    # batches of similar lengths (the fits sum over real tokens, so the order does not matter; padding
    # is compute spent on nothing)
    lengths = [len(ids) for ids in (tokenize(tokenizer, [t], max_length)["input_ids"][0] for t in texts)]
    texts = [texts[j] for j in np.argsort(lengths, kind="stable")]
    hook = layer0.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = tokenize(tokenizer, texts[i:i + batch_size], max_length, device)
                try:
                    model(**enc)
                except _Stop:
                    pass
                out.append((seen["hidden"], seen["args"], seen["kwargs"], enc["attention_mask"].bool()))
    finally:
        hook.remove()
    return out


def _capture(module: nn.Module, stop: bool = True):
    """A pre-hook on a ``BertSelfOutput``/``BertOutput`` that records its (hidden_states, input_tensor),
    as the masks left them, and (with ``stop``) ends the forward pass there."""
    seen: dict[str, torch.Tensor] = {}

    def hook(_module, args):
        seen["x"], seen["residual"] = args[0], args[1]
        if stop:
            raise _Stop

    return seen, module.register_forward_pre_hook(hook)


def _run_layer(layer, batch, head, neuron):
    hidden, args, kwargs, _ = batch
    try:
        with torch.inference_mode(), _layer_masks(layer, head, neuron):
            return layer(hidden, *args, **kwargs)
    except _Stop:
        return None


class _layer_masks:
    """``unit_masks`` for one layer (a context manager)."""

    def __init__(self, layer, head, neuron):
        self.layer, self.head, self.neuron, self.hooks = layer, head, neuron, []

    def __enter__(self):
        d_h = self.layer.attention.self.attention_head_size
        head, neuron = self.head, self.neuron

        def scale_heads(_m, args):
            ctx = args[0]
            return (((ctx.view(*ctx.shape[:-1], -1, d_h)) * head.to(ctx).view(-1, 1)).reshape(ctx.shape), *args[1:])

        def scale_neurons(_m, args):
            return (args[0] * neuron.to(args[0]), *args[1:])

        # prepended: the masks apply before any capture hook reads the inputs
        self.hooks = [self.layer.attention.output.register_forward_pre_hook(scale_heads, prepend=True),
                      self.layer.output.register_forward_pre_hook(scale_neurons, prepend=True)]
        return self

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()
        return False


def _solve(ata: np.ndarray, atb: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Kwon's damped least squares around scales of 1: ``lsmr(ATA, ATB - ATA 1, damp=1) + 1`` (one unit:
    ``(ATB - ATA 1) / ATA + 1``); ``None`` and the reason when the solver fails (istop >= 3) or a scale
    leaves [-SCALE_LIMIT, SCALE_LIMIT]. scipy's default iteration limit (the system's size) is raised, as
    the CPU ports of the released code do, so that a limit reached is a failure of the problem."""
    from scipy.sparse.linalg import lsmr

    rhs = atb - ata.sum(axis=1)
    if len(rhs) == 1:
        x, istop = rhs / ata[0, 0] if ata[0, 0] > 0 else np.full(1, np.nan), 1
    else:
        x, istop = lsmr(ata, rhs, damp=1, maxiter=100_000)[:2]
    if istop >= 3 or not np.isfinite(x).all():
        return None, f"the solver failed (LSMR istop {istop})"
    scales = x + 1
    if np.abs(scales).max() > SCALE_LIMIT:
        return None, f"a scale of {scales[np.abs(scales).argmax()]:.3g} left [-{SCALE_LIMIT:g}, {SCALE_LIMIT:g}]"
    return scales, ""


def tune_masks(model: nn.Module, tokenizer, texts: Sequence[Text], head_mask: np.ndarray, neuron_mask: np.ndarray,
               teacher_head_mask: np.ndarray | None = None, teacher_neuron_mask: np.ndarray | None = None,
               max_length: int = 64, batch_size: int = 32, cls_only_last: bool = True,
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Kwon's mask tuning (see the module's docstring): one scale per kept head and neuron.

    Parameters
    ----------
    model : the unpruned model (with its task head or not; only the encoder runs)
    texts : the texts the scales are fitted on (a sample of the task's training set)
    head_mask, neuron_mask : bool ndarrays of shapes (n_layers, n_heads), (n_layers, n_neurons): the
        student's kept units
    teacher_head_mask, teacher_neuron_mask : the teacher's kept units (default: every unit)
    cls_only_last : fit the last layer's FFN on the [CLS] token only (a sequence classifier)

    Returns
    -------
    head_scales : ndarray of shape (n_layers, n_heads), 0 where pruned
    neuron_scales : ndarray of shape (n_layers, n_neurons), 0 where pruned
    info : ``sublayers_tuned`` (of ``2 n_layers - 1``), ``stopped`` (the safeguard's reason, or None)
    """
    texts = validate_texts(texts)
    layers = encoder_layers(model)
    d_h = head_dim(model)
    heads_full, neurons_full = layer_widths(model)
    hm, nm = np.asarray(head_mask, dtype=bool), np.asarray(neuron_mask, dtype=bool)
    if hm.shape != (len(layers), heads_full[0]) or nm.shape != (len(layers), neurons_full[0]):
        raise ObceInputError(f"masks of shapes {hm.shape}, {nm.shape} for a model of {len(layers)} layers x "
                             f"{heads_full[0]} heads, {neurons_full[0]} neurons")
    thm = np.ones_like(hm) if teacher_head_mask is None else np.asarray(teacher_head_mask, dtype=bool)
    tnm = np.ones_like(nm) if teacher_neuron_mask is None else np.asarray(teacher_neuron_mask, dtype=bool)
    head_scales, neuron_scales = hm.astype(np.float64), nm.astype(np.float64)
    was_training = model.training
    model.eval()
    student = _layer_inputs(model, tokenizer, texts, max_length, batch_size)
    teacher = [(b[0].clone(), *b[1:]) for b in student]
    info: dict[str, Any] = {"sublayers_tuned": 0, "stopped": None}
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    grad = torch.inference_mode()
    grad.__enter__()
    try:
        for i, layer in enumerate(layers):
            last = cls_only_last and i == len(layers) - 1
            att_out, ffn_out = layer.attention.output.dense, layer.output.dense
            # the teacher's sub-layer outputs before their LayerNorms, and its next inputs
            t_att, t_ffn, t_next = [], [], []
            for batch in teacher:
                s_att, h1 = _capture(layer.attention.output, stop=False)
                s_ffn, h2 = _capture(layer.output, stop=False)
                try:
                    out = _run_layer(layer, batch, as_t(thm[i]), as_t(tnm[i]))
                finally:
                    h1.remove()
                    h2.remove()
                with torch.inference_mode():
                    t_att.append(att_out(s_att["x"]) + s_att["residual"])
                    t_ffn.append(ffn_out(s_ffn["x"]) + s_ffn["residual"])
                t_next.append((out, *batch[1:]))
            teacher = t_next
            # the student's attention, once: each head's context vectors (the binary mask applied) and the
            # residual; the rest of the layer follows from them without another pass
            contexts = []
            for batch in student:
                seen, hook = _capture(layer.attention.output)
                try:
                    _run_layer(layer, batch, as_t(hm[i]), as_t(nm[i]))
                finally:
                    hook.remove()
                contexts.append((seen["x"], seen["residual"]))
            # attention heads (not layer 0's: its inputs are the teacher's)
            kept = np.flatnonzero(hm[i])
            if i > 0 and len(kept):
                # one column per kept head and one of ones (a free offset, fitted and then dropped, as
                # the released code does)
                ata, atb = np.zeros((len(kept) + 1, len(kept) + 1)), np.zeros(len(kept) + 1)
                w = att_out.weight.detach().view(att_out.out_features, -1, d_h)[:, kept]  # (d, k, d_h)
                for batch, target, (x, residual) in zip(student, t_att, contexts):
                    real = batch[3]
                    ctx = x[real].view(-1, heads_full[i], d_h)[:, kept]  # (tokens, k, d_h)
                    # float32 products (BLAS), accumulated in float64
                    parts = torch.einsum("tkc,dkc->ktd", ctx, w).reshape(len(kept), -1)  # (k, tokens * d)
                    goal = (target[real] - att_out.bias - residual[real]).reshape(-1)  # (tokens * d,)
                    ata[:-1, :-1] += (parts @ parts.T).double().numpy()
                    ata[:-1, -1] += parts.sum(1, dtype=torch.float64).numpy()
                    ata[-1, -1] += parts.shape[1]
                    atb[:-1] += (parts @ goal).double().numpy()
                    atb[-1] += float(goal.sum(dtype=torch.float64))
                ata[-1, :-1] = ata[:-1, -1]
                scales, why = _solve(ata, atb)
                scales = None if scales is None else scales[:-1]
                if scales is None:
                    info["stopped"] = f"layer {i} attention: {why}"
                    break
                head_scales[i, kept] = scales
                info["sublayers_tuned"] += 1
            # FFN neurons: the inputs with the tuned heads (BertSelfOutput and BertIntermediate in eval mode)
            head_scale = as_t(head_scales[i]).repeat_interleave(d_h)
            neuron_binary = as_t(nm[i])
            kept = np.flatnonzero(nm[i])
            w = ffn_out.weight.detach()[:, kept]  # (d, k)
            ata, atb = np.zeros((len(kept), len(kept))), np.zeros(len(kept))
            captured = []  # each batch's FFN input and residual: the layer's output follows without a pass
            for batch, target, (x, residual) in zip(student, t_ffn, contexts):
                attended = layer.attention.output.LayerNorm(att_out(x * head_scale) + residual)
                acts = layer.intermediate(attended) * neuron_binary
                captured.append((acts, attended))
                rows = batch[3].clone()
                if last:
                    rows[:, 1:] = False
                a = acts[rows][:, kept]  # (tokens, k), float32 products accumulated in float64
                goal = target[rows] - ffn_out.bias - attended[rows]
                ata += (a.T @ a).double().numpy()
                atb += (a * (goal @ w)).sum(0, dtype=torch.float64).numpy()
            ata *= (w.T @ w).double().numpy()
            scales, why = _solve(ata, atb)
            if scales is None:
                info["stopped"] = f"layer {i} FFN: {why}"
                break
            neuron_scales[i, kept] = scales
            info["sublayers_tuned"] += 1
            scale = as_t(neuron_scales[i])
            # BertOutput in eval mode: LayerNorm(dense(a) + residual), a scaled (dropout is the identity)
            student = [(layer.output.LayerNorm(ffn_out(x * scale) + residual), *b[1:])
                       for b, (x, residual) in zip(student, captured)]
    finally:
        grad.__exit__(None, None, None)
        model.train(was_training)
    if info["stopped"]:
        logger.info("mask tuning stopped at %s; the layers before keep their scales", info["stopped"])
    return head_scales, neuron_scales, info


def end_to_end_error(model: nn.Module, tokenizer, texts: Sequence[Text], head_scales: np.ndarray,
                     neuron_scales: np.ndarray, max_length: int = 64, batch_size: int = 32,
                     cls_only: bool = False) -> float:
    """The relative squared error of the masked model's last hidden states against the unpruned model's,
    over the real tokens of ``texts`` (only [CLS] with ``cls_only``): ``sum ||y - y_0||^2 / sum ||y_0||^2``."""
    from .activations import tokenize

    encoder = getattr(model, "base_model", model)
    device = next(model.parameters()).device
    err = ref = 0.0
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenize(tokenizer, texts[i:i + batch_size], max_length, device)
            y0 = encoder(**enc).last_hidden_state
            with unit_masks(encoder, torch.as_tensor(head_scales, dtype=torch.float32),
                            torch.as_tensor(neuron_scales, dtype=torch.float32)):
                y = encoder(**enc).last_hidden_state
            rows = enc["attention_mask"].bool()
            if cls_only:
                rows[:, 1:] = False
            err += float(((y - y0)[rows] ** 2).sum())
            ref += float((y0[rows] ** 2).sum())
    return err / ref


def flops_of(head_mask: np.ndarray, neuron_mask: np.ndarray, seq_len: float, hidden: int, d_h: int) -> float:
    """The share of the unpruned model's head and neuron MACs that masks keep."""
    return macs_fraction(np.asarray(head_mask).sum(1), np.asarray(neuron_mask).sum(1), head_mask.shape[1],
                         neuron_mask.shape[1], seq_len, hidden, d_h)


__all__ += ["flops_of", "unit_macs"]

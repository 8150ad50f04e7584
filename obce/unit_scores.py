"""Scores of attention heads and FFN neurons together, for the retraining-free search
(:mod:`obce.search`): every score obce has for neurons, and the same for heads.

* ``fisher`` (Kwon et al. 2022): the gradient of each mini-batch's mean task loss with respect to
  masks of ones over heads and neurons, squared and summed over the mini-batches
  (:func:`mask_gradients` keeps the per-batch gradients, which mask rearrangement reads);
  ``fisher_text``: the same with one text per batch (obce's per-text form).
* ``merge_radius``: OBCE's r_f. A neuron's cloud is its activations (one point per text, a vector
  over the token positions, padding at 0); a head's cloud is its context vectors (one point per
  text: the ``max_length x d_h`` context vectors of its tokens, padding at 0). The merge radius of the
  cloud's 0-dimensional persistence, exact (:mod:`obce.persistence`).
* ``activation_variance``: a neuron's variance over real tokens; a head's, averaged over its d_h
  coordinates. ``random``: seeded uniform scores.

Every function returns ``(head_scores, neuron_scores)`` of shapes (n_layers, n_heads) and
(n_layers, n_neurons), finite (:func:`obce.scoring.check_finite_scores`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .data import Text, validate_texts
from .errors import ObceInputError
from .models import encoder_layers
from .units import head_dim, layer_widths, unit_masks

#: The unit scores, and whether each reads the task's labels (a model with its head).
UNIT_SCORES = {"fisher": True, "fisher_text": True, "merge_radius": False, "activation_variance": False,
               "random": False}

__all__ = ["UNIT_SCORES", "head_clouds", "mask_gradients", "unit_scores"]


def _batches(tokenizer, texts: Sequence[Text], labels, max_length: int, batch_size: int, device):
    from .activations import tokenize

    for i in range(0, len(texts), batch_size):
        enc = tokenize(tokenizer, texts[i:i + batch_size], max_length, device)
        if labels is not None:
            enc["labels"] = torch.as_tensor(labels[i:i + batch_size], device=device)
        yield enc


def mask_gradients(model: nn.Module, tokenizer, texts: Sequence[Text], labels: Sequence, max_length: int = 128,
                   batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-batch gradients of the mean task loss with respect to masks of ones over every head and
    neuron (Kwon et al.'s ``collect_mask_grads``), the model in eval mode and its weights untouched.

    Parameters
    ----------
    model : a BERT-family model with its task head (e.g. fine-tuned on the task)
    labels : the texts' labels (class ids, or scores for STS-B)

    Returns
    -------
    head_grads : Tensor of shape (n_batches, n_layers, n_heads)
    neuron_grads : Tensor of shape (n_batches, n_layers, n_neurons)
    """
    texts = validate_texts(texts)
    if len(labels) != len(texts):
        raise ObceInputError(f"{len(labels)} labels for {len(texts)} texts")
    heads, neurons = layer_widths(model)
    if len(set(heads)) != 1 or len(set(neurons)) != 1:
        raise ObceInputError("mask gradients need the unpruned layers (every layer of the same widths)")
    device = next(model.parameters()).device
    hm = torch.ones(len(heads), heads[0], device=device, requires_grad=True)
    nm = torch.ones(len(neurons), neurons[0], device=device, requires_grad=True)
    was_training = model.training
    model.eval()
    wanted = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    if getattr(model.config, "problem_type", None) is None:
        model.config.problem_type = "regression" if model.config.num_labels == 1 else "single_label_classification"
    head_grads, neuron_grads = [], []
    try:
        with unit_masks(model, hm, nm):
            for batch in _batches(tokenizer, texts, np.asarray(labels), max_length, batch_size, device):
                if model.config.num_labels == 1:
                    batch["labels"] = batch["labels"].float()
                loss = model(**batch).loss
                gh, gn = torch.autograd.grad(loss, [hm, nm])
                head_grads.append(gh.detach().cpu())
                neuron_grads.append(gn.detach().cpu())
    finally:
        for p, w in zip(model.parameters(), wanted):
            p.requires_grad_(w)
        model.train(was_training)
    return torch.stack(head_grads), torch.stack(neuron_grads)


def head_clouds(model: nn.Module, tokenizer, texts: Sequence[Text], max_length: int = 64,
                batch_size: int = 32) -> torch.Tensor:
    """Every head's point cloud: one point per text, the head's context vectors over the token
    positions (``max_length x d_h`` coordinates), padding and positions past the text at 0.

    Returns
    -------
    Tensor of shape (n_layers * n_heads, n_texts, max_length * d_h), layer-major
    """
    texts = validate_texts(texts)
    layers = encoder_layers(model)
    d_h = head_dim(model)
    heads = layer_widths(model)[0]
    device = next(model.parameters()).device
    out = torch.zeros(sum(heads), len(texts), max_length, d_h)
    offsets = np.concatenate([[0], np.cumsum(heads)])
    state = {}

    def capture(i):
        def hook(_module, args):
            ctx = args[0] * state["mask"][..., None]  # padding at 0
            b, s = ctx.shape[:2]
            per_head = ctx.view(b, s, heads[i], d_h).permute(2, 0, 1, 3).float().cpu()  # (H, b, s, d_h)
            out[offsets[i]:offsets[i + 1], state["start"]:state["start"] + b, :s] = per_head
        return hook

    hooks = [layer.attention.output.register_forward_pre_hook(capture(i)) for i, layer in enumerate(layers)]
    try:
        with torch.inference_mode():
            start = 0
            for batch in _batches(tokenizer, texts, None, max_length, batch_size, device):
                state.update(mask=batch["attention_mask"], start=start)
                model(**{k: v for k, v in batch.items() if k != "labels"})
                start += batch["input_ids"].shape[0]
    finally:
        for h in hooks:
            h.remove()
    return out.reshape(sum(heads), len(texts), max_length * d_h)


def unit_scores(score: str, model: nn.Module, tokenizer, texts: Sequence[Text], labels: Sequence | None = None,
                max_length: int = 64, batch_size: int = 32, seed: int = 0, grads=None) -> tuple[np.ndarray, np.ndarray]:
    """One score of every head and every neuron (see the module's docstring).

    Parameters
    ----------
    score : one of :data:`UNIT_SCORES`
    model : the model with its task head (the scores that read labels need it)
    labels : the texts' labels, for ``fisher`` and ``fisher_text``
    grads : ``fisher``'s :func:`mask_gradients`, if already computed on these texts

    Returns
    -------
    head_scores : ndarray of shape (n_layers, n_heads)
    neuron_scores : ndarray of shape (n_layers, n_neurons)
    """
    from .persistence import h0_deaths, summarize
    from .scoring import check_finite_scores, score_neurons

    if score not in UNIT_SCORES:
        raise ObceInputError(f"unit score {score!r}: expected one of {sorted(UNIT_SCORES)}")
    heads, neurons = layer_widths(model)
    if score == "random":
        rng = np.random.default_rng(seed)
        return rng.random((len(heads), heads[0])), rng.random((len(neurons), neurons[0]))
    if UNIT_SCORES[score] and labels is None:
        raise ObceInputError(f"unit score {score!r} reads the task's loss: give the texts' labels")
    if score in ("fisher", "fisher_text"):
        if score == "fisher_text" or grads is None:
            grads = mask_gradients(model, tokenizer, texts, labels, max_length,
                                   batch_size=1 if score == "fisher_text" else batch_size)
        hs, ns = (g.pow(2).sum(0).double().numpy() for g in grads)
    elif score == "merge_radius":
        clouds = head_clouds(model, tokenizer, texts, max_length, batch_size)
        hs = summarize(h0_deaths(clouds), "merge_radius").reshape(len(heads), heads[0])
        ns = score_neurons(model.base_model, tokenizer, texts, importance="merge_radius", max_length=max_length,
                           batch_size=batch_size, progress=False)
    else:  # activation_variance
        clouds = head_clouds(model, tokenizer, texts, max_length, batch_size)  # (units, texts, L * d_h)
        d_h = head_dim(model)
        x = clouds.view(clouds.shape[0], -1, d_h)  # every token position of every text
        real = x.abs().sum(-1) > 0
        var = torch.stack([x[u][real[u]].double().var(0, unbiased=False).mean() if real[u].sum() > 1
                           else torch.zeros((), dtype=torch.float64) for u in range(x.shape[0])])
        hs = var.numpy().reshape(len(heads), heads[0])
        ns = score_neurons(model.base_model, tokenizer, texts, importance="activation_variance",
                           max_length=max_length, batch_size=batch_size, progress=False)
    return check_finite_scores(np.asarray(hs), f"{score} (heads)"), check_finite_scores(np.asarray(ns), f"{score} (neurons)")

"""After pruning without retraining: make the pruned FFN reproduce the unpruned one on a corpus.

A block's FFN maps its input to ``y = W a + b`` with ``a`` the intermediate activations (after the
activation function), ``W`` = ``output.dense.weight`` of shape (hidden, n_neurons) and ``b`` its bias.
Pruning keeps the neurons ``K`` and drops ``R``, so ``y`` loses ``W[:, R] a_R``. Two repairs, both
computed from activation statistics of the *unpruned* model over the corpus (the pruned model stays a
plain checkpoint: only ``output.dense`` changes):

* ``bias`` (as FLAP): add the mean output of the removed neurons, ``W[:, R] mean(a_R)``, to ``b``. The
  layer's mean output over the corpus is then unchanged.
* ``ls``: the token-pooled refit. A least-squares refit of the kept neurons' output weights and
  bias, so that ``W' a_K + b'`` is the best affine reconstruction of ``W a + b`` over all the
  corpus's tokens pooled (a small ridge term keeps it stable). When the removed neurons are linear
  combinations of kept ones it is exact. It serves the tokens that carry most of the FFN's output
  energy and can raise the model's end-to-end error while lowering each layer's: it is not Kwon et
  al.'s mask tuning (:mod:`obce.search`), and it is kept under its records' name ``ls``.
* ``refit``: the token-pooled refit, checked: the end-to-end error of the refitted model on held-out
  texts (:func:`end_to_end_error`) is compared with the pruned model's without compensation, and the
  refit is kept only when it lowers it (:func:`checked_refit`).

Later layers see the pruned model's own inputs; the statistics are those of the unpruned model on the
same corpus (the usual approximation of retraining-free pruning).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .activations import run_corpus
from .data import Text, validate_texts
from .errors import ObceInputError
from .models import ffn_layers, intermediate_modules

COMPENSATIONS = ("none", "bias", "ls", "refit")
#: How the book names the compensations.
COMPENSATION_NAMES = {"none": "none", "bias": "bias (mean of the removed outputs)",
                      "ls": "token-pooled refit, unchecked", "refit": "token-pooled refit, checked on held-out texts"}


@dataclass
class LayerStatistics:
    """First and second moments of one layer's FFN activations over the real tokens of a corpus.

    ``mean`` has shape (n_neurons,); ``second`` is E[a a^T], shape (n_neurons, n_neurons); ``count``
    the number of tokens.
    """

    mean: np.ndarray
    second: np.ndarray
    count: int

    @property
    def covariance(self) -> np.ndarray:
        return self.second - np.outer(self.mean, self.mean)


def ffn_statistics(model: nn.Module, tokenizer, texts: Sequence[Text], max_length: int = 128,
                   batch_size: int = 32, device: str | torch.device | None = None) -> list[LayerStatistics]:
    """Activation moments of every FFN layer over the real (non-padding) tokens of ``texts``.

    Returns
    -------
    list of :class:`LayerStatistics`, one per layer
    """
    texts = validate_texts(texts)
    modules = intermediate_modules(model)
    n = modules[0].dense.out_features
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    sums = [torch.zeros(n, dtype=torch.float64, device=dev) for _ in modules]
    seconds = [torch.zeros(n, n, dtype=torch.float64, device=dev) for _ in modules]

    def accumulate(i: int):
        def hook(_m, _inp, out, mask):
            a = out[mask].float()  # (tokens, n)
            sums[i] += a.sum(0).double()
            seconds[i] += (a.T @ a).double()
        return hook

    count = run_corpus(model, tokenizer, texts, [(m, accumulate(i)) for i, m in enumerate(modules)],
                       max_length, batch_size, dev)
    return [LayerStatistics(mean=(s / count).cpu().numpy(), second=(q / count).cpu().numpy(), count=count)
            for s, q in zip(sums, seconds)]


def compensate(pruned: nn.Module, original: nn.Module, keep: np.ndarray, stats: Sequence[LayerStatistics],
               method: str = "bias", ridge: float = 1e-6) -> nn.Module:
    """Repair the pruned model's ``output.dense`` of every layer in place; return it.

    Parameters
    ----------
    pruned : the model after :func:`obce.prune_ffn_neurons` with ``keep``
    original : the unpruned model (its ``output.dense`` weights)
    keep : ndarray of shape (n_layers, k)
        The kept neuron indices of every layer, ascending (as :func:`obce.select_neurons` gives).
    stats : the unpruned model's :func:`ffn_statistics` over the corpus
    method : {"none", "bias", "ls"} (``refit`` is :func:`checked_refit`, which needs held-out texts)
    ridge : float
        For ``ls``: added to the kept covariance's diagonal, relative to its mean diagonal.
    """
    if method not in COMPENSATIONS:
        raise ObceInputError(f"compensation {method!r}: expected one of {COMPENSATIONS}")
    keep = np.asarray(keep)
    if method == "refit":
        raise ObceInputError("compensation 'refit' is checked on held-out texts: call checked_refit")
    if method == "none":
        return pruned
    for (_, out_new), (_, out_old), idx, st in zip(ffn_layers(pruned), ffn_layers(original), keep, stats):
        w = out_old.weight.detach().double().cpu().numpy()  # (hidden, n)
        b = out_old.bias.detach().double().cpu().numpy() if out_old.bias is not None else np.zeros(w.shape[0])
        if method == "bias":
            removed = np.setdiff1d(np.arange(w.shape[1]), idx)
            new_w, new_b = w[:, idx], b + w[:, removed] @ st.mean[removed]
        else:
            new_w, new_b = least_squares_refit(w, b, idx, st.mean, st.covariance, ridge)
        with torch.no_grad():
            out_new.weight.copy_(torch.from_numpy(new_w).to(out_new.weight))
            if out_new.bias is None:
                raise ObceInputError("compensation needs output.dense to have a bias")
            out_new.bias.copy_(torch.from_numpy(new_b).to(out_new.bias))
    return pruned


def least_squares_refit(weight: np.ndarray, bias: np.ndarray, keep: np.ndarray, mean: np.ndarray,
                        covariance: np.ndarray, ridge: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The affine map of the kept activations closest, in mean squared error over the corpus, to the
    full layer's output.

    Parameters
    ----------
    weight : ndarray of shape (hidden, n_neurons); bias : ndarray of shape (hidden,)
    keep : int ndarray of shape (k,)
    mean : ndarray of shape (n_neurons,); covariance : ndarray of shape (n_neurons, n_neurons)

    Returns
    -------
    new_weight : ndarray of shape (hidden, k); new_bias : ndarray of shape (hidden,)
        ``new_weight = W C[:, K] (C[K, K] + lambda I)^-1`` and ``new_bias = b + W mean - new_weight mean[K]``.
    """
    ckk = covariance[np.ix_(keep, keep)]
    lam = ridge * float(np.mean(np.diag(ckk))) if ridge else 0.0
    rhs = covariance[keep] @ weight.T  # (k, hidden) = C[K, :] W^T
    new_weight = np.linalg.solve(ckk + lam * np.eye(len(keep)), rhs).T
    new_bias = bias + weight @ mean - new_weight @ mean[keep]
    return new_weight, new_bias


def end_to_end_error(model: nn.Module, reference: nn.Module, tokenizer, texts: Sequence[Text], max_length: int = 64,
                     batch_size: int = 32) -> float:
    """The relative squared error of ``model``'s last hidden states against ``reference``'s over the real
    tokens of ``texts``: ``sum ||y - y_ref||^2 / sum ||y_ref||^2``."""
    from .activations import tokenize

    texts = validate_texts(texts)
    enc_m, enc_r = getattr(model, "base_model", model), getattr(reference, "base_model", reference)
    device = next(model.parameters()).device
    err = ref = 0.0
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenize(tokenizer, texts[i:i + batch_size], max_length, device)
            rows = enc["attention_mask"].bool()
            y, y0 = enc_m(**enc).last_hidden_state[rows], enc_r(**enc).last_hidden_state[rows]
            err += float(((y - y0) ** 2).sum())
            ref += float((y0 ** 2).sum())
    return err / ref


def checked_refit(plain: nn.Module, refitted: nn.Module, original: nn.Module, tokenizer, held_out: Sequence[Text],
                  max_length: int = 64) -> tuple[nn.Module, dict[str, float | bool]]:
    """The refitted model when it lowers the end-to-end error on ``held_out`` texts against the pruned
    model without compensation (``plain``), else ``plain``.

    Returns
    -------
    model, info : ``info`` holds ``error_none``, ``error_refit`` (:func:`end_to_end_error` against the
        unpruned ``original``) and ``refit_applied``
    """
    e0 = end_to_end_error(plain, original, tokenizer, held_out, max_length)
    e1 = end_to_end_error(refitted, original, tokenizer, held_out, max_length)
    applied = bool(e1 < e0)
    return (refitted if applied else plain), {"error_none": round(e0, 6), "error_refit": round(e1, 6),
                                              "refit_applied": applied}

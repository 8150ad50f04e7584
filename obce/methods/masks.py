"""Adapting by pruning (Gao et al. 2021): learn a binary mask over the frozen pre-trained weights.

The pre-trained weights never change. Every linear map of the encoder (attention query, key, value
and output, FFN in and out) gets a real-valued score per weight, initialised to the weight's
magnitude relative to its matrix's mean magnitude; its forward pass uses the weight times a binary
mask that keeps the ``1 - sparsity`` highest scores of that matrix. The top-k step has no gradient,
so the backward pass goes straight through it to the scores (a straight-through estimator, as in
movement pruning). The scores and the new classifier are trained together with the Hugging Face
Trainer; every pre-trained weight stays as it was: the biases, embeddings, LayerNorms and the pooler
are frozen and unmasked (the paper keeps the remaining connections intact).

What the record says of the masks: ``mask_changed``, the share of mask entries that training moved
away from the magnitude initialisation (:func:`mask_changed`; 0 would mean the method is magnitude
pruning), and the size with and without the masks' storage: ``size_nonzero_bytes`` (the weights
left, 4 bytes each, the count the comparison uses) and ``size_with_masks_bytes`` (those plus one bit
per masked weight, what a deployment that stores the dense shapes' masks needs).

:func:`apply_masks` multiplies the masks into the weights and puts plain ``nn.Linear`` layers back,
so the saved model is a vanilla ``transformers`` checkpoint whose pruned weights are exactly 0.
Storing the masks instead of the zeros would take one bit per masked weight
(:func:`mask_storage_bytes`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ObceInputError
from ..models import encoder_linear_maps

#: The registry's name of the method, its parameters' defaults (the pipeline's ``methods`` entries may
#: set them), and the parameter that gives it a size of its own (none: it takes a level's budget).
NAME = "masks"
DEFAULTS = dict(mask_lr=1e-2, head_lr=1e-3)
OWN_SIZE = None
#: How a masks record describes its training.
TRAINING = ("masks and classifier trained on the task for the fine-tuning epochs; pre-trained weights, the "
            "pooler included, frozen")
#: Bytes per stored weight (fp32), for the sizes with and without the masks.
WEIGHT_BYTES = 4


def validate(params: dict) -> None:
    """Every positive learning rate is valid (the registry checks the types)."""


def distils(params: dict) -> bool:
    """Whether the method trains from a teacher: never."""
    return False


def reads_corpus(params: dict) -> bool:
    """Whether the method reads the scoring corpus: never (the masks learn from the task)."""
    return False


def check_fits(model: nn.Module, budget: int, params: dict) -> None:
    """Raise ``ObceInputError`` if the masked maps cannot give up the weights the budget removes."""
    from ..pruning import count_parameters

    sparsity_for(model, count_parameters(model) - budget)


def compress(model: nn.Module, budget: int, **_) -> tuple[nn.Module, dict]:
    """The registry's entry point. The masks are learned during fine-tuning, on the model with its
    head, so compressing only fixes their sparsity: ``model`` is returned unchanged, with ``info``
    holding the ``sparsity`` that removes as many weights as ``budget`` asks (:func:`sparsity_for`);
    :func:`prepare` adds the masks, :func:`finish` multiplies them into the weights."""
    from ..pruning import count_parameters

    return model, dict(sparsity=sparsity_for(model, count_parameters(model) - budget), training=TRAINING)


def prepare(clf: nn.Module, info: dict, mask_lr: float = 1e-2, head_lr: float = 1e-3, **_) -> torch.optim.Optimizer:
    """Before fine-tuning: masks of ``info["sparsity"]`` on the classifier's encoder (:func:`add_masks`),
    and the optimizer of their scores and the head (:func:`optimizer`)."""
    add_masks(clf, info["sparsity"])
    return optimizer(clf, mask_lr, head_lr)


def finish(clf: nn.Module) -> dict:
    """After fine-tuning: what the record states of the learned masks (``mask_changed``), then the masks
    multiplied into the weights (:func:`apply_masks`) and the sizes: ``parameters`` (the weights left),
    ``mask_storage_bytes``, ``size_nonzero_bytes`` and ``size_with_masks_bytes`` (:func:`sizes`), and
    ``pooler_trained`` (False)."""
    changed = mask_changed(clf)
    apply_masks(clf)
    left = remaining_parameters(clf.base_model)
    return dict(mask_changed=changed, parameters=left, pooler_trained=False,
                **sizes(left, mask_storage_bytes(clf)))


def sizes(parameters: int, mask_bytes: int) -> dict:
    """The sizes of a masked model: ``size_nonzero_bytes`` (``parameters`` weights of
    :data:`WEIGHT_BYTES`), ``mask_storage_bytes`` and ``size_with_masks_bytes`` (their sum)."""
    nonzero = int(parameters) * WEIGHT_BYTES
    return dict(mask_storage_bytes=int(mask_bytes), size_nonzero_bytes=nonzero,
                size_with_masks_bytes=nonzero + int(mask_bytes))


def initial_mask(m: "MaskedLinear") -> torch.Tensor:
    """The mask :class:`MaskedLinear` starts from: the ``keep`` weights of largest magnitude, shape
    (out_features, in_features) (the scores' initialisation, recomputed from the frozen weight)."""
    with torch.no_grad():
        magnitude = m.weight.abs()
        return _TopK.apply(magnitude / magnitude.mean().clamp_min(1e-12), m.keep)


def mask_changed(model: nn.Module) -> float:
    """The share of the entries of every mask (over all masked maps) that differ from the initial
    magnitude mask (:func:`initial_mask`): 0 before training; 0 after it means the training moved
    nothing."""
    changed = total = 0
    with torch.no_grad():
        for parent, name in masked_linears(model):
            m = getattr(parent, name)
            if isinstance(m, MaskedLinear):
                changed += int((m.mask() != initial_mask(m)).sum())
                total += m.weight.numel()
    if not total:
        raise ObceInputError("the model has no masks: call add_masks first")
    return round(changed / total, 6)


class _TopK(torch.autograd.Function):
    """Binary mask of the ``k`` largest scores; the gradient passes straight through."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int) -> torch.Tensor:
        mask = torch.zeros_like(scores)
        mask.view(-1)[torch.topk(scores.view(-1), k, sorted=False).indices] = 1.0
        return mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class MaskedLinear(nn.Module):
    """A frozen ``nn.Linear`` whose weight is multiplied by a learned top-k mask.

    Parameters
    ----------
    linear : nn.Linear with weight of shape (out_features, in_features)
    sparsity : float in [0, 1)
        Share of the weights the mask removes (rounded to whole weights).
    """

    def __init__(self, linear: nn.Linear, sparsity: float):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        magnitude = self.weight.abs()
        self.scores = nn.Parameter(magnitude / magnitude.mean().clamp_min(1e-12))
        self.keep = self.weight.numel() - round(sparsity * self.weight.numel())

    def mask(self) -> torch.Tensor:
        """The binary mask of shape (out_features, in_features); ``keep`` ones."""
        return _TopK.apply(self.scores, self.keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask(), self.bias)


def masked_linears(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute) of every linear map that masks cover: all of the encoder's blocks'
    (:func:`obce.models.encoder_linear_maps`)."""
    return encoder_linear_maps(model)


def add_masks(model: nn.Module, sparsity: float) -> nn.Module:
    """Replace the encoder's linear maps of ``model`` (in place) by :class:`MaskedLinear`; freeze
    every other encoder weight, the pooler's included. Returns ``model``."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise ObceInputError(f"sparsity={sparsity!r}: expected a share of weights in [0, 1)")
    for p in model.base_model.parameters():
        p.requires_grad_(False)
    for parent, name in masked_linears(model):
        setattr(parent, name, MaskedLinear(getattr(parent, name), sparsity))
    return model


def apply_masks(model: nn.Module) -> nn.Module:
    """Multiply each learned mask into its weight and put a plain ``nn.Linear`` back (in place).
    Returns ``model``, a vanilla checkpoint with exact zeros."""
    for parent, name in masked_linears(model):
        m = getattr(parent, name)
        if not isinstance(m, MaskedLinear):
            continue
        lin = nn.Linear(m.weight.shape[1], m.weight.shape[0], bias=m.bias is not None, dtype=m.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(m.weight * m.mask())
            if m.bias is not None:
                lin.bias.copy_(m.bias)
        setattr(parent, name, lin)
    return model


def sparsity_for(model: nn.Module, remove: int) -> float:
    """The mask sparsity that removes ``remove`` weights from the linear maps that masks cover."""
    total = sum(getattr(p, n).weight.numel() for p, n in masked_linears(model))
    if not 0 <= remove < total:
        raise ObceInputError(f"removing {remove} weights: the masked linear maps hold {total}")
    return remove / total


def remaining_parameters(model: nn.Module) -> int:
    """Parameters of ``model`` less the weights the masks removed (the zeros of the masked linear
    maps; other parameters count whatever their value, as in an unmasked model)."""
    from ..pruning import count_parameters

    zeros = sum(int((getattr(p, n).weight == 0).sum()) for p, n in masked_linears(model))
    return count_parameters(model) - zeros


def mask_storage_bytes(model: nn.Module) -> int:
    """Bytes that storing one bit per masked weight would take."""
    return math.ceil(sum(getattr(p, n).weight.numel() for p, n in masked_linears(model)) / 8)


def optimizer(model: nn.Module, mask_lr: float, head_lr: float) -> torch.optim.Optimizer:
    """AdamW over the mask scores (``mask_lr``, no weight decay) and the new classifier (``head_lr``)."""
    scores = [p for n, p in model.named_parameters() if n.endswith(".scores")]
    head = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(".scores")]
    if not scores:
        raise ObceInputError("the model has no masks: call add_masks first")
    return torch.optim.AdamW([dict(params=scores, lr=mask_lr, weight_decay=0.0),
                              dict(params=head, lr=head_lr)])

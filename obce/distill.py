"""Knowledge distillation as a Hugging Face Trainer subclass (teacher: the unpruned model fine-tuned on
the task).

The student's loss mixes three terms:

* prediction-layer distillation: the KL divergence between the teacher's and the student's output
  distributions at temperature ``T`` (times ``T**2``, so that its gradients keep their scale), or the
  squared error between their outputs for a regression task (STS-B);
* the task loss on the labels;
* intermediate-layer distillation (optional): the mean squared error between hidden states of the
  student's layers and the teacher's layers they are mapped to (``hidden``), and between the outputs
  of their attention sub-layers (``attention``: each block's self-attention after its output
  projection and LayerNorm, the stream the FFN reads), as KroneckerBERT distils both.

``loss = alpha * distillation + (1 - alpha) * task + hidden_weight * hidden + attention_weight * attention``.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import torch
from torch import nn
from transformers import Trainer

from .errors import ObceInputError

#: Distillation settings a fine-tuning ``distill`` mapping may give, and their defaults.
DISTILL_DEFAULTS = dict(alpha=0.5, temperature=2.0, hidden_weight=1.0, attention_weight=1.0)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                      temperature: float = 2.0, alpha: float = 0.5, regression: bool = False) -> torch.Tensor:
    """The prediction-layer part of the student's loss.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (batch, n_labels)
    labels : Tensor of shape (batch,), optional (without labels: distillation alone)
    temperature : float > 0; alpha : float in [0, 1], the weight of distillation against the task loss
    regression : bool, a one-output regression head (squared errors instead of distributions)

    Returns
    -------
    Tensor, a scalar
    """
    if not temperature > 0 or not 0 <= alpha <= 1:
        raise ObceInputError(f"temperature={temperature!r}, alpha={alpha!r}: expected T > 0 and alpha in [0, 1]")
    if regression:
        distil = nn.functional.mse_loss(student_logits.squeeze(-1), teacher_logits.squeeze(-1))
        task = (nn.functional.mse_loss(student_logits.squeeze(-1), labels.float()) if labels is not None
                else torch.zeros((), device=student_logits.device))
    else:
        t = temperature
        distil = nn.functional.kl_div(nn.functional.log_softmax(student_logits / t, -1),
                                      nn.functional.log_softmax(teacher_logits / t, -1),
                                      reduction="batchmean", log_target=True) * t * t
        task = (nn.functional.cross_entropy(student_logits, labels) if labels is not None
                else torch.zeros((), device=student_logits.device))
    if labels is None:
        return distil
    return alpha * distil + (1 - alpha) * task


def hidden_loss(student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor],
                layer_map: Sequence[tuple[int, int]], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the mapped layers of the squared error between hidden states, over real tokens.

    Parameters
    ----------
    student_hidden, teacher_hidden : sequences of Tensors of shape (batch, seq, hidden) (the models'
        ``hidden_states``: the embeddings, then each layer)
    layer_map : (student index, teacher index) pairs into those sequences
    mask : Tensor of shape (batch, seq), optional: 1 for real tokens
    """
    if not layer_map:
        raise ObceInputError("hidden_loss needs at least one (student, teacher) layer pair")
    losses = []
    for i, j in layer_map:
        d = (student_hidden[i] - teacher_hidden[j]).pow(2).mean(-1)
        losses.append(d[mask.bool()].mean() if mask is not None else d.mean())
    return torch.stack(losses).mean()


def attention_outputs(model: nn.Module):
    """A context manager that collects the output of every block's attention sub-layer while the model
    runs: yields a list that each forward pass fills with Tensors of shape (batch, seq, hidden), in
    block order."""
    from contextlib import contextmanager

    from .models import encoder_layers

    @contextmanager
    def collecting():
        outputs: list[torch.Tensor] = []
        hooks = [block.attention.register_forward_hook(
            lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
            for block in encoder_layers(model)]
        try:
            yield outputs
        finally:
            for h in hooks:
                h.remove()

    return collecting()


def distilling(teacher: nn.Module, **settings):
    """A trainer factory (``Trainer``'s keyword arguments -> :class:`DistillationTrainer`) that
    distils ``teacher`` with ``settings`` (``alpha``, ``temperature``, ``hidden_weight``,
    ``attention_weight``; defaults
    :data:`DISTILL_DEFAULTS`)."""
    from functools import partial

    return partial(DistillationTrainer, teacher=teacher, **{**DISTILL_DEFAULTS, **settings})


def distillation_terms(alpha: float, hidden_weight: float, attention_weight: float, **_) -> str:
    """What a distillation with these weights matches in the teacher, in words, for a record (e.g.
    ``"prediction layer, hidden states and attention outputs"``); the terms of weight 0 are left out."""
    from .text import join_words

    terms = [name for name, weight in (("prediction layer", alpha), ("hidden states", hidden_weight),
                                       ("attention outputs", attention_weight)) if weight > 0]
    return join_words(terms) or "nothing"


class DistillationTrainer(Trainer):
    """A ``Trainer`` whose loss distils a frozen teacher into the model it trains.

    Parameters
    ----------
    teacher : the teacher model (same task head); kept in eval mode and never updated
    temperature, alpha : see :func:`distillation_loss`
    hidden_weight : float, the weight of :func:`hidden_loss` over hidden states (0: none)
    attention_weight : float, the weight of :func:`hidden_loss` over the attention sub-layers' outputs
        (:func:`attention_outputs`; 0: none)
    layer_map : (student, teacher) hidden-state indices; default every student layer to the teacher's
        layer of the same index (attention outputs follow it: hidden state ``i`` is block ``i - 1``'s)
    Other arguments are the ``Trainer``'s.
    """

    def __init__(self, *args, teacher: nn.Module, temperature: float = 2.0, alpha: float = 0.5,
                 hidden_weight: float = 0.0, attention_weight: float = 0.0,
                 layer_map: Sequence[tuple[int, int]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.alpha, self.hidden_weight = temperature, alpha, hidden_weight
        self.attention_weight, self.layer_map = attention_weight, layer_map

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        features = {k: v for k, v in inputs.items() if k != "labels"}
        hidden, attention = self.hidden_weight > 0, self.attention_weight > 0
        with attention_outputs(model) if attention else nullcontext([]) as s_att:
            out = model(**features, output_hidden_states=hidden)
        self.teacher.to(out.logits.device)
        with torch.no_grad(), attention_outputs(self.teacher) if attention else nullcontext([]) as t_att:
            t = self.teacher(**features, output_hidden_states=hidden)
        regression = getattr(model.config, "problem_type", None) == "regression" or out.logits.shape[-1] == 1
        loss = distillation_loss(out.logits, t.logits, labels, self.temperature, self.alpha, regression)
        mask = features.get("attention_mask")
        if hidden or attention:
            n = len(s_att) + 1 if attention else len(out.hidden_states)
            pairs = self.layer_map or [(i, i) for i in range(n)]
        if hidden:
            loss = loss + self.hidden_weight * hidden_loss(out.hidden_states, t.hidden_states, pairs, mask)
        if attention:  # hidden state i (i >= 1) leaves block i - 1
            blocks = [(i - 1, j - 1) for i, j in pairs if i >= 1 and j >= 1]
            loss = loss + self.attention_weight * hidden_loss(s_att, t_att, blocks, mask)
        return (loss, out) if return_outputs else loss

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

import os
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


#: The general (task-agnostic) distillation's settings and their defaults: optimisation steps (0: none),
#: batch size, learning rate, the longest text in tokens, the weights of the hidden-state and
#: attention-output terms, a resumable checkpoint every ``checkpoint_every`` steps.
GENERAL_DEFAULTS = dict(steps=0, batch_size=32, lr=1e-4, max_length=64, hidden_weight=1.0,
                        attention_weight=1.0, checkpoint_every=50)


def general_batches(n_texts: int, steps: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    """The text indices of every step of a general distillation: consecutive slices of one seeded
    permutation per pass over the corpus, so that step ``i``'s batch depends on ``i`` alone (a resumed
    run sees the same batches).

    Returns
    -------
    list of ``steps`` lists of ``min(batch_size, n_texts)`` indices into the corpus
    """
    import numpy as np

    if n_texts < 1 or batch_size < 1 or steps < 0:
        raise ObceInputError(f"general distillation over {n_texts} texts, batch_size={batch_size}, steps={steps}: "
                             "expected a non-empty corpus, a positive batch size and steps >= 0")
    size = min(batch_size, n_texts)
    need = steps * size
    stream: list[int] = []
    epoch = 0
    while len(stream) < need:
        stream.extend(np.random.default_rng([seed, epoch]).permutation(n_texts).tolist())
        epoch += 1
    return [stream[i * size:(i + 1) * size] for i in range(steps)]


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Hidden-state pairs (student index, teacher index) of TinyBERT's uniform mapping: the embeddings'
    output to the teacher's, and student layer ``m`` to teacher layer ``m * N / M`` (``M`` student and
    ``N`` teacher layers; ``N`` a multiple of ``M``).

    Returns
    -------
    list of ``M + 1`` pairs of indices into the models' ``hidden_states``
    """
    if student_layers < 1 or teacher_layers % student_layers:
        raise ObceInputError(f"a student of {student_layers} layers under a teacher of {teacher_layers}: expected "
                             "the teacher's depth to be a multiple of the student's")
    step = teacher_layers // student_layers
    return [(m, m * step) for m in range(student_layers + 1)]


def general_loss(student: nn.Module, teacher: nn.Module, batch: dict, hidden_weight: float = 1.0,
                 attention_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The general distillation loss on one tokenised batch: ``hidden_weight`` times the mean squared
    error between every hidden state of the student and of the teacher (the embeddings' output
    included, over real tokens), plus ``attention_weight`` times the same over every block's attention
    output (:func:`attention_outputs`), student layers mapped to the teacher's by
    :func:`uniform_layer_map`. Student and teacher are encoders of one hidden size.

    Returns
    -------
    loss : a scalar Tensor; terms : ``{"hidden": float, "attention": float}``
    """
    mask = batch.get("attention_mask")
    with attention_outputs(student) as s_att:
        out = student(**batch, output_hidden_states=True)
    with torch.no_grad(), attention_outputs(teacher) as t_att:
        t = teacher(**batch, output_hidden_states=True)
    pairs = uniform_layer_map(len(out.hidden_states) - 1, len(t.hidden_states) - 1)
    h = hidden_loss(out.hidden_states, t.hidden_states, pairs, mask)
    blocks = [(i - 1, j - 1) for i, j in pairs if i >= 1]
    a = hidden_loss(s_att, t_att, blocks, mask) if blocks else torch.zeros(())
    return hidden_weight * h + attention_weight * a, {"hidden": float(h.detach()), "attention": float(a.detach())}


def general_key(student: nn.Module, teacher: nn.Module, texts: Sequence[str], seed: int = 0, **settings) -> str:
    """The cache key of a general distillation: the student's architecture (its module tree, so a
    table-free embedding's settings count) and initial weights, the teacher's weights, the corpus, the
    seed and every setting but the checkpoint interval."""
    from .files import cache_key, corpus_hash
    from .models import model_fingerprint

    s = {k: v for k, v in {**GENERAL_DEFAULTS, **settings}.items() if k != "checkpoint_every"}
    return cache_key(student=model_fingerprint(student), architecture=repr(student),
                     teacher=model_fingerprint(teacher), corpus=corpus_hash(texts), seed=seed, **s)


def general_distillation(student: nn.Module, teacher: nn.Module, tokenizer, texts: Sequence[str], *,
                         cache_dir: str | os.PathLike, seed: int = 0, progress: bool = True,
                         corpus: str = "", **settings) -> dict:
    """Distil the teacher's hidden states and attention outputs into ``student`` on unlabeled text
    (task-agnostic, as KroneckerBERT's first stage and TinyBERT's general distillation do), in place.

    The result is cached under ``cache_dir/<key>`` (:func:`general_key`): a second call with the same
    student, teacher, corpus and settings loads the weights instead of training. Every
    ``checkpoint_every`` steps the student, the optimizer, the schedule and the random state are
    written to ``cache_dir/<key>.partial``; an interrupted run resumes from there to the same weights.

    Parameters
    ----------
    student, teacher : encoders (``BertModel``; a model with a head distils its ``base_model``) of the
        same depth and hidden size; the teacher is never changed
    texts : the unlabeled corpus (:func:`obce.data.unlabeled_corpus`), one string per text
    settings : :data:`GENERAL_DEFAULTS`'s keys
    corpus : the corpus' description, for the returned record

    Returns
    -------
    dict, the record's ``general_distillation``: ``corpus``, ``texts``, ``steps``, ``key``, ``seconds``
    (of this call's training), ``texts_per_second``, ``final_loss``, ``from_cache``
    """
    import time
    from pathlib import Path

    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from .files import atomic_dir, read_json, write_json

    unknown = set(settings) - set(GENERAL_DEFAULTS)
    if unknown:
        raise ObceInputError(f"general distillation: unknown setting(s) {sorted(unknown)}; expected "
                             f"{sorted(GENERAL_DEFAULTS)}")
    s = {**GENERAL_DEFAULTS, **settings}
    steps = int(s["steps"])
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise ObceInputError("general distillation: the corpus must be a non-empty list of non-empty strings")
    st, te = getattr(student, "base_model", student), getattr(teacher, "base_model", teacher)
    key = general_key(st, te, texts, seed=seed, **s)
    cache_dir = Path(cache_dir)
    done, partial = cache_dir / key, cache_dir / f"{key}.partial"
    info = dict(corpus=corpus, texts=len(texts), steps=steps, key=key)
    if (done / "model.safetensors").exists():
        st.load_state_dict(load_file(str(done / "model.safetensors")), strict=False)
        return {**read_json(done / "info.json"), "from_cache": True}
    batches = general_batches(len(texts), steps, int(s["batch_size"]), seed)
    params = [p for p in st.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(s["lr"]))
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    te.eval()
    start, history = 0, []
    if (partial / "state.pt").exists():
        state = torch.load(partial / "state.pt", weights_only=True)
        st.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        start, history = int(state["step"]), list(state["history"].tolist())
    if start == 0:  # a resumed run restores the random state instead
        torch.manual_seed(seed)
    st.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="general distillation", disable=not progress)
    for i in bar:
        batch = tokenizer([texts[j] for j in batches[i]], truncation=True, max_length=int(s["max_length"]),
                          padding=True, return_tensors="pt")
        batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        loss, _ = general_loss(st, te, batch, float(s["hidden_weight"]), float(s["attention_weight"]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if (i + 1) % int(s["checkpoint_every"]) == 0 and i + 1 < steps:
            with atomic_dir(partial, "a general distillation checkpoint") as tmp:
                torch.save({"model": st.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
                            "rng": torch.get_rng_state(), "step": torch.tensor(i + 1),
                            "history": torch.tensor(history)}, tmp / "state.pt")
    seconds = time.perf_counter() - t0
    st.eval()
    trained = steps - start
    info.update(seconds=round(seconds, 2),
                texts_per_second=round(trained * min(int(s["batch_size"]), len(texts)) / seconds, 2) if trained else None,
                final_loss=history[-1] if history else None, settings=s)
    with atomic_dir(done, "the general distillation's result") as tmp:
        save_file({k: v.contiguous() for k, v in st.state_dict().items()}, str(tmp / "model.safetensors"))
        write_json(tmp / "info.json", info)
    if partial.exists():
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    return {**info, "from_cache": False}

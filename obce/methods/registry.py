"""The registry of compression methods, and the one protocol that runs any of them.

Every method is a module of :mod:`obce.methods` with the same entry point,
``compress(model, budget, **params) -> (model, info)``, and the same small interface:

* ``NAME``; ``DEFAULTS`` (its parameters and their defaults, beside :data:`COMMON_DEFAULTS`, which
  every method takes); ``OWN_SIZE`` (the parameter that gives it a size of its own instead of a
  level's budget, or ``None``); optionally ``ALWAYS_OWN = True`` for a method whose size is always
  its own (EELBERT);
* ``validate(params)``, ``distils(params)`` (trains from a teacher), ``reads_corpus(params)``;
* ``check_fits(model, budget, params)`` (raises before any compute if the budget is out of reach),
  ``own_budget(model, params)`` where it has ``OWN_SIZE``;
* optionally ``prepare(clf, info, **params) -> optimizer`` (before fine-tuning, on the model with its
  head) and ``finish(clf) -> info`` (after it);
* optionally ``score_of(params)``, the importance score whose per-neuron scores ``compress`` takes as
  ``scores=`` (FFN pruning, the combination), and ``adjust_budget(model, budget, params)``, the
  budget it aims at given a level's (FFN pruning at the count layer removal reaches).

A budget is the encoder's parameter count after compression. :func:`level_budget` gives OBCE level
k's, and each method comes as close to it as its granularity allows; a method given a size of its own
ignores the level, runs once per task and seed, and its record says so (``budget: "own"``).
:func:`run` compresses a pretrained model, distils it from the pretrained model on unlabeled text
where ``general_steps`` asks for it (:func:`general_stage`), fine-tunes it (or, for masks, trains the
masks and head) and evaluates it on a GLUE task, looping over nothing but this interface.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..distill import DISTILL_DEFAULTS
from ..errors import ObceInputError
from . import combined, eelbert, ffn_pruning, hash_table, kronecker, layer_removal, masks

#: The methods a pipeline's ``methods:`` entries name, by name.
REGISTRY = {m.NAME: m for m in (ffn_pruning, layer_removal, masks, kronecker, eelbert, combined, hash_table)}
#: Parameters every method takes, and their defaults unless the method's ``DEFAULTS`` say otherwise:
#: ``general_steps``, the steps of the general (task-agnostic) distillation from the pretrained
#: model before the task's fine-tuning (0: none; :func:`obce.distill.general_distillation`).
COMMON_DEFAULTS = {"general_steps": 0}
#: Parameters that may be 0 ("not set") although their default is a positive number.
ZERO_ALLOWED = ("alpha", "hidden_weight", "attention_weight", "embedding_factor", "compression", "buckets",
                "general_steps", "layers", "size")

__all__ = ["COMMON_DEFAULTS", "REGISTRY", "check_fits", "compress", "general_stage", "level_budget", "method_budget",
           "method_defaults", "method_score", "method_spec", "own_size", "run", "size_on_disk"]


def level_budget(model: nn.Module, level: int) -> int:
    """The encoder's parameter count after OBCE pruning at ``level`` (0: the unpruned count).

    Parameters
    ----------
    model : a BERT-family encoder (``BertModel``) or a model with a head (its ``base_model`` counts)
    """
    from ..pruning import LEVELS, count_parameters, prune

    if level not in LEVELS:
        raise ObceInputError(f"level {level!r}: expected one of {LEVELS}")
    base = getattr(model, "base_model", model)
    sizes = layer_removal.layer_sizes(base)
    order = np.broadcast_to(np.arange(sizes[0], dtype=float), (len(sizes), sizes[0]))  # any distinct scores: no ties
    return count_parameters(prune(base, order, level=level))


def own_size(spec: dict[str, Any]) -> bool:
    """Whether a completed ``methods:`` entry (:func:`method_spec`) sets its own size rather than taking
    a level's budget (its method's ``OWN_SIZE`` parameter is set)."""
    method = REGISTRY[spec["name"]]
    if getattr(method, "ALWAYS_OWN", False):
        return True
    return bool(method.OWN_SIZE and spec["params"].get(method.OWN_SIZE))


def method_budget(spec: dict[str, Any], model: nn.Module, level: int) -> int:
    """The encoder parameters a completed ``methods:`` entry aims at: level ``level``'s budget
    (:func:`level_budget`, or what the method's ``adjust_budget`` makes of it), or its own size (the
    method's ``own_budget``)."""
    method = REGISTRY[spec["name"]]
    if own_size(spec):
        return method.own_budget(model, spec["params"])
    budget = level_budget(model, level)
    return method.adjust_budget(model, budget, spec["params"]) if hasattr(method, "adjust_budget") else budget


def method_score(spec: dict[str, Any]) -> str | None:
    """The importance score a completed ``methods:`` entry prunes FFN neurons by (``None``: it takes no
    scores)."""
    method = REGISTRY[spec["name"]]
    return method.score_of(spec["params"]) if hasattr(method, "score_of") else None


def check_fits(spec: dict[str, Any], model: nn.Module, levels) -> None:
    """Raise :class:`ObceInputError` before any compute if a completed ``methods:`` entry cannot reach
    its budget on ``model`` at any of ``levels`` (e.g. a word-table factor that does not divide the
    hidden size, a compression the factors cannot reach, more hash rows than the table has)."""
    method = REGISTRY[spec["name"]]
    for level in ([max(levels)] if own_size(spec) else levels):
        method.check_fits(model, method_budget(spec, model, level), spec["params"])


def method_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A pipeline ``methods:`` entry checked and completed with its defaults: ``name``, ``label``
    (the name records and tables use; default the name) and the method's parameters."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ObceInputError(f"method {spec!r}: expected a mapping with a name (one of {sorted(REGISTRY)})")
    if isinstance(spec.get("params"), dict):  # already completed: check it again as written
        spec = {"name": spec["name"], "label": spec.get("label", spec["name"]), **spec["params"]}
    name = spec["name"]
    if name not in REGISTRY:
        raise ObceInputError(f"method {name!r}: expected one of {sorted(REGISTRY)}")
    method = REGISTRY[name]
    params = {k: v for k, v in spec.items() if k not in ("name", "label")}
    defaults = method_defaults(name)
    unknown = set(params) - set(defaults)
    if unknown:
        raise ObceInputError(f"method {name!r}: unknown parameter(s) {sorted(unknown)}; expected "
                             f"{sorted(defaults)}")
    params = {**defaults, **params}
    for key, default in defaults.items():
        v = params[key]
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, (int, float)):
            ok = not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 0 and (v > 0 or key in ZERO_ALLOWED)
        elif isinstance(default, list):
            ok = isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)
        else:
            ok = isinstance(v, type(default))
        if not ok:
            raise ObceInputError(f"method {name} {key}={v!r}: expected a value like {default!r}")
    method.validate(params)
    label = spec.get("label", name)
    if not isinstance(label, str) or not label or "/" in label:
        raise ObceInputError(f"method label {label!r}: expected a non-empty name without '/'")
    return dict(name=name, label=label, params=params)


def method_defaults(name: str) -> dict[str, Any]:
    """Every parameter of method ``name`` and its default: :data:`COMMON_DEFAULTS`, then the method's."""
    return {**COMMON_DEFAULTS, **REGISTRY[name].DEFAULTS}


def run(spec: dict[str, Any], model: nn.Module, tokenizer, task: str, level: int, *, seed: int = 0,
        finetune: dict[str, Any] | None = None, texts=None, glue_dir=None, progress: bool = True,
        work_parent: str | os.PathLike | None = None, extra_provenance: dict[str, Any] | None = None,
        teacher: nn.Module | None = None, general_cache: str | os.PathLike | None = None, scores=None):
    """Compress the pretrained ``model`` with a method to OBCE level ``level``'s budget, train it on
    ``task`` and evaluate it on dev.

    Parameters
    ----------
    spec : a ``methods:`` entry (see :func:`method_spec`)
    model, tokenizer : the pretrained encoder (not changed)
    level : int in 1..3, the budget (:func:`level_budget`); a method with a size of its own
        (:func:`own_size`) records it but keeps its own size
    finetune : the fine-tuning keys of the pipeline (epochs, lr, batch_size, max_length, ...)
    texts : the corpus that data-driven choices use (layer removal's ``residual_change``)
    teacher : the unpruned model fine-tuned on ``task`` (with its head), for the methods that distil
    general_cache : where general distillations are cached (default ``work_parent/general``), shared by
        every task and seed of one student architecture
    scores : array of shape (n_layers, n_neurons), the neurons' scores by :func:`method_score`, for the
        methods that prune FFN neurons

    Returns
    -------
    GlueResult
        Its provenance carries ``method``, ``method_params``, ``importance`` (the method's label, so
        that every report groups it like a score), ``budget_parameters``, ``parameters`` (exact;
        nonzero ones for masks), ``parameters_dense``, ``size_on_disk_bytes`` and the method's ``info``.
    """
    from functools import partial

    from .. import glue
    from ..pruning import count_parameters

    spec = method_spec(spec)
    method, p = REGISTRY[spec["name"]], spec["params"]
    finetune = dict(finetune or {})
    budget = method_budget(spec, model, level)
    if method_score(spec) and scores is None:
        raise ObceInputError(f"method {spec['name']} prunes FFN neurons by {method_score(spec)}: give their scores "
                             "(scores=, e.g. obce.score_neurons)")
    info: dict[str, Any] = dict(method=spec["name"], method_params=p, importance=spec["label"], level=level,
                                budget="own" if own_size(spec) else "level", budget_parameters=budget,
                                parameters_full=count_parameters(model))
    factory = None
    if method.distils(p):
        if teacher is None:
            raise ObceInputError(f"method {spec['name']} distils: give the teacher (the unpruned model fine-tuned "
                                 f"on {task})")
        from ..distill import distillation_terms, distilling

        settings = {k: p[k] for k in DISTILL_DEFAULTS}
        factory = distilling(teacher, **settings)
        info.update(training=f"distilled from the unpruned model fine-tuned on the task "
                             f"({distillation_terms(**settings)}), with the task loss, for the fine-tuning epochs")
    small, found = compress(spec, model, budget, tokenizer=tokenizer, texts=texts, seed=seed, scores=scores,
                            max_length=finetune.get("max_length", 64))
    info.update(found)
    if p["general_steps"]:
        info["general_distillation"] = general_stage(small, model, tokenizer, int(p["general_steps"]),
                                                     glue_dir=glue_dir, progress=progress,
                                                     max_length=finetune.get("max_length", 64),
                                                     cache_dir=general_cache or Path(work_parent or ".") / "general")
    prepare = partial(method.prepare, info=info, **p) if hasattr(method, "prepare") else None
    result = glue.finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=glue_dir, seed=seed,
                                        progress=progress, keep_model=True, work_parent=work_parent, prepare=prepare,
                                        trainer_factory=factory, teacher=teacher,
                                        extra_provenance={**info, **(extra_provenance or {})}, **finetune)
    clf = result.model
    info.update(method.finish(clf) if hasattr(method, "finish") else
                dict(parameters=count_parameters(clf.base_model)))
    info.update(parameters_dense=count_parameters(clf.base_model), size_on_disk_bytes=size_on_disk(clf, work_parent))
    result.provenance.update(info)
    result.model = None
    return result


def compress(spec: dict[str, Any], model: nn.Module, budget: int, *, tokenizer=None, texts=None, seed: int = 0,
             scores=None, max_length: int = 64) -> tuple[nn.Module, dict[str, Any]]:
    """A completed ``methods:`` entry's method applied to the pretrained ``model`` (not changed) for
    ``budget`` (:func:`method_budget`): the compressed copy and what the method records of it, before
    any training. :func:`run` starts here; so does a general distillation computed ahead of the runs
    that share it (the Ray executor's upstream task)."""
    return REGISTRY[spec["name"]].compress(model, budget, tokenizer=tokenizer, texts=texts, seed=seed, scores=scores,
                                           max_length=max_length, **spec["params"])


def general_stage(student: nn.Module, teacher: nn.Module, tokenizer, steps: int, *, glue_dir=None,
                  cache_dir: str | os.PathLike, max_length: int = 64, progress: bool = True) -> dict[str, Any]:
    """The general distillation of a compressed encoder from the pretrained one (in place), on the
    pooled unlabeled GLUE training sentences (:func:`obce.data.unlabeled_corpus`), seed 0 for every
    task and seed so that one student architecture distils once.

    Returns
    -------
    dict, the record's ``general_distillation`` (corpus, texts, steps, key, cost)
    """
    from ..data import unlabeled_corpus
    from ..distill import general_distillation

    texts, corpus = unlabeled_corpus(glue_dir=glue_dir)
    return general_distillation(student, teacher, tokenizer, texts, cache_dir=cache_dir, steps=steps,
                                max_length=max_length, progress=progress, corpus=corpus, seed=0)


def size_on_disk(model: nn.Module, parent: str | os.PathLike | None = None) -> int:
    """Bytes of the model's saved weights (``model.safetensors``, as ``save_pretrained`` writes them)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        model.save_pretrained(tmp)
        return sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))

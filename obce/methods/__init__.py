"""Compression methods, each a module with one entry point, and the one protocol that runs any of them.

* :mod:`obce.methods.ffn_pruning`: OBCE and every importance score: remove each layer's least
  important FFN neurons (:func:`obce.prune`).
* :mod:`obce.methods.layer_removal`: remove whole FFN sub-layers (by depth or by how little they
  change the residual stream over a corpus).
* :mod:`obce.methods.masks`: adapting by pruning: learn a binary mask over the frozen pre-trained
  weights for the task.
* :mod:`obce.methods.kronecker`: KroneckerBERT: every encoder linear map as a sum of Kronecker
  products, initialised from the pre-trained weights and trained by distillation from the unpruned
  model fine-tuned on the task (:mod:`obce.distill`).
* :mod:`obce.methods.eelbert`: EELBERT: the word-embedding table replaced by hashed character
  n-gram embeddings fitted to it, then fine-tuned (optionally with distillation).

A budget is the encoder's parameter count after compression. :func:`level_budget` gives OBCE level
k's, and each method comes as close to it as its granularity allows (:func:`run` records the exact
count reached). :func:`run` compresses a pretrained model to a level's budget, fine-tunes (or, for
masks, trains the masks and head) and evaluates it on a GLUE task; the pipeline and ``obce pipeline``
drive every method through it, so their records share one schema.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..errors import ObceInputError
from ..glue import DISTILL_DEFAULTS
from . import eelbert, ffn_pruning, kronecker, layer_removal, masks

#: Methods the pipeline's ``methods:`` entries name, with their parameters' defaults.
METHODS = {"layer_removal": layer_removal, "masks": masks, "kronecker": kronecker, "eelbert": eelbert}
METHOD_DEFAULTS = {"layer_removal": dict(criterion="residual_change"), "masks": dict(masks.DEFAULTS),
                   "kronecker": dict(DISTILL_DEFAULTS, embedding_factor=0),
                   "eelbert": dict(DISTILL_DEFAULTS, distill=False, ngram_sizes=[2, 3, 4], fit_epochs=200)}
#: Methods that train from a teacher (the unpruned model fine-tuned on the task).
NEEDS_TEACHER = ("kronecker",)

__all__ = ["METHODS", "eelbert", "ffn_pruning", "kronecker", "layer_removal", "masks", "level_budget", "method_spec",
           "run", "size_on_disk"]


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
    return count_parameters(prune(base, np.zeros((len(sizes), sizes[0])), level=level))


def method_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A pipeline ``methods:`` entry checked and completed with its defaults: ``name``, ``label``
    (the name records and tables use; default the name) and the method's parameters."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ObceInputError(f"method {spec!r}: expected a mapping with a name (one of {sorted(METHODS)})")
    if isinstance(spec.get("params"), dict):  # already completed: check it again as written
        spec = {"name": spec["name"], "label": spec.get("label", spec["name"]), **spec["params"]}
    name = spec["name"]
    if name not in METHODS:
        raise ObceInputError(f"method {name!r}: expected one of {sorted(METHODS)}")
    params = {k: v for k, v in spec.items() if k not in ("name", "label")}
    unknown = set(params) - set(METHOD_DEFAULTS[name])
    if unknown:
        raise ObceInputError(f"method {name!r}: unknown parameter(s) {sorted(unknown)}; expected "
                             f"{sorted(METHOD_DEFAULTS[name])}")
    params = {**METHOD_DEFAULTS[name], **params}
    if name == "layer_removal" and params["criterion"] not in layer_removal.CRITERIA:
        raise ObceInputError(f"method layer_removal criterion {params['criterion']!r}: expected one of "
                             f"{layer_removal.CRITERIA}")
    for key, default in METHOD_DEFAULTS[name].items():
        v = params[key]
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, (int, float)):
            ok = not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 0 and (v > 0 or key in (
                "alpha", "hidden_weight", "embedding_factor"))
        elif isinstance(default, list):
            ok = isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)
        else:
            ok = isinstance(v, type(default))
        if not ok:
            raise ObceInputError(f"method {name} {key}={v!r}: expected a value like {default!r}")
    label = spec.get("label", name)
    if not isinstance(label, str) or not label or "/" in label:
        raise ObceInputError(f"method label {label!r}: expected a non-empty name without '/'")
    return dict(name=name, label=label, params=params)


def run(spec: dict[str, Any], model: nn.Module, tokenizer, task: str, level: int, *, seed: int = 0,
        finetune: dict[str, Any] | None = None, texts=None, glue_dir=None, progress: bool = True,
        work_parent: str | os.PathLike | None = None, extra_provenance: dict[str, Any] | None = None,
        teacher: nn.Module | None = None):
    """Compress the pretrained ``model`` with a method to OBCE level ``level``'s budget, train it on
    ``task`` and evaluate it on dev.

    Parameters
    ----------
    spec : a ``methods:`` entry (see :func:`method_spec`)
    model, tokenizer : the pretrained encoder (not changed)
    level : int in 1..3, the budget (:func:`level_budget`)
    finetune : the fine-tuning keys of the pipeline (epochs, lr, batch_size, max_length, ...)
    texts : the corpus that data-driven choices use (layer removal's ``residual_change``)
    teacher : the unpruned model fine-tuned on ``task`` (with its head), for the methods that distil

    Returns
    -------
    GlueResult
        Its provenance carries ``method``, ``method_params``, ``importance`` (the method's label, so
        that every report groups it like a score), ``budget_parameters``, ``parameters`` (exact;
        nonzero ones for masks), ``parameters_dense``, ``size_on_disk_bytes`` and what the method adds
        (the removed layers; the mask sparsity and the bytes storing the masks would take).
    """
    from ..glue import finetune_and_evaluate
    from ..pruning import count_parameters

    spec = method_spec(spec)
    finetune = dict(finetune or {})
    budget = level_budget(model, level)
    full = count_parameters(model)
    info: dict[str, Any] = dict(method=spec["name"], method_params=spec["params"], importance=spec["label"],
                                level=level, budget_parameters=budget, parameters_full=full)
    prepare, factory, small, p = None, None, model, spec["params"]
    if spec["name"] in NEEDS_TEACHER or p.get("distill"):
        if teacher is None:
            raise ObceInputError(f"method {spec['name']} distils: give the teacher (the unpruned model fine-tuned "
                                 f"on {task})")
        from ..distill import distilling

        factory = distilling(teacher, **{k: p[k] for k in DISTILL_DEFAULTS})
        info.update(training="distilled from the unpruned model fine-tuned on the task (prediction layer and "
                             "hidden states), with the task loss, for the fine-tuning epochs")
    if spec["name"] == "kronecker":
        small = kronecker.compress(model, kronecker.ranks_for_budget(model, full - budget),
                                   embedding_factor=p["embedding_factor"] or None)
        info.update(ranks=[getattr(q, n).a.shape[0] for q, n in kronecker.linear_maps(small)])
    elif spec["name"] == "eelbert":
        buckets = eelbert.buckets_for(model, full - budget)
        import copy

        small = eelbert.compress(copy.deepcopy(model), tokenizer, buckets=buckets, ngram_sizes=p["ngram_sizes"],
                                 epochs=p["fit_epochs"], seed=seed)
        info.update(buckets=buckets)
    elif spec["name"] == "layer_removal":
        small = layer_removal.compress(model, n_remove=layer_removal.blocks_for(model, full - budget), criterion=spec["params"]["criterion"],
                                       tokenizer=tokenizer, texts=texts,
                                       max_length=finetune.get("max_length", 64))
        sizes = layer_removal.layer_sizes(small)
        info.update(removed_layers=[i for i, s in enumerate(sizes) if s == 0], intermediate_size=sizes)
    elif spec["name"] == "masks":
        sparsity = masks.sparsity_for(model, full - budget)
        info.update(sparsity=sparsity, training="masks and head trained on the task for the fine-tuning epochs; "
                                                "pre-trained weights frozen")

        def prepare(clf):
            masks.add_masks(clf, sparsity)
            return masks.optimizer(clf, spec["params"]["mask_lr"], spec["params"]["head_lr"])
    result = finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=glue_dir, seed=seed, progress=progress,
                                   keep_model=True, work_parent=work_parent, prepare=prepare, trainer_factory=factory,
                                   teacher=teacher,
                                   extra_provenance={**info, **(extra_provenance or {})}, **finetune)
    clf = result.model
    if spec["name"] == "masks":
        masks.apply_masks(clf)
        info.update(mask_storage_bytes=masks.mask_storage_bytes(clf),
                    parameters=masks.remaining_parameters(clf.base_model))
    else:
        info.update(parameters=count_parameters(clf.base_model))
    info.update(parameters_dense=count_parameters(clf.base_model), size_on_disk_bytes=size_on_disk(clf, work_parent))
    result.provenance.update(info)
    result.model = None
    return result


def size_on_disk(model: nn.Module, parent: str | os.PathLike | None = None) -> int:
    """Bytes of the model's saved weights (``model.safetensors``, as ``save_pretrained`` writes them)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        model.save_pretrained(tmp)
        return sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))

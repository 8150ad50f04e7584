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
k's, and each method comes as close to it as its granularity allows; a method given a size of its own
(:data:`OWN_SIZE`, e.g. KroneckerBERT at 19x) ignores the level, runs once per task and seed, and its
record says so (``budget: "own"``) (:func:`run` records the exact
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
                   "kronecker": dict(DISTILL_DEFAULTS, embedding_factor=0, compression=0),
                   "eelbert": dict(DISTILL_DEFAULTS, distill=False, ngram_sizes=[2, 3, 4], fit_epochs=200, buckets=0)}
#: Parameters that give a method a size of its own instead of a level's budget (0: the level's budget):
#: KroneckerBERT's compression factor of the whole encoder (the paper's 19x), EELBERT's hash buckets.
OWN_SIZE = {"kronecker": "compression", "eelbert": "buckets"}
#: Methods that train from a teacher (the unpruned model fine-tuned on the task).
NEEDS_TEACHER = ("kronecker",)

__all__ = ["METHODS", "OWN_SIZE", "check_fits", "eelbert", "ffn_pruning", "kronecker", "layer_removal", "level_budget",
           "masks", "method_budget", "method_spec", "own_size", "run", "size_on_disk"]


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


def own_size(spec: dict[str, Any]) -> bool:
    """Whether a completed ``methods:`` entry (:func:`method_spec`) sets its own size (:data:`OWN_SIZE`)
    rather than taking a level's budget."""
    key = OWN_SIZE.get(spec["name"])
    return bool(key and spec["params"].get(key))


def method_budget(spec: dict[str, Any], model: nn.Module, level: int) -> int:
    """The encoder parameters a completed ``methods:`` entry aims at: level ``level``'s budget
    (:func:`level_budget`), or its own size (:func:`own_size`): the full count over KroneckerBERT's
    ``compression``, or the model with EELBERT's ``buckets`` table rows."""
    from ..pruning import count_parameters

    p = spec["params"]
    if not own_size(spec):
        return level_budget(model, level)
    full = count_parameters(model)
    if spec["name"] == "kronecker":
        return int(full / p["compression"])
    table = model.base_model.embeddings.word_embeddings.weight
    return full - table.numel() + int(p["buckets"]) * table.shape[1]


def check_fits(spec: dict[str, Any], model: nn.Module, levels) -> None:
    """Raise :class:`ObceInputError` before any compute if a completed ``methods:`` entry cannot reach
    its budget on ``model`` at any of ``levels`` (e.g. a word-table factor that does not divide the
    hidden size, a compression the factors cannot reach, more hash rows than the table has)."""
    p = spec["params"]
    for level in ([max(levels)] if own_size(spec) else levels):
        budget = method_budget(spec, model, level)
        if spec["name"] == "kronecker":
            kronecker.ranks_to(model, budget, p["embedding_factor"] or None)
        elif spec["name"] == "eelbert":
            rows = model.base_model.embeddings.word_embeddings.weight.shape[0]
            if int(p["buckets"]) > rows:
                raise ObceInputError(f"method eelbert buckets={p['buckets']}: more rows than the word table's {rows}")


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
                "alpha", "hidden_weight", "attention_weight", "embedding_factor", "compression", "buckets"))
        elif isinstance(default, list):
            ok = isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)
        else:
            ok = isinstance(v, type(default))
        if not ok:
            raise ObceInputError(f"method {name} {key}={v!r}: expected a value like {default!r}")
    if name == "kronecker" and 0 < params["compression"] <= 1:
        raise ObceInputError(f"method kronecker compression={params['compression']!r}: expected a factor > 1 "
                             "(the full encoder's parameters over the compressed one's), or 0 for the level's budget")
    if name == "eelbert" and not float(params["buckets"]).is_integer():
        raise ObceInputError(f"method eelbert buckets={params['buckets']!r}: expected a whole number of hash buckets")
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
    level : int in 1..3, the budget (:func:`level_budget`); a method with a size of its own
        (:func:`own_size`) records it but keeps its own size
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
    full = count_parameters(model)
    own = own_size(spec)
    p = spec["params"]
    budget = method_budget(spec, model, level)
    info: dict[str, Any] = dict(method=spec["name"], method_params=p, importance=spec["label"],
                                level=level, budget="own" if own else "level", budget_parameters=budget,
                                parameters_full=full)
    prepare, factory, small = None, None, model
    if spec["name"] in NEEDS_TEACHER or p.get("distill"):
        if teacher is None:
            raise ObceInputError(f"method {spec['name']} distils: give the teacher (the unpruned model fine-tuned "
                                 f"on {task})")
        from ..distill import distillation_terms, distilling

        settings = {k: p[k] for k in DISTILL_DEFAULTS}
        factory = distilling(teacher, **settings)
        terms = distillation_terms(**settings)
        info.update(training=f"distilled from the unpruned model fine-tuned on the task ({terms}), with the task "
                             "loss, for the fine-tuning epochs")
    if spec["name"] == "kronecker":
        small = kronecker.compress_to(model, budget, embedding_factor=p["embedding_factor"] or None)
        info.update(ranks=[getattr(q, n).a.shape[0] for q, n in kronecker.linear_maps(small)])
    elif spec["name"] == "eelbert":
        buckets = int(p["buckets"]) or eelbert.buckets_for(model, full - budget)
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

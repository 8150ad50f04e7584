"""Fine-tune and evaluate a model on a GLUE task with the Hugging Face Trainer.

The Trainer makes the same code run on CPU, one GPU, or several (``accelerate launch`` /
``torchrun``). Metrics are the official GLUE ones computed with scikit-learn and scipy: CoLA
Matthews correlation; MRPC and QQP F1 and accuracy; STS-B Pearson and Spearman; the others
accuracy (MNLI: matched ``accuracy`` and mismatched ``accuracy_mm``).

A correlation of constant predictions (Pearson, Spearman, Matthews) is undefined: it is recorded as
``None``, with the reason in the record's ``metrics_undefined``, never as a number. A model whose dev
predictions are all one class (or, for regression, all one value) is ``degenerate``
(:func:`prediction_summary`); every record says whether it is. A model with non-finite weights is
refused before training, and a non-finite training loss stops the run, both as bad input (exit 2).
"""
from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .data import data_description, get_task, load_glue
from .distill import DISTILL_DEFAULTS
from .errors import ObceInputError
from .models import (check_device, check_max_length, check_weights, encoder_layers, load_config,
                     resolve_model_source, stored_dtype)
from .paths import work_dir
from .results import provenance
from .files import Timer, read_json, write_json

logger = logging.getLogger(__name__)


@dataclass
class GlueResult:
    """Metrics of one fine-tuning run and where they came from."""

    task: str
    metrics: dict[str, float | None]
    provenance: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)  # the fine-tuned model, if kept
    degenerate: bool | None = None  # every dev prediction one class (or one value): the model learned nothing
    metrics_undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is undefined

    def to_dict(self) -> dict[str, Any]:
        """The record: task, metrics (``None`` where undefined), why undefined, degenerate, provenance."""
        out = {"task": self.task, "metrics": self.metrics, "degenerate": self.degenerate, "provenance": self.provenance}
        if self.metrics_undefined:
            out["metrics_undefined"] = self.metrics_undefined
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON, atomically."""
        return write_json(path, {"kind": "glue_result", **self.to_dict()})


#: The fine-tuning's numeric precisions: float32 throughout, or bfloat16 autocast (weights stay float32).
PRECISIONS = ("fp32", "bf16")

def compute_metrics(task: str, predictions, labels) -> dict[str, float | None]:
    """Official GLUE metrics of one task; a correlation of constant predictions or labels is ``None``
    (undefined: :func:`undefined_metrics` says why).

    Parameters
    ----------
    task : str
    predictions : array_like of shape (n,)
        Class ids, or similarity scores for STS-B.
    labels : array_like of shape (n,)

    Returns
    -------
    dict of str to float or None
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    info = get_task(task)
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.ndim != 1 or len(p) == 0:
        raise ObceInputError(f"predictions {p.shape} and labels {y.shape}: expected two equal 1-D arrays")
    out: dict[str, float] = {}
    for name in info.metrics:
        if name == "accuracy":
            out[name] = float(accuracy_score(y, p))
        elif name == "f1":
            out[name] = float(f1_score(y, p))
        elif name == "matthews_correlation":
            out[name] = float(matthews_corrcoef(y, p)) if np.ptp(p) > 0 and np.ptp(y) > 0 else None
        elif name in ("pearson", "spearman"):
            fn = pearsonr if name == "pearson" else spearmanr
            out[name] = float(fn(p, y)[0]) if np.ptp(p) > 0 and np.ptp(y) > 0 else None
    return out


def undefined_metrics(metrics: dict[str, float | None], predictions, labels) -> dict[str, str]:
    """Why each ``None`` of :func:`compute_metrics` is undefined (metric -> reason)."""
    p, y = np.asarray(predictions), np.asarray(labels)
    why = ("a correlation is undefined when the predictions are constant" if np.ptp(p) == 0 else
           "a correlation is undefined when the labels are constant" if np.ptp(y) == 0 else "undefined")
    return {k: why for k, v in metrics.items() if v is None}


def prediction_summary(task: str, predictions) -> dict[str, Any]:
    """Whether a model's dev predictions are degenerate: every prediction one class, or (regression) all
    one value, or any prediction non-finite.

    Parameters
    ----------
    predictions : array_like of shape (n,), class ids or similarity scores

    Returns
    -------
    dict: ``degenerate`` (bool), ``predicted_classes`` (the distinct classes predicted, classification
    only), ``prediction_std`` (regression only)
    """
    p = np.asarray(predictions, dtype=np.float64)
    if get_task(task).is_regression:
        std = float(np.std(p)) if np.isfinite(p).all() else float("nan")
        return {"degenerate": not (std > 0), "prediction_std": std}
    classes = sorted({int(c) for c in p[np.isfinite(p)]})
    return {"degenerate": len(classes) <= 1 or not np.isfinite(p).all(), "predicted_classes": classes}


def check_finite_weights(model: nn.Module, name: str) -> None:
    """Raise ``ObceInputError`` naming the first parameter of ``model`` with a NaN or infinite value."""
    import torch

    for pname, param in model.named_parameters():
        if not torch.isfinite(param.detach()).all():
            bad = int((~torch.isfinite(param.detach())).sum())
            raise ObceInputError(f"model {name!r}: parameter {pname} has {bad} non-finite value(s) (NaN or inf); "
                                 "a model with broken weights cannot be fine-tuned or evaluated")


def default_precision(device: str) -> str:
    """``"bf16"`` where ``device`` computes bfloat16 natively (a CUDA GPU that supports it; a CPU with
    AVX512-BF16 or AMX), else ``"fp32"``."""
    import torch

    if str(device).startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    cpu = getattr(torch, "cpu", None)
    native = any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return "bf16" if native else "fp32"


def protocol_finetune(finetune: dict[str, Any]) -> dict[str, Any]:
    """A protocol's fine-tuning keys as its cells run them: a config that names no precision runs as
    every record of the protocols was made before the CPU default became bf16 (bf16 on a GPU that
    supports it, fp32 on CPU), so that its records keep pairing; one that names it runs with it."""
    import torch

    if finetune.get("precision") is not None or finetune.get("bf16") is not None:
        return dict(finetune)
    gpu = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return {**finetune, "precision": "bf16" if gpu else "fp32"}


def finetune_and_evaluate(model: str | os.PathLike | nn.Module, task: str, *, tokenizer=None,
                          glue_dir: str | os.PathLike | None = None, epochs: float = 3, lr: float = 2e-5,
                          batch_size: int = 32, max_length: int = 128, seed: int = 0,
                          max_train_samples: int | None = None, max_eval_samples: int | None = None,
                          weight_decay: float = 0.01, warmup_ratio: float = 0.1,
                          device: str | None = None, bf16: bool | None = None, precision: str | None = None,
                          output_dir: str | os.PathLike | None = None, progress: bool = True,
                          extra_provenance: dict[str, Any] | None = None, keep_model: bool = False,
                          work_parent: str | os.PathLike | None = None, prepare=None,
                          trainer_factory=None, distill: dict[str, Any] | None = None,
                          teacher: nn.Module | None = None) -> GlueResult:
    """Fine-tune a BERT-family encoder on a GLUE task and evaluate it on the dev set.

    Parameters
    ----------
    model : str, path or nn.Module
        ``"minilm"``, a checkpoint directory (e.g. a pruned model), a hub id, or an in-memory
        model (then ``tokenizer`` is required). A classification (regression for STS-B) head is
        added, initialised from ``seed``; a model that already has a head of the task's shape (one
        fine-tuned on the task, possibly pruned since) keeps it and is trained further.
    task : str
        GLUE task name.
    glue_dir : path, optional
        Local GLUE directory (default ``$OBCE_GLUE_DIR``, else the hub).
    epochs, lr, batch_size, max_length, weight_decay, warmup_ratio : training hyper-parameters
    seed : int
        Seeds the head, data order and dropout: same seed, same result on the same device.
    max_train_samples, max_eval_samples : int, optional
        Seeded subsets (for CPU runs and tests).
    device : {"cpu", "cuda"}, optional
        Default: CUDA when available.
    bf16 : bool, optional
        Mixed precision (the same choice as ``precision``).
    precision : {"fp32", "bf16"}, optional
        ``bf16``: bfloat16 autocast through the Trainer (on CPU ``torch.autocast("cpu",
        dtype=torch.bfloat16)``), weights kept in float32. Default :func:`default_precision`: bf16 on a
        GPU or CPU that computes it natively (measured on CPU: the same dev metric as fp32 within seed
        noise, 1.4-1.9x faster; ``benchmarks/README.md``), else fp32. Recorded as the provenance's
        ``precision``. The protocols keep the precision their records were made with
        (:func:`protocol_finetune`).
    keep_model : bool
        Return the fine-tuned model (with its head, in eval mode) as ``result.model``.
    work_parent : path, optional
        Where the temporary model copy goes (default: the system's temporary directory); a copy
        left by a killed run is removed by the next run there.
    prepare : callable, optional
        ``prepare(classifier) -> optimizer or None``, called on the classification model before
        training: a compression method that trains something else than the weights (learned masks)
        changes the model and returns its optimizer (default: the Trainer's AdamW over all weights).
        An in-memory model that a vanilla ``BertConfig`` cannot express (FFN sizes that differ by
        layer, Kronecker factors, dynamic embeddings) is wrapped as it is, without a checkpoint round trip.
    trainer_factory : callable, optional
        Builds the trainer from the ``Trainer``'s keyword arguments (default ``Trainer``), e.g.
        ``functools.partial(obce.distill.DistillationTrainer, teacher=...)``.
    distill : dict, optional
        Train by distillation from ``teacher`` (``alpha``, ``temperature``, ``hidden_weight``, ``attention_weight`` of
        :class:`obce.distill.DistillationTrainer`): "prune, then distil". The setting is part of the
        record's fine-tuning parameters, so distilled and plain runs are never pooled.
    teacher : the model fine-tuned on the task that ``distill`` learns from

    Returns
    -------
    GlueResult
        ``metrics`` (MNLI: mismatched ones suffixed ``_mm``) and ``provenance``.
    """
    import torch
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments, set_seed)

    info = get_task(task)
    _check_hyper(epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length)
    if distill is not None:
        if teacher is None:
            raise ObceInputError("distill needs the teacher (the model fine-tuned on the task)")
        from .distill import distilling

        distill = {**DISTILL_DEFAULTS, **distill}
        trainer_factory = distilling(teacher, **distill)
    check_device(device)
    config = model.config if isinstance(model, nn.Module) else load_config(model)  # BERT-family only
    if isinstance(model, nn.Module):
        encoder_layers(model)  # a BERT-family encoder (its linear maps may be factored)
    check_max_length(max_length, config)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if precision is not None:
        if precision not in PRECISIONS:
            raise ObceInputError(f"precision {precision!r}: expected one of {PRECISIONS}")
        if bf16 is not None and bf16 != (precision == "bf16"):
            raise ObceInputError(f"precision {precision!r} and bf16={bf16!r} disagree: give one of them")
        bf16 = precision == "bf16"
    if bf16 is None:
        bf16 = default_precision(device) == "bf16"
    timer = Timer().__enter__()
    with work_dir(work_parent) as tmp:
        source, model_name = _model_source(model, tokenizer, tmp)
        tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(source)
        train = _subset(load_glue(task, "train", glue_dir), max_train_samples, seed)
        dev_splits = list(info.dev_files)
        devs = {s: _subset(load_glue(task, s, glue_dir), max_eval_samples, seed) for s in dev_splits}

        def encode(batch):
            return tok(*[batch[f] for f in info.text_fields], truncation=True, max_length=max_length)

        cols = [*info.text_fields, "idx"]
        train_enc = train.map(encode, batched=True, remove_columns=cols)
        devs_enc = {s: d.map(encode, batched=True, remove_columns=cols) for s, d in devs.items()}
        set_seed(seed)
        problem = "regression" if info.is_regression else "single_label_classification"
        if source is None:  # not a vanilla BERT checkpoint: wrap the in-memory encoder as it is
            head_config = copy.deepcopy(config)
            head_config.num_labels, head_config.problem_type = info.num_labels, problem
            clf = AutoModelForSequenceClassification.from_config(head_config)
            setattr(clf, clf.base_model_prefix, copy.deepcopy(model).float())
            stored = "float32"
        else:
            clf = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=info.num_labels, dtype=torch.float32, problem_type=problem)
            stored = stored_dtype(AutoConfig.from_pretrained(source))
        check_finite_weights(clf, model_name)  # before minutes of training on NaN
        optimizer = prepare(clf) if prepare is not None else None
        args = TrainingArguments(
            output_dir=str(output_dir or Path(tmp) / "trainer"), num_train_epochs=epochs,
            learning_rate=lr, per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=max(batch_size, 64), weight_decay=weight_decay,
            warmup_steps=warmup_ratio, seed=seed, data_seed=seed, bf16=bf16,
            use_cpu=not device.startswith("cuda"), eval_strategy="no", save_strategy="no",
            report_to=[], logging_steps=50, disable_tqdm=not progress, dataloader_num_workers=0,
            logging_nan_inf_filter=False)  # a NaN loss shows in the training loss, never filtered to 0
        trainer = (trainer_factory or Trainer)(model=clf, args=args, train_dataset=train_enc, processing_class=tok,
                          optimizers=(optimizer, None))
        train_out = trainer.train()
        if not math.isfinite(train_out.training_loss):
            raise ObceInputError(f"fine-tuning {model_name} on {info.name}: the training loss is "
                                 f"{train_out.training_loss} (not finite): the weights or the learning rate "
                                 f"({lr}) diverge; nothing is recorded")
        metrics: dict[str, float | None] = {}
        undefined: dict[str, str] = {}
        summary: dict[str, Any] = {}
        for i, ds in enumerate(devs_enc.values()):
            pred = trainer.predict(ds)
            logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            p = logits.squeeze(-1) if info.is_regression else logits.argmax(-1)
            if not np.isfinite(logits).all():
                raise ObceInputError(f"fine-tuning {model_name} on {info.name}: the model's outputs on dev are "
                                     "not finite (NaN or inf); nothing is recorded")
            suffix = "" if i == 0 else "_mm"
            found = compute_metrics(task, p, pred.label_ids)
            metrics.update({k + suffix: v for k, v in found.items()})
            undefined.update({k + suffix: v for k, v in undefined_metrics(found, p, pred.label_ids).items()})
            summary = summary or prediction_summary(task, p)
        actual_device = str(next(clf.parameters()).device)
    timer.__exit__()
    params = dict(task=info.name, epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length,
                  weight_decay=weight_decay, warmup_ratio=warmup_ratio, bf16=bf16,
                  max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)
    if distill is not None:
        params["distill"] = distill
    extra = {**_pruning_provenance(model), **(extra_provenance or {})}
    if not isinstance(model, nn.Module):
        from .models import source_fingerprint

        extra.setdefault("model_fingerprint", source_fingerprint(model))
    extra.setdefault("importance", "none")  # a model obce did not prune is the unpruned model, level 0
    extra.setdefault("level", 0 if extra["importance"] == "none" else None)
    prov = provenance(params=params, seed=seed, device=actual_device, wall_time_s=timer.seconds,
                      precision="bf16" if bf16 else "fp32",
                      model=model_name, data=data_description(info.name, glue_dir),
                      train_size=len(train), eval_size={s: len(d) for s, d in devs.items()},
                      train_loss=float(train_out.training_loss),
                      weights=(f"stored as {stored}, upcast to float32 for fine-tuning"
                               if stored and stored != "float32" else "float32"),
                      predictions={k: v for k, v in summary.items() if k != "degenerate"}, **extra)
    logger.info("%s on %s: %s (%.0f s)", model_name, info.name, metrics, timer.seconds)
    return GlueResult(task=info.name, metrics=metrics, provenance=prov, model=clf.eval() if keep_model else None,
                      degenerate=summary["degenerate"], metrics_undefined=undefined)


def encode_dev(task: str, tokenizer, max_length: int, glue_dir: str | os.PathLike | None = None,
               max_samples: int | None = None, seed: int = 0) -> dict:
    """Every dev split of a task (MNLI: matched, mismatched), tokenized: ``{split: (encodings, labels)}``
    with ``encodings`` a list of dicts of token ids (no padding) and ``labels`` an ndarray. With
    ``max_samples``, the seeded subset that :func:`finetune_and_evaluate`'s ``max_eval_samples`` takes."""
    info = get_task(task)
    out = {}
    for split in info.dev_files:
        ds = _subset(load_glue(task, split, glue_dir), max_samples, seed)
        enc = tokenizer(*[list(ds[f]) for f in info.text_fields], truncation=True, max_length=max_length)
        rows = [{k: enc[k][i] for k in enc.keys()} for i in range(len(ds))]
        out[split] = (rows, np.asarray(ds["label"]))
    return out


def evaluate(model: nn.Module, tokenizer, task: str, dev: dict, batch_size: int = 64) -> dict[str, float | None]:
    """Official GLUE metrics of a model with its task head on the dev split(s) ``dev`` (from
    :func:`encode_dev`), without training (:func:`dev_predictions`, then :func:`compute_metrics`).

    Returns
    -------
    dict of str to float or None (MNLI's mismatched metrics suffixed ``_mm``; None: undefined)
    """
    return metrics_of(task, dev, dev_predictions(model, tokenizer, task, dev, batch_size))


def metrics_of(task: str, dev: dict, predictions: dict[str, np.ndarray]) -> dict[str, float | None]:
    """:func:`compute_metrics` of every dev split's ``predictions`` (:func:`dev_predictions`), the second
    split's metrics (MNLI mismatched) suffixed ``_mm``."""
    metrics: dict[str, float | None] = {}
    for i, (split, (_, labels)) in enumerate(dev.items()):
        suffix = "" if i == 0 else "_mm"
        metrics.update({k + suffix: v for k, v in compute_metrics(task, predictions[split], labels).items()})
    return metrics


def dev_predictions(model: nn.Module, tokenizer, task: str, dev: dict, batch_size: int = 64) -> dict[str, np.ndarray]:
    """A model's predictions on every dev split of :func:`encode_dev`, without training: batches of
    similar lengths, padded per batch.

    Returns
    -------
    dict of split to ndarray of shape (n,): class ids (int), or similarity scores for STS-B
    """
    import torch
    from transformers import DataCollatorWithPadding

    info = get_task(task)
    collate = DataCollatorWithPadding(tokenizer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: dict[str, np.ndarray] = {}
    try:
        for split, (rows, _labels) in dev.items():
            order = np.argsort([len(r["input_ids"]) for r in rows], kind="stable")
            preds = np.empty(len(rows), dtype=np.float64)
            with torch.inference_mode():
                for j in range(0, len(rows), batch_size):
                    idx = order[j:j + batch_size]
                    batch = {k: v.to(device) for k, v in collate([rows[t] for t in idx]).items()}
                    logits = model(**batch).logits.float()
                    preds[idx] = (logits.squeeze(-1) if info.is_regression else logits.argmax(-1)).cpu().numpy()
            out[split] = preds if info.is_regression else preds.astype(int)
    finally:
        model.train(was_training)
    return out


def _model_source(model, tokenizer, tmp: str) -> tuple[str | None, str]:
    """The checkpoint directory the classifier loads (``None``: wrap the in-memory model) and a name."""
    if isinstance(model, nn.Module):
        if tokenizer is None:
            raise ObceInputError("an in-memory model needs its tokenizer (tokenizer=...)")
        name = getattr(model.config, "_name_or_path", "") or "in-memory model"
        widths = [block.intermediate.dense.out_features for block in encoder_layers(model)]
        if set(widths) != {model.config.intermediate_size}:
            return None, f"{name} (in memory, FFN sizes per layer {widths})"
        custom = sorted({type(m).__name__ for m in model.modules() if type(m).__module__.startswith("obce.")})
        if custom:
            return None, f"{name} (in memory, with {', '.join(custom)})"
        path = Path(tmp) / "model"
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        name = getattr(model.config, "_name_or_path", "") or "in-memory model"
        return str(path), f"{name} (in memory, intermediate_size={model.config.intermediate_size})"
    source = resolve_model_source(model)
    check_weights(source)
    return source, str(model)


def _pruning_provenance(model) -> dict[str, Any]:
    """How a checkpoint directory written by ``obce prune`` was pruned (from its obce_prune.json)."""
    if isinstance(model, nn.Module):
        return {}
    path = Path(resolve_model_source(model)) / "obce_prune.json"
    if not path.is_file():
        return {}
    rec = read_json(path)
    params = rec.get("provenance", {}).get("params", {})
    meta = rec.get("provenance", {}).get("scores_meta", {})
    importance = meta.get("importance") or meta.get("params", {}).get("importance", "unknown")
    return dict(importance=importance,
                level=params.get("level"), keep_fraction=params.get("keep_fraction"),
                intermediate_size=rec.get("intermediate_size"), parameters=rec.get("parameters_after"),
                parameters_full=rec.get("parameters_before"), pruned_from=rec.get("provenance", {}).get("model"))


def _subset(ds, n: int | None, seed: int):
    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise ObceInputError(f"sample limit {n!r}: expected a positive integer or None")
    return ds.shuffle(seed=seed).select(range(n))


def _check_hyper(**values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or not math.isfinite(v):
            raise ObceInputError(f"{name}={v!r}: expected a positive finite number")

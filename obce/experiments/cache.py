"""The caches of the protocols: a task's importance scores and a task's fine-tuned model.

Both are computed once and reused by every run that needs them, stored under the protocol's ``out``
directory in files named by a key of their inputs (``<out>/scores/``, ``<out>/finetuned/``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..data import glue_root, is_sample, load_corpus, sample_fingerprint
from ..errors import ObceInputError
from ..files import Timer, atomic_dir, cache_key, corpus_hash
from ..models import ffn_layers, source_fingerprint
from ..results import CHECKPOINT_RECORD, provenance
from ..scoring import GRADIENT_SCORES, gradient_scores, load_scores, save_scores, score_neurons
from .config import PipelineConfig
from .resume import set_aside

logger = logging.getLogger(__name__)

__all__ = ["cached_finetune", "corpus_seed", "finetuned_model", "score_draws", "scoring_inputs", "task_scores"]


def corpus_seed(cfg: PipelineConfig, seed: int) -> int:
    """The seed of the scoring corpus of a run: ``corpus.seed``, or the run's seed when it is ``run``."""
    value = cfg.corpus.get("seed", 0)
    return seed if value == "run" else value


def score_draws(cfg: PipelineConfig, importance: str, seed: int) -> dict[str, int]:
    """What a run's scores draw per seed: ``random_seed`` for random neurons, ``corpus_seed`` for a
    score that reads a corpus drawn per run; empty when the scores do not depend on the run's seed."""
    if importance == "random":
        return {"random_seed": seed}
    if cfg.corpus.get("seed", 0) == "run" and importance != "magnitude":
        return {"corpus_seed": seed}
    return {}


def task_scores(cfg: PipelineConfig, model, tokenizer, task: str, importance: str, progress: bool = True,
                seed: int = 0):
    """Scores of one importance for one task's corpus, cached under ``<out>/scores``; ``seed`` is the
    draw of ``random`` (other scores do not depend on it)."""
    c = cfg.corpus
    source = c.get("source_task") or task
    draw = score_draws(cfg, importance, seed)
    score_seed = seed if "random_seed" in draw else corpus_seed(cfg, seed)
    fingerprint = source_fingerprint(cfg.model)
    key = cache_key(model=cfg.model, fingerprint=fingerprint, source=source, importance=importance, corpus=c,
                    scoring=scoring_inputs(cfg), finetune=cfg.finetune if c.get("score_model") == "finetuned" else None,
                    **draw)
    suffix = f"-s{seed}" if draw else ""
    path = Path(cfg.out) / "scores" / f"{source}-{importance}{suffix}-n{c['samples']}-L{c['max_length']}-{key[:8]}.npz"
    if path.exists():
        try:
            cached = load_scores(path)[0]
            expected = (len(ffn_layers(model)), ffn_layers(model)[0][0].out_features)
            if cached.shape != expected:
                raise ObceInputError(f"{path}: cached scores of shape {cached.shape}, expected {expected}")
            return cached
        except ObceInputError as exc:
            logger.warning("%s; recomputing", exc)
    texts, labels = load_corpus(source, n=c["samples"], split=c.get("split", "train"), glue_dir=cfg.glue_dir,
                                seed=corpus_seed(cfg, seed), return_labels=True)
    s = cfg.scoring
    with Timer() as t:
        if importance in GRADIENT_SCORES:
            scores = gradient_scores(importance, model, tokenizer, texts, labels, max_length=c["max_length"],
                                     batch_size=s.get("batch_size", 32), device=s.get("device"))
        else:
            scores = score_neurons(model, tokenizer, texts, importance=importance, max_length=c["max_length"],
                                   representation=s.get("representation", "tokens"),
                                   method=s.get("method", "fast"), batch_size=s.get("batch_size", 32),
                                   device=s.get("device"), seed=score_seed,
                                   cache_dir=Path(cfg.out) / "cache", progress=progress)
    save_scores(path, scores, provenance(params={**c, **s, **draw}, seed=score_seed,
                                         device=s.get("device"),
                                         wall_time_s=t.seconds, model=cfg.model, model_fingerprint=fingerprint,
                                         task=source, importance=importance, corpus=corpus_hash(texts),
                                         n_texts=len(texts), key=key))
    return scores


def finetuned_model(cfg: PipelineConfig, model, tokenizer, task: str, progress: bool = True, seed: int = 0):
    """The pretrained model fine-tuned on the task (with ``seed``, the run's corpus seed), with its head;
    cached as a checkpoint under ``<out>/finetuned/`` keyed by the fine-tuning inputs."""
    return cached_finetune(cfg.model, model, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, Path(cfg.out),
                           progress)


def cached_finetune(model_name: str, model, tokenizer, task: str, finetune: dict[str, Any], seed: int,
                    glue_dir: str | None, out: Path, progress: bool = True):
    """``model`` fine-tuned on ``task`` with ``finetune`` parameters and ``seed``, with its head, in
    eval mode; cached as a checkpoint under ``<out>/finetuned/<task>-<key>`` (its record beside it) and
    reused while the inputs are the same: the key holds the model's fingerprint
    (:func:`obce.models.source_fingerprint`), so a checkpoint replaced at the same path is fine-tuned
    anew. A cached checkpoint that cannot be read (a truncated file) is set aside and recomputed."""
    from transformers import AutoModelForSequenceClassification

    from .. import glue

    finetune = {k: v for k, v in finetune.items() if k != "distill"}  # the teacher itself trains plainly
    sample = {"data": f"embedded sample {sample_fingerprint()}"} if is_sample(glue_root(glue_dir)) else {}
    key = cache_key(model=model_name, fingerprint=source_fingerprint(model_name), task=task, finetune=finetune,
                    seed=seed, **sample)
    path = Path(out) / "finetuned" / f"{task}-{key[:8]}"
    if (path / "config.json").is_file():
        try:
            cached = AutoModelForSequenceClassification.from_pretrained(path).eval()
            logger.info("reusing fine-tuned %s", path)
            return cached
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry of any kind is recomputed
            set_aside(path, f"the cached fine-tune {path} cannot be read ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")
    result = glue.finetune_and_evaluate(model, task, tokenizer=tokenizer, glue_dir=glue_dir, seed=seed,
                                   progress=progress, keep_model=True, work_parent=Path(out) / ".tmp",
                                   **glue.protocol_finetune(finetune))
    with atomic_dir(path) as tmp:
        result.model.save_pretrained(tmp)
        result.save(tmp / CHECKPOINT_RECORD)
    return result.model.cpu()


def scoring_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    """The scoring parameters that change scores (not the device or batch size)."""
    return {k: v for k, v in cfg.scoring.items() if k not in ("device", "batch_size")}

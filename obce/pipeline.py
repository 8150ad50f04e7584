"""The comparison protocol: score -> prune -> fine-tune/evaluate, for tasks x importances x levels
x seeds, resumable.

Every finished GLUE run is one JSON record under ``<out>/glue/<task>/``; scores are cached under
``<out>/scores/`` in files named by a key of their inputs. A rerun skips records that exist, are valid
and were made with the same model, scoring and fine-tuning parameters (their provenance says so), so
a killed run continues where it stopped and a changed config reruns what it changes. Level 0 (the unpruned model) is run once per task and seed, as importance "none".
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


from .data import get_task, load_corpus
from .errors import ObceInputError
from .models import load_config, load_model, stored_dtype
from .pruning import LEVELS, count_parameters, prune
from .results import CHECKPOINT_RECORD, Timer, cache_key, corpus_hash, provenance, read_json, to_jsonable
from .scoring import IMPORTANCES, load_scores, save_scores, score_neurons

logger = logging.getLogger(__name__)

#: Which model the scores are computed on: the pretrained encoder (prune, then fine-tune), or the
#: encoder fine-tuned on the task first (fine-tune, prune, fine-tune again; needed for "taylor").
SCORE_MODELS = ("pretrained", "finetuned")


@dataclass
class PipelineConfig:
    """Parameters of a comparison run (``obce pipeline --config FILE.yaml`` reads these keys)."""

    model: str = "minilm"
    out: str = "results/pipeline"
    glue_dir: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["rte"])
    levels: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    seeds: list[int] = field(default_factory=lambda: [0])
    importances: list[str] = field(default_factory=lambda: ["merge_radius", "random"])
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=128, split="train",
                                                                seed=0, source_task=None,
                                                                score_model="pretrained"))
    scoring: dict[str, Any] = field(default_factory=lambda: dict(representation="tokens", method="fast",
                                                                 device=None, batch_size=32))
    finetune: dict[str, Any] = field(default_factory=lambda: dict(epochs=3, lr=5e-5, batch_size=32,
                                                                  max_length=128, max_train_samples=None,
                                                                  max_eval_samples=None))
    note: str | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PipelineConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ObceInputError(f"unknown pipeline config key(s) {sorted(unknown)}; expected {sorted(known)}")
        cfg = cls()
        for key, value in values.items():
            default = getattr(cfg, key)
            setattr(cfg, key, {**default, **value} if isinstance(default, dict) and value else value)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "PipelineConfig":
        import yaml

        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ObceInputError(f"pipeline config {str(path)!r}: {exc}") from exc
        if not isinstance(values, dict):
            raise ObceInputError(f"pipeline config {str(path)!r}: expected a mapping of keys")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    def validate(self) -> None:
        for t in self.tasks:
            get_task(t)
        for imp in self.importances:
            if imp not in (*IMPORTANCES, "taylor"):
                raise ObceInputError(f"importance {imp!r}: expected one of {IMPORTANCES}")
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad:
            raise ObceInputError(f"levels {bad}: expected values in {LEVELS}")
        mode = self.corpus.get("score_model", "pretrained")
        if mode not in SCORE_MODELS:
            raise ObceInputError(f"corpus.score_model {mode!r}: expected one of {SCORE_MODELS}")
        if "taylor" in self.importances and mode != "finetuned":
            raise ObceInputError("importance 'taylor' needs a task loss: set corpus.score_model: finetuned")


def record_path(out: str | os.PathLike, task: str, importance: str, level: int, seed: int) -> Path:
    """Where the GLUE record of one run lives."""
    name = "none" if level == 0 else importance
    return Path(out) / "glue" / task / f"{name}-L{level}-s{seed}.json"


def restrict(cfg: PipelineConfig, **only: list | None) -> PipelineConfig:
    """A copy of ``cfg`` that plans a subset of its runs.

    ``only`` maps ``tasks``, ``importances``, ``levels`` or ``seeds`` to the values to keep (``None``:
    keep all); each value must be one the config plans. Every other parameter, and so every record's
    provenance, stays that of ``cfg``: a restricted run resumes and completes the same records.
    """
    changes = {}
    for key, values in only.items():
        if key not in ("tasks", "importances", "levels", "seeds"):
            raise ObceInputError(f"cannot restrict {key!r}: expected tasks, importances, levels or seeds")
        if values is None:
            continue
        planned = getattr(cfg, key)
        missing = [v for v in values if v not in planned]
        if missing:
            raise ObceInputError(f"--{key} {missing}: not in the config's {key} {planned}")
        changes[key] = [v for v in planned if v in values]  # the config's order
    return replace(cfg, **changes)


def planned_runs(cfg: PipelineConfig) -> list[tuple[str, str, int, int]]:
    """(task, importance, level, seed) of every run, level 0 once per task and seed; seed-major."""
    runs = []  # seed-major, so that an interrupted run leaves whole seeds of every task
    for seed in cfg.seeds:
        for task in cfg.tasks:
            if 0 in cfg.levels:
                runs.append((task, "none", 0, seed))
            for imp in cfg.importances:
                runs.extend((task, imp, lv, seed) for lv in cfg.levels if lv != 0)
    return runs


def run_pipeline(cfg: PipelineConfig, progress: bool = True) -> list[Path]:
    """Run (or resume) every planned run; return the record paths."""
    from .glue import finetune_and_evaluate

    cfg.validate()
    out = Path(cfg.out)
    model, tokenizer = load_model(cfg.model, device=cfg.scoring.get("device"))
    n_full = count_parameters(model.base_model)
    stored = stored_dtype(load_config(cfg.model))
    weights = f"stored as {stored}, upcast to float32" if stored and stored != "float32" else "float32"
    paths = []
    for task, imp, level, seed in planned_runs(cfg):
        path = record_path(out, task, imp, level, seed)
        paths.append(path)
        if record_done(path, cfg):
            logger.info("skip %s (done)", path)
            continue
        base = model
        if level and cfg.corpus.get("score_model", "pretrained") == "finetuned":
            base = finetuned_model(cfg, model, tokenizer, task, progress)
        scores = None if level == 0 else task_scores(cfg, base, tokenizer, task, imp, progress, seed=seed)
        small = model if level == 0 else prune(base, scores, level=level)
        extra = dict(importance=imp, level=level, intermediate_size=small.config.intermediate_size,
                     parameters=count_parameters(small.base_model), parameters_full=n_full,  # encoder only
                     scoring=expected_scoring(cfg, imp, seed) if level else None, config_note=cfg.note,
                     model_weights=weights)
        ft = {k: v for k, v in cfg.finetune.items()}
        result = finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=cfg.glue_dir, seed=seed,
                                       progress=progress, extra_provenance=extra, **ft)
        result.provenance["model"] = cfg.model
        result.save(path)
        logger.info("wrote %s: %s", path, result.metrics)
    return paths


def expected_scoring(cfg: PipelineConfig, importance: str, seed: int) -> dict[str, Any]:
    """The scoring inputs a pruned run records: corpus and scoring parameters, and for ``random``
    the seed of the draw (the run's seed, so that every seed prunes a different random set)."""
    return to_jsonable({**cfg.corpus, **cfg.scoring, **_random_draw(importance, seed)})


def _random_draw(importance: str, seed: int) -> dict[str, int]:
    """The draw input of ``random`` scores (the run's seed); empty for every other importance."""
    return {"random_seed": seed} if importance == "random" else {}


def task_scores(cfg: PipelineConfig, model, tokenizer, task: str, importance: str, progress: bool = True,
                seed: int = 0):
    """Scores of one importance for one task's corpus, cached under ``<out>/scores``; ``seed`` is the
    draw of ``random`` (other scores do not depend on it)."""
    c = cfg.corpus
    source = c.get("source_task") or task
    draw = _random_draw(importance, seed)
    score_seed = seed if draw else c.get("seed", 0)
    key = cache_key(model=cfg.model, source=source, importance=importance, corpus=c, scoring=_scoring_inputs(cfg),
                    finetune=cfg.finetune if c.get("score_model") == "finetuned" else None, **draw)
    suffix = f"-s{seed}" if draw else ""
    path = Path(cfg.out) / "scores" / f"{source}-{importance}{suffix}-n{c['samples']}-L{c['max_length']}-{key[:8]}.npz"
    if path.exists():
        try:
            return load_scores(path)[0]
        except ObceInputError as exc:
            logger.warning("%s; recomputing", exc)
    texts, labels = load_corpus(source, n=c["samples"], split=c.get("split", "train"), glue_dir=cfg.glue_dir,
                                seed=c.get("seed", 0), return_labels=True)
    s = cfg.scoring
    with Timer() as t:
        if importance == "taylor":
            from .baselines import taylor_scores

            scores = taylor_scores(model, tokenizer, texts, labels, max_length=c["max_length"],
                                   batch_size=s.get("batch_size", 32), device=s.get("device"))
        else:
            scores = score_neurons(model, tokenizer, texts, importance=importance, max_length=c["max_length"],
                                   representation=s.get("representation", "tokens"),
                                   method=s.get("method", "fast"), batch_size=s.get("batch_size", 32),
                                   device=s.get("device"), seed=score_seed,
                                   cache_dir=Path(cfg.out) / "cache", progress=progress)
    save_scores(path, scores, provenance(params={**c, **s, **draw}, seed=score_seed,
                                         device=s.get("device"),
                                         wall_time_s=t.seconds, model=cfg.model, task=source, importance=importance,
                                         corpus=corpus_hash(texts), n_texts=len(texts), key=key))
    return scores


def finetuned_model(cfg: PipelineConfig, model, tokenizer, task: str, progress: bool = True):
    """The pretrained model fine-tuned on the task (seed ``corpus.seed``), with its head; cached as a
    checkpoint under ``<out>/finetuned/`` keyed by the fine-tuning inputs."""
    from transformers import AutoModelForSequenceClassification

    from .glue import finetune_and_evaluate
    from .results import atomic_dir

    seed = cfg.corpus.get("seed", 0)
    key = cache_key(model=cfg.model, task=task, finetune=cfg.finetune, seed=seed)
    path = Path(cfg.out) / "finetuned" / f"{task}-{key[:8]}"
    if (path / "config.json").is_file():
        logger.info("reusing fine-tuned %s", path)
        return AutoModelForSequenceClassification.from_pretrained(path).eval()
    result = finetune_and_evaluate(model, task, tokenizer=tokenizer, glue_dir=cfg.glue_dir, seed=seed,
                                   progress=progress, keep_model=True, **cfg.finetune)
    with atomic_dir(path) as tmp:
        result.model.save_pretrained(tmp)
        result.save(tmp / CHECKPOINT_RECORD)
    return result.model.cpu()


def record_done(path: Path, cfg: PipelineConfig) -> bool:
    """Whether a record exists, is valid, and was made with this config's model, scoring and
    fine-tuning parameters (a record of other inputs is reported and rerun)."""
    from .report import random_draw, validate_record

    if not path.exists():
        return False
    try:
        rec = read_json(path)
        validate_record(rec, str(path))
    except ObceInputError as exc:
        logger.warning("%s: rerunning", exc)
        return False
    prov = rec["provenance"]
    ft = {k: v for k, v in prov.get("params", {}).items() if k in cfg.finetune}
    expected_ft = {k: cfg.finetune[k] for k in ft}
    scoring = prov.get("scoring")
    if isinstance(scoring, dict):  # records made before score_model existed all scored the pretrained model
        scoring = {"score_model": "pretrained", **scoring}
        if prov.get("importance") == "random" and "random_seed" not in scoring:
            scoring["random_seed"] = random_draw(rec)  # made before draws followed the run's seed
    same = (prov.get("model") == cfg.model and ft == to_jsonable(expected_ft) and set(ft) == set(cfg.finetune)
            and (prov.get("level") == 0
                 or scoring == expected_scoring(cfg, prov.get("importance"), prov.get("seed"))))
    if not same:
        logger.warning("%s was made with other inputs than %s: rerunning", path, cfg.out)
    return same


def _scoring_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    """The scoring parameters that change scores (not the device or batch size)."""
    return {k: v for k, v in cfg.scoring.items() if k not in ("device", "batch_size")}

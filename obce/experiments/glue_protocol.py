"""The GLUE comparison protocol: score -> prune -> fine-tune/evaluate, for tasks x importances x
levels x seeds, resumable.

Every finished GLUE run is one JSON record under ``<out>/glue/<task>/``; scores and fine-tuned models
are cached (:mod:`obce.experiments.cache`). A rerun skips records that exist, are valid and were made
with the same model, scoring and fine-tuning parameters (their provenance says so,
:func:`record_differences`), so a killed run continues where it stopped and a changed config reruns
what it changes. Level 0 (the unpruned model) is run once per task and seed, as importance "none".
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..data import get_task, load_corpus
from ..errors import ObceInputError
from ..files import read_json, to_jsonable
from ..methods import method_spec
from ..paths import output_lock
from ..models import check_device, check_max_length, load_config, load_model, source_fingerprint, stored_dtype
from ..pruning import LEVELS, count_parameters, prune
from ..results import random_draw, validate_record
from .cache import corpus_seed, finetuned_model, score_draws, task_scores
from .config import PipelineConfig
from .resume import differences, set_aside

#: The folder under a pipeline's ``out:`` that caches general distillations (one per student
#: architecture, shared by every task and seed; not committed).
GENERAL_CACHE = "general"

logger = logging.getLogger(__name__)

__all__ = ["RECORD_STATES", "check_records", "expected_method_corpus", "expected_scoring", "method_specs",
           "planned_runs", "record_differences", "record_done", "record_path", "record_state", "run_method",
           "run_pipeline"]


def record_path(out: str | os.PathLike, task: str, importance: str, level: int, seed: int) -> Path:
    """Where the GLUE record of one run lives."""
    name = "none" if level == 0 else importance
    return Path(out) / "glue" / task / f"{name}-L{level}-s{seed}.json"


def planned_runs(cfg: PipelineConfig) -> list[tuple[str, str, int, int]]:
    """(task, importance or method label, level, seed) of every run, level 0 once per task and seed;
    seed-major within each of the config's grids. A method with a size of its own (:func:`obce.methods.own_size`, e.g. KroneckerBERT at
    19x) runs once per task and seed whenever a level is planned, filed under the last level of
    :data:`obce.pruning.LEVELS` (its record says ``budget: "own"``), so that restricting the levels
    neither drops nor duplicates it."""
    from ..methods import own_size

    specs = method_specs(cfg)
    runs = []  # seed-major within each grid, so that an interrupted run leaves whole seeds of every task
    for grid in cfg.grid_list():
        levels = [lv for lv in grid["levels"] if lv != 0]
        for seed in grid["seeds"]:
            for task in grid["tasks"]:
                if 0 in grid["levels"]:
                    runs.append((task, "none", 0, seed))
                for imp in [*grid["importances"], *specs]:
                    own = imp in specs and own_size(specs[imp])
                    runs.extend((task, imp, lv, seed) for lv in ([LEVELS[-1]] if own and levels else levels))
    return list(dict.fromkeys(runs))  # a run two grids plan is one run


def method_specs(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The config's other compression methods by label, completed with their defaults."""
    specs = [method_spec(m) for m in cfg.methods]
    return {s["label"]: s for s in specs}


def run_pipeline(cfg: PipelineConfig, progress: bool = True, force: bool = False) -> list[Path]:
    """Run (or resume) every planned run; return the record paths.

    A record made with this config's inputs is kept and skipped; one made with other inputs stops
    the run before any compute unless ``force`` (then it is replaced); an unreadable one is set aside
    (renamed ``*.bad``) and rerun. Temporaries live under ``<out>/.tmp`` and those of a killed run are
    removed by the next one. One writer at a time: ``out`` is locked while this runs
    (:func:`obce.paths.output_lock`).
    """
    cfg.validate()
    check_device(cfg.scoring.get("device"))
    with output_lock(Path(cfg.out), "pipeline out:"):
        return _run(cfg, progress, force)


def _run(cfg: PipelineConfig, progress: bool, force: bool) -> list[Path]:
    """:func:`run_pipeline`'s work, under the lock of ``cfg.out``."""
    from .. import glue

    states = check_records(cfg, force=force)
    out = Path(cfg.out)
    work = out / ".tmp"
    model, tokenizer = load_model(cfg.model, device=cfg.scoring.get("device"))
    for task in cfg.all_of("tasks"):  # lengths the model cannot take fail here, before the first fine-tune
        source = get_task(cfg.corpus.get("source_task") or task)
        check_max_length(cfg.corpus["max_length"], model.config, tokenizer, pair=len(source.text_fields) == 2)
        check_max_length(cfg.finetune["max_length"], model.config, tokenizer,
                         pair=len(get_task(task).text_fields) == 2)
    from ..methods import check_fits

    specs = method_specs(cfg)
    for spec in specs.values():  # budgets a method cannot reach fail here, before any compute
        check_fits(spec, model, [lv for lv in cfg.all_of("levels") if lv != 0] or [1])
    n_full = count_parameters(model.base_model)
    fingerprint = source_fingerprint(cfg.model)
    stored = stored_dtype(load_config(cfg.model))
    weights = f"stored as {stored}, upcast to float32" if stored and stored != "float32" else "float32"
    paths = []
    for task, imp, level, seed in planned_runs(cfg):
        path = record_path(out, task, imp, level, seed)
        paths.append(path)
        state = states[task, imp, level, seed]
        if state == "done":
            logger.info("skip %s (done)", path)
            continue
        if state == "bad":
            set_aside(path, record_state(path, cfg)[1])
        elif state == "other":
            logger.warning("%s was made with other inputs: replacing it (--force)", path)
        if imp in specs:
            result = run_method(cfg, specs[imp], model, tokenizer, task, level, seed, progress, work)
            result.provenance.update(model=cfg.model, model_fingerprint=fingerprint, config_note=cfg.note,
                                     model_weights=weights)
            result.save(path)
            logger.info("wrote %s: %s", path, result.metrics)
            continue
        base = model
        if level and cfg.corpus.get("score_model", "pretrained") == "finetuned":
            base = finetuned_model(cfg, model, tokenizer, task, progress, seed=corpus_seed(cfg, seed))
        scores = None if level == 0 else task_scores(cfg, base, tokenizer, task, imp, progress, seed=seed)
        small = model if level == 0 else prune(base, scores, level=level)
        extra = dict(importance=imp, level=level, intermediate_size=small.config.intermediate_size,
                     parameters=count_parameters(small.base_model), parameters_full=n_full,  # encoder only
                     scoring=expected_scoring(cfg, imp, seed) if level else None, config_note=cfg.note,
                     model_weights=weights, model_fingerprint=fingerprint)
        ft = {k: v for k, v in cfg.finetune.items()}
        if ft.get("distill"):  # the teacher: the unpruned model fine-tuned on the task, cached
            ft["teacher"] = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
        result = glue.finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=cfg.glue_dir, seed=seed,
                                            progress=progress, extra_provenance=extra, work_parent=work, **ft)
        result.provenance["model"] = cfg.model
        result.save(path)
        logger.info("wrote %s: %s", path, result.metrics)
    return paths


def run_method(cfg: PipelineConfig, spec: dict[str, Any], model, tokenizer, task: str, level: int, seed: int,
               progress: bool, work: Path):
    """One run of another compression method (:func:`obce.methods.run`); a data-driven choice reads
    the run's scoring corpus, which the record names."""
    from ..methods import REGISTRY, method_score, run

    c = cfg.corpus
    method = REGISTRY[spec["name"]]
    texts = scores = None
    score = method_score(spec)
    if score:  # the pipeline's cached scores of the task's corpus, as an importance's run reads them
        base = model
        if c.get("score_model", "pretrained") == "finetuned":
            base = finetuned_model(cfg, model, tokenizer, task, progress, seed=corpus_seed(cfg, seed))
        scores = task_scores(cfg, base, tokenizer, task, score, progress, seed=seed)
    elif method.reads_corpus(spec["params"]):
        texts = load_corpus(c.get("source_task") or task, n=c["samples"], split=c.get("split", "train"),
                            glue_dir=cfg.glue_dir, seed=corpus_seed(cfg, seed))
    extra = dict(scoring=expected_method_corpus(cfg, spec, seed))
    teacher = None
    if method.distils(spec["params"]) or cfg.finetune.get("distill"):
        teacher = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
    return run(spec, model, tokenizer, task, level, seed=seed, finetune=cfg.finetune, texts=texts,
               glue_dir=cfg.glue_dir, progress=progress, work_parent=work, extra_provenance=extra, teacher=teacher,
               general_cache=Path(cfg.out) / GENERAL_CACHE, scores=scores)


def expected_method_corpus(cfg: PipelineConfig, spec: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """The corpus a method's run reads (``None``: the method reads none), as its record states it."""
    from ..methods import REGISTRY, method_score

    if method_score(spec):  # it prunes by a score: the scoring inputs, as an importance's record has them
        return expected_scoring(cfg, method_score(spec), seed)
    if not REGISTRY[spec["name"]].reads_corpus(spec["params"]):
        return None
    c = cfg.corpus
    return to_jsonable(dict(samples=c["samples"], max_length=cfg.finetune.get("max_length", 64),
                            split=c.get("split", "train"), source_task=c.get("source_task"),
                            corpus_seed=corpus_seed(cfg, seed)))


def expected_scoring(cfg: PipelineConfig, importance: str, seed: int) -> dict[str, Any]:
    """The scoring inputs a pruned run records: corpus and scoring parameters, and its draws: for
    ``random`` the seed of the neurons drawn (the run's seed, so that every seed prunes a different
    random set); with ``corpus.seed: run`` the seed of the corpus drawn (the run's seed too). A record
    whose ``scoring.seed`` is an integer scored every seed on that one corpus draw."""
    return to_jsonable({**cfg.corpus, **cfg.scoring, **score_draws(cfg, importance, seed)})


#: States of a planned run's record: absent, made with this config's inputs, with other inputs, unreadable.
RECORD_STATES = ("todo", "done", "other", "bad")


def record_state(path: Path, cfg: PipelineConfig) -> tuple[str, str]:
    """The state of one planned run's record (one of :data:`RECORD_STATES`) and why."""
    if not path.exists():
        return "todo", ""
    try:
        rec = read_json(path)
        validate_record(rec, str(path))
    except ObceInputError as exc:
        return "bad", str(exc)
    diff = record_differences(rec, cfg)
    return ("other", "; ".join(diff)) if diff else ("done", "")


def record_done(path: Path, cfg: PipelineConfig) -> bool:
    """Whether a record exists, is valid, and was made with this config's model, scoring and
    fine-tuning parameters."""
    return record_state(path, cfg)[0] == "done"


def record_differences(rec: dict, cfg: PipelineConfig) -> list[str]:
    """How a valid record's inputs differ from ``cfg``'s (empty: the same run)."""
    from ..methods import REGISTRY

    prov = rec["provenance"]
    diff = differences({k: prov.get(k) for k in ("model", "model_fingerprint")},
                       {"model": cfg.model, "model_fingerprint": source_fingerprint(cfg.model)})
    ft = {k: v for k, v in prov.get("params", {}).items() if k in cfg.finetune}
    diff += differences(ft, to_jsonable(cfg.finetune), prefix="finetune.")
    specs = method_specs(cfg)
    if prov.get("method") in REGISTRY and prov.get("level") != 0:
        spec = specs.get(prov.get("importance"))
        if spec is None:
            return diff + [f"method label {prov.get('importance')!r}: not among the config's methods"]
        want = {"method": spec["name"], "method_params": to_jsonable(spec["params"]),
                "scoring": expected_method_corpus(cfg, spec, prov.get("seed"))}
        have = {k: prov.get(k) for k in want}
        if isinstance(have["method_params"], dict):  # records made before general distillation existed had none
            have["method_params"] = {"general_steps": 0, **have["method_params"]}
        return diff + differences(have, want)
    if prov.get("level") != 0:
        scoring = prov.get("scoring")
        if isinstance(scoring, dict):  # records made before score_model existed all scored the pretrained model
            scoring = {"score_model": "pretrained", **scoring}
            if prov.get("importance") == "random" and "random_seed" not in scoring:
                scoring["random_seed"] = random_draw(rec)  # made before draws followed the run's seed
        expected = expected_scoring(cfg, prov.get("importance"), prov.get("seed"))
        if not isinstance(scoring, dict):
            diff.append("scoring: absent in the record")
        else:
            diff += differences(scoring, expected, prefix="scoring.")
    return diff


def check_records(cfg: PipelineConfig, force: bool = False) -> dict[tuple[str, str, int, int], str]:
    """The state of every planned run's record, checked before any compute.

    Raises
    ------
    ObceInputError
        Some records were made with other inputs and ``force`` is not set: they are never replaced
        silently (the message names them and the differences).
    """
    states, other = {}, []
    for run in planned_runs(cfg):
        path = record_path(cfg.out, *run)
        state, why = record_state(path, cfg)
        states[run] = state
        if state == "other":
            other.append(f"{path} ({why})")
    if other and not force:
        shown = "\n  ".join(other[:5]) + (f"\n  ... and {len(other) - 5} more" if len(other) > 5 else "")
        raise ObceInputError(f"{len(other)} record(s) under {cfg.out} were made with other inputs than this "
                             f"config; they are kept. Write to another `out:`, or pass --force to replace them:"
                             f"\n  {shown}")
    return states

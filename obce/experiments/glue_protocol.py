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

__all__ = ["RECORD_STATES", "check_records", "expected_method_corpus", "expected_scoring", "general_ahead",
           "method_inputs", "method_specs", "pipeline_graph", "planned_runs", "record_differences", "record_done",
           "record_path", "record_state", "run_cell", "run_method", "run_pipeline", "scoring_base"]


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


def run_pipeline(cfg: PipelineConfig, progress: bool = True, force: bool = False, executor: str = "sequential",
                 ray: "RaySettings | None" = None) -> list[Path]:
    """Run (or resume) every planned run; return the record paths.

    A record made with this config's inputs is kept and skipped; one made with other inputs stops
    the run before any compute unless ``force`` (then it is replaced); an unreadable one is set aside
    (renamed ``*.bad``) and rerun. Temporaries live under ``<out>/.tmp`` and those of a killed run are
    removed by the next one. One writer at a time: ``out`` is locked while this runs
    (:func:`obce.paths.output_lock`).

    Parameters
    ----------
    executor : ``"sequential"`` (one run after another in this process) or ``"ray"`` (the runs still to
        do as Ray tasks, their shared inputs computed once upstream: :mod:`obce.experiments.executor`)
    ray : where and how the Ray executor runs (default: a local Ray, one CPU per cell)
    """
    from ..data import require_full_data

    from .executor import resolve

    settings = resolve(executor, ray)
    cfg.validate()
    check_device(cfg.scoring.get("device"))
    with output_lock(Path(cfg.out), "pipeline out:"):
        require_full_data(cfg.glue_dir, f"{cfg.KIND} glue_dir")  # before any compute
        return _run_ray(cfg, progress, force, settings) if settings else _run(cfg, progress, force)


def _prepare(cfg: PipelineConfig) -> dict[str, Any]:
    """The pretrained model and what every run records of it, after the checks that must fail before any
    compute (lengths the model cannot take, budgets a method cannot reach)."""
    from ..methods import check_fits

    model, tokenizer = load_model(cfg.model, device=cfg.scoring.get("device"))
    for task in cfg.all_of("tasks"):  # lengths the model cannot take fail here, before the first fine-tune
        source = get_task(cfg.corpus.get("source_task") or task)
        check_max_length(cfg.corpus["max_length"], model.config, tokenizer, pair=len(source.text_fields) == 2)
        check_max_length(cfg.finetune["max_length"], model.config, tokenizer,
                         pair=len(get_task(task).text_fields) == 2)
    specs = method_specs(cfg)
    for spec in specs.values():  # budgets a method cannot reach fail here, before any compute
        check_fits(spec, model, [lv for lv in cfg.all_of("levels") if lv != 0] or [1])
    stored = stored_dtype(load_config(cfg.model))
    return dict(model=model, tokenizer=tokenizer, specs=specs, n_full=count_parameters(model.base_model),
                fingerprint=source_fingerprint(cfg.model),
                weights=f"stored as {stored}, upcast to float32" if stored and stored != "float32" else "float32")


def _run(cfg: PipelineConfig, progress: bool, force: bool) -> list[Path]:
    """:func:`run_pipeline`'s work, one run after another, under the lock of ``cfg.out``."""
    states = check_records(cfg, force=force)
    ctx = _prepare(cfg)
    paths = []
    for run in planned_runs(cfg):
        path = record_path(cfg.out, *run)
        paths.append(path)
        state = states[run]
        if state == "done":
            logger.info("skip %s (done)", path)
            continue
        if state == "bad":
            set_aside(path, record_state(path, cfg)[1])
        elif state == "other":
            logger.warning("%s was made with other inputs: replacing it (--force)", path)
        run_cell(cfg, ctx, run, progress)
    return paths


def run_cell(cfg: PipelineConfig, ctx: dict[str, Any], run: tuple[str, str, int, int], progress: bool = True) -> Path:
    """One planned run ``(task, importance or method label, level, seed)``: compress, fine-tune, evaluate,
    and write its record atomically; ``ctx`` is :func:`_prepare`'s."""
    from .. import glue

    task, imp, level, seed = run
    model, tokenizer, specs = ctx["model"], ctx["tokenizer"], ctx["specs"]
    path = record_path(cfg.out, *run)
    work = Path(cfg.out) / ".tmp"
    if imp in specs:
        result = run_method(cfg, specs[imp], model, tokenizer, task, level, seed, progress, work)
        result.provenance.update(model=cfg.model, model_fingerprint=ctx["fingerprint"], config_note=cfg.note,
                                 model_weights=ctx["weights"])
        result.save(path)
        logger.info("wrote %s: %s", path, result.metrics)
        return path
    base = scoring_base(cfg, model, tokenizer, task, seed, progress) if level else model
    scores = None if level == 0 else task_scores(cfg, base, tokenizer, task, imp, progress, seed=seed)
    small = model if level == 0 else prune(base, scores, level=level)
    extra = dict(importance=imp, level=level, intermediate_size=small.config.intermediate_size,
                 parameters=count_parameters(small.base_model), parameters_full=ctx["n_full"],  # encoder only
                 scoring=expected_scoring(cfg, imp, seed) if level else None, config_note=cfg.note,
                 model_weights=ctx["weights"], model_fingerprint=ctx["fingerprint"])
    ft = glue.protocol_finetune(cfg.finetune)
    if ft.get("distill"):  # the teacher: the unpruned model fine-tuned on the task, cached
        ft["teacher"] = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
    result = glue.finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=cfg.glue_dir, seed=seed,
                                        progress=progress, extra_provenance=extra, work_parent=work, **ft)
    result.provenance["model"] = cfg.model
    result.save(path)
    logger.info("wrote %s: %s", path, result.metrics)
    return path


def scoring_base(cfg: PipelineConfig, model, tokenizer, task: str, seed: int, progress: bool = True):
    """The model a run's scores read: the pretrained one, or with ``corpus.score_model: finetuned`` the
    one fine-tuned on the task with the run's corpus seed (cached)."""
    if cfg.corpus.get("score_model", "pretrained") == "finetuned":
        return finetuned_model(cfg, model, tokenizer, task, progress, seed=corpus_seed(cfg, seed))
    return model


def method_inputs(cfg: PipelineConfig, spec: dict[str, Any], model, tokenizer, task: str, seed: int,
                  progress: bool = True, teacher: bool = True) -> dict[str, Any]:
    """What a method's run reads besides the pretrained model: ``texts`` (the scoring corpus, for a
    data-driven choice), ``scores`` (the pipeline's cached scores of the task's corpus, for a method
    that prunes FFN neurons by a score) and ``teacher`` (the unpruned model fine-tuned on the task, for
    a method that distils; with ``teacher=False`` never)."""
    from ..methods import REGISTRY, method_score

    c = cfg.corpus
    method = REGISTRY[spec["name"]]
    texts = scores = fine = None
    score = method_score(spec)
    if score:  # the pipeline's cached scores of the task's corpus, as an importance's run reads them
        scores = task_scores(cfg, scoring_base(cfg, model, tokenizer, task, seed, progress), tokenizer, task, score,
                             progress, seed=seed)
    elif method.reads_corpus(spec["params"]):
        texts = load_corpus(c.get("source_task") or task, n=c["samples"], split=c.get("split", "train"),
                            glue_dir=cfg.glue_dir, seed=corpus_seed(cfg, seed))
    if teacher and (method.distils(spec["params"]) or cfg.finetune.get("distill")):
        fine = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
    return dict(texts=texts, scores=scores, teacher=fine)


def run_method(cfg: PipelineConfig, spec: dict[str, Any], model, tokenizer, task: str, level: int, seed: int,
               progress: bool, work: Path):
    """One run of another compression method (:func:`obce.methods.run`); a data-driven choice reads
    the run's scoring corpus, which the record names."""
    from .. import glue
    from ..methods import run

    inputs = method_inputs(cfg, spec, model, tokenizer, task, seed, progress)
    extra = dict(scoring=expected_method_corpus(cfg, spec, seed))
    return run(spec, model, tokenizer, task, level, seed=seed, finetune=glue.protocol_finetune(cfg.finetune),
               glue_dir=cfg.glue_dir,
               progress=progress, work_parent=work, extra_provenance=extra,
               general_cache=Path(cfg.out) / GENERAL_CACHE, **inputs)


def general_ahead(cfg: PipelineConfig, spec: dict[str, Any], model, tokenizer, task: str, level: int, seed: int,
                  progress: bool = False) -> dict[str, Any]:
    """The general distillation a method's run ``(task, label, level, seed)`` will find in the cache,
    computed ahead of it (the Ray executor's upstream task, shared by the runs of one student)."""
    from ..methods import compress, general_stage, method_budget

    inputs = method_inputs(cfg, spec, model, tokenizer, task, seed, progress, teacher=False)
    max_length = cfg.finetune.get("max_length", 64)
    small, _ = compress(spec, model, method_budget(spec, model, level), tokenizer=tokenizer, texts=inputs["texts"],
                        seed=seed, scores=inputs["scores"], max_length=max_length)
    return general_stage(small, model, tokenizer, int(spec["params"]["general_steps"]), glue_dir=cfg.glue_dir,
                         cache_dir=Path(cfg.out) / GENERAL_CACHE, max_length=max_length, progress=progress)


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
    if cfg.finetune.get("precision") is not None:  # records name it beside params (older ones by bf16)
        ft["precision"] = prov.get("precision") or ("bf16" if prov.get("params", {}).get("bf16") else "fp32")
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


# The Ray executor (:mod:`obce.experiments.executor`): the runs still to do as cells, their shared
# inputs as upstream tasks keyed as their caches are.

def _run_ray(cfg: PipelineConfig, progress: bool, force: bool, settings) -> list[Path]:
    """:func:`run_pipeline`'s work as Ray tasks, under the lock of ``cfg.out``: the driver plans, sets
    unreadable records aside and waits; the cells write their records."""
    from .executor import ray_cluster, run_graph, shipped

    states = check_records(cfg, force=force)
    runs = planned_runs(cfg)
    with ray_cluster(settings):
        ctx = _prepare(cfg)
        todo = []
        for run in runs:
            state = states[run]
            if state == "done":
                continue
            if state == "bad":
                path = record_path(cfg.out, *run)
                set_aside(path, record_state(path, cfg)[1])
            todo.append(run)
        logger.info("%d runs planned, %d to do", len(runs), len(todo))
        if todo:
            run_graph(pipeline_graph(shipped(cfg), todo, ctx["specs"], settings.cpus_per_cell, settings.gpus_per_cell,
                                     force),
                      progress=progress, desc=f"{cfg.out}: runs")
    return [record_path(cfg.out, *r) for r in runs]


def pipeline_graph(cfg: PipelineConfig, todo: list[tuple[str, str, int, int]], specs: dict[str, dict[str, Any]],
                   cpus: float = 1.0, gpus: float = 0.0, force: bool = False) -> dict:
    """The Ray graph of the runs ``todo``: a cell per run (key ``("run", task, label, level, seed)``)
    after its shared inputs, each one node however many cells need it: a task's scores
    (``("scores", source task, importance, draw)``, as :func:`obce.experiments.cache.task_scores`
    keys them), a teacher fine-tune (``("teacher", task, seed)``) and a general distillation
    (``("general", label, level)``, or with the scores' key for a method whose student depends on them).

    Returns
    -------
    dict, key -> :class:`obce.experiments.executor.Node`
    """
    import json

    from ..methods import REGISTRY, method_score
    from .executor import Node

    nodes: dict = {}
    finetuned_scores = cfg.corpus.get("score_model", "pretrained") == "finetuned"

    def teacher(task: str, seed: int) -> tuple:
        key = ("teacher", task, seed)
        nodes.setdefault(key, Node(_teacher_task, (cfg, task, seed), cell=False, cpus=cpus, gpus=gpus,
                                   label=f"teacher {task} s{seed}"))
        return key

    def scores(task: str, imp: str, seed: int) -> tuple:
        draw = json.dumps(to_jsonable(score_draws(cfg, imp, seed)), sort_keys=True)
        deps = [teacher(task, corpus_seed(cfg, seed))] if finetuned_scores else []
        key = ("scores", cfg.corpus.get("source_task") or task, imp, draw,
               corpus_seed(cfg, seed) if finetuned_scores else None)
        nodes.setdefault(key, Node(_scores_task, (cfg, task, imp, seed), deps=deps, cell=False, cpus=cpus,
                                   gpus=gpus, label=f"scores {task} {imp}"))
        return key

    for run in todo:
        task, imp, level, seed = run
        deps: list = []
        if level and imp not in specs:
            deps.append(scores(task, imp, seed))
            if cfg.finetune.get("distill"):
                deps.append(teacher(task, seed))
        elif level:
            spec = specs[imp]
            method = REGISTRY[spec["name"]]
            score_key = scores(task, method_score(spec), seed) if method_score(spec) else None
            if score_key:
                deps.append(score_key)
            if method.distils(spec["params"]) or cfg.finetune.get("distill"):
                deps.append(teacher(task, seed))
            if spec["params"]["general_steps"]:
                key = ("general", imp, level, *([score_key] if score_key else []))
                nodes.setdefault(key, Node(_general_task, (cfg, imp, task, level, seed), cell=False,
                                           deps=[score_key] if score_key else [], cpus=cpus, gpus=gpus,
                                           label=f"general {imp}"))
                deps.append(key)
        nodes[("run", *run)] = Node(_cell_task, (cfg, run, force), deps=deps, cpus=cpus, gpus=gpus,
                                    label=f"{task} {imp} L{level} s{seed}")
    return nodes


#: The pretrained model of the config a Ray worker last ran, kept between the tasks it runs.
_WORKER: dict[tuple, dict[str, Any]] = {}


def _worker_context(cfg: PipelineConfig) -> dict[str, Any]:
    key = (cfg.model, cfg.scoring.get("device"), repr(cfg.methods))
    if key not in _WORKER:
        _WORKER.clear()
        _WORKER[key] = _prepare(cfg)
    return _WORKER[key]


def _teacher_task(cfg: PipelineConfig, task: str, seed: int) -> str:
    ctx = _worker_context(cfg)
    finetuned_model(cfg, ctx["model"], ctx["tokenizer"], task, False, seed=seed)
    return f"teacher {task} s{seed}"


def _scores_task(cfg: PipelineConfig, task: str, imp: str, seed: int, *_deps) -> str:
    ctx = _worker_context(cfg)
    base = scoring_base(cfg, ctx["model"], ctx["tokenizer"], task, seed, False)
    task_scores(cfg, base, ctx["tokenizer"], task, imp, False, seed=seed)
    return f"scores {task} {imp}"


def _general_task(cfg: PipelineConfig, label: str, task: str, level: int, seed: int, *_deps) -> str:
    ctx = _worker_context(cfg)
    info = general_ahead(cfg, ctx["specs"][label], ctx["model"], ctx["tokenizer"], task, level, seed)
    return info["key"]


def _cell_task(cfg: PipelineConfig, run: tuple[str, str, int, int], force: bool, *_deps) -> str:
    """One cell on a Ray worker: re-check the record (a retry or a second driver may have written it),
    then run it (:func:`run_cell`)."""
    path = record_path(cfg.out, *run)
    state, why = record_state(path, cfg)
    if state == "done" or (state == "other" and not force):
        return str(path)
    if state == "bad":
        set_aside(path, why)
    run_cell(cfg, _worker_context(cfg), run, progress=False)
    return str(path)

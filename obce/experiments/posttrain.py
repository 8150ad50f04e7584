"""Retraining-free pruning: prune a model already fine-tuned on the task, compensate, evaluate on dev.

The protocol modern structured pruning is judged by (Kwon et al. 2022; FLAP): fine-tune the unpruned
model once per task and seed (cached), then for every corpus draw, importance score, keep fraction and
compensation, score the fine-tuned model on a corpus drawn from the task's training set, prune it,
compensate (:mod:`obce.compensation`) and evaluate on dev. No cell trains, so a cell costs seconds.

One table per protocol: ``<out>/posttrain.jsonl`` holds one row per cell (appended as cells finish; a
rerun skips the cells it holds, so an interrupted run resumes), ``<out>/runs.jsonl`` the provenance
of each run that wrote rows, once per run. A table belongs to one set of inputs (model, fine-tuning,
corpus, evaluation): another config writing into it is refused unless ``force``.
"""
from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..compensation import checked_refit, compensate, ffn_statistics
from ..data import get_task, load_corpus
from ..errors import ObceInputError
from ..files import Timer, corpus_hash
from ..models import ffn_layers, load_model, source_fingerprint
from ..paths import output_lock
from ..pruning import LEVEL_FRACTIONS, count_parameters, prune_ffn_neurons, select_neurons
from ..results import POSTTRAIN_RUNS, POSTTRAIN_TABLE, append_jsonl, provenance, read_jsonl
from ..scoring import GRADIENT_SCORES, gradient_scores, score_neurons
from .cache import cached_finetune
from .config import PostTrainConfig
from .resume import differences

logger = logging.getLogger(__name__)

__all__ = ["HELD_OUT", "HELD_OUT_SEED", "cell_key", "cells", "check_table", "evaluate_draw", "run_posttrain"]

#: The checked refit's held-out texts: this many training texts of the task, drawn with the seed
#: ``HELD_OUT_SEED + draw`` (another draw than the corpus's).
HELD_OUT, HELD_OUT_SEED = 128, 1000


def cells(cfg: PostTrainConfig) -> Iterator[tuple]:
    """Every planned cell ``(task, seed, draw, importance, keep_fraction, compensation)``, the unpruned
    model once per task and seed as ``(task, seed, -1, "none", 1.0, "none")``; over the config's grids,
    each cell once."""
    seen = set()
    for g in cfg.grid_list():
        for task in g["tasks"]:
            for seed in g["seeds"]:
                planned = [(task, seed, -1, "none", 1.0, "none")]
                planned += [(task, seed, draw, imp, float(f), comp) for draw in g["draws"] for imp in g["importances"]
                            for f in g["keep_fractions"] for comp in g["compensations"]]
                for cell in planned:
                    if cell not in seen:  # a cell two grids plan is one cell
                        seen.add(cell)
                        yield cell


def cell_key(cell: tuple) -> str:
    """The key of a cell in the table (``task/s<seed>/d<draw>/<score>/<keep fraction>/<compensation>``)."""
    task, seed, draw, imp, f, comp = cell
    return f"{task}/s{seed}/d{draw}/{imp}/{f:.4f}/{comp}"


def check_table(cfg: PostTrainConfig, force: bool = False) -> set[str]:
    """The cells the table already holds for this config's inputs (its inputs key and the model's
    fingerprint, :func:`obce.models.source_fingerprint`); raises when the table was written with other
    inputs, unless ``force`` (then this run's rows are added beside them, and readers keep the latest
    run's inputs only: :func:`obce.results.posttrain_rows`)."""
    out = Path(cfg.out)
    runs = read_jsonl(out / POSTTRAIN_RUNS)
    fingerprint = source_fingerprint(cfg.model)
    mine = {r.get("run") for r in runs if r.get("inputs_key") == cfg.inputs_key()
            and r.get("model_fingerprint") == fingerprint}
    other = [r for r in runs if r.get("run") not in mine]
    if other and not force:
        current = cfg.to_dict()
        theirs = other[-1].get("config") or {}
        diff = [d for key in ("model", "finetune", "corpus", "eval")
                for d in (differences(theirs.get(key) or {}, current[key], prefix=f"{key}.")
                          if isinstance(current[key], dict) else differences({key: theirs.get(key)}, {key: current[key]}))]
        diff += differences({"model_fingerprint": other[-1].get("model_fingerprint")}, {"model_fingerprint": fingerprint})
        raise ObceInputError(f"{out / POSTTRAIN_TABLE} was written with other inputs (model, its weights, fine-tuning, "
                             f"corpus or evaluation parameters) than this config ({'; '.join(diff) or 'another inputs key'}); "
                             f"its rows are kept. Write to another `out:`, or pass --force to add rows of these inputs "
                             f"beside them (readers then keep the latest inputs' rows only)")
    return {r["cell"] for r in read_jsonl(out / POSTTRAIN_TABLE) if r.get("run") in mine}


def run_posttrain(cfg: PostTrainConfig, progress: bool = True, force: bool = False, executor: str = "sequential",
                  ray: "RaySettings | None" = None) -> Path:
    """Run (or resume) every planned cell; return the table's path. One writer at a time: the table's
    directory is locked while this runs (:func:`obce.paths.output_lock`).

    Parameters
    ----------
    executor : ``"sequential"``, or ``"ray"``: each (task, seed, draw)'s cells as one Ray task after the
        (task, seed)'s fine-tune, computed once upstream; the driver appends the rows they return
        (:mod:`obce.experiments.executor`)
    ray : where and how the Ray executor runs (default: a local Ray, one CPU per task)
    """
    from ..data import require_full_data

    from .executor import resolve

    settings = resolve(executor, ray)
    cfg.validate()
    out = Path(cfg.out)
    with output_lock(out, "posttrain out:"):
        require_full_data(cfg.glue_dir, f"{cfg.KIND} glue_dir")  # before any compute
        return _run(cfg, out, progress, force, settings)


def _run(cfg: PostTrainConfig, out: Path, progress: bool, force: bool, ray=None) -> Path:
    done = check_table(cfg, force)
    out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells(cfg) if cell_key(c) not in done]
    logger.info("%d cells planned, %d done", len(todo) + len(done), len(done))
    if not todo:
        return out / POSTTRAIN_TABLE
    if ray is not None:
        from .executor import ray_cluster

        with ray_cluster(ray):  # joined (and its resources checked) before the run is entered in the table
            return _run_ray(cfg, out, todo, _start_run(cfg, out), ray, progress)
    run_id = _start_run(cfg, out)
    base, tokenizer = load_model(cfg.model)

    def emit(row: dict) -> None:
        append_jsonl(out / POSTTRAIN_TABLE, row)

    for task in dict.fromkeys(t for t, *_ in todo):
        for seed in dict.fromkeys(s for t, s, *_ in todo if t == task):
            model = cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, out, progress)
            dev = _dev(cfg, tokenizer, task, seed)
            mine = [cell for cell in todo if cell[:2] == (task, seed)]
            for draw in dict.fromkeys(d for _, _, d, *_ in mine):
                evaluate_draw(cfg, [cell for cell in mine if cell[2] == draw], model, tokenizer, dev, out, run_id, emit)
    return out / POSTTRAIN_TABLE


def _start_run(cfg: PostTrainConfig, out: Path) -> str:
    """Enter this run's provenance in ``runs.jsonl``; return its id."""
    run_id = uuid.uuid4().hex[:12]
    fingerprint = source_fingerprint(cfg.model)
    append_jsonl(out / POSTTRAIN_RUNS, {"run": run_id, "inputs_key": cfg.inputs_key(), "model_fingerprint": fingerprint,
                                        "config": cfg.to_dict(),
                                        "provenance": provenance(params=cfg.to_dict(), model=cfg.model,
                                                                 model_fingerprint=fingerprint)})
    return run_id


def _dev(cfg: PostTrainConfig, tokenizer, task: str, seed: int):
    """The dev set the cells of (task, seed) evaluate on: the fine-tuning's ``max_eval_samples`` holds
    here too (the same seeded subset)."""
    from ..glue import encode_dev

    return encode_dev(task, tokenizer, cfg.finetune["max_length"], cfg.glue_dir,
                      max_samples=cfg.finetune.get("max_eval_samples"), seed=seed)


def evaluate_draw(cfg: PostTrainConfig, here: list[tuple], model, tokenizer, dev, out: Path, run_id: str,
                  emit) -> None:
    """Every cell of one (task, seed, draw) on the model fine-tuned on the task: score it on the draw's
    corpus, prune, compensate, evaluate; ``emit(row)`` receives each cell's table row as it ends (the
    sequential path appends it at once, a Ray task returns them to the driver)."""
    c = cfg.corpus
    task, _, draw = here[0][:3]
    full_neurons = ffn_layers(model)[0][0].out_features
    if draw < 0:
        _evaluate_cells(cfg, here, model, model, None, tokenizer, dev, out, run_id, full_neurons, {}, emit=emit)
        return
    texts, labels = load_corpus(task, n=c["samples"], split="train", glue_dir=cfg.glue_dir, seed=draw,
                                return_labels=True)
    stats = held = None
    if any(cell[5] != "none" for cell in here):
        stats = ffn_statistics(model, tokenizer, texts, max_length=c["max_length"])
    if any(cell[5] == "refit" for cell in here):  # the check's texts: another draw of the training set
        held = load_corpus(task, n=HELD_OUT, split="train", glue_dir=cfg.glue_dir, seed=HELD_OUT_SEED + draw)
    for imp in dict.fromkeys(cell[3] for cell in here):
        with Timer() as t:
            scores = _scores(imp, model, tokenizer, texts, labels, c["max_length"], draw, out)
        extra = {"score_s": round(t.seconds, 2), "corpus": corpus_hash(texts)}
        _evaluate_cells(cfg, [cell for cell in here if cell[3] == imp], model, scores, stats, tokenizer,
                        dev, out, run_id, full_neurons, extra, held, emit=emit)


def _run_ray(cfg: PostTrainConfig, out: Path, todo: list[tuple], run_id: str, settings, progress: bool) -> Path:
    """:func:`run_posttrain`'s work as Ray tasks (inside :func:`obce.experiments.executor.ray_cluster`): a
    fine-tune per (task, seed) upstream, one task per (task, seed, draw) returning its rows, which the
    driver appends as they arrive."""
    from .executor import Node, run_graph, shipped

    cpus, gpus = settings.cpus_per_cell, settings.gpus_per_cell
    cfg = shipped(cfg)
    nodes: dict = {}
    for task, seed in dict.fromkeys(cell[:2] for cell in todo):
        nodes[("finetune", task, seed)] = Node(_finetune_task, (cfg, task, seed), cell=False, cpus=cpus,
                                               gpus=gpus, label=f"finetune {task} s{seed}")
    for task, seed, draw in dict.fromkeys(cell[:3] for cell in todo):
        here = [cell for cell in todo if cell[:3] == (task, seed, draw)]
        nodes[("draw", task, seed, draw)] = Node(_draw_task, (cfg, here, run_id), deps=[("finetune", task, seed)],
                                                 cpus=cpus, gpus=gpus, label=f"{task} s{seed} d{draw}")

    def append(_key, rows: list[dict]) -> None:
        for row in rows:
            append_jsonl(out / POSTTRAIN_TABLE, row)

    run_graph(nodes, on_result=append, progress=progress, desc=f"{out}: cells by draw")
    return out / POSTTRAIN_TABLE


_WORKER: dict[str, Any] = {}


def _worker_model(cfg: PostTrainConfig):
    if _WORKER.get("model") != cfg.model:
        _WORKER.clear()
        _WORKER.update(model=cfg.model, loaded=load_model(cfg.model))
    return _WORKER["loaded"]


def _finetune_task(cfg: PostTrainConfig, task: str, seed: int) -> str:
    base, tokenizer = _worker_model(cfg)
    cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, Path(cfg.out), False)
    return f"{task} s{seed}"


def _draw_task(cfg: PostTrainConfig, here: list[tuple], run_id: str, *_deps) -> list[dict]:
    """One (task, seed, draw)'s cells on a Ray worker; their rows, for the driver to append."""
    base, tokenizer = _worker_model(cfg)
    task, seed = here[0][:2]
    out = Path(cfg.out)
    model = cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, out, False)
    rows: list[dict] = []
    evaluate_draw(cfg, here, model, tokenizer, _dev(cfg, tokenizer, task, seed), out, run_id, rows.append)
    return rows


def _scores(importance: str, model, tokenizer, texts, labels, max_length: int, draw: int, out: Path) -> np.ndarray:
    if importance in GRADIENT_SCORES:
        return gradient_scores(importance, model, tokenizer, texts, labels, max_length=max_length)
    return score_neurons(model, tokenizer, texts, importance=importance, max_length=max_length, seed=draw,
                         cache_dir=out / "cache", progress=False)


def _evaluate_cells(cfg, todo, model, scores, stats, tokenizer, dev, out, run_id, full_neurons, extra,
                    held=None, emit=None) -> None:
    from ..glue import dev_predictions, metrics_of, prediction_summary, undefined_metrics

    for cell in todo:
        task, seed, draw, imp, f, comp = cell
        more: dict = {}
        with Timer() as t:
            if imp == "none":
                small, size = model, full_neurons
            else:
                keep = select_neurons(scores, keep_fraction=f)
                if comp == "refit":
                    small, check = checked_refit(prune_ffn_neurons(model, keep),
                                                 compensate(prune_ffn_neurons(model, keep), model, keep, stats, "ls"),
                                                 model, tokenizer, held, cfg.corpus["max_length"])
                    more = check
                else:
                    small = compensate(prune_ffn_neurons(model, keep), model, keep, stats, method=comp)
                size = keep.shape[1]
            predictions = dev_predictions(small, tokenizer, task, dev, batch_size=cfg.eval.get("batch_size", 64))
            metrics = metrics_of(task, dev, predictions)
        first = next(iter(dev))
        summary = prediction_summary(task, predictions[first])
        row = {"cell": cell_key(cell), "task": task, "seed": seed, "draw": draw, "importance": imp,
               "keep_fraction": f, "level": LEVEL_FRACTIONS.get(f, 0 if imp == "none" else None),
               "compensation": comp, "intermediate_size": int(size),
               "parameters": count_parameters(small.base_model), "metrics": metrics,
               "main": metrics[get_task(task).main_metric], "degenerate": summary["degenerate"],
               "eval_s": round(t.seconds, 2), **extra, **more, "run": run_id, "inputs_key": cfg.inputs_key()}
        undefined = undefined_metrics(metrics, predictions[first], dev[first][1])
        if undefined:
            row["metrics_undefined"] = undefined
        emit(row)
        logger.info("%s: %s = %s", row["cell"], get_task(task).main_metric, row["main"])

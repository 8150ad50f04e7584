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
from typing import Iterator

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

__all__ = ["HELD_OUT", "HELD_OUT_SEED", "cell_key", "cells", "check_table", "run_posttrain"]

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


def run_posttrain(cfg: PostTrainConfig, progress: bool = True, force: bool = False) -> Path:
    """Run (or resume) every planned cell; return the table's path. One writer at a time: the table's
    directory is locked while this runs (:func:`obce.paths.output_lock`)."""
    cfg.validate()
    out = Path(cfg.out)
    with output_lock(out, "posttrain out:"):
        return _run(cfg, out, progress, force)


def _run(cfg: PostTrainConfig, out: Path, progress: bool, force: bool) -> Path:
    from ..glue import encode_dev

    done = check_table(cfg, force)
    out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells(cfg) if cell_key(c) not in done]
    logger.info("%d cells planned, %d done", len(todo) + len(done), len(done))
    if not todo:
        return out / POSTTRAIN_TABLE
    run_id = uuid.uuid4().hex[:12]
    fingerprint = source_fingerprint(cfg.model)
    append_jsonl(out / POSTTRAIN_RUNS, {"run": run_id, "inputs_key": cfg.inputs_key(), "model_fingerprint": fingerprint,
                                        "config": cfg.to_dict(),
                                        "provenance": provenance(params=cfg.to_dict(), model=cfg.model,
                                                                 model_fingerprint=fingerprint)})
    base, tokenizer = load_model(cfg.model)
    full_neurons = ffn_layers(base)[0][0].out_features
    c = cfg.corpus
    for task in dict.fromkeys(t for t, *_ in todo):
        for seed in dict.fromkeys(s for t, s, *_ in todo if t == task):
            # the fine-tuning's max_eval_samples holds here too: the same seeded subset of dev
            dev = encode_dev(task, tokenizer, cfg.finetune["max_length"], cfg.glue_dir,
                             max_samples=cfg.finetune.get("max_eval_samples"), seed=seed)
            model = cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, out, progress)
            mine = [cell for cell in todo if cell[:2] == (task, seed)]
            for draw in dict.fromkeys(d for _, _, d, *_ in mine):
                here = [cell for cell in mine if cell[2] == draw]
                if draw < 0:
                    _evaluate_cells(cfg, here, model, model, None, tokenizer, dev, out, run_id, full_neurons, {})
                    continue
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
                                    dev, out, run_id, full_neurons, extra, held)
    return out / POSTTRAIN_TABLE


def _scores(importance: str, model, tokenizer, texts, labels, max_length: int, draw: int, out: Path) -> np.ndarray:
    if importance in GRADIENT_SCORES:
        return gradient_scores(importance, model, tokenizer, texts, labels, max_length=max_length)
    return score_neurons(model, tokenizer, texts, importance=importance, max_length=max_length, seed=draw,
                         cache_dir=out / "cache", progress=False)


def _evaluate_cells(cfg, todo, model, scores, stats, tokenizer, dev, out, run_id, full_neurons, extra,
                    held=None) -> None:
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
        append_jsonl(Path(out) / POSTTRAIN_TABLE, row)
        logger.info("%s: %s = %s", row["cell"], get_task(task).main_metric, row["main"])

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

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .compensation import COMPENSATIONS, compensate, ffn_statistics
from .data import check_corpus_size, get_task, load_corpus
from .errors import ObceInputError
from .models import ffn_layers, load_model
from .pipeline import ConfigFile, _expect, cached_finetune
from .pruning import count_parameters, keep_fraction_of, prune_ffn_neurons, select_neurons
from .results import Timer, cache_key, corpus_hash, provenance, to_jsonable
from .scoring import GRADIENT_SCORES, IMPORTANCES, gradient_scores, score_neurons

logger = logging.getLogger(__name__)

TABLE, RUNS = "posttrain.jsonl", "runs.jsonl"
#: the levels as keep fractions: 1 - k/4
LEVEL_FRACTIONS = {keep_fraction_of(level): level for level in (1, 2, 3)}


@dataclass
class PostTrainConfig(ConfigFile):
    """Parameters of a retraining-free pruning run (``obce posttrain --config FILE.yaml`` reads these)."""

    model: str = "minilm"
    out: str = "results/posttrain"
    glue_dir: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["rte"])
    seeds: list[int] = field(default_factory=lambda: [0])
    draws: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    importances: list[str] = field(default_factory=lambda: ["merge_radius", "activation_variance", "random"])
    keep_fractions: list[float] = field(default_factory=lambda: [0.75, 0.5, 0.25])
    compensations: list[str] = field(default_factory=lambda: ["none", "bias", "ls"])
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=64))
    finetune: dict[str, Any] = field(default_factory=lambda: dict(epochs=3, lr=5e-5, batch_size=32, max_length=64,
                                                                  max_train_samples=None, max_eval_samples=None))
    eval: dict[str, Any] = field(default_factory=lambda: dict(batch_size=64))
    note: str | None = None

    KIND = "posttrain config"

    def validate(self) -> None:
        """Check every key, types included, before any compute."""
        from .data import resolve_glue_dir
        from .pipeline import PipelineConfig

        _expect(self.model, str, "model")
        _expect(self.out, str, "out")
        if self.glue_dir is not None:
            resolve_glue_dir(self.glue_dir)
        for key, kind in (("tasks", str), ("seeds", int), ("draws", int), ("importances", str),
                          ("keep_fractions", (int, float)), ("compensations", str)):
            values = getattr(self, key)
            if not isinstance(values, list) or not values:
                raise ObceInputError(f"posttrain config {key}: {values!r}: expected a non-empty list")
            for v in values:
                _expect(v, kind, f"{key} item")
        for t in self.tasks:
            get_task(t)
        known = (*IMPORTANCES, *GRADIENT_SCORES)
        bad = [i for i in self.importances if i not in known]
        if bad:
            raise ObceInputError(f"importances {bad}: expected some of {known}")
        bad = [c for c in self.compensations if c not in COMPENSATIONS]
        if bad:
            raise ObceInputError(f"compensations {bad}: expected some of {COMPENSATIONS}")
        bad = [f for f in self.keep_fractions if not 0 < f < 1]
        if bad:
            raise ObceInputError(f"keep_fractions {bad}: expected values in (0, 1)")
        check_corpus_size(self.corpus.get("samples"))
        _expect(self.corpus.get("max_length"), int, "corpus.max_length", minimum=1)
        _expect(self.eval.get("batch_size", 64), int, "eval.batch_size", minimum=1)
        # the fine-tuning keys are the pipeline's, checked the same way
        PipelineConfig.from_dict({"out": self.out, "finetune": self.finetune, "tasks": self.tasks})

    def inputs_key(self) -> str:
        """A key of the inputs every cell of the table shares (not the grid of cells)."""
        return cache_key(model=self.model, finetune=self.finetune, corpus=self.corpus, eval=self.eval)


def cells(cfg: PostTrainConfig) -> Iterator[tuple]:
    """Every planned cell ``(task, seed, draw, importance, keep_fraction, compensation)``, the unpruned
    model once per task and seed as ``(task, seed, -1, "none", 1.0, "none")``."""
    for task in cfg.tasks:
        for seed in cfg.seeds:
            yield task, seed, -1, "none", 1.0, "none"
            for draw in cfg.draws:
                for imp in cfg.importances:
                    for f in cfg.keep_fractions:
                        for comp in cfg.compensations:
                            yield task, seed, draw, imp, float(f), comp


def read_table(out: str | os.PathLike, name: str = TABLE) -> list[dict]:
    """The rows of a JSONL table (a last line cut short by a killed run is left out)."""
    path = Path(out) / name
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True), 1):
        if not line.endswith("\n"):
            logger.warning("%s:%d: an unfinished row (the run was killed); it is rerun", path, i)
            break
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ObceInputError(f"{path}:{i}: not a JSON row ({exc})") from exc
    return rows


def _append(path: Path, row: dict) -> None:
    """Append one row, flushed to disk, after cutting any unfinished last line."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(to_jsonable(row)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def cell_key(cell: tuple) -> str:
    task, seed, draw, imp, f, comp = cell
    return f"{task}/s{seed}/d{draw}/{imp}/{f:.4f}/{comp}"


def check_table(cfg: PostTrainConfig, force: bool = False) -> set[str]:
    """The cells the table already holds; raises when it was written with other inputs (unless ``force``)."""
    out = Path(cfg.out)
    runs = read_table(out, RUNS)
    other = {r.get("inputs_key") for r in runs} - {cfg.inputs_key()}
    if other and not force:
        raise ObceInputError(f"{out / TABLE} was written with other inputs (model, fine-tuning, corpus or evaluation "
                             f"parameters) than this config; its rows are kept. Write to another `out:`, or pass "
                             f"--force to add rows of these inputs beside them")
    return {r["cell"] for r in read_table(out) if r.get("inputs_key") == cfg.inputs_key()}


def run_posttrain(cfg: PostTrainConfig, progress: bool = True, force: bool = False) -> Path:
    """Run (or resume) every planned cell; return the table's path."""
    from .glue import encode_dev

    cfg.validate()
    done = check_table(cfg, force)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells(cfg) if cell_key(c) not in done]
    logger.info("%d cells planned, %d done", len(todo) + len(done), len(done))
    if not todo:
        return out / TABLE
    run_id = uuid.uuid4().hex[:12]
    _append(out / RUNS, {"run": run_id, "inputs_key": cfg.inputs_key(), "config": cfg.to_dict(),
                         "provenance": provenance(params=cfg.to_dict(), model=cfg.model)})
    base, tokenizer = load_model(cfg.model)
    full_neurons = ffn_layers(base)[0][0].out_features
    c = cfg.corpus
    for task in dict.fromkeys(t for t, *_ in todo):
        dev = encode_dev(task, tokenizer, cfg.finetune["max_length"], cfg.glue_dir)
        for seed in dict.fromkeys(s for t, s, *_ in todo if t == task):
            model = cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, out, progress)
            mine = [cell for cell in todo if cell[:2] == (task, seed)]
            for draw in dict.fromkeys(d for _, _, d, *_ in mine):
                here = [cell for cell in mine if cell[2] == draw]
                if draw < 0:
                    _evaluate_cells(cfg, here, model, model, None, tokenizer, dev, out, run_id, full_neurons, {})
                    continue
                texts, labels = load_corpus(task, n=c["samples"], split="train", glue_dir=cfg.glue_dir, seed=draw,
                                            return_labels=True)
                stats = None
                if any(cell[5] != "none" for cell in here):
                    stats = ffn_statistics(model, tokenizer, texts, max_length=c["max_length"])
                for imp in dict.fromkeys(cell[3] for cell in here):
                    with Timer() as t:
                        scores = _scores(imp, model, tokenizer, texts, labels, c["max_length"], draw, out)
                    extra = {"score_s": round(t.seconds, 2), "corpus": corpus_hash(texts)}
                    _evaluate_cells(cfg, [cell for cell in here if cell[3] == imp], model, scores, stats, tokenizer,
                                    dev, out, run_id, full_neurons, extra)
    return out / TABLE


def _scores(importance: str, model, tokenizer, texts, labels, max_length: int, draw: int, out: Path) -> np.ndarray:
    if importance in GRADIENT_SCORES:
        return gradient_scores(importance, model, tokenizer, texts, labels, max_length=max_length)
    return score_neurons(model, tokenizer, texts, importance=importance, max_length=max_length, seed=draw,
                         cache_dir=out / "cache", progress=False)


def _evaluate_cells(cfg, todo, model, scores, stats, tokenizer, dev, out, run_id, full_neurons, extra) -> None:
    from .glue import evaluate

    for cell in todo:
        task, seed, draw, imp, f, comp = cell
        with Timer() as t:
            if imp == "none":
                small, size = model, full_neurons
            else:
                keep = select_neurons(scores, keep_fraction=f)
                small = compensate(prune_ffn_neurons(model, keep), model, keep, stats, method=comp)
                size = keep.shape[1]
            metrics = evaluate(small, tokenizer, task, dev, batch_size=cfg.eval.get("batch_size", 64))
        row = {"cell": cell_key(cell), "task": task, "seed": seed, "draw": draw, "importance": imp,
               "keep_fraction": f, "level": LEVEL_FRACTIONS.get(f, 0 if imp == "none" else None),
               "compensation": comp, "intermediate_size": int(size),
               "parameters": count_parameters(small.base_model), "metrics": metrics,
               "main": metrics[get_task(task).main_metric], "eval_s": round(t.seconds, 2), **extra,
               "run": run_id, "inputs_key": cfg.inputs_key()}
        _append(Path(out) / TABLE, row)
        logger.info("%s: %s = %.4f", row["cell"], get_task(task).main_metric, row["main"])

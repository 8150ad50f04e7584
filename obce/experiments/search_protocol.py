"""The retraining-free search protocol: Kwon et al. (2022)'s framework driven by each score.

For every task and seed, the unpruned model fine-tuned on the task (cached, and shared with the
retraining-free protocol whose ``out`` is ``finetune_cache``); for every corpus draw (training texts
of the task), the mask gradients once (Fisher scores and mask rearrangement read them) and each score
of every head and neuron (:mod:`obce.unit_scores`); for every FLOPs constraint and variant
(:data:`~obce.experiments.config.SEARCH_VARIANTS`), the masks (:mod:`obce.search`), the model pruned
physically to them (:func:`obce.units.prune_units`, scales folded in) and evaluated on dev.

One table, ``<out>/search.jsonl``: one row per cell, appended as cells finish (a rerun skips the cells
it holds, so an interrupted run resumes); ``<out>/runs.jsonl`` holds each run's provenance. A table
belongs to one set of inputs; another config writing into it is refused unless ``force``.
"""
from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..data import get_task, load_corpus
from ..errors import ObceInputError
from ..files import Timer, corpus_hash
from ..models import load_model, source_fingerprint
from ..paths import output_lock
from ..pruning import count_parameters
from ..results import POSTTRAIN_RUNS, SEARCH_TABLE, append_jsonl, provenance, read_jsonl
from .cache import cached_finetune
from .config import SEARCH_VARIANTS, SearchConfig
from .resume import differences

logger = logging.getLogger(__name__)

__all__ = ["cell_key", "cells", "check_budgets", "check_table", "run_search_protocol"]


def cells(cfg: SearchConfig) -> Iterator[tuple]:
    """Every planned cell ``(task, seed, draw, score, flops, variant)``, the unpruned model once per task
    and seed as ``(task, seed, -1, "none", 1.0, "none")``; over the config's grids, each cell once."""
    seen = set()
    for g in cfg.grid_list():
        for task in g["tasks"]:
            for seed in g["seeds"]:
                planned = [(task, seed, -1, "none", 1.0, "none")]
                planned += [(task, seed, draw, score, float(f), v) for draw in g["draws"] for score in g["scores"]
                            for f in g["flops"] for v in g["variants"]]
                for cell in planned:
                    if cell not in seen:
                        seen.add(cell)
                        yield cell


def cell_key(cell: tuple) -> str:
    """The key of a cell in the table (``task/s<seed>/d<draw>/<score>/<flops>/<variant>``)."""
    task, seed, draw, score, f, variant = cell
    return f"{task}/s{seed}/d{draw}/{score}/{f:.4f}/{variant}"


def check_budgets(cfg: SearchConfig, model, seq_lens: dict[str, float]) -> None:
    """Refuse (``ObceInputError``, before any compute) a FLOPs constraint below what one head and one
    neuron per layer cost, or (for ``uniform_ffn``) below what every head costs, on any task."""
    from ..search import check_flops
    from ..units import head_dim, layer_widths, unit_macs

    heads, neurons = layer_widths(model)
    for g in cfg.grid_list():
        for task in g["tasks"]:
            h, n = unit_macs(seq_lens[task], model.config.hidden_size, head_dim(model))
            for f in g["flops"]:
                check_flops(f, len(heads), heads[0], neurons[0], h, n, what=f"{cfg.KIND} flops")
                if "uniform_ffn" in g["variants"] and (f * (heads[0] * h + neurons[0] * n) - heads[0] * h) < n:
                    raise ObceInputError(f"{cfg.KIND} flops {f}: on {task}, every head alone costs more; the "
                                         "uniform_ffn variant keeps every head (leave it out of variants there)")


def check_table(cfg: SearchConfig, force: bool = False) -> set[str]:
    """The cells the table already holds for this config's inputs; raises when it was written with other
    inputs, unless ``force`` (then this run's rows are added beside them; readers keep the latest)."""
    out = Path(cfg.out)
    runs = read_jsonl(out / POSTTRAIN_RUNS)
    fingerprint = source_fingerprint(cfg.model)
    mine = {r.get("run") for r in runs if r.get("inputs_key") == cfg.inputs_key()
            and r.get("model_fingerprint") == fingerprint}
    other = [r for r in runs if r.get("run") not in mine]
    if other and not force:
        current, theirs = cfg.to_dict(), other[-1].get("config") or {}
        diff = [d for key in ("model", "finetune", "corpus", "tuning", "eval")
                for d in (differences(theirs.get(key) or {}, current[key], prefix=f"{key}.")
                          if isinstance(current[key], dict) else differences({key: theirs.get(key)}, {key: current[key]}))]
        raise ObceInputError(f"{out / SEARCH_TABLE} was written with other inputs than this config "
                             f"({'; '.join(diff) or 'another inputs key or model fingerprint'}); its rows are kept. "
                             "Write to another `out:`, or pass --force to add rows of these inputs beside them")
    return {r["cell"] for r in read_jsonl(out / SEARCH_TABLE) if r.get("run") in mine}


def run_search_protocol(cfg: SearchConfig, progress: bool = True, force: bool = False) -> Path:
    """Run (or resume) every planned cell; return the table's path (one writer at a time: the ``out``
    directory is locked while this runs)."""
    from ..data import require_full_data

    cfg.validate()
    out = Path(cfg.out)
    with output_lock(out, "search out:"):
        require_full_data(cfg.glue_dir, f"{cfg.KIND} glue_dir")  # before any compute
        return _run(cfg, out, progress, force)


def _dev(cfg: SearchConfig, task: str, tokenizer, seed: int):
    from ..glue import encode_dev

    return encode_dev(task, tokenizer, cfg.finetune["max_length"], cfg.glue_dir,
                      max_samples=cfg.finetune.get("max_eval_samples"), seed=seed)


def _run(cfg: SearchConfig, out: Path, progress: bool, force: bool) -> Path:
    from ..search import average_length

    done = check_table(cfg, force)
    todo = [c for c in cells(cfg) if cell_key(c) not in done]
    logger.info("%d cells planned, %d done", len(todo) + len(done), len(done))
    base, tokenizer = load_model(cfg.model)
    seq_lens = {}
    for task in dict.fromkeys(t for t, *_ in cells(cfg)):
        seq_lens[task] = average_length([r["input_ids"] for r in next(iter(_dev(cfg, task, tokenizer, 0).values()))[0]])
    check_budgets(cfg, base, seq_lens)
    if not todo:
        return out / SEARCH_TABLE
    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    fingerprint = source_fingerprint(cfg.model)
    append_jsonl(out / POSTTRAIN_RUNS, {"run": run_id, "inputs_key": cfg.inputs_key(), "model_fingerprint": fingerprint,
                                        "config": cfg.to_dict(),
                                        "provenance": provenance(params=cfg.to_dict(), model=cfg.model,
                                                                 model_fingerprint=fingerprint)})
    cache = Path(cfg.finetune_cache or cfg.out)
    for task in dict.fromkeys(t for t, *_ in todo):
        for seed in dict.fromkeys(s for t, s, *_ in todo if t == task):
            dev = _dev(cfg, task, tokenizer, seed)
            model = cached_finetune(cfg.model, base, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, cache, progress)
            mine = [cell for cell in todo if cell[:2] == (task, seed)]
            ctx = dict(cfg=cfg, model=model, tokenizer=tokenizer, dev=dev, out=out, run_id=run_id,
                       seq_len=seq_lens[task])
            for draw in dict.fromkeys(d for _, _, d, *_ in mine):
                here = [cell for cell in mine if cell[2] == draw]
                if draw < 0:
                    for cell in here:
                        _cell(cell, None, None, {}, **ctx)
                    continue
                _draw(here, draw, ctx)
    return out / SEARCH_TABLE


def _draw(here: list[tuple], draw: int, ctx: dict[str, Any]) -> None:
    """The cells of one corpus draw: gradients once, each score once, then every constraint and variant."""
    from ..unit_scores import mask_gradients, unit_scores

    cfg, model, tokenizer = ctx["cfg"], ctx["model"], ctx["tokenizer"]
    c = cfg.corpus
    task = here[0][0]
    texts, labels = load_corpus(task, n=c["samples"], split="train", glue_dir=cfg.glue_dir, seed=draw,
                                return_labels=True)
    with Timer() as t:
        grads = mask_gradients(model, tokenizer, texts, labels, c["max_length"], c.get("batch_size", 32))
    grads_s = t.seconds
    for score in dict.fromkeys(cell[3] for cell in here):
        with Timer() as t:
            scores = unit_scores(score, model, tokenizer, texts, labels, max_length=c["max_length"],
                                 batch_size=c.get("batch_size", 32), seed=draw, grads=grads)
        extra = {"score_s": round(t.seconds + (grads_s if score == "fisher" else 0), 2), "grads_s": round(grads_s, 2),
                 "corpus": corpus_hash(texts)}
        for cell in [cell for cell in here if cell[3] == score]:
            _cell(cell, scores, (grads, texts), extra, **ctx)


def masks_of(variant: str, score: str, scores, grads, flops: float, seq_len: float, model):
    """The (head_mask, neuron_mask) of a variant (bool ndarrays (n_layers, n_heads), (n_layers, n_neurons))
    and the scores it searched with (Fisher's as they are, others made commensurate)."""
    from ..search import commensurate, rearrange, search, uniform_ffn
    from ..units import head_dim, unit_macs

    h, n = unit_macs(seq_len, model.config.hidden_size, head_dim(model))
    hs, ns = scores if score in ("fisher", "fisher_text") else commensurate(*scores, h, n)
    kind, rearranged, _ = SEARCH_VARIANTS[variant]
    if kind == "uniform_ffn":
        return uniform_ffn(ns, hs.shape[1], flops, h, n), (hs, ns)
    hm, nm = search(hs, ns, flops, h, n)
    if rearranged:
        hm, nm = rearrange(hm, nm, grads[0].numpy(), grads[1].numpy())
    return (hm, nm), (hs, ns)


def _cell(cell, scores, grads_texts, extra, *, cfg, model, tokenizer, dev, out, run_id, seq_len) -> None:
    from ..glue import (
        dev_predictions,
        metrics_of,
        prediction_summary,
        undefined_metrics,
    )
    from ..search import flops_of, search, tune_masks
    from ..units import head_dim, layer_widths, prune_units, unit_macs

    task, seed, draw, score, flops, variant = cell
    heads, neurons = layer_widths(model)
    row: dict[str, Any] = {"cell": cell_key(cell), "task": task, "seed": seed, "draw": draw, "score": score,
                           "flops_fraction": flops, "variant": variant}
    with Timer() as prune_t:
        if score == "none":
            small, kind, rearranged, tuning = model, "none", False, "none"
            hm = np.ones((len(heads), heads[0]), dtype=bool)
            nm = np.ones((len(neurons), neurons[0]), dtype=bool)
            hsc, nsc = hm.astype(float), nm.astype(float)
        else:
            kind, rearranged, tuning = SEARCH_VARIANTS[variant]
            grads, texts = grads_texts
            (hm, nm), searched = masks_of(variant, score, scores, grads, flops, seq_len, model)
            hsc, nsc = hm.astype(float), nm.astype(float)
            if tuning == "kwon":
                teacher = (None, None)
                if cfg.tuning["teacher"] == "sqrt":
                    h, n = unit_macs(seq_len, model.config.hidden_size, head_dim(model))
                    teacher = search(*searched, math.sqrt(flops), h, n)
                n_tune = cfg.tuning.get("samples") or len(texts)
                hsc, nsc, info = tune_masks(model, tokenizer, texts[:n_tune], hm, nm, *teacher,
                                            max_length=cfg.corpus["max_length"],
                                            batch_size=cfg.corpus.get("batch_size", 32))
                row["tuning_info"] = info
            keep_h = [np.flatnonzero(m) for m in hm]
            keep_n = [np.flatnonzero(m) for m in nm]
            small = prune_units(model, keep_h, keep_n, [s[k] for s, k in zip(hsc, keep_h)],
                                [s[k] for s, k in zip(nsc, keep_n)])
    with Timer() as eval_t:
        predictions = dev_predictions(small, tokenizer, task, dev, batch_size=cfg.eval.get("batch_size", 64))
        metrics = metrics_of(task, dev, predictions)
    first = next(iter(dev))
    summary = prediction_summary(task, predictions[first])
    row.update({"search": kind, "rearranged": rearranged, "tuning": tuning,
                "flops_kept": round(flops_of(hm, nm, seq_len, model.config.hidden_size, head_dim(model)), 6),
                "seq_len": round(seq_len, 3),
                "heads_kept": [int(x) for x in hm.sum(1)], "neurons_kept": [int(x) for x in nm.sum(1)],
                "parameters": count_parameters(small.base_model), "metrics": metrics,
                "main": metrics[get_task(task).main_metric], "degenerate": summary["degenerate"],
                "prune_s": round(prune_t.seconds, 2), "eval_s": round(eval_t.seconds, 2), **extra,
                "run": run_id, "inputs_key": cfg.inputs_key()})
    undefined = undefined_metrics(metrics, predictions[first], dev[first][1])
    if undefined:
        row["metrics_undefined"] = undefined
    append_jsonl(Path(out) / SEARCH_TABLE, row)
    logger.info("%s: %s = %s", row["cell"], get_task(task).main_metric, row["main"])

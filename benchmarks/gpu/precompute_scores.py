"""Compute, on this machine's CPU, every importance score that GPU pipeline configs will need, into
their ``<out>/scores/`` cache, so that the lent GPU spends its minutes fine-tuning. The scores do not
depend on the device (the cache key leaves device and batch size out); each score file's provenance
names the device that computed it.

    python benchmarks/gpu/precompute_scores.py [CONFIG ...]   (default: the carried GPU configs)
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from obce import load_model
from obce.experiments.cache import task_scores
from obce.experiments.config import PipelineConfig
from obce.experiments.glue_protocol import planned_runs

HERE = Path(__file__).resolve().parent
DEFAULT = [HERE / "glue_gpu_carried.yaml", HERE / "glue_gpu_sst2_carried.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", type=Path, default=DEFAULT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for path in args.configs:
        cfg = PipelineConfig.from_yaml(path)
        if cfg.corpus.get("score_model", "pretrained") != "pretrained":
            ap.error(f"{path}: scores the fine-tuned model, which needs fine-tuning first: leave it to the pipeline")
        cfg = dataclasses.replace(cfg, scoring={**cfg.scoring, "device": "cpu"})
        model, tokenizer = load_model(cfg.model, device="cpu")
        for task, importance, level, seed in planned_runs(cfg):  # the pipeline's own scoring calls;
            if level:  # a seed-free score is computed once and then read from its cache
                task_scores(cfg, model, tokenizer, task, importance, progress=False, seed=seed)
        logging.info("%s: %s scored", path.name, ", ".join(cfg.tasks))


if __name__ == "__main__":
    main()

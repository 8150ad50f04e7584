"""The protocols: configs, planning, running, resuming and caching, above the stages.

* :mod:`~obce.experiments.config`: the validated config model of every protocol (YAML with
  ``extends`` and ``grids``) and :func:`~obce.experiments.config.expect`.
* :mod:`~obce.experiments.glue_protocol`: score -> prune -> fine-tune for tasks x scores or methods
  x levels x seeds (``obce pipeline``).
* :mod:`~obce.experiments.posttrain`: retraining-free pruning of a fine-tuned model (``obce posttrain``).
* :mod:`~obce.experiments.resume`: the one "same inputs?" check of every command, and ``set_aside``.
* :mod:`~obce.experiments.cache`: the score and fine-tune caches.
"""
from __future__ import annotations

from .config import PipelineConfig, PostTrainConfig, restrict
from .glue_protocol import check_records, planned_runs, record_path, run_pipeline
from .posttrain import cells, check_table, run_posttrain

__all__ = ["PipelineConfig", "PostTrainConfig", "cells", "check_records", "check_table", "planned_runs",
           "record_path", "restrict", "run_pipeline", "run_posttrain"]

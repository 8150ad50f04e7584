"""Everything that reads records and says something about them: the layer above the stages.

* :mod:`~obce.analysis.stats`: summaries over seeds, paired and pooled comparisons, the tasks that
  learn, the majority-class floors (:func:`~obce.analysis.stats.majority_floors`).
* :mod:`~obce.analysis.tables`: the tables of GLUE records that the book and ``obce report`` show.
* :mod:`~obce.analysis.methods`: compression methods side by side at equal budgets.
* :mod:`~obce.analysis.posttrain`: the retraining-free protocol's table.
* :mod:`~obce.analysis.facts`: the numbers and sentences the chapters glue and the README prints.
* :mod:`~obce.analysis.names`: one display name and one colour per score and method.
* :mod:`~obce.analysis.published`: what the papers report, never mixed with what obce measures.

No stage (:mod:`obce.models` ... :mod:`obce.methods`) imports this package.
"""
from __future__ import annotations

from . import facts, methods, names, posttrain, published, stats, tables
from .names import join_words
from .stats import learned_tasks, majority_floors, paired_comparison, pooled_comparison, summarize_records

__all__ = ["facts", "join_words", "learned_tasks", "majority_floors", "methods", "names", "paired_comparison",
           "pooled_comparison", "posttrain", "published", "stats", "summarize_records", "tables"]

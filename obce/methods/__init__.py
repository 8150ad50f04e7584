"""Compression methods, each a module with the registry's one entry point
``compress(model, budget, **params) -> (model, info)`` (:mod:`obce.methods.registry`).

* :mod:`obce.methods.ffn_pruning`: OBCE and every importance score: remove each layer's least
  important FFN neurons (:func:`obce.prune`); registered to prune by a score to a budget, e.g. the
  count FFN sub-layer removal reaches.
* :mod:`obce.methods.layer_removal`: remove whole FFN sub-layers (by depth or by how little they
  change the residual stream over a corpus).
* :mod:`obce.methods.masks`: adapting by pruning: learn a binary mask over the frozen pre-trained
  weights for the task.
* :mod:`obce.methods.kronecker`: KroneckerBERT: every encoder linear map as a sum of Kronecker
  products, initialised from the pre-trained weights and trained by distillation from the unpruned
  model fine-tuned on the task (:mod:`obce.distill`).
* :mod:`obce.methods.eelbert`: EELBERT: no word-embedding table; each token's embedding computed on
  the fly from its hashed character n-grams; the encoder adapted by general distillation, then
  fine-tuned.
* :mod:`obce.methods.combined`: FFN pruning by a score, plus a compressed word table (EELBERT's or
  Kronecker-factored), plus distillation: to half of MiniLM's parameters and below.
* :mod:`obce.methods.hash_table`: obce's earlier stand-in for EELBERT, a small table of hashed n-gram
  rows fitted to the word table (kept as a variant of its own, not EELBERT).

:func:`run` compresses a pretrained model to a level's budget (or a size of its own), trains it and
evaluates it on a GLUE task; the pipeline and ``obce pipeline`` drive every method through it, so their
records share one schema.
"""
from __future__ import annotations

from . import combined, eelbert, ffn_pruning, hash_table, kronecker, layer_removal, masks
from .registry import (REGISTRY, check_fits, level_budget, method_budget, method_score, method_spec, own_size, run,
                       size_on_disk)

__all__ = ["REGISTRY", "check_fits", "combined", "eelbert", "ffn_pruning", "hash_table", "kronecker", "layer_removal",
           "level_budget", "masks", "method_budget", "method_score", "method_spec", "own_size", "run", "size_on_disk"]

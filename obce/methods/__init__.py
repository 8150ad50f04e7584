"""Compression methods, each a module with one entry point ``compress(model, ...) -> model``.

* :mod:`obce.methods.layer_removal`: remove whole FFN sub-layers (by depth or by how little they
  change the residual stream over a corpus).

The importance-score pruning of OBCE itself is :func:`obce.prune`.
"""
from __future__ import annotations

from . import layer_removal

METHODS = {"layer_removal": layer_removal}

__all__ = ["METHODS", "layer_removal"]

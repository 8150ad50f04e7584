"""Resuming: was an existing output made with the same inputs? One answer for every command.

Every command that finds its output already there (``obce score``'s ``scores.json``, ``obce glue``'s
record, a pipeline record, a retraining-free table) compares the inputs it recorded with the inputs
of this run (:func:`differences`): equal, the output is reused or skipped; different, it is kept and
the run is refused with the differences named, unless the user passes the flag that replaces it.
An unreadable output is set aside (:func:`set_aside`), never deleted.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ObceInputError

logger = logging.getLogger(__name__)

__all__ = ["ABSENT", "differences", "refuse_other_inputs", "set_aside"]

#: how :func:`differences` shows a key that one side lacks
ABSENT = "(absent)"


def differences(recorded: Mapping[str, Any], expected: Mapping[str, Any], keys: Iterable[str] | None = None,
                prefix: str = "") -> list[str]:
    """How ``recorded`` inputs differ from ``expected`` ones: ``"<prefix><key>: <old> there, <new> now"``
    for each differing key (default: every key of either), in key order; empty when they are the same."""
    keys = sorted(set(recorded) | set(expected)) if keys is None else list(keys)
    return [f"{prefix}{k}: {recorded.get(k, ABSENT)!r} there, {expected.get(k, ABSENT)!r} now" for k in keys
            if recorded.get(k, ABSENT) != expected.get(k, ABSENT)]


def refuse_other_inputs(path: Path, params: dict, keys: tuple[str, ...], overwrite: bool,
                        option: str = "--overwrite") -> None:
    """Raise unless ``path`` (a record with ``provenance``) is absent, ``overwrite`` is set, or it was
    made with the same ``keys`` of ``params`` (its ``provenance.params``, ``model`` and ``seed``)."""
    from ..files import read_json

    if overwrite or not path.exists():
        return
    try:
        old = read_json(path)
        if not isinstance(old, dict):
            raise ObceInputError(f"{path}: a JSON {type(old).__name__}, not a record obce wrote")
        prov = old.get("provenance", {}) if isinstance(old.get("provenance", {}), dict) else {}
    except ObceInputError as exc:
        raise ObceInputError(f"{exc}; pass {option} to replace it") from exc
    old_params = {"model": prov.get("model"), "seed": prov.get("seed"), "model_fingerprint": prov.get("model_fingerprint"),
                  **(prov.get("params") or {})}
    diff = differences(old_params, params, [k for k in keys if k in params])
    if diff:
        raise ObceInputError(f"{path} was made with other inputs ({'; '.join(diff)}); pass {option} to "
                             "replace it, or name another --out")


def set_aside(path: Path, why: str) -> Path:
    """Rename an unreadable output to ``<name>.bad[-N]`` beside it (kept for inspection), with a warning."""
    target = path.with_name(path.name + ".bad")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{n}")
        n += 1
    os.replace(path, target)
    logger.warning("%s; set aside as %s, rerunning", why, target.name)
    return target

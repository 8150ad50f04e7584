"""Files obce writes and reads: atomic writes, JSON records, array files and content hashes.

Writes go to a temporary file in the same directory and are renamed into place, so an interrupted
run leaves the old complete file or none. Readers name the file in every error (``ObceInputError``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ObceInputError

logger = logging.getLogger(__name__)

__all__ = ["Timer", "atomic_dir", "atomic_path", "cache_key", "corpus_hash", "load_arrays", "read_json",
           "save_arrays", "to_jsonable", "write_json"]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars, arrays and paths to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # torch tensors and dtypes
        return obj.tolist()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``."""
    path = Path(path)
    fd, tmp = _temp_beside(path, tempfile.mkstemp)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode(0o666))  # mkstemp makes it owner-only
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``."""
    import shutil

    path = Path(path)
    tmp = Path(_temp_beside(path, tempfile.mkdtemp))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(0o777))  # mkdtemp makes it owner-only
        if path.is_dir():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _default_mode(mode: int) -> int:
    """``mode`` less the process's umask: the permissions ``open``/``mkdir`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _temp_beside(path: Path, make):
    """``make`` (tempfile.mkstemp or mkdtemp) a hidden temporary entry in ``path``'s directory."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return make(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ObceInputError(f"cannot write to {str(path.parent)!r}: {exc.strerror or exc}") from exc


def write_json(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a JSON record atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(record), indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON record; a corrupt file raises ``ObceInputError`` naming it."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ObceInputError(f"{path}: not UTF-8 text (byte offset {exc.start}): not a record obce wrote") from exc
    except json.JSONDecodeError as exc:
        raise ObceInputError(f"{path}: not valid JSON ({exc})") from exc


def save_arrays(path: str | os.PathLike, meta: dict[str, Any], **arrays: np.ndarray) -> Path:
    """Write arrays and a JSON metadata block into one ``.npz`` file, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __meta__=np.array(json.dumps(to_jsonable(meta))), **arrays)
    return Path(path)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`save_arrays`: ``(meta, arrays)``. A corrupt or truncated file
    raises ``ObceInputError`` naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, KeyError, EOFError, ...
        raise ObceInputError(f"{path}: corrupt or unreadable array file ({type(exc).__name__}: {exc})") from exc
    return meta, arrays


def cache_key(**inputs: Any) -> str:
    """A short stable hash of a stage's inputs (any JSON-able values)."""
    blob = json.dumps(to_jsonable(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def corpus_hash(texts) -> str:
    """A hash of a corpus' exact content and order."""
    h = hashlib.sha256()
    for t in texts:
        h.update(json.dumps(t).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


class Timer:
    """Context manager measuring wall time in seconds (``.seconds``)."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start

"""Files obce writes and reads: atomic writes, JSON records, array files and content hashes.

Writes go to a temporary file in the same directory and are renamed into place, so an interrupted
run leaves the old complete file or none. Readers name the file in every error (``ObceInputError``).
"""
from __future__ import annotations

import errno
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
           "save_arrays", "to_jsonable", "write_json", "write_error", "clean_stale_temporaries", "read_record"]


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
def atomic_path(path: str | os.PathLike, what: str = "the output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    A failed write (a full disk, a read-only directory) raises ``ObceInputError`` naming ``path`` and
    ``what`` was being written, and leaves ``path`` as it was.
    """
    path = Path(path)
    fd, tmp = _temp_beside(path, tempfile.mkstemp, what)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode(0o666))  # mkstemp makes it owner-only
        os.replace(tmp_path, path)
    except OSError as exc:
        raise write_error(path, what, exc) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike, what: str = "the output") -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    ``path`` may be a symbolic link: the directory it points to is replaced and the link kept. The
    previous directory is moved aside under a fresh name (never a name a user's file may have) and
    removed once the new one is in place. A failed write raises ``ObceInputError`` naming ``path``.
    """
    import shutil

    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    tmp = Path(_temp_beside(path, tempfile.mkdtemp, what))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(0o777))  # mkdtemp makes it owner-only
        if path.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".old", dir=path.parent))
            os.replace(path, old)  # onto the empty directory just made: no existing name is touched
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, what, exc) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_error(path: Path, what: str, exc: OSError) -> ObceInputError:
    """The error of a failed write: the path, what was being written, and why (disk full, read-only)."""
    return ObceInputError(f"cannot write {what} to {str(path)!r}: {exc.strerror or exc}"
                          + (" (the disk is full)" if exc.errno == errno.ENOSPC else "")
                          + (" (a read-only file system)" if exc.errno == errno.EROFS else ""))


def _default_mode(mode: int) -> int:
    """``mode`` less the process's umask: the permissions ``open``/``mkdir`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _temp_beside(path: Path, make, what: str = "the output"):
    """``make`` (tempfile.mkstemp or mkdtemp) a hidden temporary entry in ``path``'s directory, named
    ``.<name>.<pid>-<random>.tmp``; those that processes no longer running left are removed first
    (:func:`clean_stale_temporaries`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(path)
        return make(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path.parent, what, exc) from exc


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` (``.<name>.<pid>-*.tmp`` and ``.old``) that a killed process
    left beside it; return them. Those of running processes stay."""
    import shutil

    from .paths import pid_alive

    path, removed = Path(path), []
    prefix = f".{path.name}."
    for entry in path.parent.glob(f".{glob_escape(path.name)}.*"):
        rest = entry.name[len(prefix):]
        pid = rest.split("-", 1)[0]
        if entry.suffix in (".tmp", ".old") and "-" in rest and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry)
            logger.info("removed %s, left by a run that was killed", entry)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with the characters ``glob`` reads as patterns escaped."""
    import glob

    return glob.escape(name)


def write_json(path: str | os.PathLike, record: dict[str, Any], what: str = "a record") -> Path:
    """Write a JSON record atomically."""
    with atomic_path(path, what) as tmp:
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


def read_record(path: str | os.PathLike, what: str = "a record obce wrote") -> dict[str, Any]:
    """Read a JSON file that must hold an object (a record, ``scores.json``): anything else raises
    ``ObceInputError`` naming the file."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise ObceInputError(f"{path}: a JSON {type(value).__name__}, not an object: not {what}")
    return value


def save_arrays(path: str | os.PathLike, meta: dict[str, Any], **arrays: np.ndarray) -> Path:
    """Write arrays and a JSON metadata block into one ``.npz`` file, atomically."""
    with atomic_path(path, "arrays") as tmp:
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

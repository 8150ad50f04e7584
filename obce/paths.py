"""Paths a user gives, and the outputs obce writes: resolved before anything changes directory,
validated before any compute, never replaced without an explicit flag.

* :func:`absolutize_env` resolves the path-valued environment variables (``OBCE_GLUE_DIR``) against
  the caller's working directory; the CLI, the book builder and the package import call it, so a
  notebook kernel started in ``notebooks/`` sees the directory the user meant.
* :func:`project_root` finds the repository (``_toc.yml`` + ``notebooks/``) from the working
  directory or from the package, so notebook paths do not depend on where Papermill runs them.
* :func:`check_output_dir` / :func:`check_output_file` refuse, with exit code 2, an output that would
  destroy something that is not an obce output of the same kind, or that holds the command's input.
* :func:`work_dir` gives a temporary directory whose name carries the owning process id, and removes
  those of processes that no longer run (a killed run's model copy is cleaned up on the next start).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Iterable, Iterator

from .errors import ObceInputError

logger = logging.getLogger(__name__)

#: Environment variables that hold paths; relative values are resolved against the caller's cwd.
PATH_ENV_VARS = ("OBCE_GLUE_DIR",)
#: Prefix of obce's temporary working directories (``<prefix><pid>-<random>``).
WORK_PREFIX = "obce-work-"


def absolutize_env(names: Iterable[str] = PATH_ENV_VARS) -> None:
    """Make relative path values of the given environment variables absolute, against the current
    working directory (children, such as notebook kernels started elsewhere, inherit the result)."""
    for name in names:
        value = os.environ.get(name)
        if value and not os.path.isabs(os.path.expanduser(value)):
            os.environ[name] = str(Path(value).expanduser().resolve())


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The obce repository root: the first directory holding ``_toc.yml`` and ``notebooks/``, going
    up from ``start`` (default: the working directory), else the one holding the obce package.

    Raises
    ------
    ObceInputError
        No repository is found (obce installed from a wheel and run outside a checkout).
    """
    here = Path(start or Path.cwd()).resolve()
    package_parent = Path(__file__).resolve().parents[1]
    for candidate in (here, *here.parents, package_parent):
        if (candidate / "_toc.yml").is_file() and (candidate / "notebooks").is_dir():
            return candidate
    raise ObceInputError(f"no obce repository (a directory with _toc.yml and notebooks/) above {here}")


def in_project(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``path`` if absolute, else relative to the repository root (notebook parameters name
    ``results/...`` the way the README and the configs do, wherever the kernel runs)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(root or project_root()) / p


def _contains(outer: Path, inner: Path) -> bool:
    outer, inner = outer.resolve(), inner.resolve()
    return inner == outer or outer in inner.parents


def check_output_dir(out: str | os.PathLike, marker: str | None, inputs: Iterable[str | os.PathLike] = (),
                     overwrite: bool = False, option: str = "--out") -> Path:
    """Validate a directory that a command will write whole (and replace atomically).

    Parameters
    ----------
    out : path
        The output directory.
    marker : str or None
        A file that marks an obce output of the same kind (``obce_prune.json`` for a pruned
        checkpoint). An existing ``out`` without it is refused unless ``overwrite``.
    inputs : paths
        The command's inputs: ``out`` may never contain one (its replacement would delete it).
    overwrite : bool
        Allow replacing an existing directory that is not an obce output of the same kind.

    Raises
    ------
    ObceInputError
        ``out`` is a file, the working directory or one of its parents, holds an input, or exists
        and is not of the same kind (without ``overwrite``).
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ObceInputError(f"{option} {str(out)!r} is an existing file; expected a directory to write")
    if _contains(path, Path.cwd()):
        raise ObceInputError(f"{option} {str(out)!r} is the working directory or one of its parents; "
                             "name a new directory")
    for item in inputs:
        if item is not None and Path(item).exists() and _contains(path, Path(item)):
            raise ObceInputError(f"{option} {str(out)!r} holds the input {str(item)!r}, which writing it would "
                                 "delete; name another output directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        if marker is None or not (path / marker).is_file():
            raise ObceInputError(f"{option} {str(out)!r} exists and is not an obce output of this kind"
                                 + (f" (no {marker})" if marker else "")
                                 + "; pass --overwrite to replace it, or name a new directory")
    return path


def check_output_file(out: str | os.PathLike, option: str = "--out") -> Path:
    """Validate a file path that a command will write: not a directory, its directory creatable."""
    path = Path(out).expanduser()
    if path.is_dir():
        raise ObceInputError(f"{option} {str(out)!r} is a directory; expected a file name (e.g. {path / 'x.json'})")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ObceInputError(f"{option} {str(out)!r}: cannot create it under {str(parent)!r}")
    return path


@contextmanager
def output_lock(path: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Hold the one writer's lock of an output (a directory or a file) while a command writes it.

    The lock is an advisory ``flock`` on ``.<name>.lock`` beside ``path`` (never inside it: a directory
    replaced whole keeps its lock), holding the writer's process id. A second command that would write
    the same output while the first runs is refused at once, before any compute.

    Raises
    ------
    ObceInputError
        Another process holds the lock (its process id is named), or the lock cannot be created.
    """
    import fcntl

    path = Path(path).expanduser()
    if path.is_symlink():
        path = path.resolve()
    lock = path.parent / f".{path.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ObceInputError(f"{option} {str(path)!r}: cannot create its lock {lock} ({exc.strerror or exc})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ObceInputError(f"{option} {str(path)!r} is being written by another obce process (pid {holder}); "
                                 "wait for it to finish, or write to another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def work_dir(parent: str | os.PathLike | None = None) -> tempfile.TemporaryDirectory:
    """A temporary working directory under ``parent`` (default: the system's), removed on exit.

    Its name carries this process's id; directories of processes that no longer run (a run killed
    with SIGKILL cannot clean up) are removed first.
    """
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    clean_stale_work_dirs(root)
    return tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=root)


def clean_stale_work_dirs(root: str | os.PathLike) -> list[Path]:
    """Remove the obce work directories under ``root`` whose process no longer runs; return them."""
    removed = []
    for path in Path(root).glob(f"{WORK_PREFIX}*"):
        pid = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            logger.info("removed %s, left by a run that was killed", path)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Running a grid's cells on Ray core: ``obce pipeline ... --executor ray`` and ``obce posttrain ...
--executor ray``.

A grid is a graph of tasks. Its *cells* (one GLUE record, or one batch of table rows) depend on
*shared inputs* (a task's scores, a teacher fine-tune, a general distillation), each an upstream
task keyed as its cache is, so that it is computed once and never raced by several cells. The
driver plans (the protocol's own check of existing records), submits only what is still to do,
shows one progress bar over the cells, and appends rows to JSONL tables itself; cells write their
own records atomically and re-check them when they start, so a retry is harmless. Interrupting the
driver (Ctrl-C, SIGTERM, SIGKILL) loses at most the cells in flight: the same command resumes.

Ray is optional (``pip install "obce[ray]"``); the sequential path stays the default. Without an
``address`` (or ``RAY_ADDRESS``) a local Ray starts in-process with ``ray.init(num_cpus=...)`` and
shuts down at the end. On a cluster, every node needs obce installed and the config's ``out:`` on a
shared filesystem. Each cell asks for ``cpus_per_cell`` CPUs (its torch threads) and
``gpus_per_cell`` GPUs (fractional: 0.125 puts eight cells on one GPU), so that cells never
oversubscribe a machine.

This module imports Ray only inside its functions: a machine without Ray can plan and run
sequentially.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Sequence

from ..errors import ObceInputError

logger = logging.getLogger(__name__)

__all__ = ["EXECUTORS", "INSTALL_HINT", "Node", "RaySettings", "check_settings", "ray_cluster", "run_graph",
           "resolve", "set_threads", "shipped"]

#: The executors of a grid command: one cell at a time in this process, or Ray tasks.
EXECUTORS = ("sequential", "ray")
#: How to install the optional Ray extra.
INSTALL_HINT = 'pip install "obce[ray]" (or pip install ray)'


@dataclass(frozen=True)
class RaySettings:
    """Where and how a grid runs on Ray.

    Attributes
    ----------
    address : an existing cluster's address (``host:port`` of its head, ``auto``, or ``ray://...``);
        ``None``: ``RAY_ADDRESS``, else a local Ray started in-process
    cpus_per_cell, gpus_per_cell : the resources each cell asks for (its torch threads: the CPUs)
    num_cpus : the CPUs of a local Ray (default: the machine's)

    A head started on the loopback address (``ray start --head --node-ip-address 127.0.0.1``) stays
    there only with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the environment of ``ray start`` and of
    the driver: otherwise Ray replaces 127.0.0.1 by the machine's network address. A cluster with
    token authentication (Ray's default for a head started where a token exists) needs
    ``RAY_AUTH_MODE=token`` in the driver's environment, and the token (``~/.ray/auth_token`` or
    ``RAY_AUTH_TOKEN``).
    """

    address: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0
    num_cpus: int | None = None


@dataclass
class Node:
    """One task of a grid's graph: ``fn(*args, *results of deps)`` run with ``cpus`` (its torch threads)
    and ``gpus``.

    ``cell``: whether it is one of the grid's cells (counted by the progress bar, its result handed
    to the driver's callback); upstream nodes are shared inputs whose results only order the graph.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    deps: Sequence[Hashable] = ()
    cell: bool = True
    cpus: float = 1.0
    gpus: float = 0.0
    label: str = ""
    kwargs: dict = field(default_factory=dict)


def resolve(executor: str, ray: RaySettings | None) -> RaySettings | None:
    """A grid command's executor checked before any compute: ``None`` for the sequential one, else the
    Ray settings (default: a local Ray, one CPU per cell), checked by :func:`check_settings`."""
    if executor not in EXECUTORS:
        raise ObceInputError(f"executor {executor!r}: expected one of {EXECUTORS}")
    if executor != "ray":
        return None
    ray = ray or RaySettings()
    check_settings(ray)
    return ray


def check_settings(settings: RaySettings) -> None:
    """Raise ``ObceInputError`` before any compute for settings no cluster can take: Ray not
    installed (with how to install it), a cell without CPUs, negative GPUs, an address that does not
    answer."""
    if importlib.util.find_spec("ray") is None:
        raise ObceInputError(f"--executor ray: Ray is not installed; {INSTALL_HINT}")
    if not settings.cpus_per_cell > 0:
        raise ObceInputError(f"--cpus-per-cell {settings.cpus_per_cell}: expected a number of CPUs > 0 (e.g. 1, 2)")
    if settings.gpus_per_cell < 0:
        raise ObceInputError(f"--gpus-per-cell {settings.gpus_per_cell}: expected 0 or a share of a GPU (e.g. 0.125)")
    if settings.num_cpus is not None and settings.num_cpus < settings.cpus_per_cell:
        raise ObceInputError(f"--num-cpus {settings.num_cpus}: fewer than one cell's --cpus-per-cell "
                             f"{settings.cpus_per_cell}")
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        _check_reachable(address)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise ``ObceInputError`` if a ``host:port`` address (or ``ray://host:port``) does not accept a
    TCP connection within ``timeout`` seconds (``auto`` is left to Ray)."""
    if address == "auto" or address == "local":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ObceInputError(f"--address {address!r}: expected host:port of a Ray head (e.g. 127.0.0.1:6379), "
                             "ray://host:port or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ObceInputError(f"--address {address!r}: no Ray head answers there ({exc.strerror or exc}); start one "
                             "with `ray start --head`, or leave --address out for a local Ray") from None


@contextlib.contextmanager
def ray_cluster(settings: RaySettings) -> Iterator[dict[str, float]]:
    """Connect to the cluster (``settings.address`` or ``RAY_ADDRESS``), or start a local Ray in this
    process; check that it holds one cell's resources; shut down at the end, however the block ends.

    Yields
    ------
    dict, the cluster's resources (``CPU``, ``GPU``, ...)

    Raises
    ------
    ObceInputError
        The cluster cannot be reached, or it has fewer CPUs or GPUs than one cell asks for (a
        ``--gpus-per-cell`` without a GPU in the cluster).
    """
    import ray

    check_settings(settings)
    address = settings.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=settings.num_cpus or os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()
        cause = f"{exc} {exc.__cause__ or ''}"
        hint = ""
        if "Authentication" in cause or "InvalidAuthToken" in cause:
            hint = ("; the cluster uses token authentication: set RAY_AUTH_MODE=token, with its token in "
                    "~/.ray/auth_token or RAY_AUTH_TOKEN")
        elif address and address.split("://")[-1].startswith(("127.", "localhost")):
            hint = ("; a head on the loopback address needs RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 for `ray start` "
                    "and for obce (else Ray replaces 127.0.0.1 by the machine's network address)")
        raise ObceInputError(f"--address {address!r}: cannot join the Ray cluster there "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}){hint}") from None
    try:
        resources = dict(ray.cluster_resources())
        if settings.gpus_per_cell > 0 and resources.get("GPU", 0) < settings.gpus_per_cell:
            raise ObceInputError(f"--gpus-per-cell {settings.gpus_per_cell}: the Ray cluster has "
                                 f"{resources.get('GPU', 0):g} GPUs; leave the option out to run on CPUs")
        if resources.get("CPU", 0) < settings.cpus_per_cell:
            raise ObceInputError(f"--cpus-per-cell {settings.cpus_per_cell}: the Ray cluster has "
                                 f"{resources.get('CPU', 0):g} CPUs")
        yield resources
    finally:
        ray.shutdown()


def shipped(cfg):
    """``cfg`` as the cells receive it: its ``out`` and ``glue_dir`` absolute against the driver's
    working directory, so that a worker started elsewhere reads and writes the same files (the model
    is left as written: records name it so)."""
    import dataclasses

    changes = {"out": str(Path(cfg.out).expanduser().resolve())}
    if getattr(cfg, "glue_dir", None):
        changes["glue_dir"] = str(Path(cfg.glue_dir).expanduser().resolve())
    return dataclasses.replace(cfg, **changes)


def set_threads(cpus: float) -> int:
    """Set this process's torch threads to a cell's CPUs (at least 1); return the count."""
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (as Ctrl-C does), so the driver's
    cleanup runs; the previous handler comes back after."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_graph(nodes: dict[Hashable, Node], *, on_result: Callable[[Hashable, Any], None] | None = None,
              progress: bool = True, desc: str = "cells") -> dict[Hashable, Any]:
    """Submit every node of a graph as a Ray task (its dependencies' results as its last arguments,
    so Ray starts it once they are ready) and wait for the cells, one progress bar over them.

    Must run inside :func:`ray_cluster`. Each cell's result goes to ``on_result(key, result)`` in the
    driver as it arrives (where the driver appends table rows). A failed node does not stop the
    others; after every cell has ended, the failures are raised together.

    Returns
    -------
    dict, each cell's key -> its result

    Raises
    ------
    RuntimeError
        Some nodes failed (their keys and errors are named).
    KeyboardInterrupt
        The driver was interrupted (Ctrl-C or SIGTERM): the tasks in flight are cancelled.
    """
    import ray
    from tqdm.auto import tqdm

    refs: dict[Hashable, Any] = {}
    for key in _topological(nodes):
        n = nodes[key]
        task = ray.remote(_with_threads).options(num_cpus=n.cpus, num_gpus=n.gpus, name=n.label or str(key)[:60],
                                                 max_retries=0)
        refs[key] = task.remote(n.fn, n.cpus, *n.args, *(refs[d] for d in n.deps), **n.kwargs)
    pending = {refs[k]: k for k, n in nodes.items() if n.cell}
    results: dict[Hashable, Any] = {}
    failed: list[str] = []
    with _sigterm_as_interrupt(), tqdm(total=len(pending), desc=desc, disable=not progress) as bar:
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    key = pending.pop(ref)
                    try:
                        results[key] = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a cell's failure is reported, the others go on
                        failed.append(f"{key}: {_first_line(exc)}")
                        logger.error("cell %s failed: %s", key, _first_line(exc))
                    else:
                        if on_result is not None:
                            on_result(key, results[key])
                    bar.update(1)
        except KeyboardInterrupt:
            for ref in list(pending):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
    if failed:
        shown = "\n  ".join(failed[:10]) + (f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise RuntimeError(f"{len(failed)} of {len(results) + len(failed)} cells failed (the others are kept; "
                           f"the same command reruns the failed ones):\n  {shown}")
    return results


def _with_threads(fn: Callable[..., Any], cpus: float, *args, **kwargs) -> Any:
    """A node's function on a Ray worker, with the worker's torch threads set to the node's CPUs."""
    set_threads(cpus)
    return fn(*args, **kwargs)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the task's own exception
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def _topological(nodes: dict[Hashable, Node]) -> list[Hashable]:
    """The keys in an order where every node comes after its dependencies."""
    order: list[Hashable] = []
    state: dict[Hashable, int] = {}

    def visit(key: Hashable) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise ValueError(f"the grid's graph has a cycle through {key!r}")
        if key not in nodes:
            raise KeyError(f"a node depends on {key!r}, which is not in the graph")
        state[key] = 1
        for dep in nodes[key].deps:
            visit(dep)
        state[key] = 2
        order.append(key)

    for key in nodes:
        visit(key)
    return order

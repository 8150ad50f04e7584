"""Zero-dimensional persistent homology of neuron point clouds, and importance summaries.

For a point cloud X of N points in R^D, the Vietoris-Rips filtration (filtration value of an edge =
its Euclidean length, as in gudhi's ``RipsComplex``) has an H0 diagram with N points, all born at 0:
one dies at infinity, the other N-1 die at the lengths of the edges of a minimum spanning tree (MST)
of the complete graph on X (Kruskal's algorithm is exactly the union-find of H0 persistence). Hence

* ``method="gudhi"``: the reference, a Rips complex per neuron through gudhi;
* ``method="fast"``: exact MSTs of many neurons at once, on centred points. On CPU, Prim's
  algorithm compiled with numba, parallel over neurons, computing distances on the fly in
  difference form (no N x N matrix, no cancellation). On an accelerator, squared distances in Gram
  form (one batched matrix product), a batched Prim in torch, then each tree edge's length
  recomputed from the point difference.

Importance summaries of the N-1 finite deaths: ``merge_radius`` (r_f, the largest: the radius at
which the cloud becomes connected; OBCE's score), ``total_persistence`` (their sum), ``mean_death``.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch

from .errors import ObceInputError

logger = logging.getLogger(__name__)

#: The H0 persistence backends: obce's exact minimum-spanning-tree kernels, and gudhi (the reference).
H0_BACKENDS = ("fast", "gudhi")
SUMMARIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "merge_radius": lambda d: d.max(axis=-1),
    "total_persistence": lambda d: d.sum(axis=-1),
    "mean_death": lambda d: d.mean(axis=-1),
}
DEFAULT_CHUNK_BYTES = {"cpu": 256 * 2**20, "cuda": 4 * 2**30}


def merge_radii(clouds, method: str = "fast", device: str | torch.device | None = None,
                dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Merge radius r_f of every neuron: the largest finite death of its H0 diagram.

    Parameters
    ----------
    clouds : array or Tensor of shape (n_neurons, n_points, dim)
    method : {"fast", "gudhi"}
    device : optional
        Device of the fast path (default: the tensor's, CPU for arrays).
    dtype : torch.float32 or torch.float64
        Precision of the fast path.

    Returns
    -------
    ndarray of shape (n_neurons,), float64
    """
    return summarize(h0_deaths(clouds, method=method, device=device, dtype=dtype), "merge_radius")


def h0_deaths(clouds, method: str = "fast", device: str | torch.device | None = None,
              dtype: torch.dtype = torch.float32, chunk_bytes: int | None = None) -> np.ndarray:
    """Finite H0 deaths of the Vietoris-Rips filtration of every neuron's cloud.

    Parameters
    ----------
    clouds : array or Tensor of shape (n_neurons, n_points, dim)
    method : {"fast", "gudhi"}
    device, dtype : see :func:`merge_radii`
    chunk_bytes : int, optional
        Memory budget of one chunk (fast path); default 256 MiB on CPU, 4 GiB on an accelerator,
        where a chunk holds three (n_points, n_points) matrices per neuron.

    Returns
    -------
    ndarray of shape (n_neurons, n_points - 1), float64
        Each row sorted ascending; zeros for coincident points are included.
    """
    x = as_clouds(clouds)
    if method == "gudhi":
        arr = x.detach().cpu().double().numpy()
        return np.stack([gudhi_deaths(c) for c in arr])
    if method != "fast":
        raise ObceInputError(f"method {method!r}: expected one of {H0_BACKENDS}")
    if dtype not in (torch.float32, torch.float64):
        raise ObceInputError(f"dtype {dtype}: expected torch.float32 or torch.float64")
    device = torch.device(device) if device is not None else x.device
    n, p = x.shape[0], x.shape[1]
    itemsize = 8 if dtype == torch.float64 else 4
    per_neuron = itemsize * (p * p * 3 if device.type != "cpu" else p * x.shape[2])
    if chunk_bytes is None:
        chunk_bytes = DEFAULT_CHUNK_BYTES["cpu" if device.type == "cpu" else "cuda"]
    step = max(1, int(chunk_bytes // per_neuron))
    out = np.empty((n, p - 1))
    for s in range(0, n, step):
        chunk = x[s:s + step].to(device)
        # centre in the input's own precision: distances are translation invariant, and a cast to
        # float32 of points far from the origin would quantize them
        chunk = chunk - chunk.mean(dim=1, keepdim=True)
        out[s:s + step] = _fast_deaths(chunk.to(dtype))
    return out


def summarize(deaths: np.ndarray, summary: str = "merge_radius") -> np.ndarray:
    """Reduce deaths of shape (..., n_points - 1) to one importance per neuron, shape (...)."""
    if summary not in SUMMARIES:
        raise ObceInputError(f"summary {summary!r}: expected one of {sorted(SUMMARIES)}")
    return SUMMARIES[summary](np.asarray(deaths, dtype=np.float64))


def gudhi_diagram(cloud: np.ndarray) -> np.ndarray:
    """H0 diagram of one cloud through gudhi's ``RipsComplex``.

    Parameters
    ----------
    cloud : ndarray of shape (n_points, dim)

    Returns
    -------
    ndarray of shape (n_points, 2)
        (birth, death) pairs, zero-length bars included, the essential class last with death inf.
    """
    import gudhi

    st = gudhi.RipsComplex(points=np.asarray(cloud, dtype=np.float64)).create_simplex_tree(max_dimension=1)
    pairs = st.persistence(min_persistence=-1.0)
    dgm = np.array([bd for dim, bd in pairs if dim == 0], dtype=np.float64).reshape(-1, 2)
    return dgm[np.argsort(dgm[:, 1], kind="stable")]


def gudhi_deaths(cloud: np.ndarray) -> np.ndarray:
    """Finite H0 deaths of one cloud through gudhi, sorted, shape (n_points - 1,)."""
    d = gudhi_diagram(cloud)[:, 1]
    return np.sort(d[np.isfinite(d)])


def as_clouds(clouds) -> torch.Tensor:
    """Point clouds as a tensor of shape (n_neurons, n_points, dim), checked: at least 2 points of
    dimension at least 1, finite values (``ObceInputError`` otherwise)."""
    x = torch.as_tensor(clouds) if not isinstance(clouds, torch.Tensor) else clouds
    if x.ndim != 3:
        raise ObceInputError(f"clouds of shape {tuple(x.shape)}: expected (n_neurons, n_points, dim)")
    if x.shape[1] < 2:
        raise ObceInputError(f"clouds have {x.shape[1]} point(s) each; H0 persistence needs at least 2")
    if x.shape[0] == 0 or x.shape[2] == 0:
        raise ObceInputError(f"clouds of shape {tuple(x.shape)}: expected at least one neuron and points of "
                             "dimension >= 1")
    if not torch.is_floating_point(x):
        x = x.double()
    if not bool(torch.isfinite(x).all()):
        neuron = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0, 0])
        raise ObceInputError(f"clouds hold NaN or infinity (first at neuron {neuron})")
    return x


def _fast_deaths(x: torch.Tensor) -> np.ndarray:
    """Sorted MST edge lengths, shape (n, p-1), of centred clouds x of shape (n, p, d)."""
    if x.device.type == "cpu":
        from ._prim import prim_deaths  # numba compiles on first use (cached on disk)

        lengths = torch.from_numpy(prim_deaths(np.ascontiguousarray(x.numpy())))
    else:
        lengths = _fast_deaths_gram(x)
    return lengths.sort(dim=1).values.double().cpu().numpy()


def _fast_deaths_gram(x: torch.Tensor, prim: str = "auto") -> torch.Tensor:
    """MST edge lengths (n, p-1) on an accelerator: Gram-form squared distances (one batched
    matmul), Prim's algorithm (one Triton program per neuron on CUDA, else batched torch), then each
    tree edge's length recomputed from the point difference."""
    sq = (x * x).sum(-1)
    d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * torch.bmm(x, x.transpose(1, 2))).clamp_min_(0)
    if prim == "auto":
        prim = "triton" if x.device.type == "cuda" and _triton_available() else "torch"
    if prim == "triton":
        from ._prim_triton import prim_edges

        parent, child = prim_edges(d2)
    else:
        parent = _prim_torch(d2)[:, 1:]
        child = torch.arange(1, x.shape[1], device=x.device).expand(x.shape[0], -1)
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return torch.linalg.vector_norm(x[rows, child] - x[rows, parent], dim=-1)


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _prim_torch(d2: torch.Tensor) -> torch.Tensor:
    """Batched Prim on dense squared distances (n, p, p): parent of every vertex in the MST rooted
    at vertex 0 (parent[:, 0] = 0), shape (n, p)."""
    n, p, _ = d2.shape
    rows = torch.arange(n, device=d2.device)
    best = d2[:, 0].clone()
    parent = torch.zeros(n, p, dtype=torch.long, device=d2.device)
    in_tree = torch.zeros(n, p, dtype=torch.bool, device=d2.device)
    in_tree[:, 0] = True
    inf = torch.tensor(float("inf"), dtype=d2.dtype, device=d2.device)
    for _ in range(p - 1):
        j = torch.where(in_tree, inf, best).argmin(dim=1)
        in_tree[rows, j] = True
        row = d2[rows, j]
        closer = (row < best) & ~in_tree
        best = torch.where(closer, row, best)
        parent = torch.where(closer, j[:, None], parent)
    return parent

"""Prim's minimum spanning tree of many point clouds, compiled with numba (parallel over clouds)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def prim_deaths(x: np.ndarray) -> np.ndarray:
    """MST edge lengths of many point clouds, distances computed on the fly (difference form).

    Parameters
    ----------
    x : ndarray of shape (n_clouds, n_points, dim), float32 or float64

    Returns
    -------
    ndarray of shape (n_clouds, n_points - 1), same dtype, unsorted (order of Prim's additions)
    """
    n, p, d = x.shape
    out = np.empty((n, p - 1), dtype=x.dtype)
    for b in numba.prange(n):
        pts = x[b]
        best = np.empty(p, dtype=x.dtype)
        in_tree = np.zeros(p, dtype=np.bool_)
        in_tree[0] = True
        for k in range(p):
            s = x.dtype.type(0)
            for t in range(d):
                diff = pts[k, t] - pts[0, t]
                s += diff * diff
            best[k] = s
        for step in range(p - 1):
            j = -1
            m = np.inf
            for k in range(p):
                if not in_tree[k] and best[k] < m:
                    m = best[k]
                    j = k
            in_tree[j] = True
            out[b, step] = np.sqrt(m)
            for k in range(p):
                if not in_tree[k]:
                    s = x.dtype.type(0)
                    for t in range(d):
                        diff = pts[k, t] - pts[j, t]
                        s += diff * diff
                    if s < best[k]:
                        best[k] = s
    return out

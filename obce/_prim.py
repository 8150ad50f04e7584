"""Prim's minimum spanning tree over many dense graphs, compiled with numba (parallel over graphs)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True)
def prim_parents(d2: np.ndarray) -> np.ndarray:
    """Parent of every vertex in an MST rooted at vertex 0 (``parents[:, 0] = 0``).

    Parameters
    ----------
    d2 : ndarray of shape (n_graphs, n_points, n_points)
        Symmetric (squared) edge weights; any monotone transform of lengths gives the same tree.

    Returns
    -------
    ndarray of shape (n_graphs, n_points), int64
    """
    n, p = d2.shape[0], d2.shape[1]
    parents = np.zeros((n, p), dtype=np.int64)
    for b in numba.prange(n):
        best = d2[b, 0].astype(np.float64)
        parent = np.zeros(p, dtype=np.int64)
        in_tree = np.zeros(p, dtype=np.bool_)
        in_tree[0] = True
        for _ in range(p - 1):
            j = -1
            m = np.inf
            for k in range(p):
                if not in_tree[k] and best[k] < m:
                    m = best[k]
                    j = k
            in_tree[j] = True
            parents[b, j] = parent[j]
            for k in range(p):
                w = d2[b, j, k]
                if not in_tree[k] and w < best[k]:
                    best[k] = w
                    parent[k] = j
    return parents

"""The collection hook's copy on CPU, compiled with numba: masked activations (texts, tokens, neurons)
written transposed into the clouds (neurons, texts, depth) in one pass."""
from __future__ import annotations

import numba
import numpy as np

_BLOCK = 16  # neurons per task: one cache line of a float32 activation row


@numba.njit(parallel=True, cache=True, nogil=True)
def masked_transpose_into(out: np.ndarray, mask: np.ndarray, clouds: np.ndarray, row0: int) -> None:
    """``clouds[f, row0 + b, t] = out[b, t, f] * mask[b, t]``, and 0 for ``t >= T``.

    Parameters
    ----------
    out : ndarray of shape (B, T, F), float32, C-contiguous
        One batch's activations.
    mask : ndarray of shape (B, T), float32
        1 at real tokens, 0 at padding.
    clouds : ndarray of shape (F, N, D), float32, D >= T
        Written in place at rows ``row0 .. row0 + B - 1``.
    row0 : int
    """
    b_count, t_count, f_count = out.shape
    depth = clouds.shape[2]
    for block in numba.prange((f_count + _BLOCK - 1) // _BLOCK):
        f0 = block * _BLOCK
        f1 = min(f_count, f0 + _BLOCK)
        for b in range(b_count):
            for f in range(f0, f1):
                for t in range(t_count):
                    clouds[f, row0 + b, t] = out[b, t, f] * mask[b, t]
                for t in range(t_count, depth):
                    clouds[f, row0 + b, t] = 0.0

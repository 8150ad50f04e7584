"""Prim's minimum spanning tree of many dense graphs on a GPU: one Triton program per graph runs the
whole algorithm (one launch for all steps), keeping the distances to the tree in registers."""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _prim_edges_kernel(d2_ptr, parent_ptr, child_ptr, n_points, stride_graph, stride_row,
                       BLOCK: tl.constexpr):
    g = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    valid = offs < n_points
    base = d2_ptr + g.to(tl.int64) * stride_graph
    best = tl.load(base + offs, mask=valid, other=float("inf")).to(tl.float32)
    in_tree = (offs == 0) | (offs >= n_points)
    best = tl.where(in_tree, float("inf"), best)
    parent = tl.zeros([BLOCK], dtype=tl.int32)
    out = g.to(tl.int64) * (n_points - 1)
    for step in range(n_points - 1):
        j = tl.argmin(best, axis=0)
        pj = tl.sum(tl.where(offs == j, parent, 0), axis=0)
        tl.store(parent_ptr + out + step, pj)
        tl.store(child_ptr + out + step, j)
        in_tree = in_tree | (offs == j)
        row = tl.load(base + j.to(tl.int64) * stride_row + offs, mask=valid, other=float("inf")).to(tl.float32)
        closer = (row < best) & (~in_tree)
        parent = tl.where(closer, j, parent)
        best = tl.where(in_tree, float("inf"), tl.minimum(best, row))


def prim_edges(d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MST edges of many graphs given dense symmetric (squared) weights.

    Parameters
    ----------
    d2 : Tensor of shape (n_graphs, n_points, n_points), contiguous, on a CUDA device

    Returns
    -------
    parent, child : Tensors of shape (n_graphs, n_points - 1), int64
        The tree edges in the order Prim's algorithm adds them (from vertex 0).
    """
    n, p, _ = d2.shape
    d2 = d2.contiguous()
    parent = torch.empty(n, p - 1, dtype=torch.int32, device=d2.device)
    child = torch.empty(n, p - 1, dtype=torch.int32, device=d2.device)
    block = triton.next_power_of_2(p)
    _prim_edges_kernel[(n,)](d2, parent, child, p, d2.stride(0), d2.stride(1), BLOCK=block,
                             num_warps=4 if block <= 1024 else 8)
    return parent.long(), child.long()

"""Kronecker factors (KroneckerBERT, Tahaei et al. 2022): a linear map's weight as a sum of Kronecker
products ``W = sum_k A_k (x) B_k``.

:func:`nearest_kronecker` initialises the factors from a pre-trained weight by the nearest Kronecker
product (Van Loan and Pitsianis 1993): rearranging ``W`` so that each ``A (x) B`` becomes the rank-one
matrix ``vec(A) vec(B)^T`` turns the problem into a truncated SVD, so ``rank`` terms leave exactly the
Frobenius error of that SVD. :class:`KroneckerLinear` applies the factors without forming ``W``:
``y = A X B^T`` with ``X`` the input reshaped to ``(n1, n2)``.

This module holds the factorisation and the layer; the distillation that trains them is issue #23's
remaining work.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ObceInputError


def nearest_kronecker(weight: torch.Tensor, a_shape: tuple[int, int], b_shape: tuple[int, int],
                      rank: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``rank`` Kronecker terms nearest to ``weight`` in the Frobenius norm.

    Parameters
    ----------
    weight : Tensor of shape (m1 * m2, n1 * n2)
    a_shape : (m1, n1); b_shape : (m2, n2)
    rank : int, the number of terms (at most min(m1 * n1, m2 * n2))

    Returns
    -------
    A : Tensor of shape (rank, m1, n1); B : Tensor of shape (rank, m2, n2)
        ``sum_k kron(A[k], B[k])`` is the best approximation with ``rank`` terms.
    """
    (m1, n1), (m2, n2) = a_shape, b_shape
    w = torch.as_tensor(weight)
    if w.shape != (m1 * m2, n1 * n2):
        raise ObceInputError(f"weight of shape {tuple(w.shape)} is not ({m1} * {m2}, {n1} * {n2}): the factor "
                             f"shapes {a_shape} and {b_shape} do not tile it")
    if not 1 <= rank <= min(m1 * n1, m2 * n2):
        raise ObceInputError(f"rank {rank}: expected 1..{min(m1 * n1, m2 * n2)}")
    # R[(i1, j1), (i2, j2)] = W[i1 * m2 + i2, j1 * n2 + j2]
    r = w.double().reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)
    u, s, vh = torch.linalg.svd(r, full_matrices=False)
    root = s[:rank].sqrt()
    a = (u[:, :rank] * root).T.reshape(rank, m1, n1)
    b = (vh[:rank].T * root).T.reshape(rank, m2, n2)
    return a.to(w.dtype), b.to(w.dtype)


def kronecker_error_bound(weight: torch.Tensor, a_shape: tuple[int, int], b_shape: tuple[int, int],
                          rank: int = 1) -> float:
    """The Frobenius error of the best ``rank``-term approximation: the norm of the singular values of
    the rearranged weight beyond the first ``rank``."""
    (m1, n1), (m2, n2) = a_shape, b_shape
    r = torch.as_tensor(weight).double().reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)
    return float(torch.linalg.svdvals(r)[rank:].norm())


class KroneckerLinear(nn.Module):
    """A linear map whose weight is ``sum_k kron(A[k], B[k])``, applied without forming it.

    Parameters
    ----------
    a : Tensor of shape (rank, m1, n1); b : Tensor of shape (rank, m2, n2)
    bias : Tensor of shape (m1 * m2,), optional
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
            raise ObceInputError(f"factors of shapes {tuple(a.shape)} and {tuple(b.shape)}: expected (rank, m1, n1) "
                                 "and (rank, m2, n2)")
        self.a = nn.Parameter(a.detach().clone())
        self.b = nn.Parameter(b.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.in_features = a.shape[2] * b.shape[2]
        self.out_features = a.shape[1] * b.shape[1]

    @classmethod
    def from_linear(cls, linear: nn.Linear, a_shape: tuple[int, int], b_shape: tuple[int, int],
                    rank: int = 1) -> "KroneckerLinear":
        """The layer initialised from ``linear`` by :func:`nearest_kronecker` (its bias kept)."""
        a, b = nearest_kronecker(linear.weight.detach(), a_shape, b_shape, rank)
        return cls(a, b, None if linear.bias is None else linear.bias.detach())

    def weight(self) -> torch.Tensor:
        """The dense weight of shape (out_features, in_features) (for checks; the forward never forms it)."""
        return sum(torch.kron(x, y) for x, y in zip(self.a, self.b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        n1, n2 = self.a.shape[2], self.b.shape[2]
        xs = x.reshape(-1, n1, n2)
        y = torch.einsum("kij,bjl,kml->bim", self.a, xs, self.b).reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

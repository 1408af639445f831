"""The closed-form ridge head: the one home of skcflo's linear algebra.

The head is a linear map ``y = [phi, 1] @ W`` from backbone features ``phi``
(``d`` columns) plus a constant column (the intercept) to ``k`` outputs. Every
update solves a ridge system built from sufficient statistics accumulated in
float64::

    (G + n * P) W = C + n * lam * W_prev          # P = lam * I + alpha * D

with ``G = sum aug(phi)^T aug(phi)``, ``C = sum aug(phi)^T y``, ``n`` the
(possibly discounted) number of rows, ``D`` the identity with a zero for the
intercept (the intercept is never shrunk to zero) and ``lam`` the proximal
strength (``0`` for an exact ridge fit). All outputs share one factorisation.

Penalties are per sample: ``alpha`` here equals ``alpha * n_samples`` in
:class:`sklearn.linear_model.Ridge`, so one value means the same thing for a
batch of 32 rows and for the whole training set.

Pure torch; nothing here knows about scikit-learn.
"""

from dataclasses import dataclass

import torch

ACCUMULATION_DTYPE = torch.float64
_MAX_JITTER_TRIES = 8


def augment(features):
    """Append a constant column of ones and cast to float64.

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, d)
        Backbone features.

    Returns
    -------
    torch.Tensor of shape (n_rows, d + 1), float64

    Examples
    --------
    >>> import torch
    >>> augment(torch.zeros(2, 3)).shape
    torch.Size([2, 4])
    """
    features = features.to(ACCUMULATION_DTYPE)
    ones = torch.ones(features.shape[0], 1, dtype=features.dtype, device=features.device)
    return torch.cat([features, ones], dim=1)


def penalty_diagonal(n_coefficients, alpha, lam=0.0, *, device=None):
    """Diagonal of the per-sample penalty ``lam * I + alpha * D``.

    ``D`` is the identity with its last entry (the intercept) set to zero.

    Examples
    --------
    >>> penalty_diagonal(3, alpha=0.5, lam=0.25).tolist()
    [0.75, 0.75, 0.25]
    """
    diagonal = torch.full(
        (n_coefficients,), float(alpha + lam), dtype=ACCUMULATION_DTYPE, device=device
    )
    diagonal[-1] = float(lam)
    return diagonal


def solve_spd(matrix, rhs):
    """Solve ``matrix @ x = rhs`` for a symmetric positive (semi-)definite matrix.

    Cholesky first. If the factorisation fails (a singular or indefinite
    matrix, e.g. collinear features with no penalty), a growing jitter
    ``eps * mean(diag) * 10**t`` is added to the diagonal; if that never
    succeeds, the minimum-norm least-squares solution is returned. The solve is
    differentiable, so it can sit inside a computational graph (DFIV).

    Parameters
    ----------
    matrix : torch.Tensor of shape (m, m)
    rhs : torch.Tensor of shape (m, k)

    Returns
    -------
    torch.Tensor of shape (m, k)

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    >>> solve_spd(a, torch.ones(2, 1, dtype=torch.float64)).ravel().round(decimals=12).tolist()
    [0.5, 0.25]
    """
    if not torch.isfinite(matrix).all():
        # A diverged backbone: report it as NaN for the training loop's guard
        # instead of failing inside LAPACK.
        return torch.full_like(rhs, float("nan"))
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor)
    scale = matrix.diagonal().abs().mean().clamp_min(1.0)
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    jitter = torch.finfo(matrix.dtype).eps * scale
    for _ in range(_MAX_JITTER_TRIES):
        factor, info = torch.linalg.cholesky_ex(matrix + jitter * eye)
        if int(info) == 0:
            return torch.cholesky_solve(rhs, factor)
        jitter = jitter * 100.0
    return torch.linalg.pinv(matrix, hermitian=True) @ rhs


@dataclass
class RidgeStatistics:
    """Sufficient statistics of a ridge problem, accumulated in float64.

    Attributes
    ----------
    gram : torch.Tensor of shape (d + 1, d + 1)
        ``sum aug(phi)^T aug(phi)``.
    cross : torch.Tensor of shape (d + 1, k)
        ``sum aug(phi)^T y``.
    count : float
        Number of rows, discounted by any forgetting applied.

    Examples
    --------
    >>> import torch
    >>> stats = RidgeStatistics.from_batch(torch.ones(4, 2), torch.ones(4, 1))
    >>> stats.count, tuple(stats.gram.shape)
    (4.0, (3, 3))
    """

    gram: torch.Tensor
    cross: torch.Tensor
    count: float

    @classmethod
    def from_batch(cls, features, targets):
        """Statistics of one batch of features (n, d) and targets (n, k)."""
        augmented = augment(features)
        targets = targets.to(ACCUMULATION_DTYPE)
        return cls(augmented.T @ augmented, augmented.T @ targets, float(features.shape[0]))

    def __add__(self, other):
        return RidgeStatistics(
            self.gram + other.gram, self.cross + other.cross, self.count + other.count
        )

    def discounted(self, factor):
        """Statistics with every past row down-weighted by ``factor``."""
        return RidgeStatistics(self.gram * factor, self.cross * factor, self.count * factor)


def solve_head(stats, alpha, lam=0.0, previous=None):
    """Ridge (optionally proximal) solution for the augmented head weights.

    Solves ``(G + n P) W = C + n * lam * W_prev`` with ``P = lam I + alpha D``.

    Parameters
    ----------
    stats : RidgeStatistics
    alpha : float
        Per-sample ridge penalty on the coefficients (not the intercept).
    lam : float, default=0.0
        Per-sample proximal strength pulling ``W`` toward ``previous``.
    previous : torch.Tensor of shape (d + 1, k), default=None
        The previous head weights; required when ``lam > 0``.

    Returns
    -------
    torch.Tensor of shape (d + 1, k), float64

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 5).reshape(-1, 1)
    >>> stats = RidgeStatistics.from_batch(x, 3 * x + 1)
    >>> solve_head(stats, alpha=0.0).ravel().round(decimals=6).tolist()
    [3.0, 1.0]
    """
    n_rows = max(stats.count, 1.0)
    diagonal = penalty_diagonal(stats.gram.shape[0], alpha, lam, device=stats.gram.device)
    system = stats.gram + torch.diag(n_rows * diagonal)
    rhs = stats.cross
    if lam > 0:
        rhs = rhs + (n_rows * lam) * previous
    return solve_spd(system, rhs)


def apply_head(features, weights):
    """Head output ``features @ W[:-1] + W[-1]`` in the dtype of ``features``.

    Gradients flow into ``features`` (the backbone), never into ``weights``:
    by the envelope theorem the backbone gradient is taken with the head held
    at its optimum.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([[2.0], [1.0]], dtype=torch.float64)
    >>> apply_head(torch.ones(3, 1), w).ravel().tolist()
    [3.0, 3.0, 3.0]
    """
    weights = weights.detach().to(dtype=features.dtype, device=features.device)
    return features @ weights[:-1] + weights[-1]

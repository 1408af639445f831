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

The same statistics (with ``target_sq = sum y**2``) also give the
generalised cross-validation score of every candidate alpha from one
eigendecomposition (:func:`ridge_gcv_scores`, :func:`select_alpha`) and the
Gaussian predictive spread of the Bayesian head (:func:`head_covariance`,
:func:`predictive_std`).

Pure torch; nothing here knows about scikit-learn.
"""

import functools
from dataclasses import dataclass

import torch

ACCUMULATION_DTYPE = torch.float64
_MAX_JITTER_TRIES = 8


def augment(features, dtype=ACCUMULATION_DTYPE):
    """Append a constant column of ones (the intercept's) and cast to ``dtype``.

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, d)
        Backbone features.
    dtype : torch.dtype, default=float64
        Type of the result; the exact statistics are accumulated in float64,
        a well-conditioned batch solve may stay in the features' float32.

    Returns
    -------
    torch.Tensor of shape (n_rows, d + 1), of ``dtype``

    Examples
    --------
    >>> import torch
    >>> augment(torch.zeros(2, 3)).shape
    torch.Size([2, 4])
    """
    features = features.to(dtype)
    ones = torch.ones(features.shape[0], 1, dtype=features.dtype, device=features.device)
    return torch.cat([features, ones], dim=1)


def row_weights(sample_weight, n_rows):
    """Per-sample weights (n,) repeated over the ``n_rows / n`` grid positions of each, float64.

    Examples
    --------
    >>> import torch
    >>> row_weights(torch.tensor([1.0, 2.0]), 4).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    sample_weight = sample_weight.to(ACCUMULATION_DTYPE)
    return sample_weight.repeat_interleave(n_rows // sample_weight.shape[0])


def penalty_diagonal(n_coefficients, alpha, lam=0.0, *, device=None):
    """Diagonal of the per-sample penalty ``lam * I + alpha * D``.

    ``D`` is the identity with its last entry (the intercept) set to zero.

    Examples
    --------
    >>> penalty_diagonal(3, alpha=0.5, lam=0.25).tolist()
    [0.75, 0.75, 0.25]
    """
    # Two fills rather than an indexed write: writing a Python number into one
    # entry of a GPU tensor is a host-to-device copy that waits for the device
    # (once per batch for the accumulated head, seen on an H200).
    options = {"dtype": ACCUMULATION_DTYPE, "device": device}
    coefficients = torch.full((n_coefficients - 1,), float(alpha + lam), **options)
    return torch.cat([coefficients, torch.full((1,), float(lam), **options)])


def solve_spd(matrix, rhs, *, definite=False):
    """Solve ``matrix @ x = rhs`` for a symmetric positive (semi-)definite matrix.

    Cholesky first. If the factorisation fails (a singular or indefinite
    matrix, e.g. collinear features with no penalty), a growing jitter
    ``eps * mean(diag) * 10**t`` is added to the diagonal; if that never
    succeeds, the minimum-norm least-squares solution is returned. The solve is
    differentiable, so it can sit inside a computational graph (DFIV).

    On a GPU (any device but the CPU), choosing among these fallbacks means
    reading the factorisation's status back to the host, which stalls the
    device once per call. A caller that knows the matrix is positive definite
    (a positive penalty) passes ``definite=True``: off the CPU the Cholesky
    solve then runs without that synchronisation, and a failed factorisation
    (only possible for non-finite or hopelessly ill-conditioned input) gives
    NaN, which the training loop's divergence guard catches. On the CPU, where
    reading the status is free, the fallbacks always apply.

    Parameters
    ----------
    matrix : torch.Tensor of shape (m, m)
    rhs : torch.Tensor of shape (m, k)
    definite : bool, default=False
        The caller guarantees ``matrix`` is positive definite in exact
        arithmetic.

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
    if definite and matrix.device.type != "cpu":
        return _solve_definite_on_device(matrix, rhs)
    if not torch.isfinite(matrix).all():
        # A diverged backbone: report it as NaN for the training loop's guard
        # instead of failing inside LAPACK.
        # (``rhs * nan`` rather than a fresh tensor keeps the result in the graph, so a
        # caller's backward pass still runs and the divergence shows as a NaN loss.)
        return rhs * float("nan")
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


def _solve_definite_on_device(matrix, rhs):
    """Cholesky solve with no host synchronisation; NaN where it failed."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    solution = torch.cholesky_solve(rhs, factor)
    ok = (info == 0) & torch.isfinite(matrix).all()
    return torch.where(ok, solution, float("nan"))


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
    target_sq : torch.Tensor of shape (k,) or None, default=None
        ``sum y_k**2`` per output, needed for residual sums of squares
        (:func:`ridge_gcv_scores`, :func:`head_covariance`). ``None`` means
        absent; the sum of statistics where either side lacks it lacks it.

    Examples
    --------
    >>> import torch
    >>> stats = RidgeStatistics.from_batch(torch.ones(4, 2), torch.ones(4, 1))
    >>> stats.count, tuple(stats.gram.shape)
    (4.0, (3, 3))
    >>> stats.target_sq.tolist()
    [4.0]
    """

    gram: torch.Tensor
    cross: torch.Tensor
    count: float
    target_sq: torch.Tensor | None = None

    @classmethod
    def from_batch(cls, features, targets, sample_weight=None):
        """Statistics of features (n, ..., d) and targets (n, ..., k).

        Operator-shaped batches (a feature vector per grid position) count
        every position of every sample as one row: the head is shared by all
        positions, like the pointwise projection that ends a neural operator.
        ``sample_weight`` (n,) weights every row of a sample (all its grid
        positions); the count is then the sum of the weights, so that an
        integer weight equals repeating the sample and a zero dropping it.
        """
        augmented = augment(features.reshape(-1, features.shape[-1]))
        targets = targets.reshape(-1, targets.shape[-1]).to(ACCUMULATION_DTYPE)
        if sample_weight is None:
            weighted, weighted_targets, count = augmented, targets, float(augmented.shape[0])
        else:
            row_weight = row_weights(sample_weight, augmented.shape[0])[:, None]
            weighted, weighted_targets = augmented * row_weight, targets * row_weight
            count = float(row_weight.sum())
        return cls(
            weighted.T @ augmented,
            weighted.T @ targets,
            count,
            (weighted_targets * targets).sum(dim=0),
        )

    def __add__(self, other):
        if self.target_sq is None or other.target_sq is None:
            target_sq = None
        else:
            target_sq = self.target_sq + other.target_sq
        return RidgeStatistics(
            self.gram + other.gram, self.cross + other.cross, self.count + other.count, target_sq
        )

    def discounted(self, factor):
        """Statistics with every past row down-weighted by ``factor``."""
        target_sq = None if self.target_sq is None else self.target_sq * factor
        return RidgeStatistics(
            self.gram * factor, self.cross * factor, self.count * factor, target_sq
        )


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
    # Positive definite: lam > 0 penalises every coefficient; alpha > 0 every one
    # but the intercept, whose diagonal entry is the (positive) row count.
    definite = lam > 0 or (alpha > 0 and stats.count > 0)
    return solve_spd(system, rhs, definite=definite)


def solve_proximal_batch(features, targets, alpha, lam, previous, sample_weight=None):
    """Proximal ridge head of one mini-batch, in the cheaper of two equivalent forms.

    The same solution as ``solve_head(RidgeStatistics.from_batch(features,
    targets), alpha, lam, previous)``: with ``U = aug(Phi)`` (``B`` rows,
    ``m = d + 1`` columns) and the diagonal ``A = B P``, ``P = lam I + alpha D``,
    it solves ``(U^T U + A) W = U^T Y + B lam W_prev``. When the batch has fewer
    rows than the head has coefficients and ``lam > 0`` (so ``A`` is
    invertible), the Woodbury identity moves the solve to the ``B x B`` row
    space::

        R = U^T Y + B lam W_prev
        W = A^-1 (R - U^T (I + U A^-1 U^T)^-1 U A^-1 R)

    which costs ``O(B^2 m)`` instead of the ``O(B m^2 + m^3)`` of forming and
    factorising the ``m x m`` system. ``I + U A^-1 U^T`` has every eigenvalue
    at least 1, so its Cholesky factorisation never needs jitter; a failed one
    (non-finite features) gives NaN weights, without a host synchronisation.
    Well-conditioned batches of float32 features on the CPU are solved in
    float32, at half the cost of float64 or less (the conditioning bound of
    :data:`FLOAT32_CONDITION_LIMIT`), tall or large ones up to
    :data:`REFINED_FLOAT32_CONDITION_LIMIT` with one step of iterative
    refinement in float64, and again in float64 should the float32
    factorisation fail; the result is float64 either way.

    Parameters
    ----------
    features : torch.Tensor of shape (B, ..., d)
        Operator-shaped batches count every grid position as a row.
    targets : torch.Tensor of shape (B, ..., k)
    alpha : float
        Per-sample ridge penalty, as for :func:`solve_head`.
    lam : float
        Per-sample proximal strength.
    previous : torch.Tensor of shape (d + 1, k)
        The head before this batch.
    sample_weight : torch.Tensor of shape (B,), default=None
        Weights of the batch's samples; a weighted batch is solved from its
        float64 normal equations (:meth:`RidgeStatistics.from_batch`).

    Returns
    -------
    torch.Tensor of shape (d + 1, k), float64

    Examples
    --------
    >>> import torch
    >>> generator = torch.Generator().manual_seed(0)
    >>> phi, y = torch.randn(4, 10, generator=generator), torch.randn(4, 1, generator=generator)
    >>> previous = torch.zeros(11, 1, dtype=torch.float64)
    >>> fast = solve_proximal_batch(phi, y, 0.1, 1.0, previous)
    >>> exact = solve_head(RidgeStatistics.from_batch(phi, y), 0.1, 1.0, previous)
    >>> torch.allclose(fast, exact, rtol=0, atol=1e-6)  # fast solves in float32 here
    True
    """
    if sample_weight is not None:
        stats = RidgeStatistics.from_batch(features, targets, sample_weight)
        return solve_head(stats, alpha, lam, previous)
    if lam > 0:
        rows = augment(features.reshape(-1, features.shape[-1]), dtype=features.dtype)
        precision = _batch_precision(rows, alpha, lam)
        if precision != "float64":
            refine = precision == "refined"
            weights = _solve_batch_rows(rows, targets, alpha, lam, previous, True, refine)
            if weights is not None:
                return weights
        return _solve_batch_in_float64(rows, features, targets, alpha, lam, previous)
    # float64 normal equations, with the solver's jitter and pseudo-inverse fallbacks.
    return solve_head(RidgeStatistics.from_batch(features, targets), alpha, lam, previous)


def _solve_batch_in_float64(rows, features, targets, alpha, lam, previous):
    """The float64 proximal head (``lam > 0``) of the augmented ``rows`` of ``features``.

    The row-space solve for wide batches; for tall ones the normal equations,
    with the solver's jitter and pseudo-inverse fallbacks.
    """
    if rows.shape[0] < rows.shape[1]:
        return _solve_batch_rows(rows.to(ACCUMULATION_DTYPE), targets, alpha, lam, previous)
    return solve_head(RidgeStatistics.from_batch(features, targets), alpha, lam, previous)


def _solve_batch_rows(rows, targets, alpha, lam, previous, in_float32=False, refine=False):
    """The proximal head from the augmented rows ``U``, in their dtype.

    Normal equations for tall batches, the Woodbury row-space form for wide
    ones (see :func:`solve_proximal_batch`); the result is float64. A failed
    factorisation gives NaN weights, with no host synchronisation, or, with
    ``in_float32`` (CPU only, where reading values back is free), ``None`` for
    the caller to solve again in float64, also when the result is not finite.
    ``refine``: one step of iterative refinement, the residual in float64 and
    the correction from the same factorisation (see
    :data:`REFINED_FLOAT32_CONDITION_LIMIT`).
    """
    n_rows, n_coefficients = rows.shape
    solve, info = _factorised_batch_system(rows, alpha, lam)
    if in_float32 and int(info) != 0:
        return None
    targets = targets.reshape(-1, targets.shape[-1])
    weights = solve(_proximal_rhs(rows, targets, previous, lam)).to(ACCUMULATION_DTYPE)
    if refine:
        # float32 to float64 is exact, so this residual is the float64 system's.
        rows64 = rows.to(ACCUMULATION_DTYPE)
        penalty, _ = _batch_penalty(
            n_coefficients, alpha, lam, n_rows, rows.device, ACCUMULATION_DTYPE
        )
        exact_rhs = _proximal_rhs(rows64, targets, previous, lam)
        residual = exact_rhs - torch.addmm(penalty[:, None] * weights, rows64.T, rows64 @ weights)
        weights = weights + solve(residual.to(rows.dtype)).to(ACCUMULATION_DTYPE)
    if in_float32:
        # Targets or a previous head beyond float32's range overflow the
        # right-hand side (the bound only vouches for the rows): float64 then.
        return weights if bool(torch.isfinite(weights).all()) else None
    # NaN, not a silently wrong head, when the factorisation failed.
    return torch.where(info == 0, weights, float("nan"))


def _proximal_rhs(rows, targets, previous, lam):
    """``U^T Y + B lam W_prev``: a batch's proximal right-hand side, in the rows' dtype."""
    dtype = rows.dtype
    return torch.addmm(previous.to(dtype), rows.T, targets.to(dtype), beta=rows.shape[0] * lam)


def _factorised_batch_system(rows, alpha, lam):
    """Cholesky factorisation of a batch's proximal system, and its solve.

    Returns ``(solve, info)``: ``solve(rhs)`` is ``(U^T U + A)^-1 rhs`` in the
    rows' dtype, from the ``m x m`` factor for tall batches or, by the Woodbury
    identity, the ``B x B`` one for wide batches; ``info`` is the
    factorisation's status (0: success).
    """
    n_rows, n_coefficients = rows.shape
    penalty, inverse = _batch_penalty(n_coefficients, alpha, lam, n_rows, rows.device, rows.dtype)
    if n_rows >= n_coefficients:
        system = rows.T @ rows
        system.diagonal().add_(penalty)
        factor, info = torch.linalg.cholesky_ex(system)
        return (lambda rhs: torch.cholesky_solve(rhs, factor)), info
    scaled_rows = rows * inverse
    kernel = scaled_rows @ rows.T
    kernel.diagonal().add_(1.0)
    factor, info = torch.linalg.cholesky_ex(kernel)

    def solve(rhs):
        correction = rows.T @ torch.cholesky_solve(scaled_rows @ rhs, factor)
        return (rhs - correction) * inverse[:, None]

    return solve, info


# Largest conditioning bound at which a batch is solved in float32. With
# A = diag(penalty) (every entry positive), the A-scaled system
# I + A^-1/2 U^T U A^-1/2 and the row-space one I + U A^-1 U^T have condition
# numbers at most 1 + trace(U A^-1 U^T) = 1 + sum_ij u_ij^2 / a_j, a cheap
# reduction over the rows; the Cholesky solve's accuracy follows the scaled
# system's conditioning. Deciding reads the bound back to the host, free on the
# CPU; on a GPU it would stall the device once per batch, so GPU batches (and
# float64 features) are solved in float64. The relative error of the float32
# head stayed below 1.2e-8 times the bound on ReLU-like batches (B in {32, 256},
# d up to 4096, bounds 6e2 to 9e6) and below about 2.5e-8 times it on FNO
# feature batches of 5120 rows (bounds 10 to 3e5): at most about 2.5e-3 here,
# far below the change of the head from one mini-batch to the next. At the
# former limit, 1e4, most Darcy batches (bounds 1e4-1e5) went to float64, twice
# as slow; at 1e5 the three-seed test errors of the Darcy benchmark were the same
# to four digits (benchmarks/README.md).
FLOAT32_CONDITION_LIMIT = 1e5
# Up to this bound a float32 factorisation still serves, followed by one step
# of iterative refinement (the residual computed in float64, the correction
# solved with the float32 factor): the error after the step is about the float32
# error times the bound times float32's epsilon. Measured up to the limit
# (benchmarks/bench_batch_solve.py, benchmarks/README.md): relative errors of
# 1e-12 to 6e-5, in 0.5-1.0x the time of the float64 solve, on tall batches and
# on wide ones with 2e6 multiply-adds or more (on small wide batches the float64
# row-space solve is the cheaper one).
REFINED_FLOAT32_CONDITION_LIMIT = 1e6


@functools.lru_cache(maxsize=32)
def _batch_penalty(n_coefficients, alpha, lam, n_rows, device, dtype):
    """The diagonal ``B (lam I + alpha D)`` of a batch's proximal system and its inverse.

    Cached: every batch of a fit has the same size and penalties, and on the
    small batches where the head's cost is mostly per-operation overhead,
    rebuilding these vectors was a tenth of it.
    """
    penalty = n_rows * penalty_diagonal(n_coefficients, alpha, lam, device=device)
    return penalty.to(dtype), (1.0 / penalty).to(dtype)


def _batch_precision(rows, alpha, lam):
    """How a batch's proximal system is solved: 'float32', 'refined' or 'float64'.

    CPU float32 rows whose conditioning bound is within
    :data:`FLOAT32_CONDITION_LIMIT` are solved in float32; tall or large ones
    within :data:`REFINED_FLOAT32_CONDITION_LIMIT` in float32 with a refinement
    step; everything else (GPU or float64 rows included) in float64. Deciding
    reads the bound back to the host, free on the CPU.
    """
    if rows.dtype != torch.float32 or rows.device.type != "cpu":
        return "float64"
    # (A NaN bound, from non-finite features, fails both comparisons.)
    bound = _conditioning_bound(rows, alpha, lam)
    if bound <= FLOAT32_CONDITION_LIMIT:
        return "float32"
    # Refining adds about ten small operations. That always pays against the
    # float64 normal equations of a tall batch, and against a wide batch's
    # float64 row-space solve once that has about 2e6 multiply-adds (B^2 m)
    # to save (benchmarks/bench_batch_solve.py).
    n_rows, n_coefficients = rows.shape
    worth_refining = n_rows >= n_coefficients or n_rows**2 * n_coefficients >= 2e6
    if worth_refining and bound <= REFINED_FLOAT32_CONDITION_LIMIT:
        return "refined"
    return "float64"


def _conditioning_bound(rows, alpha, lam):
    """``1 + sum_ij u_ij^2 / a_j``, the bound of :data:`FLOAT32_CONDITION_LIMIT`, as a float."""
    n_rows, n_coefficients = rows.shape
    _, inverse = _batch_penalty(n_coefficients, alpha, lam, n_rows, rows.device, rows.dtype)
    return 1.0 + float(rows.square().sum(dim=0) @ inverse)


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


def apply_linear_head(features, coef, intercept):
    """A fitted head, given as scikit-learn's ``coef_`` and ``intercept_``, on ``features``.

    ``coef`` is ``(d,)`` or ``(n_outputs, d)`` and ``intercept`` a float or
    ``(n_outputs,)``, both numpy; ``features`` is ``(n, ..., d)``. The result has
    the dtype of ``features`` and shape ``(n, ...)`` or ``(n, ..., n_outputs)``.
    Equal to :func:`apply_head` on the stacked weights, without building them.

    Examples
    --------
    >>> import numpy as np
    >>> apply_linear_head(torch.ones(3, 2), np.array([2.0, 1.0]), 0.5).tolist()
    [3.5, 3.5, 3.5]
    """
    if features.device.type == "cpu" and not features.requires_grad:
        # numpy's small products dispatch in ~1 us against torch's ~5: a one-row
        # prediction is mostly such overhead.
        values = features.numpy()
        return torch.from_numpy(values @ coef.T.astype(values.dtype, copy=False) + intercept)
    coef = torch.as_tensor(coef, dtype=features.dtype, device=features.device)
    intercept = torch.as_tensor(intercept, dtype=features.dtype, device=features.device)
    return features @ (coef.T if coef.ndim == 2 else coef) + intercept


# ---------------------------------------------------------------------------
# Penalty selection and predictive uncertainty from the same statistics.
# ---------------------------------------------------------------------------


def _require_target_sq(stats, caller):
    if stats.target_sq is None:
        raise ValueError(
            f"{caller} needs RidgeStatistics.target_sq (sum of squared targets); "
            "build the statistics with RidgeStatistics.from_batch."
        )
    return stats.target_sq


def _centred_statistics(stats):
    """Eliminate the unpenalised intercept from augmented statistics.

    With ``t = G[d, d]`` the (possibly discounted) row total, feature means
    ``mu = G[:d, d] / t`` and target means ``ybar = C[d] / t``::

        G_c  = G[:d, :d] - t mu mu^T        # sum (phi - mu)(phi - mu)^T
        C_c  = C[:d]     - t mu ybar^T      # sum (phi - mu)(y - ybar)^T
        yy_c = target_sq - t ybar**2        # sum (y - ybar)**2, per output

    Returns ``(mu, ybar, G_c, C_c, yy_c, t)``.
    """
    target_sq = _require_target_sq(stats, "this function")
    gram, cross = stats.gram, stats.cross
    total = gram[-1, -1].clamp_min(torch.finfo(gram.dtype).tiny)
    mean_features = gram[:-1, -1] / total
    mean_targets = cross[-1] / total
    gram_c = gram[:-1, :-1] - total * torch.outer(mean_features, mean_features)
    gram_c = 0.5 * (gram_c + gram_c.T)
    cross_c = cross[:-1] - total * torch.outer(mean_features, mean_targets)
    target_sq_c = target_sq - total * mean_targets**2
    return mean_features, mean_targets, gram_c, cross_c, target_sq_c, total


def ridge_gcv_scores(stats, alphas, *, per_output=False):
    """Generalised cross-validation score of the ridge head for every alpha.

    One symmetric eigendecomposition of the centred Gram matrix serves every
    candidate. With ``G_c = Q diag(s) Q^T``, ``z = Q^T C_c`` (see the intercept
    elimination in the module notes) and ``f = s / (s + n alpha)``::

        RSS(alpha) = yy_c - sum_i (2 - f_i) z_i**2 / (s_i + n alpha)
        df(alpha)  = sum_i f_i + 1                  # + 1 for the intercept
        GCV(alpha) = n RSS(alpha) / (n - df(alpha))**2

    ``RSS`` is ``yy_c - 2 w^T C_c + w^T G_c w`` at the ridge coefficients
    ``w = Q (z / (s + n alpha))``, i.e. the training residual sum of squares
    of :func:`solve_head` (``df`` is the trace of its hat matrix). Eigenvalues
    with ``s + n alpha`` below ``d * eps * max(s)`` count as exactly zero
    (pseudo-inverse, so ``alpha = 0`` with collinear features gives
    ``df = rank + 1``). Where ``n <= df`` the score is ``inf``.

    This is GCV, not leave-one-out: :class:`sklearn.linear_model.RidgeCV`
    with ``cv=None`` minimises the exact leave-one-out error instead, so the
    two can choose different alphas.

    Parameters
    ----------
    stats : RidgeStatistics
        Must carry ``target_sq``.
    alphas : sequence of float or torch.Tensor of shape (m,)
        Per-sample penalties, as for :func:`solve_head`.
    per_output : bool, default=False
        Return one score per output, shape (m, k), instead of the sum over
        outputs, shape (m,). The sum is what one alpha shared by all outputs
        minimises.

    Returns
    -------
    torch.Tensor of shape (m,) or (m, k), float64

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 8).reshape(-1, 1)
    >>> y = 2 * x + torch.tensor([0.1, -0.1] * 4).reshape(-1, 1)
    >>> scores = ridge_gcv_scores(RidgeStatistics.from_batch(x, y), [0.0, 1.0])
    >>> bool(scores[0] < scores[1])
    True
    """
    alphas = torch.as_tensor(alphas, dtype=ACCUMULATION_DTYPE, device=stats.gram.device)
    alphas = alphas.reshape(-1)
    n_outputs = stats.cross.shape[1]
    shape = (alphas.shape[0], n_outputs)
    if not (torch.isfinite(stats.gram).all() and torch.isfinite(stats.cross).all()):
        scores = torch.full(shape, float("nan"), dtype=ACCUMULATION_DTYPE, device=alphas.device)
        return scores if per_output else scores.sum(dim=1)
    _, _, gram_c, cross_c, target_sq_c, _ = _centred_statistics(stats)
    n_rows = stats.count
    penalty_scale = max(stats.count, 1.0)  # the n multiplying alpha in solve_head
    eigenvalues, eigenvectors = torch.linalg.eigh(gram_c)
    eigenvalues = eigenvalues.clamp_min(0.0)  # G_c is PSD; drop roundoff negatives
    projected_sq = (eigenvectors.T @ cross_c) ** 2  # z_i**2, shape (d, k)
    tolerance = gram_c.shape[0] * torch.finfo(ACCUMULATION_DTYPE).eps
    tolerance = tolerance * eigenvalues.max().clamp_min(0.0) if eigenvalues.numel() else 0.0
    # denominators s_i + n alpha for every (alpha, i): shape (m, d)
    denominators = eigenvalues[None, :] + penalty_scale * alphas[:, None]
    keep = denominators > tolerance
    inverse = torch.where(keep, 1.0 / torch.where(keep, denominators, 1.0), 0.0)
    shrinkage = eigenvalues[None, :] * inverse  # f_i = s_i / (s_i + n alpha)
    # RSS = yy_c - sum_i (2 - f_i) z_i^2 / (s_i + n alpha); clamp roundoff below 0
    explained = ((2.0 - shrinkage) * inverse) @ projected_sq  # (m, k)
    rss = (target_sq_c[None, :] - explained).clamp_min(0.0)
    dof = shrinkage.sum(dim=1) + 1.0  # (m,)
    residual_dof = n_rows - dof
    valid = residual_dof > 0
    safe = torch.where(valid, residual_dof, 1.0)
    scores = torch.where(valid[:, None], n_rows * rss / safe[:, None] ** 2, float("inf"))
    return scores if per_output else scores.sum(dim=1)


def select_alpha(stats, alphas):
    """The candidate alpha with the smallest GCV score (summed over outputs).

    ``argmin_alpha GCV(alpha)`` with :func:`ridge_gcv_scores`; ties go to the
    first candidate and NaN scores are never chosen unless all are NaN (then
    the first candidate is returned).

    Parameters
    ----------
    stats : RidgeStatistics
        Must carry ``target_sq``.
    alphas : sequence of float or torch.Tensor of shape (m,)

    Returns
    -------
    best_alpha : float
    scores : torch.Tensor of shape (m,), float64

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 8).reshape(-1, 1)
    >>> y = 2 * x + torch.tensor([0.1, -0.1] * 4).reshape(-1, 1)
    >>> best, scores = select_alpha(RidgeStatistics.from_batch(x, y), [10.0, 0.0, 1.0])
    >>> best, tuple(scores.shape)
    (0.0, (3,))
    """
    alphas = torch.as_tensor(alphas, dtype=ACCUMULATION_DTYPE, device=stats.gram.device)
    alphas = alphas.reshape(-1)
    if alphas.numel() == 0:
        raise ValueError("select_alpha needs at least one candidate alpha.")
    scores = ridge_gcv_scores(stats, alphas)
    return best_candidate(alphas, scores), scores


def best_candidate(alphas, scores):
    """The alpha of the smallest score: ties go to the first, NaN is never chosen.

    When no score is finite, the first candidate.

    Examples
    --------
    >>> import torch
    >>> best_candidate([0.1, 1.0, 10.0], torch.tensor([2.0, float("nan"), 1.0]))
    10.0
    """
    ranked = torch.nan_to_num(torch.as_tensor(scores), nan=float("inf"))
    best = int(torch.argmin(ranked)) if torch.isfinite(ranked).any() else 0
    return float(alphas[best])


def head_covariance(stats, alpha, weights=None):
    """Noise variance and posterior scale matrix of the ridge head.

    Bayesian reading: ``y = aug(phi)^T w + N(0, sigma^2)`` with the Gaussian
    prior ``w[:d] ~ N(0, sigma^2 / (n alpha) I)`` (flat on the intercept) has
    posterior mean :func:`solve_head` and covariance ``sigma^2 A^{-1}`` with
    ``A = G + n alpha D``. The noise variance is estimated per output as::

        RSS   = sum (y - aug(phi)^T w)**2           # from the statistics
        df    = trace(A^{-1} G)                     # hat-matrix trace, incl. intercept
        sigma^2 = RSS / (n - df)                    # NaN where n <= df

    ``RSS`` is evaluated on the intercept-eliminated statistics,
    ``yy_c - 2 w_d^T C_c + w_d^T G_c w_d + t (ybar - b - mu^T w_d)**2``, an
    exact rewriting of ``y^T y - 2 w^T C + w^T G w`` with less cancellation.
    ``A^{-1}`` comes from one Cholesky factorisation (:func:`solve_spd`).

    Parameters
    ----------
    stats : RidgeStatistics
        Must carry ``target_sq``.
    alpha : float
        Per-sample ridge penalty, as for :func:`solve_head`.
    weights : torch.Tensor of shape (d + 1, k), default=None
        Head weights whose residuals define ``RSS``; ``solve_head(stats,
        alpha)`` when omitted.

    Returns
    -------
    noise_variance : torch.Tensor of shape (k,), float64
    inverse_system : torch.Tensor of shape (d + 1, d + 1), float64
        ``A^{-1}``, symmetric.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 6).reshape(-1, 1)
    >>> y = 3 * x + 1 + torch.tensor([0.1, -0.1] * 3).reshape(-1, 1)
    >>> variance, inverse = head_covariance(RidgeStatistics.from_batch(x, y), alpha=0.0)
    >>> tuple(variance.shape), tuple(inverse.shape)
    ((1,), (2, 2))
    """
    _require_target_sq(stats, "head_covariance")
    if weights is None:
        weights = solve_head(stats, alpha)
    weights = weights.detach().to(dtype=ACCUMULATION_DTYPE, device=stats.gram.device)
    n_rows = max(stats.count, 1.0)
    n_coefficients = stats.gram.shape[0]
    system = stats.gram + torch.diag(
        n_rows * penalty_diagonal(n_coefficients, alpha, device=stats.gram.device)
    )
    eye = torch.eye(n_coefficients, dtype=ACCUMULATION_DTYPE, device=stats.gram.device)
    inverse_system = solve_spd(system, eye)
    inverse_system = 0.5 * (inverse_system + inverse_system.T)
    # trace(A^{-1} G) = sum_ij (A^{-1})_ij G_ij for symmetric matrices
    dof = (inverse_system * stats.gram).sum()
    mean_features, mean_targets, gram_c, cross_c, target_sq_c, total = _centred_statistics(stats)
    slopes, intercept = weights[:-1], weights[-1]
    # sum (r - rbar)^2 + t rbar^2 with residual r = y - phi^T w_d - b
    mean_residual = mean_targets - intercept - mean_features @ slopes
    rss = (
        target_sq_c
        - 2.0 * (slopes * cross_c).sum(dim=0)
        + (slopes * (gram_c @ slopes)).sum(dim=0)
        + total * mean_residual**2
    ).clamp_min(0.0)
    residual_dof = stats.count - dof
    if residual_dof > 0:
        noise_variance = rss / residual_dof
    else:
        noise_variance = torch.full_like(rss, float("nan"))
    return noise_variance, inverse_system


def predictive_std(features, inverse_system, noise_variance):
    """Predictive standard deviation of the head at new feature rows.

    Gaussian predictive of the Bayesian head (see :func:`head_covariance`)::

        std_k(phi) = sqrt(sigma_k^2 (1 + aug(phi)^T A^{-1} aug(phi)))

    the noise plus the posterior spread of the head weights (the backbone is
    taken as fixed, so its uncertainty is not included).

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, d)
    inverse_system : torch.Tensor of shape (d + 1, d + 1)
        ``A^{-1}`` from :func:`head_covariance`.
    noise_variance : torch.Tensor of shape (k,)

    Returns
    -------
    torch.Tensor of shape (n_rows, k), float64

    Examples
    --------
    >>> import torch
    >>> inverse = torch.zeros(2, 2, dtype=torch.float64)
    >>> variance = torch.tensor([4.0], dtype=torch.float64)
    >>> predictive_std(torch.ones(3, 1), inverse, variance).ravel().tolist()
    [2.0, 2.0, 2.0]
    """
    augmented = augment(features.detach()).to(inverse_system.device)
    inverse_system = inverse_system.to(ACCUMULATION_DTYPE)
    # leverage h(phi) = aug^T A^{-1} aug, one value per row; clamp roundoff below 0
    leverage = ((augmented @ inverse_system) * augmented).sum(dim=1).clamp_min(0.0)
    noise_variance = noise_variance.to(dtype=ACCUMULATION_DTYPE, device=augmented.device)
    return torch.sqrt(noise_variance[None, :] * (1.0 + leverage[:, None]))

"""Operator-learning benchmarks of the Fourier Neural Operator papers, generated from scratch.

Two data sets of Li et al., "Fourier Neural Operator for Parametric Partial
Differential Equations" (ICLR 2021), at resolutions small enough to train on a
CPU, plus the metric the FNO papers report:

* 1-D viscous Burgers (:func:`make_burgers`, solver :func:`solve_burgers`)::

      u_t + (u^2 / 2)_x = nu u_xx   on the periodic domain [0, 1),
      u(x, 0) = u0(x) ~ N(0, 625 (-Laplacian + 25 I)^(-2)),

  mapping the initial condition ``u0`` to ``u(., T)``. Pseudo-spectral in space
  (numpy FFT, 2/3-rule dealiasing) and ETDRK4 in time (Cox & Matthews, 2002,
  with the contour-integral coefficients of Kassam & Trefethen, 2005), the
  scheme of the chebfun ``spin`` solver that generated the original data.
* 2-D Darcy flow (:func:`make_darcy`, solver :func:`solve_darcy`)::

      -div(a(x) grad u(x)) = f(x)   on the unit square, u = 0 on the boundary,
      f = 1,  a = psi(g),  g ~ N(0, (-Laplacian + 9 I)^(-2)) (zero Neumann),
      psi(g) = 12 where g > 0 and 3 elsewhere,

  mapping the coefficient ``a`` to the pressure ``u``, with the five-point
  finite-difference scheme of the reference MATLAB code, solved by
  :mod:`scipy.sparse`.
* :func:`relative_l2_error`, the mean per-sample relative L2 error.

As in the reference generators (``GRF1.m`` and ``GRF.m`` of the
neuraloperator repository), both Gaussian random fields have zero mean: their
constant Karhunen-Loeve mode is dropped.
"""

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from sklearn.utils import Bunch, check_random_state

# Burgers: GRF N(0, sigma^2 (-Laplacian + tau^2 I)^(-gamma)) of the FNO paper.
BURGERS_SIGMA = 25.0
BURGERS_TAU = 5.0
BURGERS_GAMMA = 2.0
# The solver's grid: the smallest multiple of ``resolution`` with at least this
# many points. 1024 points resolve viscosities down to about 1e-3 for these
# initial conditions; at nu = 0.1 the solution's spectrum is at round-off level
# far below the 2/3 cut-off.
BURGERS_FINE_POINTS = 1024
# ETDRK4 time step: at most this, and at most BURGERS_CFL / (u_max k_eff), where
# k_eff = min(u_max / nu, 2 pi n / 3) is the largest angular wavenumber at which
# advection is not swamped by diffusion. Measured on GRF draws, the scheme is
# stable up to about 2.4 times this step, and at nu = 0.1 the default step of
# 0.01 is accurate to about 1e-6 relative L2 error.
BURGERS_MAX_DT = 0.01
BURGERS_CFL = 2.0
# solve_burgers warns when the solution's spectrum between n / 4 and the 2/3
# cut-off n / 3 exceeds this fraction of its largest (nonconstant) mode.
BURGERS_TAIL_TOLERANCE = 1e-5
_BURGERS_CHUNK = 128
_CONTOUR_POINTS = 32

# Darcy: GRF N(0, (-Laplacian + tau^2 I)^(-alpha)) with zero Neumann boundary.
DARCY_TAU = 3.0
DARCY_ALPHA = 2.0
DARCY_HIGH = 12.0
DARCY_LOW = 3.0

_BURGERS_DESCR = """Viscous Burgers (FNO benchmark)
===============================

1-D viscous Burgers equation u_t + (u^2/2)_x = nu u_xx on the periodic domain
[0, 1) (Li et al., "Fourier Neural Operator", ICLR 2021). ``X`` (n, {resolution}):
initial conditions u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2)) (mean-zero
Gaussian random field); ``y`` (n, {resolution}): the solution u(., T); both on
``grid`` = arange({resolution}) / {resolution}. Solved pseudo-spectrally (2/3
dealiasing, ETDRK4 in time) on {fine} points and subsampled. n_samples={n_samples},
viscosity={viscosity}, time={time}. Score predictions with
:func:`skcflo.datasets.relative_l2_error`.
"""

_DARCY_DESCR = """Darcy flow (FNO benchmark)
==========================

2-D Darcy flow -div(a grad u) = 1 on the unit square with u = 0 on the boundary
(Li et al., "Fourier Neural Operator", ICLR 2021). ``X`` (n, {size}): coefficient
fields a = 12 where a mean-zero Gaussian random field N(0, (-Laplacian + 9 I)^(-2))
(zero Neumann) is positive and 3 elsewhere; ``y`` (n, {size}): the pressure u.
Both are given on the {resolution} x {resolution} grid of nodes (i / {last}, j / {last}),
boundary included, and flattened row-major (reshape with ``shape``). Five-point
finite differences, arithmetic face averages of a. n_samples={n_samples}.
Score predictions with :func:`skcflo.datasets.relative_l2_error`.
"""


def _check_int(value, name, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_positive(value, name, *, strict=True):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value < 0
        or (strict and value == 0)
    ):
        sign = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be a finite number {sign}, got {value!r}.")
    return float(value)


# --------------------------------------------------------------------------- Burgers


def _etdrk4_coefficients(lh):
    """ETDRK4 weights for the diagonal linear operator ``lh = dt * L``.

    Evaluated as means over a circle of radius 1 around each ``lh`` (Kassam &
    Trefethen, 2005), which avoids the cancellation of the closed forms at
    small ``|lh|``. The weights are returned without the factor ``dt``.
    """
    roots = np.exp(1j * np.pi * (np.arange(1, _CONTOUR_POINTS + 1) - 0.5) / _CONTOUR_POINTS)
    lr = lh[:, np.newaxis] + roots[np.newaxis, :]
    elr = np.exp(lr)
    q = np.real(np.mean((np.exp(lr / 2.0) - 1.0) / lr, axis=1))
    f1 = np.real(np.mean((-4.0 - lr + elr * (4.0 - 3.0 * lr + lr**2)) / lr**3, axis=1))
    f2 = np.real(np.mean((2.0 + lr + elr * (-2.0 + lr)) / lr**3, axis=1))
    f3 = np.real(np.mean((-4.0 - 3.0 * lr - lr**2 + elr * (4.0 - lr)) / lr**3, axis=1))
    return q, f1, f2, f3


def _burgers_n_steps(u0, viscosity, time):
    n = u0.shape[-1]
    u_max = float(np.max(np.abs(u0))) if u0.size else 0.0
    # Viscous Burgers obeys a maximum principle, so u_max bounds |u| for all t.
    rate = u_max * min(u_max / viscosity, 2.0 * np.pi * n / 3.0)
    dt = BURGERS_MAX_DT if rate == 0.0 else min(BURGERS_MAX_DT, BURGERS_CFL / rate)
    return max(1, int(np.ceil(time / dt - 1e-9)))


def solve_burgers(u0, *, viscosity=0.1, time=1.0, n_steps=None):
    """Solve the periodic viscous Burgers equation from given initial conditions.

    Integrates ``u_t + (u^2 / 2)_x = viscosity * u_xx`` on ``[0, 1)`` with
    periodic boundary conditions, from ``u(x, 0) = u0(x)`` to ``time``:
    Fourier pseudo-spectral in space (2/3-rule dealiasing of the nonlinear
    term) and the fourth-order exponential time differencing Runge-Kutta
    scheme ETDRK4 in time, which treats the viscous term exactly. All samples
    are advanced together. The mean of each ``u0`` is conserved exactly.

    Parameters
    ----------
    u0 : array-like of shape (n_points,) or (n_samples, n_points)
        Initial conditions on the uniform periodic grid ``x_j = j / n_points``.
        The grid has to resolve the solution: the result is only as accurate
        as the spectrum of ``u`` is small at wavenumbers near ``n_points / 3``
        (a :class:`UserWarning` is raised when, between ``n_points / 4`` and
        ``n_points / 3``, it exceeds ``1e-5`` of its peak).
    viscosity : float, default=0.1
        The viscosity ``nu > 0``.
    time : float, default=1.0
        The final time ``T >= 0``.
    n_steps : int or None, default=None
        Number of ETDRK4 steps. None picks a stable step from the largest
        ``|u0|`` of the batch: ``dt = min(0.01, 2 / (u_max * min(u_max / nu,
        2 pi n_points / 3)))``.

    Returns
    -------
    u : ndarray of the shape of ``u0``
        The solution at ``time``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(64) / 64
    >>> u = solve_burgers(1e-6 * np.sin(2 * np.pi * x), viscosity=0.1, time=1.0)
    >>> decay = np.exp(-0.1 * (2 * np.pi) ** 2)
    >>> bool(np.allclose(u, 1e-6 * decay * np.sin(2 * np.pi * x), rtol=0, atol=1e-12))
    True
    """
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim not in (1, 2) or u0.shape[-1] < 2:
        raise ValueError(
            "u0 must have shape (n_points,) or (n_samples, n_points) with n_points >= 2, "
            f"got shape {u0.shape}."
        )
    if not np.all(np.isfinite(u0)):
        raise ValueError("u0 contains NaN or infinity.")
    viscosity = _check_positive(viscosity, "viscosity")
    time = _check_positive(time, "time", strict=False)
    if time == 0.0:
        return u0.copy()
    if n_steps is None:
        n_steps = _burgers_n_steps(u0, viscosity, time)
    n_steps = _check_int(n_steps, "n_steps", 1)

    squeeze = u0.ndim == 1
    u0 = np.atleast_2d(u0)
    n = u0.shape[-1]
    k = np.arange(n // 2 + 1)
    wavenumber = 2.0 * np.pi * k
    dt = time / n_steps
    linear = -viscosity * wavenumber**2
    e_full = np.exp(dt * linear)
    e_half = np.exp(dt * linear / 2.0)
    q, f1, f2, f3 = (dt * w for w in _etdrk4_coefficients(dt * linear))
    # Nonlinear term -(u^2 / 2)_x in Fourier space; modes above n / 3 are cut.
    g = -0.5j * wavenumber * (3 * k <= n)
    if n % 2 == 0:
        g[-1] = 0.0  # the Nyquist mode of a derivative is not real

    def nonlinear(v):
        return g * np.fft.rfft(np.fft.irfft(v, n, axis=-1) ** 2, axis=-1)

    out = np.empty_like(u0)
    # Chunks keep the working set in cache; the step does not depend on them.
    for start in range(0, u0.shape[0], _BURGERS_CHUNK):
        v = np.fft.rfft(u0[start : start + _BURGERS_CHUNK], axis=-1)
        for _ in range(n_steps):
            nv = nonlinear(v)
            a = e_half * v + q * nv
            na = nonlinear(a)
            b = e_half * v + q * na
            nb = nonlinear(b)
            c = e_half * a + q * (2.0 * nb - nv)
            nc = nonlinear(c)
            v = e_full * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nc
        out[start : start + _BURGERS_CHUNK] = np.fft.irfft(v, n, axis=-1)
    _warn_if_under_resolved(out, viscosity)
    return out[0] if squeeze else out


def _warn_if_under_resolved(u, viscosity):
    n = u.shape[-1]
    if n < 8:
        return
    spectrum = np.abs(np.fft.rfft(u, axis=-1))
    peak = spectrum[:, 1:].max()
    tail = spectrum[:, n // 4 + 1 : n // 3 + 1].max()
    if np.isfinite(peak) and peak > 0 and not tail <= BURGERS_TAIL_TOLERANCE * peak:
        warnings.warn(
            f"The Burgers solution is under-resolved on {n} points at viscosity={viscosity}: "
            f"its spectrum near the dealiasing cut-off is {tail / peak:.1e} of its peak. "
            "Use a finer grid or a larger viscosity.",
            UserWarning,
            stacklevel=3,
        )


def _burgers_initial_conditions(n_samples, n_points, rng):
    """Mean-zero periodic GRF ``N(0, 625 (-Laplacian + 25 I)^(-2))`` on ``n_points``.

    Karhunen-Loeve expansion in the orthonormal basis ``sqrt(2) cos(2 pi k x)``,
    ``sqrt(2) sin(2 pi k x)``, ``k = 1 .. (n_points - 1) // 2``, with standard
    deviations ``sigma ((2 pi k)^2 + tau^2)^(-gamma / 2)``.
    """
    k = np.arange(1, (n_points - 1) // 2 + 1)
    std = BURGERS_SIGMA * ((2.0 * np.pi * k) ** 2 + BURGERS_TAU**2) ** (-BURGERS_GAMMA / 2.0)
    xi = rng.standard_normal((n_samples, 2, k.size))
    # sqrt(2) (A cos + B sin) = 2 Re(c e^{2 pi i k x}) with c = (A - iB) / sqrt(2);
    # irfft divides by n_points and doubles the positive-frequency terms.
    coef = np.zeros((n_samples, n_points // 2 + 1), dtype=np.complex128)
    coef[:, 1 : k.size + 1] = n_points * std * (xi[:, 0] - 1j * xi[:, 1]) / np.sqrt(2.0)
    return np.fft.irfft(coef, n_points, axis=-1)


def make_burgers(n_samples=1000, *, resolution=128, viscosity=0.1, time=1.0, random_state=None):
    """Draw initial conditions and solutions of the FNO Burgers benchmark.

    The operator maps ``u0`` to ``u(., time)`` for the periodic viscous Burgers
    equation ``u_t + (u^2 / 2)_x = viscosity * u_xx`` on ``[0, 1)``, with
    ``u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2))`` (Li et al., 2021; mean-zero,
    as in the reference generator). Each ``u0`` is drawn and solved by
    :func:`solve_burgers` on a fine grid of ``resolution * ceil(1024 /
    resolution)`` points; both are then subsampled to ``resolution`` points.
    A thousand samples at the default sizes take about 5 s on two CPU cores.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of (initial condition, solution) pairs.
    resolution : int, default=128
        Number of grid points of the returned functions, ``>= 2``.
    viscosity : float, default=0.1
        The viscosity ``nu > 0``.
    time : float, default=1.0
        The final time ``T >= 0``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw (see :func:`sklearn.utils.check_random_state`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (n_samples, resolution) float64 initial conditions; ``y``
        (n_samples, resolution) float64 solutions at ``time``; ``grid``
        (resolution,) the points ``arange(resolution) / resolution``;
        ``DESCR``.

    See Also
    --------
    relative_l2_error : The metric of the FNO papers.

    Examples
    --------
    >>> data = make_burgers(4, resolution=32, random_state=0)
    >>> data.X.shape, data.y.shape, data.grid.shape
    ((4, 32), (4, 32), (32,))
    >>> float(data.grid[1])
    0.03125
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    resolution = _check_int(resolution, "resolution", 2)
    viscosity = _check_positive(viscosity, "viscosity")
    time = _check_positive(time, "time", strict=False)
    rng = check_random_state(random_state)
    factor = max(1, -(-BURGERS_FINE_POINTS // resolution))
    fine = resolution * factor
    u0 = _burgers_initial_conditions(n_samples, fine, rng)
    u = solve_burgers(u0, viscosity=viscosity, time=time)
    return Bunch(
        X=np.ascontiguousarray(u0[:, ::factor]),
        y=np.ascontiguousarray(u[:, ::factor]),
        grid=np.arange(resolution) / resolution,
        DESCR=_BURGERS_DESCR.format(
            resolution=resolution,
            fine=fine,
            n_samples=n_samples,
            viscosity=viscosity,
            time=time,
        ),
    )


# --------------------------------------------------------------------------- Darcy


def _face_average(left, right, kind):
    if kind == "arithmetic":
        return 0.5 * (left + right)
    return 2.0 * left * right / (left + right)


def _darcy_pattern(m):
    """Row, column and (term, offset) labels of the interior five-point matrix."""
    idx = np.arange(m * m).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        src = idx[max(0, -di) : m - max(0, di), max(0, -dj) : m - max(0, dj)]
        dst = idx[max(0, di) : m - max(0, -di), max(0, dj) : m - max(0, -dj)]
        rows.append(src.ravel())
        cols.append(dst.ravel())
    return rows, cols


def solve_darcy(a, *, forcing=1.0, face_average="arithmetic"):
    """Solve ``-div(a grad u) = forcing`` on the unit square with ``u = 0`` on the boundary.

    Five-point finite differences on the ``s x s`` grid of nodes
    ``(i h, j h)``, ``h = 1 / (s - 1)``, boundary included: the flux between
    two neighbouring nodes uses the average of ``a`` at them (the arithmetic
    mean, as in the FNO reference solver, or the harmonic mean), so the
    matrix is symmetric positive definite; each sample is solved with
    :func:`scipy.sparse.linalg.spsolve`.

    Parameters
    ----------
    a : array-like of shape (s, s) or (n_samples, s, s)
        Positive coefficient at the nodes, ``s >= 3``; axis 0 and axis 1 are
        the two coordinates (``a[i, j]`` at ``(i h, j h)``).
    forcing : float or array-like broadcastable to ``a``, default=1.0
        Right-hand side ``f`` at the nodes; its boundary values are unused.
    face_average : {"arithmetic", "harmonic"}, default="arithmetic"
        How ``a`` is averaged between two neighbouring nodes.

    Returns
    -------
    u : ndarray of the shape of ``a``
        The solution at the nodes, float64, zero on the boundary.

    Examples
    --------
    One interior node: ``4 c u / h^2 = 1`` with ``h = 1 / 2``.

    >>> import numpy as np
    >>> float(solve_darcy(np.full((3, 3), 2.0))[1, 1])
    0.03125
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        raise ValueError(
            f"a must have shape (s, s) or (n_samples, s, s) with s >= 3, got shape {a.shape}."
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("a must be finite and positive.")
    if face_average not in ("arithmetic", "harmonic"):
        raise ValueError(f"face_average must be 'arithmetic' or 'harmonic', got {face_average!r}.")
    forcing = np.broadcast_to(np.asarray(forcing, dtype=np.float64), a.shape)
    if not np.all(np.isfinite(forcing)):
        raise ValueError("forcing contains NaN or infinity.")
    squeeze = a.ndim == 2
    a = a.reshape((-1,) + a.shape[-2:])
    forcing = forcing.reshape(a.shape)
    s = a.shape[-1]
    m = s - 2
    inv_h2 = float((s - 1) ** 2)

    # Face coefficients: fx[:, i, j] between nodes (i, j) and (i + 1, j);
    # fy[:, i, j] between (i, j) and (i, j + 1).
    fx = _face_average(a[:, :-1, :], a[:, 1:, :], face_average) * inv_h2
    fy = _face_average(a[:, :, :-1], a[:, :, 1:], face_average) * inv_h2
    # For interior node (i, j), i, j = 1 .. s - 2, the faces towards -x, +x, -y, +y.
    west = fx[:, :-1, 1:-1]
    east = fx[:, 1:, 1:-1]
    south = fy[:, 1:-1, :-1]
    north = fy[:, 1:-1, 1:]
    rows, cols = _darcy_pattern(m)
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    n = a.shape[0]
    values = np.concatenate(
        [
            (west + east + south + north).reshape(n, -1),
            -west[:, 1:, :].reshape(n, -1),
            -east[:, :-1, :].reshape(n, -1),
            -south[:, :, 1:].reshape(n, -1),
            -north[:, :, :-1].reshape(n, -1),
        ],
        axis=1,
    )
    rhs = forcing[:, 1:-1, 1:-1].reshape(n, -1)
    u = np.zeros_like(a)
    for i in range(n):
        matrix = sp.csc_matrix((values[i], (row, col)), shape=(m * m, m * m))
        u[i, 1:-1, 1:-1] = np.reshape(spsolve(matrix, rhs[i]), (m, m))
    return u[0] if squeeze else u


def _darcy_gaussian_field(n_samples, resolution, rng):
    """Mean-zero GRF ``N(0, (-Laplacian + 9 I)^(-2))``, zero Neumann, at the nodes.

    Karhunen-Loeve expansion in the orthonormal cosine basis
    ``c_k c_l cos(pi k x) cos(pi l y)`` (``c_0 = 1``, ``c_k = sqrt(2)``), modes
    ``0 <= k, l < resolution`` except the constant one, with standard
    deviations ``(pi^2 (k^2 + l^2) + tau^2)^(-alpha / 2)``.
    """
    k = np.arange(resolution)
    std = (np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + DARCY_TAU**2) ** (-DARCY_ALPHA / 2.0)
    std[0, 0] = 0.0
    norm = np.where(k == 0, 1.0, np.sqrt(2.0))
    coef = rng.standard_normal((n_samples, resolution, resolution)) * std * np.outer(norm, norm)
    x = np.arange(resolution) / (resolution - 1)
    basis = np.cos(np.pi * np.outer(x, k))  # (node, mode)
    return np.einsum("ik,nkl,jl->nij", basis, coef, basis, optimize=True)


def make_darcy(n_samples=500, *, resolution=32, random_state=None):
    """Draw coefficient and pressure fields of the FNO Darcy-flow benchmark.

    The operator maps the coefficient ``a`` to the solution ``u`` of
    ``-div(a grad u) = 1`` on the unit square with ``u = 0`` on the boundary,
    where ``a = 12`` where a Gaussian random field ``g ~ N(0, (-Laplacian +
    9 I)^(-2))`` (zero Neumann, mean zero as in the reference generator) is
    positive and ``a = 3`` elsewhere (Li et al., 2021). ``g`` is evaluated and
    the equation solved (by :func:`solve_darcy`) directly on the
    ``resolution x resolution`` grid of nodes ``(i, j) / (resolution - 1)``,
    boundary included. 500 samples at the default size take about a second.

    Parameters
    ----------
    n_samples : int, default=500
        Number of (coefficient, solution) pairs.
    resolution : int, default=32
        Nodes per side, boundary included, ``>= 3``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw (see :func:`sklearn.utils.check_random_state`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (n_samples, resolution**2) float64 coefficient fields, values in
        {3, 12}; ``y`` (n_samples, resolution**2) float64 pressure fields; both
        flattened row-major, so ``X[i].reshape(shape)[r, c]`` is the value at
        ``(r, c) / (resolution - 1)``; ``shape`` = (resolution, resolution);
        ``DESCR``.

    See Also
    --------
    relative_l2_error : The metric of the FNO papers.

    Examples
    --------
    >>> data = make_darcy(3, resolution=8, random_state=0)
    >>> data.X.shape, data.y.shape, data.shape
    ((3, 64), (3, 64), (8, 8))
    >>> import numpy as np
    >>> bool(np.isin(data.X, [3.0, 12.0]).all()), bool((data.y >= 0).all())
    (True, True)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    resolution = _check_int(resolution, "resolution", 3)
    rng = check_random_state(random_state)
    field = _darcy_gaussian_field(n_samples, resolution, rng)
    a = np.where(field > 0.0, DARCY_HIGH, DARCY_LOW)
    u = solve_darcy(a)
    size = resolution * resolution
    return Bunch(
        X=a.reshape(n_samples, size),
        y=u.reshape(n_samples, size),
        shape=(resolution, resolution),
        DESCR=_DARCY_DESCR.format(
            size=size, resolution=resolution, last=resolution - 1, n_samples=n_samples
        ),
    )


# --------------------------------------------------------------------------- metric


def relative_l2_error(y_true, y_pred):
    """Mean relative L2 error over samples, the metric of the FNO papers.

    ``mean_i ||y_pred_i - y_true_i||_2 / ||y_true_i||_2``, where ``y_i`` is
    sample ``i`` flattened (all axes but the first). It is the test loss
    reported by Li et al. (2021) (``LpLoss`` with ``p = 2`` in their code): a
    per-sample error, scale-free within each sample, and averaged so that
    every sample counts equally. Grid weights cancel in the ratio, so on a
    uniform grid it estimates the relative ``L^2`` error of the functions.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_points) or (n_samples, ...)
        True functions, one sample per row. A 1-D array is one sample.
    y_pred : array-like of the shape of ``y_true``
        Predicted functions.

    Returns
    -------
    error : float
        The mean relative error, ``>= 0``; 0 for perfect predictions.

    Examples
    --------
    >>> relative_l2_error([[3.0, 4.0], [1.0, 0.0]], [[3.0, 0.0], [1.0, 0.0]])
    0.4
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    if y_true.ndim == 0 or y_true.size == 0:
        raise ValueError(f"y_true must be a non-empty array of samples, got shape {y_true.shape}.")
    if y_true.ndim == 1:
        y_true, y_pred = y_true[np.newaxis], y_pred[np.newaxis]
    y_true = y_true.reshape(y_true.shape[0], -1)
    y_pred = y_pred.reshape(y_pred.shape[0], -1)
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("y_true and y_pred must be finite.")
    norms = np.linalg.norm(y_true, axis=1)
    if np.any(norms == 0):
        raise ValueError("Every sample of y_true needs a nonzero norm.")
    return float(np.mean(np.linalg.norm(y_pred - y_true, axis=1) / norms))

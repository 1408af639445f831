"""The FNO benchmark generators: Burgers, Darcy flow and the relative L2 metric."""

import warnings

import numpy as np
import pytest

from skcflo.datasets import (
    make_burgers,
    make_darcy,
    relative_l2_error,
    solve_burgers,
    solve_darcy,
)
from skcflo.datasets._pde import (
    BURGERS_SIGMA,
    BURGERS_TAU,
    DARCY_TAU,
    _burgers_initial_conditions,
    _burgers_n_steps,
    _darcy_gaussian_field,
)


def _band_limited(x, n_modes, seed):
    """A smooth periodic function with the Burgers GRF spectrum, cut at ``n_modes``."""
    rng = np.random.RandomState(seed)
    k = np.arange(1, n_modes + 1)
    std = np.sqrt(2) * BURGERS_SIGMA / ((2 * np.pi * k) ** 2 + BURGERS_TAU**2)
    a, b = std * rng.standard_normal((2, n_modes))
    phase = 2 * np.pi * np.outer(x, k)
    return np.cos(phase) @ a + np.sin(phase) @ b


def _rel(u, v):
    return float(np.max(np.linalg.norm(u - v, axis=-1) / np.linalg.norm(v, axis=-1)))


# --------------------------------------------------------------------------- Burgers


def test_make_burgers_shapes_dtypes_and_grid():
    data = make_burgers(6, resolution=64, random_state=0)
    assert data.X.shape == data.y.shape == (6, 64)
    assert data.X.dtype == data.y.dtype == data.grid.dtype == np.float64
    assert data.X.flags.c_contiguous and data.y.flags.c_contiguous
    np.testing.assert_array_equal(data.grid, np.arange(64) / 64)
    assert np.all(np.isfinite(data.X)) and np.all(np.isfinite(data.y))
    assert "Burgers" in data.DESCR and "viscosity=0.1" in data.DESCR


def test_make_burgers_is_deterministic():
    first = make_burgers(5, resolution=32, random_state=3)
    second = make_burgers(5, resolution=32, random_state=np.random.RandomState(3))
    other = make_burgers(5, resolution=32, random_state=4)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)
    assert not np.allclose(first.X, other.X)


def test_make_burgers_resolution_only_subsamples_the_fine_solution():
    # Both resolutions divide the 1024-point solver grid: same draws, same solves.
    coarse = make_burgers(4, resolution=64, random_state=1)
    fine = make_burgers(4, resolution=256, random_state=1)
    np.testing.assert_array_equal(coarse.X, fine.X[:, ::4])
    np.testing.assert_allclose(coarse.y, fine.y[:, ::4], rtol=0, atol=1e-14)


def test_burgers_initial_conditions_follow_the_grf():
    # Mean zero (no constant mode) and pointwise variance sum_k lambda_k |phi_k|^2
    # = sum_k 2 sd_k^2 over the basis sqrt(2) cos, sqrt(2) sin, where
    # sd_k^2 = lambda_k = 625 ((2 pi k)^2 + 25)^(-2).
    u0 = _burgers_initial_conditions(4000, 256, np.random.RandomState(0))
    np.testing.assert_allclose(u0.mean(axis=1), 0.0, atol=1e-13)
    k = np.arange(1, 128)
    variance = 2 * np.sum((BURGERS_SIGMA / ((2 * np.pi * k) ** 2 + BURGERS_TAU**2)) ** 2)
    # 4000 x 256 correlated values; the modes are independent, so the
    # grid-averaged variance has a relative standard error of about 1.5 %.
    assert np.mean(u0**2) == pytest.approx(variance, rel=0.06)


@pytest.mark.parametrize("k, viscosity, time", [(1, 0.5, 0.2), (3, 1.0, 0.01), (2, 0.1, 0.25)])
def test_burgers_single_mode_decays_like_the_heat_equation(k, viscosity, time):
    # At amplitude 1e-5 the nonlinear term is O(1e-10): the solution is that
    # of u_t = nu u_xx, whose mode k decays like exp(-nu (2 pi k)^2 T).
    x = np.arange(128) / 128
    amplitude = 1e-5
    u0 = amplitude * (np.sin(2 * np.pi * k * x) + 0.5 * np.cos(2 * np.pi * k * x))
    u = solve_burgers(u0, viscosity=viscosity, time=time)
    decay = np.exp(-viscosity * (2 * np.pi * k) ** 2 * time)
    assert 1e-3 < decay < 0.5
    np.testing.assert_allclose(u, decay * u0, rtol=0, atol=1e-4 * amplitude * decay)


@pytest.mark.parametrize(
    "viscosity, ratio, n_points, time",
    [(0.1, 0.8, 256, 1.0), (0.02, 0.95, 512, 1.0), (0.01, 0.98, 1024, 0.5)],
)
def test_burgers_matches_the_cole_hopf_solution(viscosity, ratio, n_points, time):
    # u = -2 nu phi_x / phi with phi = 1 + r exp(-nu (2 pi)^2 t) cos(2 pi x), a
    # solution of the heat equation, solves viscous Burgers exactly.
    x = np.arange(n_points) / n_points

    def exact(t):
        damped = ratio * np.exp(-viscosity * (2 * np.pi) ** 2 * t)
        num = 4 * np.pi * viscosity * damped * np.sin(2 * np.pi * x)
        return num / (1.0 + damped * np.cos(2 * np.pi * x))

    u = solve_burgers(exact(0.0), viscosity=viscosity, time=time)
    assert np.max(np.abs(exact(0.0))) > 0.5  # a genuinely nonlinear regime
    np.testing.assert_allclose(u, exact(time), rtol=0, atol=1e-6 * np.max(np.abs(exact(0.0))))


def test_burgers_conserves_mass_and_obeys_the_maximum_principle():
    u0 = _burgers_initial_conditions(8, 512, np.random.RandomState(2))
    u0 = u0 + np.linspace(-1.0, 1.0, 8)[:, np.newaxis]  # nonzero means
    for viscosity in (0.1, 0.01):
        u = solve_burgers(u0, viscosity=viscosity, time=1.0)
        np.testing.assert_allclose(u.mean(axis=1), u0.mean(axis=1), rtol=0, atol=1e-13)
        assert np.all(np.abs(u).max(axis=1) <= np.abs(u0).max(axis=1) + 1e-12)
        assert np.all(np.linalg.norm(u, axis=1) < np.linalg.norm(u0, axis=1))
    # The generated data set: mean-zero initial conditions stay mean-zero.
    data = make_burgers(5, resolution=128, random_state=0)
    np.testing.assert_allclose(data.y.mean(axis=1), 0.0, atol=1e-13)


def test_burgers_solver_converges_in_space_and_time():
    # The same smooth initial condition on two solver grids, read at 128 points.
    u0_fine = _band_limited(np.arange(1024) / 1024, 40, seed=0)[np.newaxis]
    u0_coarse = u0_fine[:, ::2]
    for viscosity in (0.1, 0.01):
        fine = solve_burgers(u0_fine, viscosity=viscosity)[:, ::8]
        coarse = solve_burgers(u0_coarse, viscosity=viscosity)[:, ::4]
        assert _rel(coarse, fine) < 1e-10
        # Four times the default number of steps changes little (ETDRK4 is
        # fourth order, so the default step's error is about 256/255 of this).
        steps = _burgers_n_steps(u0_coarse, viscosity, 1.0)
        finer_in_time = solve_burgers(u0_coarse, viscosity=viscosity, n_steps=4 * steps)
        assert _rel(solve_burgers(u0_coarse, viscosity=viscosity), finer_in_time) < 1e-5


def test_solve_burgers_accepts_one_sample_and_time_zero():
    u0 = _band_limited(np.arange(64) / 64, 5, seed=1)
    np.testing.assert_array_equal(solve_burgers(u0, time=0.0), u0)
    one = solve_burgers(u0)
    assert one.shape == (64,)
    np.testing.assert_array_equal(one, solve_burgers(u0[np.newaxis])[0])


def test_solve_burgers_warns_when_under_resolved():
    u0 = _burgers_initial_conditions(2, 128, np.random.RandomState(0))
    with pytest.warns(UserWarning, match="under-resolved"):
        solve_burgers(u0, viscosity=1e-4, time=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve_burgers(u0, viscosity=0.1)


# --------------------------------------------------------------------------- Darcy


def test_make_darcy_shapes_dtypes_and_determinism():
    data = make_darcy(4, resolution=12, random_state=0)
    assert data.X.shape == data.y.shape == (4, 144)
    assert data.X.dtype == data.y.dtype == np.float64
    assert data.shape == (12, 12)
    assert "Darcy" in data.DESCR
    again = make_darcy(4, resolution=12, random_state=np.random.RandomState(0))
    np.testing.assert_array_equal(data.X, again.X)
    np.testing.assert_array_equal(data.y, again.y)
    assert not np.array_equal(data.X, make_darcy(4, resolution=12, random_state=1).X)
    # Row-major flattening: y is the solve of the reshaped coefficient field.
    a = data.X.reshape(4, 12, 12)
    np.testing.assert_allclose(data.y, solve_darcy(a).reshape(4, -1), rtol=1e-12, atol=0)


def test_darcy_coefficient_takes_only_the_two_values():
    data = make_darcy(200, resolution=16, random_state=0)
    values = np.unique(data.X)
    np.testing.assert_array_equal(values, [3.0, 12.0])
    # The field has mean zero, so each value covers about half of the square.
    assert 0.4 < np.mean(data.X == 12.0) < 0.6


def test_darcy_gaussian_field_variance():
    # Pointwise variance sum_{k,l} sd_kl^2 c_k^2 c_l^2 cos^2(pi k x) cos^2(pi l y),
    # sd_kl = 1 / (pi^2 (k^2 + l^2) + 9), c_0 = 1, c_k = sqrt(2), no constant mode.
    s = 9
    field = _darcy_gaussian_field(6000, s, np.random.RandomState(0))
    k = np.arange(s)
    sd = 1.0 / (np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + DARCY_TAU**2)
    sd[0, 0] = 0.0
    c2 = np.where(k == 0, 1.0, 2.0)
    basis2 = np.cos(np.pi * np.outer(np.arange(s) / (s - 1), k)) ** 2 * c2
    variance = np.einsum("ik,kl,jl->ij", basis2, sd**2, basis2)
    np.testing.assert_allclose(field.var(axis=0), variance, rtol=0.1)


def _dense_laplacian(s):
    """The 5-point Dirichlet Laplacian -Delta_h on the (s - 2)^2 interior nodes."""
    m = s - 2
    t = 2.0 * np.eye(m) - np.eye(m, k=1) - np.eye(m, k=-1)
    return (np.kron(t, np.eye(m)) + np.kron(np.eye(m), t)) * (s - 1) ** 2


@pytest.mark.parametrize("face_average", ["arithmetic", "harmonic"])
@pytest.mark.parametrize("c, s", [(3.0, 5), (12.0, 11), (1.0, 20)])
def test_darcy_constant_coefficient_matches_a_dense_solve(c, s, face_average):
    u = solve_darcy(np.full((s, s), c), face_average=face_average)
    expected = np.linalg.solve(c * _dense_laplacian(s), np.ones((s - 2) ** 2))
    np.testing.assert_allclose(u[1:-1, 1:-1].ravel(), expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(u[[0, -1], :], 0.0)
    np.testing.assert_array_equal(u[:, [0, -1]], 0.0)


@pytest.mark.parametrize("face_average", ["arithmetic", "harmonic"])
def test_darcy_variable_coefficient_matches_a_loop_assembly(face_average):
    s, h = 7, 1.0 / 6.0
    rng = np.random.RandomState(0)
    a = rng.uniform(1.0, 5.0, size=(s, s))
    f = rng.uniform(-1.0, 1.0, size=(s, s))

    def face(p, q):
        return (p + q) / 2 if face_average == "arithmetic" else 2 * p * q / (p + q)

    m = s - 2
    matrix = np.zeros((m * m, m * m))
    for i in range(1, s - 1):
        for j in range(1, s - 1):
            row = (i - 1) * m + (j - 1)
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                coef = face(a[i, j], a[i + di, j + dj]) / h**2
                matrix[row, row] += coef
                if 1 <= i + di <= s - 2 and 1 <= j + dj <= s - 2:
                    matrix[row, (i + di - 1) * m + (j + dj - 1)] -= coef
    expected = np.linalg.solve(matrix, f[1:-1, 1:-1].ravel())
    u = solve_darcy(a, forcing=f, face_average=face_average)
    np.testing.assert_allclose(u[1:-1, 1:-1].ravel(), expected, rtol=1e-10, atol=1e-14)


def test_darcy_is_second_order_for_a_smooth_manufactured_solution():
    # u = sin(pi x) sin(pi y), a = 1 + x + y^2, f = -div(a grad u).
    errors = []
    for s in (17, 33, 65):
        x, y = np.meshgrid(*(2 * [np.linspace(0.0, 1.0, s)]), indexing="ij")
        u = np.sin(np.pi * x) * np.sin(np.pi * y)
        a = 1.0 + x + y**2
        ux = np.pi * np.cos(np.pi * x) * np.sin(np.pi * y)
        uy = np.pi * np.sin(np.pi * x) * np.cos(np.pi * y)
        f = -(1.0 * ux + 2.0 * y * uy - 2.0 * np.pi**2 * a * u)
        errors.append(np.max(np.abs(solve_darcy(a, forcing=f) - u)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert errors[-1] < 1e-3
    np.testing.assert_allclose(ratios, 4.0, rtol=0.1)


def test_darcy_solution_is_positive_inside_and_zero_on_the_boundary():
    data = make_darcy(20, resolution=16, random_state=0)
    u = data.y.reshape(20, 16, 16)
    assert np.all(u[:, 1:-1, 1:-1] > 0)
    for edge in (u[:, 0, :], u[:, -1, :], u[:, :, 0], u[:, :, -1]):
        np.testing.assert_array_equal(edge, 0.0)
    # The scheme is symmetric: transposing the coefficient transposes u.
    a = data.X.reshape(20, 16, 16)
    np.testing.assert_allclose(
        solve_darcy(a.transpose(0, 2, 1)), u.transpose(0, 2, 1), rtol=1e-10, atol=1e-16
    )


def test_darcy_maximum_principle():
    # Discrete maximum principle (the matrix is an M-matrix): with a nonpositive
    # source the maximum is the boundary value 0, and u is monotone in f.
    rng = np.random.RandomState(1)
    a = make_darcy(10, resolution=14, random_state=1).X.reshape(10, 14, 14)
    sink = -rng.uniform(0.0, 1.0, size=a.shape)
    u = solve_darcy(a, forcing=sink)
    assert np.all(u <= 0.0) and np.max(u) == 0.0
    base = solve_darcy(a)
    more = solve_darcy(a, forcing=1.0 + rng.uniform(0.0, 1.0, size=a.shape))
    assert np.all(more[:, 1:-1, 1:-1] > base[:, 1:-1, 1:-1])
    # Dirichlet's principle: sum(u) = -2 min_v E_a(v) decreases as a grows, so
    # 3 <= a <= 12 puts it between the constant-coefficient values.
    low = solve_darcy(np.full((14, 14), 12.0)).sum()
    high = solve_darcy(np.full((14, 14), 3.0)).sum()
    assert np.all((low <= base.sum(axis=(1, 2))) & (base.sum(axis=(1, 2)) <= high))


# --------------------------------------------------------------------------- metric


def test_relative_l2_error_zero_for_perfect_predictions():
    y = make_burgers(3, resolution=16, random_state=0).y
    assert relative_l2_error(y, y) == 0.0
    assert isinstance(relative_l2_error(y, y), float)


def test_relative_l2_error_matches_a_hand_computation():
    y_true = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    y_pred = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # errors 4 / 5, 1 / 1, 1 / 2
    assert relative_l2_error(y_true, y_pred) == pytest.approx((0.8 + 1.0 + 0.5) / 3, abs=1e-15)
    # Fields (n, s, s) are flattened per sample; a 1-D array is one sample.
    fields = np.arange(1.0, 19.0).reshape(2, 3, 3)
    noisy = fields + 0.5
    assert relative_l2_error(fields, noisy) == pytest.approx(
        relative_l2_error(fields.reshape(2, 9), noisy.reshape(2, 9))
    )
    assert relative_l2_error([3.0, 4.0], [3.0, 0.0]) == pytest.approx(0.8)
    # Scale-free per sample.
    assert relative_l2_error(10 * y_true, 10 * y_pred) == pytest.approx(
        relative_l2_error(y_true, y_pred)
    )


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (np.ones((2, 3)), np.ones((3, 2)), "same shape"),
        (np.zeros((2, 3)), np.ones((2, 3)), "nonzero norm"),
        (np.ones((2, 3)), np.full((2, 3), np.nan), "finite"),
    ],
)
def test_relative_l2_error_rejects_bad_input(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        relative_l2_error(y_true, y_pred)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "func, kwargs, match",
    [
        (make_burgers, {"n_samples": 0}, "n_samples"),
        (make_burgers, {"resolution": 1}, "resolution"),
        (make_burgers, {"viscosity": 0.0}, "viscosity"),
        (make_burgers, {"time": -1.0}, "time"),
        (make_darcy, {"n_samples": 2.5}, "n_samples"),
        (make_darcy, {"resolution": 2}, "resolution"),
        (solve_burgers, {"u0": np.ones((2, 2, 2))}, "u0"),
        (solve_burgers, {"u0": np.ones(8), "n_steps": 0}, "n_steps"),
        (solve_darcy, {"a": -np.ones((4, 4))}, "positive"),
        (solve_darcy, {"a": np.ones((4, 5))}, "shape"),
        (solve_darcy, {"a": np.ones((4, 4)), "face_average": "geometric"}, "face_average"),
    ],
)
def test_bad_parameters_raise(func, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(**kwargs)

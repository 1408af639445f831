"""The closed-form head against independent computations (numpy, scipy, sklearn)."""

import numpy as np
import pytest
import scipy.linalg
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge

from skcflo._ridge import head
from skcflo._ridge.head import (
    FLOAT32_CONDITION_LIMIT,
    RidgeStatistics,
    apply_head,
    solve_head,
    solve_proximal_batch,
    solve_spd,
)

RTOL = 1e-8


def _data(n_rows=60, n_features=5, n_outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(n_rows, n_features)) * rng.uniform(0.5, 3.0, size=n_features)
    phi += rng.normal(size=n_features)  # non-centred features exercise the intercept
    weights = rng.normal(size=(n_features, n_outputs))
    y = phi @ weights + 1.5 + 0.3 * rng.normal(size=(n_rows, n_outputs))
    return phi, y


def _aug(phi):
    return np.hstack([phi, np.ones((phi.shape[0], 1))])


def _stats(phi, y):
    return RidgeStatistics.from_batch(torch.from_numpy(phi), torch.from_numpy(y))


def _ridge_weights(phi, y, alpha, sample_weight=None, count=None):
    """Augmented ``(d + 1, k)`` weights of sklearn Ridge with the per-sample penalty."""
    count = phi.shape[0] if count is None else count
    ridge = Ridge(alpha=alpha * count, fit_intercept=True)
    ridge.fit(phi, y, sample_weight=sample_weight)
    return np.vstack([np.atleast_2d(ridge.coef_).T, np.atleast_1d(ridge.intercept_)[None, :]])


@pytest.mark.parametrize("alpha", [0.0, 1e-3, 0.1, 10.0])
def test_solve_head_equals_sklearn_ridge_single_output(alpha):
    phi, y = _data(n_outputs=1)
    weights = solve_head(_stats(phi, y), alpha).numpy()
    assert weights.shape == (phi.shape[1] + 1, 1)
    assert_allclose(weights, _ridge_weights(phi, y, alpha), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.05, 2.0])
def test_solve_head_multi_output_columns_equal_single_output_fits(alpha):
    phi, y = _data(n_outputs=3, seed=1)
    weights = solve_head(_stats(phi, y), alpha).numpy()
    assert weights.shape == (phi.shape[1] + 1, 3)
    assert_allclose(weights, _ridge_weights(phi, y, alpha), rtol=RTOL, atol=1e-12)
    for column in range(3):
        single = solve_head(_stats(phi, y[:, [column]]), alpha).numpy()
        assert_allclose(weights[:, [column]], single, rtol=RTOL, atol=1e-12)


def _proximal_lstsq(phi, y, alpha, lam, previous):
    """Minimiser of ||Y - aug W||^2 + n lam ||W - W_prev||^2 + n alpha ||W[:-1]||^2.

    Solved as one stacked least-squares problem (no normal equations), so it
    shares no algebra with the code under test.
    """
    n_rows, n_coef = phi.shape[0], phi.shape[1] + 1
    shrink = np.eye(n_coef)[:-1]  # every coefficient but the intercept
    design = np.vstack(
        [_aug(phi), np.sqrt(n_rows * lam) * np.eye(n_coef), np.sqrt(n_rows * alpha) * shrink]
    )
    target = np.vstack([y, np.sqrt(n_rows * lam) * previous, np.zeros((n_coef - 1, y.shape[1]))])
    return scipy.linalg.lstsq(design, target)[0]


@pytest.mark.parametrize(("alpha", "lam"), [(0.0, 0.5), (0.1, 0.01), (1.0, 3.0)])
def test_proximal_solve_equals_independent_minimiser(alpha, lam):
    phi, y = _data(n_rows=40, n_features=4, n_outputs=2, seed=2)
    previous = np.random.default_rng(3).normal(size=(5, 2))
    weights = solve_head(_stats(phi, y), alpha, lam, previous=torch.from_numpy(previous))
    expected = _proximal_lstsq(phi, y, alpha, lam, previous)
    assert_allclose(weights.numpy(), expected, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize(
    ("n_rows", "n_features", "alpha", "lam"),
    [
        (8, 50, 0.1, 1.0),
        (3, 200, 0.0, 0.01),
        (20, 21, 2.0, 0.5),
        (40, 4, 0.1, 1.0),
        (5, 9, 0.1, 0.0),
    ],
)
def test_batch_proximal_solve_equals_independent_minimiser(n_rows, n_features, alpha, lam):
    # Narrow batches take the Woodbury (row-space) path, the others the normal
    # equations; both must give the stacked least-squares minimiser. float64
    # features are solved in float64 throughout.
    phi, y = _data(n_rows=n_rows, n_features=n_features, n_outputs=2, seed=7)
    previous = np.random.default_rng(8).normal(size=(n_features + 1, 2))
    weights = solve_proximal_batch(
        torch.from_numpy(phi), torch.from_numpy(y), alpha, lam, torch.from_numpy(previous)
    )
    expected = _proximal_lstsq(phi, y, alpha, lam, previous)
    assert weights.dtype == torch.float64
    assert_allclose(weights.numpy(), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("n_rows", "n_features"), [(8, 50), (40, 4)])
def test_well_conditioned_float32_batches_are_accurate_to_1e_4(n_rows, n_features):
    phi, y = _data(n_rows=n_rows, n_features=n_features, n_outputs=2, seed=11)
    phi32 = phi.astype(np.float32)
    previous = np.random.default_rng(12).normal(size=(n_features + 1, 2))
    weights = solve_proximal_batch(
        torch.from_numpy(phi32), torch.from_numpy(y), 0.1, 1.0, torch.from_numpy(previous)
    )
    expected = _proximal_lstsq(phi32.astype(np.float64), y, 0.1, 1.0, previous)
    assert weights.dtype == torch.float64
    error = np.abs(weights.numpy() - expected).max() / np.abs(expected).max()
    assert 0 < error < 1e-4  # nonzero: the float32 path did run


@pytest.mark.parametrize("n_rows, n_features", [(32, 256), (4096, 32)])
def test_float32_batches_near_the_condition_limit_stay_accurate(n_rows, n_features):
    # ReLU-like features with a shared mean direction, scaled so that the
    # conditioning bound lies between a tenth of the limit and the limit: wide
    # (row-space solve) and tall (normal equations, an operator batch's shape).
    rng = np.random.default_rng(21)
    phi = np.maximum(rng.normal(size=(n_rows, n_features)), 0.0)
    y = rng.normal(size=(n_rows, 1))
    previous = rng.normal(size=(n_features + 1, 1)) * 0.01
    rows = np.hstack([phi, np.ones((n_rows, 1))])
    penalty = n_rows * np.r_[np.full(n_features, 0.2), 0.1]
    bound = 1 + (rows**2 / penalty).sum()
    scale = np.sqrt(0.5 * FLOAT32_CONDITION_LIMIT / bound)
    phi32 = (scale * phi).astype(np.float32)
    assert (
        0.1 * FLOAT32_CONDITION_LIMIT
        < 1 + (np.hstack([phi32, np.ones((n_rows, 1))]) ** 2 / penalty).sum()
        <= FLOAT32_CONDITION_LIMIT
    )
    weights = solve_proximal_batch(
        torch.from_numpy(phi32), torch.from_numpy(y), 0.1, 0.1, torch.from_numpy(previous)
    )
    expected = _proximal_lstsq(phi32.astype(np.float64), y, 0.1, 0.1, previous)
    error = np.abs(weights.numpy() - expected).max() / np.abs(expected).max()
    bound = 1 + (np.hstack([phi32, np.ones((n_rows, 1))]) ** 2 / penalty).sum()
    # Measured: below 2.5e-8 x the bound (head.FLOAT32_CONDITION_LIMIT's comment).
    assert 1e-9 < error < 2.5e-8 * bound  # above float64 rounding: the float32 path ran


def test_ill_conditioned_float32_batches_fall_back_to_float64():
    # Large features and a tiny proximal strength: condition bound far above the
    # float32 limit, so the solve must be as exact as float64 allows.
    phi, y = _data(n_rows=8, n_features=50, n_outputs=1, seed=13)
    phi32 = (100.0 * phi).astype(np.float32)
    previous = np.zeros((51, 1))
    weights = solve_proximal_batch(
        torch.from_numpy(phi32), torch.from_numpy(y), 0.0, 1e-3, torch.from_numpy(previous)
    )
    expected = _proximal_lstsq(phi32.astype(np.float64), y, 0.0, 1e-3, previous)
    assert_allclose(weights.numpy(), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n_rows, n_features", [(64, 8), (8, 50)])
def test_a_failed_float32_factorisation_is_solved_again_in_float64(monkeypatch, n_rows, n_features):
    # A float32 Cholesky that reports a breakdown (made to here, whatever the
    # platform's rounding) must give the float64 head, not NaN: tall and wide batches.
    cholesky_ex = torch.linalg.cholesky_ex

    def failing_in_float32(matrix, *args, **kwargs):
        factor, info = cholesky_ex(matrix, *args, **kwargs)
        return (factor, torch.ones_like(info)) if matrix.dtype == torch.float32 else (factor, info)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", failing_in_float32)
    phi, y = _data(n_rows=n_rows, n_features=n_features, n_outputs=1, seed=14)
    phi32 = torch.from_numpy(phi.astype(np.float32))
    previous = torch.zeros(n_features + 1, 1, dtype=torch.float64)
    rows32 = head.augment(phi32, dtype=torch.float32)
    assert head._batch_precision(rows32, 0.1, 1.0) == "float32"
    assert head._solve_batch_rows(rows32, torch.from_numpy(y), 0.1, 1.0, previous, True) is None
    weights = solve_proximal_batch(phi32, torch.from_numpy(y), 0.1, 1.0, previous)
    expected = _proximal_lstsq(phi.astype(np.float32).astype(np.float64), y, 0.1, 1.0, previous)
    assert_allclose(weights.numpy(), expected, rtol=1e-8, atol=1e-10)


def _scaled_to_bound(phi, bound):
    """float32 rows ``[c phi, 1]`` whose conditioning bound at alpha=0.1, lam=1 is ``bound``."""
    n_rows = phi.shape[0]
    # a_j = n (alpha + lam) for the features, n lam for the intercept (whose part is 1).
    features_part = (phi**2).sum() / (1.1 * n_rows)
    scale = np.sqrt((bound - 2.0) / features_part)
    return torch.from_numpy(np.hstack([scale * phi, np.ones((n_rows, 1))]).astype(np.float32))


@pytest.mark.parametrize("n_rows, n_features", [(64, 8), (8, 50)])
def test_conditioning_bound_bounds_the_scaled_systems_condition_number(n_rows, n_features):
    # The bound is 1 + trace(U A^-1 U^T) >= cond(I + A^-1/2 U^T U A^-1/2), the
    # conditioning that the float32 Cholesky solve's accuracy follows.
    phi = np.maximum(np.random.default_rng(15).normal(size=(n_rows, n_features)) + 0.5, 0.0)
    for bound in (1e3, 1e5, 1e7):
        rows32 = _scaled_to_bound(phi, bound)
        assert head._conditioning_bound(rows32, 0.1, 1.0) == pytest.approx(bound, rel=1e-5)
        rows = rows32.double().numpy()
        penalty = n_rows * np.r_[np.full(n_features, 1.1), 1.0]  # alpha=0.1, lam=1
        scaled = rows / np.sqrt(penalty)
        condition = np.linalg.cond(np.eye(n_features + 1) + scaled.T @ scaled)
        assert 0.05 * bound < condition <= bound * (1 + 1e-6)


@pytest.mark.parametrize("n_rows, n_features", [(256, 16), (16, 120)])
def test_refinement_brings_a_float32_solve_to_float64_accuracy(n_rows, n_features):
    # Bounds between the two limits: a float32 factorisation and one refinement
    # step. Against the float64 minimiser, the refined head must be far more
    # accurate than the plain float32 solve of the same batch, and accurate to
    # 1e-6; tall and wide batches.
    rng = np.random.default_rng(16)
    phi = np.maximum(rng.normal(size=(n_rows, n_features)) + 0.5, 0.0)
    rows32 = _scaled_to_bound(phi, 0.8 * head.REFINED_FLOAT32_CONDITION_LIMIT)
    assert head._conditioning_bound(rows32, 0.1, 1.0) > head.FLOAT32_CONDITION_LIMIT
    y = torch.from_numpy(rng.normal(size=(n_rows, 1)))
    previous = torch.from_numpy(rng.normal(size=(n_features + 1, 1)))
    expected = _proximal_lstsq(rows32[:, :-1].double().numpy(), y.numpy(), 0.1, 1.0, previous)
    refined = head._solve_batch_rows(rows32, y, 0.1, 1.0, previous, True, True).numpy()
    plain = head._solve_batch_rows(rows32, y, 0.1, 1.0, previous, True).numpy()
    assert np.abs(refined - expected).max() / np.abs(expected).max() < 1e-6
    assert np.abs(refined - expected).max() < 0.1 * np.abs(plain - expected).max()


@pytest.mark.parametrize(
    ("shape", "fraction_of_refined_limit", "expected"),
    [
        ((256, 16), 0.05, "float32"),  # below the float32 limit
        ((16, 120), 0.05, "float32"),
        ((256, 16), 0.8, "refined"),  # between the limits: tall batches are refined,
        ((128, 300), 0.8, "refined"),  # wide ones when large (B^2 m >= 2e6),
        ((16, 120), 0.8, "float64"),  # small wide ones solved in float64 (cheaper)
        ((256, 16), 2.0, "float64"),  # beyond both
        ((16, 120), 2.0, "float64"),
    ],
)
def test_batch_precision_follows_the_bound_and_the_shape(
    monkeypatch, shape, fraction_of_refined_limit, expected
):
    rng = np.random.default_rng(17)
    phi = np.maximum(rng.normal(size=shape) + 0.5, 0.0)
    rows32 = _scaled_to_bound(phi, fraction_of_refined_limit * head.REFINED_FLOAT32_CONDITION_LIMIT)
    assert head._batch_precision(rows32, 0.1, 1.0) == expected
    assert head._batch_precision(rows32.double(), 0.1, 1.0) == "float64"
    # And the solve follows it: the row solves it asks for, by dtype and flags.
    calls = []
    solve_rows = head._solve_batch_rows

    def recorded(rows, *args, **kwargs):
        calls.append((rows.dtype, args[4:]))
        return solve_rows(rows, *args, **kwargs)

    monkeypatch.setattr(head, "_solve_batch_rows", recorded)
    y = torch.from_numpy(rng.normal(size=(shape[0], 1)))
    previous = torch.zeros(shape[1] + 1, 1, dtype=torch.float64)
    weights = solve_proximal_batch(rows32[:, :-1], y, 0.1, 1.0, previous).numpy()
    minimiser = _proximal_lstsq(rows32[:, :-1].double().numpy(), y.numpy(), 0.1, 1.0, previous)
    # As measured (benchmarks/bench_batch_solve.py): plain float32 within 1e-2 and
    # refined within 1e-4 of the minimiser, float64 to its rounding.
    tolerance = {"float32": 1e-2, "refined": 1e-4, "float64": 1e-8}[expected]
    assert np.abs(weights - minimiser).max() / np.abs(minimiser).max() < tolerance
    wide = shape[0] < shape[1] + 1
    expected_calls = {
        "float32": [(torch.float32, (True, False))],
        "refined": [(torch.float32, (True, True))],
        # float64: the row-space solve for wide batches, the normal equations for tall ones.
        "float64": [(torch.float64, ())] if wide else [],
    }[expected]
    assert calls == expected_calls


@pytest.mark.parametrize("n_rows, n_features", [(256, 16), (16, 120)])
def test_float32_paths_take_a_float32_previous_head_and_huge_targets(n_rows, n_features):
    # The refined path's float64 residual must accept a float32 previous head,
    # and targets beyond float32's range (finite in float64) must give the
    # float64 head, not the inf of an overflowed float32 right-hand side.
    rng = np.random.default_rng(18)
    phi = np.maximum(rng.normal(size=(n_rows, n_features)) + 0.5, 0.0)
    y = rng.normal(size=(n_rows, 1))
    for fraction in (0.05, 0.8):  # plain float32, then refined (tall) or float64 (wide)
        rows32 = _scaled_to_bound(phi, fraction * head.REFINED_FLOAT32_CONDITION_LIMIT)
        features = rows32[:, :-1]
        previous = rng.normal(size=(n_features + 1, 1))
        minimiser = _proximal_lstsq(features.double().numpy(), y, 0.1, 1.0, previous)
        weights = solve_proximal_batch(
            features, torch.from_numpy(y), 0.1, 1.0, torch.from_numpy(previous).float()
        ).numpy()
        assert np.abs(weights - minimiser).max() / np.abs(minimiser).max() < 1e-2
        huge = torch.from_numpy(y * 1e40)
        weights = solve_proximal_batch(features, huge, 0.1, 1.0, torch.from_numpy(previous))
        assert torch.isfinite(weights).all()


def test_batch_proximal_solve_counts_grid_positions_as_rows():
    rng = np.random.default_rng(9)
    features = torch.from_numpy(rng.normal(size=(2, 3, 30)))
    targets = torch.from_numpy(rng.normal(size=(2, 3, 1)))
    previous = torch.from_numpy(rng.normal(size=(31, 1)))
    operator = solve_proximal_batch(features, targets, 0.1, 1.0, previous)
    flat = solve_proximal_batch(features.reshape(6, 30), targets.reshape(6, 1), 0.1, 1.0, previous)
    assert_allclose(operator.numpy(), flat.numpy(), rtol=1e-12)


def test_batch_proximal_solve_of_non_finite_features_is_nan():
    features = torch.ones(4, 10)
    features[1, 2] = float("inf")
    weights = solve_proximal_batch(
        features, torch.ones(4, 1), 0.1, 1.0, torch.zeros(11, 1, dtype=torch.float64)
    )
    assert torch.isnan(weights).all()


def test_proximal_solve_is_stationary_point_of_objective():
    phi, y = _data(n_rows=30, n_features=3, n_outputs=1, seed=4)
    previous = np.array([[0.3], [-1.0], [2.0], [0.5]])
    alpha, lam, n_rows = 0.2, 0.7, phi.shape[0]
    weights = solve_head(_stats(phi, y), alpha, lam, previous=torch.from_numpy(previous)).numpy()
    shrink = np.diag([1.0, 1.0, 1.0, 0.0])
    gradient = (
        -2 * _aug(phi).T @ (y - _aug(phi) @ weights)
        + 2 * n_rows * lam * (weights - previous)
        + 2 * n_rows * alpha * shrink @ weights
    )
    assert_allclose(gradient, 0.0, atol=1e-9)


def test_huge_proximal_lambda_freezes_head():
    phi, y = _data(n_outputs=2, seed=5)
    previous = np.random.default_rng(6).normal(size=(phi.shape[1] + 1, 2))
    weights = solve_head(_stats(phi, y), 0.1, 1e12, previous=torch.from_numpy(previous))
    assert_allclose(weights.numpy(), previous, rtol=RTOL, atol=1e-9)
    assert not np.allclose(_ridge_weights(phi, y, 0.1), previous, atol=1e-2)


def test_zero_proximal_lambda_is_ridge_fit():
    phi, y = _data(n_outputs=2, seed=7)
    previous = torch.from_numpy(np.random.default_rng(8).normal(size=(phi.shape[1] + 1, 2)))
    weights = solve_head(_stats(phi, y), 0.3, 0.0, previous=previous)
    assert_allclose(weights.numpy(), _ridge_weights(phi, y, 0.3), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_accumulation_with_forgetting_is_weighted_ridge(alpha):
    forgetting = 0.8
    batches = [
        _data(n_rows=n, n_features=4, n_outputs=2, seed=s) for n, s in [(25, 9), (30, 10), (20, 11)]
    ]
    stats = _stats(*batches[0])
    for batch in batches[1:]:
        stats = stats.discounted(forgetting) + _stats(*batch)
    phi = np.vstack([b[0] for b in batches])
    y = np.vstack([b[1] for b in batches])
    sample_weight = np.concatenate(
        [np.full(len(b[0]), forgetting**power) for b, power in zip(batches, [2, 1, 0], strict=True)]
    )
    assert stats.count == pytest.approx(sample_weight.sum(), rel=1e-12)
    expected = _ridge_weights(phi, y, alpha, sample_weight=sample_weight, count=sample_weight.sum())
    assert_allclose(solve_head(stats, alpha).numpy(), expected, rtol=RTOL, atol=1e-12)


def test_statistics_of_chunks_sum_to_statistics_of_whole_set():
    phi, y = _data(n_rows=103, n_features=6, n_outputs=2, seed=12)
    whole = _stats(phi, y)
    total = None
    for start in range(0, len(phi), 20):
        chunk = _stats(phi[start : start + 20], y[start : start + 20])
        total = chunk if total is None else total + chunk
    assert total.count == whole.count == len(phi)
    assert_allclose(total.gram.numpy(), _aug(phi).T @ _aug(phi), rtol=1e-12)
    assert_allclose(total.cross.numpy(), _aug(phi).T @ y, rtol=1e-12)
    assert_allclose(total.gram.numpy(), whole.gram.numpy(), rtol=1e-12)
    assert_allclose(total.cross.numpy(), whole.cross.numpy(), rtol=1e-12)
    assert_allclose(
        solve_head(total, 0.01).numpy(), _ridge_weights(phi, y, 0.01), rtol=RTOL, atol=1e-12
    )


def test_statistics_accumulate_in_float64_from_float32_features():
    phi, y = _data(n_rows=10, n_features=3)
    stats = RidgeStatistics.from_batch(torch.from_numpy(phi).float(), torch.from_numpy(y).float())
    assert stats.gram.dtype == stats.cross.dtype == torch.float64


# With these seeds the rounding makes Cholesky fail (seed 13: jitter path) or
# succeed on a tiny pivot (seed 15): both must give the least-squares fit.
@pytest.mark.parametrize("seed", [13, 15])
def test_solve_spd_singular_gram_matches_lstsq_predictions(seed):
    phi, y = _data(n_rows=50, n_features=3, n_outputs=2, seed=seed)
    phi = np.hstack([phi, phi[:, [1]]])  # duplicated feature: singular Gram
    design = _aug(phi)
    gram = design.T @ design
    assert np.linalg.matrix_rank(gram) < gram.shape[0]
    solution = solve_spd(torch.from_numpy(gram), torch.from_numpy(design.T @ y)).numpy()
    assert np.isfinite(solution).all()
    reference = np.linalg.lstsq(design, y, rcond=None)[0]
    assert_allclose(design @ solution, design @ reference, rtol=1e-6, atol=1e-6)


def test_solve_head_alpha_zero_duplicated_feature_matches_lstsq_predictions():
    phi, y = _data(n_rows=50, n_features=3, n_outputs=1, seed=14)
    phi = np.hstack([phi, phi[:, [0]]])
    weights = solve_head(_stats(phi, y), 0.0).numpy()
    assert np.isfinite(weights).all()
    reference = np.linalg.lstsq(_aug(phi), y, rcond=None)[0]
    assert_allclose(_aug(phi) @ weights, _aug(phi) @ reference, rtol=1e-6, atol=1e-6)


def test_solve_spd_indefinite_matrix_falls_back_to_pseudo_inverse():
    matrix = np.array([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    rhs = np.array([[1.0], [3.0], [5.0]])
    solution = solve_spd(torch.from_numpy(matrix), torch.from_numpy(rhs)).numpy()
    assert_allclose(solution, np.linalg.pinv(matrix) @ rhs, rtol=1e-12, atol=1e-12)


def test_solve_spd_nan_matrix_returns_nan():
    matrix = torch.eye(3, dtype=torch.float64)
    matrix[1, 2] = float("nan")
    rhs = torch.ones(3, 2, dtype=torch.float64)
    solution = solve_spd(matrix, rhs)
    assert solution.shape == rhs.shape
    assert torch.isnan(solution).all()


def test_solve_spd_matches_scipy_cho_solve():
    rng = np.random.default_rng(15)
    root = rng.normal(size=(5, 5))
    matrix = root @ root.T + 0.5 * np.eye(5)
    rhs = rng.normal(size=(5, 2))
    expected = scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix), rhs)
    solution = solve_spd(torch.from_numpy(matrix), torch.from_numpy(rhs)).numpy()
    assert_allclose(solution, expected, rtol=1e-10)


def test_solve_spd_is_differentiable():
    generator = torch.Generator().manual_seed(16)
    root = torch.randn(4, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    rhs = torch.randn(4, 2, dtype=torch.float64, generator=generator, requires_grad=True)

    def solve(root, rhs):
        # An SPD matrix built from an unconstrained input keeps every
        # finite-difference perturbation symmetric positive definite.
        return solve_spd(root @ root.T + torch.eye(4, dtype=torch.float64), rhs)

    assert torch.autograd.gradcheck(solve, (root, rhs))


def test_apply_head_gradient_flows_to_features_not_weights():
    features = torch.randn(6, 3, generator=torch.Generator().manual_seed(17), requires_grad=True)
    weights = torch.tensor([[1.0], [-2.0], [0.5], [3.0]], dtype=torch.float64, requires_grad=True)
    output = apply_head(features, weights)
    assert output.dtype == features.dtype
    output.sum().backward()
    assert weights.grad is None
    expected = weights.detach()[:-1].T.to(features.dtype).expand(6, 3)
    assert_allclose(features.grad.numpy(), expected.numpy(), rtol=1e-6)


def test_apply_head_equals_augmented_product():
    features = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(18))
    weights = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(19))
    expected = _aug(features.numpy()) @ weights.numpy()
    assert_allclose(apply_head(features, weights).numpy(), expected, rtol=1e-12)


def test_device_solve_without_synchronisation_matches_scipy_and_flags_failures():
    # The GPU path of solve_spd(definite=True), exercised here on CPU tensors.
    from skcflo._ridge.head import _solve_definite_on_device

    rng = np.random.default_rng(10)
    a = rng.normal(size=(6, 6))
    matrix = a @ a.T + 0.5 * np.eye(6)
    rhs = rng.normal(size=(6, 2))
    solution = _solve_definite_on_device(torch.from_numpy(matrix), torch.from_numpy(rhs))
    expected = scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix), rhs)
    assert_allclose(solution.numpy(), expected, rtol=1e-10)
    indefinite = torch.from_numpy(matrix - 100 * np.eye(6))
    assert torch.isnan(_solve_definite_on_device(indefinite, torch.from_numpy(rhs))).all()
    broken = torch.from_numpy(matrix).clone()
    broken[0, 0] = float("inf")
    assert torch.isnan(_solve_definite_on_device(broken, torch.from_numpy(rhs))).all()

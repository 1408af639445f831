"""GCV penalty selection and predictive uncertainty of the head, against numpy/sklearn."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge

from skcflo._ridge.head import (
    RidgeStatistics,
    head_covariance,
    predictive_std,
    ridge_gcv_scores,
    select_alpha,
    solve_head,
)

ALPHAS = np.concatenate([[0.0], np.logspace(-6, 2, 17)])


def _data(n_rows=80, n_features=6, n_outputs=1, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(n_rows, n_features)) * rng.uniform(0.5, 3.0, size=n_features)
    phi += rng.normal(size=n_features)  # non-centred features exercise the intercept
    weights = rng.normal(size=(n_features, n_outputs))
    y = phi @ weights + 1.5 + noise * rng.normal(size=(n_rows, n_outputs))
    return phi, y


def _stats(phi, y):
    return RidgeStatistics.from_batch(torch.from_numpy(phi), torch.from_numpy(y))


def _brute_force_gcv(phi, y, alpha):
    """Per-output n RSS / (n - df)^2 from an sklearn fit and an explicit hat matrix."""
    n_rows, n_features = phi.shape
    ridge = Ridge(alpha=alpha * n_rows, fit_intercept=True).fit(phi, y)
    rss = ((y - ridge.predict(phi).reshape(y.shape)) ** 2).sum(axis=0)
    centred = phi - phi.mean(axis=0)
    system = centred.T @ centred + alpha * n_rows * np.eye(n_features)
    hat = centred @ np.linalg.pinv(system, hermitian=True) @ centred.T
    dof = np.trace(hat) + 1.0
    return n_rows * rss / (n_rows - dof) ** 2


# -- the statistics --------------------------------------------------------------------------


def test_target_sq_accumulates_like_the_other_statistics():
    phi, y = _data(n_outputs=2)
    whole = _stats(phi, y)
    assert_allclose(whole.target_sq.numpy(), (y**2).sum(axis=0), rtol=1e-12)
    halves = _stats(phi[:30], y[:30]) + _stats(phi[30:], y[30:])
    assert_allclose(halves.target_sq.numpy(), whole.target_sq.numpy(), rtol=1e-12)
    discounted = _stats(phi[:30], y[:30]).discounted(0.5) + _stats(phi[30:], y[30:])
    expected = 0.5 * (y[:30] ** 2).sum(axis=0) + (y[30:] ** 2).sum(axis=0)
    assert_allclose(discounted.target_sq.numpy(), expected, rtol=1e-12)


def test_statistics_without_target_sq_still_work_and_stay_absent():
    phi, y = _data()
    full = _stats(phi, y)
    legacy = RidgeStatistics(full.gram, full.cross, full.count)
    assert legacy.target_sq is None
    assert (legacy + full).target_sq is None
    assert legacy.discounted(0.9).target_sq is None
    assert_allclose(solve_head(legacy, 0.1).numpy(), solve_head(full, 0.1).numpy())
    with pytest.raises(ValueError, match="target_sq"):
        ridge_gcv_scores(legacy, [0.1])
    with pytest.raises(ValueError, match="target_sq"):
        head_covariance(legacy, 0.1)


# -- generalised cross-validation --------------------------------------------------------------


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_gcv_scores_equal_brute_force(n_outputs):
    phi, y = _data(n_outputs=n_outputs, seed=n_outputs)
    stats = _stats(phi, y)
    expected = np.array([_brute_force_gcv(phi, y, alpha) for alpha in ALPHAS])  # (m, k)
    per_output = ridge_gcv_scores(stats, ALPHAS, per_output=True).numpy()
    assert per_output.shape == (len(ALPHAS), n_outputs)
    assert_allclose(per_output, expected, rtol=1e-8)
    summed = ridge_gcv_scores(stats, torch.from_numpy(ALPHAS)).numpy()
    assert_allclose(summed, expected.sum(axis=1), rtol=1e-8)


def test_gcv_from_batched_statistics_equals_whole_data():
    phi, y = _data(n_outputs=2, seed=4)
    batched = _stats(phi[:25], y[:25]) + _stats(phi[25:], y[25:])
    assert_allclose(
        ridge_gcv_scores(batched, ALPHAS).numpy(),
        ridge_gcv_scores(_stats(phi, y), ALPHAS).numpy(),
        rtol=1e-9,
    )


def test_gcv_collinear_features_use_rank_at_alpha_zero():
    phi, y = _data(n_features=4, seed=5)
    phi = np.hstack([phi, phi[:, :1] * 2.0 - phi[:, 1:2]])  # rank 4 of 5 columns
    alphas = np.array([0.0, 1e-3, 0.1])
    scores = ridge_gcv_scores(_stats(phi, y), alphas, per_output=True).numpy()
    assert np.isfinite(scores).all()
    # alpha = 0: least-squares RSS with df = rank + 1 (intercept)
    design = np.hstack([phi, np.ones((phi.shape[0], 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    n_rows, dof = phi.shape[0], np.linalg.matrix_rank(design)
    assert_allclose(scores[0], n_rows * (residual**2).sum(axis=0) / (n_rows - dof) ** 2, rtol=1e-6)
    expected = np.array([_brute_force_gcv(phi, y, alpha) for alpha in alphas[1:]])
    assert_allclose(scores[1:], expected, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_alpha_is_brute_force_argmin(seed):
    # few rows and weak signal so the optimum is interior, not alpha = 0
    phi, y = _data(n_rows=30, n_features=8, n_outputs=2, seed=seed, noise=3.0)
    best, scores = select_alpha(_stats(phi, y), ALPHAS)
    expected = np.array([_brute_force_gcv(phi, y, alpha).sum() for alpha in ALPHAS])
    assert best == ALPHAS[np.argmin(expected)]
    assert best == ALPHAS[int(torch.argmin(scores))]


def test_gcv_is_infinite_without_residual_degrees_of_freedom():
    phi, y = _data(n_rows=5, n_features=6, seed=6)
    scores = ridge_gcv_scores(_stats(phi, y), [0.0, 1.0]).numpy()
    assert scores[0] == np.inf and np.isfinite(scores[1])
    assert select_alpha(_stats(phi, y), [0.0, 1.0])[0] == 1.0


# -- posterior / predictive uncertainty -------------------------------------------------------


def test_noise_variance_matches_unbiased_residual_variance():
    phi, y = _data(n_outputs=2, seed=7)
    n_rows, n_features = phi.shape
    variance, inverse = head_covariance(_stats(phi, y), alpha=0.0)
    design = np.hstack([phi, np.ones((n_rows, 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    expected = (residual**2).sum(axis=0) / (n_rows - n_features - 1)
    assert_allclose(variance.numpy(), expected, rtol=1e-8)
    assert_allclose(inverse.numpy(), np.linalg.inv(design.T @ design), rtol=1e-8)


def test_noise_variance_uses_the_given_weights_and_ridge_dof():
    phi, y = _data(seed=8)
    n_rows = phi.shape[0]
    stats, alpha = _stats(phi, y), 0.5
    weights = torch.from_numpy(np.random.default_rng(9).normal(size=(phi.shape[1] + 1, 1)))
    variance, inverse = head_covariance(stats, alpha, weights)
    design = np.hstack([phi, np.ones((n_rows, 1))])
    penalty = alpha * n_rows * np.diag(np.r_[np.ones(phi.shape[1]), 0.0])
    dof = np.trace(np.linalg.solve(design.T @ design + penalty, design.T @ design))
    rss = ((y - design @ weights.numpy()) ** 2).sum(axis=0)
    assert_allclose(variance.numpy(), rss / (n_rows - dof), rtol=1e-8)


def test_predictive_interval_is_calibrated():
    rng = np.random.default_rng(10)
    sigma, n_features = 0.7, 5
    true_weights = rng.normal(size=(n_features, 1))

    def draw(n_rows):
        x = rng.normal(size=(n_rows, n_features))
        return x, x @ true_weights - 0.4 + sigma * rng.normal(size=(n_rows, 1))

    x_train, y_train = draw(2000)
    stats = _stats(x_train, y_train)
    weights = solve_head(stats, alpha=1e-4)
    variance, inverse = head_covariance(stats, 1e-4, weights)
    assert abs(np.sqrt(variance.item()) / sigma - 1.0) < 0.05

    x_test, y_test = draw(5000)
    x_test = torch.from_numpy(x_test)
    mean = (x_test @ weights[:-1] + weights[-1]).numpy()
    std = predictive_std(x_test, inverse, variance).numpy()
    assert std.shape == (5000, 1)
    coverage = np.mean(np.abs(y_test - mean) <= 1.645 * std)
    assert 0.87 <= coverage <= 0.93

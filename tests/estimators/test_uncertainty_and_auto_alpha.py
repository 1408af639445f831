"""Predictive uncertainty from the head's posterior, and alpha='auto' (GCV or validation)."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_friedman1
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.preprocessing import StandardScaler

from skcflo import MLPBackbone
from skcflo._estimators.glue import draw_seed
from skcflo._ridge.head import RidgeStatistics, select_alpha
from skcflo._training.cflo import DEFAULT_ALPHAS
from tests.helpers import fixed_cflo


def _friedman(n_samples, noise, seed):
    X, y = make_friedman1(n_samples=n_samples, noise=noise, random_state=seed)
    return X, y


def test_return_std_shapes_follow_the_predictions():
    X, y = _friedman(200, 1.0, 0)
    single = fixed_cflo(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    mean, std = single.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,)
    assert np.all(std > 0)
    assert_allclose(mean, single.predict(X[:5]))
    Y = np.column_stack([y, 2 * y])
    multi = fixed_cflo(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, Y)
    mean, std = multi.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5, 2)
    assert multi.noise_variance_.shape == (2,)


def test_noise_variance_of_a_plain_least_squares_head_is_the_unbiased_residual_variance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + rng.normal(scale=0.7, size=300)
    model = fixed_cflo(backbone=MLPBackbone(hidden_layer_sizes=()), alpha=0.0, max_iter=1)
    model.fit(X, y)
    X32 = X.astype(np.float32).astype(np.float64)  # what the network sees
    residual = y - LinearRegression().fit(X32, y).predict(X32)
    assert model.noise_variance_ == pytest.approx(residual @ residual / (300 - 5), rel=1e-6)


def test_ninety_percent_interval_covers_about_ninety_percent_of_held_out_targets():
    # Known noise (sd 1). Early stopping estimates the noise on held-out rows;
    # measured coverage 0.89-0.92 over data seeds 0-1 and noise sd 0.5 / 2.
    X, y = _friedman(2000, 1.0, 0)
    X_test, y_test = _friedman(4000, 1.0, 1)
    scaler = StandardScaler().fit(X)
    model = fixed_cflo(hidden_layer_sizes=(32,), early_stopping=True, random_state=0)
    model.fit(scaler.transform(X), y)
    mean, std = model.predict(scaler.transform(X_test), return_std=True)
    coverage = np.mean(np.abs(y_test - mean) <= 1.6449 * std)
    assert 0.85 <= coverage <= 0.95
    assert 0.8 <= np.sqrt(model.noise_variance_) <= 1.3


def test_alpha_auto_picks_the_gcv_minimiser_on_the_final_features():
    X, y = _friedman(400, 1.0, 0)
    model = fixed_cflo(hidden_layer_sizes=(16,), alpha="auto", max_iter=5, random_state=0)
    model.fit(StandardScaler().fit_transform(X), y)
    assert model.alpha_ in DEFAULT_ALPHAS
    with torch.no_grad():
        features = model.backbone_(
            torch.as_tensor(StandardScaler().fit_transform(X), dtype=torch.float32)
        )
    targets = torch.as_tensor((y - y.mean()) / y.std()).reshape(-1, 1)
    best, _ = select_alpha(RidgeStatistics.from_batch(features, targets), DEFAULT_ALPHAS)
    assert model.alpha_ == best


class _ValidationReference:
    """An 'auto' fit with early stopping, and scikit-learn's choice on its split.

    The reference fits ``Ridge`` on the fitted backbone's features of the
    training rows and scores it on the validation rows the estimator held out.
    """

    def __init__(self, X, Y, candidates):
        self.candidates = candidates
        self.model = fixed_cflo(
            hidden_layer_sizes=(16,),
            alpha="auto",
            alphas=candidates,
            early_stopping=True,
            max_iter=5,
            random_state=0,
        ).fit(X, Y)
        self.train, self.validation = self.model._split_rows(len(X), draw_seed(0))
        with torch.no_grad():
            inputs = torch.as_tensor(X, dtype=torch.float32)
            self.features = self.model.backbone_(inputs).double().numpy()

    def best_alpha(self, targets):
        """The candidate with the smallest validation MSE of ``targets`` (all outputs)."""
        train, validation, features = self.train, self.validation, self.features
        errors = []
        for alpha in self.candidates:
            ridge = Ridge(alpha=alpha * len(train)).fit(features[train], targets[train])
            errors.append(np.mean((ridge.predict(features[validation]) - targets[validation]) ** 2))
        return self.candidates[int(np.argmin(errors))]


def test_alpha_auto_with_early_stopping_picks_the_best_validation_ridge():
    X, y = _friedman(400, 1.0, 0)
    X = StandardScaler().fit_transform(X)
    reference = _ValidationReference(X, y, [1e-4, 1e-2, 0.1, 1.0, 10.0])
    chosen = reference.model.alpha_
    assert chosen == reference.best_alpha(y)
    # GCV on the same training rows would have chosen another penalty.
    train = reference.train
    targets = torch.as_tensor((y[train] - y[train].mean()) / y[train].std()).reshape(-1, 1)
    stats = RidgeStatistics.from_batch(torch.as_tensor(reference.features[train]), targets)
    assert select_alpha(stats, reference.candidates)[0] != chosen


def test_alpha_auto_on_validation_weighs_outputs_in_standardised_units():
    # A very noisy output on a 1000x larger scale beside a clean one: the choice
    # must average their errors after standardisation (like R²), where the raw
    # errors would let the large output decide alone (and choose differently).
    X, y = _friedman(400, 1.0, 0)
    X = StandardScaler().fit_transform(X)
    noise = np.random.default_rng(5).normal(size=len(y))
    Y = np.column_stack([1000.0 * (y + 10.0 * noise), np.sin(y)])
    reference = _ValidationReference(X, Y, [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0])
    train = reference.train
    standardised = (Y - Y[train].mean(axis=0)) / Y[train].std(axis=0)
    assert reference.model.alpha_ == reference.best_alpha(standardised)
    assert reference.model.alpha_ != reference.best_alpha(Y)


def test_alpha_auto_respects_the_candidates():
    X, y = _friedman(200, 1.0, 0)
    model = fixed_cflo(
        hidden_layer_sizes=(8,), alpha="auto", alphas=[0.5], max_iter=2, random_state=0
    ).fit(X, y)
    assert model.alpha_ == 0.5
    fixed = fixed_cflo(hidden_layer_sizes=(8,), alpha=0.5, max_iter=2, random_state=0)
    assert_allclose(model.predict(X), fixed.fit(X, y).predict(X))


@pytest.mark.parametrize("alphas", [[], [-1.0], [np.nan]])
def test_invalid_candidate_alphas_are_rejected(alphas):
    X, y = _friedman(50, 1.0, 0)
    with pytest.raises(ValueError, match="alphas must be non-negative finite"):
        fixed_cflo(alpha="auto", alphas=alphas, max_iter=1).fit(X, y)


def test_fixed_alpha_is_reported_as_alpha_():
    X, y = _friedman(100, 1.0, 0)
    model = fixed_cflo(hidden_layer_sizes=(8,), alpha=0.3, max_iter=1).fit(X, y)
    assert model.alpha_ == 0.3

"""CFLORegressor against independent computations: a safety net for refactoring.

Every expected value here is computed from the public fitted attributes with
numpy, scipy, scikit-learn or a hand formula, never with skcflo's own helpers
(``skcflo.head``, ``skcflo.training``, ...), so that moving or rewriting those
modules cannot make a test agree with itself.

What the formulas are (read from the source, restated here):

* The exact head is ``Ridge(alpha=alpha_ * n)`` (intercept unpenalised) on the
  float32 features of the ``n`` training rows, the backbone in evaluation mode.
  The features are float32 because training runs in float32; the solve is
  float64, so a float64 ridge on those features agrees to ~1e-14, and float32
  rounding of the features (~1e-7) bounds the tolerance used below.
* ``predict`` is ``phi(x) @ coef_.T + intercept_`` with ``phi`` from a float64
  copy of the backbone.
* ``predict(X, return_std=True)`` is the Gaussian posterior predictive of the
  Bayesian head: ``sqrt(sigma2 * (1 + u^T A^-1 u))``, ``u = [phi(x), 1]``,
  ``A = U^T U + n alpha_ diag(1, ..., 1, 0)`` on the training rows ``U``.
* ``noise_variance_`` is ``RSS / (n - trace(U A^-1 U^T))`` on the training
  rows, or the mean squared residual on the validation rows with early stopping.
"""

import copy

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_friedman1
from sklearn.linear_model import Ridge

from skcflo import CFLORegressor

SMALL = {"hidden_layer_sizes": (16,), "random_state": 0, "device": "cpu"}
# Relative agreement of a head solved on float32 features: float32 rounding of the
# features moves the ridge solution by ~5e-8 of its scale (measured against float64
# features); any real change of the formula (penalty, rows, intercept) is far larger.
HEAD_RTOL = 1e-6


# -- data and independent computations ---------------------------------------------------


def _friedman(n_samples, seed):
    X, y = make_friedman1(n_samples=n_samples, noise=1.0, random_state=seed)
    return (X - 0.5) / 0.3, y  # roughly standardised (the features are U(0, 1))


@pytest.fixture(scope="module")
def data():
    X, y = _friedman(300, 0)
    # A second output on a 100x larger scale, so that per-output averages and
    # shared-penalty mistakes show.
    Y = np.column_stack([y, 100.0 * np.sin(X[:, 0]) + 30.0 * X[:, 1] * X[:, 2]])
    X_new, _ = _friedman(50, 1)
    return X, y, Y, X_new


def _features32(model, X):
    """The features the head is solved on: the fitted backbone in eval mode, float32."""
    backbone = copy.deepcopy(model.backbone_).eval()
    with torch.no_grad():
        features = backbone(torch.as_tensor(np.asarray(X, dtype=np.float32)))
    return features.double().numpy()


def _features64(model, X):
    """The features ``predict`` uses: a float64 copy of the backbone."""
    backbone = copy.deepcopy(model.backbone_).to(torch.float64).eval()
    inputs = np.asarray(X, dtype=np.float32).astype(np.float64)  # what the network sees
    with torch.no_grad():
        return backbone(torch.as_tensor(inputs)).numpy()


def _ridge(model, features, Y):
    """scikit-learn's ridge with the head's per-sample penalty, on ``features`` rows."""
    return Ridge(alpha=model.alpha_ * len(features)).fit(features, Y)


def _assert_head_is(model, ridge, Y):
    scale = np.abs(ridge.coef_).max()
    # (Ridge drops the output axis of a one-column Y; the operator head keeps it.)
    coef = np.reshape(ridge.coef_, (-1, ridge.coef_.shape[-1])) if Y.ndim == 2 else ridge.coef_
    assert np.shape(model.coef_) == coef.shape
    assert_allclose(model.coef_, coef, rtol=0, atol=HEAD_RTOL * scale)
    intercept = np.reshape(ridge.intercept_, np.shape(Y)[1:])
    assert np.shape(model.intercept_) == intercept.shape
    assert_allclose(model.intercept_, intercept, rtol=HEAD_RTOL, atol=HEAD_RTOL * scale)


def _augmented(features):
    return np.column_stack([features, np.ones(len(features))])


def _ridge_system(train_features, alpha):
    """``A = U^T U + n alpha diag(1, ..., 1, 0)``: the intercept is not penalised."""
    U = _augmented(train_features)
    penalty = np.full(U.shape[1], len(U) * alpha)
    penalty[-1] = 0.0
    return U.T @ U + np.diag(penalty)


def _hand_noise_variance(train_features, Y, alpha):
    """RSS / (n - df) per output, df the trace of the ridge hat matrix (intercept included)."""
    U = _augmented(train_features)
    hat = U @ np.linalg.solve(_ridge_system(train_features, alpha), U.T)
    fitted = Ridge(alpha=alpha * len(U)).fit(train_features, Y).predict(train_features)
    rss = ((Y - fitted) ** 2).sum(axis=0)
    return rss / (len(U) - np.trace(hat))


def _hand_std(train_features, alpha, noise_variance, new_features):
    """Posterior predictive sd: ``sqrt(sigma2 (1 + u^T A^-1 u))`` for every new row ``u``."""
    V = _augmented(new_features)
    leverage = np.einsum("ij,ji->i", V, np.linalg.solve(_ridge_system(train_features, alpha), V.T))
    return np.sqrt(np.outer(1.0 + leverage, np.atleast_1d(noise_variance)))


# -- 1. the exact head is scikit-learn's Ridge on the training features -------------------


@pytest.mark.parametrize(
    "head_update, multi_output",
    [
        ("proximal", False),
        ("proximal", True),
        ("accumulate", True),
        ("full", False),
        ("gradient", True),
    ],
)
def test_refitted_head_equals_sklearn_ridge_on_float32_training_features(
    data, head_update, multi_output
):
    # Whatever the head did during training, refit_head=True (the default) ends with
    # the exact ridge head of the trained backbone on all training rows.
    X, y, Y, _ = data
    target = Y if multi_output else y
    model = CFLORegressor(max_iter=4, head_update=head_update, **SMALL).fit(X, target)
    features = _features32(model, X)
    _assert_head_is(model, _ridge(model, features, target), target)


def test_head_with_auto_alpha_is_ridge_with_the_reported_alpha(data):
    # alpha='auto' reports its choice in alpha_; the head must be the ridge of that choice.
    X, y, _, _ = data
    candidates = [1e-3, 1e-2, 1e-1, 1.0]
    model = CFLORegressor(alpha="auto", alphas=candidates, max_iter=3, **SMALL).fit(X, y)
    assert model.alpha_ in candidates
    _assert_head_is(model, _ridge(model, _features32(model, X), y), y)


# -- 2. predict, predictive spread and noise variance -------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["single", "multi"])
def fitted(request, data):
    X, y, Y, _ = data
    target = Y if request.param else y
    return CFLORegressor(max_iter=5, **SMALL).fit(X, target), target


def test_predict_is_features_times_coef_plus_intercept(fitted, data):
    model, _ = fitted
    X_new = data[3]
    expected = _features64(model, X_new) @ np.transpose(model.coef_) + model.intercept_
    assert_allclose(model.predict(X_new), expected, rtol=1e-12, atol=1e-12)


def test_noise_variance_is_rss_over_residual_degrees_of_freedom(fitted, data):
    model, target = fitted
    X = data[0]
    expected = _hand_noise_variance(_features32(model, X), target, model.alpha_)
    assert np.shape(model.noise_variance_) == np.shape(target)[1:]
    assert_allclose(model.noise_variance_, expected.reshape(np.shape(target)[1:]), rtol=1e-6)


def test_predictive_std_is_the_bayesian_ridge_posterior_predictive(fitted, data):
    model, target = fitted
    X, _, _, X_new = data
    # Far from the data too, where the posterior term is no small correction.
    X_new = np.vstack([X_new, 4.0 * X_new[:10]])
    mean, std = model.predict(X_new, return_std=True)
    expected = _hand_std(
        _features32(model, X), model.alpha_, model.noise_variance_, _features64(model, X_new)
    )
    assert_allclose(mean, model.predict(X_new))
    assert_allclose(std, expected.reshape(std.shape), rtol=1e-6)
    # The posterior term is not negligible here, so dropping or rescaling it fails above.
    noise_only = np.sqrt(np.atleast_1d(model.noise_variance_))
    assert np.max(np.abs(expected / noise_only - 1.0)) > 1e-3


# -- 3. score ------------------------------------------------------------------------------


def test_score_is_the_uniform_average_of_hand_computed_r2(data):
    X, _, Y, _ = data
    X_test, _ = _friedman(80, 2)
    Y_test = np.column_stack([X_test[:, 3], 100.0 * np.sin(X_test[:, 0])])
    model = CFLORegressor(max_iter=3, **SMALL).fit(X, Y)
    residual = Y_test - model.predict(X_test)
    ss_res = (residual**2).sum(axis=0)
    ss_tot = ((Y_test - Y_test.mean(axis=0)) ** 2).sum(axis=0)
    per_output = 1.0 - ss_res / ss_tot
    # The outputs' R² differ a lot, so a variance-weighted or pooled R² would not pass.
    assert abs(per_output[0] - per_output[1]) > 0.1
    assert model.score(X_test, Y_test) == pytest.approx(per_output.mean(), rel=1e-12)

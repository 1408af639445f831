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
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import erf, expit
from sklearn.datasets import make_friedman1
from sklearn.linear_model import Ridge
from torch import nn

from skcflo import FNOBackbone1d, FNOBackbone2d, MLPBackbone
from skcflo.datasets import make_burgers, make_darcy
from tests.helpers import fixed_cflo

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


def _validation_rows(n_samples, validation_fraction, random_state):
    """The rows ``fit`` holds out for early stopping, found through public behaviour.

    On one-hot inputs ``X = I`` with the identity backbone, the head is a ridge
    fit on the training rows' indicator columns: the column of a held-out row is
    zero on every training row, so its coefficient is exactly zero. The split
    depends on ``random_state`` and the number of rows only (as scikit-learn's
    ``MLPRegressor``), so a fit with the same two holds out the same rows.
    """
    y = np.random.default_rng(0).normal(size=n_samples)
    model = fixed_cflo(
        backbone=MLPBackbone(hidden_layer_sizes=()),
        early_stopping=True,
        validation_fraction=validation_fraction,
        n_iter_no_change=1,
        max_iter=2,
        random_state=random_state,
        device="cpu",
    ).fit(np.eye(n_samples), y)
    return np.flatnonzero(model.coef_ == 0.0)


def _assert_same_model(first, second, X):
    for a, b in zip(
        first.backbone_.state_dict().values(), second.backbone_.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert_array_equal(first.coef_, second.coef_)
    assert_array_equal(first.intercept_, second.intercept_)
    assert_array_equal(first.predict(X), second.predict(X))


def _assert_different_backbones(first, second):
    pairs = zip(
        first.backbone_.state_dict().values(), second.backbone_.state_dict().values(), strict=True
    )
    assert not all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in pairs)


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
    model = fixed_cflo(max_iter=4, head_update=head_update, **SMALL).fit(X, target)
    features = _features32(model, X)
    _assert_head_is(model, _ridge(model, features, target), target)


def test_head_with_auto_alpha_is_ridge_with_the_reported_alpha(data):
    # alpha='auto' reports its choice in alpha_; the head must be the ridge of that choice.
    X, y, _, _ = data
    candidates = [1e-3, 1e-2, 1e-1, 1.0]
    model = fixed_cflo(alpha="auto", alphas=candidates, max_iter=3, **SMALL).fit(X, y)
    assert model.alpha_ in candidates
    _assert_head_is(model, _ridge(model, _features32(model, X), y), y)


# -- 2. predict, predictive spread and noise variance -------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["single", "multi"])
def fitted(request, data):
    X, y, Y, _ = data
    target = Y if request.param else y
    return fixed_cflo(max_iter=5, **SMALL).fit(X, target), target


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
    model = fixed_cflo(max_iter=3, **SMALL).fit(X, Y)
    residual = Y_test - model.predict(X_test)
    ss_res = (residual**2).sum(axis=0)
    ss_tot = ((Y_test - Y_test.mean(axis=0)) ** 2).sum(axis=0)
    per_output = 1.0 - ss_res / ss_tot
    # The outputs' R² differ a lot, so a variance-weighted or pooled R² would not pass.
    assert abs(per_output[0] - per_output[1]) > 0.1
    assert model.score(X_test, Y_test) == pytest.approx(per_output.mean(), rel=1e-12)


# -- 4. early stopping ---------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    X, y = _friedman(400, 3)
    patience = 3
    settings = dict(early_stopping=True, tol=0.0, **SMALL)
    stopped = fixed_cflo(n_iter_no_change=patience, max_iter=300, **settings).fit(X, y)
    assert stopped.n_iter_ < 300
    assert len(stopped.validation_scores_) == stopped.n_iter_
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    best_epoch = int(np.argmax(stopped.validation_scores_)) + 1
    # With tol=0 every epoch after the best is stale: training stops exactly after
    # the patience has run out.
    assert stopped.n_iter_ == best_epoch + patience
    # Training is deterministic for a seed: a run that ends at the best epoch passes
    # through the same networks, so the restored model (and its refitted head) must
    # be that run's model.
    short = fixed_cflo(n_iter_no_change=1000, max_iter=best_epoch, **settings).fit(X, y)
    assert short.n_iter_ == best_epoch
    _assert_same_model(stopped, short, X)
    # The head after the restore is refitted on the training part only.
    validation = _validation_rows(len(X), 0.1, SMALL["random_state"])
    train = np.setdiff1d(np.arange(len(X)), validation)
    features = _features32(stopped, X[train])
    _assert_head_is(stopped, _ridge(stopped, features, y[train]), y[train])


@pytest.mark.parametrize("fraction, n_validation", [(0.1, 9), (0.25, 23)])
def test_validation_fraction_sets_the_number_of_held_out_rows(fraction, n_validation):
    # ceil(fraction * n) rows, as scikit-learn's train_test_split counts a test share.
    assert len(_validation_rows(90, fraction, 0)) == n_validation


def test_early_stopping_head_and_noise_variance_use_the_training_and_validation_rows():
    X, y = _friedman(200, 4)
    Y = np.column_stack([y, 10.0 * X[:, 0] ** 2])
    model = fixed_cflo(
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=2, max_iter=8, **SMALL
    ).fit(X, Y)
    validation = _validation_rows(len(X), 0.2, SMALL["random_state"])
    assert len(validation) == 40
    train = np.setdiff1d(np.arange(len(X)), validation)
    _assert_head_is(model, _ridge(model, _features32(model, X[train]), Y[train]), Y[train])
    # Held-out residuals estimate the noise: mean squared validation residual per output.
    residual = Y[validation] - model.predict(X[validation])
    assert_allclose(model.noise_variance_, (residual**2).mean(axis=0), rtol=1e-5)


def test_too_small_a_validation_fraction_raises():
    X, y = _friedman(100, 0)
    with pytest.raises(ValueError, match="validation"):
        fixed_cflo(early_stopping=True, validation_fraction=0.01, max_iter=2).fit(X, y)


# -- 5. training controls ------------------------------------------------------------------


def test_invscaling_with_power_t_zero_is_the_constant_schedule(data):
    X, y, _, _ = data
    constant = fixed_cflo(max_iter=3, **SMALL).fit(X, y)
    flat = fixed_cflo(learning_rate="invscaling", power_t=0.0, max_iter=3, **SMALL).fit(X, y)
    _assert_same_model(constant, flat, X)
    decaying = fixed_cflo(learning_rate="invscaling", power_t=0.5, max_iter=3, **SMALL)
    _assert_different_backbones(constant, decaying.fit(X, y))


def test_sgd_momentum_changes_the_model(data):
    X, y, _, _ = data
    plain = fixed_cflo(solver="sgd", momentum=0.0, max_iter=3, **SMALL).fit(X, y)
    heavy = fixed_cflo(solver="sgd", momentum=0.9, max_iter=3, **SMALL).fit(X, y)
    _assert_different_backbones(plain, heavy)


def _tanh_layer_gradient(weight, bias, X, Y_scaled, alpha):
    """Gradient of the batch MSE of ``Ridge-head(tanh(X W^T + b))`` w.r.t. ``W`` and ``b``.

    The head is the exact ridge head of the current features, held fixed (the
    envelope theorem: no gradient through the solve). Hand-derived backward pass.
    """
    n, k = Y_scaled.shape
    phi = np.tanh(X @ weight.T + bias)
    head = Ridge(alpha=alpha * n).fit(phi, Y_scaled)
    residual = head.predict(phi) - Y_scaled
    grad_phi = 2.0 * residual @ head.coef_ / (n * k)
    grad_z = grad_phi * (1.0 - phi**2)
    return grad_z.T @ X, grad_z.sum(axis=0), residual


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_full_batch_sgd_takes_hand_computed_steps_against_the_exact_head(momentum):
    # head_update='full' refits the exact head at the start of every epoch; with one
    # batch per epoch each epoch is one SGD step of the backbone against that head,
    # on the mean squared error of the standardised targets.
    rng = np.random.default_rng(5)
    n, p, width, lr, alpha = 64, 3, 6, 0.5, 0.1
    X = rng.normal(size=(n, p)).astype(np.float32).astype(np.float64)
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], 5.0 + 3.0 * X[:, 0] ** 2])
    Y += 0.1 * rng.normal(size=Y.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = nn.Sequential(nn.Linear(p, width), nn.Tanh())
    model = fixed_cflo(
        backbone=module,
        solver="sgd",
        momentum=momentum,
        learning_rate_init=lr,
        batch_size=n,
        head_update="full",
        alpha=alpha,
        max_iter=2,
        random_state=0,
        device="cpu",
    ).fit(X, Y)

    mean, scale = Y.mean(axis=0), Y.std(axis=0)
    Y_scaled = (Y - mean) / scale
    weight = module[0].weight.detach().double().numpy()
    bias = module[0].bias.detach().double().numpy()
    start = np.concatenate([weight.ravel(), bias])
    buffer = None
    losses = []
    for _ in range(2):
        grad_w, grad_b, residual = _tanh_layer_gradient(weight, bias, X, Y_scaled, alpha)
        losses.append(float(((residual * scale) ** 2).mean()))
        gradient = np.concatenate([grad_w.ravel(), grad_b])
        # torch.optim.SGD: buf = momentum * buf + g (the first buf is g); p -= lr * buf
        buffer = gradient if buffer is None else momentum * buffer + gradient
        step = lr * buffer
        weight = weight - step[: weight.size].reshape(weight.shape)
        bias = bias - step[weight.size :]
    expected = np.concatenate([weight.ravel(), bias])
    trained = model.backbone_[0]
    got = torch.cat([trained.weight.detach().ravel(), trained.bias.detach()]).double().numpy()
    # float32 training against a float64 reference: compare to the size of the steps.
    assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected - start).max())
    # The epoch losses are the mean squared errors (raw units, averaged over outputs)
    # of the batch before its step.
    assert_allclose(model.loss_curve_, losses, rtol=1e-5)


def test_huge_tol_stops_after_patience_plus_one_epoch(data):
    # The first epoch always improves on nothing; after it no improvement can exceed
    # the tolerance, so every later epoch is stale.
    X, y, _, _ = data
    model = fixed_cflo(early_stopping=True, tol=1e9, n_iter_no_change=3, max_iter=50, **SMALL).fit(
        X, y
    )
    assert model.n_iter_ == 4
    assert len(model.validation_scores_) == 4


def _gelu(z):
    return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))


ACTIVATION_FORMULAS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": expit,
    "gelu": _gelu,  # the exact (erf) form, not the tanh approximation
    "silu": lambda z: z * expit(z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "identity": lambda z: z,
}


@pytest.mark.parametrize("activation", sorted(ACTIVATION_FORMULAS))
def test_mlp_backbone_forward_equals_a_numpy_reimplementation(data, activation):
    X, y, _, X_new = data
    model = fixed_cflo(
        hidden_layer_sizes=(7, 5), activation=activation, max_iter=2, random_state=0, device="cpu"
    ).fit(X, y)
    layers = [m for m in model.backbone_.modules() if isinstance(m, nn.Linear)]
    assert [layer.out_features for layer in layers] == [7, 5]
    hidden = np.asarray(X_new, dtype=np.float32).astype(np.float64)
    for layer in layers:
        weight = layer.weight.detach().double().numpy()
        bias = layer.bias.detach().double().numpy()
        hidden = ACTIVATION_FORMULAS[activation](hidden @ weight.T + bias)
    assert_allclose(_features64(model, X_new), hidden, rtol=1e-12, atol=1e-12)
    assert_allclose(
        model.predict(X_new), hidden @ model.coef_ + model.intercept_, rtol=1e-10, atol=1e-10
    )


# -- 6. neural operators: one head shared by every grid position --------------------------


def _assert_operator_model(model, X, Y, grid_size, k):
    features = _features32(model, X)
    assert features.shape[1:-1] == grid_size
    rows = features.reshape(-1, features.shape[-1])
    # Columns of Y are positions (row-major) times k outputs: one row per position.
    targets = Y.reshape(len(Y) * math.prod(grid_size), k)
    _assert_head_is(model, _ridge(model, rows, targets), targets)
    prediction = model.predict(X)
    assert prediction.shape == (len(X), math.prod(grid_size) * k)
    by_hand = _features64(model, X) @ model.coef_.T + model.intercept_
    assert_allclose(prediction, by_hand.reshape(len(X), -1), rtol=1e-10, atol=1e-10)


def test_fno1d_on_burgers_has_one_ridge_head_for_every_grid_position():
    burgers = make_burgers(40, resolution=32, random_state=0)
    backbone = FNOBackbone1d(modes=6, width=8, n_layers=2, n_features_out=12)
    model = fixed_cflo(
        backbone=backbone, alpha=1e-3, batch_size=10, max_iter=3, random_state=0, device="cpu"
    ).fit(burgers.X, burgers.y)
    _assert_operator_model(model, burgers.X, burgers.y, (32,), 1)


def test_fno2d_on_darcy_has_one_ridge_head_for_every_grid_position():
    darcy = make_darcy(24, resolution=12, random_state=0)
    n, size = darcy.X.shape
    # Two outputs per position (the pressure and a pointwise function of the input).
    Y = np.stack([darcy.y, np.log(darcy.X)], axis=-1).reshape(n, size * 2)
    backbone = FNOBackbone2d(modes=3, width=6, n_layers=1, n_features_out=8)
    model = fixed_cflo(
        backbone=backbone, alpha=1e-3, batch_size=8, max_iter=3, random_state=0, device="cpu"
    ).fit(darcy.X, Y)
    _assert_operator_model(model, darcy.X, Y, darcy.shape, 2)


# -- 7. partial_fit follows MLPRegressor: no early stopping, no schedule ------------------


@pytest.mark.parametrize("schedule", ["cosine", "step", "invscaling", "adaptive"])
def test_partial_fit_ignores_early_stopping_and_learning_rate_schedules(data, schedule):
    # One epoch per call at learning_rate_init, on every row of the chunk: the same
    # sequence of calls gives the same model as with the defaults.
    X, y, _, _ = data
    chunks = [slice(0, 100), slice(100, 200), slice(200, 300)] * 2
    default = fixed_cflo(max_iter=2, **SMALL)
    controlled = fixed_cflo(
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=1,
        tol=1e9,
        learning_rate=schedule,
        max_iter=2,
        **SMALL,
    )
    for rows in chunks:
        default.partial_fit(X[rows], y[rows])
        controlled.partial_fit(X[rows], y[rows])
    _assert_same_model(default, controlled, X)
    assert controlled.n_iter_ == default.n_iter_ == len(chunks)
    assert controlled.loss_curve_ == default.loss_curve_
    assert controlled.noise_variance_ == default.noise_variance_


class _ComplexFeatures(nn.Module):
    """Features through a complex weight, as spectral convolutions compute them."""

    def __init__(self, n_inputs, width):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_inputs, width, dtype=torch.complex64))

    def forward(self, x):
        return torch.tanh((x.to(self.weight.dtype) @ self.weight).real)


def test_prediction_of_a_complex_weighted_backbone_is_float64_and_batch_independent():
    # predict runs a double-precision copy of the network so that a row's prediction
    # does not depend on the rows beside it; complex weights must widen to complex128
    # (a plain .to(float64) drops their imaginary part, warns, and falls back to float32).
    X, y = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    torch.manual_seed(0)
    model = fixed_cflo(backbone=_ComplexFeatures(10, 16), max_iter=2, random_state=0)
    model.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        together = model.predict(X[:50])
        alone = np.array([model.predict(X[i : i + 1])[0] for i in range(50)])
    assert_allclose(alone, together, rtol=0, atol=1e-12 * np.abs(together).max())
    weight = model.backbone_.weight.detach().numpy().astype(np.complex128)
    features = np.tanh((X[:50] @ weight).real)
    assert_allclose(together, features @ model.coef_ + model.intercept_, rtol=1e-6)


class _Float32Only(nn.Module):
    """A module that refuses float64 inputs, as a custom float32 kernel would."""

    def __init__(self, n_inputs, width):
        super().__init__()
        self.linear = nn.Linear(n_inputs, width)

    def forward(self, x):
        if x.dtype != torch.float32:
            raise TypeError("float32 only")
        return torch.tanh(self.linear(x))


def _hand_prediction(model, X):
    """head(backbone(X)) recomputed in numpy from the fitted MLP's weights."""
    hidden = np.asarray(X, dtype=np.float32).astype(np.float64)
    layers = [m for m in model.backbone_.modules() if isinstance(m, nn.Linear)]
    for layer in layers:
        weight = layer.weight.detach().numpy().astype(np.float64)
        hidden = np.maximum(hidden @ weight.T + layer.bias.detach().numpy(), 0.0)
    return hidden @ model.coef_ + model.intercept_


def test_predict_follows_the_backbone_when_it_changes_in_place_or_by_refit():
    # predict keeps its float64 copy of the network between calls; an in-place change
    # of the weights or a new fit must reach the next prediction.
    X, y = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    assert_allclose(model.predict(X[:5]), _hand_prediction(model, X[:5]), rtol=1e-10)
    with torch.no_grad():
        next(model.backbone_.parameters()).mul_(0.5)
    assert_allclose(model.predict(X[:5]), _hand_prediction(model, X[:5]), rtol=1e-10)
    model.set_params(random_state=1).fit(X, y)
    assert_allclose(model.predict(X[:5]), _hand_prediction(model, X[:5]), rtol=1e-10)


def test_predict_copy_is_neither_pickled_nor_shared_by_copies():
    X, y = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    bare = pickle.dumps(model)
    expected = model.predict(X[:5])  # the float64 copy now exists
    assert len(pickle.dumps(model)) == len(bare)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        next(twin.backbone_.parameters()).zero_()
    assert_allclose(model.predict(X[:5]), expected, rtol=0, atol=0)
    assert not np.allclose(twin.predict(X[:5]), expected)


def test_predict_falls_back_to_float32_for_a_float32_only_backbone():
    X, y = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    torch.manual_seed(0)
    model = fixed_cflo(backbone=_Float32Only(10, 8), max_iter=2, random_state=0).fit(X, y)
    for _ in range(2):  # the second call takes the remembered float32 path
        prediction = model.predict(X[:5])
        features = model.backbone_(torch.as_tensor(X[:5], dtype=torch.float32))
        hand = features.detach().numpy().astype(np.float64) @ model.coef_ + model.intercept_
        assert prediction.dtype == np.float64
        assert_allclose(prediction, hand, rtol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "gelu"])
@pytest.mark.parametrize("include_inputs", [False, True])
def test_numpy_prediction_path_equals_the_float64_torch_network(activation, include_inputs):
    # predict runs plain layer stacks in numpy on the CPU (torch for other layers, such
    # as GELU); both must equal the float64 torch copy of the trained network, for one
    # row as for many, with or without the inputs beside the features.
    X, y = make_friedman1(n_samples=200, noise=1.0, random_state=0)
    Y = np.column_stack([y, np.sin(y)])
    model = fixed_cflo(
        hidden_layer_sizes=(8, 4),
        activation=activation,
        include_inputs=include_inputs,
        max_iter=2,
        random_state=0,
    ).fit(X, Y)
    wide = copy.deepcopy(model.backbone_).double().eval()
    inputs = torch.as_tensor(np.asarray(X, dtype=np.float32), dtype=torch.float64)
    with torch.no_grad():
        features = wide(inputs).numpy()
    expected = features @ model.coef_.T + model.intercept_
    X_before = X.copy()
    together = model.predict(X)
    alone = np.vstack([model.predict(X[i : i + 1]) for i in range(0, 200, 37)])
    assert_allclose(together, expected, rtol=1e-12, atol=1e-12)
    assert_allclose(alone, together[::37], rtol=0, atol=1e-12)
    assert_array_equal(X, X_before)
    mean, _ = model.predict(X[:5], return_std=True)  # the torch features path
    assert_allclose(mean, together[:5], rtol=1e-12, atol=1e-12)


def test_a_backbone_with_hooks_predicts_through_torch():
    X, y = make_friedman1(n_samples=100, noise=1.0, random_state=0)
    calls = []
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU())
    net.register_forward_hook(lambda module, args, output: calls.append(1))
    model = fixed_cflo(backbone=net, max_iter=1, random_state=0).fit(X, y)
    calls.clear()
    model.predict(X[:3])
    assert calls  # the hook ran: no numpy shortcut past it

"""Bad input fails early, in scikit-learn's words; failures never corrupt a fitted model."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LinearRegression
from torch import nn

from skcflo import MLPBackbone
from tests.helpers import fixed_cflo

N_FEATURES = 3


def small(**params):
    defaults = {"hidden_layer_sizes": (16,), "max_iter": 5, "random_state": 0}
    return fixed_cflo(**{**defaults, **params})


def make_data(n_samples=40, n_features=N_FEATURES, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n_samples, n_features)
    return X, X @ rng.randn(n_features) + 0.1 * rng.randn(n_samples)


class Spy(nn.Module):
    """Linear features that log every forward call's mode.

    The log is a class attribute, so it also records the calls of the deep copy
    that the estimator trains. ``True`` in the log means a training-mode call.
    """

    calls = []

    def __init__(self, n_features=N_FEATURES, width=4):
        super().__init__()
        self.linear = nn.Linear(n_features, width)

    def forward(self, x):
        Spy.calls.append(self.training)
        return self.features(x)

    def features(self, x):
        return self.linear(x)


class ThreeDFeatures(Spy):
    def features(self, x):
        return self.linear(x)[:, :, None]


class MissingRowFeatures(Spy):
    def features(self, x):
        return self.linear(x)[:-1]


class NumpyFeatures(Spy):
    def features(self, x):
        return self.linear(x).detach().numpy()


class NaNFeatures(Spy):
    def features(self, x):
        return self.linear(x) * float("nan")


class NaNFeaturesBeyondRowTen(Spy):
    """Finite on the first rows, NaN on row 10 of the training data."""

    def features(self, x):
        out = self.linear(x)
        if x.shape[0] > 10:
            out = out.clone()
            out[10] = float("nan")
        return out


class FailsInTraining(Spy):
    def features(self, x):
        if self.training:
            raise RuntimeError("boom during training")
        return self.linear(x)


@pytest.fixture
def spy_log():
    Spy.calls.clear()
    yield Spy.calls
    Spy.calls.clear()


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    return small().fit(*data)


def with_value(X, value, row=0, col=0):
    X = X.copy()
    X[row, col] = value
    return X


# --- data validation in fit: raised before the backbone even runs -------------------------


def _bad_fit_inputs():
    X, y = make_data()
    return [
        pytest.param(with_value(X, np.nan), y, ValueError, "Input X contains NaN", id="nan-X"),
        pytest.param(with_value(X, np.inf), y, ValueError, "Input X contains infinity", id="inf-X"),
        pytest.param(
            with_value(X, -np.inf), y, ValueError, "Input X contains infinity", id="neg-inf-X"
        ),
        pytest.param(
            X,
            np.where(np.arange(len(y)) == 3, np.nan, y),
            ValueError,
            "Input y contains NaN",
            id="nan-y",
        ),
        pytest.param(
            X,
            np.where(np.arange(len(y)) == 3, np.inf, y),
            ValueError,
            "Input y contains infinity",
            id="inf-y",
        ),
        pytest.param(
            np.empty((0, N_FEATURES)),
            np.empty(0),
            ValueError,
            r"Found array with 0 sample\(s\)",
            id="no-rows",
        ),
        pytest.param(
            np.empty((len(y), 0)),
            y,
            ValueError,
            r"Found array with 0 feature\(s\)",
            id="no-columns",
        ),
        pytest.param(X[:1], y[:1], ValueError, r"Found array with 1 sample\(s\)", id="one-row"),
        pytest.param(X[:, 0], y, ValueError, "Expected 2D array, got 1D array", id="1d-X"),
        pytest.param(X[:, :, None], y, ValueError, "Found array with dim 3", id="3d-X"),
        pytest.param(
            X, y[:-1], ValueError, "inconsistent numbers of samples", id="length-mismatch"
        ),
        pytest.param(
            np.full((len(y), N_FEATURES), "abc"),
            y,
            ValueError,
            "could not convert string to float",
            id="string-X",
        ),
        pytest.param(
            np.array([[object()] * N_FEATURES] * len(y), dtype=object),
            y,
            TypeError,
            "float",
            id="object-X",
        ),
        pytest.param(X + 1j, y, ValueError, "Complex data not supported", id="complex-X"),
        pytest.param(sp.csr_matrix(X), y, TypeError, "Sparse data was passed", id="sparse-X"),
        pytest.param(
            X,
            np.full(len(y), "abc"),
            ValueError,
            "could not convert string to float",
            id="string-y",
        ),
    ]


@pytest.mark.parametrize("X, y, error, match", _bad_fit_inputs())
def test_bad_fit_data_raises_before_the_backbone_runs(X, y, error, match, spy_log):
    with pytest.raises(error, match=match):
        small(backbone=Spy()).fit(X, y)
    assert spy_log == []


def test_fit_on_values_overflowing_float32_names_the_input():
    # Finite in float64 but inf once cast to the network's float32.
    X, y = make_data()
    X = with_value(X, 1e39)
    with pytest.raises(ValueError, match="infinity|too large|float32|overflow"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            small().fit(X, y)


# --- data validation in predict -----------------------------------------------------------


def _bad_predict_inputs():
    X, _ = make_data()
    return [
        pytest.param(with_value(X, np.nan), ValueError, "Input X contains NaN", id="nan"),
        pytest.param(with_value(X, np.inf), ValueError, "Input X contains infinity", id="inf"),
        pytest.param(
            np.empty((0, N_FEATURES)), ValueError, r"Found array with 0 sample\(s\)", id="no-rows"
        ),
        pytest.param(X[0], ValueError, "Expected 2D array, got 1D array", id="1d"),
        pytest.param(X[:, :, None], ValueError, "Found array with dim 3", id="3d"),
        pytest.param(
            X[:, :2],
            ValueError,
            f"X has 2 features, but CFLORegressor is expecting {N_FEATURES} features",
            id="too-few-features",
        ),
        pytest.param(
            np.hstack([X, X]),
            ValueError,
            f"X has 6 features, but CFLORegressor is expecting {N_FEATURES} features",
            id="too-many-features",
        ),
        pytest.param(X + 1j, ValueError, "Complex data not supported", id="complex"),
        pytest.param(sp.csr_matrix(X), TypeError, "Sparse data was passed", id="sparse"),
    ]


@pytest.mark.parametrize("X, error, match", _bad_predict_inputs())
def test_bad_predict_data_raises_before_the_backbone_runs(X, error, match, data, spy_log):
    model = small(backbone=Spy()).fit(*data)
    spy_log.clear()
    with pytest.raises(error, match=match):
        model.predict(X)
    assert spy_log == []


def test_predict_on_values_overflowing_float32_raises_not_nan(fitted, data):
    X = with_value(data[0], 1e39)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="infinity|too large|float32|overflow"):
            fitted.predict(X)


def test_predict_before_fit_raises_not_fitted(data):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        small().predict(data[0])


# --- parameter validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1}, "'alpha' parameter of CFLORegressor must be"),
        ({"solver": "lbfgs"}, "'solver' parameter of CFLORegressor must be"),
        ({"head_update": "foo"}, "'head_update' parameter of CFLORegressor must be"),
        ({"batch_size": 0}, "'batch_size' parameter of CFLORegressor must be"),
        ({"batch_size": "big"}, "'batch_size' parameter of CFLORegressor must be"),
        ({"max_iter": 0}, "'max_iter' parameter of CFLORegressor must be"),
        ({"learning_rate_init": 0.0}, "'learning_rate_init' parameter of CFLORegressor must be"),
        ({"momentum": 1.5}, "'momentum' parameter of CFLORegressor must be"),
        ({"forgetting_factor": 1.5}, "'forgetting_factor' parameter of CFLORegressor must be"),
        ({"forgetting_factor": 0.0}, "'forgetting_factor' parameter of CFLORegressor must be"),
        ({"proximal_lambda": -1.0}, "'proximal_lambda' parameter of CFLORegressor must be"),
        ({"update_order": "both"}, "'update_order' parameter of CFLORegressor must be"),
        ({"head_update_interval": 0}, "'head_update_interval' parameter of CFLORegressor must"),
        ({"recompute_features": "no"}, "'recompute_features' parameter of CFLORegressor must"),
        ({"activation": "swish"}, "'activation' parameter of CFLORegressor must be"),
        ({"refit_head": "yes"}, "'refit_head' parameter of CFLORegressor must be"),
        ({"backbone": 42}, "'backbone' parameter of CFLORegressor must be"),
        ({"device": 0}, "'device' parameter of CFLORegressor must be"),
        ({"hidden_layer_sizes": (16, 0)}, "hidden_layer_sizes must hold positive integers"),
        (
            {"backbone": MLPBackbone(hidden_layer_sizes=(0,))},
            "hidden_layer_sizes must hold positive integers",
        ),
        ({"backbone": MLPBackbone(activation="swish")}, "activation must be one of"),
        ({"device": "gpu"}, "'gpu'"),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else None,
)
def test_invalid_parameter_raises_value_error_naming_it(params, match, data, monkeypatch):
    monkeypatch.setattr("skcflo._estimators.cflo.train_cflo", _training_must_not_start)
    with pytest.raises(ValueError, match=match):
        small(**params).fit(*data)


def _training_must_not_start(*args, **kwargs):
    raise AssertionError("training started despite invalid input")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_device_without_cuda_raises_in_fit(device, data, monkeypatch):
    monkeypatch.setattr("skcflo._estimators.cflo.train_cflo", _training_must_not_start)
    with pytest.raises(ValueError, match="CUDA is not available"):
        small(device=device).fit(*data)


# --- user backbones that break the contract -----------------------------------------------


@pytest.mark.parametrize(
    "backbone, error, match",
    [
        # Operator-shaped features (n, 4, 1) are allowed, but a 1-D y cannot fill 4 positions.
        (ThreeDFeatures(), ValueError, r"grid of shape \(4,\) \(4 positions\)"),
        (MissingRowFeatures(), ValueError, r"must return features of shape .*got shape"),
        (NumpyFeatures(), TypeError, "must return a torch.Tensor, got ndarray"),
        (NaNFeatures(), ValueError, "NaN or infinite features"),
        (NaNFeaturesBeyondRowTen(), ValueError, "NaN or infinite features"),
    ],
    ids=["3d-output", "wrong-row-count", "not-a-tensor", "nan-features", "nan-on-a-later-row"],
)
def test_broken_backbone_output_raises_before_any_training_step(
    backbone, error, match, data, spy_log
):
    with pytest.raises(error, match=match):
        small(backbone=backbone).fit(*data)
    assert spy_log, "the backbone was never probed"
    assert True not in spy_log, "the backbone ran in training mode before the error"


def test_factory_returning_a_non_module_raises_type_error(data):
    with pytest.raises(TypeError, match="must return a torch.nn.Module, got str"):
        small(backbone=lambda n_features_in: "not a module").fit(*data)


# --- divergence ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        # The closed-form heads keep training stable even at absurd rates; the end-to-end
        # baseline diverges at 1e6, the closed-form heads only near the float32 maximum.
        pytest.param({"head_update": "gradient", "learning_rate_init": 1e6}, id="gradient"),
        pytest.param({"head_update": "proximal", "learning_rate_init": 1e38}, id="proximal"),
        # The state after an epoch's last step was never evaluated by a loss: it may
        # overflow, so recovery must fall back to an earlier state.
        pytest.param({"head_update": "full", "learning_rate_init": 1e38}, id="full"),
        pytest.param(
            {"head_update": "full", "learning_rate_init": 3e38, "max_iter": 2},
            id="full-overflow-in-last-epoch",
        ),
    ],
)
def test_divergence_warns_and_keeps_a_finite_model(params):
    X, y = make_data(n_samples=60, n_features=4)
    model = small(**{"solver": "sgd", "max_iter": 10, **params})
    with pytest.warns(ConvergenceWarning, match="diverged"):
        model.fit(X, y)
    assert model.n_iter_ < model.max_iter
    assert len(model.loss_curve_) == model.n_iter_
    assert np.isfinite(model.loss_curve_).all()
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_)
    assert np.isfinite(model.predict(X)).all()


# --- a failed fit leaves a fitted model as it was -----------------------------------------


def _fitted_snapshot(data):
    model = small().fit(*data)
    return model, model.predict(data[0]), model.coef_.copy(), list(model.loss_curve_)


def _assert_unchanged(model, data, predictions, coef, loss_curve):
    np.testing.assert_array_equal(model.predict(data[0]), predictions)
    np.testing.assert_array_equal(model.coef_, coef)
    assert model.loss_curve_ == loss_curve
    assert model.n_features_in_ == N_FEATURES


def test_fit_failing_in_validation_keeps_the_previous_model(data):
    model, predictions, coef, loss_curve = _fitted_snapshot(data)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(with_value(data[0], np.nan), data[1])
    _assert_unchanged(model, data, predictions, coef, loss_curve)


def test_fit_failing_on_a_bad_backbone_keeps_the_previous_model(data):
    model, predictions, coef, loss_curve = _fitted_snapshot(data)
    model.set_params(backbone=ThreeDFeatures())
    with pytest.raises(ValueError, match="features on a grid of shape"):
        model.fit(*data)
    _assert_unchanged(model, data, predictions, coef, loss_curve)


def test_fit_failing_after_validation_on_new_width_keeps_the_previous_model(data):
    model, predictions, coef, loss_curve = _fitted_snapshot(data)
    X_wide, y_wide = make_data(n_features=N_FEATURES + 2, seed=1)
    model.set_params(backbone=MissingRowFeatures(n_features=N_FEATURES + 2))
    with pytest.raises(ValueError, match="must return features of shape"):
        model.fit(X_wide, y_wide)
    _assert_unchanged(model, data, predictions, coef, loss_curve)
    with pytest.raises(ValueError, match=f"expecting {N_FEATURES} features"):
        model.predict(X_wide)


def test_fit_failing_during_training_keeps_the_previous_model(data):
    model, predictions, coef, loss_curve = _fitted_snapshot(data)
    model.set_params(backbone=FailsInTraining(), max_iter=7)
    with pytest.raises(RuntimeError, match="boom during training"):
        model.fit(*data)
    _assert_unchanged(model, data, predictions, coef, loss_curve)


def test_failed_fit_keeps_feature_names(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data[0], columns=["a", "b", "c"])
    model = small().fit(frame, data[1])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(with_value(data[0], np.nan), data[1])
    assert list(model.feature_names_in_) == ["a", "b", "c"]


# --- degenerate ridge problems ------------------------------------------------------------


def _duplicate(X):
    return X[:, :1]


def _constant(X):
    return np.ones((len(X), 1))


def _zero(X):
    return np.zeros((len(X), 1))


@pytest.mark.parametrize("extra_column", [_duplicate, _constant, _zero])
def test_collinear_features_with_alpha_zero_give_least_squares_predictions(extra_column, data):
    X, y = data
    X = np.hstack([X, extra_column(X)])
    model = fixed_cflo(
        backbone=MLPBackbone(hidden_layer_sizes=()), alpha=0.0, max_iter=2, random_state=0
    ).fit(X, y)
    predictions = model.predict(X)
    assert np.isfinite(predictions).all()
    assert np.isfinite(model.coef_).all()
    expected = LinearRegression().fit(X, y).predict(X)
    np.testing.assert_allclose(predictions, expected, atol=1e-5)


def test_user_module_with_wrong_input_width_names_the_shape():
    X, y = make_data(n_samples=30, n_features=3)
    model = fixed_cflo(backbone=nn.Linear(5, 4), max_iter=1)
    with pytest.raises(ValueError, match=r"backbone failed on a float32 batch of shape \(8, 3\)"):
        model.fit(X, y)

"""scikit-learn citizenship beyond the common checks: pipelines, search, clone, pickle, pandas."""

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, ParameterGrid, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skcflo import MLPBackbone
from tests.helpers import fixed_cflo

CUDA = torch.cuda.is_available()


def small(**params):
    defaults = {"hidden_layer_sizes": (16,), "max_iter": 10, "random_state": 0}
    return fixed_cflo(**{**defaults, **params})


def make_data(n_samples=60, n_features=4, n_outputs=None, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n_samples, n_features)
    signal = np.sin(X[:, 0]) + X[:, 1] - 0.5 * X[:, 2] * X[:, 3]
    if n_outputs is None:
        return X, signal + 0.1 * rng.randn(n_samples)
    columns = [signal * (k + 1) + k for k in range(n_outputs)]
    return X, np.column_stack(columns) + 0.1 * rng.randn(n_samples, n_outputs)


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    return small().fit(*data)


def _module_backbone(n_features=4):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(n_features, 8), nn.BatchNorm1d(8), nn.Tanh())


def _assert_same_state(module_a, module_b):
    state_a, state_b = module_a.state_dict(), module_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


# --- model selection ----------------------------------------------------------------------


def test_grid_search_over_a_pipeline_reaches_nested_backbone_parameters(data):
    X, y = data
    pipe = make_pipeline(
        StandardScaler(),
        fixed_cflo(backbone=MLPBackbone(hidden_layer_sizes=(4,)), max_iter=5, random_state=0),
    )
    grid = {
        "cfloregressor__alpha": [1e-3, 1.0],
        "cfloregressor__head_update": ["proximal", "full"],
        "cfloregressor__backbone__hidden_layer_sizes": [(4,), (12,)],
    }
    search = GridSearchCV(pipe, grid, n_jobs=2, cv=3, error_score="raise").fit(X, y)

    assert search.best_params_ in list(ParameterGrid(grid))
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_[-1]
    check_is_fitted(best)
    width = search.best_params_["cfloregressor__backbone__hidden_layer_sizes"][0]
    assert best.backbone.hidden_layer_sizes == (width,)
    assert best.coef_.shape == (width,)
    assert best.alpha == search.best_params_["cfloregressor__alpha"]
    predictions = search.predict(X[:7])
    assert predictions.shape == (7,) and np.isfinite(predictions).all()
    np.testing.assert_array_equal(predictions, search.best_estimator_.predict(X[:7]))
    # The search clones: the template's spec is never mutated.
    assert pipe[-1].backbone.hidden_layer_sizes == (4,)


def test_cross_val_score_gives_finite_r2_per_fold(data):
    scores = cross_val_score(
        make_pipeline(StandardScaler(), small()), *data, cv=3, error_score="raise"
    )
    assert scores.shape == (3,)
    assert np.isfinite(scores).all()
    assert scores.mean() > 0.0  # better than the mean on a learnable signal


# --- clone --------------------------------------------------------------------------------


def test_clone_of_a_fitted_model_is_unfitted_with_equal_params(fitted, data):
    copy = clone(fitted)
    with pytest.raises(NotFittedError):
        copy.predict(data[0])
    assert not hasattr(copy, "backbone_")
    assert copy.get_params() == fitted.get_params()


def test_clone_copies_a_spec_backbone_as_an_estimator():
    model = small(backbone=MLPBackbone(hidden_layer_sizes=(5, 3), activation="tanh"))
    copy = clone(model)
    assert copy.backbone is not model.backbone
    assert copy.backbone.get_params() == model.backbone.get_params()


def test_clone_deep_copies_a_module_backbone():
    module = _module_backbone()
    copy = clone(small(backbone=module))
    # clone(safe=False) deep-copies parameters that are not estimators.
    assert isinstance(copy.backbone, nn.Sequential)
    assert copy.backbone is not module
    _assert_same_state(copy.backbone, module)


def test_fit_trains_a_copy_of_a_module_backbone_not_the_users(data):
    module = _module_backbone()
    before = {key: value.clone() for key, value in module.state_dict().items()}
    model = small(backbone=module).fit(*data)
    assert model.backbone is module
    assert model.backbone_ is not module
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert any(
        not torch.equal(value, before[key]) for key, value in model.backbone_.state_dict().items()
    ), "the trained copy never moved"


# --- persistence and devices --------------------------------------------------------------


def _pickle_round_trip(model):
    return pickle.loads(pickle.dumps(model))


def _joblib_round_trip(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("round_trip", [_pickle_round_trip, _joblib_round_trip])
@pytest.mark.parametrize("n_outputs", [None, 1, 3], ids=["1d-y", "2d-y-1", "2d-y-3"])
def test_round_trip_gives_identical_predictions(round_trip, n_outputs):
    X, y = make_data(n_outputs=n_outputs)
    model = small().fit(X, y)
    expected = model.predict(X)
    loaded = round_trip(model)
    predictions = loaded.predict(X)
    assert predictions.shape == y.shape
    np.testing.assert_array_equal(predictions, expected)
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize(
    "device",
    ["cpu", "auto", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA"))],
)
def test_fitted_backbone_lives_on_the_cpu(device, data):
    model = small(backbone=_module_backbone(), device=device).fit(*data)
    tensors = list(model.backbone_.parameters()) + list(model.backbone_.buffers())
    assert len(tensors) > 2  # weights and the batch-norm buffers
    assert {tensor.device.type for tensor in tensors} == {"cpu"}
    assert model.device == device  # the user's parameter is never rewritten
    assert not model.backbone_.training


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
def test_cuda_device_on_a_cpu_only_machine_warns_and_predicts_on_the_cpu(data):
    X, y = data
    model = small().fit(X, y)
    expected = model.predict(X)
    loaded = _pickle_round_trip(model.set_params(device="cuda"))
    with pytest.warns(UserWarning, match="CUDA is not available.*predicting on the CPU"):
        predictions = loaded.predict(X)
    np.testing.assert_array_equal(predictions, expected)
    assert loaded.device == "cuda"


def test_predicting_does_not_touch_the_global_torch_rng(fitted, data):
    state = torch.random.get_rng_state()
    fitted.predict(data[0])
    assert torch.equal(torch.random.get_rng_state(), state)


def test_fit_does_not_touch_the_global_torch_rng(data):
    state = torch.random.get_rng_state()
    small(max_iter=2).fit(*data)
    assert torch.equal(torch.random.get_rng_state(), state)


# --- input types --------------------------------------------------------------------------


def test_dataframe_input_sets_feature_names_and_matches_numpy(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = small().fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert model.feature_names_in_.dtype == object
    np.testing.assert_array_equal(model.predict(frame), small().fit(X, y).predict(X))


def test_dataframe_with_renamed_columns_is_rejected(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    model = small().fit(pd.DataFrame(X, columns=["a", "b", "c", "d"]), y)
    renamed = pd.DataFrame(X, columns=["a", "b", "c", "z"])
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(renamed)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)


def test_dataframe_at_predict_after_numpy_fit_warns(fitted, data):
    pd = pytest.importorskip("pandas")
    with pytest.warns(UserWarning, match="X has feature names, but CFLORegressor was fitted"):
        fitted.predict(pd.DataFrame(data[0], columns=["a", "b", "c", "d"]))


def test_integer_inputs_are_accepted_and_predict_float64(data):
    X, y = data
    X_int = np.round(3 * X).astype(np.int64)
    model = small().fit(X_int, y)
    predictions = model.predict(X_int)
    assert predictions.dtype == np.float64
    np.testing.assert_array_equal(
        predictions, small().fit(X_int.astype(float), y).predict(X_int.astype(float))
    )


def test_float32_inputs_are_accepted_and_predict_float64(data):
    X, y = data
    X32 = X.astype(np.float32)
    model = small().fit(X32, y)
    predictions = model.predict(X32)
    assert predictions.dtype == np.float64
    # The network computes in float32 either way: same data, same model.
    np.testing.assert_array_equal(
        predictions, small().fit(X32.astype(np.float64), y).predict(X32.astype(np.float64))
    )


def test_read_only_inputs_are_accepted(data):
    X, y = (np.array(a) for a in data)
    X.setflags(write=False)
    y.setflags(write=False)
    np.testing.assert_array_equal(small().fit(X, y).predict(X), small().fit(*data).predict(X))


@pytest.mark.parametrize(
    "n_outputs, shape",
    [(None, (60,)), (1, (60, 1)), (3, (60, 3))],
    ids=["1d-y", "2d-y-1", "2d-y-3"],
)
def test_prediction_shape_follows_y(n_outputs, shape):
    X, y = make_data(n_outputs=n_outputs)
    model = small().fit(X, y)
    predictions = model.predict(X)
    assert predictions.shape == shape
    assert predictions.dtype == np.float64
    assert model.n_outputs_ == (1 if n_outputs is None else n_outputs)
    assert np.ndim(model.intercept_) == (0 if n_outputs is None else 1)


def test_list_inputs_are_accepted(data):
    X, y = data
    np.testing.assert_array_equal(
        small().fit(X.tolist(), y.tolist()).predict(X.tolist()), small().fit(X, y).predict(X)
    )


# --- parameters ---------------------------------------------------------------------------


def test_set_params_reaches_the_backbone_spec(data):
    model = small(backbone=MLPBackbone(hidden_layer_sizes=(16,)))
    assert model.set_params(backbone__hidden_layer_sizes=(4,)) is model
    assert model.backbone.hidden_layer_sizes == (4,)
    assert model.get_params()["backbone__hidden_layer_sizes"] == (4,)
    model.fit(*data)
    assert model.coef_.shape == (4,)


@pytest.mark.parametrize("sizes", [(np.int64(4),), np.array([4])], ids=["tuple", "array"])
def test_numpy_integer_layer_sizes_work_like_python_ints(sizes, data):
    model = small(hidden_layer_sizes=sizes).fit(*data)
    assert model.coef_.shape == (4,)
    spec = small(backbone=MLPBackbone(hidden_layer_sizes=sizes)).fit(*data)
    assert spec.coef_.shape == (4,)


def test_score_is_r2(fitted, data):
    X, y = data
    assert fitted.score(X, y) == pytest.approx(r2_score(y, fitted.predict(X)), abs=1e-12)
    X2, y2 = make_data(n_outputs=3)
    model = small().fit(X2, y2)
    assert model.score(X2, y2) == pytest.approx(r2_score(y2, model.predict(X2)), abs=1e-12)


def test_fitted_attributes_describe_the_training_run(fitted):
    assert fitted.n_features_in_ == 4
    assert fitted.n_iter_ == 10
    assert len(fitted.loss_curve_) == 10
    assert np.isfinite(fitted.loss_curve_).all()
    assert fitted.coef_.shape == (16,)
    assert isinstance(fitted.intercept_, float)

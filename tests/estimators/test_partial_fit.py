"""partial_fit (chunks, forgetting) and warm_start."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_friedman1
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from skcflo import MLPBackbone
from tests.helpers import fixed_cflo

LINEAR = MLPBackbone(hidden_layer_sizes=())  # no trainable parameters: a pure ridge head


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=2400, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    return X[:2000], y[:2000], X[2000:], y[2000:]


def _stream(model, X, y, n_chunks, passes):
    for _ in range(passes):
        for chunk in np.array_split(np.arange(len(X)), n_chunks):
            model.partial_fit(X[chunk], y[chunk])
    return model


def test_chunks_without_forgetting_on_a_fixed_backbone_give_the_whole_data_ridge(friedman):
    X, y = friedman[0], friedman[1]
    model = _stream(fixed_cflo(backbone=LINEAR, alpha=0.05, forgetting_factor=1.0), X, y, 5, 1)
    X32 = X.astype(np.float32).astype(np.float64)
    ridge = Ridge(alpha=0.05 * len(X)).fit(X32, y)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-6)
    assert model.intercept_ == pytest.approx(ridge.intercept_, rel=1e-6)


def test_forgetting_weights_older_chunks_geometrically(friedman):
    X, y = friedman[0][:600], friedman[1][:600]
    chunks = np.array_split(np.arange(600), 3)
    model = _stream(fixed_cflo(backbone=LINEAR, alpha=0.0, forgetting_factor=0.5), X, y, 3, 1)
    weights = np.concatenate([np.full(len(c), 0.5 ** (2 - i)) for i, c in enumerate(chunks)])
    X32 = X.astype(np.float32).astype(np.float64)
    ridge = Ridge(alpha=0.0).fit(X32, y, sample_weight=weights)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-6)


def test_training_in_chunks_comes_close_to_training_at_once(friedman):
    # Measured: R^2 0.931 (chunks) vs 0.931 (whole) with 3000 rows and 20 passes.
    X, y, X_test, y_test = friedman
    whole = fixed_cflo(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(X, y)
    chunked = _stream(fixed_cflo(hidden_layer_sizes=(32,), random_state=0), X, y, 8, 10)
    assert chunked.n_iter_ == 80 and len(chunked.loss_curve_) == 80
    assert chunked.score(X_test, y_test) > whole.score(X_test, y_test) - 0.03
    assert chunked.score(X_test, y_test) > 0.85


def test_partial_fit_checks_the_number_of_features(friedman):
    X, y = friedman[0], friedman[1]
    model = fixed_cflo(hidden_layer_sizes=(8,)).partial_fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:100, :5], y[:100])


def test_partial_fit_refuses_the_gradient_head(friedman):
    with pytest.raises(ValueError, match="closed-form head_update"):
        fixed_cflo(head_update="gradient").partial_fit(friedman[0][:50], friedman[1][:50])


def test_partial_fit_continues_a_fitted_model_and_fit_starts_afresh(friedman):
    X, y = friedman[0], friedman[1]
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    fitted_loss = model.loss_curve_[-1]
    model.partial_fit(X[:500], y[:500])
    assert model.n_iter_ == 1
    assert model.loss_curve_[0] < 2 * fitted_loss  # started from the trained backbone
    model.fit(X, y)
    assert not hasattr(model, "_stream_") and model.n_iter_ == 3


def test_warm_start_continues_from_the_previous_backbone(friedman):
    X, y = friedman[0], friedman[1]
    cold = fixed_cflo(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    warm = fixed_cflo(hidden_layer_sizes=(16,), max_iter=5, random_state=0, warm_start=True)
    warm.fit(X, y).fit(X, y)
    assert warm.n_iter_ == 10 and len(warm.loss_curve_) == 10
    assert warm.loss_curve_[5] < cold.loss_curve_[0]
    assert warm.loss_curve_[5] < 1.5 * warm.loss_curve_[4]


def test_warm_start_refuses_a_different_number_of_features(friedman):
    X, y = friedman[0], friedman[1]
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="warm_start needs the 10 features"):
        model.fit(X[:, :5], y)
    assert model.n_features_in_ == 10


def _tensors_of_stream(model):
    state = model._stream_
    tensors = list(state.backbone.parameters()) + [state.scaler.mean, state.scaler.scale]
    tensors += [state.stats.gram, state.stats.cross, state.stats.target_sq, state.weights]
    for parameter_state in state.optimizer.state.values():
        tensors += [v for k, v in parameter_state.items() if torch.is_tensor(v) and k != "step"]
    return tensors


def test_stream_to_moves_every_tensor_the_stream_trains_with(friedman):
    # The GPU path (a pickle from a CPU copy, partial_fit back on the device)
    # relies on Stream.to missing nothing; the 'meta' device shows any tensor
    # left behind without needing a GPU.
    X, y, _, _ = friedman
    model = fixed_cflo(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    model.partial_fit(X[:100], y[:100])
    model._stream_.to(torch.device("meta"))
    assert {t.device.type for t in _tensors_of_stream(model)} == {"meta"}


def test_pickled_stream_continues_like_the_original(friedman):
    X, y, _, _ = friedman
    model = fixed_cflo(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    model.partial_fit(X[:100], y[:100])
    copy = pickle.loads(pickle.dumps(model))
    model.partial_fit(X[100:200], y[100:200])
    copy.partial_fit(X[100:200], y[100:200])
    assert_allclose(copy.predict(X[:50]), model.predict(X[:50]), rtol=1e-12)


def test_partial_fit_resolves_the_update_order_for_its_chunk(friedman):
    X, y = friedman[0], friedman[1]
    # 8 features and the intercept: 90 rows per batch put the head first.
    common = {"hidden_layer_sizes": (8,), "batch_size": 90, "random_state": 0}
    model = fixed_cflo(**common).partial_fit(X[:90], y[:90])
    assert model.update_order_ == "head_first"
    # A smaller chunk makes a smaller batch.
    assert model.partial_fit(X[90:170], y[90:170]).update_order_ == "backbone_first"
    explicit = fixed_cflo(update_order="head_first", **common).partial_fit(X[:90], y[:90])
    fresh = fixed_cflo(**common).partial_fit(X[:90], y[:90])
    np.testing.assert_array_equal(fresh.predict(X[:5]), explicit.predict(X[:5]))

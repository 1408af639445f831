"""``sample_weight`` in CFLORegressor: the weighted head against scikit-learn's Ridge,
weights as repeated or dropped rows, validation, and routing through pipelines."""

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.helpers import fixed_cflo

HEADS = ["proximal", "accumulate", "full"]


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = X[:, 0] + np.sin(X[:, 1]) + 0.1 * rng.normal(size=60)
    weight = rng.randint(0, 4, size=60).astype(float)
    return X, y, weight


def _features(model, X):
    with torch.no_grad():
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return model.backbone_.eval()(inputs).double().numpy()


@pytest.mark.parametrize("head_update", HEADS)
def test_weighted_head_equals_sklearn_ridge_on_the_trained_features(data, head_update):
    X, y, weight = data
    model = fixed_cflo(
        hidden_layer_sizes=(8,),
        max_iter=3,
        head_update=head_update,
        random_state=0,
    ).fit(X, y, sample_weight=weight)
    ridge = Ridge(alpha=0.1 * weight.sum()).fit(_features(model, X), y, sample_weight=weight)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(model.intercept_, ridge.intercept_, rtol=1e-8)


def test_weighted_multi_output_head_equals_sklearn_ridge(data):
    X, y, weight = data
    Y = np.column_stack([y, X[:, 2] ** 2])
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    model.fit(X, Y, sample_weight=weight)
    ridge = Ridge(alpha=0.1 * weight.sum()).fit(_features(model, X), Y, sample_weight=weight)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("head_update", HEADS)
def test_integer_weights_repeat_rows_and_zero_weights_drop_them(data, head_update):
    # One full batch per epoch and plain SGD: the weighted and the repeated fit take
    # the same steps, up to float32 rounding (Adam's normalised steps amplify it).
    X, y, weight = data
    settings = dict(
        hidden_layer_sizes=(8,), max_iter=20, batch_size=1000, solver="sgd", random_state=0
    )
    weighted = fixed_cflo(head_update=head_update, **settings).fit(X, y, sample_weight=weight)
    counts = weight.astype(int)
    repeated = fixed_cflo(head_update=head_update, **settings)
    repeated.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    kept = weight > 0
    dropped = fixed_cflo(head_update=head_update, **settings)
    dropped.fit(X[kept], y[kept], sample_weight=weight[kept])
    prediction = weighted.predict(X)
    assert_allclose(repeated.predict(X), prediction, rtol=0, atol=1e-5)
    assert_allclose(dropped.predict(X), prediction, rtol=0, atol=1e-5)
    unweighted = fixed_cflo(head_update=head_update, **settings).fit(X, y)
    assert np.abs(unweighted.predict(X) - prediction).max() > 1e-3  # the weights mattered


def test_scaling_every_weight_changes_nothing(data):
    X, y, weight = data
    settings = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, early_stopping=True)
    base = fixed_cflo(**settings).fit(X, y, sample_weight=weight + 1)
    scaled = fixed_cflo(**settings).fit(X, y, sample_weight=8 * (weight + 1))
    assert_allclose(scaled.predict(X), base.predict(X), rtol=1e-12, atol=1e-12)


def test_unit_weights_equal_no_weights(data):
    X, y, _ = data
    settings = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    plain = fixed_cflo(**settings).fit(X, y)
    ones = fixed_cflo(**settings).fit(X, y, sample_weight=np.ones(len(y)))
    assert_allclose(ones.predict(X), plain.predict(X), rtol=0, atol=1e-6)


def test_early_stopping_scores_a_weighted_r2(data):
    # Zero-weight rows of the validation split must not count: giving them wild
    # targets leaves the validation scores (and the fit) as they were.
    X, y, weight = data
    weight = weight + 1
    settings = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, early_stopping=True)
    base = fixed_cflo(**settings).fit(X, y, sample_weight=weight)
    noisy_y, zeroed = y.copy(), weight.copy()
    noisy_y[::7] += 100.0
    zeroed[::7] = 0.0
    base_zeroed = fixed_cflo(**settings).fit(X, y, sample_weight=zeroed)
    noisy = fixed_cflo(**settings).fit(X, noisy_y, sample_weight=zeroed)
    assert_allclose(noisy.validation_scores_, base_zeroed.validation_scores_, rtol=1e-4)
    assert not np.allclose(base.validation_scores_, base_zeroed.validation_scores_)


def test_partial_fit_head_is_the_weighted_ridge_of_its_chunk(data):
    X, y, weight = data
    model = fixed_cflo(hidden_layer_sizes=(8,), random_state=0)
    model.partial_fit(X, y, sample_weight=weight)
    ridge = Ridge(alpha=0.1 * weight.sum()).fit(_features(model, X), y, sample_weight=weight)
    assert_allclose(model.coef_, ridge.coef_, rtol=1e-8, atol=1e-10)
    model.partial_fit(X, y, sample_weight=weight)  # a second chunk trains on
    assert model.n_iter_ == 2


@pytest.mark.parametrize(
    "bad, message",
    [
        (-np.ones(60), "Negative values"),
        (np.ones(59), "shape|samples|length"),
        (np.zeros(60), "non-zero"),
    ],
)
def test_bad_weights_raise_and_keep_the_fitted_model(data, bad, message):
    X, y, _ = data
    model = fixed_cflo(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, sample_weight=bad)
    assert_allclose(model.predict(X), before, rtol=0, atol=0)


def test_weights_reach_the_model_in_a_pipeline_and_a_grid_search(data):
    X, y, weight = data
    settings = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    direct = fixed_cflo(**settings).fit(StandardScaler().fit_transform(X), y, weight)
    pipeline = make_pipeline(StandardScaler(), fixed_cflo(**settings))
    pipeline.fit(X, y, cfloregressor__sample_weight=weight)
    assert_allclose(pipeline.predict(X), direct.predict(StandardScaler().fit_transform(X)))
    with sklearn.config_context(enable_metadata_routing=True):
        model = fixed_cflo(**settings).set_fit_request(sample_weight=True)
        model.set_score_request(sample_weight=False)
        search = GridSearchCV(model, {"alpha": [0.1]}, cv=KFold(2)).fit(X, y, sample_weight=weight)
    routed = fixed_cflo(**settings).fit(X, y, sample_weight=weight)
    assert_allclose(search.best_estimator_.predict(X), routed.predict(X))

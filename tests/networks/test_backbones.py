"""MLPBackbone's skip connection: the inputs beside the learned features."""

import pickle

import numpy as np
import torch
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.linear_model import Ridge

from skcflo import CFLORegressor, MLPBackbone


def test_include_inputs_puts_the_inputs_first_and_the_mlp_features_after():
    torch.manual_seed(0)
    spec = MLPBackbone(hidden_layer_sizes=(6, 4), activation="tanh", include_inputs=True)
    module = spec.build_module(3)
    inputs = torch.randn(10, 3)
    features = module(inputs)
    assert features.shape == (10, 3 + 4)
    assert torch.equal(features[:, :3], inputs)
    assert torch.equal(features[:, 3:], module.network(inputs))
    assert clone(spec).get_params()["include_inputs"] is True
    restored = pickle.loads(pickle.dumps(module))
    assert torch.equal(restored(inputs), features)


def test_include_inputs_without_hidden_layers_is_the_identity_once():
    module = MLPBackbone(hidden_layer_sizes=(), include_inputs=True).build_module(2)
    inputs = torch.randn(5, 2)
    assert torch.equal(module(inputs), inputs)


def test_a_head_that_sees_the_inputs_nests_ridge():
    # With a learning rate too small to move the network, the exact head on
    # [x, features] fits a linear target at least as well as ridge on x alone.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=200)
    spec = MLPBackbone(hidden_layer_sizes=(8,), include_inputs=True)
    model = CFLORegressor(
        backbone=spec,
        max_iter=1,
        learning_rate_init=1e-12,
        alpha=1e-6,
        early_stopping=False,  # the head on every row, as ridge's
        random_state=0,
    ).fit(X, y)
    ridge = Ridge(alpha=1e-6 * 200).fit(X, y)
    ridge_error = np.mean((ridge.predict(X) - y) ** 2)
    assert np.mean((model.predict(X) - y) ** 2) <= ridge_error * (1 + 1e-6)
    assert_allclose(model.predict(X), ridge.predict(X), atol=0.05)

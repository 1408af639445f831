"""Operator-shaped features: one head shared by every grid position."""

import copy

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from torch import nn

from skcflo import CFLORegressor

GRID, WIDTH = 8, 5


class PointwiseNet(nn.Module):
    """(n, GRID) inputs -> (n, GRID, WIDTH) features: the same MLP at every position."""

    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, WIDTH), nn.Tanh())

    def forward(self, inputs):
        return self.mlp(inputs.unsqueeze(-1))


@pytest.fixture(scope="module")
def operator_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, GRID))
    # Two outputs per position, laid out row-major: column 2*p + j is output j at position p.
    Y = np.stack([np.sin(X), X**2], axis=-1).reshape(120, GRID * 2)
    return X, Y + 0.05 * rng.normal(size=Y.shape)


@pytest.fixture(scope="module")
def fitted(operator_data):
    torch.manual_seed(0)
    model = CFLORegressor(backbone=PointwiseNet(), alpha=0.01, max_iter=20, random_state=0)
    return model.fit(*operator_data)


def _rows(model, X):
    with torch.no_grad():
        features = model.backbone_(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    return features.reshape(-1, WIDTH)


def test_head_equals_ridge_on_every_position_as_a_row(fitted, operator_data):
    X, Y = operator_data
    rows = _rows(fitted, X)
    ridge = Ridge(alpha=0.01 * len(rows)).fit(rows, Y.reshape(-1, 2))
    assert fitted.coef_.shape == (2, WIDTH)
    assert_allclose(fitted.coef_, ridge.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(fitted.intercept_, ridge.intercept_, rtol=1e-6, atol=1e-9)


def test_predictions_use_the_scikit_learn_layout(fitted, operator_data):
    X, Y = operator_data
    predictions = fitted.predict(X[:7])
    assert predictions.shape == (7, GRID * 2) and fitted.n_outputs_ == GRID * 2
    # predict validates X to float32, then runs a float64 copy of the network
    # (batch-independent rounding).
    inputs = torch.as_tensor(X[:7].astype(np.float32), dtype=torch.float64)
    with torch.no_grad():
        rows = copy.deepcopy(fitted.backbone_).double()(inputs).numpy().reshape(-1, WIDTH)
    by_position = rows @ fitted.coef_.T + fitted.intercept_
    assert_allclose(predictions, by_position.reshape(7, GRID * 2), rtol=1e-10)
    mean, std = fitted.predict(X[:7], return_std=True)
    assert std.shape == mean.shape and np.all(std > 0)


def test_the_shared_head_learns_the_pointwise_map(fitted, operator_data):
    X, Y = operator_data
    assert fitted.score(X, Y) > 0.8


def test_columns_must_fill_the_grid(operator_data):
    X, Y = operator_data
    with pytest.raises(ValueError, match=r"grid of shape \(8,\) \(8 positions\)"):
        CFLORegressor(backbone=PointwiseNet(), max_iter=1).fit(X, Y[:, :5])


def test_auto_update_order_counts_every_grid_position_as_a_row(operator_data):
    def order(batch_size):
        model = CFLORegressor(
            backbone=PointwiseNet(), batch_size=batch_size, max_iter=1, random_state=0
        )
        return model.fit(*operator_data).update_order_

    # WIDTH + 1 = 6 coefficients want 60 rows: 8 samples x 8 positions, not 7 x 8.
    assert order(8) == "head_first"
    assert order(7) == "backbone_first"

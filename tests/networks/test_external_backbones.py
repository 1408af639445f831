"""A model from an operator library as the backbone: examples/neuraloperator_backbone.py.

neuraloperator is an optional extra of skcflo (``pip install -e ".[operators]"``)
and part of the test extra, so the suite runs this module; it skips where
neuraloperator is absent.
"""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge

from skcflo.datasets import relative_l2_error

pytest.importorskip("neuralop")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "neuraloperator_backbone.py"
ALPHA, GRID = 1e-3, 32


@pytest.fixture(scope="module")
def example():
    """The example's namespace (``__main__`` does not run) and its results at tiny sizes."""
    namespace = runpy.run_path(str(EXAMPLE), run_name="example")
    with torch.random.fork_rng(devices=[]):
        results = namespace["main"](
            n_samples=100,
            resolution=GRID,
            max_iter=6,
            hidden_channels=8,
            n_modes=8,
            n_layers=2,
            alpha=ALPHA,
            verbose=False,
        )
    return namespace, results


def _rows(model, X):
    """The backbone's features with every grid position of every sample as a row."""
    model.backbone_.eval()
    with torch.no_grad():
        features = model.backbone_(torch.as_tensor(X, dtype=torch.float32))
    assert features.shape == (len(X), GRID, model.backbone_.n_features_out)
    return features.double().numpy().reshape(-1, features.shape[-1])


def test_adapter_maps_flat_grids_to_channels_last_features(example):
    namespace, _ = example
    net = namespace["NeuralopFNOBackbone"](n_modes=4, hidden_channels=3, n_layers=1)
    assert net.n_features_out == 6
    assert net(torch.randn(2, 16)).shape == (2, 16, 6)
    # The FNO's last projection layer is gone: the features are its first one, activated.
    assert isinstance(net.fno.projection[-1], torch.nn.GELU)


@pytest.mark.parametrize("name", ["CFLO", "Adam"])
def test_predictions_have_the_target_layout(example, name):
    _, results = example
    model = results.models[name]
    predictions = model.predict(results.X_test)
    assert predictions.shape == results.y_test.shape == (20, GRID)
    assert np.all(np.isfinite(predictions))


def test_head_equals_ridge_on_every_grid_position_as_a_row(example):
    _, results = example
    model = results.models["CFLO"]
    rows = _rows(model, results.X_train)
    ridge = Ridge(alpha=ALPHA * len(rows)).fit(rows, results.y_train.reshape(-1, 1))
    assert model.coef_.shape == (1, model.backbone_.n_features_out)
    assert_allclose(model.coef_.ravel(), ridge.coef_.ravel(), rtol=1e-6, atol=1e-9)
    assert_allclose(model.intercept_.ravel(), ridge.intercept_.ravel(), rtol=1e-6, atol=1e-9)


# Six epochs of a tiny FNO: CFLO's error is about 0.3 of the mean's, Adam's about 0.75.
@pytest.mark.parametrize(("name", "fraction"), [("CFLO", 0.5), ("Adam", 0.9)])
def test_beats_predicting_the_training_mean(example, name, fraction):
    _, results = example
    mean = np.broadcast_to(results.y_train.mean(axis=0), results.y_test.shape)
    baseline = relative_l2_error(results.y_test, mean)
    assert results.errors[name] < fraction * baseline

"""``n_jobs``: the torch intra-op threads the estimators compute with."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_friedman1
from torch import nn

from skcflo import CFLORegressor, DFIVRegressor, MLPBackbone
from skcflo.datasets import make_demand


class ThreadRecorder(nn.Module):
    """A small network that notes torch's thread count at every forward pass."""

    def __init__(self, n_features):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(n_features, 8), nn.Tanh())
        self.seen = set()

    def forward(self, inputs):
        self.seen.add(torch.get_num_threads())
        return self.layer(inputs)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


@pytest.mark.parametrize("n_jobs, expected", [(None, 1), (1, 1), (2, 2), (-1, None)])
def test_fit_and_predict_run_with_n_jobs_threads_and_restore_the_count(
    restore_threads, n_jobs, expected
):
    expected = joblib.cpu_count() if expected is None else expected
    torch.set_num_threads(3)  # the caller's own setting, to be restored
    X, y = make_friedman1(n_samples=60, random_state=0)
    model = CFLORegressor(backbone=ThreadRecorder(10), max_iter=2, n_jobs=n_jobs, random_state=0)
    model.fit(X, y)
    assert torch.get_num_threads() == 3
    assert model.backbone_.seen == {expected}
    model.backbone_.seen.clear()
    model.predict(X)  # predictions run a float64 copy: its records stay with the copy
    assert torch.get_num_threads() == 3


def test_none_follows_a_joblib_backend_as_in_scikit_learn(restore_threads):
    X, y = make_friedman1(n_samples=60, random_state=0)
    model = CFLORegressor(backbone=ThreadRecorder(10), max_iter=1, random_state=0)
    with joblib.parallel_backend("threading", n_jobs=2):
        model.fit(X, y)
    assert model.backbone_.seen == {2}


def test_invalid_n_jobs_fails_before_any_work(restore_threads):
    X, y = make_friedman1(n_samples=60, random_state=0)
    model = CFLORegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ValueError, match="n_jobs"):
        model.set_params(n_jobs=0).fit(X, y)
    np.testing.assert_array_equal(model.set_params(n_jobs=None).predict(X), before)


def test_dfiv_fit_and_effects_run_with_n_jobs_threads(restore_threads):
    data = make_demand(n_samples=300, random_state=0)
    built = []

    def recorder_factory(n_features):
        built.append(ThreadRecorder(n_features))
        return built[-1]

    model = DFIVRegressor(
        treatment_backbone=recorder_factory,
        instrument_backbone=MLPBackbone((8,)),
        max_iter=1,
        n_jobs=2,
        random_state=0,
    )
    model.fit(data.X, data.y, Z=data.Z)
    assert set().union(*(network.seen for network in built)) == {2}
    model.ate(data.X, T1=data.X + np.array([1.0, 0.0, 0.0]))
    assert torch.get_num_threads() == restore_threads

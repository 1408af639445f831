"""Training batches never wait for the device: the GPU path of issue 5, checked without a GPU.

A tensor on PyTorch's ``meta`` device has a shape and a dtype but no values, so
every operation that reads a value back to the host (``.item()``, ``bool()``,
``int()``, ``.cpu()``, ``.tolist()``) raises. An epoch whose batches all run on
meta tensors is therefore one without a per-batch host round trip, which is
what keeps a GPU busy. The CPU-only shortcuts (float32 batch solves, the
solver's fallbacks) key on ``device.type == 'cpu'``, so meta tensors take the
code path of CUDA ones. ``benchmarks/gpu_check.py`` counts synchronisations on a
real GPU; CI has none.
"""

import math

import pytest
import torch
from torch import nn

from skcflo._networks.fno import FNO1d, FNO2d
from skcflo._ridge.head import RidgeStatistics
from skcflo._training import cflo as training
from skcflo._training.head_updates import make_head_update

META = torch.device("meta")
N_OUTPUTS = 2


def _mlp(n_inputs, width):
    return nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, width))


def _strategy(head, order, interval, width):
    return make_head_update(
        head,
        proximal_lambda=0.1,
        forgetting_factor=0.99,
        recompute_features=True,
        interval=interval,
        head_first=order == "head_first",
    )


def _epoch_on_meta(monkeypatch, backbone, input_shape, target_shape, width, head_update, batch):
    """Run one epoch on meta tensors; return what reached the epoch's one read-back."""
    backbone = backbone.to(META)
    inputs = torch.empty(*input_shape, device=META)
    targets = torch.empty(*target_shape, device=META)
    generator = torch.Generator().manual_seed(0)
    stats = RidgeStatistics.from_batch(
        torch.empty(10, width, device=META), torch.empty(10, N_OUTPUTS, device=META)
    )
    exact = torch.empty(width + 1, N_OUTPUTS, dtype=torch.float64, device=META)
    weights, head_parameters = head_update.begin(stats, exact, generator)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head_parameters], lr=1e-3)
    reached = {}

    def read_back(squared_error_sum, n_rows, weights, replicas):
        reached.update(errors=squared_error_sum, n_rows=n_rows, weights=weights)
        return weights, torch.zeros(N_OUTPUTS, dtype=torch.float64)

    monkeypatch.setattr(training, "_epoch_error", read_back)
    trainer = training.MinibatchTrainer(
        backbone, head_update, optimizer, batch, generator, head_parameters
    )
    trainer.run(inputs, targets, weights, alpha=0.1)
    reached["batches"] = trainer.batches_seen
    return reached


def test_meta_tensors_refuse_to_be_read_back():
    # The premise of this module: reading a meta value fails instead of syncing.
    total = torch.ones(3, device=META).sum()
    for read in (bool, float, torch.Tensor.item, torch.Tensor.cpu):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read(total)
    # And so does the epoch's own read-back, which the tests below stand in for.
    errors = torch.zeros(N_OUTPUTS, dtype=torch.float64, device=META)
    with pytest.raises(NotImplementedError):
        training._epoch_error(errors, 10, torch.zeros(3, N_OUTPUTS, device=META), None)


@pytest.mark.parametrize(
    "head, order, interval",
    [
        ("proximal", "backbone_first", 1),
        ("proximal", "head_first", 1),
        ("proximal", "backbone_first", 3),
        ("accumulate", "backbone_first", 1),
        ("accumulate", "head_first", 1),
        ("full", "backbone_first", 1),
        ("gradient", "backbone_first", 1),
    ],
)
# Tall batches solve the normal equations, wide ones (fewer rows than
# coefficients) the Woodbury row-space system.
@pytest.mark.parametrize("batch, width", [(40, 8), (4, 16)], ids=["tall", "wide"])
def test_tabular_batches_run_without_reading_the_device(
    monkeypatch, head, order, interval, batch, width
):
    strategy = _strategy(head, order, interval, width)
    n_samples = 10 * batch
    reached = _epoch_on_meta(
        monkeypatch, _mlp(5, width), (n_samples, 5), (n_samples, N_OUTPUTS), width, strategy, batch
    )
    # The head stayed on the device (solved there by the per-batch heads), every
    # batch was counted, and nothing was read back.
    assert reached["weights"].device == META
    assert reached["weights"].shape == (width + 1, N_OUTPUTS)
    assert reached["errors"].device == META
    assert reached["n_rows"] == n_samples
    assert reached["batches"] == 10


@pytest.mark.parametrize("order", ["backbone_first", "head_first"])
@pytest.mark.parametrize("dims", [1, 2])
def test_operator_batches_run_without_reading_the_device(monkeypatch, order, dims):
    width, n_samples = 6, 12
    if dims == 1:
        backbone, grid = FNO1d(modes=4, width=8, n_layers=2, n_features_out=width), (32,)
    else:
        backbone, grid = FNO2d(modes=3, width=8, n_layers=2, n_features_out=width), (8, 8)
    n_points = math.prod(grid)
    strategy = _strategy("proximal", order, 1, width)
    reached = _epoch_on_meta(
        monkeypatch,
        backbone,
        (n_samples, n_points),
        (n_samples, *grid, N_OUTPUTS),
        width,
        strategy,
        batch=4,
    )
    assert reached["weights"].device == META
    assert reached["weights"].shape == (width + 1, N_OUTPUTS)
    # Every grid position of every sample is a row of the ridge problem.
    assert reached["n_rows"] == n_samples * n_points
    assert reached["batches"] == 3

"""Early stopping, learning-rate schedules, progress output and Ctrl-C."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_friedman1
from sklearn.preprocessing import StandardScaler
from torch import nn

from skcflo._training.loop import TrainingOptions
from skcflo._training.optim import make_scheduler
from tests.helpers import InterruptedNet, fixed_cflo

SMALL = {"hidden_layer_sizes": (16,), "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=400, noise=1.0, random_state=0)
    return StandardScaler().fit_transform(X), y


# -- early stopping -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stopped(friedman):
    return fixed_cflo(early_stopping=True, n_iter_no_change=3, max_iter=300, **SMALL).fit(*friedman)


def test_early_stopping_stops_before_max_iter_and_records_scores(stopped):
    assert stopped.n_iter_ < 300
    assert len(stopped.validation_scores_) == len(stopped.loss_curve_) == stopped.n_iter_
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    best_epoch = int(np.argmax(stopped.validation_scores_)) + 1
    assert stopped.n_iter_ >= best_epoch + 3  # patience ran out after the best epoch
    assert stopped.best_loss_ == min(stopped.loss_curve_)


def test_early_stopping_restores_the_best_backbone(friedman, stopped):
    # Training is deterministic, so a run that ends at the best epoch passes through
    # the same state; its backbone must equal the restored one.
    best_epoch = int(np.argmax(stopped.validation_scores_)) + 1
    short = fixed_cflo(
        early_stopping=True, n_iter_no_change=1000, max_iter=best_epoch, **SMALL
    ).fit(*friedman)
    for restored, reference in zip(
        stopped.backbone_.state_dict().values(),
        short.backbone_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(restored, reference)
    assert_allclose(stopped.predict(friedman[0]), short.predict(friedman[0]))


def test_without_early_stopping_there_are_no_validation_scores(friedman):
    model = fixed_cflo(max_iter=3, **SMALL).fit(*friedman)
    assert model.validation_scores_ is None and model.best_validation_score_ is None
    assert model.best_loss_ == min(model.loss_curve_)


def test_early_stopping_needs_enough_samples_for_both_parts():
    X, y = np.arange(6.0).reshape(3, 2), np.arange(3.0)
    with pytest.raises(ValueError, match="at least 2 training and 2 validation"):
        fixed_cflo(early_stopping=True, validation_fraction=0.5, max_iter=2).fit(X, y)


# -- learning-rate schedules --------------------------------------------------------------


def _rates(schedule, max_iter=8, losses=None):
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    options = TrainingOptions(max_iter=max_iter, learning_rate_schedule=schedule, tol=1e-4)
    scheduler = make_scheduler(optimizer, options)
    rates = []
    for epoch in range(max_iter):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if schedule == "adaptive":
            scheduler.step(losses[epoch])
        elif scheduler is not None:
            scheduler.step()
    return rates


def test_constant_schedule_keeps_the_rate():
    assert _rates("constant") == [1.0] * 8


def test_cosine_schedule_anneals_to_zero():
    rates = _rates("cosine")
    assert rates[0] == 1.0 and np.all(np.diff(rates) < 0)
    assert_allclose(rates, 0.5 * (1 + np.cos(np.pi * np.arange(8) / 8)), atol=1e-12)


def test_step_schedule_drops_tenfold_at_half_and_three_quarters():
    assert_allclose(_rates("step"), [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_invscaling_schedule_follows_power_t():
    assert_allclose(_rates("invscaling"), 1.0 / np.sqrt(np.arange(1, 9)))


def test_adaptive_schedule_divides_by_five_after_two_stale_epochs():
    rates = _rates("adaptive", losses=[1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert rates[:4] == [1.0, 1.0, 1.0, 1.0]
    assert rates[4] == pytest.approx(0.2)


@pytest.mark.parametrize("schedule", ["cosine", "step", "invscaling", "adaptive"])
def test_every_schedule_trains_a_finite_model(friedman, schedule):
    model = fixed_cflo(learning_rate=schedule, max_iter=6, **SMALL).fit(*friedman)
    assert np.isfinite(model.loss_curve_).all()
    assert np.isfinite(model.predict(friedman[0])).all()


@pytest.mark.parametrize("schedule", ["cosine", "step", "invscaling"])
def test_a_decaying_schedule_changes_the_trained_model(friedman, schedule):
    # ('adaptive' only acts once the loss stalls: its rule is tested above.)
    constant = fixed_cflo(max_iter=6, **SMALL).fit(*friedman)
    model = fixed_cflo(learning_rate=schedule, max_iter=6, **SMALL).fit(*friedman)
    assert not np.allclose(model.predict(friedman[0]), constant.predict(friedman[0]))


# -- progress -----------------------------------------------------------------------------


def test_verbose_shows_a_progress_bar_even_without_a_terminal(friedman, capsys):
    fixed_cflo(verbose=True, max_iter=3, **SMALL).fit(*friedman)
    err = capsys.readouterr().err
    assert "3/3" in err and "epoch" in err and "loss=" in err


def test_silent_by_default(friedman, capsys):
    fixed_cflo(max_iter=3, **SMALL).fit(*friedman)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_the_validation_score(friedman, capsys):
    fixed_cflo(verbose=True, early_stopping=True, max_iter=2, **SMALL).fit(*friedman)
    assert "val R2=" in capsys.readouterr().err


# -- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_keeps_the_last_completed_epoch(friedman):
    X, y = friedman
    # batch_size 100 on 400 rows: 4 training passes per epoch; stop in epoch 3.
    params = {"batch_size": 100, "random_state": 0, "device": "cpu"}
    torch.manual_seed(0)
    net = InterruptedNet(X.shape[1], interrupt_at=10)
    with pytest.warns(UserWarning, match="interrupted; the model keeps the state after epoch 2"):
        interrupted = fixed_cflo(backbone=net, max_iter=50, **params).fit(X, y)
    assert interrupted.n_iter_ == 2 and len(interrupted.loss_curve_) == 2
    net.interrupt_at = -1  # never again: the same start, trained for exactly 2 epochs
    reference = fixed_cflo(backbone=net, max_iter=2, **params).fit(X, y)
    assert_allclose(interrupted.predict(X), reference.predict(X))


def test_ctrl_c_in_the_first_epoch_with_early_stopping_keeps_the_initial_model(friedman):
    # No epoch has been scored yet, so early stopping has no best state to restore.
    X, y = friedman
    torch.manual_seed(0)
    net = InterruptedNet(X.shape[1], interrupt_at=2)
    model = fixed_cflo(
        backbone=net, early_stopping=True, batch_size=100, random_state=0, device="cpu"
    )
    with pytest.warns(UserWarning, match="interrupted; the model keeps the state after epoch 0"):
        model.fit(X, y)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert np.all(np.isfinite(model.predict(X)))

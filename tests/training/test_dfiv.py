"""The closed-form stages of DFIV against independent numpy / scikit-learn computations."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from torch import nn

from skcflo._ridge.dfiv_stages import (
    fit_stage1,
    fit_stage2,
    predict_stage1,
    stage1_alpha_losses,
    stage2_alpha_losses,
    stage2_design,
    structural_prediction,
)
from skcflo._ridge.head import apply_head
from skcflo._training.dfiv import DFIVNetworks, DFIVOptions, DFIVSample, DFIVSteps

RTOL = 1e-8


def _features(n_rows, n_columns, seed):
    rng = np.random.default_rng(seed)
    # Non-centred, unequally scaled columns exercise the (unpenalised) intercept.
    return rng.normal(size=(n_rows, n_columns)) * rng.uniform(0.5, 2.0, n_columns) + rng.normal(
        size=n_columns
    )


def _aug(a):
    return np.hstack([a, np.ones((a.shape[0], 1))])


def _outer_design(t, c):
    """Row-wise aug(t) (x) aug(c) without the constant last column, in numpy."""
    outer = np.einsum("ni,nj->nij", _aug(t), _aug(c))
    return outer.reshape(t.shape[0], -1)[:, :-1]


def _ridge_weights(design, target, alpha):
    """``[coef.T; intercept]`` of sklearn Ridge with the per-sample penalty ``alpha * n``."""
    ridge = Ridge(alpha=alpha * design.shape[0]).fit(design, target)
    return np.vstack([np.atleast_2d(ridge.coef_).T, np.atleast_1d(ridge.intercept_)[None, :]])


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


# -- stage2_design ---------------------------------------------------------------------


@pytest.mark.parametrize(("d_t", "d_c"), [(1, 1), (3, 2), (2, 5)])
def test_stage2_design_is_outer_product_without_constant_column(d_t, d_c):
    t, c = _features(7, d_t, 0), _features(7, d_c, 1)
    design = stage2_design(_t(t), _t(c)).numpy()
    assert design.shape == (7, (d_t + 1) * (d_c + 1) - 1)
    assert_allclose(design, _outer_design(t, c), rtol=1e-15, atol=0)


def test_stage2_design_without_covariates_is_the_treatment_features():
    t = _t(_features(5, 3, 0))
    assert torch.equal(stage2_design(t, None), t)
    assert torch.equal(stage2_design(t), t)


# -- stage 1 and stage 2 ridge solves --------------------------------------------------


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 2.0])
def test_fit_stage1_equals_sklearn_multi_output_ridge(alpha):
    psi, phi = _features(80, 4, 0), _features(80, 3, 1)
    phi = phi + np.tanh(psi[:, :3])  # targets related to the inputs
    weights = fit_stage1(_t(psi), _t(phi), alpha)
    assert weights.dtype == torch.float64
    assert weights.shape == (5, 3)
    assert_allclose(weights.numpy(), _ridge_weights(psi, phi, alpha), rtol=RTOL, atol=1e-12)


def test_fit_stage1_accepts_float32_features_and_solves_in_float64():
    psi, phi = _features(50, 3, 2), _features(50, 2, 3)
    psi32, phi32 = psi.astype(np.float32), phi.astype(np.float32)
    weights = fit_stage1(torch.from_numpy(psi32), torch.from_numpy(phi32), 0.1)
    assert weights.dtype == torch.float64
    expected = _ridge_weights(psi32.astype(np.float64), phi32.astype(np.float64), 0.1)
    assert_allclose(weights.numpy(), expected, rtol=RTOL, atol=1e-12)


def test_predict_stage1_equals_augmented_product():
    psi, weights = _features(9, 4, 0), _features(5, 3, 1)
    assert_allclose(predict_stage1(_t(psi), _t(weights)).numpy(), _aug(psi) @ weights, rtol=1e-14)


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0])
def test_fit_stage2_equals_sklearn_ridge_on_outer_design(alpha):
    pred, chi = _features(120, 3, 0), _features(120, 2, 1)
    rng = np.random.default_rng(2)
    y = (pred[:, :1] * chi[:, 1:]) + pred[:, 1:2] + 0.1 * rng.normal(size=(120, 1))
    weights = fit_stage2(_t(pred), _t(chi), _t(y), alpha)
    expected = _ridge_weights(_outer_design(pred, chi), y, alpha)
    assert weights.shape == ((3 + 1) * (2 + 1), 1)
    assert_allclose(weights.numpy(), expected, rtol=RTOL, atol=1e-12)


def test_fit_stage2_without_covariates_is_ridge_on_predicted_treatment():
    pred = _features(60, 3, 4)
    y = pred @ np.array([[1.0], [-2.0], [0.5]]) + 3.0
    weights = fit_stage2(_t(pred), None, _t(y), 0.05)
    assert_allclose(weights.numpy(), _ridge_weights(pred, y, 0.05), rtol=RTOL, atol=1e-12)


def test_structural_prediction_equals_design_times_coef_plus_intercept():
    t, c = _features(11, 2, 0), _features(11, 3, 1)
    weights = _features(3 * 4, 2, 2)  # (d_2 + 1, n_outputs), last row the intercept
    result = structural_prediction(_t(t), _t(c), _t(weights))
    assert result.dtype == torch.float64
    assert_allclose(result.numpy(), _outer_design(t, c) @ weights[:-1] + weights[-1], rtol=1e-13)


def test_structural_prediction_promotes_float32_treatment_features_to_float64():
    t32, c = _features(11, 2, 0).astype(np.float32), _features(11, 3, 1)
    weights = _features(3 * 4, 1, 2)
    result = structural_prediction(torch.from_numpy(t32), _t(c), _t(weights))
    assert result.dtype == torch.float64
    expected = _outer_design(t32.astype(np.float64), c) @ weights[:-1] + weights[-1]
    assert_allclose(result.numpy(), expected, rtol=1e-13)


def test_structural_prediction_without_covariates_is_linear_in_treatment_features():
    t, weights = _features(11, 2, 0), _features(3, 1, 2)
    result = structural_prediction(_t(t), None, _t(weights))
    assert_allclose(result.numpy(), t @ weights[:2] + weights[2], rtol=1e-13)


# -- gradients through the stage-1 solve -------------------------------------------------


def _stage2_problem(seed=0, n1=8, n2=9, d_z=2, d_t=2, d_c=2):
    rng = np.random.default_rng(seed)
    return {
        "psi1": _t(rng.normal(size=(n1, d_z))),
        "psi2": _t(rng.normal(size=(n2, d_z))),
        "phi1": _t(rng.normal(size=(n1, d_t)) + 0.5),
        "chi2": _t(rng.normal(size=(n2, d_c))),
        "y2": _t(rng.normal(size=(n2, 1))),
    }


def _stage2_loss(phi1, p, weights, alpha1=0.1):
    """The stage-2 loss of ``DFIVSteps._treatment_steps`` with the stage-2 head fixed."""
    stage1 = fit_stage1(p["psi1"], phi1, alpha1)
    design = stage2_design(predict_stage1(p["psi2"], stage1), p["chi2"])
    return (apply_head(design, weights) - p["y2"]).pow(2).mean()


def test_stage2_loss_gradient_flows_through_stage1_solve_and_matches_finite_differences():
    p = _stage2_problem()
    with torch.no_grad():
        stage1 = fit_stage1(p["psi1"], p["phi1"], 0.1)
        weights = fit_stage2(predict_stage1(p["psi2"], stage1), p["chi2"], p["y2"], 0.1)

    phi1 = p["phi1"].clone().requires_grad_(True)
    _stage2_loss(phi1, p, weights).backward()
    assert phi1.grad is not None
    assert phi1.grad.abs().max() > 1e-6

    assert torch.autograd.gradcheck(
        lambda phi: _stage2_loss(phi, p, weights), (p["phi1"].clone().requires_grad_(True),)
    )


def _penalised_stage1_value(psi, phi, alpha):
    """``min_V mean((aug(psi) V - phi)^2) + alpha / k ||V_coef||^2`` with V solved in the graph.

    Plain torch, independent of skcflo: the objective that the per-sample ridge
    solve ``(A'A + n alpha D) V = A'phi`` minimises, scaled by ``1 / (n k)``.
    """
    n, k = phi.shape
    a = torch.cat([psi, torch.ones(n, 1, dtype=psi.dtype)], dim=1)
    penalty = torch.eye(a.shape[1], dtype=psi.dtype)
    penalty[-1, -1] = 0.0
    v = torch.linalg.solve(a.T @ a + n * alpha * penalty, a.T @ phi)
    return (a @ v - phi).pow(2).mean() + alpha / k * v[:-1].pow(2).sum()


@pytest.mark.parametrize("alpha", [0.05, 0.5])
def test_stage1_envelope_detached_head_gradient_equals_in_graph_gradient(alpha):
    rng = np.random.default_rng(3)
    psi0, phi = _t(rng.normal(size=(10, 3))), _t(rng.normal(size=(10, 2)))

    # As in DFIVSteps._instrument_steps: V solved on detached features, held fixed.
    psi = psi0.clone().requires_grad_(True)
    weights = fit_stage1(psi.detach(), phi, alpha)
    (apply_head(psi, weights) - phi).pow(2).mean().backward()
    detached = psi.grad.clone()

    # V re-solved inside the graph, on the ridge objective V is optimal for.
    psi = psi0.clone().requires_grad_(True)
    _penalised_stage1_value(psi, phi, alpha).backward()
    assert_allclose(detached.numpy(), psi.grad.numpy(), rtol=1e-9, atol=1e-12)

    # Not vacuous: the unpenalised MSE with V in-graph has a different gradient, so the
    # equality above depends on the solve using exactly the per-sample penalty alpha * n.
    psi = psi0.clone().requires_grad_(True)
    in_graph = fit_stage1(psi, phi, alpha)
    residual = torch.cat([psi, torch.ones(10, 1, dtype=psi.dtype)], 1) @ in_graph - phi
    residual.pow(2).mean().backward()
    assert not np.allclose(detached.numpy(), psi.grad.numpy(), rtol=1e-6, atol=1e-9)


# -- the trainer's optimiser steps use those gradients -----------------------------------


def _tiny_trainer(stage1_iter=0, stage2_iter=0, lr=0.05, seed=0):
    torch.manual_seed(seed)
    networks = DFIVNetworks(
        nn.Sequential(nn.Linear(1, 3), nn.Tanh()).double(),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh()).double(),
        None,
    )
    options = DFIVOptions(
        stage1_alpha=0.1,
        stage2_alpha=0.1,
        max_iter=1,
        stage1_iter=stage1_iter,
        covariate_iter=0,
        stage2_iter=stage2_iter,
        solver="sgd",
        learning_rate=lr,
    )
    rng = np.random.default_rng(seed)

    def half(n):
        z = rng.normal(size=(n, 2))
        x = z[:, :1] + 0.5 * rng.normal(size=(n, 1))
        return DFIVSample(_t(x), _t(z), None, _t(np.sin(x) + 0.1 * rng.normal(size=(n, 1))))

    generator = torch.Generator().manual_seed(seed)
    first, second = half(12), half(13)
    return DFIVSteps(networks, options, generator, first, second), first, second


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_treatment_step_follows_gradient_through_in_graph_stage1_solve():
    trainer, first, second = _tiny_trainer(stage2_iter=1)
    nets, lr = trainer.networks, trainer.options.learning_rate
    before = _params(nets.treatment)

    # Independent torch computation of the stage-2 loss gradient w.r.t. the treatment network.
    def aug(a):
        return torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], 1)

    def ridge(a, target, alpha):
        penalty = torch.eye(a.shape[1], dtype=a.dtype)
        penalty[-1, -1] = 0.0
        return torch.linalg.solve(a.T @ a + a.shape[0] * alpha * penalty, a.T @ target)

    with torch.no_grad():
        psi1, psi2 = nets.instrument(first.instrument), nets.instrument(second.instrument)
    v = ridge(aug(psi1), nets.treatment(first.treatment), 0.1)  # in the graph
    predicted = aug(psi2) @ v
    u = ridge(aug(predicted.detach()), second.outcome, 0.1)
    loss = (aug(predicted) @ u - second.outcome).pow(2).mean()
    grads = torch.autograd.grad(loss, list(nets.treatment.parameters()))
    assert max(float(g.abs().max()) for g in grads) > 1e-6

    trainer._treatment_steps(first, second)
    for b, a, g in zip(before, _params(nets.treatment), grads, strict=True):
        # First SGD step (momentum buffer = gradient): p <- p - lr * grad.
        assert_allclose((b - a).numpy(), lr * g.numpy(), rtol=1e-7, atol=1e-12)


def test_instrument_step_follows_gradient_of_penalised_stage1_value():
    trainer, first, _ = _tiny_trainer(stage1_iter=1)
    nets, lr = trainer.networks, trainer.options.learning_rate
    before = _params(nets.instrument)
    with torch.no_grad():
        target = nets.treatment(first.treatment)
    value = _penalised_stage1_value(nets.instrument(first.instrument), target, 0.1)
    grads = torch.autograd.grad(value, list(nets.instrument.parameters()))

    trainer._instrument_steps(first)
    for b, a, g in zip(before, _params(nets.instrument), grads, strict=True):
        assert_allclose((b - a).numpy(), lr * g.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("sizes, batch_size", [((12, 13), 5), ((7, 20), 3), ((30, 30), 8)])
def test_mini_batches_use_every_row_of_both_halves_once_per_epoch(sizes, batch_size):
    # Halves of different sizes, and batch sizes that divide neither.
    steps, _, _ = _tiny_trainer()
    steps.options.batch_size = batch_size
    halves = []
    for n in sizes:
        rows = torch.arange(n, dtype=torch.float64)[:, None]
        halves.append(DFIVSample(rows, rows, None, rows))
    pairs = steps._batch_pairs(*halves)
    for half, n in enumerate(sizes):
        seen = torch.cat([pair[half].treatment[:, 0] for pair in pairs])
        assert sorted(seen.tolist()) == list(range(n))
    # About batch_size rows per batch in the smaller half.
    smaller = min(sizes)
    assert len(pairs) == max(1, round(smaller / batch_size))


# -- held-out losses behind the 'auto' penalties -------------------------------------------


def test_stage1_alpha_losses_score_sklearn_ridge_on_the_other_rows():
    psi, phi = _features(80, 3, 10), _features(80, 2, 11)
    psi_out, phi_out = _features(50, 3, 12), _features(50, 2, 13)
    alphas = [1e-3, 0.1, 10.0]
    losses = stage1_alpha_losses(_t(psi), _t(phi), (_t(psi_out), _t(phi_out)), alphas)
    expected = [
        np.mean((_aug(psi_out) @ _ridge_weights(psi, phi, alpha) - phi_out) ** 2)
        for alpha in alphas
    ]
    assert_allclose(losses.numpy(), expected, rtol=RTOL)


def test_stage2_alpha_losses_score_sklearn_ridge_on_the_other_rows():
    pred, chi = _features(90, 2, 20), _features(90, 2, 21)
    y = pred[:, :1] * chi[:, :1] + np.random.default_rng(22).normal(size=(90, 2))
    pred_out, chi_out = _features(40, 2, 23), _features(40, 2, 24)
    y_out = np.random.default_rng(25).normal(size=(40, 2))
    alphas = [1e-4, 0.3]
    held_out = (_t(pred_out), _t(chi_out), _t(y_out))
    losses = stage2_alpha_losses(_t(pred), _t(chi), _t(y), held_out, alphas)
    design_out = _aug(_outer_design(pred_out, chi_out))
    expected = [
        np.mean((design_out @ _ridge_weights(_outer_design(pred, chi), y, alpha) - y_out) ** 2)
        for alpha in alphas
    ]
    assert_allclose(losses.numpy(), expected, rtol=RTOL)

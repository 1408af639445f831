"""The frozen-feature two-stage covariance against a numpy sandwich, in blocks of rows."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import skcflo._ridge.dfiv_stages as dfiv_stages
from skcflo._ridge.dfiv_stages import fit_stage2, structural_prediction
from skcflo._ridge.inference import two_stage_covariance


def _problem(n_rows=150, seed=0):
    rng = np.random.default_rng(seed)
    predicted = rng.normal(size=(n_rows, 2)) + 1.0
    structural = predicted + 0.3 * rng.normal(size=(n_rows, 2))
    covariate = rng.normal(size=(n_rows, 1))
    noise = rng.normal(size=(n_rows, 2)) * (1.0 + np.abs(covariate))  # heteroskedastic
    targets = structural[:, :1] * covariate + structural[:, 1:] + noise
    return predicted, structural, covariate, targets


def _design(t, c):
    aug = lambda a: np.hstack([a, np.ones((a.shape[0], 1))])  # noqa: E731
    outer = np.einsum("ni,nj->nij", aug(t), aug(c)).reshape(t.shape[0], -1)[:, :-1]
    return aug(outer)


def _numpy_sandwich(predicted, structural, covariate, targets, weights, alpha, cov_type):
    design, true_design = _design(predicted, covariate), _design(structural, covariate)
    n_rows, n_coefficients = design.shape
    penalty = np.full(n_coefficients, n_rows * alpha)
    penalty[-1] = 0.0  # the intercept is not penalised
    bread = np.linalg.inv(design.T @ design + np.diag(penalty))
    residuals = targets - true_design @ weights
    covariances = []
    for output in range(targets.shape[1]):
        squared = residuals[:, output] ** 2
        if cov_type == "robust":
            meat = design.T @ (design * squared[:, None])
        else:
            meat = squared.mean() * design.T @ design
        covariances.append(bread @ meat @ bread)
    return np.stack(covariances)


@pytest.mark.parametrize("cov_type", ["robust", "unadjusted"])
@pytest.mark.parametrize("block_rows", [7, 4096])
def test_two_stage_covariance_equals_numpy_sandwich_in_any_blocks(
    monkeypatch, cov_type, block_rows
):
    monkeypatch.setattr(dfiv_stages, "DESIGN_CHUNK", block_rows)
    predicted, structural, covariate, targets = _problem()
    tensors = [torch.from_numpy(a) for a in (predicted, structural, covariate, targets)]
    weights = fit_stage2(tensors[0], tensors[2], tensors[3], 0.01)
    covariance = two_stage_covariance(*tensors, weights, 0.01, cov_type)
    expected = _numpy_sandwich(
        predicted, structural, covariate, targets, weights.numpy(), 0.01, cov_type
    )
    assert covariance.shape == (2, 6, 6)  # (2 + 1)(1 + 1) - 1 columns and the intercept
    assert_allclose(covariance.numpy(), expected, rtol=1e-8, atol=1e-14)


def test_stage2_solve_and_prediction_do_not_depend_on_the_block_size(monkeypatch):
    predicted, structural, covariate, targets = _problem(n_rows=100, seed=1)
    tensors = [torch.from_numpy(a) for a in (predicted, structural, covariate, targets)]
    whole = fit_stage2(tensors[0], tensors[2], tensors[3], 0.1)
    whole_prediction = structural_prediction(tensors[1], tensors[2], whole)
    monkeypatch.setattr(dfiv_stages, "DESIGN_CHUNK", 9)  # 12 blocks, the last one short
    blocked = fit_stage2(tensors[0], tensors[2], tensors[3], 0.1)
    assert_allclose(blocked.numpy(), whole.numpy(), rtol=1e-10, atol=1e-12)
    blocked_prediction = structural_prediction(tensors[1], tensors[2], blocked)
    assert blocked_prediction.shape == (100, 2)
    assert_allclose(blocked_prediction.numpy(), whole_prediction.numpy(), rtol=1e-10, atol=1e-10)


def test_two_stage_covariance_rejects_an_unknown_cov_type():
    predicted, structural, covariate, targets = _problem(n_rows=20)
    tensors = [torch.from_numpy(a) for a in (predicted, structural, covariate, targets)]
    weights = fit_stage2(tensors[0], tensors[2], tensors[3], 0.1)
    with pytest.raises(ValueError, match="cov_type must be one of"):
        two_stage_covariance(*tensors, weights, 0.1, "HC3")

"""Uncertainty of a two-stage ridge head with its features held fixed (a sieve 2SLS).

With treatment features ``phi``, their first-stage prediction ``phi_hat`` and
the stage-2 design built from each, the stage-2 head ``u`` solves

    (F_hat^T F_hat + n alpha D) u = F_hat^T y        F_hat = aug(design(phi_hat)).

Its covariance, the features fixed, is the two-stage least-squares sandwich

    A^-1 M A^-1,    A = F_hat^T F_hat + n alpha D,

with the structural residuals ``e = y - aug(design(phi)) u`` (the true
features, not the predicted ones, as 2SLS computes them) in the middle:
``M = sum_i e_i^2 f_i f_i^T`` ('robust', White's heteroskedasticity-consistent
form) or ``M = mean(e^2) F_hat^T F_hat`` ('unadjusted'). With ``alpha = 0``
and linear features this is exactly the covariance that ``linearmodels``'
``IV2SLS`` reports (``debiased=False``). It ignores the uncertainty of having
learned the features.

A linear functional of the structural function, ``g^T u`` (an effect, an
average effect, a derivative), then has the standard error
``sqrt(g^T Cov g)``: the delta method, exact here because ``h`` is linear in
``u``.
"""

import torch

from .dfiv_stages import design_of_rows, row_blocks
from .head import ACCUMULATION_DTYPE, augment, penalty_diagonal, solve_spd

COV_TYPES = ("robust", "unadjusted")


@torch.no_grad()
def two_stage_covariance(
    predicted_treatment, structural_treatment, covariate_features, targets, weights, alpha, cov_type
):
    """Covariance of the augmented stage-2 weights, one matrix per output.

    The designs are built and their products accumulated chunk by chunk
    (:func:`~skcflo._ridge.dfiv_stages.row_blocks`), never for all rows at once.

    Parameters
    ----------
    predicted_treatment : torch.Tensor of shape (n, d_t)
        The predicted treatment features (what stage 2 was fitted on).
    structural_treatment : torch.Tensor of shape (n, d_t)
        The true treatment features.
    covariate_features : torch.Tensor of shape (n, d_c) or None
    targets : torch.Tensor of shape (n, k)
    weights : torch.Tensor of shape (p + 1, k)
        The stage-2 head (intercept last) on the stage-2 design of ``p`` columns.
    alpha : float
        Its per-sample penalty.
    cov_type : {'robust', 'unadjusted'}

    Returns
    -------
    torch.Tensor of shape (k, p + 1, p + 1), float64

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    >>> y = 2 * x + torch.tensor([[0.1], [-0.1], [-0.1], [0.1]], dtype=torch.float64)
    >>> weights = torch.tensor([[2.0], [0.0]], dtype=torch.float64)
    >>> cov = two_stage_covariance(x, x, None, y, weights, 0.0, "unadjusted")
    >>> round(float(cov[0, 0, 0]), 6)  # mean(e^2) / sum((x - mean x)^2) = 0.01 / 5
    0.002
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}.")
    weights = weights.to(ACCUMULATION_DTYPE)
    n_coefficients, n_outputs = weights.shape
    gram = weights.new_zeros(n_coefficients, n_coefficients)
    meat = weights.new_zeros(n_outputs, n_coefficients, n_coefficients)
    squared_sum = weights.new_zeros(n_outputs)
    for rows in row_blocks(predicted_treatment.shape[0]):
        predicted = augment(design_of_rows(predicted_treatment, covariate_features, rows))
        structural = augment(design_of_rows(structural_treatment, covariate_features, rows))
        squared = (targets[rows].to(ACCUMULATION_DTYPE) - structural @ weights).pow(2)
        gram += predicted.T @ predicted
        squared_sum += squared.sum(dim=0)
        if cov_type == "robust":
            meat += torch.einsum("np,nk,nq->kpq", predicted, squared, predicted)
    n_rows = predicted_treatment.shape[0]
    if cov_type == "unadjusted":
        meat = (squared_sum / n_rows)[:, None, None] * gram
    system = gram + torch.diag(n_rows * penalty_diagonal(n_coefficients, alpha, device=gram.device))
    eye = torch.eye(n_coefficients, dtype=ACCUMULATION_DTYPE, device=gram.device)
    bread = solve_spd(system, eye)
    return bread @ meat @ bread


def functional_std(gradients, covariance):
    """Standard errors of the linear functionals ``gradients @ u``.

    Parameters
    ----------
    gradients : torch.Tensor of shape (r, p + 1)
        One row per functional (an augmented design difference, say).
    covariance : torch.Tensor of shape (k, p + 1, p + 1)

    Returns
    -------
    torch.Tensor of shape (r, k)

    Examples
    --------
    >>> import torch
    >>> cov = torch.diag(torch.tensor([4.0, 9.0], dtype=torch.float64))[None]
    >>> functional_std(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), cov)
    tensor([[2.],
            [3.]], dtype=torch.float64)
    """
    gradients = gradients.to(ACCUMULATION_DTYPE)
    variance = torch.einsum("rp,kpq,rq->rk", gradients, covariance, gradients)
    return variance.clamp_min(0.0).sqrt()


def first_stage_statistics(endogenous, predicted, baseline):
    """How much better an out-of-sample first-stage prediction is than a covariates-only one.

    For each column ``j`` of held-out rows: the R² of the prediction,
    ``1 - SSE(predicted) / SST``; its partial R² against the baseline (what the
    covariates alone predict), ``1 - SSE(predicted) / SSE(baseline)`` (0 when
    the instruments make it worse); and the F-type statistic of that one
    comparison, ``(n - 1) partial / (1 - partial)``. The predictions are used
    as they are, not refitted on the held-out rows, so noise in them (an
    instrument the network overfitted) lowers the statistics instead of
    being regressed onto whatever it happens to correlate with.

    Parameters
    ----------
    endogenous, predicted, baseline : torch.Tensor of shape (n, j)

    Returns
    -------
    dict
        ``rsquared``, ``partial_rsquared``, ``f_stat`` (float64 tensors of
        shape (j,)); ``pooled_partial_rsquared`` and ``pooled_f_stat``, the
        same with the errors summed over the columns; and ``df_resid``
        (``n - 1``).

    Examples
    --------
    >>> import torch
    >>> z = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    >>> x = z + 0.1 * torch.cos(40 * z)
    >>> stats = first_stage_statistics(x, z, torch.zeros_like(z))
    >>> bool(stats["partial_rsquared"][0] > 0.9), bool(stats["f_stat"][0] > 100)
    (True, True)
    >>> float(first_stage_statistics(x, -z, torch.zeros_like(z))["f_stat"][0])
    0.0
    """
    endogenous, predicted, baseline = (
        t.to(ACCUMULATION_DTYPE) for t in (endogenous, predicted, baseline)
    )
    n_rows = endogenous.shape[0]
    tiny = torch.finfo(ACCUMULATION_DTYPE).tiny
    error = (endogenous - predicted).pow(2).sum(dim=0)
    baseline_error = (endogenous - baseline).pow(2).sum(dim=0)
    centred = (endogenous - endogenous.mean(dim=0)).pow(2).sum(dim=0)
    partial = (1.0 - error / baseline_error.clamp_min(tiny)).clamp_min(0.0)
    pooled = (1.0 - error.sum() / baseline_error.sum().clamp_min(tiny)).clamp_min(0.0)
    df_resid = n_rows - 1
    return {
        "rsquared": 1.0 - error / centred.clamp_min(tiny),
        "partial_rsquared": partial,
        "f_stat": df_resid * partial / (1.0 - partial).clamp_min(tiny),
        "pooled_partial_rsquared": pooled,
        "pooled_f_stat": df_resid * pooled / (1.0 - pooled).clamp_min(tiny),
        "df_resid": df_resid,
    }

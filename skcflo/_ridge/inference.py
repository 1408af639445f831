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

from .head import ACCUMULATION_DTYPE, augment, penalty_diagonal, solve_spd

COV_TYPES = ("robust", "unadjusted")


def two_stage_covariance(predicted_design, structural_design, targets, weights, alpha, cov_type):
    """Covariance of the augmented stage-2 weights, one matrix per output.

    Parameters
    ----------
    predicted_design : torch.Tensor of shape (n, p)
        The stage-2 design of the predicted treatment features (what stage 2 was fitted on).
    structural_design : torch.Tensor of shape (n, p)
        The same design of the true treatment features.
    targets : torch.Tensor of shape (n, k)
    weights : torch.Tensor of shape (p + 1, k)
        The stage-2 head (intercept last), fitted on ``predicted_design``.
    alpha : float
        Its per-sample penalty.
    cov_type : {'robust', 'unadjusted'}

    Returns
    -------
    torch.Tensor of shape (k, p + 1, p + 1), float64

    Examples
    --------
    >>> import torch
    >>> design = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    >>> y = 2 * design + torch.tensor([[0.1], [-0.1], [-0.1], [0.1]], dtype=torch.float64)
    >>> weights = torch.tensor([[2.0], [0.0]], dtype=torch.float64)
    >>> cov = two_stage_covariance(design, design, y, weights, 0.0, "unadjusted")
    >>> round(float(cov[0, 0, 0]), 6)  # mean(e^2) / sum((x - mean x)^2) = 0.01 / 5
    0.002
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}.")
    predicted = augment(predicted_design.to(ACCUMULATION_DTYPE))
    structural = augment(structural_design.to(ACCUMULATION_DTYPE))
    targets = targets.to(ACCUMULATION_DTYPE)
    n_rows, n_coefficients = predicted.shape
    gram = predicted.T @ predicted
    system = gram + torch.diag(n_rows * penalty_diagonal(n_coefficients, alpha, device=gram.device))
    eye = torch.eye(n_coefficients, dtype=ACCUMULATION_DTYPE, device=gram.device)
    bread = solve_spd(system, eye)
    residuals = targets - structural @ weights
    covariances = []
    for output in range(targets.shape[1]):
        squared = residuals[:, output].pow(2)
        if cov_type == "robust":
            meat = predicted.T @ (predicted * squared[:, None])
        else:
            meat = squared.mean() * gram
        covariances.append(bread @ meat @ bread)
    return torch.stack(covariances)


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

"""The two closed-form stages of deep-feature instrumental-variable regression.

Notation (Xu et al., ICLR 2021): treatment features ``phi(X)``, instrument
features ``psi(Z, O)``, covariate features ``chi(O)``.

* Stage 1 regresses treatment features on instrument features:
  ``V = argmin ||phi(X1) - aug(psi1) V||^2 + n1 alpha1 ||V||^2``.
* Predicted treatment features of the stage-2 rows: ``aug(psi2) V``.
* Stage 2 regresses the outcome on the predicted treatment features, crossed
  with the covariate features: ``u = argmin ||Y2 - F2 u||^2 + n2 alpha2 ||u||^2``
  with ``F2 = aug(phi_hat2) (x) aug(chi2)``.
* The structural function is ``h(x, o) = (aug(phi(x)) (x) aug(chi(o))) u``.

Every solve goes through :func:`skcflo._ridge.head.solve_head`, which supplies the
intercept itself; the design here therefore drops the constant ``1 (x) 1``
column of the outer product. Solves are differentiable, so the stage-2 loss
can back-propagate through ``V`` into the treatment network.

The design has ``(d_t + 1)(d_c + 1)`` columns (288 with the default networks):
outside training, where no gradient is needed, it is built ``DESIGN_CHUNK``
rows at a time and never for the whole sample (a million rows of it would
take 2.3 GB in float64).
"""

import torch

from .head import ACCUMULATION_DTYPE, RidgeStatistics, apply_head, augment, solve_head

# Rows of the stage-2 design built at once outside training (about 9 MB by default).
DESIGN_CHUNK = 4096


def stage2_design(treatment_features, covariate_features=None):
    """Row-wise ``aug(t) (x) aug(c)`` without its constant column.

    Parameters
    ----------
    treatment_features : torch.Tensor of shape (n, d_t)
    covariate_features : torch.Tensor of shape (n, d_c) or None
        ``None`` (no covariates) gives the treatment features themselves.

    Returns
    -------
    torch.Tensor of shape (n, (d_t + 1) * (d_c + 1) - 1)

    Examples
    --------
    >>> import torch
    >>> t, c = torch.tensor([[2.0]]), torch.tensor([[3.0, 5.0]])
    >>> stage2_design(t, c).tolist()
    [[6.0, 10.0, 2.0, 3.0, 5.0]]
    """
    if covariate_features is None:
        return treatment_features
    n_rows = treatment_features.shape[0]
    ones_t = treatment_features.new_ones(n_rows, 1)
    ones_c = covariate_features.new_ones(n_rows, 1)
    treatment_aug = torch.cat([treatment_features, ones_t], dim=1)
    covariate_aug = torch.cat([covariate_features, ones_c], dim=1)
    outer = treatment_aug.unsqueeze(2) * covariate_aug.unsqueeze(1)
    return outer.reshape(n_rows, -1)[:, :-1]


def fit_stage1(instrument_features, treatment_features, alpha):
    """Stage-1 weights ``V`` (float64) of treatment features on instrument features."""
    return solve_head(RidgeStatistics.from_batch(instrument_features, treatment_features), alpha)


def predict_stage1(instrument_features, stage1_weights):
    """Predicted treatment features ``aug(psi) V`` (float64).

    Unlike :func:`~skcflo._ridge.head.apply_head`, gradients flow into ``V``: the
    stage-2 loss reaches the treatment network through the stage-1 solve.
    """
    return augment(instrument_features) @ stage1_weights


def row_blocks(n_rows):
    """Slices of successive blocks of ``DESIGN_CHUNK`` rows (see the module notes)."""
    return (slice(start, start + DESIGN_CHUNK) for start in range(0, n_rows, DESIGN_CHUNK))


def design_of_rows(treatment_features, covariate_features, rows):
    """The stage-2 design (float64) of the rows ``rows`` (a slice) only."""
    covariate = None if covariate_features is None else covariate_features[rows]
    return stage2_design(treatment_features[rows].to(ACCUMULATION_DTYPE), _as_float64(covariate))


@torch.no_grad()
def stage2_statistics(predicted_treatment, covariate_features, outcome):
    """Ridge statistics of the outcome on the stage-2 design, accumulated chunk by chunk."""
    stats = None
    for rows in row_blocks(predicted_treatment.shape[0]):
        design = design_of_rows(predicted_treatment, covariate_features, rows)
        batch = RidgeStatistics.from_batch(design, outcome[rows])
        stats = batch if stats is None else stats + batch
    return stats


def fit_stage2(predicted_treatment, covariate_features, outcome, alpha):
    """Stage-2 weights ``u`` (float64) of the outcome on the stage-2 design."""
    return solve_head(stage2_statistics(predicted_treatment, covariate_features, outcome), alpha)


@torch.no_grad()
def stage1_alpha_losses(instrument_features, treatment_features, held_out, alphas):
    """Stage-1 loss on held-out rows of the stage-1 head solved with each alpha.

    ``held_out`` is ``(instrument_features, treatment_features)`` of other
    rows. Returns a float64 tensor of shape (len(alphas),).
    """
    stats = RidgeStatistics.from_batch(instrument_features, treatment_features)
    instrument, treatment = held_out
    treatment = treatment.to(ACCUMULATION_DTYPE)
    losses = [
        (predict_stage1(instrument, solve_head(stats, alpha)) - treatment).pow(2).mean()
        for alpha in alphas
    ]
    return torch.stack(losses)


@torch.no_grad()
def stage2_alpha_losses(predicted_treatment, covariate_features, outcome, held_out, alphas):
    """Stage-2 loss on held-out rows of the stage-2 head solved with each alpha.

    ``held_out`` is ``(predicted_treatment, covariate_features, outcome)`` of
    other rows. One pass over their design serves every alpha. Returns a
    float64 tensor of shape (len(alphas),).
    """
    stats = stage2_statistics(predicted_treatment, covariate_features, outcome)
    n_outputs = outcome.shape[1]
    weights = torch.cat([solve_head(stats, alpha) for alpha in alphas], dim=1)
    predicted, covariate, target = held_out
    fitted = structural_prediction(predicted, covariate, weights)
    residual = fitted.reshape(len(target), len(alphas), n_outputs) - target[:, None, :]
    return residual.pow(2).mean(dim=(0, 2))


@torch.no_grad()
def structural_prediction(treatment_features, covariate_features, stage2_weights):
    """``h(x, o)`` from treatment features and covariate features (float64).

    Given predicted treatment features instead, the result is stage 2's fit
    ``E[h | instruments]``. Built chunk by chunk (see the module notes).
    """
    return torch.cat(
        [
            apply_head(design_of_rows(treatment_features, covariate_features, rows), stage2_weights)
            for rows in row_blocks(treatment_features.shape[0])
        ]
    )


def _as_float64(features):
    return None if features is None else features.to(ACCUMULATION_DTYPE)

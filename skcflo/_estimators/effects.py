"""Effects of a treatment, with standard errors and intervals, for a fitted structural function.

The names follow econml's where the concept is the same: ``effect``,
``marginal_effect``, ``ate``, ``effect_interval``, ``ate_interval``. The
structural function is linear in its stage-2 head, ``h(x) = aug(g(x)) u``, so
an effect ``h(x with T1) - h(x with T0)`` is the linear functional
``(aug(g(T1)) - aug(g(T0))) u`` and its standard error follows from the head's
covariance (:mod:`skcflo._ridge.inference`). The estimator supplies
``_augmented_design(treatment, covariate_features)``, ``_covariate_features_of(X)``,
``stage2_weights_`` and ``_stage2_covariance_``.
"""

import html

import numpy as np
import torch
from scipy.stats import norm

from .._ridge.inference import functional_std
from .glue import uses_n_jobs_threads


class EffectsMixin:
    """``effect``, ``marginal_effect``, ``ate``, their intervals and ``summary``."""

    @uses_n_jobs_threads
    def effect(self, X, T1, T0=None):
        """Effect of moving the treatment from ``T0`` to ``T1``, row by row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to evaluate (their covariates, and with ``T0=None``
            their treatment).
        T1 : float or array-like of shape (n_samples,) or (n_samples, n_treatments)
            The treatment to move to: one value for every row (and treatment
            column), one value per row (a single treatment column), or a full
            row of treatment values per row.
        T0 : same as T1, default=None
            The treatment to move from; ``None``: the treatment columns of ``X``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            ``h(x, T1) - h(x, T0)``.
        """
        gradients = self._effect_gradients(X, T1, T0)
        return self._squeeze(gradients.numpy() @ self.stage2_weights_)

    @uses_n_jobs_threads
    def ate(self, X, T1, T0=None):
        """Average of :meth:`effect` over the rows of ``X`` (a float for one output)."""
        gradients = self._effect_gradients(X, T1, T0).mean(dim=0, keepdim=True)
        return self._squeeze(gradients.numpy() @ self.stage2_weights_)[0]

    @uses_n_jobs_threads
    def effect_interval(self, X, T1, T0=None, alpha=0.05):
        """Pointwise ``1 - alpha`` confidence intervals of :meth:`effect`.

        Normal intervals with the standard error of the stage-2 head, the
        learned features held fixed (``cov_type`` chooses the robust or the
        unadjusted form). They do not account for the uncertainty of learning
        the features, nor for the bias of the penalised heads.

        Returns
        -------
        lower, upper : ndarrays of the shape of :meth:`effect`
        """
        return self._interval(self._effect_gradients(X, T1, T0), alpha)

    @uses_n_jobs_threads
    def ate_interval(self, X, T1, T0=None, alpha=0.05):
        """A ``1 - alpha`` confidence interval of :meth:`ate` (see :meth:`effect_interval`).

        The average is over the given rows, held fixed.
        """
        gradients = self._effect_gradients(X, T1, T0).mean(dim=0, keepdim=True)
        lower, upper = self._interval(gradients, alpha)
        return lower[0], upper[0]

    @uses_n_jobs_threads
    def marginal_effect(self, X):
        """Derivative of the structural function in each treatment column, at the rows of ``X``.

        By automatic differentiation through the treatment network and the
        stage-2 head, in the units of ``y`` per unit of each treatment column.

        Returns
        -------
        ndarray of shape (n_samples, n_treatments) or (n_samples, n_outputs, n_treatments)
        """
        X, _ = self._prediction_input(X)
        treatment = torch.tensor(X[:, ~self.covariate_mask_], requires_grad=True)
        design = self._augmented_design_of(X, treatment)
        weights = torch.from_numpy(self.stage2_weights_)
        outputs = design @ weights
        derivatives = []
        for output in range(outputs.shape[1]):
            (gradient,) = torch.autograd.grad(
                outputs[:, output].sum(), treatment, retain_graph=True
            )
            derivatives.append(gradient.double())
        derivatives = torch.stack(derivatives, dim=1).numpy()
        return derivatives[:, 0] if self._y_was_1d_ else derivatives

    @uses_n_jobs_threads
    def marginal_effect_interval(self, X, alpha=0.05):
        """Pointwise ``1 - alpha`` confidence intervals of :meth:`marginal_effect`.

        The derivative is linear in the stage-2 head too (its gradient is the
        derivative of the design, by forward-mode differentiation), so its
        standard error follows as for :meth:`effect_interval`, with the same
        assumptions.

        Returns
        -------
        lower, upper : ndarrays of the shape of :meth:`marginal_effect`
        """
        X, _ = self._prediction_input(X)
        treatment = torch.from_numpy(np.ascontiguousarray(X[:, ~self.covariate_mask_]))
        covariate = self._covariate_features_of(X)
        bounds = []
        for column in range(treatment.shape[1]):
            direction = torch.zeros_like(treatment)
            direction[:, column] = 1.0
            _, gradients = torch.func.jvp(
                lambda t: self._augmented_design(t, covariate), (treatment,), (direction,)
            )
            bounds.append(self._interval(gradients.detach(), alpha))
        # (lower, upper), each (n, [n_outputs,] n_treatments).
        return tuple(np.stack([b[side] for b in bounds], axis=-1) for side in (0, 1))

    @uses_n_jobs_threads
    def summary(self, X, T1, T0=None, alpha=0.05):
        """The average effect of ``T0 -> T1`` over ``X``, with its standard error and interval.

        Returns an :class:`EffectSummary`, which prints as a table (and renders
        in a notebook) and carries the first-stage diagnostics of the fit.
        """
        gradients = self._effect_gradients(X, T1, T0).mean(dim=0, keepdim=True)
        estimate, stderr = self._estimate_and_stderr(gradients)
        lower, upper = self._interval(gradients, alpha)
        return EffectSummary(
            estimate[0],
            stderr[0],
            lower[0],
            upper[0],
            alpha,
            self.cov_type,
            first_stage=getattr(self, "first_stage_", None),
        )

    # -- pieces --------------------------------------------------------------------------
    def _effect_gradients(self, X, T1, T0):
        X, _ = self._prediction_input(X)
        mask = self.covariate_mask_
        after = _treatment_values(T1, X[:, ~mask], "T1")
        before = X[:, ~mask] if T0 is None else _treatment_values(T0, X[:, ~mask], "T0")
        with torch.no_grad():
            covariate = self._covariate_features_of(X)
            return self._augmented_design(after, covariate) - self._augmented_design(
                before, covariate
            )

    def _estimate_and_stderr(self, gradients):
        """The functionals ``gradients @ u`` and their standard errors, ``(r, n_outputs)`` each."""
        covariance = torch.from_numpy(self._stage2_covariance_)
        estimate = gradients.numpy() @ self.stage2_weights_
        return estimate, functional_std(gradients, covariance).numpy()

    def _interval(self, gradients, alpha):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
        estimate, stderr = self._estimate_and_stderr(gradients)
        half_width = norm.ppf(1 - alpha / 2) * stderr
        return self._squeeze(estimate - half_width), self._squeeze(estimate + half_width)

    def _squeeze(self, values):
        return values[..., 0] if self._y_was_1d_ else values


def _treatment_values(T, treatment, name):
    """``T`` as a float32 ``(n_samples, n_treatments)`` array like ``treatment``."""
    values = np.asarray(T, dtype=np.float32)
    n_rows, n_treatments = treatment.shape
    if values.ndim == 0:
        return np.full_like(treatment, values)
    if values.ndim == 1 and n_treatments == 1 and len(values) == n_rows:
        return values.reshape(n_rows, 1)
    if values.shape == treatment.shape:
        return values
    raise ValueError(
        f"{name} must be a number, an array of {n_rows} values (one treatment column) or of "
        f"shape ({n_rows}, {n_treatments}); got shape {values.shape}."
    )


class EffectSummary:
    """An average effect with its standard error and interval, as ``summary`` reports it.

    Attributes
    ----------
    estimate, stderr, lower, upper : float or ndarray of shape (n_outputs,)
    alpha : float
    cov_type : str
    first_stage : FirstStage or None
        The fit's instrument diagnostics, printed below the effect.
    """

    def __init__(self, estimate, stderr, lower, upper, alpha, cov_type, first_stage=None):
        squeeze = np.size(estimate) == 1
        self.estimate = float(np.ravel(estimate)[0]) if squeeze else estimate
        self.stderr = float(np.ravel(stderr)[0]) if squeeze else stderr
        self.lower = float(np.ravel(lower)[0]) if squeeze else lower
        self.upper = float(np.ravel(upper)[0]) if squeeze else upper
        self.alpha = alpha
        self.cov_type = cov_type
        self.first_stage = first_stage

    def _rows(self):
        level = f"{100 * (1 - self.alpha):g}%"
        header = ("", "estimate", "std. err.", f"{level} lower", f"{level} upper")
        values = [np.atleast_1d(v) for v in (self.estimate, self.stderr, self.lower, self.upper)]
        rows = [header]
        for output, row in enumerate(zip(*values, strict=True)):
            label = "average effect" if len(values[0]) == 1 else f"average effect [{output}]"
            rows.append((label, *(f"{v:.4g}" for v in row)))
        return rows

    def __repr__(self):
        rows = self._rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.append(f"standard errors: stage-2 head, features fixed, cov_type={self.cov_type!r}")
        if self.first_stage is not None:
            lines.append(repr(self.first_stage))
        return "\n".join(lines)

    def _repr_html_(self):
        rows = self._rows()
        head = "".join(f"<th>{cell}</th>" for cell in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows[1:]
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if self.first_stage is None:
            return table
        return table + f"<pre>{html.escape(repr(self.first_stage))}</pre>"

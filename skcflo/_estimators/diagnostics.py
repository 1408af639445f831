"""Instrument diagnostics of a DFIV fit: the first-stage report and the weak-instrument warning."""

import warnings

import numpy as np
from scipy.stats import f as f_distribution

from .._ridge.inference import first_stage_statistics

# The rule of thumb of Staiger and Stock (1997): with a first-stage F below 10
# for one instrument, two-stage least squares is biased toward the confounded
# regression and its intervals under-cover.
WEAK_INSTRUMENT_F = 10.0


class WeakInstrumentWarning(UserWarning):
    """The instruments carry too little information about the treatment to identify its effect.

    Raised by :class:`DFIVRegressor` when the pooled first-stage F statistic
    of the treatment features (see ``first_stage_``) is below 10.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skcflo import DFIVRegressor, WeakInstrumentWarning
    >>> from skcflo.datasets import make_demand
    >>> data = make_demand(n_samples=500, random_state=0)
    >>> unrelated = np.random.default_rng(0).normal(size=data.Z.shape)  # not the price's cost
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = DFIVRegressor([1, 2], max_iter=2, random_state=0)
    ...     model = model.fit(data.X, data.y, Z=unrelated)
    >>> [w.category.__name__ for w in caught]
    ['WeakInstrumentWarning']
    """


class FirstStage:
    """First-stage diagnostics of a DFIV fit, on the stage-2 half of the sample.

    The instrument network and the stage-1 head were fitted on the other half,
    so the predicted treatment features are an out-of-sample instrument. Each
    statistic is that of a regression on this prediction beyond what the
    covariates alone predict (the prediction averaged over permutations of the
    excluded instruments; this assumes instruments independent of the
    covariates), as ``linearmodels`` reports a first stage with one
    instrument.

    Attributes
    ----------
    rsquared, partial_rsquared, f_stat, pvalue : ndarray of shape (n_treatment_features,)
        Per treatment feature: R² of the feature on its prediction and its
        covariates-only baseline, the partial R² of the prediction, the F
        statistic of the prediction's coefficient and its p-value.
    pooled_partial_rsquared, pooled_f_stat : float
        The same over all treatment features at once (their errors summed):
        how much the instruments add to the covariates' prediction of the
        treatment. The weak-instrument warning reads this F.
    effect_partial_rsquared, effect_f_stat, effect_pvalue : ndarray of shape (n_outputs,)
        The same for the effect index: the structural function with the true
        treatment features against the one with the predicted features, the
        variation in the outcome that the instruments move (small also when
        the estimated effect itself is small).
    n_rows : int
    """

    def __init__(self, features, effect, n_rows):
        self.rsquared = features["rsquared"]
        self.partial_rsquared = features["partial_rsquared"]
        self.f_stat = features["f_stat"]
        self.pvalue = f_distribution.sf(self.f_stat, 1, features["df_resid"])
        self.pooled_partial_rsquared = float(features["pooled_partial_rsquared"])
        self.pooled_f_stat = float(features["pooled_f_stat"])
        self.effect_partial_rsquared = effect["partial_rsquared"]
        self.effect_f_stat = effect["f_stat"]
        self.effect_pvalue = f_distribution.sf(self.effect_f_stat, 1, effect["df_resid"])
        self.n_rows = n_rows

    @property
    def weak(self):
        """Whether the pooled first-stage F of the treatment features is below 10."""
        return self.pooled_f_stat < WEAK_INSTRUMENT_F

    def __repr__(self):
        lines = [
            f"First stage ({self.n_rows} held-out rows of the stage-2 half)",
            f"  treatment features pooled: partial R² {self.pooled_partial_rsquared:.3g}, "
            f"F {self.pooled_f_stat:.3g} (weak below {WEAK_INSTRUMENT_F:g})",
            f"  effect index: partial R² {_join(self.effect_partial_rsquared)}, "
            f"F {_join(self.effect_f_stat)}",
            f"  treatment features ({len(self.f_stat)}): partial R² median "
            f"{np.median(self.partial_rsquared):.3g} (min {np.min(self.partial_rsquared):.3g}), "
            f"F median {np.median(self.f_stat):.3g} (min {np.min(self.f_stat):.3g})",
        ]
        return "\n".join(lines)


def _join(values):
    return ", ".join(f"{v:.3g}" for v in np.atleast_1d(values))


def first_stage_report(tensors):
    """A :class:`FirstStage` from the tensors of the cross-fitted first stage."""

    def statistics(prefix):
        stats = first_stage_statistics(
            tensors[f"treatment{prefix}"],
            tensors[f"predicted{prefix}"],
            tensors[f"baseline{prefix}"],
        )
        return {name: getattr(value, "numpy", lambda v=value: v)() for name, value in stats.items()}

    return FirstStage(statistics(""), statistics("_index"), tensors["treatment"].shape[0])


def warn_if_weak(first_stage, instrument_name, stacklevel=3):
    """Warn with :class:`WeakInstrumentWarning` when the first stage is weak."""
    if first_stage.weak:
        warnings.warn(
            f"The instrument {instrument_name} explains little of the treatment beyond the "
            f"covariates: pooled first-stage F {first_stage.pooled_f_stat:.3g} < "
            f"{WEAK_INSTRUMENT_F:g} (see first_stage_). The estimated effects are then biased "
            "toward the confounded regression and their intervals do not cover.",
            WeakInstrumentWarning,
            stacklevel=stacklevel,
        )

"""DFIVRegressor's effects, intervals and instrument diagnostics against independent results."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.stats import norm
from sklearn.linear_model import Ridge

from skcflo import DFIVRegressor, WeakInstrumentWarning
from skcflo.datasets import make_demand
from tests.estimators.test_dfiv_reference import (
    FAST,
    _covariate_features,
    _design,
    _instrument_features,
    _treatment_features,
)


@pytest.fixture(scope="module")
def demand():
    data = make_demand(n_samples=400, rho=0.5, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakInstrumentWarning)
        model = DFIVRegressor([1, 2], **FAST).fit(data.X, data.y, Z=data.Z)
    return data, model


# -- two-stage least squares ------------------------------------------------------------------


@pytest.mark.parametrize("cov_type", ["unadjusted", "robust"])
def test_linear_dfiv_is_two_stage_least_squares_on_mroz(cov_type):
    # Married women's wages: education instrumented by the parents' education, experience
    # exogenous (a treatment column that is its own instrument). Linear features, no
    # penalties: DFIVRegressor's heads are the 2SLS coefficients, its intervals IV2SLS's.
    pytest.importorskip("linearmodels")
    from linearmodels.datasets import mroz
    from linearmodels.iv import IV2SLS

    data = mroz.load().dropna(subset=["lwage"])
    formula = "lwage ~ 1 + exper + expersq + [educ ~ fatheduc + motheduc]"
    reference = IV2SLS.from_formula(formula, data).fit(cov_type=cov_type)
    X = data[["educ", "exper", "expersq"]].to_numpy(float)
    Z = data[["fatheduc", "motheduc", "exper", "expersq"]].to_numpy(float)
    model = DFIVRegressor(
        treatment_backbone="linear",
        instrument_backbone="linear",
        stage1_alpha=0.0,
        stage2_alpha=0.0,
        cov_type=cov_type,
        random_state=0,
    ).fit(X, data["lwage"].to_numpy(float), Z=Z)
    intervals = reference.conf_int(level=0.95)
    for column, name in enumerate(["educ", "exper"]):
        one_more = X.copy()
        one_more[:, column] += 1
        # h is linear: the average effect of one more unit is the coefficient.
        assert_allclose(model.ate(X, one_more), reference.params[name], rtol=1e-6)
        lower, upper = model.ate_interval(X, one_more)
        # (educ's lower bound is near 0: relative to the interval's width.)
        assert_allclose([lower, upper], intervals.loc[name], atol=1e-6 * (upper - lower))
        summary = model.summary(X, one_more)
        assert_allclose(summary.stderr, reference.std_errors[name], rtol=1e-6)


# -- effects against predictions and a hand sandwich ---------------------------------------------


def test_effect_is_the_difference_of_structural_predictions(demand):
    data, model = demand
    raised = data.X.copy()
    raised[:, 0] += 1.5
    expected = model.predict(raised) - model.predict(data.X)
    assert_allclose(model.effect(data.X, raised[:, 0]), expected, rtol=1e-6, atol=1e-6)
    assert_allclose(model.ate(data.X, raised[:, 0]), expected.mean(), rtol=1e-6)
    # T0 moves the starting point: from +1.5 back to the data is minus the effect.
    assert_allclose(
        model.effect(data.X, data.X[:, 0], T0=raised[:, 0]), -expected, rtol=1e-6, atol=1e-6
    )


def test_treatment_values_may_be_a_number_a_column_or_a_matrix(demand):
    data, model = demand
    X = data.X[:20]
    as_number = model.effect(X, 20.0)
    assert_allclose(model.effect(X, np.full(20, 20.0)), as_number)
    assert_allclose(model.effect(X, np.full((20, 1), 20.0)), as_number)
    with pytest.raises(ValueError, match="T1 must be a number"):
        model.effect(X, np.ones(19))


def _hand_robust_covariance(model, X, y, Z):
    """White's sandwich of the stage-2 head, the features fixed, by numpy (raw units)."""
    psi = _instrument_features(model, X, Z)
    stage1 = Ridge(alpha=model.stage1_alpha * len(X)).fit(psi, _treatment_features(model, X))
    covariate = _covariate_features(model, X)
    predicted = np.column_stack([_design(stage1.predict(psi), covariate), np.ones(len(X))])
    structural = np.column_stack(
        [_design(_treatment_features(model, X), covariate), np.ones(len(X))]
    )
    penalty = np.full(predicted.shape[1], model.stage2_alpha * len(X))
    penalty[-1] = 0.0
    bread = np.linalg.inv(predicted.T @ predicted + np.diag(penalty))
    residual = y - structural @ _stacked_weights(model)
    meat = predicted.T @ (predicted * residual[:, None] ** 2)
    return bread @ meat @ bread


def _stacked_weights(model):
    return model.stage2_weights_[:, 0]


def test_effect_intervals_are_normal_intervals_of_the_robust_sandwich(demand):
    data, model = demand
    covariance = _hand_robust_covariance(model, data.X, data.y, data.Z)
    X, T1 = data.X[:30], data.X[:30, 0] + 1.0
    raised = X.copy()
    raised[:, 0] = T1
    covariate = _covariate_features(model, X)

    def augmented(rows):
        return np.column_stack(
            [_design(_treatment_features(model, rows), covariate), np.ones(len(rows))]
        )

    difference = augmented(raised) - augmented(X)
    stderr = np.sqrt(np.einsum("rp,pq,rq->r", difference, covariance, difference))
    lower, upper = model.effect_interval(X, T1, alpha=0.1)
    effect = model.effect(X, T1)
    z = norm.ppf(0.95)
    assert_allclose(upper - effect, z * stderr, rtol=1e-5)
    assert_allclose(effect - lower, z * stderr, rtol=1e-5)
    # The average effect's interval: the same sandwich on the mean difference.
    mean = difference.mean(axis=0)
    ate_lower, ate_upper = model.ate_interval(X, T1, alpha=0.1)
    assert_allclose(ate_upper - ate_lower, 2 * z * np.sqrt(mean @ covariance @ mean), rtol=1e-5)


def test_marginal_effect_of_a_linear_treatment_is_the_effect_of_one_more_unit():
    data = make_demand(n_samples=300, rho=0.5, random_state=2)
    model = DFIVRegressor([1, 2], **{**FAST, "treatment_backbone": "linear"})
    model.fit(data.X, data.y, Z=data.Z)
    # h is linear in the (standardised) price at fixed covariates.
    marginal = model.marginal_effect(data.X[:25])
    assert marginal.shape == (25, 1)
    one_more = data.X[:25, 0] + 1
    assert_allclose(marginal[:, 0], model.effect(data.X[:25], one_more), rtol=1e-4)
    # So are their intervals: the derivative of the design is the difference of designs.
    lower, upper = model.marginal_effect_interval(data.X[:25], alpha=0.1)
    effect_lower, effect_upper = model.effect_interval(data.X[:25], one_more, alpha=0.1)
    assert_allclose(lower[:, 0], effect_lower, rtol=1e-4)
    assert_allclose(upper[:, 0], effect_upper, rtol=1e-4)


def test_marginal_effect_matches_central_differences_of_predict(demand):
    data, model = demand
    X, step = data.X[:25].copy(), 1e-2
    up, down = X.copy(), X.copy()
    up[:, 0] += step
    down[:, 0] -= step
    differences = (model.predict(up) - model.predict(down)) / (2 * step)
    scale = np.abs(differences).max()
    assert_allclose(model.marginal_effect(X)[:, 0], differences, atol=2e-3 * scale)


def test_effects_take_a_dataframe_with_covariate_names():
    data = make_demand(n_samples=300, rho=0.5, random_state=3, as_frame=True)
    model = DFIVRegressor(["time", "emotion"], **FAST).fit(data.X, data.y, Z=data.Z)
    raised = data.X["price"].to_numpy() + 1
    assert np.isfinite(model.ate(data.X, raised))
    lower, upper = model.ate_interval(data.X, raised)
    assert lower < model.ate(data.X, raised) < upper


def test_summary_reports_the_average_effect_and_its_interval(demand):
    data, model = demand
    T1 = data.X[:, 0] + 1
    summary = model.summary(data.X, T1, alpha=0.1)
    assert_allclose(summary.estimate, model.ate(data.X, T1))
    assert_allclose([summary.lower, summary.upper], model.ate_interval(data.X, T1, alpha=0.1))
    text = repr(summary)
    assert "average effect" in text and "90% lower" in text
    # The instrument diagnostics travel with the effect.
    assert summary.first_stage is model.first_stage_
    assert repr(model.first_stage_) in text
    assert "<table>" in summary._repr_html_() and "First stage" in summary._repr_html_()


# -- instrument diagnostics ---------------------------------------------------------------------


def test_an_instrument_unrelated_to_the_treatment_warns_and_names_it():
    data = make_demand(n_samples=600, rho=0.5, random_state=4, as_frame=True)
    unrelated = pd.DataFrame({"coin_flips": np.random.default_rng(0).normal(size=len(data.y))})
    with pytest.warns(WeakInstrumentWarning, match="coin_flips"):
        model = DFIVRegressor(["time", "emotion"], **FAST).fit(data.X, data.y, Z=unrelated)
    assert model.first_stage_.weak
    assert model.first_stage_.pooled_f_stat < 10


def test_the_demand_instrument_is_strong(demand):
    _, model = demand  # fitted with WeakInstrumentWarning as an error
    report = model.first_stage_
    assert not report.weak
    assert report.pooled_f_stat > 100 and report.effect_f_stat[0] > 100
    assert np.all((report.partial_rsquared >= 0) & (report.partial_rsquared <= 1))
    assert "effect index" in repr(report)


# -- a quiet notebook ------------------------------------------------------------------------------


def test_a_quiet_fit_does_not_touch_the_progress_machinery():
    # tqdm.auto prints a warning in a Jupyter kernel without ipywidgets on import (plain
    # tqdm is imported by torch itself).
    code = (
        "import sys\n"
        "from skcflo import DFIVRegressor\n"
        "from skcflo.datasets import make_demand\n"
        "data = make_demand(n_samples=200, random_state=0)\n"
        "DFIVRegressor([1, 2], max_iter=1, random_state=0).fit(data.X, data.y, Z=data.Z)\n"
        "print('tqdm.auto' in sys.modules, 'tqdm.notebook' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"], result.stdout + result.stderr

"""scikit-learn's common estimator checks.

One expected failure, the one scikit-learn grants its own ``MLPRegressor`` for
the same reason: with Adam, fitting with integer ``sample_weight`` is not
bit-for-bit equivalent to fitting on repeated rows. The float32 forward passes
of 15 weighted and 30 repeated rows round differently (1e-8 after one epoch);
Adam's normalised steps amplify that to 1e-4 over 20 epochs. The SGD
configuration below passes the check; ``tests/estimators/test_sample_weight.py``
checks the weighted head exactly against ``Ridge(sample_weight=...)``.
"""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from skcflo import CFLORegressor, DFIVRegressor, MLPBackbone

# Small networks and few epochs keep the checks fast; the defaults are
# exercised by the other tests.
SMALL = MLPBackbone(hidden_layer_sizes=(64,))
ESTIMATORS = [
    CFLORegressor(hidden_layer_sizes=(16,), max_iter=20),
    CFLORegressor(
        backbone=MLPBackbone(hidden_layer_sizes=(8, 8), activation="tanh"),
        head_update="accumulate",
        solver="sgd",
        learning_rate_init=1e-2,
        max_iter=20,
        # A fixed penalty: 'auto' picks a tiny one for the checks' 15 rows and 39
        # coefficients, and the near-interpolating head then amplifies float32
        # rounding past the weight-equivalence check's 1e-7.
        alpha=0.1,
    ),
    DFIVRegressor(
        treatment_backbone=SMALL,
        instrument_backbone=SMALL,
        max_iter=20,
        stage1_iter=2,
        covariate_iter=2,
        stage2_iter=1,
    ),
]


ADAM_WEIGHT_EQUIVALENCE = (
    "Adam amplifies float32 rounding: weighted and repeated rows agree to 1e-4, not 1e-7 "
    "(scikit-learn's MLPRegressor is exempt for the same reason; SGD passes)."
)


def expected_failed_checks(estimator):
    if isinstance(estimator, CFLORegressor) and estimator.solver == "adam":
        return {"check_sample_weight_equivalence_on_dense_data": ADAM_WEIGHT_EQUIVALENCE}
    return {}


@parametrize_with_checks(
    ESTIMATORS, xfail_strict=True, expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [CFLORegressor(), DFIVRegressor()], ids=type)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize(
    "estimator", [CFLORegressor(max_iter=5), DFIVRegressor(max_iter=2)], ids=type
)
def test_dataframe_column_names_consistency(estimator):
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)

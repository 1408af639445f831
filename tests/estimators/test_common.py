"""scikit-learn's common estimator checks, with no expected failures."""

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


@parametrize_with_checks(ESTIMATORS, xfail_strict=True)
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

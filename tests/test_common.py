"""scikit-learn's common estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from skcflo import CFLORegressor, MLPBackbone

# Small networks and few epochs keep the ~50 checks fast; the defaults are
# exercised by the other tests.
ESTIMATORS = [
    CFLORegressor(hidden_layer_sizes=(16,), max_iter=20),
    CFLORegressor(
        backbone=MLPBackbone(hidden_layer_sizes=(8, 8), activation="tanh"),
        head_update="accumulate",
        solver="sgd",
        learning_rate_init=1e-2,
        max_iter=20,
    ),
]


@parametrize_with_checks(ESTIMATORS, xfail_strict=True)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_param_validation():
    check_param_validation("CFLORegressor", CFLORegressor())


def test_dataframe_column_names_consistency():
    check_dataframe_column_names_consistency("CFLORegressor", CFLORegressor(max_iter=5))

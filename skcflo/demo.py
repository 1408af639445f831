"""Quick demonstration: CFLORegressor() beside what a user would pick instead.

Run with ``python -m skcflo.demo``. It uses data shipped with scikit-learn
(the diabetes regression set and a Friedman #1 synthetic problem), so it
needs no network access, and prints test scores and fit times of
``CFLORegressor()``, ``MLPRegressor()``, ``RidgeCV()`` and
``HistGradientBoostingRegressor()`` at their defaults, then the closed-form
head against the same network trained end to end with Adam for the same
number of epochs.
"""

import argparse
import time

from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._estimators.regressor import CFLORegressor


def _problems(random_state):
    yield "diabetes", load_diabetes(return_X_y=True)
    yield "friedman1", make_friedman1(n_samples=2000, noise=1.0, random_state=random_state)


def _models(budgets, random_state):
    yield "CFLORegressor() (defaults)", CFLORegressor(random_state=random_state)
    yield "MLPRegressor() (defaults)", MLPRegressor(random_state=random_state)
    yield "RidgeCV() (defaults)", RidgeCV()
    yield (
        "HistGradientBoosting (defaults)",
        HistGradientBoostingRegressor(random_state=random_state),
    )
    for max_iter in budgets:
        # Equal epochs, no early stopping, the network's own features: the head's effect.
        shared = dict(max_iter=max_iter, random_state=random_state, early_stopping=False, alpha=0.1)
        shared["include_inputs"] = False
        yield f"CFLO head, {max_iter} epochs", CFLORegressor(**shared)
        yield (
            f"same net, Adam end to end, {max_iter} ep.",
            CFLORegressor(head_update="gradient", refit_head=False, **shared),
        )


def run(budgets=(10,), random_state=0):
    """Fit every model on every problem; return rows of results.

    Parameters
    ----------
    budgets : tuple of int, default=(10,)
        Epoch budgets of the head-against-Adam comparison.
    random_state : int, default=0

    Examples
    --------
    >>> rows = run(budgets=(2,))
    >>> sorted(rows[0])
    ['fit_seconds', 'model', 'problem', 'test_mse', 'test_r2']
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rows = []
    for problem, (X, y) in _problems(random_state):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=random_state
        )
        for name, model in _models(budgets, random_state):
            pipeline = make_pipeline(StandardScaler(), model)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                pipeline.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            predictions = pipeline.predict(X_test)
            rows.append(
                {
                    "problem": problem,
                    "model": name,
                    "test_mse": mean_squared_error(y_test, predictions),
                    "test_r2": r2_score(y_test, predictions),
                    "fit_seconds": seconds,
                }
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=[10], help="epochs of the head-vs-Adam rows"
    )
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    rows = run(tuple(args.budgets), args.random_state)
    print(f"{'problem':<10} {'model':<38} {'test MSE':>10} {'test R2':>8} {'fit s':>7}")
    for row in rows:
        print(
            f"{row['problem']:<10} {row['model']:<38} {row['test_mse']:>10.3f} "
            f"{row['test_r2']:>8.3f} {row['fit_seconds']:>7.2f}"
        )
    print("Inputs standardised; 25% of each data set held out for the test scores.")


if __name__ == "__main__":
    main()

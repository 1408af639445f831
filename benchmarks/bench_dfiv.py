"""DFIV on the demand and dSprites-style designs: test MSE and fit time.

Compares, on raw (unscaled) data and with default parameters:

* ``DFIVRegressor`` (instrumental-variable regression with learned features);
* a naive ``CFLORegressor`` of the outcome on treatment and covariates, which
  ignores the instrument and is biased by the confounding;
* linear two-stage least squares (2SLS).

The metric is the mean squared error against the true structural function on
the noise-free test set (``make_demand_test`` / ``make_dsprites_test``).

Run::

    python benchmarks/bench_dfiv.py                 # the full table (long)
    python benchmarks/bench_dfiv.py --quick         # n=5000, rho=0.5, 2 seeds
    python benchmarks/bench_dfiv.py --dsprites      # also the image design
"""

import argparse
import time
import warnings

import numpy as np
from _provenance import print_provenance
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor, DFIVRegressor
from skcflo.datasets import make_demand, make_demand_test, make_dsprites, make_dsprites_test


class TwoStageLeastSquares:
    """Linear 2SLS: treatment on (instruments, covariates), outcome on fitted values."""

    def __init__(self, covariates):
        self.covariates = covariates

    def fit(self, X, y, Z):
        mask = np.zeros(X.shape[1], dtype=bool)
        mask[self.covariates] = True
        first_stage_inputs = np.hstack([Z, X[:, mask]])
        fitted = LinearRegression().fit(first_stage_inputs, X[:, ~mask]).predict(first_stage_inputs)
        self.mask_ = mask
        self.second_ = LinearRegression().fit(np.hstack([fitted, X[:, mask]]), y)
        return self

    def predict(self, X):
        return self.second_.predict(np.hstack([X[:, ~self.mask_], X[:, self.mask_]]))


def _methods(covariates, seed):
    yield "DFIVRegressor", lambda: DFIVRegressor(covariates=covariates, random_state=seed), True
    yield (
        "naive CFLORegressor",
        lambda: make_pipeline(StandardScaler(), CFLORegressor(random_state=seed)),
        False,
    )
    yield "2SLS (linear)", lambda: TwoStageLeastSquares(covariates or []), True


def _evaluate(make, uses_instrument, train, test):
    model = make()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if uses_instrument:
            model.fit(train.X, train.y, train.Z)
        else:
            model.fit(train.X, train.y)
    seconds = time.perf_counter() - start
    error = float(np.mean((model.predict(test.X) - test.y) ** 2))
    return error, seconds


def run_design(name, make_train, test, covariates, settings, seeds):
    rows = []
    for setting in settings:
        results = {}
        for seed in seeds:
            train = make_train(setting, seed)
            for method, make, uses_instrument in _methods(covariates, seed):
                results.setdefault(method, []).append(_evaluate(make, uses_instrument, train, test))
        for method, values in results.items():
            errors = np.array([v[0] for v in values])
            times = np.array([v[1] for v in values])
            rows.append((name, setting, method, errors, times))
            _print_row(rows[-1])
    return rows


def _print_row(row):
    name, setting, method, errors, times = row
    print(
        f"{name:<9} {setting:<18} {method:<22} {errors.mean():>10.1f} {np.median(errors):>10.1f} "
        f"{errors.min():>9.1f} {errors.max():>9.1f} {times.mean():>7.2f}",
        flush=True,
    )


def _header(args):
    print_provenance()
    print(
        f"{'design':<9} {'setting':<18} {'method':<22} {'mean MSE':>10} {'median':>10} "
        f"{'min':>9} {'max':>9} {'fit s':>7}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n=5000, rho=0.5, 2 seeds")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dsprites", action="store_true", help="also the image design")
    args = parser.parse_args(argv)
    _header(args)
    if args.quick:
        settings, seeds = [(5000, 0.5)], range(2)
    else:
        settings = [(n, rho) for n in (1000, 5000, 10000) for rho in (0.1, 0.5, 0.9)]
        seeds = range(args.seeds)
    demand_test = make_demand_test()
    run_design(
        "demand",
        lambda s, seed: make_demand(n_samples=s[0], rho=s[1], random_state=seed),
        demand_test,
        [1, 2],
        [_Setting(n, rho) for n, rho in settings],
        seeds,
    )
    if args.dsprites:
        run_design(
            "dsprites",
            lambda s, seed: make_dsprites(n_samples=s.n, random_state=seed),
            make_dsprites_test(),
            None,
            [_Setting(5000, None)],
            range(min(len(seeds), 3)),
        )


class _Setting(tuple):
    """(n, rho) that prints as 'n=5000 rho=0.5'."""

    def __new__(cls, n, rho):
        return super().__new__(cls, (n, rho))

    @property
    def n(self):
        return self[0]

    def __format__(self, spec):
        text = f"n={self[0]}" + ("" if self[1] is None else f" rho={self[1]}")
        return format(text, spec)


if __name__ == "__main__":
    main()

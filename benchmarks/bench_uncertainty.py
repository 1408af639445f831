"""Calibration of ``predict(return_std=True)`` and the effect of ``alpha='auto'``.

Friedman #1 with known Gaussian noise; inputs standardised. For each noise
level and seed, the share of held-out targets inside the central interval
``mean ± z * std`` is printed for nominal levels 50%, 80%, 90% and 95%, with
the noise estimated on the training residuals (default) or on the early-stopping
validation split. A second table compares ``alpha=0.1`` (the default) with
``alpha='auto'`` on test MSE, each without and with early stopping: without it
'auto' chooses by GCV on the training rows, with it the final head's penalty
by the validation rows' error.

Run::

    python benchmarks/bench_uncertainty.py            # 3 seeds, about 5 minutes
    python benchmarks/bench_uncertainty.py --seeds 1  # quicker
"""

import argparse

import numpy as np
import torch
from _provenance import print_provenance
from _settings import FORMER_DEFAULTS
from scipy.stats import norm
from sklearn.datasets import make_friedman1
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor

LEVELS = (0.5, 0.8, 0.9, 0.95)
NOISES = (0.5, 1.0, 2.0)


def _data(noise, seed, n_train=3000, n_test=5000):
    X, y = make_friedman1(n_samples=n_train, noise=noise, random_state=seed)
    X_test, y_test = make_friedman1(n_samples=n_test, noise=noise, random_state=seed + 1000)
    scaler = StandardScaler().fit(X)
    return scaler.transform(X), y, scaler.transform(X_test), y_test


def coverage(model, X_test, y_test):
    mean, std = model.predict(X_test, return_std=True)
    return [np.mean(np.abs(y_test - mean) <= norm.ppf(0.5 + level / 2) * std) for level in LEVELS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print_provenance()
    print("# Friedman #1, 3000 training / 5000 test rows; coverage = mean over seeds\n")
    header = " ".join(f"{int(level * 100):>5}%" for level in LEVELS)
    print(f"{'noise sd':>8} {'noise estimated on':<26} {header} {'est. sd':>8}")
    mse_rows = []
    for noise in NOISES:
        for label, params in (
            ("training residuals", {}),
            ("validation (early stop)", {"early_stopping": True}),
        ):
            covered, sds = [], []
            for seed in range(args.seeds):
                X, y, X_test, y_test = _data(noise, seed)
                settings = {**FORMER_DEFAULTS, **params}
                model = CFLORegressor(random_state=seed, **settings).fit(X, y)
                covered.append(coverage(model, X_test, y_test))
                sds.append(np.sqrt(model.noise_variance_))
            row = " ".join(f"{value:>6.3f}" for value in np.mean(covered, axis=0))
            print(f"{noise:>8} {label:<26} {row} {np.mean(sds):>8.3f}", flush=True)
        for alpha in (0.1, "auto"):
            for early_stopping in (False, True):
                errors, chosen = [], []
                for seed in range(args.seeds):
                    X, y, X_test, y_test = _data(noise, seed)
                    settings = {**FORMER_DEFAULTS, "alpha": alpha}
                    settings["early_stopping"] = early_stopping
                    model = CFLORegressor(random_state=seed, **settings).fit(X, y)
                    errors.append(np.mean((model.predict(X_test) - y_test) ** 2))
                    chosen.append(model.alpha_)
                row = (noise, alpha, early_stopping, np.mean(errors), np.median(chosen))
                mse_rows.append(row)
    columns = f"{'noise sd':>8} {'alpha':<6} {'early stop':<10} {'test MSE':>9}"
    print(f"\n{columns} {'median alpha_':>14}")
    for noise, alpha, early_stopping, error, chosen in mse_rows:
        print(f"{noise:>8} {alpha!s:<6} {early_stopping!s:<10} {error:>9.3f} {chosen:>14.4g}")


if __name__ == "__main__":
    main()

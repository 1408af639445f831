"""Coverage of DFIVRegressor's effect intervals over replications of the demand design.

For each design (n, rho) and replication (a fresh sample and seed), a default
``DFIVRegressor(covariates=[1, 2])`` is fitted and scored on:

* the average effect of +1 price over the sample's rows (``ate`` and
  ``ate_interval``), against the truth ``mean(s psi(t) - 2)``: bias (in % of
  |effect|), coverage of the nominal 90% and 95% intervals, mean 90% width
  (in % of |effect|);
* the effect of +1 price at each point of the 2,800-point test grid
  (``effect`` and ``effect_interval``), against ``s psi(t) - 2``: MSE and
  pointwise coverage of the 90% and 95% intervals;
* the level of the structural function on the grid (``predict``): MSE.

A statistical claim needs many replications: the default is 50 per design.
Targets (issue 18): coverage within 5 points of nominal; 90% ATE width at
most 30% of |effect| at n=2000; ATE bias at most 3%; effect MSE at most 3 at
n=5000, rho=0.5 (econml's best, told the effect is linear in price: 3.2);
level MSE no worse than 122-129 (n=5000, rho=0.5).

With ``--sweep`` it instead varies the training (``max_iter`` 10 to 100,
with and without early stopping, and a wider treatment network) at n=2000,
rho=0.5: runaway training shows in the level and effect MSE.

Run::

    python benchmarks/bench_iv_inference.py                    # 50 reps, 4 designs
    python benchmarks/bench_iv_inference.py --quick            # 8 reps, n=2000 only
    python benchmarks/bench_iv_inference.py --jobs 2           # replications in parallel
    python benchmarks/bench_iv_inference.py --sweep --reps 10 --jobs 2
    python benchmarks/bench_iv_inference.py --peers --reps 10 --jobs 2   # needs .[peers]

``--peers`` fits econml's ``DMLIV()`` (defaults: its effect is linear in price
with coefficients linear in the covariates) on the same replications at
rho=0.5: average-effect bias, effect MSE on the grid and fit time. Its
intervals need a bootstrap of every fit and are left out.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _provenance import print_provenance
from joblib import Parallel, delayed

from skcflo import DFIVRegressor, MLPBackbone
from skcflo.datasets import demand_psi, make_demand, make_demand_test

LEVELS = (0.90, 0.95)


def _true_effect(X):
    """The effect of +1 price on h(p, t, s) = 100 + (10 + p) s psi(t) - 2p."""
    return X[:, 2] * demand_psi(X[:, 1]) - 2.0


def replicate(n_samples, rho, seed, params):
    torch.set_num_threads(1)
    data = make_demand(n_samples=n_samples, rho=rho, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DFIVRegressor(covariates=[1, 2], random_state=seed, **params)
        model.fit(data.X, data.y, Z=data.Z)
    seconds = time.perf_counter() - start
    test = make_demand_test()
    raised_sample, raised_grid = data.X[:, 0] + 1, test.X[:, 0] + 1
    truth_ate = float(_true_effect(data.X).mean())
    truth_grid = _true_effect(test.X)
    row = {
        "seconds": seconds,
        "truth": truth_ate,
        "ate": float(model.ate(data.X, raised_sample)),
        "level_mse": float(np.mean((model.predict(test.X) - test.y) ** 2)),
        "effect_mse": float(np.mean((model.effect(test.X, raised_grid) - truth_grid) ** 2)),
        "first_stage_f": model.first_stage_.pooled_f_stat,
        "epochs": model.n_iter_,
    }
    for level in LEVELS:
        lower, upper = model.ate_interval(data.X, raised_sample, alpha=1 - level)
        row[f"ate_cover_{level}"] = float(lower <= truth_ate <= upper)
        row[f"ate_width_{level}"] = float(upper - lower)
        grid_lower, grid_upper = model.effect_interval(test.X, raised_grid, alpha=1 - level)
        row[f"grid_cover_{level}"] = float(
            np.mean((grid_lower <= truth_grid) & (truth_grid <= grid_upper))
        )
    return row


def summarise(rows):
    mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    effect = abs(mean["truth"])
    bias = np.mean([row["ate"] - row["truth"] for row in rows])
    return {
        "ATE bias %": 100 * bias / effect,
        "ATE cover 90": 100 * mean["ate_cover_0.9"],
        "ATE cover 95": 100 * mean["ate_cover_0.95"],
        "ATE width90 %": 100 * mean["ate_width_0.9"] / effect,
        "grid cover 90": 100 * mean["grid_cover_0.9"],
        "grid cover 95": 100 * mean["grid_cover_0.95"],
        "effect MSE": mean["effect_mse"],
        "level MSE": mean["level_mse"],
        "first-stage F": float(np.median([row["first_stage_f"] for row in rows])),
        "epochs": mean["epochs"],
        "fit s": mean["seconds"],
    }


WIDE = {"treatment_backbone": MLPBackbone(hidden_layer_sizes=(64, 64))}
SWEEP = {
    "max_iter=10 (default: guarded by the cross-fitted IV loss)": {},
    "max_iter=30": {"max_iter": 30},
    "max_iter=100": {"max_iter": 100},
    "max_iter=10, no guard (early_stopping=False)": {"early_stopping": False},
    "max_iter=100, no guard": {"max_iter": 100, "early_stopping": False},
    "max_iter=100, held-out rows (early_stopping=True)": {"max_iter": 100, "early_stopping": True},
    "treatment (64, 64)": WIDE,
    "treatment (64, 64), max_iter=100": {**WIDE, "max_iter": 100},
    "treatment (64, 64), no guard": {**WIDE, "early_stopping": False},
}


def _print_row(label, summary, columns):
    values = " | ".join(f"{summary[c]:.3g}" for c in columns)
    print(f"| {label} | {values} |", flush=True)


def sweep(reps, jobs):
    """Level and effect MSE against the training's length and the treatment network's width."""
    columns = ["level MSE", "effect MSE", "ATE bias %", "epochs", "fit s"]
    print("| n=2000, rho=0.5 | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, params in SWEEP.items():
        rows = Parallel(n_jobs=jobs)(
            delayed(replicate)(2000, 0.5, seed, params) for seed in range(reps)
        )
        _print_row(label, summarise(rows), columns)


def replicate_econml(n_samples, rho, seed):
    """econml's DMLIV at its defaults, the effect linear in price (the peer of issue 18)."""
    from econml.iv.dml import DMLIV

    torch.set_num_threads(1)
    data = make_demand(n_samples=n_samples, rho=rho, random_state=seed)
    price, covariates = data.X[:, 0], data.X[:, 1:]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DMLIV(random_state=seed).fit(data.y, price, Z=data.Z, X=covariates)
    seconds = time.perf_counter() - start
    test = make_demand_test()
    truth_ate = float(_true_effect(data.X).mean())
    grid_effect = model.effect(test.X[:, 1:], T0=test.X[:, 0], T1=test.X[:, 0] + 1)
    return {
        "ATE bias %": 100 * (float(model.ate(covariates)) - truth_ate) / abs(truth_ate),
        "effect MSE": float(np.mean((grid_effect - _true_effect(test.X)) ** 2)),
        "fit s": seconds,
    }


def peers(sizes, reps, jobs):
    """DFIVRegressor() beside econml's DMLIV() on the same replications (rho=0.5)."""
    columns = ["ATE bias %", "effect MSE", "fit s"]
    print("| n | method | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for n_samples in sizes:
        dfiv = Parallel(n_jobs=jobs)(
            delayed(replicate)(n_samples, 0.5, seed, {}) for seed in range(reps)
        )
        econml = Parallel(n_jobs=jobs)(
            delayed(replicate_econml)(n_samples, 0.5, seed) for seed in range(reps)
        )
        dfiv_summary = summarise(dfiv)
        econml_summary = {c: float(np.mean([row[c] for row in econml])) for c in columns}
        _print_row(f"{n_samples} | DFIVRegressor(covariates=[1, 2])", dfiv_summary, columns)
        _print_row(f"{n_samples} | econml DMLIV()", econml_summary, columns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 replications, n=2000 only")
    parser.add_argument("--reps", type=int, default=None, help="replications per design")
    parser.add_argument("--jobs", type=int, default=1, help="replications run in parallel")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--sweep", action="store_true", help="vary max_iter and width instead")
    parser.add_argument("--peers", action="store_true", help="beside econml's DMLIV (rho=0.5)")
    args = parser.parse_args(argv)
    print_provenance()
    reps = args.reps or (8 if args.quick else 50)
    if args.sweep:
        print(f"# DFIVRegressor(covariates=[1, 2]); {reps} replications per setting")
        sweep(reps, args.jobs)
        return
    sizes = args.sizes or ([2000] if args.quick else [2000, 5000])
    if args.peers:
        print(f"# {reps} replications per design; econml's DMLIV at its defaults")
        peers(sizes, reps, args.jobs)
        return
    print(f"# DFIVRegressor(covariates=[1, 2]) defaults; {reps} replications per design")
    columns = None
    for n_samples in sizes:
        for rho in args.rhos:
            rows = Parallel(n_jobs=args.jobs)(
                delayed(replicate)(n_samples, rho, seed, {}) for seed in range(reps)
            )
            summary = summarise(rows)
            if columns is None:
                columns = [c for c in summary if c != "epochs"]
                print("| n | rho | " + " | ".join(columns) + " |")
                print("|---|---|" + "---|" * len(columns))
            _print_row(f"{n_samples} | {rho}", summary, columns)


if __name__ == "__main__":
    main()

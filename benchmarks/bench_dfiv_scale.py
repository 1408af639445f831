"""DFIV on large demand samples: full batches against mini-batches, time and memory.

Issue 18 asks the mini-batch path to work at default settings where full
batches get slow: at n=100,000, ``DFIVRegressor(batch_size=1000)`` with a
level MSE no worse than the full-batch default's, in less time; at
n=1,000,000 a fit within 10 minutes and 4 GB.

Every fit runs in a fresh process, so that its peak resident memory (the
process's high-water mark: the interpreter, torch, the data and the fit) is
its own. Fits of the two settings alternate seed by seed. Reported: fit
seconds, peak memory, epochs run (the guard may stop early), the level MSE of
the structural function on the 2,800-point test grid, the MSE of the effect of
+1 price there, and the bias of the average effect of +1 price over the
sample (in % of |effect|).

Run::

    python benchmarks/bench_dfiv_scale.py                 # n=1e5 (3 seeds), n=1e6 (1 seed)
    python benchmarks/bench_dfiv_scale.py --quick         # n=2e4, 1 seed each
"""

import argparse
import multiprocessing
import resource
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _provenance import print_provenance

SETTINGS = {"full batches (default)": {}, "batch_size=1000": {"batch_size": 1000}}


def fit_once(n_samples, seed, params):
    """One fit in this (fresh) process: its measurements."""
    from skcflo import DFIVRegressor
    from skcflo.datasets import demand_psi, make_demand, make_demand_test

    data = make_demand(n_samples=n_samples, rho=0.5, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DFIVRegressor(covariates=[1, 2], random_state=seed, **params)
        model.fit(data.X, data.y, Z=data.Z)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    test = make_demand_test()

    def true_effect(X):
        return X[:, 2] * demand_psi(X[:, 1]) - 2.0

    rows = data.X[:10_000]
    truth = float(true_effect(rows).mean())
    return {
        "fit s": seconds,
        "peak GB": peak_gb,
        "epochs": model.n_iter_,
        "level MSE": float(np.mean((model.predict(test.X) - test.y) ** 2)),
        "effect MSE": float(
            np.mean((model.effect(test.X, test.X[:, 0] + 1) - true_effect(test.X)) ** 2)
        ),
        "ATE bias %": 100 * (float(model.ate(rows, rows[:, 0] + 1)) - truth) / abs(truth),
    }


def in_fresh_process(n_samples, seed, params):
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fit_once, n_samples, seed, params).result()


COLUMNS = ["fit s", "peak GB", "epochs", "level MSE", "effect MSE", "ATE bias %"]


def report(n_samples, label, rows):
    mean = {c: np.mean([row[c] for row in rows]) for c in COLUMNS}
    values = " | ".join(f"{mean[c]:.3g}" for c in COLUMNS)
    print(f"| {n_samples:,} | {label} | {len(rows)} | {values} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n=20,000, one seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds at n=100,000")
    parser.add_argument("--skip-million", action="store_true", help="no n=1,000,000 fit")
    args = parser.parse_args(argv)
    print_provenance()
    print("# DFIVRegressor(covariates=[1, 2], **setting); demand, rho=0.5; a process per fit")
    print("| n | setting | seeds | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    n_samples, seeds = (20_000, 1) if args.quick else (100_000, args.seeds)
    results = {label: [] for label in SETTINGS}
    for seed in range(seeds):
        for label, params in SETTINGS.items():
            results[label].append(in_fresh_process(n_samples, seed, params))
    for label, rows in results.items():
        report(n_samples, label, rows)
    if not (args.quick or args.skip_million):
        label = "batch_size=1000"
        report(1_000_000, label, [in_fresh_process(1_000_000, 0, SETTINGS[label])])


if __name__ == "__main__":
    main()

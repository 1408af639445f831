"""Prediction time of ``CFLORegressor.predict`` against ``MLPRegressor.predict``.

Both models have the same hidden layers ((100,), MLPRegressor's default, and
(512, 512)), CFLO with and without its default ``include_inputs=True`` (the
inputs concatenated beside the features: the same network as MLPRegressor's
only without), and are fitted for a few epochs on a synthetic problem with 20
inputs; only ``predict`` is timed, on one row and on 1000 rows of float64
input, as a user calls it. CFLO predicts through a float64 copy of its network
(so that a row's prediction does not depend on the rows beside it); the copy is
made on the first call and kept. Timing is paired and interleaved: each round
times a block of calls of one model, then the other, alternating which goes
first; the table gives the median seconds per call and the median of the
per-round ratios. Torch and numpy's BLAS each run on one thread (``--threads``).

Target (issue 19): CFLO at most 1.5x MLPRegressor, for one row and 1000 rows.

Usage
-----
From the repository root::

    python benchmarks/bench_predict.py
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from _provenance import print_provenance
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from skcflo import CFLORegressor


def fitted_pair(hidden, include_inputs, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(2000, 20))
    y = X[:, 0] + np.sin(X[:, 1]) + 0.1 * rng.normal(size=2000)
    cflo = CFLORegressor(
        hidden_layer_sizes=hidden, include_inputs=include_inputs, max_iter=2, random_state=seed
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(hidden_layer_sizes=hidden, max_iter=5, random_state=seed).fit(X, y)
    return cflo, mlp, X


def seconds_per_call(predict, X, calls):
    start = time.perf_counter()
    for _ in range(calls):
        predict(X)
    return (time.perf_counter() - start) / calls


def paired_times(cflo, mlp, X, calls, rounds):
    """Median seconds per call of each model and the median per-round ratio."""
    cflo.predict(X), mlp.predict(X)  # first calls: CFLO's float64 copy, caches
    pairs = []
    for round_index in range(rounds):
        order = [cflo, mlp] if round_index % 2 == 0 else [mlp, cflo]
        times = {id(m): seconds_per_call(m.predict, X, calls) for m in order}
        pairs.append((times[id(cflo)], times[id(mlp)]))
    ratios = [c / m for c, m in pairs]
    return (
        statistics.median(c for c, _ in pairs),
        statistics.median(m for _, m in pairs),
        statistics.median(ratios),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print_provenance()
    print(
        "| hidden layers | inputs in head | rows | CFLORegressor (ms) | MLPRegressor (ms) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    with threadpool_limits(args.threads):
        for hidden in [(100,), (512, 512)]:
            for include_inputs in (True, False):
                cflo, mlp, X = fitted_pair(hidden, include_inputs)
                for rows, calls in [(1, 400), (1000, 20)]:
                    c, m, ratio = paired_times(cflo, mlp, X[:rows], calls, args.rounds)
                    cells = [hidden, include_inputs, rows, f"{c * 1e3:.3f}", f"{m * 1e3:.3f}"]
                    print("| " + " | ".join(map(str, cells)) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()

"""Accuracy and time of the per-batch proximal solve in float32, refined float32 and float64.

``skcflo._ridge.head.solve_proximal_batch`` solves a mini-batch's proximal ridge
system in one of three ways, chosen by the conditioning bound
``1 + sum_ij u_ij^2 / a_j`` of the batch (``head.FLOAT32_CONDITION_LIMIT``,
``head.REFINED_FLOAT32_CONDITION_LIMIT``):

* ``float32``: a float32 factorisation and solve (CPU float32 features);
* ``refined``: the same, then one step of iterative refinement, the residual
  in float64 and the correction from the float32 factor;
* ``float64``: the float64 solve (the row-space form for wide batches, the
  normal equations with the jitter fallbacks for tall ones).

For batch shapes of the benchmarks (rows B x features d: MLP heads of 64 to
1024 features, FNO batches of 1280 and 5120 grid rows) and ReLU features
scaled to given bounds, this prints every path's relative error against the
float64 minimiser (max abs difference over max abs weight) and its median time
per solve from the features (the intercept column appended, as in training),
timed in interleaved rounds in one process, with the ratio to the float64
path's time in the same round; ``auto`` is ``solve_proximal_batch``, which
also computes the bound and picks a path (the "auto picks" column). The
penalties are ``alpha=0.1, proximal_lambda=0.1`` (the estimator's defaults).

Usage, from the repository root::

    python benchmarks/bench_batch_solve.py            # a minute or two
    python benchmarks/bench_batch_solve.py --rounds 5 --shapes 200x100
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

# Benchmark the working tree this script sits in, whatever skcflo is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _provenance import print_provenance  # noqa: E402

from skcflo._ridge import head  # noqa: E402

ALPHA, LAM = 0.1, 0.1
SHAPES = ("32x64", "256x64", "200x100", "32x256", "256x256", "32x1024", "256x1024", "1280x32")
SHAPES += ("5120x32",)
BOUNDS = (1e4, 1e5, 5e5, 1e6)


def batch(n_rows, n_features, bound, seed=0):
    """ReLU features (a shared mean direction, as trained features have) at ``bound``."""
    rng = np.random.default_rng(seed)
    phi = np.maximum(rng.normal(size=(n_rows, n_features)) + 0.5, 0.0)
    # a_j = B (alpha + lam) for the features and B lam for the intercept, whose
    # column of ones adds B / (B lam) = 1 / lam to the bound.
    features_part = (phi**2).sum() / (n_rows * (ALPHA + LAM))
    scale = np.sqrt(max(bound - 1.0 - 1.0 / LAM, 1.0) / features_part)
    features = torch.from_numpy((scale * phi).astype(np.float32))
    targets = torch.from_numpy(rng.normal(size=(n_rows, 1)))
    previous = torch.from_numpy(0.1 * rng.normal(size=(n_features + 1, 1)))
    return features, targets, previous


def paths(features, targets, previous):
    """name -> callable giving the float64 head of one path, from the features."""

    def rows():
        return head.augment(features, dtype=torch.float32)

    def float64():
        return head._solve_batch_in_float64(rows(), features, targets, ALPHA, LAM, previous)

    return {
        "float32": lambda: head._solve_batch_rows(rows(), targets, ALPHA, LAM, previous, True),
        "refined": lambda: head._solve_batch_rows(
            rows(), targets, ALPHA, LAM, previous, True, True
        ),
        "float64": float64,
        "auto": lambda: head.solve_proximal_batch(features, targets, ALPHA, LAM, previous),
    }


def exact(features, targets, previous):
    """The float64 minimiser, from the normal equations in float64."""
    stats = head.RidgeStatistics.from_batch(features.double(), targets)
    return head.solve_head(stats, ALPHA, LAM, previous)


def measure(methods, rounds, calls):
    """Median seconds per call and median ratio to 'float64' in the same round."""
    times = {name: [] for name in methods}
    for round_index in range(rounds + 1):
        order = list(methods) if round_index % 2 == 0 else list(methods)[::-1]
        for name in order:
            start = time.perf_counter()
            for _ in range(calls):
                methods[name]()
            if round_index:  # the first round warms up
                times[name].append((time.perf_counter() - start) / calls)
    base = np.array(times["float64"])
    return {
        name: (statistics.median(t), float(np.median(np.array(t) / base)))
        for name, t in times.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), help="BxD, e.g. 200x100")
    parser.add_argument("--bounds", nargs="+", type=float, default=list(BOUNDS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print_provenance()
    print(f"# alpha={ALPHA}, proximal_lambda={LAM}; rounds {args.rounds}; time: median per solve")
    print("| B x d | bound | auto picks | path | relative error | µs | x float64 |")
    print("|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        n_rows, n_features = (int(part) for part in shape.split("x"))
        for bound in args.bounds:
            features, targets, previous = batch(n_rows, n_features, bound)
            rows = head.augment(features, dtype=torch.float32)
            actual = head._conditioning_bound(rows, ALPHA, LAM)
            picks = head._batch_precision(rows, ALPHA, LAM)
            reference = exact(features, targets, previous)
            methods = paths(features, targets, previous)
            calls = max(5, int(2e7 / (n_rows * (n_features + 1) * min(n_rows, n_features + 1))))
            timing = measure(methods, args.rounds, min(calls, 300))
            for name, run in methods.items():
                weights = run()  # None: the float32 factorisation failed (float64 would follow)
                if weights is None:
                    error = float("nan")
                else:
                    error = float((weights - reference).abs().max() / reference.abs().max())
                seconds, ratio = timing[name]
                print(
                    f"| {shape} | {actual:.2g} | {picks} | {name} | {error:.1e} | "
                    f"{1e6 * seconds:.0f} | {ratio:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

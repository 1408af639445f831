"""Neural operators: CFLO against end-to-end Adam and SGD on Burgers and Darcy.

The same Fourier neural operator backbone (``FNOBackbone1d`` / ``FNOBackbone2d``)
is trained with the closed-form head (proximal and accumulate updates) and,
as the baseline, end to end with the head as an ordinary layer
(``head_update='gradient'``, Adam or SGD). The metric is the relative L2
error of the FNO papers (``skcflo.datasets.relative_l2_error``) on held-out
samples, after several epoch budgets, with the mean wall time of a fit.
Each budget is a separate fit from the same seed (same initial network and
batch order), so the rows of one seed share their beginning.

Run::

    python benchmarks/bench_operators.py --quick     # Burgers only, small: a few minutes
    python benchmarks/bench_operators.py             # Burgers and Darcy, 3 seeds
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np
import sklearn
import torch

from skcflo import CFLORegressor, FNOBackbone1d, FNOBackbone2d
from skcflo.datasets import make_burgers, make_darcy, relative_l2_error


def _problems(quick):
    yield (
        "burgers",
        lambda seed: make_burgers(
            n_samples=300 if quick else 1000, resolution=64, random_state=seed
        ),
        FNOBackbone1d(modes=12, width=24, n_layers=3, n_features_out=32),
    )
    if not quick:
        yield (
            "darcy",
            lambda seed: make_darcy(n_samples=500, resolution=16, random_state=seed),
            FNOBackbone2d(modes=6, width=16, n_layers=3, n_features_out=32),
        )


def _methods():
    yield "CFLO proximal", {"head_update": "proximal"}
    yield "CFLO accumulate", {"head_update": "accumulate"}
    yield "FNO, Adam", {"head_update": "gradient", "refit_head": False}
    yield (
        "FNO, SGD",
        {"head_update": "gradient", "refit_head": False, "solver": "sgd"},
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds or (2 if args.quick else 3)
    budgets = args.epochs or ([2, 10] if args.quick else [2, 10, 30])
    print(f"# command: python {' '.join(sys.argv)}")
    print(f"# date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}, scikit-learn {sklearn.__version__}"
    )
    print(f"# seeds: {seeds}; 80/20 split; batch size 20; learning rate 1e-3 for all")
    print(f"{'problem':<8} {'epochs':>6} {'method':<16} {'rel. L2 (mean ± std)':>22} {'fit s':>7}")
    for name, make, backbone in _problems(args.quick):
        data = {seed: make(seed) for seed in range(seeds)}
        for epochs in budgets:
            for method, params in _methods():
                errors, seconds = [], []
                for seed, bunch in data.items():
                    n_train = int(0.8 * len(bunch.X))
                    model = CFLORegressor(
                        backbone=backbone,
                        max_iter=epochs,
                        batch_size=20,
                        learning_rate_init=1e-3,
                        random_state=seed,
                        device="cpu",
                        **params,
                    )
                    start = time.perf_counter()
                    model.fit(bunch.X[:n_train], bunch.y[:n_train])
                    seconds.append(time.perf_counter() - start)
                    errors.append(
                        relative_l2_error(bunch.y[n_train:], model.predict(bunch.X[n_train:]))
                    )
                print(
                    f"{name:<8} {epochs:>6} {method:<16} "
                    f"{np.mean(errors):>13.4f} ± {np.std(errors):<6.4f} {np.mean(seconds):>7.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

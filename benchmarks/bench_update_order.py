"""Per-batch schedules of the head: test error against rows per head coefficient.

``update_order='auto'`` (``CFLORegressor``'s default) fits each mini-batch's
head before the backbone step when the batch has at least
``HEAD_FIRST_MIN_ROWS_PER_COEFFICIENT`` rows per head coefficient, and after it
(the CFLO paper's Algorithm 1) otherwise. This script measures where the
crossover lies: the two tabular tasks of ``bench_convergence.py`` (Friedman #1
with noise 1, and its three-output problem), the default MLP (100 features,
101 head coefficients), the closed-form family's settings of that benchmark,
100 epochs, and batch sizes from 1 to 20 rows per coefficient. It prints the
test MSE (mean ± std over seeds) of per-batch schedules (``--schedules``, by
default all), their ratios to the paper's order and the order ``'auto'`` picks:

* backbone first (the paper's order, features recomputed after the step), the
  head updated on every batch; always run, the reference of the ratios;
* head first, on every batch;
* every 4th batch: backbone first with ``head_update_interval=4``;
* reused features: backbone first with ``recompute_features=False``.

Errors only, no timings: it can share the machine.

A ridge fit on ``r`` rows with ``d + 1`` coefficients absorbs about
``(d + 1) / r`` of the residual (the trace of its hat matrix over the rows), so
the head-first step sees shrunken, partly noise-fitted residuals when ``r`` is
small; that is the effect measured here.

Usage, from the repository root::

    python benchmarks/bench_update_order.py            # 3 seeds
    python benchmarks/bench_update_order.py --quick    # 1 seed, 30 epochs
"""

import argparse
import os
import sys
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

# Benchmark the working tree this script sits in, whatever skcflo is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402
from bench_convergence import make_tasks  # noqa: E402

from skcflo import CFLORegressor  # noqa: E402
from skcflo._training.head_updates import resolve_update_order  # noqa: E402

BASELINE = "backbone first"
SCHEDULES = {
    BASELINE: {"update_order": "backbone_first"},
    "head first": {"update_order": "head_first"},
    "every 4th batch": {"update_order": "backbone_first", "head_update_interval": 4},
    "reused features": {"update_order": "backbone_first", "recompute_features": False},
}
BATCH_SIZES = (100, 200, 500, 1000, 2000)


def held_out_mse(task, schedule, batch_size, seed, epochs):
    """Test MSE of one fit with the per-batch ``schedule``, and its head's coefficients."""
    X, y = task.make_data(seed)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    model = CFLORegressor(
        **{**FORMER_DEFAULTS, **task.settings["cflo"]},
        **SCHEDULES[schedule],
        batch_size=batch_size,
        max_iter=epochs,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(X_train), y_train)
    predictions = model.predict(scaler.transform(X_test)).reshape(y_test.shape)
    n_coefficients = model.coef_.shape[-1] + 1
    return float(np.mean((predictions - y_test) ** 2)), n_coefficients


def row(task, batch_size, schedules, seeds, epochs):
    fits = [
        [held_out_mse(task, schedule, batch_size, s, epochs) for s in seeds]
        for schedule in schedules
    ]
    errors = [np.array([mse for mse, _ in runs]) for runs in fits]
    n_coefficients = fits[0][0][1]
    cells = [f"{e.mean():.4g} ± {e.std():.2g}" for e in errors]
    ratios = [f"{e.mean() / errors[0].mean():.3f}" for e in errors[1:]]
    auto = resolve_update_order("auto", batch_size, n_coefficients)
    per_coefficient = f"{batch_size / n_coefficients:.1f}"
    return markdown_row([task.name, batch_size, per_coefficient, *cells, *ratios, auto])


def markdown_row(cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 30 epochs")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--tasks", nargs="+", default=["friedman1", "multioutput"])
    parser.add_argument(
        "--schedules", nargs="+", default=list(SCHEDULES)[1:], choices=list(SCHEDULES)[1:]
    )
    args = parser.parse_args(argv)
    schedules = [BASELINE, *args.schedules]
    torch.set_num_threads(1)
    seeds = range(args.seeds or (1 if args.quick else 3))
    epochs = 30 if args.quick else 100
    tasks = make_tasks(quick=False)
    print_provenance()
    print(f"# seeds: {len(seeds)}; {epochs} epochs; 80/20 split; test MSE, mean ± std over seeds")
    columns = ["task", "batch", "rows per coefficient", *schedules]
    columns += [f"{name} / {BASELINE}" for name in args.schedules] + ["'auto' order"]
    print(markdown_row(columns))
    print(markdown_row(["---"] * len(columns)))
    for name in args.tasks:
        for batch_size in BATCH_SIZES:
            print(row(tasks[name], batch_size, schedules, seeds, epochs), flush=True)


if __name__ == "__main__":
    main()

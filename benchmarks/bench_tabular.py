"""Tabular regression benchmark: CFLORegressor against end-to-end training.

Compares, on standardised tabular problems and several epoch budgets, the
test mean squared error (mean ± standard deviation over seeds) and the fit
wall time of

* ``CFLORegressor`` with its default closed-form head (``'proximal'``) and
  with the recursive least-squares head (``'accumulate'``);
* ``CFLORegressor()`` with every default (its own ``max_iter``);
* ``MLPRegressor`` with ``max_iter`` set to the epoch budget (all other
  parameters at their defaults), and ``MLPRegressor()`` with every default
  (it stops on its own, after at most 200 epochs), once as is and once with
  standardised targets (``CFLORegressor`` standardises targets internally,
  ``MLPRegressor`` does not);
* the same torch network as ``CFLORegressor`` trained end to end, the head an
  ordinary layer (``CFLORegressor(head_update='gradient',
  refit_head=False)``), with Adam and with SGD (momentum 0.9).

Every model sits in ``make_pipeline(StandardScaler(), model)``. The torch
models at a budget use the estimator defaults other than the epoch budget,
except that they run every epoch on the network's own features with the fixed
penalty 0.1 (the defaults before issue 19; ``CFLORegressor()`` now stops
early, chooses its penalty and adds the inputs to the head), so Adam and
the closed-form heads share the learning rate ``1e-3``; SGD uses ``1e-2``
(``--sgd-lr``), since ``1e-3`` barely moves in a few epochs.

Usage
-----
From the repository root::

    python benchmarks/bench_tabular.py --quick       # about a minute
    python benchmarks/bench_tabular.py               # a few minutes
    python benchmarks/bench_tabular.py --markdown    # markdown table

See ``python benchmarks/bench_tabular.py --help`` for the other options
(``--epochs``, ``--seeds``, ``--problems``, ``--threads``, ``--device``).

Threads: torch and the BLAS behind scikit-learn are limited to ``--threads``
(default 1). On a small machine shared with other work, torch's intra-op
thread pool on these tiny matrices can be an order of magnitude slower than
one thread, which would swamp the comparison.
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _provenance import provenance_lines
from _settings import FORMER_DEFAULTS
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skcflo import CFLORegressor

PROBLEMS = ("friedman1", "diabetes", "multioutput")


def make_problem(name, seed, quick):
    """Inputs and targets of problem ``name``; synthetic ones drawn with ``seed``.

    * ``friedman1``: :func:`sklearn.datasets.make_friedman1`, noise 1,
      5000 rows (2000 with ``quick``).
    * ``diabetes``: :func:`sklearn.datasets.load_diabetes` (442 rows, noisy).
    * ``multioutput``: 10 Gaussian inputs, three non-linear targets with
      products, sines, a bump and an absolute value, noise 0.1; 4000 rows
      (2000 with ``quick``).
    """
    if name == "friedman1":
        return make_friedman1(n_samples=2000 if quick else 5000, noise=1.0, random_state=seed)
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    if name == "multioutput":
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(2000 if quick else 4000, 10))
        Y = np.column_stack(
            [
                np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2],
                np.exp(-(X[:, 3] ** 2)) * X[:, 4] + np.abs(X[:, 5]),
                np.tanh(X[:, 6] + X[:, 7]) * X[:, 8] + 0.5 * X[:, 9] ** 2,
            ]
        )
        return X, Y + 0.1 * rng.normal(size=Y.shape)
    raise ValueError(f"unknown problem {name!r}; choose from {PROBLEMS}")


def budget_models(epochs, seed, device, sgd_lr):
    """``(name, estimator)`` for the models trained for ``epochs`` epochs."""
    # The head compared at equal epochs, on the network's own features, with the fixed
    # penalty the budgets were measured with: CFLORegressor's defaults before issue 19
    # (its defaults now stop early, choose the penalty and add the inputs).
    torch_args = dict(FORMER_DEFAULTS, max_iter=epochs, random_state=seed, device=device)
    yield "CFLO proximal (default)", CFLORegressor(**torch_args)
    yield "CFLO accumulate", CFLORegressor(head_update="accumulate", **torch_args)
    yield "MLPRegressor(max_iter)", MLPRegressor(max_iter=epochs, random_state=seed)
    yield "torch net, Adam", CFLORegressor(head_update="gradient", refit_head=False, **torch_args)
    yield (
        "torch net, SGD",
        CFLORegressor(
            head_update="gradient",
            refit_head=False,
            solver="sgd",
            learning_rate_init=sgd_lr,
            **torch_args,
        ),
    )


def default_models(seed, device):
    """``(name, estimator)`` for the models at their own defaults (own budget)."""
    yield "CFLORegressor()", CFLORegressor(random_state=seed, device=device)
    yield "MLPRegressor()", MLPRegressor(random_state=seed)
    yield (
        "MLPRegressor(), scaled y",
        TransformedTargetRegressor(MLPRegressor(random_state=seed), transformer=StandardScaler()),
    )


def fit_score(model, X_train, X_test, y_train, y_test):
    """Fit ``StandardScaler() + model``; test MSE, test R², seconds, epochs."""
    pipeline = make_pipeline(StandardScaler(), model)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    predictions = pipeline.predict(X_test)
    fitted = pipeline[-1]
    fitted = getattr(fitted, "regressor_", fitted)
    return (
        mean_squared_error(y_test, predictions),
        r2_score(y_test, predictions),
        seconds,
        getattr(fitted, "n_iter_", np.nan),
    )


def run(problems, epoch_budgets, seeds, quick, device, sgd_lr, log=None):
    """All results, as a dict ``(problem, budget, model) -> list of tuples``."""
    # Warm-up: torch's first fit pays one-off start-up costs; keep them out of the timings.
    warm_X, warm_y = make_friedman1(n_samples=50, random_state=0)
    fit_score(CFLORegressor(max_iter=2, device=device), warm_X, warm_X, warm_y, warm_y)
    results = {}
    for problem in problems:
        for seed in range(seeds):
            X, y = make_problem(problem, seed, quick)
            split = train_test_split(X, y, test_size=0.25, random_state=seed)
            for epochs in epoch_budgets:
                for name, model in budget_models(epochs, seed, device, sgd_lr):
                    key = (problem, str(epochs), name)
                    results.setdefault(key, []).append(fit_score(model, *split))
            for name, model in default_models(seed, device):
                key = (problem, "own", name)
                results.setdefault(key, []).append(fit_score(model, *split))
            if log is not None:
                print(f"  done: {problem}, seed {seed}", file=log, flush=True)
    return results


def header_lines(args, n_train_note):
    """The command, date and machine the numbers come from."""
    return [
        *provenance_lines(),
        f"device: {args.device}",
        (
            f"seeds: {args.seeds} (data draw, 75/25 split and weights); "
            f"epoch budgets: {', '.join(map(str, args.epochs))}; {n_train_note}"
        ),
        (
            "test MSE: mean ± std over seeds (multi-output: mean over outputs); "
            "R²: mean; fit s: mean wall seconds of one fit (scaler included); "
            "epochs: mean epochs run"
        ),
    ]


def table_rows(results, problems, epoch_budgets):
    """Formatted cells, in print order."""
    rows = []
    for problem in problems:
        for budget in [str(e) for e in epoch_budgets] + ["own"]:
            for (p, b, name), values in results.items():
                if p != problem or b != budget:
                    continue
                mse, r2, seconds, epochs = (
                    np.asarray(v, dtype=float) for v in zip(*values, strict=True)
                )
                rows.append(
                    [
                        problem,
                        budget,
                        name,
                        f"{mse.mean():.4g} ± {mse.std():.2g}",
                        f"{r2.mean():.3f}",
                        f"{seconds.mean():.2f}",
                        f"{np.nanmean(epochs):.0f}" if np.isfinite(epochs).any() else "",
                    ]
                )
    return rows


COLUMNS = ["problem", "budget", "model", "test MSE", "R²", "fit s", "epochs"]


def format_text(rows):
    widths = [max(len(str(c)) for c in column) for column in zip(COLUMNS, *rows, strict=True)]
    lines = []
    previous = None
    for row in [COLUMNS] + rows:
        if previous is not None and row[:2] != previous[:2]:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        lines.append(
            "  ".join(
                str(cell).ljust(width) if i < 3 else str(cell).rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        previous = row
    return lines


def format_markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * 4]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller synthetic problems (2000 rows) and 2 seeds: about a minute",
    )
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 20, 100], help="epoch budgets")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 3; 2 with --quick)")
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    parser.add_argument("--device", default="cpu", help="device of the torch models")
    parser.add_argument(
        "--sgd-lr", type=float, default=1e-2, help="learning rate of the SGD baseline"
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    torch.set_num_threads(args.threads)
    note = (
        "rows: friedman1 2000, multioutput 2000, diabetes 442"
        if args.quick
        else "rows: friedman1 5000, multioutput 4000, diabetes 442"
    )
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        results = run(
            args.problems,
            args.epochs,
            args.seeds,
            args.quick,
            args.device,
            args.sgd_lr,
            log=sys.stderr,
        )
    rows = table_rows(results, args.problems, args.epochs)
    header = header_lines(args, note)
    footer = (
        "budget 'own': every default (CFLORegressor: max_iter=200; MLPRegressor: "
        "max_iter=200 with an early stop on the training loss). "
        f"Total wall time {time.perf_counter() - start:.0f} s."
    )
    if args.markdown:
        print("\n".join(f"- {line}" for line in header))
        print()
        print("\n".join(format_markdown(rows)))
        print()
        print(footer)
    else:
        print("\n".join(header))
        print()
        print("\n".join(format_text(rows)))
        print(footer)


if __name__ == "__main__":
    main()

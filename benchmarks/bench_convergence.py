"""Convergence against epochs and against wall time: CFLO vs end-to-end Adam and SGD.

The same network is trained on each task by

* ``CFLO proximal``: ``CFLORegressor()`` with its default closed-form head
  and update order (``'auto'``: head first on the operator tasks, whose
  batches have 39 and 155 rows per head coefficient, the paper's order on the
  tabular ones, with 2);
* ``CFLO proximal, backbone first``: the paper's Algorithm 1 on every task
  (``update_order='backbone_first'``; ``CFLO proximal`` in tables run before
  ``'auto'`` became the default);
* ``CFLO accumulate``: the recursive least-squares ("Kalman") head;
* ``CFLO proximal, reuse``: the head updated from the gradient step's own
  features (``recompute_features=False``), one forward pass per batch;
* ``CFLO proximal, head first``: ``update_order='head_first'``, the head
  fitted on the batch's forward-pass features before the backbone step;
* ``CFLO proximal, every 4th batch``: ``head_update_interval=4``, the head's
  second forward pass and solve on every fourth mini-batch only;
* ``CFLO proximal, SGD``: the proximal head with an SGD backbone;
* ``Adam`` and ``SGD``: the network trained end to end, the head an ordinary
  layer (``head_update='gradient', refit_head=False``).

The accumulate, reuse, every-4th-batch and SGD variants train in the paper's
order, as they were measured.

Tasks: neural operators with the Fourier neural operator backbone, scored by
the relative L2 error of the FNO papers
(:func:`skcflo.datasets.relative_l2_error`) on held-out samples,

* ``burgers``: 1-D viscous Burgers, ``FNOBackbone1d(modes=12, width=24,
  n_layers=3, n_features_out=32)``, resolution 64;
* ``darcy``: 2-D Darcy flow, ``FNOBackbone2d(modes=6, width=16, n_layers=3,
  n_features_out=32)``, resolution 16;

and tabular regression with ``CFLORegressor``'s default MLP (one hidden layer
of 100), scored by test mean squared error,

* ``friedman1``: :func:`sklearn.datasets.make_friedman1`, noise 1;
* ``multioutput``: three non-linear targets of ten Gaussian inputs (the
  problem of ``bench_tabular.py``).

One fit per method and seed records the whole curve: a hook around the
training loop's epoch function stops the clock after every epoch and scores
the model that a fit of exactly that many epochs would return, i.e. with the
exact ridge refit of the head for the CFLO methods (the refit's time is added
to that point's wall time, since a fit of that length pays it once) and the
trained head for the end-to-end baselines. The hook does not touch the
random streams or the training state, so the curve is the one separate fits
of 1, 2, ... epochs would give (``tests`` check that fits are deterministic).
Time counts everything from the call to ``fit`` (input validation, the
initial head) except the scoring; it is the process's CPU time unless
``--clock wall`` (see ``CLOCKS``).

Settings: each method family (the proximal head with an Adam backbone, the
accumulated head with one, the proximal head with an SGD backbone, end-to-end
Adam, end-to-end SGD) has its own learning rate, schedule and, for the
closed-form heads, ``alpha`` and ``proximal_lambda`` or ``forgetting_factor``,
per task (``TUNED``). Adam's and the two Adam-backbone heads' are each the
lowest mean final test error over the grid of ``tune_convergence.py``
(learning rates x {constant, cosine}, and the heads' parameters), run on eight
tuning seeds that no table reports, so that no side is compared at another's
settings (Burgers' proximal ``alpha=0.1`` came from an edge check of the grid's
choice on those seeds, past the grid's edge). SGD (momentum 0.9) keeps
the rates of the first tables. The tabular tasks standardise their inputs
(fitted on the training split).

Targets checked (issue 5), per task on the mean curves over seeds:

* early: at 10% of the epoch budget CFLO's error is at most 0.7x Adam's (also
  reported for the first epoch, which is within that 10%);
* end: at the last epoch CFLO's error is at most Adam's;
* time: CFLO reaches Adam's final error in at most half of Adam's wall time;

each for every closed-form method with an Adam backbone that was run.

Usage
-----
From the repository root::

    python benchmarks/bench_convergence.py --quick        # 2 seeds, short budgets
    python benchmarks/bench_convergence.py                # 3 seeds, full budgets
    python benchmarks/bench_convergence.py --plot curves.png

Options: ``--tasks``, ``--seeds``, ``--epochs`` (overrides every task's
budget), ``--methods``, ``--threads`` (torch intra-op threads, default 1),
``--device``.
"""

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

# Benchmark the working tree this script sits in, whatever skcflo is installed.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(REPO_ROOT, "skcflo")) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402

import skcflo._training.cflo as training  # noqa: E402
from skcflo import CFLORegressor, FNOBackbone1d, FNOBackbone2d  # noqa: E402
from skcflo._estimators.prediction import PredictionNetwork  # noqa: E402
from skcflo._ridge.head import apply_head  # noqa: E402
from skcflo.datasets import make_burgers, make_darcy, relative_l2_error  # noqa: E402

EARLY_FRACTION = 0.1
EARLY_RATIO = 0.7
TIME_RATIO = 0.5
BASELINE = "Adam"
# Process CPU time by default: with one torch thread it is the wall time an idle
# machine would show, while wall time on a shared machine also measures the
# neighbours' load. ``--clock wall`` for several threads or a GPU.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass
class Task:
    """A data set, a network, a metric and a budget."""

    name: str
    make_data: object  # seed -> (X, y)
    estimator_params: dict
    metric: str
    epochs: int
    quick_epochs: int
    settings: dict  # method family -> estimator parameters (rate, schedule, head)
    standardise: bool  # standardise the inputs (fitted on the training split)
    kind: str = "tabular"  # or "operator": which grid tune_convergence.py searches


def _multioutput(seed, n_samples):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 10))
    Y = np.column_stack(
        [
            np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2],
            np.exp(-(X[:, 3] ** 2)) * X[:, 4] + np.abs(X[:, 5]),
            np.tanh(X[:, 6] + X[:, 7]) * X[:, 8] + 0.5 * X[:, 9] ** 2,
        ]
    )
    return X, Y + 0.1 * rng.normal(size=Y.shape)


# Every task's settings per method family. Adam's and the closed-form heads' (Adam
# backbone) are each the lowest mean final test error over the grid of
# tune_convergence.py on its eight tuning seeds (the grid on four, its three best
# on four more), which no table reports (run 2026-12-01, after the batch-solve
# changes; the grid's results are in benchmarks/README.md). The proximal head's
# operator settings are from the second operator tuning (2026-12-01/02), which also
# searched alpha, and Burgers' alpha from its edge check on the tuning seeds; the
# accumulated head's operator tuning over alpha (2026-12-02) kept Darcy's setting
# and moved Burgers' alpha to 1e-2, and its tabular tuning down to forgetting_factor
# 0.3 with an edge check moved Friedman #1 to lr 0.03, forgetting_factor 0.1
# (multi-output keeps 0.9, which has the lower eight-seed mean). The SGD families
# keep the settings of the first tables (they are the weakest either way).
# The estimator's defaults before issue 19, under every setting here: curves run
# the whole epoch budget (no early stopping), on the network's own features, and
# the tuned penalties replace the fixed 0.1 where the families tune them.
FIXED_BUDGET = FORMER_DEFAULTS

TUNED = {
    "burgers": {
        "adam": {"learning_rate_init": 3e-2, "learning_rate": "cosine"},
        "cflo": {"learning_rate_init": 1e-1, "alpha": 1e-1, "proximal_lambda": 0.01},
        "accumulate": {
            "learning_rate_init": 3e-2,
            "learning_rate": "cosine",
            "alpha": 1e-2,
            "forgetting_factor": 0.9,
        },
    },
    "darcy": {
        "adam": {"learning_rate_init": 1e-2, "learning_rate": "cosine"},
        "cflo": {"learning_rate_init": 1e-2, "alpha": 1e-4, "proximal_lambda": 0.01},
        "accumulate": {"learning_rate_init": 1e-2, "alpha": 1e-3, "forgetting_factor": 0.9},
    },
    "friedman1": {
        "adam": {"learning_rate_init": 3e-3, "learning_rate": "cosine"},
        "cflo": {
            "learning_rate_init": 1e-1,
            "learning_rate": "cosine",
            "alpha": 1e-2,
            "proximal_lambda": 0.01,
        },
        "accumulate": {
            "learning_rate_init": 3e-2,
            "learning_rate": "cosine",
            "alpha": 1e-2,
            "forgetting_factor": 0.1,
        },
    },
    "multioutput": {
        "adam": {"learning_rate_init": 1e-1, "learning_rate": "cosine"},
        "cflo": {
            "learning_rate_init": 3e-1,
            "learning_rate": "cosine",
            "alpha": 1e-4,
            "proximal_lambda": 0.1,
        },
        "accumulate": {"learning_rate_init": 3e-2, "alpha": 1e-4, "forgetting_factor": 0.9},
    },
}
SGD_SETTINGS = {
    "operator": {
        "cflo_sgd": {"learning_rate_init": 3e-2, "alpha": 1e-3, "proximal_lambda": 0.01},
        "sgd": {"learning_rate_init": 3e-2},
    },
    "tabular": {
        "cflo_sgd": {"learning_rate_init": 1e-1, "alpha": 1e-2, "proximal_lambda": 0.1},
        "sgd": {"learning_rate_init": 1e-1},
    },
}


def task_settings(name, kind):
    """``{family: estimator parameters}`` of the task ``name`` of ``kind``."""
    return {**TUNED[name], **SGD_SETTINGS[kind]}


def make_tasks(quick):
    """The tasks, smaller with ``quick``."""
    n_burgers, n_darcy, n_tabular = (400, 300, 2000) if quick else (1000, 500, 5000)

    def burgers(seed):
        data = make_burgers(n_samples=n_burgers, resolution=64, random_state=seed)
        return data.X, data.y

    def darcy(seed):
        data = make_darcy(n_samples=n_darcy, resolution=16, random_state=seed)
        return data.X, data.y

    def operator_task(name, make_data, backbone):
        params = {"backbone": backbone, "batch_size": 20}
        settings = task_settings(name, "operator")
        return Task(name, make_data, params, "rel. L2", 30, 10, settings, False, "operator")

    def tabular_task(name, make_data):
        return Task(name, make_data, {}, "MSE", 100, 30, task_settings(name, "tabular"), True)

    return {
        "burgers": operator_task(
            "burgers", burgers, FNOBackbone1d(modes=12, width=24, n_layers=3, n_features_out=32)
        ),
        "darcy": operator_task(
            "darcy", darcy, FNOBackbone2d(modes=6, width=16, n_layers=3, n_features_out=32)
        ),
        "friedman1": tabular_task(
            "friedman1",
            lambda seed: make_friedman1(n_samples=n_tabular, noise=1.0, random_state=seed),
        ),
        "multioutput": tabular_task(
            "multioutput",
            lambda seed: _multioutput(seed, n_tabular),
        ),
    }


# name: (settings family, method parameters)
PAPER_ORDER = {"update_order": "backbone_first"}
METHODS = {
    "CFLO proximal": ("cflo", {"head_update": "proximal"}),
    "CFLO proximal, backbone first": ("cflo", {"head_update": "proximal", **PAPER_ORDER}),
    "CFLO accumulate": ("accumulate", {"head_update": "accumulate"}),
    "CFLO proximal, reuse": (
        "cflo",
        {"head_update": "proximal", "recompute_features": False, **PAPER_ORDER},
    ),
    "CFLO proximal, head first": (
        "cflo",
        {"head_update": "proximal", "update_order": "head_first"},
    ),
    "CFLO proximal, every 4th batch": (
        "cflo",
        {"head_update": "proximal", "head_update_interval": 4, **PAPER_ORDER},
    ),
    "CFLO proximal, SGD": (
        "cflo_sgd",
        {"head_update": "proximal", "solver": "sgd", **PAPER_ORDER},
    ),
    "Adam": ("adam", {"head_update": "gradient", "refit_head": False}),
    "SGD": ("sgd", {"head_update": "gradient", "refit_head": False, "solver": "sgd"}),
}
DEFAULT_METHODS = ("CFLO proximal", "CFLO accumulate", "CFLO proximal, SGD", "Adam", "SGD")


def _score(metric, y_true, y_pred):
    if metric == "rel. L2":
        return relative_l2_error(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


class CurveRecorder:
    """Wraps the training loop's epoch function to score every epoch of one fit.

    ``scores[e]`` and ``seconds[e]`` belong to the model after ``e + 1``
    epochs; the clock excludes the scoring itself but includes, for a refitted
    head, the exact refit that a fit of that length would end with.
    """

    def __init__(self, task, X_test, y_test, y_train, refit, alpha, clock):
        self.task, self.X_test, self.y_test = task, X_test, y_test
        self.clock = clock
        self.y_train = y_train
        self.refit, self.alpha = refit, alpha
        self.scores, self.seconds = [], []
        self.start = None
        self.paused = 0.0

    def wrap(self, run_pass):
        """``MinibatchTrainer.run`` (one epoch's pass), recording after each pass."""

        def recorded_pass(trainer, inputs, targets, *args, **kwargs):
            weights, per_output_mse = run_pass(trainer, inputs, targets, *args, **kwargs)
            if per_output_mse is not None:
                self._record(trainer.backbone, inputs, targets, weights)
            return weights, per_output_mse

        return recorded_pass

    @torch.no_grad()
    def _record(self, backbone, inputs, targets, weights):
        arrived = self.clock()
        refit_seconds = 0.0
        if self.refit:
            # The fit's own final refit (GCV over the default candidates for 'auto').
            batch_size = self.task.estimator_params.get("batch_size", 200)
            options = training.CFLOOptions(alpha=self.alpha)
            exact = training.ExactHead(
                backbone, inputs, targets.to(torch.float64), batch_size, options
            )
            weights = exact.fit()
            refit_seconds = self.clock() - arrived
        self.seconds.append(arrived - self.start - self.paused + refit_seconds)
        self.scores.append(self._test_score(backbone, inputs, targets, weights))
        self.paused += self.clock() - arrived

    def _test_score(self, backbone, inputs, targets, weights):
        raw_train = torch.as_tensor(self.y_train, dtype=torch.float64, device=inputs.device)
        scaler = training.TargetScaler(raw_train.reshape(targets.shape))
        # The features predict() computes (a float64 copy of the network): with a
        # weak ridge penalty the head's weights are large enough that float32
        # features moved the error by 1e-4 relative, off the fitted model's.
        # predict() validates its input to float32 first.
        test_inputs = np.asarray(self.X_test, dtype=np.float32)
        test_tensor = torch.as_tensor(np.asarray(test_inputs, dtype=np.float32))
        test_tensor = test_tensor.to(device=inputs.device, dtype=torch.float64)
        features = PredictionNetwork().features(backbone, test_tensor, inputs.device)
        scaled = apply_head(features, weights)
        raw = scaled * scaler.scale + scaler.mean
        predictions = raw.reshape(len(self.X_test), -1).cpu().numpy()
        return _score(self.task.metric, self.y_test.reshape(len(self.y_test), -1), predictions)


def run_curve(task, method, seed, split, epochs, device, clock):
    """Scores and seconds per epoch of one fit."""
    X_train, X_test, y_train, y_test = split
    family, params = METHODS[method]
    params = {**task.settings[family], **params}
    model = CFLORegressor(
        **{
            **FIXED_BUDGET,
            "max_iter": epochs,
            "random_state": seed,
            "device": device,
            **task.estimator_params,
            **params,
        }
    )
    recorder = CurveRecorder(
        task, X_test, y_test, y_train, params.get("refit_head", True), model.alpha, clock
    )
    original = training.MinibatchTrainer.run
    training.MinibatchTrainer.run = recorder.wrap(original)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            recorder.start = clock()
            model.fit(X_train, y_train)
    finally:
        training.MinibatchTrainer.run = original
    final = _score(
        task.metric,
        y_test.reshape(len(y_test), -1),
        model.predict(X_test).reshape(len(y_test), -1),
    )
    scores, seconds = recorder.scores, recorder.seconds
    if model.n_iter_ < epochs:
        # Diverged: the estimator restored an earlier state. The rest of the curve
        # is the model the user gets, at the time the whole fit took.
        print(f"  {method}: diverged after {model.n_iter_} epochs", file=sys.stderr)
        spent = clock() - recorder.start - recorder.paused
        scores = scores[: model.n_iter_] + [final] * (epochs - model.n_iter_)
        seconds = seconds[: model.n_iter_] + [spent] * (epochs - model.n_iter_)
    elif not np.isclose(final, scores[-1], rtol=1e-4):
        # The hook's last point must be the fitted model itself.
        raise RuntimeError(f"{method}: hook score {scores[-1]} != fitted {final}")
    return np.array(scores), np.array(seconds)


def split_data(task, seed):
    """``[X_train, X_test, y_train, y_test]`` of ``task`` for ``seed`` (80/20)."""
    X, y = task.make_data(seed)
    split = train_test_split(X, y, test_size=0.2, random_state=seed)
    if task.standardise:
        scaler = StandardScaler().fit(split[0])
        split = [scaler.transform(split[0]), scaler.transform(split[1]), *split[2:]]
    return split


def warm_up(task, methods, split, device, clock):
    """One short fit per method, to take one-off costs (lazy set-up) out of the timings."""
    warm = [part[:64] for part in split]
    for method in methods:
        run_curve(task, method, 0, warm, 1, device, clock)


def run_task(task, methods, seeds, epochs, device, clock, log):
    """``{method: (scores (seeds, epochs), seconds (seeds, epochs))}``."""
    curves = {method: ([], []) for method in methods}
    for seed in range(seeds):
        split = split_data(task, seed)
        if seed == 0:
            warm_up(task, methods, split, device, clock)
        for method in methods:
            scores, seconds = run_curve(task, method, seed, split, epochs, device, clock)
            curves[method][0].append(scores)
            curves[method][1].append(seconds)
            print(
                f"  {task.name} seed {seed} {method}: {scores[-1]:.4g} in {seconds[-1]:.1f} s",
                file=log,
                flush=True,
            )
    return {method: (np.array(s), np.array(t)) for method, (s, t) in curves.items()}


def checkpoints(epochs):
    """Epochs shown in the table: the first, 10% of the budget, a quarter, half, all."""
    marks = [1] + [max(1, round(epochs * f)) for f in (EARLY_FRACTION, 0.25, 0.5, 1.0)]
    return sorted(set(marks))


def time_to_reach(scores, seconds, level):
    """First wall time at which the mean curve is at or below ``level``; ``inf`` if never."""
    reached = np.flatnonzero(scores.mean(axis=0) <= level)
    return seconds.mean(axis=0)[reached[0]] if reached.size else float("inf")


def target_lines(task, curves, epochs):
    """The issue's targets for ``task``, for every closed-form method run with Adam."""
    if BASELINE not in curves:
        return []
    ours = [m for m in curves if METHODS[m][0] in ("cflo", "accumulate")]
    return [line for method in ours for line in _method_target_lines(task, curves, epochs, method)]


def _method_target_lines(task, curves, epochs, method):
    ours, ours_time = curves[method]
    base, base_time = curves[BASELINE]
    early = max(1, round(epochs * EARLY_FRACTION)) - 1
    early_ratio = ours[:, early].mean() / base[:, early].mean()
    end_ratio = ours[:, -1].mean() / base[:, -1].mean()
    reach = time_to_reach(ours, ours_time, base[:, -1].mean())
    time_ratio = reach / base_time[:, -1].mean()

    def verdict(ok):
        return "met" if ok else "NOT met"

    first_ratio = ours[:, 0].mean() / base[:, 0].mean()
    name = f"{task.name}, {method}"
    return [
        f"{name}: first epoch: CFLO/Adam error {first_ratio:.2f} "
        f"(target <= {EARLY_RATIO}) {verdict(first_ratio <= EARLY_RATIO)}",
        f"{name}: early (epoch {early + 1}): CFLO/Adam error {early_ratio:.2f} "
        f"(target <= {EARLY_RATIO}) {verdict(early_ratio <= EARLY_RATIO)}",
        f"{name}: end (epoch {epochs}): CFLO/Adam error {end_ratio:.2f} "
        f"(target <= 1) {verdict(end_ratio <= 1.0)}",
        f"{name}: time to Adam's final error: {reach:.3g} s vs Adam's "
        f"{base_time[:, -1].mean():.3g} s, ratio {time_ratio:.2f} "
        f"(target <= {TIME_RATIO}) {verdict(time_ratio <= TIME_RATIO)}",
    ]


def table_lines(task, curves, epochs):
    lines = []
    for epoch in checkpoints(epochs):
        for method, (scores, seconds) in curves.items():
            column = scores[:, epoch - 1]
            lines.append(
                f"| {task.name} | {epoch} | {method} | {column.mean():.4g} ± {column.std():.2g}"
                f" | {seconds[:, epoch - 1].mean():.3g} |"
            )
    return lines


def plot(results, path, clock):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4 * len(results), 7), squeeze=False)
    for column, (task, curves) in enumerate(results.values()):
        for method, (scores, seconds) in curves.items():
            mean, std = scores.mean(axis=0), scores.std(axis=0)
            epochs = np.arange(1, scores.shape[1] + 1)
            (line,) = axes[0, column].plot(epochs, mean, label=method)
            axes[0, column].fill_between(epochs, mean - std, mean + std, alpha=0.2)
            axes[1, column].plot(seconds.mean(axis=0), mean, color=line.get_color())
        axes[0, column].set(title=task.name, xlabel="epoch", ylabel=task.metric, yscale="log")
        axes[1, column].set(xlabel=f"{clock} time (s)", ylabel=task.metric, yscale="log")
    axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, short budgets")
    parser.add_argument("--tasks", nargs="+", default=["burgers", "darcy", "friedman1"])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        choices=list(METHODS),
    )
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (2 with --quick)")
    parser.add_argument("--epochs", type=int, default=None, help="budget of every task")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--plot", default=None, help="save the curves to this image file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds or (2 if args.quick else 3)
    tasks = make_tasks(args.quick)
    print_provenance()
    print(f"# device: {args.device}")
    print(
        f"# seeds: {seeds}; 80/20 split; mean ± std over seeds; seconds: mean "
        f"{'process CPU' if args.clock == 'cpu' else 'wall'} time from the call to fit"
    )
    print("| task | epoch | method | test error | seconds |")
    print("|---|---|---|---|---|")
    results, verdicts = {}, []
    for name in args.tasks:
        task = tasks[name]
        epochs = args.epochs or (task.quick_epochs if args.quick else task.epochs)
        curves = run_task(
            task, args.methods, seeds, epochs, args.device, CLOCKS[args.clock], sys.stderr
        )
        results[name] = (task, curves)
        print("\n".join(table_lines(task, curves, epochs)), flush=True)
        verdicts += target_lines(task, curves, epochs)
    print()
    print("\n".join(f"# {line}" for line in verdicts))
    if args.plot:
        plot(results, args.plot, "process CPU" if args.clock == "cpu" else "wall")
        print(f"# curves saved to {args.plot}")


if __name__ == "__main__":
    main()

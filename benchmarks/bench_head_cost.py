"""Per-epoch cost of the closed-form heads against end-to-end Adam training.

The same backbone, ``MLPBackbone(hidden_layer_sizes=(256, d))`` on a
synthetic regression set (``make_regression``, 4096 rows, 32 features), is
trained with each closed-form head ('proximal', 'accumulate' and 'full' with
the head updated from the gradient step's features, ``recompute_features=False``,
and 'proximal+recompute': ``recompute_features=True``, the estimator's default,
the paper's second forward pass per batch; a suffix ``/k`` sets
``head_update_interval=k``, the head updated on every k-th batch only, e.g.
'proximal+recompute/4') and, as the baseline, end to end
with the head an ordinary layer trained by Adam (``head_update='gradient'``). Everything else is
``CFLORegressor``'s default (Adam, learning rate 1e-2, ``alpha=0.1``,
``proximal_lambda=0.1``). Feature widths ``d`` in {64, 256, 1024, 4096}
(``--quick``: {64, 256, 1024}), batch sizes {32, 256}.

Timing: paired and interleaved, in one process. On a shared machine the load
changes from second to second, so separate timings of two configurations
compare the neighbours as much as the code (ratios from 0.7x to 4x for one
setting were seen that way). Here every configuration's models are set up
with the training loop's own pieces (``skcflo._training.cflo``: the initial exact
head, the head strategy, the optimiser), then trained in rounds: each round
runs the loop's epoch function over the same ``--batches`` mini-batches for
the baseline and for every head, in an order that alternates between rounds.
A head's cost in a round is divided by the baseline's cost in the same
round; the table reports medians over rounds (and the interquartile range of
the ratio). 'full' refits the head exactly on all data once per epoch; that
refit is timed in the same round and charged per batch as
``refit / batches per epoch``. Seconds per epoch = median seconds per batch x
batches per epoch (4096 / b). Fixed costs paid once per fit (validation, the
initial and final exact heads) are not included; they are the same for every
head.

Memory (``--memory``): every (head, d, b) runs a 2-epoch ``fit`` in a fresh
subprocess; "peak RSS +MiB" is the growth of ``ru_maxrss`` over that fit
(after a tiny fit that absorbs one-time costs), i.e. the resident-memory
high-water mark, torch allocations included (which ``tracemalloc`` would not
see).

Targets (issue 5): per-epoch time at most 1.15x Adam's for d <= 256 and at
most 1.5x for d = 4096 (none for d = 1024).

Usage
-----
From the repository root::

    python benchmarks/bench_head_cost.py --quick            # d <= 1024, a few minutes
    python benchmarks/bench_head_cost.py                    # with d = 4096
    python benchmarks/bench_head_cost.py --quick --memory   # plus peak memory
    python benchmarks/bench_head_cost.py --profile proximal 1024 32

Options: ``--widths``, ``--batch-sizes``, ``--heads``, ``--rounds``,
``--batches``, ``--threads`` (torch intra-op threads, default 1).
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

# Benchmark the working tree this script sits in, whatever skcflo is installed.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(REPO_ROOT, "skcflo")) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402

from skcflo import CFLORegressor, MLPBackbone  # noqa: E402
from skcflo._estimators.glue import build_seeded_backbone, make_generator  # noqa: E402
from skcflo._training import cflo as training  # noqa: E402
from skcflo._training.head_updates import make_head_update  # noqa: E402

N_SAMPLES = 4096
N_FEATURES = 32
HEADS = ("proximal", "accumulate", "full", "proximal+recompute", "proximal+recompute/4")
RECOMPUTE_SUFFIX = "+recompute"
INTERVAL_SEPARATOR = "/"
BASELINE = "adam"
WIDTHS = (64, 256, 1024, 4096)
QUICK_WIDTHS = (64, 256, 1024)
BATCH_SIZES = (32, 256)
DEFAULTS = CFLORegressor(**FORMER_DEFAULTS)


def parse_head(method):
    """``'proximal+recompute/4'`` -> ``('proximal', True, 4)``; the baseline is 'gradient'."""
    if method == BASELINE:
        return "gradient", False, 1
    name, _, interval = method.partition(INTERVAL_SEPARATOR)
    recompute = name.endswith(RECOMPUTE_SUFFIX)
    name = name.removesuffix(RECOMPUTE_SUFFIX)
    if name not in ("proximal", "accumulate", "full") or (interval and not interval.isdigit()):
        raise argparse.ArgumentTypeError(
            f"unknown head {method!r}: proximal, accumulate or full, optionally with "
            f"'{RECOMPUTE_SUFFIX}' and '{INTERVAL_SEPARATOR}k'"
        )
    return name, recompute, int(interval or 1)


def _head_argument(method):
    parse_head(method)
    return method


def _target(width):
    """The issue's bound on the head/Adam per-epoch ratio, or None."""
    if width <= 256:
        return 1.15
    if width == 4096:
        return 1.5
    return None


def _data():
    from sklearn.datasets import make_regression

    X, y = make_regression(
        n_samples=N_SAMPLES, n_features=N_FEATURES, n_informative=16, noise=1.0, random_state=0
    )
    return X.astype(np.float32), y


# ---------------------------------------------------------------------------
# Paired timing with the training loop's own pieces.
# ---------------------------------------------------------------------------


class Trainee:
    """One model mid-training: backbone, head, strategy, optimiser, batch order."""

    def __init__(self, head, width, batch_size, inputs, targets):
        name, recompute, interval = parse_head(head)
        self.backbone = build_seeded_backbone(
            MLPBackbone(hidden_layer_sizes=(256, width)), inputs.shape[1], 0, "cpu"
        )
        strategy = make_head_update(
            name,
            proximal_lambda=DEFAULTS.proximal_lambda,
            forgetting_factor=DEFAULTS.forgetting_factor,
            recompute_features=recompute,
            interval=interval,
        )
        options = training.CFLOOptions(
            learning_rate=DEFAULTS.learning_rate_init, batch_size=batch_size, alpha=DEFAULTS.alpha
        )
        self.exact = training.ExactHead(
            self.backbone, inputs, targets.double(), batch_size, options
        )
        # The loop's own initial state: exact head, strategy begun, optimiser.
        self.steps = training.CFLOSteps(
            self.backbone, strategy, options, make_generator(0), self.exact, scaler=None
        )
        self.weights = self.steps.weights
        self.refits = name == "full"

    def run(self, inputs, targets):
        """Seconds of one pass of the loop's epoch function over ``inputs``."""
        start = time.perf_counter()
        self.weights, _ = self.steps.trainer.run(inputs, targets, self.weights, self.exact.alpha)
        return time.perf_counter() - start

    def refit(self):
        """Seconds of the exact refit on all data that 'full' pays once per epoch."""
        start = time.perf_counter()
        self.weights = self.exact.fit()
        return time.perf_counter() - start


def measure(width, batch_size, heads, rounds, batches):
    """Median seconds per batch of every method and paired ratios to the baseline."""
    X, y = _data()
    inputs = torch.from_numpy(X)
    targets = torch.from_numpy(((y - y.mean()) / y.std()).reshape(-1, 1)).float()
    methods = [BASELINE, *heads]
    trainees = {m: Trainee(m, width, batch_size, inputs, targets) for m in methods}
    rows = min(batches * batch_size, N_SAMPLES)
    chunk = (inputs[:rows], targets[:rows])
    per_epoch_batches = -(-N_SAMPLES // batch_size)
    timings = {m: [] for m in methods}
    warm_up = 2
    for round_index in range(rounds + warm_up):
        order = methods if round_index % 2 == 0 else methods[::-1]
        seconds = {}
        for method in order:
            trainee = trainees[method]
            spent = trainee.run(*chunk) / -(-rows // batch_size)
            if trainee.refits:
                spent += trainee.refit() / per_epoch_batches
            seconds[method] = spent
        if round_index >= warm_up:
            for method in methods:
                timings[method].append(seconds[method])
    results = {}
    for method in methods:
        ratios = np.array(timings[method]) / np.array(timings[BASELINE])
        quartiles = np.percentile(ratios, [25, 75])
        results[method] = {
            "per_batch": statistics.median(timings[method]),
            "per_epoch": statistics.median(timings[method]) * per_epoch_batches,
            "ratio": float(np.median(ratios)),
            "ratio_iqr": (float(quartiles[0]), float(quartiles[1])),
        }
    return results


# ---------------------------------------------------------------------------
# Peak memory of a fit, one fresh process per configuration.
# ---------------------------------------------------------------------------


def _fit(head, width, batch_size, epochs, X, y):
    name, recompute, interval = parse_head(head)
    model = CFLORegressor(
        **FORMER_DEFAULTS,
        backbone=MLPBackbone(hidden_layer_sizes=(256, width)),
        head_update=name,
        recompute_features=recompute,
        head_update_interval=interval,
        refit_head=name != "gradient",
        batch_size=batch_size,
        max_iter=epochs,
        random_state=0,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)


def _max_rss_mib():
    # Linux reports kibibytes (macOS bytes; this benchmark assumes Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_single(head, width, batch_size):
    """Growth of the resident-memory high-water mark over a 2-epoch fit."""
    X, y = _data()
    _fit(head, 8, batch_size, 1, X[:512], y[:512])  # one-time costs: imports, arenas
    before = _max_rss_mib()
    _fit(head, width, batch_size, 2, X, y)
    return _max_rss_mib() - before


def memory_in_subprocess(head, width, batch_size, threads):
    command = [sys.executable, os.path.abspath(__file__), "--memory-single", head]
    command += [str(width), str(batch_size), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return float("nan")
    return json.loads(lines[-1])["rss_delta_mib"]


def profile_single(head, width, batch_size, rounds, batches, top):
    """cProfile of the paired rounds of one configuration; print the top entries."""
    profiler = cProfile.Profile()
    profiler.enable()
    measure(width, batch_size, [head], rounds, batches)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    print(f"# profile: {head} (with the adam baseline) d={width} batch={batch_size}")
    print(stream.getvalue())


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------


def _header(args, widths):
    print_provenance()
    print(
        f"# data: make_regression {N_SAMPLES} x {N_FEATURES}; backbone MLPBackbone((256, d)), "
        f"d in {list(widths)}; adam = head_update='gradient'"
    )
    print(
        f"# paired rounds: {args.rounds} (after 2 warm-up), {args.batches} batches per method "
        "per round; ratio = median over rounds of head / adam in the same round (IQR)"
    )
    print()


def run_all(args):
    widths = args.widths or (QUICK_WIDTHS if args.quick else WIDTHS)
    _header(args, widths)
    columns = f"{'d':>5} {'batch':>5} {'method':<21} {'ms/batch':>9} {'s/epoch':>8} "
    columns += f"{'x adam':>7} {'IQR':>11} {'target':>6} {'met':>4}"
    if args.memory:
        columns += f" {'peak RSS +MiB':>13}"
    print(columns, flush=True)
    summary = []
    for width in widths:
        for batch_size in args.batch_sizes:
            results = measure(width, batch_size, args.heads, args.rounds, args.batches)
            for method, result in results.items():
                target = None if method == BASELINE else _target(width)
                met = None if target is None else result["ratio"] <= target
                low, high = result["ratio_iqr"]
                line = (
                    f"{width:>5} {batch_size:>5} {method:<21} {1e3 * result['per_batch']:>9.3f} "
                    f"{result['per_epoch']:>8.3f} {result['ratio']:>7.2f} "
                    f"{f'{low:.2f}-{high:.2f}':>11} {'' if target is None else target:>6} "
                    f"{'' if met is None else ('yes' if met else 'NO'):>4}"
                )
                if args.memory:
                    rss = memory_in_subprocess(method, width, batch_size, args.threads)
                    line += f" {rss:>13.1f}"
                print(line, flush=True)
                if met is not None:
                    summary.append((width, batch_size, method, met))
    print()
    passed = [f"d={w} b={b} {h}" for w, b, h, met in summary if met]
    failed = [f"d={w} b={b} {h}" for w, b, h, met in summary if not met]
    print(f"# targets met ({len(passed)}/{len(summary)}): {', '.join(passed) or 'none'}")
    print(f"# targets missed ({len(failed)}/{len(summary)}): {', '.join(failed) or 'none'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d in {64, 256, 1024} only")
    parser.add_argument("--widths", type=int, nargs="+", help="feature widths d")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), type=_head_argument)
    parser.add_argument("--rounds", type=int, default=15, help="paired rounds (default 15)")
    parser.add_argument("--batches", type=int, default=8, help="batches per method per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--memory", action="store_true", help="also peak RSS per configuration")
    parser.add_argument(
        "--profile", nargs=3, metavar=("HEAD", "D", "BATCH"), help="cProfile one configuration"
    )
    parser.add_argument("--memory-single", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_single:
        head, width, batch_size = args.memory_single
        print(json.dumps({"rss_delta_mib": memory_single(head, int(width), int(batch_size))}))
    elif args.profile:
        head, width, batch_size = args.profile
        profile_single(head, int(width), int(batch_size), args.rounds, args.batches, 25)
    else:
        run_all(args)


if __name__ == "__main__":
    main()

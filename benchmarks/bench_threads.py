"""Fit time against torch's intra-op threads: ``n_jobs=None`` (one) and ``n_jobs=-1`` (all).

Fits of ``CFLORegressor`` (10 epochs, no early stopping, so the work is fixed)
on scikit-learn's diabetes (442 rows), Friedman #1 (2,000 rows) and a
20,000-row ``make_regression`` problem, with the default network (100 units,
batches of 200) and a wide one ((512, 512), batches of 1,000). Each fit runs
once with one torch thread and once with one per CPU, twice over: alone, and
beside a second identical fit in another process (as ``GridSearchCV(n_jobs=2)``
or any other work on the machine would run it). The table gives the median
seconds of ``--repeats`` fits and the ratio all-threads / one-thread (above 1:
one thread is faster).

Usage
-----
From the repository root::

    python benchmarks/bench_threads.py
"""

import argparse
import statistics
import time
import warnings

import joblib
from _provenance import print_provenance
from sklearn.datasets import load_diabetes, make_friedman1, make_regression
from sklearn.preprocessing import StandardScaler


def problem(name):
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    elif name == "friedman1":
        X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    else:
        X, y = make_regression(n_samples=20000, n_features=20, noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), y


SETTINGS = [
    ("diabetes", (100,), 200),
    ("friedman1", (100,), 200),
    ("friedman1", (512, 512), 1000),
    ("regression 20k", (100,), 200),
    ("regression 20k", (512, 512), 1000),
]


def fit_seconds(name, hidden, batch_size, n_jobs):
    """Seconds of one fixed-work fit (run in a worker process: its own torch)."""
    from skcflo import CFLORegressor

    X, y = problem(name)
    model = CFLORegressor(
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_iter=10,
        early_stopping=False,
        n_jobs=n_jobs,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return time.perf_counter() - start


def timed(setting, n_jobs, side_by_side, repeats):
    """Median seconds of ``repeats`` fits, alone or two at once in separate processes."""
    copies = 2 if side_by_side else 1
    seconds = []
    with joblib.Parallel(n_jobs=copies, backend="loky") as parallel:
        parallel(joblib.delayed(fit_seconds)(*setting, n_jobs) for _ in range(copies))  # warm
        for _ in range(repeats):
            runs = parallel(joblib.delayed(fit_seconds)(*setting, n_jobs) for _ in range(copies))
            seconds.append(max(runs))
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_provenance()
    print(f"# CPUs: {joblib.cpu_count()}; 10 epochs per fit; median of {args.repeats} fits")
    columns = ["alone: 1 thread", "all", "ratio", "two at once: 1 thread", "all", "ratio"]
    print("| data | network, batch | " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for name, hidden, batch_size in SETTINGS:
        setting = (name, hidden, batch_size)
        cells = []
        for side_by_side in (False, True):
            one = timed(setting, None, side_by_side, args.repeats)
            every = timed(setting, -1, side_by_side, args.repeats)
            cells += [f"{one:.2f} s", f"{every:.2f} s", f"{every / one:.1f}"]
        print(f"| {name} | {hidden}, {batch_size} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

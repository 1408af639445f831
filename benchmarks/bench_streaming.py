"""``partial_fit`` on chunks against ``fit`` on the whole data set.

Friedman #1 (standardised inputs), 6000 training and 2000 test rows. The
whole-data fit runs ``passes`` epochs; the streamed model sees the same data
split into chunks, one ``partial_fit`` call per chunk, for the same number of
passes. Printed: test R² and MSE (mean over seeds) and wall time.

Run::

    python benchmarks/bench_streaming.py             # 3 seeds, about 2 minutes
"""

import argparse
import time

import numpy as np
import torch
from _provenance import print_provenance
from _settings import FORMER_DEFAULTS
from sklearn.datasets import make_friedman1
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor


def _data(seed):
    X, y = make_friedman1(n_samples=8000, noise=1.0, random_state=seed)
    X = StandardScaler().fit(X[:6000]).transform(X)
    return X[:6000], y[:6000], X[6000:], y[6000:]


def _whole(X, y, passes, seed):
    return CFLORegressor(**FORMER_DEFAULTS, max_iter=passes, random_state=seed).fit(X, y)


def _chunked(X, y, passes, seed, n_chunks, forgetting):
    model = CFLORegressor(**FORMER_DEFAULTS, forgetting_factor=forgetting, random_state=seed)
    chunks = np.array_split(np.arange(len(X)), n_chunks)
    for _ in range(passes):
        for chunk in chunks:
            model.partial_fit(X[chunk], y[chunk])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print_provenance()
    print(f"# Friedman #1, 6000 train / 2000 test rows, {args.passes} passes over the data\n")
    settings = [("fit (whole data)", None, None)] + [
        (f"partial_fit, {n} chunks, forgetting {f}", n, f) for n in (5, 20) for f in (1.0, 0.9, 0.5)
    ]
    print(f"{'method':<40} {'test R2':>8} {'test MSE':>9} {'fit s':>7}")
    for name, n_chunks, forgetting in settings:
        scores, errors, seconds = [], [], []
        for seed in range(args.seeds):
            X, y, X_test, y_test = _data(seed)
            start = time.perf_counter()
            if n_chunks is None:
                model = _whole(X, y, args.passes, seed)
            else:
                model = _chunked(X, y, args.passes, seed, n_chunks, forgetting)
            seconds.append(time.perf_counter() - start)
            predictions = model.predict(X_test)
            scores.append(r2_score(y_test, predictions))
            errors.append(mean_squared_error(y_test, predictions))
        print(
            f"{name:<40} {np.mean(scores):>8.4f} {np.mean(errors):>9.4f} {np.mean(seconds):>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

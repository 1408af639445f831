"""Speed-up of data-parallel training (``skcflo.distributed``) over one process.

``CFLORegressor.fit`` inside ``data_parallel()`` on 1 and on N processes
(``torch.multiprocessing``, gloo backend on the CPU, one torch thread per
process), with the same global batch, so both fits train the same model
(``tests/training/test_data_parallel.py`` checks that). Each configuration alternates
1-process and N-process runs ``--repeats`` times; a run's time is rank 0's
wall time of ``fit`` after a barrier, and the table reports medians, the
speed-up ``T1 / TN`` and its range over the repeats, and the largest
difference between the two fits' predictions relative to their scale.

Configurations: the tabular MLP (``hidden_layer_sizes=(256, 256)``,
Friedman #1, 20,000 rows, batch 512), the same with more work per batch
(``mlp-large-batch``: ``(1024, 256)``, 40,000 rows, batch 4096) and the
Burgers FNO (1,000 samples at resolution 64, batch 40), 3 epochs each
(``--quick``: smaller data).

Usage
-----
From the repository root::

    python benchmarks/bench_data_parallel.py --quick
    python benchmarks/bench_data_parallel.py --processes 2 --repeats 3

With CUDA and the NCCL backend, launch your own script with ``torchrun``
instead (see ``docs/scaling.rst``); this benchmark measures CPU processes.
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

import numpy as np

# Benchmark the working tree this script sits in, whatever skcflo is installed.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(REPO_ROOT, "skcflo")) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402


def _configuration(name, quick):
    """``(X, y, estimator parameters)`` of a named configuration."""
    from sklearn.datasets import make_friedman1

    from skcflo import FNOBackbone1d
    from skcflo.datasets import make_burgers

    if name == "mlp":
        X, y = make_friedman1(n_samples=5000 if quick else 20000, noise=1.0, random_state=0)
        return X, y, {"hidden_layer_sizes": (256, 256), "batch_size": 512}
    if name == "mlp-large-batch":
        X, y = make_friedman1(n_samples=10000 if quick else 40000, noise=1.0, random_state=0)
        return X, y, {"hidden_layer_sizes": (1024, 256), "batch_size": 4096}
    data = make_burgers(n_samples=300 if quick else 1000, resolution=64, random_state=0)
    backbone = FNOBackbone1d(modes=12, width=24, n_layers=3, n_features_out=32)
    return data.X, data.y, {"backbone": backbone, "batch_size": 40, "learning_rate_init": 1e-3}


def _worker(rank, world_size, port, name, quick, epochs, out_path):
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from skcflo import CFLORegressor
    from skcflo.distributed import data_parallel

    X, y, params = _configuration(name, quick)
    model = CFLORegressor(**{**FORMER_DEFAULTS, **params}, max_iter=epochs, random_state=0)
    with data_parallel(backend="gloo"):
        dist.barrier()
        start = time.perf_counter()
        model.fit(X, y)
        dist.barrier()
        seconds = time.perf_counter() - start
    if rank == 0:
        np.savez(out_path, seconds=seconds, predictions=model.predict(X[:1000]))


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed_run(name, processes, quick, epochs):
    """Rank 0's fit seconds and predictions of one run on ``processes`` processes."""
    with tempfile.TemporaryDirectory() as folder:
        out_path = os.path.join(folder, "result.npz")
        args = (processes, _free_port(), name, quick, epochs, out_path)
        mp.start_processes(_worker, args=args, nprocs=processes, start_method="spawn")
        result = np.load(out_path)
        return float(result["seconds"]), result["predictions"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--configurations", nargs="+", default=["mlp", "mlp-large-batch", "fno"])
    args = parser.parse_args(argv)
    print_provenance()
    print("# backend: gloo, 1 torch thread per process")
    print(f"# repeats: {args.repeats} (alternating), epochs: {args.epochs}, quick: {args.quick}")
    print(
        f"| configuration | 1 process s | {args.processes} processes s | speed-up (range) "
        "| max |pred diff| / scale |"
    )
    print("|---|---|---|---|---|")
    for name in args.configurations:
        single, multi, speedups, gaps = [], [], [], []
        for _ in range(args.repeats):
            one, reference = timed_run(name, 1, args.quick, args.epochs)
            many, predictions = timed_run(name, args.processes, args.quick, args.epochs)
            single.append(one)
            multi.append(many)
            speedups.append(one / many)
            gaps.append(np.abs(predictions - reference).max() / np.abs(reference).max())
        print(
            f"| {name} | {statistics.median(single):.2f} | {statistics.median(multi):.2f} | "
            f"{statistics.median(speedups):.2f} ({min(speedups):.2f}-{max(speedups):.2f}) | "
            f"{max(gaps):.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

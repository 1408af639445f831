"""One prepared check of skcflo's GPU path: correctness, synchronisation, throughput.

Run on a machine with a CUDA device (CI never has one)::

    python benchmarks/gpu_check.py            # about 2 minutes on one H200
    python benchmarks/gpu_check.py --quick    # smaller sizes, about a minute

It prints, in order (each part reports its own failure and the script goes on):

1. **Environment**: torch, CUDA, the device's name and memory.
2. **Correctness on CUDA**: ``CFLORegressor`` (proximal in both orders,
   accumulate, full and the end-to-end baseline) and ``DFIVRegressor`` fitted with
   ``device='cuda'``: the fitted network is on the CPU, predictions on CUDA
   and on the CPU agree, a pickle round trip predicts the same, and the
   CUDA fit is close to the CPU fit of the same seed (not bit-identical:
   different kernels reduce in different orders).
3. **Host synchronisations per batch**: a fit runs under
   ``torch.cuda.set_sync_debug_mode('warn')``, which warns at every operation
   that waits for the device; the warnings raised inside the training loop's
   epochs are counted and divided by the number of batches. The target is 0
   per batch (the loop reads the loss back once per epoch).
4. **Throughput**: samples per second of training (median of 3 fits,
   measured as the time of a ``max_iter=E`` fit minus a ``max_iter=1`` fit)
   on CUDA and on the CPU (all cores), and the CPU/GPU time ratio, for the
   short configuration of the benchmark suite: the tabular MLP, the head-cost
   MLP at d = 1024 and 4096, and the Fourier neural operators on Burgers and
   Darcy; each with the default proximal head (``update_order='auto'``: head
   first on the FNOs, the paper's order on the MLPs) and with end-to-end Adam.

Without CUDA it says so, runs parts 2 and 4 on the CPU only (a dry run of the
script itself) and exits 0.
"""

import argparse
import os
import pickle
import statistics
import sys
import time
import traceback
import warnings

import numpy as np

# Check the working tree this script sits in, whatever skcflo is installed.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(REPO_ROOT, "skcflo")) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402
from sklearn.datasets import make_friedman1, make_regression  # noqa: E402

import skcflo._training.cflo as training  # noqa: E402
from skcflo import (  # noqa: E402
    CFLORegressor,
    DFIVRegressor,
    FNOBackbone1d,
    FNOBackbone2d,
    MLPBackbone,
)
from skcflo.datasets import make_burgers, make_darcy, make_demand  # noqa: E402


def section(title):
    print(f"\n## {title}", flush=True)


def guarded(function):
    """Run one part; print its traceback instead of stopping the script."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a check script reports and goes on
            print(f"FAILED: {function.__name__}")
            traceback.print_exc(file=sys.stdout)
            return None

    return run


def environment(cuda):
    section("1. Environment")
    print_provenance(prefix="")
    if cuda:
        props = torch.cuda.get_device_properties(0)
        print(
            f"CUDA {torch.version.cuda}: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
            f"{torch.cuda.device_count()} device(s)"
        )
    else:
        print("no CUDA device: parts 2 and 4 run on the CPU only (dry run); part 3 skipped")


HEAD_VARIANTS = {
    # Both per-batch orders, whichever update_order='auto' would pick for the data.
    "proximal": {"head_update": "proximal", "update_order": "backbone_first"},
    "head first": {"head_update": "proximal", "update_order": "head_first"},
    "accumulate": {"head_update": "accumulate"},
    "full": {"head_update": "full"},
    "gradient": {"head_update": "gradient", "refit_head": False},
}


def _regression(n_samples=2000):
    X, y = make_friedman1(n_samples=n_samples, noise=1.0, random_state=0)
    return X, np.column_stack([y, np.sin(y)])


@guarded
def correctness(device):
    section(f"2. Correctness (device={device!r})")
    X, y = _regression()
    for head, variant in HEAD_VARIANTS.items():
        params = dict(FORMER_DEFAULTS, **variant, max_iter=5, random_state=0)
        model = CFLORegressor(device=device, **params).fit(X, y)
        on_cpu = {p.device.type for p in model.backbone_.parameters()} == {"cpu"}
        predicted = model.predict(X)
        pickled = pickle.loads(pickle.dumps(model)).set_params(device="cpu").predict(X)
        reference = CFLORegressor(device="cpu", **params).fit(X, y)
        gap = np.abs(predicted - reference.predict(X)).max() / np.abs(y).max()
        print(
            f"CFLO {head:<10} backbone_ on CPU: {on_cpu}; "
            f"|{device} - pickled cpu| {np.abs(predicted - pickled).max():.2e}; "
            f"|{device} fit - cpu fit| / |y| {gap:.2e}; "
            f"R2 {model.score(X, y):.4f} vs cpu fit {reference.score(X, y):.4f}"
        )
    data = make_demand(n_samples=2000, rho=0.5, random_state=0)
    model = DFIVRegressor(covariates=data.covariates, device=device, random_state=0)
    predicted = model.fit(data.X, data.y, Z=data.Z).predict(data.X)
    pickled = pickle.loads(pickle.dumps(model)).set_params(device="cpu").predict(data.X)
    cpu_model = DFIVRegressor(covariates=data.covariates, device="cpu", random_state=0)
    reference = cpu_model.fit(data.X, data.y, Z=data.Z).predict(data.X)
    one_more = data.X[:, 0] + 1
    print(
        f"DFIV average effect of +1 price: {device} fit {model.ate(data.X, one_more):.3f} "
        f"{tuple(round(float(b), 3) for b in model.ate_interval(data.X, one_more))}, "
        f"cpu fit {cpu_model.ate(data.X, one_more):.3f}; first-stage F {device} "
        f"{model.first_stage_.pooled_f_stat:.0f}, cpu {cpu_model.first_stage_.pooled_f_stat:.0f}"
    )
    print(
        f"DFIV: |{device} - pickled cpu| {np.abs(predicted - pickled).max():.2e}; "
        f"|{device} fit - cpu fit| {np.abs(predicted - reference).max():.2e} "
        f"(outcome scale {np.abs(data.y).max():.1f})"
    )


class _SyncCounter:
    """Stands in for the training loop's pass over mini-batches; counts synchronising calls."""

    def __init__(self, run_pass):
        self.run_pass = run_pass
        self.synchronisations = 0
        self.batches = 0
        self.locations = {}

    def __call__(self, trainer, inputs, targets, weights, alpha):
        self.batches += -(-inputs.shape[0] // trainer.batch_size)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                result = self.run_pass(trainer, inputs, targets, weights, alpha)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        synchronising = [w for w in caught if "synchroniz" in str(w.message)]
        self.synchronisations += len(synchronising)
        for warning in synchronising:
            where = f"{os.path.relpath(warning.filename, REPO_ROOT)}:{warning.lineno}"
            self.locations[where] = self.locations.get(where, 0) + 1
        return result


@guarded
def synchronisations():
    section("3. Host synchronisations inside training epochs (CUDA)")
    X, y = _regression(4000)
    for head, variant in HEAD_VARIANTS.items():
        original = training.MinibatchTrainer.run
        counter = _SyncCounter(original)
        # A plain function on the class, so that it binds the trainer as ``self``.
        training.MinibatchTrainer.run = lambda *args, counter=counter: counter(*args)
        try:
            params = dict(FORMER_DEFAULTS, **variant, max_iter=3, batch_size=100, random_state=0)
            CFLORegressor(device="cuda", **params).fit(X, y)
        finally:
            training.MinibatchTrainer.run = original
        per_batch = counter.synchronisations / max(counter.batches, 1)
        print(
            f"{head:<10} {counter.synchronisations} synchronising calls in {counter.batches} "
            f"batches: {per_batch:.2f} per batch"
        )
        # Where they come from: the Python line that made each synchronising call.
        for where, count in sorted(counter.locations.items(), key=lambda item: -item[1])[:3]:
            print(f"    {count:>4} at {where}")


def _configurations(quick):
    X_tab, y_tab = make_friedman1(n_samples=5000 if quick else 20000, noise=1.0, random_state=0)
    yield "tabular MLP (100,), b=200", X_tab, y_tab, {}
    X_wide, y_wide = make_regression(n_samples=4096, n_features=32, noise=1.0, random_state=0)
    for width in (1024,) if quick else (1024, 4096):
        yield (
            f"MLP (256, {width}), b=256",
            X_wide,
            y_wide,
            {"backbone": MLPBackbone(hidden_layer_sizes=(256, width)), "batch_size": 256},
        )
    burgers = make_burgers(n_samples=400 if quick else 1000, resolution=64, random_state=0)
    darcy = make_darcy(n_samples=300 if quick else 500, resolution=16, random_state=0)
    operators = [
        ("FNO1d Burgers s=64, b=20", burgers, FNOBackbone1d(modes=12, width=24, n_layers=3)),
        ("FNO2d Darcy s=16, b=20", darcy, FNOBackbone2d(modes=6, width=16, n_layers=3)),
    ]
    for name, data, backbone in operators:
        backbone.set_params(n_features_out=32)
        params = {"backbone": backbone, "batch_size": 20, "learning_rate_init": 1e-3}
        yield name, data.X, data.y, params


def _seconds_per_epoch(X, y, params, device, epochs, repeats=3):
    def timed(max_iter):
        settings = {**FORMER_DEFAULTS, **params}
        model = CFLORegressor(max_iter=max_iter, random_state=0, device=device, **settings)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)  # ends with the weights copied to the CPU: the device is done
        return time.perf_counter() - start

    timed(1)  # warm-up: CUDA context, kernels, allocator
    runs = [(timed(epochs) - timed(1)) / (epochs - 1) for _ in range(repeats)]
    return statistics.median(runs)


@guarded
def throughput(devices, quick):
    section("4. Training throughput (samples/s; median of 3; fit(E) - fit(1) epochs)")
    epochs = 3 if quick else 5
    print(f"torch CPU threads: {torch.get_num_threads()}; epochs E = {epochs}")
    header = f"{'configuration':<28} {'head':<9}" + "".join(f" {d + ' s/ep':>12}" for d in devices)
    if len(devices) == 2:
        header += f" {'cpu/gpu':>8} {'samples/s gpu':>14}"
    print(header)
    for name, X, y, extra in _configurations(quick):
        for head in ("proximal", "gradient"):
            params = dict(extra, head_update=head)
            if head == "gradient":
                params["refit_head"] = False
            seconds = {d: _seconds_per_epoch(X, y, params, d, epochs) for d in devices}
            line = f"{name:<28} {head:<9}" + "".join(f" {seconds[d]:>12.4f}" for d in devices)
            if len(devices) == 2:
                line += (
                    f" {seconds['cpu'] / seconds['cuda']:>8.1f} {len(X) / seconds['cuda']:>14.0f}"
                )
            print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer widths")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    environment(cuda)
    correctness("cuda" if cuda else "cpu")
    if cuda:
        synchronisations()
    throughput(["cpu", "cuda"] if cuda else ["cpu"], args.quick)


if __name__ == "__main__":
    main()

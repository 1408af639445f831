"""Prediction identity across a refactor: record fitted outputs, then compare.

A fixed set of seeded configurations (every head update and update order, the
'auto' penalty, early stopping, warm start, ``partial_fit``, ``return_std``,
learning-rate schedules, DFIV with full and mini-batches and early stopping,
Fourier neural operators in 1-D and 2-D) is fitted on the CPU, and what each
fit produced (predictions, predictive standard deviations, loss curves, chosen
penalties, IV losses) is saved to, or compared with, an ``.npz`` file::

    python benchmarks/prediction_identity.py --record benchmarks/identity/baseline.npz
    python benchmarks/prediction_identity.py --compare benchmarks/identity/baseline.npz

``--compare`` prints, per configuration, the largest absolute difference
relative to the largest absolute recorded value, and exits 1 if any exceeds
``--tolerance`` (default 0: bit-identical).
"""

import argparse
import os
import sys
import warnings

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(REPO_ROOT, "skcflo")) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from _provenance import print_provenance  # noqa: E402
from _settings import FORMER_DEFAULTS  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402

from skcflo import (  # noqa: E402
    CFLORegressor,
    DFIVRegressor,
    FNOBackbone1d,
    FNOBackbone2d,
    MLPBackbone,
)
from skcflo.datasets import make_burgers, make_darcy, make_demand  # noqa: E402

# CFLORegressor's defaults before issue 19, under every configuration below, so that
# they keep guarding the same code paths; "defaults" runs the current ones.
FIXED = FORMER_DEFAULTS


def _regressor(**params):
    return CFLORegressor(**{**FIXED, "random_state": 0, "device": "cpu", **params})


def _tabular():
    X, y = make_friedman1(n_samples=300, noise=1.0, random_state=0)
    return X, y


def _multioutput():
    X, y = _tabular()
    return X, np.column_stack([y, np.sin(y), X[:, 0] * y])


def _cflo_outputs(model, X, fit=None):
    fit = fit or (lambda m: m.fit(*_tabular()))
    fit(model)
    mean, std = model.predict(X, return_std=True)
    extra = [
        np.asarray(model.loss_curve_, dtype=float),
        np.atleast_1d(np.asarray(model.alpha_, dtype=float)),
        np.atleast_1d(np.asarray(model.noise_variance_, dtype=float)),
        np.asarray([model.n_iter_], dtype=float),
    ]
    if model.validation_scores_ is not None:
        extra.append(np.asarray(model.validation_scores_, dtype=float))
    return {"predict": mean, "std": std, "history": np.concatenate(extra)}


def _cflo(params, data=_tabular):
    def run():
        X, y = data()
        model = _regressor(**params)
        return _cflo_outputs(model, X, fit=lambda m: m.fit(X, y))

    return run


def _warm_start():
    X, y = _tabular()
    model = _regressor(max_iter=3, warm_start=True)
    model.fit(X, y)
    return _cflo_outputs(model, X, fit=lambda m: m.fit(X, y))


def _partial_fit(params):
    def run():
        X, y = _tabular()
        model = _regressor(**params)

        def chunks(m):
            for _ in range(2):
                for part in np.array_split(np.arange(len(X)), 3):
                    m.partial_fit(X[part], y[part])
            return m

        return _cflo_outputs(model, X, fit=chunks)

    return run


def _operator(kind):
    def run():
        if kind == "1d":
            data = make_burgers(n_samples=40, resolution=32, random_state=0)
            backbone = FNOBackbone1d(modes=6, width=8, n_layers=2, n_features_out=8)
        else:
            data = make_darcy(n_samples=30, resolution=8, random_state=0)
            backbone = FNOBackbone2d(modes=3, width=8, n_layers=2, n_features_out=8)
        model = _regressor(backbone=backbone, batch_size=10, max_iter=3, learning_rate_init=1e-3)
        return _cflo_outputs(model, data.X, fit=lambda m: m.fit(data.X, data.y))

    return run


def _dfiv(params, covariates=True):
    def run():
        data = make_demand(n_samples=400, rho=0.5, random_state=0)
        X, Z = data.X, data.Z
        columns = [1, 2] if covariates else None
        if not covariates:
            X = X[:, :1]
        model = DFIVRegressor(columns, random_state=0, device="cpu", **params)
        model.fit(X, data.y, Z=Z)
        history = [
            np.asarray(model.loss_curve_, dtype=float),
            np.asarray([model.n_iter_], dtype=float),
            np.asarray([model.iv_loss(X, data.y, Z), model.iv_loss(X, data.y, Z, stage=1)]),
        ]
        if model.validation_scores_ is not None:
            history.append(np.asarray(model.validation_scores_, dtype=float))
        return {
            "predict": model.predict(X),
            "stage1": model.stage1_weights_,
            "stage2": model.stage2_weights_,
            "history": np.concatenate(history),
        }

    return run


SMALL = {"max_iter": 4}
CONFIGURATIONS = {
    "proximal backbone_first": _cflo(dict(SMALL, update_order="backbone_first")),
    "proximal head_first": _cflo(dict(SMALL, update_order="head_first")),
    "proximal no recompute": _cflo(dict(SMALL, recompute_features=False)),
    "proximal interval 3": _cflo(dict(SMALL, head_update_interval=3)),
    "accumulate": _cflo(dict(SMALL, head_update="accumulate", forgetting_factor=0.5)),
    "accumulate head_first": _cflo(
        dict(SMALL, head_update="accumulate", update_order="head_first")
    ),
    "full": _cflo(dict(SMALL, head_update="full")),
    "gradient": _cflo(dict(SMALL, head_update="gradient")),
    "gradient no refit": _cflo(dict(SMALL, head_update="gradient", refit_head=False)),
    "alpha auto": _cflo(dict(SMALL, alpha="auto")),
    "early stopping auto": _cflo(
        {"max_iter": 30, "early_stopping": True, "n_iter_no_change": 2, "alpha": "auto"}
    ),
    "early stopping": _cflo({"max_iter": 30, "early_stopping": True, "n_iter_no_change": 3}),
    "sgd cosine": _cflo(dict(SMALL, solver="sgd", learning_rate="cosine", momentum=0.5)),
    "adaptive": _cflo({"max_iter": 8, "learning_rate": "adaptive", "tol": 10.0}),
    "invscaling": _cflo(dict(SMALL, learning_rate="invscaling", power_t=0.3)),
    "step tanh": _cflo(
        dict(SMALL, learning_rate="step", backbone=MLPBackbone((16, 8), activation="tanh"))
    ),
    "multi-output": _cflo(SMALL, data=_multioutput),
    # The defaults of issue 19: 'auto' penalty and early stopping, inputs beside the features.
    "defaults": _cflo(
        {"max_iter": 30, "alpha": "auto", "early_stopping": "auto", "include_inputs": True}
    ),
    "warm start": _warm_start,
    "partial_fit proximal": _partial_fit({"alpha": 0.05}),
    "partial_fit accumulate auto": _partial_fit({"head_update": "accumulate", "alpha": "auto"}),
    "FNO 1d": _operator("1d"),
    "FNO 2d": _operator("2d"),
    "DFIV full": _dfiv({"max_iter": 3}),
    "DFIV no covariates": _dfiv({"max_iter": 3}, covariates=False),
    "DFIV mini-batch": _dfiv({"max_iter": 3, "batch_size": 64}),
    "DFIV early stopping": _dfiv({"max_iter": 20, "early_stopping": True}),
    "DFIV sgd step no refit": _dfiv(
        {"max_iter": 3, "solver": "sgd", "learning_rate": "step", "refit_head": False}
    ),
}


def run_all():
    outputs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in CONFIGURATIONS.items():
            for key, value in run().items():
                outputs[f"{name}/{key}"] = np.asarray(value, dtype=float)
    return outputs


def compare(recorded, current, tolerance):
    worst_overall = 0.0
    print(f"{'configuration':<30} {'max |diff| / max |value|':>26}")
    for name in CONFIGURATIONS:
        keys = [k for k in recorded if k.startswith(name + "/")]
        worst = 0.0
        for key in keys:
            old, new = recorded[key], current.get(key)
            if new is None or new.shape != old.shape:
                worst = np.inf
                continue
            scale = max(np.abs(old).max(initial=0.0), 1e-300)
            worst = max(worst, float(np.abs(new - old).max(initial=0.0)) / scale)
        worst_overall = max(worst_overall, worst)
        print(f"{name:<30} {worst:>26.3e}")
    print(f"worst: {worst_overall:.3e} (tolerance {tolerance:g})")
    return worst_overall <= tolerance


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--record", metavar="FILE")
    action.add_argument("--compare", metavar="FILE")
    parser.add_argument("--tolerance", type=float, default=0.0)
    args = parser.parse_args(argv)
    print_provenance()
    torch.set_num_threads(1)  # one summation order, whatever the machine's cores
    current = run_all()
    if args.record:
        os.makedirs(os.path.dirname(os.path.abspath(args.record)), exist_ok=True)
        np.savez_compressed(args.record, **current)
        print(f"recorded {len(current)} arrays from {len(CONFIGURATIONS)} configurations")
        return 0
    recorded = dict(np.load(args.compare))
    return 0 if compare(recorded, current, args.tolerance) else 1


if __name__ == "__main__":
    sys.exit(main())

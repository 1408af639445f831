"""DFIV's machinery under DFIVRegressor: inputs, halves, networks, options, fitted state.

``BaseDFIV`` turns ``X``, ``y`` and ``Z`` into the tensors of the two halves,
builds the three feature networks, hands the options to the training loop,
and stores what training produced (networks on the CPU, raw-unit heads, the
stage-2 head's covariance, the first-stage report), so that ``DFIVRegressor``
reads as its parameters, ``fit``, ``predict`` and ``iv_loss``.
"""

import numpy as np
import torch
from sklearn.utils import check_array
from torch import nn

from .._networks.backbones import MLPBackbone, Standardize
from .._ridge.dfiv_stages import stage2_design
from .._ridge.head import augment
from .._training.data import TargetScaler, check_features, compute_features
from .._training.dfiv import (
    DFIVNetworks,
    DFIVOptions,
    DFIVSample,
    cross_fitted_first_stage,
    stage2_covariance,
    training_rows,
)
from .base import BaseNetworkEstimator
from .diagnostics import first_stage_report
from .effects import EffectsMixin
from .glue import as_tensor, build_seeded_backbone, copy_to_device, make_generator

# Default feature networks, as in the DFIV reference design for low-dimensional data.
DEFAULT_TREATMENT_BACKBONE = MLPBackbone(hidden_layer_sizes=(16, 16))
DEFAULT_INSTRUMENT_BACKBONE = MLPBackbone(hidden_layer_sizes=(128, 64, 32))
DEFAULT_COVARIATE_BACKBONE = MLPBackbone(hidden_layer_sizes=(128, 32, 16))


class BaseDFIV(EffectsMixin, BaseNetworkEstimator):
    """Deep-feature IV regression's inputs, networks and fitted state (private base)."""

    # -- input handling --------------------------------------------------------------
    def _validated_outcome(self, y, n_samples):
        """A held-out outcome as ``(n_samples, n_outputs_)`` float64, or a ValueError."""
        y = check_array(y, dtype=np.float64, ensure_2d=False, input_name="y")
        if y.shape[0] != n_samples:
            raise ValueError(f"y has {y.shape[0]} rows but X has {n_samples}.")
        y = y.reshape(n_samples, -1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} column(s) but the model was fitted with "
                f"{self.n_outputs_} output(s)."
            )
        return y

    def _covariate_mask(self):
        mask = np.zeros(self.n_features_in_, dtype=bool)
        if self.covariates is None:
            return mask
        selected = np.asarray(self.covariates)
        if selected.dtype == bool:
            if selected.shape != mask.shape:
                raise ValueError(
                    f"A boolean covariates mask needs {self.n_features_in_} entries, "
                    f"got {selected.shape[0]}."
                )
            mask[:] = selected
        elif selected.dtype.kind in "OUS":
            names = list(getattr(self, "feature_names_in_", []))
            missing = [str(name) for name in selected if name not in names]
            if missing:
                raise ValueError(f"covariates {missing} are not columns of X {names}.")
            mask[[names.index(name) for name in selected]] = True
        else:
            if selected.size and (
                selected.min() < -self.n_features_in_ or selected.max() >= self.n_features_in_
            ):
                raise ValueError(
                    f"covariates indices {selected.tolist()} are out of range for "
                    f"{self.n_features_in_} features."
                )
            mask[selected.astype(int)] = True
        if mask.all():
            raise ValueError("Every column of X is declared a covariate: no treatment is left.")
        return mask

    def _validated_instruments(self, Z, X, mask, *, reset=True):
        """Instrument columns (``Z``, or the treatment itself when ``Z`` is None).

        With ``reset=False`` (held-out scoring) ``Z`` must match what ``fit`` saw.
        """
        if not reset:
            self._check_instruments_match(Z)
        if Z is None:
            return X[:, ~mask]
        Z = check_array(Z, dtype=np.float32, ensure_2d=False, input_name="Z")
        Z = Z.reshape(len(Z), -1)
        if Z.shape[0] != X.shape[0]:
            raise ValueError(
                f"Z has {Z.shape[0]} rows but X has {X.shape[0]}: one instrument row per sample."
            )
        if reset and np.all(np.ptp(Z, axis=0) == 0):
            raise ValueError("The instruments Z are constant: they cannot identify the effect.")
        return Z

    def _check_instruments_match(self, Z):
        expected = self.n_instruments_
        if expected is None and Z is not None:
            raise ValueError(
                "This model was fitted without Z (X as its own instrument); pass Z=None."
            )
        if expected is not None and Z is None:
            raise ValueError(
                f"This model was fitted with {expected} instrument column(s): pass the held-out Z."
            )
        n_columns = None if Z is None else int(np.prod(np.shape(Z)[1:]))
        if expected is not None and n_columns != expected:
            raise ValueError(
                f"Z has {n_columns} column(s) but the model was fitted with {expected}."
            )

    def _sample(self, X, y, mask, instruments, device):
        covariate = X[:, mask] if mask.any() else None
        instrument = instruments if covariate is None else np.hstack([instruments, covariate])
        outcome = torch.from_numpy(np.array(y, dtype=np.float64).reshape(len(y), -1))
        scaler = TargetScaler(outcome)
        sample = DFIVSample(
            as_tensor(X[:, ~mask], device),
            as_tensor(instrument, device),
            None if covariate is None else as_tensor(covariate, device),
            scaler.transform(outcome).to(device),
        )
        return sample, scaler

    def _split(self, sample, seed):
        """Stage-1 half, stage-2 half and (with early stopping) validation rows."""
        order = torch.randperm(len(sample), generator=make_generator(seed))
        order, held_out = self._split_validation(order.to(sample.treatment.device), min_training=4)
        validation = None if held_out is None else sample.subset(held_out)
        n_first = int(round(self.split_ratio * len(order)))
        if n_first < 1 or n_first >= len(order):
            raise ValueError(
                f"split_ratio={self.split_ratio} leaves an empty stage with {len(order)} samples."
            )
        return sample.subset(order[:n_first]), sample.subset(order[n_first:]), validation

    def _networks(self, sample, seed, device):
        def build(spec, default, inputs, offset):
            if isinstance(spec, str) and spec == "linear":
                spec = nn.Identity()
            module = build_seeded_backbone(
                default if spec is None else spec, inputs.shape[1], seed + offset, device
            )
            network = nn.Sequential(Standardize.fitted_to(inputs).to(device), module)
            with torch.no_grad():
                network.eval()
                check_features(network(inputs[:8]), min(8, len(inputs)), who="feature network")
            return network

        covariate = None
        if sample.covariate is not None:
            covariate = build(
                self.covariate_backbone, DEFAULT_COVARIATE_BACKBONE, sample.covariate, 2
            )
        return DFIVNetworks(
            build(self.treatment_backbone, DEFAULT_TREATMENT_BACKBONE, sample.treatment, 0),
            build(self.instrument_backbone, DEFAULT_INSTRUMENT_BACKBONE, sample.instrument, 1),
            covariate,
        )

    def _options(self):
        full_batches = self.batch_size == "full"
        shared = self._shared_options()
        if self.learning_rate_init == "auto":
            # Mini-batches take one step per batch: a smaller rate (see the docstring).
            shared["learning_rate"] = 1e-2 if full_batches else 1e-3
        return DFIVOptions(
            **shared,
            batch_size=None if full_batches else self.batch_size,
            stage1_alpha=self.stage1_alpha,
            stage2_alpha=self.stage2_alpha,
            stage1_iter=_steps_per_batch(self.stage1_iter, full_batches),
            covariate_iter=_steps_per_batch(self.covariate_iter, full_batches),
            stage2_iter=self.stage2_iter,
            proximal_lambda=0.0 if full_batches else self.proximal_lambda,
            cross_fitted_stopping=isinstance(self.early_stopping, str),
        )

    def _store_inference(self, networks, result, scaler, samples, seed):
        """The stage-2 head's covariance (units of y) and the first-stage report."""
        first, second, validation = samples
        covariance = stage2_covariance(
            networks,
            training_rows(first, second, validation),
            result.stage1_weights,
            result.stage2_weights,
            result.stage2_alpha,
            self.cov_type,
        ).cpu()
        # The head scales with each output's standard deviation.
        self._stage2_covariance_ = (covariance * scaler.scale[:, None, None] ** 2).numpy()
        self.first_stage_ = first_stage_report(
            cross_fitted_first_stage(
                networks,
                first,
                second,
                result.stage1_alpha,
                result.stage2_weights,
                make_generator(seed + 3),
            )
        )

    def _store(self, networks, result, scaler, mask, y_ndim):
        self._store_history(result)
        self.treatment_backbone_ = networks.treatment.cpu().eval()
        self.instrument_backbone_ = networks.instrument.cpu().eval()
        self.covariate_backbone_ = (
            None if networks.covariate is None else networks.covariate.cpu().eval()
        )
        self.covariate_mask_ = mask
        self.stage1_weights_ = result.stage1_weights.cpu().numpy()
        self.stage1_alpha_, self.stage2_alpha_ = result.stage1_alpha, result.stage2_alpha
        # The scaler lives on the CPU, where the outcome was standardised; the heads
        # on the training device (a GPU fit's heads are on the GPU).
        stage2 = result.stage2_weights.cpu()
        self.stage2_weights_ = scaler.weights_to_raw(stage2).numpy()
        self.n_outputs_ = self.stage2_weights_.shape[1]
        self._y_was_1d_ = y_ndim == 1

    def _augmented_design_of(self, X, treatment):
        """``aug(g(treatment, covariates of X))``: the stage-2 design with its intercept, float64.

        ``treatment`` may be a tensor that requires a gradient (marginal effects).
        """
        return self._augmented_design(treatment, self._covariate_features_of(X))

    def _covariate_features_of(self, X, device="cpu"):
        """The covariate network's features of ``X``'s covariate columns (None without any)."""
        if self.covariate_backbone_ is None:
            return None
        return compute_features(
            copy_to_device(self.covariate_backbone_, device),
            as_tensor(X[:, self.covariate_mask_], device),
        )

    def _augmented_design(self, treatment, covariate_features):
        treatment = torch.as_tensor(treatment, dtype=torch.float32)
        self.treatment_backbone_.eval()
        features = self.treatment_backbone_(treatment).double()
        if covariate_features is not None:
            covariate_features = covariate_features.double()
        return augment(stage2_design(features, covariate_features))

    def _features(self, X, device):
        treatment = compute_features(
            copy_to_device(self.treatment_backbone_, device),
            as_tensor(X[:, ~self.covariate_mask_], device),
        )
        return treatment, self._covariate_features_of(X, device)


# Instrument- and covariate-network steps per batch that 'auto' takes: the
# reference schedule's with full batches; fewer per mini-batch, where a step
# sees a small share of the rows (measured in the DFIVRegressor docstring).
AUTO_STEPS = {"full": 20, "mini-batch": 5}


def _steps_per_batch(option, full_batches):
    if option != "auto":
        return option
    return AUTO_STEPS["full" if full_batches else "mini-batch"]

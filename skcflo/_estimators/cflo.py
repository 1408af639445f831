"""The CFLO estimators' shared machinery: fit, partial_fit and prediction of head(backbone(X)).

``BaseCFLO`` owns everything a closed-form-last-layer estimator does with its
network, so that ``CFLORegressor`` (and the classifier to come) only say what
their targets and predictions are, as ``MLPRegressor`` and ``MLPClassifier``
do on ``BaseMultilayerPerceptron``. The hook :meth:`BaseCFLO._training_targets`
turns a validated ``y`` into the float64 targets the head is fitted to.
"""

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from .._networks.backbones import ACTIVATIONS, MLPBackbone
from .._ridge.head import apply_linear_head, predictive_std
from .._training.cflo import DEFAULT_ALPHAS, CFLOOptions, TrainingResult, train_cflo
from .._training.data import check_features
from .._training.head_updates import (
    HEAD_UPDATES,
    UPDATE_ORDERS,
    make_head_update,
    resolve_update_order,
)
from .._training.stream import Stream
from ..distributed import current_data_parallel
from .base import BACKBONE_CONSTRAINT, BaseNetworkEstimator
from .glue import (
    as_tensor,
    build_seeded_backbone,
    draw_seed,
    make_generator,
    resolve_device,
    rollback_on_failure,
    uses_n_jobs_threads,
)
from .prediction import PredictionNetwork


class BaseCFLO(BaseNetworkEstimator):
    """A torch backbone trained against a closed-form ridge head (private base).

    Subclasses define ``__init__`` (the public signature), the targets
    (:meth:`_training_targets`) and what ``predict`` returns from
    :meth:`_head_outputs`.
    """

    _parameter_constraints = {
        **BaseNetworkEstimator._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "alphas": [None, "array-like"],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "head_update": [StrOptions(set(HEAD_UPDATES))],
        "proximal_lambda": [Interval(Real, 0, None, closed="left")],
        "forgetting_factor": [Interval(Real, 0, 1, closed="right")],
        "recompute_features": ["boolean"],
        "update_order": [StrOptions(set(UPDATE_ORDERS))],
        "head_update_interval": [Interval(Integral, 1, None, closed="left")],
        "backbone": BACKBONE_CONSTRAINT,
        "include_inputs": ["boolean"],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "warm_start": ["boolean"],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_n_jobs_threads
    def fit(self, X, y, sample_weight=None):
        """Train the backbone and the closed-form head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (float or int; pandas DataFrames keep their names).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows: the backbone's loss is the
            weighted mean squared error of each mini-batch, the head a
            weighted ridge fit (with a frozen backbone it equals
            ``Ridge(alpha=alpha * sample_weight.sum()).fit(features, y,
            sample_weight)``), and early stopping scores a weighted R². An
            integer weight acts as repeating the row, a zero as dropping it
            (exactly for the head; for the backbone up to the mini-batches
            drawn); multiplying every weight by a constant changes nothing.

        Returns
        -------
        self : CFLORegressor
            The fitted estimator.
        """
        warm = self._warm_start_state()
        group = current_data_parallel()
        with rollback_on_failure(self):
            X, y = self._validated_training_data(X, y, reset=True)
            weight = _checked_sample_weight(sample_weight, X, group)
            device, seed = self._device_and_seed(group, len(X))
            backbone = self._initial_backbone(warm, seed, device)
            train, validation = self._split_rows(len(X), seed)
            inputs = as_tensor(X[train], device)
            grid, width = _probe_backbone(backbone, inputs)
            Y = _target_layout(y, grid)
            targets = as_tensor(Y[train], device, dtype=torch.float64)
            rows_weight = _rows_weight(weight, train, device)
            options = self._training_options(len(train))
            order = self._update_order(min(options.batch_size, len(train)), grid, width + 1)
            result = train_cflo(
                backbone,
                inputs,
                targets,
                self._head_update(order, group),
                options,
                make_generator(seed),
                validation=None
                if validation is None
                else (
                    as_tensor(X[validation], device),
                    as_tensor(Y[validation], device, dtype=torch.float64),
                    _rows_weight(weight, validation, device),
                ),
                group=group,
                sample_weight=rows_weight,
            )
            if warm is not None:
                result.loss_curve[:0] = warm.loss_curve_
                result.n_iter += warm.n_iter_
            self._store_result(result, y)
            self.update_order_ = order
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_n_jobs_threads
    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on a chunk of data, carrying the head's statistics over.

        For data that never fits in memory at once: call it once per chunk,
        as many passes over the chunks as wanted. Each call runs one epoch on
        its chunk; the head is then solved on the ridge statistics of all
        chunks so far, past chunks down-weighted by ``forgetting_factor`` per
        call (their features were computed by an older backbone). The first
        call fixes the target scaling and, unless the estimator is already
        fitted, initialises the backbone; ``fit`` starts afresh.

        As in ``MLPRegressor``, the controls that need the whole training run
        do not apply to a stream: ``early_stopping`` and ``validation_fraction``
        are ignored (every row of a chunk trains), and so are the
        learning-rate schedules (``learning_rate``, ``power_t``): every chunk
        trains at ``learning_rate_init``. ``max_iter`` does not apply either
        (one epoch per call).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the chunk's rows, as in :meth:`fit`; the
            head's running statistics are weighted sums.

        Returns
        -------
        self : CFLORegressor
        """
        first_call = not hasattr(self, "_stream_")
        with rollback_on_failure(self):
            if current_data_parallel() is not None:
                raise ValueError(
                    "partial_fit does not support data-parallel training; call fit inside "
                    "skcflo.distributed.data_parallel()."
                )
            if self.head_update == "gradient":
                raise ValueError("partial_fit needs a closed-form head_update, not 'gradient'.")
            X, y = self._validated_training_data(X, y, reset=first_call and not self._is_fitted())
            weight = _checked_sample_weight(sample_weight, X)
            device = resolve_device(self.device)
            inputs = as_tensor(X, device)
            rows_weight = _rows_weight(weight, slice(None), device)
            options = self._training_options(len(X))
            if first_call:
                stream = self._start_stream(inputs, y, device, options, rows_weight)
            else:
                stream = self._stream_
            stream.to(device)
            targets = as_tensor(_target_layout(y, stream.grid), device, dtype=torch.float64)
            batch_rows = min(options.batch_size, len(X))
            order = self._update_order(batch_rows, stream.grid, stream.n_coefficients)
            loss = stream.train_chunk(
                inputs,
                targets,
                self._head_update(order),
                options,
                self.forgetting_factor,
                rows_weight,
            )
            if loss is None:
                raise ValueError(
                    "Training diverged on this chunk (non-finite loss); the previous state "
                    "is kept. Lower learning_rate_init."
                )
            self._store_stream(stream, loss, y)
            self.update_order_ = order
        return self

    def _is_fitted(self):
        return hasattr(self, "backbone_")

    def _warm_start_state(self):
        """With ``warm_start``, a copy of the fitted state a new fit continues from."""
        if not (self.warm_start and self._is_fitted()):
            return None
        return copy.copy(self)

    def _device_and_seed(self, group, n_samples):
        """This process's device and seed; in a data-parallel group, the group's."""
        if group is None:
            return super()._device_and_seed()
        seed = draw_seed(self.random_state)
        batch_size = self._training_options(n_samples).batch_size
        if min(batch_size, n_samples) < group.world_size:
            raise ValueError(
                f"Data-parallel training over {group.world_size} processes needs a batch "
                f"of at least {group.world_size} rows; got batch_size={batch_size} "
                f"and {n_samples} samples."
            )
        device = group.device if self.device == "auto" else resolve_device(self.device)
        return device, group.broadcast_seed(seed)

    def _split_rows(self, n_samples, seed):
        """Training and validation row indices, sorted (all rows train without early stopping)."""
        if not self._stops_early(n_samples):
            return np.arange(n_samples), None  # no permutation to draw and sort back
        order = np.random.RandomState(seed).permutation(n_samples)
        train, validation = self._split_validation(order, min_training=2, hold_out=True)
        return np.sort(train), None if validation is None else np.sort(validation)

    def _validated_training_data(self, X, y, reset):
        n_features = getattr(self, "n_features_in_", None)
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            # float32 is what the network computes in; validating to it catches
            # finite float64 values that would overflow to inf.
            dtype=np.float32,
            multi_output=True,
            y_numeric=True,
            ensure_min_samples=2,
        )
        # Targets as float64 now, so that non-numeric ones fail before any network runs.
        y = self._training_targets(y)
        if self.warm_start and self._is_fitted() and n_features != self.n_features_in_:
            raise ValueError(
                f"warm_start needs the {n_features} features of the previous fit; "
                f"X has {self.n_features_in_}."
            )
        return X, y

    def _initial_backbone(self, warm, seed, device):
        if warm is not None:
            return copy.deepcopy(warm.backbone_).to(device)
        return build_seeded_backbone(self._backbone_spec(), self.n_features_in_, seed, device)

    def _update_order(self, batch_size, grid, n_coefficients):
        """``update_order`` resolved for batches of ``batch_size`` samples on ``grid``."""
        rows_per_batch = batch_size * int(np.prod(grid, dtype=int))
        return resolve_update_order(self.update_order, rows_per_batch, n_coefficients)

    def _head_update(self, order, group=None):
        return make_head_update(
            self.head_update,
            proximal_lambda=self.proximal_lambda,
            forgetting_factor=self.forgetting_factor,
            recompute_features=self.recompute_features,
            interval=self.head_update_interval,
            head_first=order == "head_first",
            reduce=None if group is None else group.reduce_statistics,
        )

    def _start_stream(self, inputs, y, device, options, sample_weight=None):
        seed = draw_seed(self.random_state)
        if self._is_fitted():
            backbone = copy.deepcopy(self.backbone_).to(device)
        else:
            backbone = build_seeded_backbone(
                self._backbone_spec(), self.n_features_in_, seed, device
            )
        grid, _ = _probe_backbone(backbone, inputs)
        targets = as_tensor(_target_layout(y, grid), device, dtype=torch.float64)
        generator = make_generator(seed)
        return Stream(backbone, inputs, targets, options, generator, grid, sample_weight)

    def _store_stream(self, stream, loss, y):
        weights, noise_variance, inverse_system = stream.head()
        previous_curve = getattr(self, "loss_curve_", []) if stream.n_chunks > 1 else []
        result = TrainingResult(
            backbone=stream.fitted_backbone(),
            head_weights=weights,
            loss_curve=[*previous_curve, loss],
            n_iter=len(previous_curve) + 1,
            alpha=float(stream.alpha),
            noise_variance=noise_variance,
            inverse_system=inverse_system,
        )
        self._store_result(result, y)
        self._stream_ = stream

    def _training_targets(self, y):
        """The float64 targets of the head for a validated ``y`` (regression: ``y`` itself)."""
        return np.asarray(y, dtype=np.float64)

    @uses_n_jobs_threads
    def _head_outputs(self, X, return_std=False):
        """Head outputs ``(n_samples, n_outputs)`` on ``X``, float64, and their std.

        A 1-D target of ``fit`` gives 1-D outputs.
        """
        X, device = self._prediction_input(X)
        inputs = as_tensor(X, device, dtype=torch.float64)
        network = self._prediction_network_
        if not return_std:
            outputs = [
                network.head_outputs(self.backbone_, inputs, device, self.coef_, self.intercept_)
            ]
        else:
            features = network.features(self.backbone_, inputs, device)
            outputs = [apply_linear_head(features, self.coef_, self.intercept_)]
            inverse_system = torch.from_numpy(self._inverse_system_).to(device)
            noise = torch.from_numpy(np.atleast_1d(self.noise_variance_)).to(device)
            rows = features.reshape(-1, features.shape[-1])
            outputs.append(predictive_std(rows, inverse_system, noise))
        # Operator-shaped outputs (n, *grid, k) flatten to scikit-learn's (n, n_outputs).
        outputs = [o.reshape(len(X), -1).cpu().numpy() for o in outputs]
        if np.ndim(self.intercept_) == 0:
            outputs = [o.ravel() for o in outputs]
        return tuple(outputs) if return_std else outputs[0]

    def _stops_early(self, n_samples):
        """Whether this fit holds out rows for early stopping ('auto': enough of them)."""
        if self.early_stopping == "auto":
            n_validation = int(np.ceil(self.validation_fraction * n_samples))
            return n_validation >= AUTO_EARLY_STOPPING_MIN_ROWS
        return bool(self.early_stopping)

    def _backbone_spec(self):
        if self.backbone is None:
            return MLPBackbone(
                self.hidden_layer_sizes, self.activation, include_inputs=self.include_inputs
            )
        return self.backbone

    def _candidate_alphas(self):
        if self.alphas is None:
            return DEFAULT_ALPHAS
        candidates = np.asarray(self.alphas, dtype=float).ravel()
        if candidates.size == 0 or not np.all(np.isfinite(candidates)) or np.any(candidates < 0):
            raise ValueError(f"alphas must be non-negative finite numbers, got {self.alphas!r}.")
        return tuple(candidates.tolist())

    def _training_options(self, n_samples):
        batch_size = min(200, n_samples) if self.batch_size == "auto" else self.batch_size
        return CFLOOptions(
            **self._shared_options(),
            batch_size=batch_size,
            alpha=self.alpha,
            alphas=self._candidate_alphas(),
        )

    def _store_result(self, result, y):
        self._store_history(result)
        weights = result.head_weights.cpu().numpy()
        if hasattr(self, "_stream_"):
            del self._stream_  # a fit starts any later stream afresh
        self.backbone_ = result.backbone.cpu().eval()
        self._prediction_network_ = PredictionNetwork()
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.best_loss_ = min(result.loss_curve, default=None)
        self.alpha_ = result.alpha
        self.noise_variance_ = result.noise_variance.cpu().numpy()
        self._inverse_system_ = result.inverse_system.cpu().numpy()
        self.coef_ = weights[:-1].T.copy()
        self.intercept_ = weights[-1].copy()
        if y.ndim == 1:
            self.coef_ = self.coef_[0]
            self.intercept_ = float(self.intercept_[0])
            self.noise_variance_ = float(self.noise_variance_[0])


_PROBE_ROWS = 8

# early_stopping='auto' holds rows out once at least this many would be held out
# (200 samples at the default validation_fraction): the validation R² of fewer
# rows is too noisy to choose an epoch by, and a small fit is quick anyway.
AUTO_EARLY_STOPPING_MIN_ROWS = 20


def _checked_sample_weight(sample_weight, X, group=None):
    """Validated float64 weights of the rows of ``X``, or ``None`` for equal weights."""
    if sample_weight is None:
        return None
    if group is not None:
        raise ValueError("sample_weight is not supported in data-parallel training.")
    # Raises for negative weights and for all-zero ones (no row would train).
    return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)


def _rows_weight(weight, rows, device):
    """The weights of ``rows`` as a float64 tensor on ``device`` (``None`` stays ``None``)."""
    return None if weight is None else as_tensor(weight[rows], device, dtype=torch.float64)


def _target_layout(y, grid):
    """Targets as ``(n, *grid, k)``: ``k`` head outputs at each grid position.

    A backbone with operator-shaped features ``(n, *grid, d)`` shares one head
    over every grid position, so the ``n_outputs`` columns of ``y`` must be the
    grid positions (row-major) times ``k`` outputs per position.
    """
    Y = y.reshape(len(y), -1)
    positions = int(np.prod(grid, dtype=int))
    if Y.shape[1] % positions:
        raise ValueError(
            f"The backbone returns features on a grid of shape {tuple(grid)} "
            f"({positions} positions), so y needs a multiple of {positions} columns "
            f"(positions x outputs per position, row-major); it has {Y.shape[1]}."
        )
    return Y.reshape(len(Y), *grid, Y.shape[1] // positions)


def _probe_backbone(backbone, inputs):
    """Fail fast, before training, on a backbone with the wrong output.

    Returns the grid shape of operator-shaped features (``()`` for plain ones)
    and the feature width ``d``.
    """
    probe = inputs[:_PROBE_ROWS]
    with torch.no_grad():
        backbone.eval()
        try:
            features = backbone(probe)
        except RuntimeError as error:
            raise ValueError(
                f"The backbone failed on a float32 batch of shape {tuple(probe.shape)} "
                f"(n_samples, n_features_in_): {error}"
            ) from error
    check_features(features, probe.shape[0], operator_shaped=True)
    return tuple(features.shape[1:-1]), features.shape[-1]

"""CFLORegressor: a torch backbone trained against a closed-form ridge head."""

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from .._networks.backbones import ACTIVATIONS, MLPBackbone
from .._ridge.head import apply_head, predictive_std
from .._training.cflo import DEFAULT_ALPHAS, CFLOOptions, TrainingResult, train_cflo
from .._training.data import check_features, compute_features
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
    copy_to_device,
    draw_seed,
    make_generator,
    resolve_device,
    rollback_on_failure,
)


def _prediction_features(backbone, X, device):
    """The backbone's features of ``X`` for prediction, in float64 where the module allows.

    float32 matrix products sum in an order that depends on the shape of the
    batch (a single row takes a different kernel than many), so float32
    predictions of one row change in the 7th digit with the rows predicted
    beside it. A float64 copy of the trained network makes a row's prediction
    independent of its batch to ~1e-15, and no less accurate; a module that
    cannot run in float64 (e.g. a custom float32-only operation) predicts in
    float32.
    """
    inputs = as_tensor(X, device, dtype=torch.float64)
    try:
        wide = copy.deepcopy(backbone).to(device=device, dtype=torch.float64)
        return compute_features(wide, inputs)
    except (RuntimeError, TypeError):
        narrow = copy_to_device(backbone, device)
        return compute_features(narrow, inputs.float()).double()


_PROBE_ROWS = 8


class CFLORegressor(RegressorMixin, BaseNetworkEstimator):
    """Neural network regressor with a closed-form ridge last layer.

    The network is ``y = head(backbone(x))``. Only the backbone is trained by
    gradient steps; the linear head is kept at its ridge optimum for the
    current features (Closed-Form Last Layer Optimisation, CFLO). By the
    envelope theorem the backbone gradient is an ordinary backward pass with
    the head held fixed. After training the head is refitted exactly on all
    training data.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the default MLP backbone (ignored when ``backbone`` is set).
    activation : {'relu', 'tanh', 'logistic', 'gelu', 'silu', 'elu', \
'identity'}, default='relu'
        Non-linearity of the default MLP backbone.
    solver : {'adam', 'sgd'}, default='adam'
        Optimiser of the backbone.
    alpha : float or 'auto', default=0.1
        Ridge penalty of the head, per sample: the exact head equals
        ``Ridge(alpha=alpha * n_samples)`` on the backbone features. The
        intercept is not penalised. 'auto' chooses it from ``alphas`` by
        generalised cross-validation at every exact head fit (one
        eigendecomposition of the Gram matrix serves every candidate, as in
        ``RidgeCV``), except that in ``fit`` with ``early_stopping=True`` (and
        ``refit_head=True``) the final head's penalty is the candidate with the
        smallest validation error; the final choice is ``alpha_``. GCV scores
        the training rows, on which the backbone has learnt its features, and
        so picks too small a penalty once the network has trained: if you use
        'auto', use it with early stopping. The fixed default without early
        stopping was still the most accurate on Friedman #1
        (``benchmarks/README.md``). The default, with ``learning_rate_init``,
        was chosen by a sweep on five standardised tabular problems (see
        ``benchmarks/README.md``): it beats ``MLPRegressor()`` on each.
    alphas : array-like of float, default=None
        Candidate per-sample penalties for ``alpha='auto'``; None: eleven
        values from 1e-4 to 10, log-spaced.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'cosine', 'step', 'invscaling', 'adaptive'}, \
default='constant'
        Learning-rate schedule of the backbone optimiser, stepped once per
        epoch: cosine annealing to 0 over ``max_iter`` epochs; a tenfold drop
        at 50% and 75% of ``max_iter``; ``lr / (epoch + 1) ** power_t``; or a
        fivefold drop whenever two epochs fail to lower the loss by ``tol``.
    learning_rate_init : float, default=1e-2
        Learning rate of the backbone optimiser. Higher than
        ``MLPRegressor``'s 1e-3: with the head at its optimum the backbone
        tolerates (and profits from) larger steps; measured in the sweep.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Number of epochs (fewer with ``early_stopping``).
    momentum : float, default=0.9
        Momentum of the 'sgd' solver.
    head_update : {'proximal', 'accumulate', 'full', 'gradient'}, \
default='proximal'
        How the head follows the backbone during training: a batch ridge fit
        pulled toward the previous head ('proximal', the paper's Algorithm 1),
        recursive least squares over all batches with forgetting
        ('accumulate', the Kalman reading), an exact refit once per epoch
        ('full'), or no closed form at all ('gradient': the head is trained by
        the optimiser, the end-to-end baseline).
    proximal_lambda : float, default=0.1
        Per-sample strength of the pull toward the previous head
        ('proximal' only). Smaller values follow each batch more closely.
        0.1 was as good as or better than 1.0 on every problem measured
        (test R² over 3 seeds on diabetes, Friedman #1 at 500 and 2000 rows,
        a 4000-row multi-output problem; final error of Fourier neural
        operators on Burgers and Darcy, where 1.0 ended up to 2x worse); see
        ``benchmarks/README.md``.
    forgetting_factor : float, default=0.99
        Weight kept by past batch statistics at every step ('accumulate' only).
        Tuned with the learning rate on two neural-operator and two tabular
        problems (batches of 20 and 200, 20-40 batches per epoch), 0.9 beat 0.99
        on all four (``benchmarks/README.md``); the shorter memory suits
        features that move quickly. Searched down to 0.05, Friedman #1 (200-row
        batches, 101 head coefficients) was best at 0.05-0.1 (within 0.2%),
        close to a ridge fit on each batch alone; searched down to 0.3, a
        multi-output problem moved by 6% at most from 0.3 to 0.9. The default
        stays long because ``partial_fit`` applies the same factor once per
        chunk, where it is the memory of past chunks.
    recompute_features : bool, default=True
        For the per-batch heads ('proximal', 'accumulate') updated
        ``update_order='backbone_first'``: recompute the
        batch's features with the updated backbone before the head update,
        as the paper's Algorithm 1 does (a second, gradient-free forward pass
        per batch). ``False`` reuses the features of the gradient step's own
        forward pass, so the head lags the backbone by one step: measured
        equally accurate (within 0.4%) with 1-2 rows per head coefficient in a
        batch at a learning rate of 1e-2, 3-7% higher error with 5-20 on a
        low-noise tabular problem and 10-40% on Fourier neural operators, for
        0.1-0.5x less time per epoch; the faster the backbone moves, the more
        the lag costs (50% higher error on that tabular problem at 2 rows per
        coefficient and a learning rate of 0.3; see ``benchmarks/README.md``).
    update_order : {'auto', 'backbone_first', 'head_first'}, default='auto'
        Order of the two updates on each mini-batch, for the per-batch heads
        ('proximal', 'accumulate'). 'backbone_first' is the paper's Algorithm
        1: a backbone step against the current head, then the head update on
        the batch (on recomputed or reused features, ``recompute_features``).
        'head_first' fits the head on the features of the batch's forward pass
        first, then steps the backbone against that new head: one forward pass
        per batch, no lag, and the backbone gradient of the batch loss at its
        (proximal) optimal head, as in deterministic CFLO. Measured (see
        ``benchmarks/README.md``): on noise-free neural-operator data lower
        error at every epoch and 0.8-0.9x the time per epoch; on noisy tabular
        data ahead early but behind at the end (the head fits each batch's
        noise before the backbone sees its residuals). 'auto' chooses
        'head_first' when a mini-batch has at least 10 rows per head
        coefficient (samples times grid positions, against the feature width
        plus one), and 'backbone_first' otherwise; the choice is stored in
        ``update_order_``. The bound was measured with 'proximal': on noisy
        Friedman #1 head first ended 18%, 10% and 3% behind at 1, 2 and 5
        rows per coefficient and ahead at 9.9 and 20, on a low-noise problem
        ahead from 5 (10 is the conservative end of that crossover); the
        neural-operator benchmarks have 39 and 155.
    head_update_interval : int, default=1
        For the per-batch heads ('proximal', 'accumulate'): update the head on
        every ``head_update_interval``-th mini-batch only (its second forward
        pass and its solve); the batches between train the backbone against
        the current head. The solve costs about as much as a backbone layer of
        the head's width: with 4, the default head's time per epoch went from
        1.1-2.0x to 0.9-1.2x end-to-end Adam's (widths 64-4096). Its accuracy
        cost grows with how far each batch moves the head: 0-2% on Friedman #1,
        20-31% higher final error on a low-noise multi-output problem at a fast
        learning rate, up to 2x on Fourier neural operators trained in the
        paper's order (``benchmarks/README.md``).
    refit_head : bool, default=True
        Refit the head exactly on all training data after the last epoch.
    backbone : None, spec, torch.nn.Module or callable, default=None
        The feature network. ``None`` builds an MLP from
        ``hidden_layer_sizes`` and ``activation``; a spec such as
        :class:`~skcflo.MLPBackbone` exposes its parameters to grid search as
        ``backbone__<name>``; an ``nn.Module`` mapping ``(n, n_features)``
        float tensors to ``(n, d)`` features is deep-copied and trained as the
        copy; a callable ``factory(n_features_in)`` returns such a module.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, score R² on it
        after every epoch, stop when it has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and restore the best backbone and head
        (the head is then refitted on the training part).
    warm_start : bool, default=False
        Start ``fit`` from the previously fitted backbone instead of a fresh
        initialisation; ``n_iter_`` and ``loss_curve_`` continue.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        Least improvement of the validation R² that counts (and of the loss,
        for the 'adaptive' schedule).
    device : str or torch.device, default='auto'
        Where to train and predict; 'auto' picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and mini-batch order; the global torch
        RNG is left untouched.
    verbose : bool, default=False
        Show a progress bar (epochs, training loss, validation R²) in the
        terminal or notebook.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` was a DataFrame with string column names.
    n_outputs_ : int
        Number of targets.
    n_iter_ : int
        Number of completed epochs.
    loss_curve_ : list of float
        Mean squared training error of each epoch, in the units of ``y``
        (measured on the mini-batches as they were trained).
    best_loss_ : float
        The smallest entry of ``loss_curve_``.
    validation_scores_ : list of float or None
        Validation R² after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        The best validation R²; the model is the state that reached it.
    coef_ : ndarray of shape (d,) or (n_outputs, d)
        Head coefficients on the ``d`` backbone features.
    intercept_ : float or ndarray of shape (n_outputs,)
        Head intercept.
    backbone_ : torch.nn.Module
        The trained backbone, on the CPU.
    update_order_ : {'backbone_first', 'head_first'}
        The per-batch update order trained with: ``update_order`` resolved
        (it affects the per-batch heads, 'proximal' and 'accumulate', only).
        After ``partial_fit``, the order of the last chunk's batches.
    alpha_ : float
        The head penalty used (chosen by ``alpha='auto'``: on the validation
        rows for the final refit with ``early_stopping``, otherwise by GCV).
    noise_variance_ : float or ndarray of shape (n_outputs,)
        Noise variance of ``y``: the mean squared residual on the validation
        set with ``early_stopping`` (unbiased, up to the slight optimism of
        having chosen the epoch, and with ``alpha='auto'`` the penalty, on the
        same rows), otherwise ``RSS / (n - df)`` on
        the training data with ``df`` the head's effective degrees of freedom
        (optimistic when the backbone has fitted the training targets).

    See Also
    --------
    sklearn.neural_network.MLPRegressor : the same network trained end to end.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skcflo import CFLORegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    >>> model = CFLORegressor(max_iter=20, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    >>> bool(model.score(X, y) > 0.9)
    True
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
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-1,
        alphas=None,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-2,
        power_t=0.5,
        max_iter=200,
        momentum=0.9,
        head_update="proximal",
        proximal_lambda=0.1,
        forgetting_factor=0.99,
        recompute_features=True,
        update_order="auto",
        head_update_interval=1,
        refit_head=True,
        backbone=None,
        early_stopping=False,
        warm_start=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.alphas = alphas
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.momentum = momentum
        self.head_update = head_update
        self.proximal_lambda = proximal_lambda
        self.forgetting_factor = forgetting_factor
        self.recompute_features = recompute_features
        self.update_order = update_order
        self.head_update_interval = head_update_interval
        self.refit_head = refit_head
        self.backbone = backbone
        self.early_stopping = early_stopping
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the backbone and the closed-form head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (float or int; pandas DataFrames keep their names).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self : CFLORegressor
            The fitted estimator.
        """
        warm = self._warm_start_state()
        group = current_data_parallel()
        with rollback_on_failure(self):
            X, y = self._validated_training_data(X, y, reset=True)
            device, seed = self._device_and_seed(group, len(X))
            backbone = self._initial_backbone(warm, seed, device)
            train, validation = self._split_rows(len(X), seed)
            inputs = as_tensor(X[train], device)
            grid, width = _probe_backbone(backbone, inputs)
            Y = _target_layout(y, grid)
            targets = as_tensor(Y[train], device, dtype=torch.float64)
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
                ),
                group=group,
            )
            if warm is not None:
                result.loss_curve[:0] = warm.loss_curve_
                result.n_iter += warm.n_iter_
            self._store_result(result, y)
            self.update_order_ = order
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
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
            device = resolve_device(self.device)
            inputs = as_tensor(X, device)
            options = self._training_options(len(X))
            stream = self._start_stream(inputs, y, device, options) if first_call else self._stream_
            stream.to(device)
            targets = as_tensor(_target_layout(y, stream.grid), device, dtype=torch.float64)
            batch_rows = min(options.batch_size, len(X))
            order = self._update_order(batch_rows, stream.grid, stream.n_coefficients)
            loss = stream.train_chunk(
                inputs, targets, self._head_update(order), options, self.forgetting_factor
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
        order = np.random.RandomState(seed).permutation(n_samples)
        train, validation = self._split_validation(order, min_training=2)
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
        y = np.asarray(y, dtype=np.float64)
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

    def _start_stream(self, inputs, y, device, options):
        seed = draw_seed(self.random_state)
        if self._is_fitted():
            backbone = copy.deepcopy(self.backbone_).to(device)
        else:
            backbone = build_seeded_backbone(
                self._backbone_spec(), self.n_features_in_, seed, device
            )
        grid, _ = _probe_backbone(backbone, inputs)
        targets = as_tensor(_target_layout(y, grid), device, dtype=torch.float64)
        return Stream(backbone, inputs, targets, options, make_generator(seed), grid)

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

    def predict(self, X, return_std=False):
        """Predict with the trained backbone and head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of the predictive distribution
            from the Bayesian reading of the head: a Gaussian posterior over
            the last layer (prior precision ``n * alpha``), with the backbone
            held fixed and the noise level ``noise_variance_`` estimated from
            the residuals (on the validation rows with ``early_stopping``,
            otherwise on the training rows).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
        y_std : ndarray of the same shape, float64
            Only with ``return_std=True``.
        """
        X, device = self._prediction_input(X)
        features = _prediction_features(self.backbone_, X, device)
        weights = torch.from_numpy(self._head_weights()).to(device)
        outputs = [apply_head(features, weights)]
        if return_std:
            inverse_system = torch.from_numpy(self._inverse_system_).to(device)
            noise = torch.from_numpy(np.atleast_1d(self.noise_variance_)).to(device)
            rows = features.reshape(-1, features.shape[-1])
            outputs.append(predictive_std(rows, inverse_system, noise))
        # Operator-shaped outputs (n, *grid, k) flatten to scikit-learn's (n, n_outputs).
        outputs = [o.reshape(len(X), -1).cpu().numpy() for o in outputs]
        if np.ndim(self.intercept_) == 0:
            outputs = [o.ravel() for o in outputs]
        return tuple(outputs) if return_std else outputs[0]

    def _backbone_spec(self):
        if self.backbone is None:
            return MLPBackbone(self.hidden_layer_sizes, self.activation)
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

    def _head_weights(self):
        """The augmented ``(d + 1, n_outputs)`` head matrix from ``coef_``, ``intercept_``."""
        coef = np.atleast_2d(self.coef_)
        return np.vstack([coef.T, np.atleast_1d(self.intercept_)[None, :]])


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

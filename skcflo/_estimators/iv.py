"""DFIVRegressor: deep-feature instrumental-variable regression with closed-form heads."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from .._ridge.dfiv_stages import predict_stage1, structural_prediction
from .._ridge.inference import COV_TYPES
from .._training.data import compute_features
from .._training.dfiv import train_dfiv
from ..distributed import current_data_parallel
from .base import BACKBONE_CONSTRAINT
from .dfiv_base import BaseDFIV
from .diagnostics import warn_if_weak
from .docs import fill_shared_docs
from .glue import (
    as_tensor,
    copy_to_device,
    make_generator,
    rollback_on_failure,
    uses_n_jobs_threads,
)


@fill_shared_docs
class DFIVRegressor(RegressorMixin, BaseDFIV):
    """Deep-feature instrumental-variable regression (DFIV) with closed-form heads.

    Estimates the structural function ``h(treatment, covariates)`` of
    ``y = h(X) + e`` when the treatment is confounded with the noise ``e`` and
    excluded instruments ``Z`` are observed. Three networks learn treatment,
    instrument and covariate features; two ridge stages on those features are
    solved in closed form (Xu et al., ICLR 2021). Inputs and the outcome are
    standardised internally, so raw data can be passed as it is.

    Parameters
    ----------
    covariates : array-like of int, bool or str, default=None
        Which columns of ``X`` are exogenous covariates (indices, a boolean
        mask, or feature names when ``X`` is a DataFrame). The other columns
        are the treatment. ``None``: every column is treatment.
    treatment_backbone, instrument_backbone, covariate_backbone : \
None, 'linear', spec, nn.Module or callable, default=None
        Feature networks (see :class:`CFLORegressor` ``backbone``). ``None``
        uses MLPs of widths (16, 16), (128, 64, 32) and (128, 32, 16);
        ``'linear'`` uses the (standardised) inputs themselves as features.
        With linear treatment and instrument features, no covariates and
        zero penalties, the fit is two-stage least squares (with the exogenous
        regressors among the treatment columns and in ``Z``). The instrument
        network sees the instruments and the covariates together.
    stage1_alpha : float or 'auto', default=0.1
        Per-sample ridge penalty of stage 1 (instrument -> treatment
        features). 'auto' chooses, before every epoch and for the final heads,
        the candidate (1e-4 to 10) whose head solved on the stage-1 half
        predicts the stage-2 half's treatment features best.
    stage2_alpha : float or 'auto', default=0.1
        Per-sample ridge penalty of stage 2 (-> outcome). 'auto' chooses the
        candidate with the smallest cross-fitted IV loss (see
        ``early_stopping``): stage 2's head solved on the stage-2 half,
        scored on the stage-1 half's outcomes.
    split_ratio : float, default=0.5
        Fraction of the sample used for stage 1; the rest is used for stage 2.
    max_iter : int, default=10
        Number of epochs. The reference code runs 100 epochs at learning rate
        1e-3 on raw inputs; with standardised inputs, learning rate 1e-2 and
        three treatment steps per epoch, 10 epochs reach a lower error on the
        demand design in a tenth of the time (``benchmarks/bench_dfiv.py``).
    stage1_iter : int or 'auto', default='auto'
        Instrument-network steps per epoch (per mini-batch). 'auto': 20 with
        full batches (the reference schedule), 5 per mini-batch. On the demand
        design with ``batch_size=1000`` (one seed each), 20 steps per batch
        took 65 s for level MSE 42 at n=100,000 and 465 s for 447 at
        n=1,000,000; 5 steps took 36 s for 38 and 116 s for 19.
    covariate_iter : int or 'auto', default='auto'
        Covariate-network steps per epoch (per mini-batch); 'auto' as for
        ``stage1_iter``.
    stage2_iter : int, default=3
        Treatment-network steps per epoch (per mini-batch).
    batch_size : int or 'full', default='full'
        'full' trains on the whole halves each step (the reference schedule);
        an int trains on mini-batches of each half, with heads solved on the
        batch and pulled toward their previous values by ``proximal_lambda``.
        Both halves are cut into the same number of batches, about
        ``batch_size`` rows each in the smaller half, and every row is used
        once per epoch.
    proximal_lambda : float, default=1.0
        Proximal strength of the mini-batch heads (ignored with 'full').
    refit_head : bool, default=True
        After training, solve both heads exactly on all rows (both halves, and
        early stopping's held-out rows), the networks fixed: two-stage least squares on the learned
        features. Without it the heads are those of the last training step
        (with mini-batches, the proximal running heads: no pass over the
        whole data is needed), and the intervals of the effects assume heads
        that were not fitted that way.
    solver : {'adam', 'sgd'}, default='adam'
        Optimiser of the three networks.
    learning_rate : {'constant', 'cosine', 'step', 'invscaling', 'adaptive'}, \
default='constant'
        $learning_rate
    learning_rate_init : float or 'auto', default='auto'
        Learning rate of the three networks' optimiser. 'auto' is 1e-2 with
        full batches and 1e-3 with mini-batches, which take as many optimiser
        steps per epoch as there are batches: on the demand design (rho 0.5,
        ``batch_size=1000``, scratch runs) 1e-2 ran away at n=100,000 (level
        MSE 9,409) and gave 73 against 46 at n=20,000; 1e-3 gave 56 at
        n=100,000, where full batches give about 72.
    power_t : float, default=0.5
        $power_t
    momentum : float, default=0.9
        $momentum
    early_stopping : 'cross-fit' or bool, default='cross-fit'
        How the number of epochs is guarded. After every epoch an IV
        criterion (a stage-2 loss, not the outcome MSE) is computed; training
        stops when it has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and the networks of its best epoch are restored.

        - 'cross-fit': the stage-2 loss of the stage-1 half's outcomes, which
          training never uses, with their treatment features predicted by a
          stage-1 head solved on the other half. No rows are held out. Where
          the loss is flat, more training wins: the networks kept are those of
          the latest epoch within ``tol`` of the best.
        - True: the stage-2 loss of ``validation_fraction`` of the rows, held
          out of training.
        - False: no guard; exactly ``max_iter`` epochs, the last one kept
          (the reference schedule).

        Without a guard more training silently overfits: on the demand design
        (n=2000, rho=0.5) the level MSE grew from 208 at 10 epochs to 2,800
        at 100 (``benchmarks/bench_iv_inference.py --sweep``).
    validation_fraction : float, default=0.1
        Share of the rows held out with ``early_stopping=True``.
    n_iter_no_change : int, default=3
        Patience of ``early_stopping``, in epochs.
    tol : float, default=3e-4
        Least improvement of the IV criterion that counts (standardised
        outcome units; on the demand design the criterion is about 0.007).
    cov_type : {'robust', 'unadjusted'}, default='robust'
        Form of the stage-2 head's covariance behind the intervals of
        :meth:`effect_interval` and :meth:`ate_interval`: White's
        heteroskedasticity-consistent sandwich, or the homoskedastic
        two-stage least-squares one (``linearmodels``' ``IV2SLS`` names).
    device : str or torch.device, default='auto'
        $device
    n_jobs : int or None, default=None
        $n_jobs
    random_state : int, RandomState instance or None, default=None
        Seeds the sample split, network initialisation and batch order.
    verbose : bool, default=False
        Show a progress bar (epochs and stage-2 loss) in the terminal or notebook.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    n_outputs_ : int
    covariate_mask_ : ndarray of bool of shape (`n_features_in_`,)
        True for covariate columns of ``X``.
    n_instruments_ : int or None
        Number of columns of ``Z`` in fit (None when fitted without ``Z``).
    stage1_alpha_, stage2_alpha_ : float
        The penalties of the final heads (the chosen ones with 'auto').
    n_iter_ : int
    loss_curve_ : list of float
        Stage-2 training loss of each epoch (standardised outcome units).
    validation_scores_ : list of float or None
        Negative IV criterion after each epoch (see ``early_stopping``;
        None when it is False).
    best_validation_score_ : float or None
        The best of ``validation_scores_``; the networks are from that epoch.
    treatment_backbone_, instrument_backbone_, covariate_backbone_ : nn.Module
        Trained networks on the CPU (``covariate_backbone_`` is None without
        covariates); each includes its input standardisation.
    stage1_weights_ : ndarray of shape (d_z + 1, d_t)
    stage2_weights_ : ndarray of shape (d_2 + 1, n_outputs)
    first_stage_ : FirstStage
        Instrument diagnostics on the stage-2 half: R², partial R² and F of
        the treatment features and of the effect index on their out-of-sample
        prediction from the instruments, beyond the covariates. A
        :class:`~skcflo.WeakInstrumentWarning` is raised when the pooled F of
        the treatment features is below 10.

    Examples
    --------
    >>> from skcflo import DFIVRegressor
    >>> from skcflo.datasets import make_demand
    >>> data = make_demand(n_samples=500, rho=0.5, random_state=0)
    >>> model = DFIVRegressor(covariates=[1, 2], max_iter=2, random_state=0)
    >>> model.fit(data.X, data.y, Z=data.Z).predict(data.X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **BaseDFIV._parameter_constraints,
        "covariates": [None, "array-like"],
        "treatment_backbone": [*BACKBONE_CONSTRAINT, StrOptions({"linear"})],
        "instrument_backbone": [*BACKBONE_CONSTRAINT, StrOptions({"linear"})],
        "covariate_backbone": [*BACKBONE_CONSTRAINT, StrOptions({"linear"})],
        "cov_type": [StrOptions(set(COV_TYPES))],
        "stage1_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "stage2_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "split_ratio": [Interval(Real, 0, 1, closed="neither")],
        "stage1_iter": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "covariate_iter": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "stage2_iter": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [StrOptions({"full"}), Interval(Integral, 1, None, closed="left")],
        "proximal_lambda": [Interval(Real, 0, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "early_stopping": ["boolean", StrOptions({"cross-fit"})],
    }

    def __init__(
        self,
        covariates=None,
        *,
        treatment_backbone=None,
        instrument_backbone=None,
        covariate_backbone=None,
        stage1_alpha=0.1,
        stage2_alpha=0.1,
        split_ratio=0.5,
        max_iter=10,
        stage1_iter="auto",
        covariate_iter="auto",
        stage2_iter=3,
        batch_size="full",
        proximal_lambda=1.0,
        refit_head=True,
        solver="adam",
        learning_rate="constant",
        learning_rate_init="auto",
        power_t=0.5,
        momentum=0.9,
        early_stopping="cross-fit",
        validation_fraction=0.1,
        n_iter_no_change=3,
        tol=3e-4,
        cov_type="robust",
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=False,
    ):
        self.covariates = covariates
        self.treatment_backbone = treatment_backbone
        self.instrument_backbone = instrument_backbone
        self.covariate_backbone = covariate_backbone
        self.stage1_alpha = stage1_alpha
        self.stage2_alpha = stage2_alpha
        self.split_ratio = split_ratio
        self.max_iter = max_iter
        self.stage1_iter = stage1_iter
        self.covariate_iter = covariate_iter
        self.stage2_iter = stage2_iter
        self.batch_size = batch_size
        self.proximal_lambda = proximal_lambda
        self.refit_head = refit_head
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.cov_type = cov_type
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_n_jobs_threads
    def fit(self, X, y, Z=None):
        """Learn the structural function from ``(X, y)`` and instruments ``Z``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Treatment columns and covariates (see ``covariates``).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Outcome.
        Z : array-like of shape (n_samples, n_instruments), default=None
            Excluded instruments. ``None``: ``X`` is its own instrument (no
            confounding; DFIV then reduces to a regression of ``y`` on ``X``).

        Returns
        -------
        self : DFIVRegressor
        """
        with rollback_on_failure(self):
            if current_data_parallel() is not None:
                # Each process would silently train the whole model on its own.
                raise ValueError(
                    "DFIVRegressor does not support data-parallel training "
                    "(skcflo.distributed.data_parallel); fit it outside that block."
                )
            X, y = validate_data(
                self,
                X,
                y,
                dtype=[np.float64, np.float32],
                multi_output=True,
                y_numeric=True,
                ensure_min_samples=2,
            )
            mask = self._covariate_mask()
            instruments = self._validated_instruments(Z, X, mask)
            device, seed = self._device_and_seed()
            sample, scaler = self._sample(X, y, mask, instruments, device)
            first, second, validation = self._split(sample, seed)
            networks = self._networks(sample, seed, device)
            result = train_dfiv(
                networks, self._options(), make_generator(seed), first, second, validation
            )
            # (Before _store, which moves the networks to the CPU.)
            self._store_inference(networks, result, scaler, (first, second, validation), seed)
            self._store(networks, result, scaler, mask, y.ndim)
            self.n_instruments_ = None if Z is None else instruments.shape[1]
        if Z is not None:
            # (Without Z the treatment is its own, perfectly relevant instrument.)
            warn_if_weak(self.first_stage_, _instrument_name(Z), stacklevel=4)
        return self

    @uses_n_jobs_threads
    def predict(self, X):
        """Estimated structural function ``h(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
        """
        X, device = self._prediction_input(X)
        treatment, covariate = self._features(X, device)
        weights = torch.from_numpy(self.stage2_weights_).to(device)
        predictions = structural_prediction(treatment, covariate, weights).cpu().numpy()
        return predictions.ravel() if self._y_was_1d_ else predictions

    @uses_n_jobs_threads
    def iv_loss(self, X, y, Z=None, *, stage=2):
        """Out-of-sample loss of one DFIV stage, the criterion for model selection.

        On a confounded sample the outcome MSE of ``predict`` is the wrong
        criterion (it rewards the confounded regression). DFIV and kernel IV
        select penalties by held-out stage losses instead:

        * ``stage=2``: mean squared error of ``y`` against the outcome
          predicted from the instruments, ``(aug(psi(Z, O)) V (x) chi(O)) u``;
        * ``stage=1``: mean squared error of the treatment features
          ``phi(X)`` against their prediction ``aug(psi(Z, O)) V``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Z : array-like of shape (n_samples, n_instruments), default=None
            ``None`` uses ``X`` as its own instrument, as in ``fit``.
        stage : {1, 2}, default=2

        Returns
        -------
        float
        """
        X, device = self._prediction_input(X)
        y = self._validated_outcome(y, len(X))
        instruments = self._validated_instruments(Z, X, self.covariate_mask_, reset=False)
        treatment, covariate = self._features(X, device)
        instrument_input = instruments
        if covariate is not None:
            instrument_input = np.hstack([instruments, X[:, self.covariate_mask_]])
        instrument = compute_features(
            copy_to_device(self.instrument_backbone_, device),
            as_tensor(instrument_input, device),
        )
        stage1 = torch.from_numpy(self.stage1_weights_).to(device)
        predicted = predict_stage1(instrument, stage1)
        if stage == 1:
            return float((predicted - treatment.double()).pow(2).mean())
        if stage != 2:
            raise ValueError(f"stage must be 1 or 2, got {stage!r}.")
        weights = torch.from_numpy(self.stage2_weights_).to(device)
        outcome = structural_prediction(predicted, covariate, weights).cpu().numpy()
        outcome = outcome.reshape(y.shape)
        return float(np.mean((y - outcome) ** 2))


def _instrument_name(Z):
    """How the weak-instrument warning names the instrument."""
    columns = getattr(Z, "columns", None)
    if columns is not None:
        return "Z " + str([str(column) for column in columns])
    n_columns = int(np.prod(np.shape(Z)[1:]))
    return f"Z ({n_columns} column{'s' if n_columns != 1 else ''})"

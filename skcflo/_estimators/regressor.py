"""CFLORegressor: a torch backbone trained against a closed-form ridge head."""

from sklearn.base import RegressorMixin

from .cflo import BaseCFLO
from .docs import fill_shared_docs


@fill_shared_docs
class CFLORegressor(RegressorMixin, BaseCFLO):
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
    alpha : float or 'auto', default='auto'
        Ridge penalty of the head, per sample: the exact head equals
        ``Ridge(alpha=alpha * n_samples)`` on the backbone features. The
        intercept is not penalised. 'auto' chooses it from ``alphas`` by
        generalised cross-validation at every exact head fit (one
        eigendecomposition of the Gram matrix serves every candidate, as in
        ``RidgeCV``), except that in ``fit`` with early stopping (and
        ``refit_head=True``) the final head's penalty is the candidate with the
        smallest validation error; the final choice is ``alpha_``. GCV scores
        the training rows, on which the backbone has learnt its features, and
        so picks too small a penalty once the network has trained; the
        validation rows do not. The default 'auto', with
        ``early_stopping='auto'`` and ``include_inputs=True``, was chosen on
        eight real data sets (``benchmarks/bench_real.py``): it never trailed
        ``max(MLPRegressor(), RidgeCV)`` by more than 0.005 R², where the
        former default (0.1, all 200 epochs) trailed by up to 0.05 on small
        noisy sets. A fixed 0.1 without early stopping remains the most
        accurate setting on Friedman #1 (``benchmarks/README.md``).
    alphas : array-like of float, default=None
        Candidate per-sample penalties for ``alpha='auto'``; None: eleven
        values from 1e-4 to 10, log-spaced.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'cosine', 'step', 'invscaling', 'adaptive'}, \
default='constant'
        $learning_rate
    learning_rate_init : float, default=1e-2
        Learning rate of the backbone optimiser. Higher than
        ``MLPRegressor``'s 1e-3: with the head at its optimum the backbone
        tolerates (and profits from) larger steps; measured in the sweep.
    power_t : float, default=0.5
        $power_t
    max_iter : int, default=200
        Number of epochs (fewer with early stopping).
    momentum : float, default=0.9
        $momentum
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
        ``hidden_layer_sizes``, ``activation`` and ``include_inputs``; a spec such as
        :class:`~skcflo.MLPBackbone` exposes its parameters to grid search as
        ``backbone__<name>``; an ``nn.Module`` mapping ``(n, n_features)``
        float tensors to ``(n, d)`` features is deep-copied and trained as the
        copy; a callable ``factory(n_features_in)`` returns such a module.
    include_inputs : bool, default=True
        For the default MLP backbone (``backbone=None``): put the inputs
        beside the learned features, so that the head is linear in the inputs
        as well and ridge regression on the inputs is nested in the model
        (``MLPBackbone(include_inputs=True)``). Put a ``StandardScaler``
        before the model, as for any network: the head's penalty then treats
        every input alike. Measured in ``benchmarks/bench_real.py``.
    early_stopping : bool or 'auto', default='auto'
        Hold out ``validation_fraction`` of the training data, score R² on it
        after every epoch, stop when it has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and restore the best backbone and head
        (the head is then refitted on the training part). 'auto' does so when
        at least 20 rows would be held out (200 samples at the default
        ``validation_fraction``) and otherwise trains all ``max_iter`` epochs on
        every row: fewer held-out rows score R² too noisily to choose an epoch
        by. On the real data sets of ``benchmarks/bench_real.py`` early
        stopping gained up to 0.06 R² on small noisy sets, lost at most 0.01
        on large ones and cut the fit time 3-10x.
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
        $device
    n_jobs : int or None, default=None
        $n_jobs
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
        Validation R² after each epoch (with early stopping only).
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
        rows for the final refit with early stopping, otherwise by GCV).
    noise_variance_ : float or ndarray of shape (n_outputs,)
        Noise variance of ``y``: the mean squared residual on the validation
        set with early stopping (unbiased, up to the slight optimism of
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

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha="auto",
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
        include_inputs=True,
        early_stopping="auto",
        warm_start=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        n_jobs=None,
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
        self.include_inputs = include_inputs
        self.early_stopping = early_stopping
        self.warm_start = warm_start
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

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
            the residuals (on the validation rows with early stopping,
            otherwise on the training rows).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
        y_std : ndarray of the same shape, float64
            Only with ``return_std=True``.
        """
        return self._head_outputs(X, return_std=return_std)

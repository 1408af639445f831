"""How the head follows the backbone during training.

Each strategy turns a mini-batch of fresh features into new head weights
using the ridge solver of :mod:`skcflo._ridge.head`:

* ``"proximal"`` (the CFLO paper's Algorithm 1): a ridge fit on the batch
  pulled toward the previous head, ``W_t = argmin ||Y - aug(Phi) W||^2 +
  B lam ||W - W_{t-1}||^2 + B alpha ||W||^2``.
* ``"accumulate"`` (the Kalman / recursive least-squares reading): the ridge
  statistics of every batch seen so far, each past batch discounted by a
  forgetting factor since the features drift as the backbone moves.
* ``"full"`` (the deterministic alternation): an exact refit on all training
  data at the start of every epoch, the head held fixed within the epoch.
  With a batch as large as the data set this is full-batch alternation.
* ``"gradient"``: no closed form; the head is an ordinary layer trained by
  the optimiser. This is the end-to-end baseline the method is compared to.

The per-batch strategies ('proximal', 'accumulate') order each batch's two
updates in one of three ways; the loop asks the strategy which:

* after the backbone step, on the batch's features recomputed with the updated
  backbone (``recompute_features=True``; the paper's Algorithm 1, a second
  forward pass per batch);
* after the backbone step, on the features its forward pass computed
  (``recompute_features=False``; one forward pass, the head lags one step);
* before the backbone step, on the features of the batch's forward pass, the
  step then taken against the new head (``head_first=True``; one forward pass,
  no lag).

:func:`resolve_update_order` chooses between the two orders from the shape of
a batch (``update_order='auto'``, the estimator's default).

With ``interval=k`` a per-batch strategy does its work (the optional second
forward pass and the solve) on every k-th mini-batch only; the batches between
train the backbone against the current head. The solve costs O(B d^2) per batch,
as much as a backbone layer of width d, so this is what brings the head's cost
per epoch near end-to-end training for wide heads (``benchmarks/README.md``).

In data-parallel training (:mod:`skcflo.distributed`) the loop sets a
strategy's ``reduce`` to a function that sums ridge statistics over the
processes, each of which holds a share of every batch.
"""

from .._ridge.head import RidgeStatistics, solve_head, solve_proximal_batch

HEAD_UPDATES = ("proximal", "accumulate", "full", "gradient")
UPDATE_ORDERS = ("auto", "backbone_first", "head_first")

# A head fitted to a batch before the backbone steps absorbs about (d + 1) / rows
# of the batch's residual (the trace of its hat matrix over the rows, less with a
# penalty): with few rows per coefficient the backbone then trains on shrunken,
# noise-fitted residuals. Measured (benchmarks/bench_update_order.py: test MSE
# after 100 epochs, 3 seeds, 101 coefficients, 1 to 20 rows per coefficient),
# head first lost 18%, 10% and 3% on noisy Friedman #1 at 1, 2 and 5 rows per
# coefficient and was ahead at 9.9 and 20; on a low-noise multi-output problem
# it was ahead from 5. The crossover lies between 5 and 9.9; 10 is its
# conservative end, far below the neural operators' 39 and 155 rows per
# coefficient, where head first also saves the second forward pass. Measured
# with the proximal head; the accumulated head, fitted to many batches, is
# less exposed to one batch's noise, so the bound is cautious for it too.
HEAD_FIRST_MIN_ROWS_PER_COEFFICIENT = 10


def resolve_update_order(update_order, rows_per_batch, n_coefficients):
    """The per-batch order to train with; ``'auto'`` decides by rows per coefficient.

    ``'auto'`` is ``'head_first'`` when a mini-batch has at least
    :data:`HEAD_FIRST_MIN_ROWS_PER_COEFFICIENT` rows per head coefficient
    (operator-shaped batches count every grid position as a row), otherwise
    ``'backbone_first'``; the other values are returned as they are.

    Parameters
    ----------
    update_order : {'auto', 'backbone_first', 'head_first'}
        The estimator's parameter; only ``'auto'`` is resolved.
    rows_per_batch : int
        Rows of the ridge problem in one mini-batch: samples times grid positions.
    n_coefficients : int
        Coefficients of the head per output: feature width plus the intercept.

    Returns
    -------
    order : {'backbone_first', 'head_first'}

    Examples
    --------
    >>> resolve_update_order("auto", rows_per_batch=20 * 64, n_coefficients=33)
    'head_first'
    >>> resolve_update_order("auto", rows_per_batch=200, n_coefficients=101)
    'backbone_first'
    """
    if update_order != "auto":
        return update_order
    if rows_per_batch >= HEAD_FIRST_MIN_ROWS_PER_COEFFICIENT * n_coefficients:
        return "head_first"
    return "backbone_first"


class _EveryKthBatch:
    """Counts the mini-batches of a fit and says which ones update the head."""

    def __init__(self, recompute_features, interval, head_first):
        self.recompute_features = recompute_features
        self.interval = interval
        self.head_first = head_first
        self.reduce = None
        self.batches_seen = 0

    def due(self):
        """Whether the batch just trained on updates the head (every ``interval``-th)."""
        self.batches_seen += 1
        return self.batches_seen % self.interval == 0


class ProximalUpdate(_EveryKthBatch):
    """Batch ridge fit regularised toward the previous head."""

    def __init__(
        self, alpha, proximal_lambda, *, recompute_features=True, interval=1, head_first=False
    ):
        super().__init__(recompute_features, interval, head_first)
        self.alpha = alpha
        self.proximal_lambda = proximal_lambda

    def start(self, stats):
        """Called with the statistics of the exact initial fit; nothing to keep."""

    def update(self, weights, features, targets):
        if self.reduce is not None:
            # Data-parallel: this process holds a share of the batch; the sum of
            # every share's statistics is the batch's.
            stats = self.reduce(RidgeStatistics.from_batch(features, targets))
            return solve_head(stats, self.alpha, self.proximal_lambda, previous=weights)
        # Woodbury in the batch's row space when the batch is narrower than the head.
        return solve_proximal_batch(
            features, targets, self.alpha, self.proximal_lambda, previous=weights
        )


class AccumulateUpdate(_EveryKthBatch):
    """Recursive least squares with exponential forgetting of old batches."""

    def __init__(
        self, alpha, forgetting_factor, *, recompute_features=True, interval=1, head_first=False
    ):
        super().__init__(recompute_features, interval, head_first)
        self.alpha = alpha
        self.forgetting_factor = forgetting_factor
        self.stats = None

    def start(self, stats):
        self.stats = stats

    def update(self, weights, features, targets):
        batch = RidgeStatistics.from_batch(features, targets)
        if self.reduce is not None:
            batch = self.reduce(batch)
        self.stats = self.stats.discounted(self.forgetting_factor) + batch
        return solve_head(self.stats, self.alpha)


class FixedWithinEpoch:
    """Head refitted exactly once per epoch (by the loop); batches leave it alone."""

    recompute_features = False
    head_first = False
    reduce = None

    def start(self, stats):
        """The loop does the per-epoch refit."""

    def due(self):
        """Never: the head stays fixed within the epoch."""
        return False

    def update(self, weights, features, targets):
        return weights


def make_head_update(name, alpha, proximal_lambda, forgetting_factor, **batch_schedule):
    """The strategy object for ``name``; ``None`` for the gradient-trained head.

    ``batch_schedule``: ``recompute_features``, ``interval`` and ``head_first`` of
    the per-batch strategies (see the module docstring).
    """
    if name == "proximal":
        return ProximalUpdate(alpha, proximal_lambda, **batch_schedule)
    if name == "accumulate":
        return AccumulateUpdate(alpha, forgetting_factor, **batch_schedule)
    if name == "full":
        return FixedWithinEpoch()
    if name == "gradient":
        return None
    raise ValueError(f"head_update must be one of {HEAD_UPDATES}, got {name!r}.")

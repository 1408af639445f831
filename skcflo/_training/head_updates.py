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

In data-parallel training (:mod:`skcflo.distributed`) a per-batch strategy is
built with ``reduce``, a function that sums ridge statistics over the
processes, each of which holds a share of every batch.
"""

import math

import torch
from torch import nn

from .._ridge.head import RidgeStatistics, apply_head, solve_head, solve_proximal_batch

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


class HeadUpdate:
    """How the head follows the backbone: the interface the training loop calls.

    A strategy is built with everything it needs (:func:`make_head_update`)
    and then only answers the loop's calls; the loop never writes into it.
    The penalty of the latest exact head is an argument of :meth:`update`,
    since ``alpha='auto'`` may change it between epochs.
    """

    head_first = False
    recompute_features = False

    def begin(self, stats, exact_weights, generator):
        """Start training from the exact head on the initial features.

        ``stats`` are the ridge statistics the exact head ``exact_weights`` was
        solved on. Returns the head to train with and a list of head
        parameters the optimiser trains beside the backbone (empty for closed
        forms).
        """
        return exact_weights, []

    def begin_epoch(self, epoch, weights, refit):
        """The head at the start of ``epoch``; ``refit()`` solves it exactly."""
        return weights

    def is_due(self, batch_number):
        """Whether mini-batch ``batch_number`` (counted from 1 over the fit) updates the head."""
        return False

    def update(self, weights, features, targets, alpha, sample_weight=None):
        """The head after one mini-batch of ``features`` and ``targets`` (weighted rows)."""
        return weights

    def predict(self, features, weights):
        """Head outputs on ``features``; gradients reach the backbone only."""
        return apply_head(features, weights)


class _PerBatchUpdate(HeadUpdate):
    """A closed-form update on every ``interval``-th mini-batch."""

    def __init__(self, *, recompute_features=True, interval=1, head_first=False, reduce=None):
        self.recompute_features = recompute_features
        self.interval = interval
        self.head_first = head_first
        # Data-parallel: sums a share's ridge statistics over the processes.
        self.reduce = reduce

    def is_due(self, batch_number):
        return batch_number % self.interval == 0


class ProximalUpdate(_PerBatchUpdate):
    """Batch ridge fit regularised toward the previous head."""

    def __init__(self, proximal_lambda, **batch_schedule):
        super().__init__(**batch_schedule)
        self.proximal_lambda = proximal_lambda

    def update(self, weights, features, targets, alpha, sample_weight=None):
        if self.reduce is not None:
            # Data-parallel: this process holds a share of the batch; the sum of
            # every share's statistics is the batch's.
            stats = self.reduce(RidgeStatistics.from_batch(features, targets, sample_weight))
            return solve_head(stats, alpha, self.proximal_lambda, previous=weights)
        # Woodbury in the batch's row space when the batch is narrower than the head.
        return solve_proximal_batch(
            features, targets, alpha, self.proximal_lambda, weights, sample_weight
        )


class AccumulateUpdate(_PerBatchUpdate):
    """Recursive least squares with exponential forgetting of old batches."""

    def __init__(self, forgetting_factor, **batch_schedule):
        super().__init__(**batch_schedule)
        self.forgetting_factor = forgetting_factor
        self.stats = None

    def begin(self, stats, exact_weights, generator):
        self.stats = stats
        return exact_weights, []

    def update(self, weights, features, targets, alpha, sample_weight=None):
        batch = RidgeStatistics.from_batch(features, targets, sample_weight)
        if self.reduce is not None:
            batch = self.reduce(batch)
        self.stats = self.stats.discounted(self.forgetting_factor) + batch
        return solve_head(self.stats, alpha)


class FullRefit(HeadUpdate):
    """Head refitted exactly at the start of every epoch; batches leave it alone."""

    def begin_epoch(self, epoch, weights, refit):
        # The first epoch starts from the exact initial head already.
        return refit() if epoch > 0 else weights


class GradientUpdate(HeadUpdate):
    """No closed form: the head is a layer trained by the optimiser (the baseline)."""

    def begin(self, stats, exact_weights, generator):
        # The exact head only chose the final refit's penalty; training starts
        # from an ``nn.Linear``-style random head instead.
        n_outputs = stats.cross.shape[1]
        weights = initial_gradient_head(
            stats.gram.shape[0] - 1, n_outputs, generator, stats.gram.device
        )
        return weights, [weights]

    def predict(self, features, weights):
        # Unlike apply_head, the gradient reaches the head too.
        return features @ weights[:-1] + weights[-1]


def initial_gradient_head(n_features, n_outputs, generator, device):
    """``nn.Linear``-style uniform initialisation for the gradient-trained head."""
    bound = 1.0 / math.sqrt(max(n_features, 1))
    weights = (torch.rand(n_features + 1, n_outputs, generator=generator) * 2 - 1) * bound
    return nn.Parameter(weights.to(device))


def make_head_update(
    name, *, proximal_lambda=0.1, forgetting_factor=0.99, reduce=None, **batch_schedule
):
    """The strategy for ``name`` in :data:`HEAD_UPDATES`.

    ``batch_schedule``: ``recompute_features``, ``interval`` and ``head_first``
    of the per-batch strategies (see the module docstring); ``reduce`` sums
    ridge statistics over the processes of a data-parallel fit.
    """
    if name == "proximal":
        return ProximalUpdate(proximal_lambda, reduce=reduce, **batch_schedule)
    if name == "accumulate":
        return AccumulateUpdate(forgetting_factor, reduce=reduce, **batch_schedule)
    if name == "full":
        return FullRefit()
    if name == "gradient":
        return GradientUpdate()
    raise ValueError(f"head_update must be one of {HEAD_UPDATES}, got {name!r}.")

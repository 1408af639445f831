"""How the head follows the backbone during training.

Each strategy turns a mini-batch of fresh features into new head weights
using the ridge solver of :mod:`skcflo.head`:

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

The per-batch strategies take the batch's features either recomputed after the
backbone step (``recompute_features=True``, the paper's Algorithm 1, step 2:
a second forward pass per batch) or as the gradient step computed them just
before it (``False``: one forward pass per batch; the head then lags the
backbone by one step). The loop asks the strategy which one it wants.

In data-parallel training (:mod:`skcflo.distributed`) the loop sets a
strategy's ``reduce`` to a function that sums ridge statistics over the
processes, each of which holds a share of every batch.
"""

from .head import RidgeStatistics, solve_head, solve_proximal_batch

HEAD_UPDATES = ("proximal", "accumulate", "full", "gradient")


class ProximalUpdate:
    """Batch ridge fit regularised toward the previous head."""

    def __init__(self, alpha, proximal_lambda, recompute_features=True):
        self.alpha = alpha
        self.proximal_lambda = proximal_lambda
        self.recompute_features = recompute_features
        self.reduce = None

    def start(self, stats):
        """Called with the statistics of the exact initial fit; nothing to keep."""

    def after_step(self, weights, features, targets):
        if self.reduce is not None:
            # Data-parallel: this process holds a share of the batch; the sum of
            # every share's statistics is the batch's.
            stats = self.reduce(RidgeStatistics.from_batch(features, targets))
            return solve_head(stats, self.alpha, self.proximal_lambda, previous=weights)
        # Woodbury in the batch's row space when the batch is narrower than the head.
        return solve_proximal_batch(
            features, targets, self.alpha, self.proximal_lambda, previous=weights
        )


class AccumulateUpdate:
    """Recursive least squares with exponential forgetting of old batches."""

    def __init__(self, alpha, forgetting_factor, recompute_features=True):
        self.alpha = alpha
        self.forgetting_factor = forgetting_factor
        self.recompute_features = recompute_features
        self.reduce = None
        self.stats = None

    def start(self, stats):
        self.stats = stats

    def after_step(self, weights, features, targets):
        batch = RidgeStatistics.from_batch(features, targets)
        if self.reduce is not None:
            batch = self.reduce(batch)
        self.stats = self.stats.discounted(self.forgetting_factor) + batch
        return solve_head(self.stats, self.alpha)


class FixedWithinEpoch:
    """Head refitted exactly once per epoch (by the loop); batches leave it alone."""

    recompute_features = False
    reduce = None

    def start(self, stats):
        """The loop does the per-epoch refit."""

    def after_step(self, weights, features, targets):
        return weights


def make_head_update(name, alpha, proximal_lambda, forgetting_factor, recompute_features=True):
    """The strategy object for ``name``; ``None`` for the gradient-trained head."""
    if name == "proximal":
        return ProximalUpdate(alpha, proximal_lambda, recompute_features)
    if name == "accumulate":
        return AccumulateUpdate(alpha, forgetting_factor, recompute_features)
    if name == "full":
        return FixedWithinEpoch()
    if name == "gradient":
        return None
    raise ValueError(f"head_update must be one of {HEAD_UPDATES}, got {name!r}.")

"""The one epoch loop, and the per-epoch services every estimator shares.

:func:`run_epochs` owns what happens around an epoch: the progress bar, the
loss history, checkpoints of the last completed epoch, the divergence guard
(a non-finite epoch restores that checkpoint), Ctrl-C (the same), learning-rate
schedules, and early stopping with its patience and best-state restore. What
happens inside an epoch belongs to the estimator: CFLO's mini-batch steps
(:mod:`skcflo._training.cflo`) and DFIV's two-stage schedule
(:mod:`skcflo._training.dfiv`) plug in as an :class:`EpochSteps` object, as
skorch's ``run_single_epoch`` / ``train_step`` do.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .optim import make_scheduler, step_scheduler


@dataclass
class TrainingOptions:
    """Settings every training run shares (already validated by the estimator)."""

    solver: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int | None = 200
    max_iter: int = 200
    learning_rate_schedule: str = "constant"
    power_t: float = 0.5
    tol: float = 1e-4
    n_iter_no_change: int = 10
    refit_head: bool = True
    verbose: bool = False


@dataclass
class EpochHistory:
    """What the loop records: losses, validation scores, and how training ended."""

    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    diverged: bool = False
    interrupted: bool = False
    validation_scores: list = field(default_factory=list)
    best_validation_score: float | None = None


class EpochLoss(NamedTuple):
    """An epoch's training loss as reported, and the value the schedules follow."""

    reported: float
    scheduled: float


class EpochSteps(Protocol):
    """What an estimator's training plugs into :func:`run_epochs`."""

    loss_label: str
    # Which epoch early stopping keeps: the best (False) or the latest near it (see Patience).
    prefers_latest_epoch: bool

    def optimizers(self):
        """The optimisers whose learning rates the schedules drive."""

    def run_epoch(self, epoch):
        """Train one epoch; its :class:`EpochLoss`, or ``None`` if it diverged."""

    def checkpoint(self, epoch):
        """A :class:`Checkpoint` of the state after ``epoch`` epochs."""

    def restore(self, checkpoint):
        """Return to a checkpoint's state."""

    def validation_score(self):
        """Held-out score of the current state, higher is better (early stopping)."""

    def score_postfix(self, score):
        """``(label, text)`` of a validation score for the progress bar."""


class Checkpoint:
    """Copies of the networks' states (and optionally of heads) after ``epoch`` epochs."""

    def __init__(self, modules, epoch, heads=None):
        self.states = {name: copy.deepcopy(m.state_dict()) for name, m in modules.items()}
        self.heads = {name: head.detach().clone() for name, head in (heads or {}).items()}
        self.epoch = epoch

    def restore(self, modules):
        """Load the states into ``modules`` (by name); return the saved heads."""
        for name, state in self.states.items():
            modules[name].load_state_dict(state)
        return self.heads


class Patience:
    """Early stopping's bookkeeping: the best score so far, its state, stale epochs.

    An epoch is stale unless its score beats the best by more than ``tol``;
    the best state is kept whenever the score beats the best at all
    (scikit-learn's ``n_iter_no_change`` / ``tol`` rule). With
    ``prefer_latest``, the state kept is instead that of the latest epoch
    whose score is within ``tol`` of the best: where the score is flat, more
    training wins (see :class:`~skcflo._training.dfiv.DFIVSteps`).

    Examples
    --------
    >>> patience = Patience(tol=0.1, n_iter_no_change=2)
    >>> for epoch, score in enumerate([1.0, 1.05, 1.08]):
    ...     patience.update(score, state=epoch)
    >>> patience.exhausted(), patience.best_score, patience.best_state
    (True, 1.08, 2)
    >>> latest = Patience(tol=0.1, n_iter_no_change=5, prefer_latest=True)
    >>> for epoch, score in enumerate([1.0, 1.5, 1.45, 1.2]):
    ...     latest.update(score, state=epoch)
    >>> latest.best_score, latest.best_state
    (1.5, 2)
    """

    def __init__(self, tol, n_iter_no_change, prefer_latest=False):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.prefer_latest = prefer_latest
        self.best_score = -math.inf
        self.best_state = None
        self.stale_epochs = 0

    def update(self, score, state):
        if score > self.best_score + self.tol:
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
        near_best = self.prefer_latest and score >= self.best_score - self.tol
        if score > self.best_score or near_best:
            self.best_state = state
        self.best_score = max(self.best_score, score)

    def exhausted(self):
        return self.stale_epochs >= self.n_iter_no_change


class _SilentBar:
    """The progress bar of a quiet fit: touches no progress machinery at all."""

    def set_postfix(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(total, verbose):
    """A tqdm bar over epochs when ``verbose``; a silent stand-in otherwise.

    A quiet fit imports nothing: ``tqdm.auto`` in a Jupyter kernel without
    ipywidgets prints a warning on import. A verbose one draws a notebook
    widget where ipywidgets is installed and a text bar everywhere else.
    """
    if not verbose:
        return _SilentBar()
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(total=total, unit="epoch", leave=True, dynamic_ncols=True)


def run_epochs(steps, options, *, validating=False):
    """Train ``steps`` for up to ``options.max_iter`` epochs with the shared services.

    After each epoch: the loss is recorded, the state checkpointed, the
    schedules stepped and, when ``validating``, the held-out score recorded
    against the patience of early stopping. A diverged epoch (``run_epoch``
    returns ``None``) or Ctrl-C ends training at the last completed epoch,
    whose checkpoint is restored. Unless training diverged, early stopping's
    best state is restored at the end.

    Returns
    -------
    history : EpochHistory
    checkpoints : list of Checkpoint
        The initial state and, once an epoch has completed, the last one:
        what a caller recovering from divergence can fall back to.
    """
    history = EpochHistory()
    checkpoints = [steps.checkpoint(0)]
    patience = None
    if validating:
        patience = Patience(options.tol, options.n_iter_no_change, steps.prefers_latest_epoch)
    schedulers = [make_scheduler(optimizer, options) for optimizer in steps.optimizers()]
    bar = progress_bar(options.max_iter, options.verbose)
    try:
        for epoch in range(options.max_iter):
            loss = steps.run_epoch(epoch)
            if loss is None:
                history.diverged = True
                steps.restore(checkpoints[-1])
                break
            history.loss_curve.append(loss.reported)
            history.n_iter = epoch + 1
            checkpoints[1:] = [steps.checkpoint(epoch + 1)]
            for scheduler in schedulers:
                step_scheduler(scheduler, loss.scheduled)
            postfix = {steps.loss_label: f"{loss.reported:.4g}"}
            if patience is not None:
                score = steps.validation_score()
                history.validation_scores.append(score)
                label, text = steps.score_postfix(score)
                postfix[label] = text
                patience.update(score, checkpoints[-1])
            bar.set_postfix(postfix, refresh=False)
            bar.update()
            if patience is not None and patience.exhausted():
                break
    except KeyboardInterrupt:
        # Ctrl-C: keep the last completed epoch, as a finished fit would.
        history.interrupted = True
        steps.restore(checkpoints[-1])
    finally:
        bar.close()
    # (No best state when Ctrl-C came before the first epoch ended.)
    if patience is not None and not history.diverged and patience.best_state is not None:
        steps.restore(patience.best_state)
        history.best_validation_score = patience.best_score
    return history, checkpoints

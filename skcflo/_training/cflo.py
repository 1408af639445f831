"""The training loop: backbone steps by gradient, head by closed form.

Nothing here knows about a particular estimator. :func:`train_cflo` takes a
module, tensors already on their device, a head-update strategy from
:mod:`skcflo._training.head_updates` and a :class:`TrainingOptions`; it returns a
:class:`TrainingResult`. Targets are standardised inside the loop so that the
backbone's learning rate does not depend on the units of ``y``; ridge is
linear in ``y``, so the head converts back exactly.
"""

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .._ridge.head import (
    ACCUMULATION_DTYPE,
    RidgeStatistics,
    apply_head,
    head_covariance,
    select_alpha,
    solve_head,
)
from .head_updates import FixedWithinEpoch


@dataclass
class TrainingOptions:
    """Settings of one training run (already validated by the estimator)."""

    solver: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 200
    max_iter: int = 200
    alpha: float | str = 1e-4
    alphas: tuple = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
    refit_head: bool = True
    learning_rate_schedule: str = "constant"
    power_t: float = 0.5
    tol: float = 1e-4
    n_iter_no_change: int = 10
    verbose: bool = False


@dataclass
class TrainingResult:
    """What training produced: trained module, raw-unit head, history."""

    backbone: nn.Module
    head_weights: torch.Tensor
    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    diverged: bool = False
    interrupted: bool = False
    validation_scores: list = field(default_factory=list)
    best_validation_score: float | None = None
    alpha: float | None = None
    noise_variance: torch.Tensor | None = None
    inverse_system: torch.Tensor | None = None


class TargetScaler:
    """Per-output standardisation of the targets, and its inverse on head weights."""

    def __init__(self, targets):
        # One scale per head output, shared by all grid positions of operator targets.
        rows = targets.reshape(-1, targets.shape[-1])
        self.mean = rows.mean(dim=0)
        scale = rows.std(dim=0, correction=0)
        self.scale = torch.where(scale > 0, scale, torch.ones_like(scale))

    def transform(self, targets):
        return (targets - self.mean) / self.scale

    def weights_to_raw(self, weights):
        """Head weights for raw targets: ``W * s`` and ``b * s + m``."""
        raw = weights * self.scale.to(weights.dtype)
        raw[-1] += self.mean.to(weights.dtype)
        return raw


def make_optimizer(parameters, solver, learning_rate, momentum):
    """A torch optimiser over ``parameters`` for ``solver`` in {'adam', 'sgd'}."""
    if solver == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate)
    if solver == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum)
    raise ValueError(f"solver must be 'adam' or 'sgd', got {solver!r}.")


LEARNING_RATE_SCHEDULES = ("constant", "cosine", "step", "invscaling", "adaptive")


def make_scheduler(optimizer, options):
    """Per-epoch learning-rate schedule, or ``None`` for a constant rate.

    * ``'cosine'``: cosine annealing from the initial rate to 0 over ``max_iter`` epochs;
    * ``'step'``: divided by 10 at 50% and again at 75% of ``max_iter``;
    * ``'invscaling'``: ``lr / (epoch + 1) ** power_t`` (MLPRegressor's rule, per epoch);
    * ``'adaptive'``: divided by 5 whenever two consecutive epochs fail to lower the
      training loss by ``tol`` (MLPRegressor's rule).
    """
    name = options.learning_rate_schedule
    if optimizer is None or name == "constant":
        return None
    schedulers = torch.optim.lr_scheduler
    epochs = options.max_iter
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        milestones = sorted({max(epochs // 2, 1), max(3 * epochs // 4, 1)})
        return schedulers.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if name == "invscaling":
        return schedulers.LambdaLR(optimizer, lambda epoch: 1.0 / (epoch + 1) ** options.power_t)
    if name == "adaptive":
        return schedulers.ReduceLROnPlateau(
            optimizer, factor=0.2, patience=1, threshold=options.tol, threshold_mode="abs"
        )
    raise ValueError(f"learning_rate must be one of {LEARNING_RATE_SCHEDULES}, got {name!r}.")


def step_scheduler(scheduler, loss):
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(loss)
    elif scheduler is not None:
        scheduler.step()


def progress_bar(total, verbose):
    """A tqdm bar over epochs (terminal or notebook); a silent stand-in when not verbose."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="epoch", disable=not verbose, leave=True, dynamic_ncols=True)


def minibatches(n_samples, batch_size, generator, device):
    """Shuffled index tensors covering ``range(n_samples)`` once."""
    order = torch.randperm(n_samples, generator=generator).to(device)
    return torch.split(order, batch_size)


@torch.no_grad()
def compute_features(backbone, inputs, batch_size):
    """Backbone features of ``inputs`` in evaluation mode, batch by batch."""
    backbone.eval()
    return torch.cat([backbone(chunk) for chunk in torch.split(inputs, batch_size)])


# A gradient-free forward pass keeps no activations for a backward pass, so a
# chunk of a few training batches needs about the memory of one training step
# (plus a float64 copy of its features for the statistics). On small batches
# the larger chunks save per-call overhead: the exact head's pass over the
# Burgers data took 0.06 s in chunks of 80-200 samples, 0.16 s in chunks of 20.
NO_GRAD_CHUNK_FACTOR = 4


@torch.no_grad()
def collect_statistics(backbone, inputs, targets, batch_size, group=None):
    """Exact ridge statistics of the whole data set, in chunks of a few batches.

    Chunks have ``NO_GRAD_CHUNK_FACTOR * batch_size`` rows. With a
    data-parallel ``group`` each process passes over its share of the rows, in
    chunks of its share of the batch, and the shares' statistics are summed.
    """
    if group is not None:
        rows = group.shard(torch.arange(inputs.shape[0], device=inputs.device))
        share = max(1, batch_size // group.world_size)
        stats = collect_statistics(backbone, inputs[rows], targets[rows], share)
        return group.reduce_statistics(stats)
    backbone.eval()
    total = None
    chunk = NO_GRAD_CHUNK_FACTOR * batch_size
    chunks = zip(torch.split(inputs, chunk), torch.split(targets, chunk), strict=True)
    for x_chunk, y_chunk in chunks:
        batch = RidgeStatistics.from_batch(backbone(x_chunk), y_chunk)
        total = batch if total is None else total + batch
    return total


def check_features(features, n_rows, who="backbone", operator_shaped=False):
    """Raise unless ``features`` is a finite ``(n_rows, d)`` tensor.

    With ``operator_shaped=True`` features may also be ``(n_rows, ..., d)``:
    one ``d``-vector per grid position.
    """
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"The {who} must return a torch.Tensor, got {type(features).__name__}.")
    shape_ok = features.ndim == 2 or (operator_shaped and features.ndim > 2)
    if not shape_ok or features.shape[0] != n_rows:
        expected = "(n_samples, ..., d)" if operator_shaped else "(n_samples, d)"
        raise ValueError(
            f"The {who} must return features of shape {expected} with n_samples = {n_rows}; "
            f"got shape {tuple(features.shape)}."
        )
    if not torch.isfinite(features).all():
        raise ValueError(f"The {who} returned NaN or infinite features on the training data.")


def _initial_gradient_head(n_features, n_outputs, generator, device):
    """``nn.Linear``-style uniform initialisation for the gradient-trained head."""
    bound = 1.0 / math.sqrt(max(n_features, 1))
    weights = (torch.rand(n_features + 1, n_outputs, generator=generator) * 2 - 1) * bound
    return nn.Parameter(weights.to(device))


class _Checkpoint:
    """Backbone state and head after ``epoch`` epochs (divergence, interrupt, best)."""

    def __init__(self, backbone, weights, epoch):
        self.state = copy.deepcopy(backbone.state_dict())
        self.weights = weights.detach().clone()
        self.epoch = epoch

    def restore(self, backbone):
        """Load the state into ``backbone``; return the head weights."""
        backbone.load_state_dict(self.state)
        return self.weights


def train_cflo(
    backbone, inputs, targets, head_update, options, generator, validation=None, group=None
):
    """Train ``backbone`` by gradient steps against a closed-form head.

    Parameters
    ----------
    backbone : torch.nn.Module
        Trained in place (the caller owns it).
    inputs : torch.Tensor of shape (n_samples, n_features), float32
    targets : torch.Tensor of shape (n_samples, n_outputs), float64
    head_update : strategy from :func:`skcflo._training.head_updates.make_head_update`
        ``None`` trains the head by gradient like any layer (the baseline).
    options : TrainingOptions
    generator : torch.Generator
        Source of the mini-batch order.
    validation : tuple of (inputs, targets) tensors, default=None
        Held-out data for early stopping: training stops once the validation
        R² has not improved by ``options.tol`` for ``options.n_iter_no_change``
        epochs, and the best state is restored.
    group : skcflo.distributed.DataParallel, default=None
        Spread every global batch over the processes of a data-parallel
        group (see :mod:`skcflo.distributed`); ``None`` trains in this
        process alone.

    Returns
    -------
    TrainingResult
    """
    scaler = TargetScaler(targets)
    scaled = scaler.transform(targets)
    scaled32 = scaled.to(inputs.dtype)
    batch_size = min(options.batch_size, inputs.shape[0])

    exact = _ExactHead(backbone, inputs, scaled, batch_size, options, head_update, group)
    weights, optimizer = _initial_state(backbone, inputs, exact, head_update, options, generator)
    replicas = None if group is None else _Replicas(group, backbone, head_update)
    scheduler = make_scheduler(optimizer, options)
    stopper = None if validation is None else _EarlyStopping(validation, scaler, options)
    result = TrainingResult(backbone=backbone, head_weights=None)
    # The initial state is known to give finite features; later checkpoints are
    # states after an optimiser step that no loss has evaluated yet.
    checkpoints = [_Checkpoint(backbone, weights, epoch=0)]
    bar = progress_bar(options.max_iter, options.verbose)
    try:
        for epoch in range(options.max_iter):
            if isinstance(head_update, FixedWithinEpoch) and epoch > 0:
                weights = exact.fit()
            weights, per_output_mse = _run_epoch(
                backbone,
                inputs,
                scaled32,
                weights,
                head_update,
                optimizer,
                batch_size,
                generator,
                replicas,
            )
            if per_output_mse is None:
                result.diverged = True
                break
            loss = float((per_output_mse * scaler.scale.to(per_output_mse) ** 2).mean())
            result.loss_curve.append(loss)
            result.n_iter = epoch + 1
            checkpoints[1:] = [_Checkpoint(backbone, weights, epoch=epoch + 1)]
            step_scheduler(scheduler, float(per_output_mse.mean()))
            postfix = {"loss": f"{loss:.4g}"}
            if stopper is not None:
                score = stopper.update(backbone, weights, checkpoints[-1])
                result.validation_scores.append(score)
                postfix["val R2"] = f"{score:.4f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update()
            if stopper is not None and stopper.should_stop():
                break
    except KeyboardInterrupt:
        # Ctrl-C: keep the last completed epoch, as a finished fit would.
        result.interrupted = True
        weights = checkpoints[-1].restore(backbone)
    finally:
        bar.close()

    # (No best state when Ctrl-C came before the first epoch ended.)
    if stopper is not None and not result.diverged and stopper.best is not None:
        weights = stopper.best.restore(backbone)
        result.best_validation_score = stopper.best_score
    final_stats = None
    if options.refit_head and not result.diverged:
        final_stats = exact.statistics()
        weights = exact.fit(final_stats, validation=stopper)
        result.diverged = not bool(torch.isfinite(weights).all())
    if result.diverged:
        weights, final_stats = _recover(backbone, checkpoints, exact, result, stopper)
    weights = weights.detach().to(ACCUMULATION_DTYPE)
    if final_stats is None:
        final_stats = exact.statistics()
    _store_posterior(result, final_stats, exact.alpha, weights, scaler)
    if stopper is not None:
        # Held-out residuals estimate the noise without the optimism of training
        # residuals, whose features were fitted to those very targets.
        noise = stopper.residual_variance(backbone, weights)
        result.noise_variance = noise * scaler.scale.to(noise) ** 2
    result.head_weights = scaler.weights_to_raw(weights)
    return result


class _ExactHead:
    """Exact ridge heads on all training data, choosing ``alpha`` when 'auto'.

    'auto' chooses by GCV on the training rows, or, for the final refit of a
    fit with early stopping, by the mean squared error on the validation rows:
    GCV is optimistic on features that were trained on the very targets it
    scores (measured in ``benchmarks/README.md``). The chosen penalty is handed
    to the per-batch strategy, so proximal and accumulate steps use the
    penalty of the latest exact fit.
    """

    def __init__(self, backbone, inputs, targets, batch_size, options, head_update, group=None):
        self.backbone, self.inputs, self.targets = backbone, inputs, targets
        self.group = group
        self.batch_size = batch_size
        self.auto = options.alpha == "auto"
        self.candidates = options.alphas
        self.alpha = None if self.auto else options.alpha
        self.head_update = head_update

    def statistics(self):
        return collect_statistics(
            self.backbone, self.inputs, self.targets, self.batch_size, self.group
        )

    def fit(self, stats=None, validation=None):
        """The exact head; with ``validation`` (early stopping) 'auto' scores on its rows."""
        stats = self.statistics() if stats is None else stats
        if self.auto and torch.isfinite(stats.gram).all():
            chosen = None
            if validation is not None:
                chosen = validation.select_alpha_on_validation(
                    self.backbone, stats, self.candidates
                )
            self.alpha = select_alpha(stats, self.candidates)[0] if chosen is None else chosen
            if hasattr(self.head_update, "alpha"):
                self.head_update.alpha = self.alpha
        return solve_head(stats, self.alpha)


def _store_posterior(result, stats, alpha, weights, scaler):
    """Noise variance (in the units of y) and the inverse ridge system of the head."""
    noise_variance, inverse_system = head_covariance(stats, alpha, weights)
    result.alpha = float(alpha)
    result.noise_variance = noise_variance * scaler.scale.to(noise_variance) ** 2
    result.inverse_system = inverse_system


def _initial_state(backbone, inputs, exact, head_update, options, generator):
    """Initial head (exact, or random for the gradient baseline) and optimiser."""
    stats = exact.statistics()
    if not torch.isfinite(stats.gram).all():
        raise ValueError("The backbone returned NaN or infinite features on the training data.")
    parameters = [p for p in backbone.parameters() if p.requires_grad]
    if head_update is None:
        n_features = stats.gram.shape[0] - 1
        weights = _initial_gradient_head(n_features, stats.cross.shape[1], generator, inputs.device)
        parameters.append(weights)
        exact.fit(stats)  # chooses the penalty of the final refit's starting point
    else:
        weights = exact.fit(stats)
        head_update.start(stats)
    if not parameters:
        return weights, None
    optimizer = make_optimizer(parameters, options.solver, options.learning_rate, options.momentum)
    return weights, optimizer


def _recover(backbone, checkpoints, exact, result, validation=None):
    """Restore the newest checkpoint whose exact head is finite.

    Returns that head and its statistics. The initial checkpoint always
    qualifies (its features were checked). ``validation``: the early stopping,
    whose rows choose 'auto''s penalty as in a finished fit.
    """
    for checkpoint in reversed(checkpoints):
        checkpoint.restore(backbone)
        stats = exact.statistics()
        weights = exact.fit(stats, validation)
        if torch.isfinite(weights).all():
            break
    result.n_iter = checkpoint.epoch
    del result.loss_curve[checkpoint.epoch :]
    del result.validation_scores[checkpoint.epoch :]
    return weights, stats


class Patience:
    """Early stopping's bookkeeping: the best score so far, its state, stale epochs.

    An epoch is stale unless its score beats the best by more than ``tol``;
    the best state is kept whenever the score beats the best at all
    (scikit-learn's ``n_iter_no_change`` / ``tol`` rule). Shared by the CFLO
    loop (validation R²) and the DFIV schedule (held-out IV loss).

    Examples
    --------
    >>> patience = Patience(tol=0.1, n_iter_no_change=2)
    >>> for epoch, score in enumerate([1.0, 1.05, 1.08]):
    ...     patience.update(score, state=epoch)
    >>> patience.exhausted(), patience.best_score, patience.best_state
    (True, 1.08, 2)
    """

    def __init__(self, tol, n_iter_no_change):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.best_score = -math.inf
        self.best_state = None
        self.stale_epochs = 0

    def update(self, score, state):
        if score > self.best_score + self.tol:
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
        if score > self.best_score:
            self.best_score = score
            self.best_state = state

    def exhausted(self):
        return self.stale_epochs >= self.n_iter_no_change


class _EarlyStopping:
    """Validation R² after every epoch; remembers the best state."""

    def __init__(self, validation, scaler, options):
        self.inputs = validation[0]
        self.targets = scaler.transform(validation[1])
        self.batch_size = options.batch_size
        self.patience = Patience(options.tol, options.n_iter_no_change)

    def features(self, backbone):
        """The backbone's features of the validation rows, in float64."""
        features = compute_features(backbone, self.inputs, max(self.batch_size, 1024))
        return features.to(ACCUMULATION_DTYPE)

    def residuals(self, backbone, weights):
        return apply_head(self.features(backbone), weights) - self.targets

    def select_alpha_on_validation(self, backbone, stats, candidates):
        """The candidate whose head (solved on ``stats``) has the smallest validation MSE.

        Standardised units, averaged over outputs; ties go to the first
        candidate. ``None`` when no candidate scores finite (the caller then
        falls back to GCV).
        """
        features = self.features(backbone)
        scores = []
        for alpha in candidates:
            residual = apply_head(features, solve_head(stats, alpha)) - self.targets
            scores.append(float(residual.pow(2).mean()))
        scores = torch.tensor(scores, dtype=ACCUMULATION_DTYPE)
        if not torch.isfinite(scores).any():
            return None
        scores = torch.nan_to_num(scores, nan=float("inf"))
        return float(candidates[int(torch.argmin(scores))])

    def residual_variance(self, backbone, weights):
        """Mean squared validation residual per head output (standardised units)."""
        residual = self.residuals(backbone, weights)
        return residual.pow(2).reshape(-1, residual.shape[-1]).mean(dim=0)

    def update(self, backbone, weights, checkpoint):
        # Columns as scikit-learn's score sees them: (n_samples, n_outputs).
        n_samples = self.targets.shape[0]
        residual = self.residuals(backbone, weights).reshape(n_samples, -1)
        targets = self.targets.reshape(n_samples, -1)
        centred = targets - targets.mean(dim=0)
        # R² per output, averaged (scikit-learn's uniform average); targets are
        # standardised, which leaves R² unchanged.
        total = centred.pow(2).sum(dim=0).clamp_min(torch.finfo(ACCUMULATION_DTYPE).tiny)
        score = float((1.0 - residual.pow(2).sum(dim=0) / total).mean())
        self.patience.update(score, checkpoint)
        return score

    def should_stop(self):
        return self.patience.exhausted()

    @property
    def best(self):
        return self.patience.best_state

    @property
    def best_score(self):
        return self.patience.best_score


class _Replicas:
    """A data-parallel fit's view of the group: the DDP-wrapped backbone, shares of batches."""

    def __init__(self, group, backbone, head_update):
        self.group = group
        self.module = group.wrap(backbone)
        if head_update is not None:
            head_update.reduce = group.reduce_statistics

    def share(self, index):
        return self.group.shard(index)

    def loss(self, residual, global_rows):
        """This share's loss, scaled so that DDP's average is the global batch's MSE gradient."""
        elements = global_rows * math.prod(residual.shape[1:])
        return residual.pow(2).sum() * (self.group.world_size / elements)

    def average_gradient(self, parameter):
        """Average a gradient DDP does not see (the baseline's head) over the group."""
        self.group.sum_(parameter.grad).div_(self.group.world_size)


def _run_epoch(
    backbone,
    inputs,
    targets,
    weights,
    head_update,
    optimizer,
    batch_size,
    generator,
    replicas=None,
):
    """One pass over shuffled mini-batches.

    Returns the head weights after the epoch and the mean squared error per
    output (in standardised units), or ``None`` for the error when the loss or
    the head stopped being finite (a diverged run). With ``replicas`` (a
    data-parallel fit) this process trains on its share of every batch.
    """
    # Summed on the device and checked once per epoch: no host round trip per batch.
    n_outputs = targets.shape[-1]
    squared_error_sum = torch.zeros(n_outputs, dtype=ACCUMULATION_DTYPE, device=inputs.device)
    module = backbone if replicas is None else replicas.module
    for index in minibatches(inputs.shape[0], batch_size, generator, inputs.device):
        global_rows = index.shape[0]
        if replicas is not None:
            index = replicas.share(index)
        x_batch, y_batch = inputs[index], targets[index]
        backbone.train()
        features = module(x_batch)
        # 'full' keeps its head for the whole epoch, the others may skip batches.
        head_due = head_update is not None and head_update.due()
        if head_due and head_update.head_first:
            # The step below then follows the gradient of the batch loss at the
            # head that is optimal for it (proximal pull included): by the
            # envelope theorem, the gradient of the head-optimised objective.
            weights = _update_head(head_update, weights, backbone, x_batch, features, y_batch)
        if head_update is None:
            predictions = features @ weights[:-1] + weights[-1]
        else:
            predictions = apply_head(features, weights)
        residual = predictions - y_batch
        gradient_head = weights if head_update is None else None
        _backbone_step(optimizer, residual, replicas, global_rows, gradient_head)
        if head_due and not head_update.head_first:
            weights = _update_head(head_update, weights, backbone, x_batch, features, y_batch)
        squared_error_sum += (
            residual.detach().pow(2).reshape(-1, n_outputs).sum(dim=0).to(squared_error_sum)
        )
    # Rows: samples times grid positions (one position for plain regression).
    n_rows = targets.numel() // n_outputs
    return _epoch_error(squared_error_sum, n_rows, weights, replicas)


def _epoch_error(squared_error_sum, n_rows, weights, replicas):
    """The epoch's ``(weights, per-output MSE)``, ``None`` for the MSE when not finite.

    The epoch's one read-back from the device: nothing in the batch loop
    before it waits for the device (``tests/training/test_device_path.py``).
    """
    if replicas is not None:
        replicas.group.sum_(squared_error_sum)
    per_output_mse = (squared_error_sum / n_rows).cpu()
    if not (torch.isfinite(per_output_mse).all() and torch.isfinite(weights).all()):
        return weights, None
    return weights, per_output_mse


def _backbone_step(optimizer, residual, replicas, global_rows, gradient_head):
    """One optimiser step on the batch's mean squared error (its share, data-parallel).

    ``gradient_head``: the end-to-end baseline's head, whose gradient DDP does
    not average (it is not a module parameter); ``None`` for closed-form heads.
    """
    if optimizer is None:
        return
    if replicas is None:
        loss = residual.pow(2).mean()
    else:
        loss = replicas.loss(residual, global_rows)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if replicas is not None and gradient_head is not None:
        replicas.average_gradient(gradient_head)
    optimizer.step()


@torch.no_grad()
def _update_head(head_update, weights, backbone, x_batch, step_features, y_batch):
    """The strategy's head on the batch: on the step's features, or recomputed ones.

    Features are recomputed only after a backbone step (``head_first`` runs
    before the step, when the step's features are the current ones).
    """
    if head_update.recompute_features and not head_update.head_first:
        backbone.eval()
        return head_update.update(weights, backbone(x_batch), y_batch)
    return head_update.update(weights, step_features.detach(), y_batch)

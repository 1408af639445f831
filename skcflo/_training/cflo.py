"""CFLO's training: backbone steps by gradient, the head by closed form.

Nothing here knows about a particular estimator. :func:`train_cflo` takes a
module, tensors already on their device, a head-update strategy from
:mod:`skcflo._training.head_updates` and a :class:`CFLOOptions`; it runs the
shared epoch loop (:func:`skcflo._training.loop.run_epochs`) over
:class:`CFLOSteps` and returns a :class:`TrainingResult`. Targets are
standardised inside so that the backbone's learning rate does not depend on the
units of ``y``; ridge is linear in ``y``, so the head converts back exactly.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._ridge.head import (
    ACCUMULATION_DTYPE,
    apply_head,
    head_covariance,
    row_weights,
    select_alpha,
    solve_head,
)
from .data import TargetScaler, collect_statistics, compute_features, minibatches
from .loop import Checkpoint, EpochHistory, EpochLoss, TrainingOptions, run_epochs
from .optim import network_optimizer

# Candidate per-sample penalties of alpha='auto': eleven values from 1e-4 to 10.
DEFAULT_ALPHAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass
class CFLOOptions(TrainingOptions):
    """Settings of one CFLO training run: the shared ones and the head's penalty."""

    alpha: float | str = 1e-4
    alphas: tuple = DEFAULT_ALPHAS


@dataclass
class TrainingResult(EpochHistory):
    """What CFLO training produced: the trained module, the raw-unit head, its posterior."""

    backbone: nn.Module | None = None
    head_weights: torch.Tensor | None = None
    alpha: float | None = None
    noise_variance: torch.Tensor | None = None
    inverse_system: torch.Tensor | None = None


def train_cflo(
    backbone,
    inputs,
    targets,
    head_update,
    options,
    generator,
    validation=None,
    group=None,
    sample_weight=None,
):
    """Train ``backbone`` by gradient steps against a closed-form head.

    Parameters
    ----------
    backbone : torch.nn.Module
        Trained in place (the caller owns it).
    inputs : torch.Tensor of shape (n_samples, n_features), float32
    targets : torch.Tensor of shape (n_samples, n_outputs), float64
    head_update : HeadUpdate
        A strategy from :func:`skcflo._training.head_updates.make_head_update`.
    options : CFLOOptions
    generator : torch.Generator
        Source of the mini-batch order.
    validation : tuple of (inputs, targets, sample_weight), default=None
        Held-out data for early stopping (``sample_weight`` may be ``None``):
        training stops once the validation R² has not improved by
        ``options.tol`` for ``options.n_iter_no_change`` epochs, and the best
        state is restored.
    group : skcflo.distributed.DataParallel, default=None
        Spread every global batch over the processes of a data-parallel
        group (see :mod:`skcflo.distributed`); ``None`` trains in this
        process alone.
    sample_weight : torch.Tensor of shape (n_samples,), float64, default=None
        Weights of the training rows: in the backbone's loss (a weighted mean
        over each batch), the heads' ridge statistics and the target scaling.

    Returns
    -------
    TrainingResult
    """
    scaler = TargetScaler(targets, sample_weight)
    scaled = scaler.transform(targets)
    batch_size = min(options.batch_size, inputs.shape[0])
    exact = ExactHead(backbone, inputs, scaled, batch_size, options, group, sample_weight)
    held_out = None if validation is None else HeldOut(*validation, scaler, options.batch_size)
    steps = CFLOSteps(backbone, head_update, options, generator, exact, scaler, held_out, group)
    history, checkpoints = run_epochs(steps, options, validating=held_out is not None)
    return _finish(steps, history, checkpoints, options, scaler)


class CFLOSteps:
    """CFLO's epoch for the shared loop: mini-batch passes, head and backbone together."""

    loss_label = "loss"
    # Early stopping keeps the best epoch, as scikit-learn's MLPRegressor does.
    prefers_latest_epoch = False

    def __init__(
        self, backbone, head_update, options, generator, exact, scaler, held_out=None, group=None
    ):
        self.backbone, self.exact, self.head_update = backbone, exact, head_update
        self.scaler, self.held_out = scaler, held_out
        # The backbone computes in the inputs' dtype; the statistics stay in float64.
        self.inputs, self.targets = exact.inputs, exact.targets.to(exact.inputs.dtype)
        stats = exact.statistics()
        if not torch.isfinite(stats.gram).all():
            raise ValueError("The backbone returned NaN or infinite features on the training data.")
        self.weights, head_parameters = head_update.begin(stats, exact.fit(stats), generator)
        self.optimizer = network_optimizer(backbone, head_parameters, options)
        self.trainer = MinibatchTrainer(
            backbone,
            head_update,
            self.optimizer,
            exact.batch_size,
            generator,
            head_parameters,
            None if group is None else Replicas(group, backbone),
            exact.sample_weight,
        )

    def optimizers(self):
        return [self.optimizer]

    def run_epoch(self, epoch):
        self.weights = self.head_update.begin_epoch(epoch, self.weights, self.exact.fit)
        self.weights, per_output_mse = self.trainer.run(
            self.inputs, self.targets, self.weights, self.exact.alpha
        )
        if per_output_mse is None:
            return None
        return EpochLoss(
            reported=float(self.scaler.variance_to_raw(per_output_mse).mean()),
            scheduled=float(per_output_mse.mean()),
        )

    def checkpoint(self, epoch):
        return Checkpoint({"backbone": self.backbone}, epoch, heads={"weights": self.weights})

    def restore(self, checkpoint):
        self.weights = checkpoint.restore({"backbone": self.backbone})["weights"]

    def validation_score(self):
        return self.held_out.r2(self.backbone, self.weights)

    def score_postfix(self, score):
        return "val R2", f"{score:.4f}"


def _finish(steps, history, checkpoints, options, scaler):
    """The final exact head, divergence recovery, posterior and noise estimate."""
    backbone, exact, held_out = steps.backbone, steps.exact, steps.held_out
    weights, final_stats = steps.weights, None
    if options.refit_head and not history.diverged:
        final_stats = exact.statistics()
        weights = exact.fit(final_stats, held_out=held_out)
        history.diverged = not bool(torch.isfinite(weights).all())
    if history.diverged:
        weights, final_stats = _recover(backbone, checkpoints, exact, history, held_out)
    weights = weights.detach().to(ACCUMULATION_DTYPE)
    if final_stats is None:
        final_stats = exact.statistics()
    result = TrainingResult(**vars(history), backbone=backbone)
    noise_variance, result.inverse_system = head_covariance(final_stats, exact.alpha, weights)
    if held_out is not None:
        # Held-out residuals estimate the noise without the optimism of training
        # residuals, whose features were fitted to those very targets.
        noise_variance = held_out.residual_variance(backbone, weights)
    result.alpha = float(exact.alpha)
    result.noise_variance = scaler.variance_to_raw(noise_variance)
    result.head_weights = scaler.weights_to_raw(weights)
    return result


def _recover(backbone, checkpoints, exact, history, held_out=None):
    """Restore the newest checkpoint whose exact head is finite.

    Returns that head and its statistics. The initial checkpoint always
    qualifies (its features were checked). ``held_out``: the early-stopping
    rows, which choose 'auto''s penalty as in a finished fit.
    """
    for checkpoint in reversed(checkpoints):
        checkpoint.restore({"backbone": backbone})
        stats = exact.statistics()
        weights = exact.fit(stats, held_out=held_out)
        if torch.isfinite(weights).all():
            break
    history.n_iter = checkpoint.epoch
    del history.loss_curve[checkpoint.epoch :]
    del history.validation_scores[checkpoint.epoch :]
    return weights, stats


class ExactHead:
    """Exact ridge heads on all training data, choosing ``alpha`` when 'auto'.

    'auto' chooses by GCV on the training rows, or, for the final refit of a
    fit with early stopping, by the mean squared error on the held-out rows:
    GCV is optimistic on features that were trained on the very targets it
    scores (measured in ``benchmarks/README.md``). The per-batch strategies
    are handed the penalty of the latest exact fit (:attr:`alpha`).
    """

    def __init__(
        self, backbone, inputs, targets, batch_size, options, group=None, sample_weight=None
    ):
        self.backbone, self.inputs, self.targets = backbone, inputs, targets
        self.group, self.sample_weight = group, sample_weight
        self.batch_size = batch_size
        self.auto = options.alpha == "auto"
        self.candidates = options.alphas
        self.alpha = None if self.auto else options.alpha

    def statistics(self):
        return collect_statistics(
            self.backbone,
            self.inputs,
            self.targets,
            self.batch_size,
            self.group,
            self.sample_weight,
        )

    def fit(self, stats=None, held_out=None):
        """The exact head; with ``held_out`` rows (early stopping) 'auto' scores on them."""
        stats = self.statistics() if stats is None else stats
        if self.auto and torch.isfinite(stats.gram).all():
            chosen = None
            if held_out is not None:
                chosen = held_out.select_alpha(self.backbone, stats, self.candidates)
            self.alpha = select_alpha(stats, self.candidates)[0] if chosen is None else chosen
        return solve_head(stats, self.alpha)


class HeldOut:
    """The early-stopping rows: validation R², the 'auto' penalty, the noise level.

    Targets are kept standardised like the training ones; R² is unchanged by it.
    With ``sample_weight`` every score weights the rows (as ``score`` does).
    """

    def __init__(self, inputs, targets, sample_weight, scaler, batch_size):
        self.inputs = inputs
        self.targets = scaler.transform(targets)
        self.batch_size = batch_size
        n_samples = targets.shape[0]
        if sample_weight is None:
            sample_weight = torch.ones(n_samples, dtype=ACCUMULATION_DTYPE, device=inputs.device)
        self.sample_weight = sample_weight.to(ACCUMULATION_DTYPE)[:, None]
        # One weight per row of the flattened (samples x positions, outputs) residuals.
        self.row_weight = row_weights(sample_weight, targets[..., 0].numel())[:, None]

    def _weighted_mean(self, values):
        """Weighted mean over the rows of ``values`` (rows, outputs), per output."""
        return (self.row_weight * values).sum(dim=0) / self.row_weight.sum().clamp_min(1e-300)

    def features(self, backbone):
        """The backbone's features of the held-out rows, in float64."""
        features = compute_features(backbone, self.inputs, max(self.batch_size, 1024))
        return features.to(ACCUMULATION_DTYPE)

    def residuals(self, backbone, weights):
        return apply_head(self.features(backbone), weights) - self.targets

    def r2(self, backbone, weights):
        """R² per output, averaged (scikit-learn's uniform average), as ``score`` sees it."""
        n_samples = self.targets.shape[0]
        residual = self.residuals(backbone, weights).reshape(n_samples, -1)
        targets = self.targets.reshape(n_samples, -1)
        sample_weight = self.sample_weight
        centred = targets - (sample_weight * targets).sum(dim=0) / sample_weight.sum()
        total = (sample_weight * centred.pow(2)).sum(dim=0)
        total = total.clamp_min(torch.finfo(ACCUMULATION_DTYPE).tiny)
        return float((1.0 - (sample_weight * residual.pow(2)).sum(dim=0) / total).mean())

    def select_alpha(self, backbone, stats, candidates):
        """The candidate whose head (solved on ``stats``) has the smallest held-out MSE.

        Standardised units, averaged over outputs; ties go to the first
        candidate. ``None`` when no candidate scores finite (the caller then
        falls back to GCV).
        """
        features = self.features(backbone)
        scores = []
        for alpha in candidates:
            residual = apply_head(features, solve_head(stats, alpha)) - self.targets
            squares = residual.pow(2).reshape(-1, residual.shape[-1])
            scores.append(float(self._weighted_mean(squares).mean()))
        scores = torch.tensor(scores, dtype=ACCUMULATION_DTYPE)
        if not torch.isfinite(scores).any():
            return None
        scores = torch.nan_to_num(scores, nan=float("inf"))
        return float(candidates[int(torch.argmin(scores))])

    def residual_variance(self, backbone, weights):
        """Mean squared held-out residual per head output (standardised units)."""
        residual = self.residuals(backbone, weights)
        return self._weighted_mean(residual.pow(2).reshape(-1, residual.shape[-1]))


class Replicas:
    """A data-parallel fit's view of the group: the DDP-wrapped backbone, shares of batches."""

    def __init__(self, group, backbone):
        self.group = group
        self.module = group.wrap(backbone)

    def share(self, index):
        return self.group.shard(index)

    def loss(self, residual, global_rows):
        """This share's loss, scaled so that DDP's average is the global batch's MSE gradient."""
        elements = global_rows * math.prod(residual.shape[1:])
        return residual.pow(2).sum() * (self.group.world_size / elements)

    def average_gradient(self, parameter):
        """Average a gradient DDP does not see (the baseline's head) over the group."""
        self.group.sum_(parameter.grad).div_(self.group.world_size)


class MinibatchTrainer:
    """One pass over shuffled mini-batches: a backbone step and the strategy's head update each.

    Counts the mini-batches over its lifetime (a fit, or one ``partial_fit``
    chunk), so that a strategy updating every k-th batch keeps its rhythm
    across epochs. With ``replicas`` (a data-parallel fit) this process trains
    on its share of every batch. With ``sample_weight`` (one per row of the
    inputs) the batch loss is the weighted mean squared error and the head
    updates weight the rows.
    """

    def __init__(
        self,
        backbone,
        head_update,
        optimizer,
        batch_size,
        generator,
        head_parameters=(),
        replicas=None,
        sample_weight=None,
    ):
        self.backbone, self.head_update, self.optimizer = backbone, head_update, optimizer
        self.batch_size, self.generator = batch_size, generator
        self.head_parameters = list(head_parameters)
        self.replicas = replicas
        self.sample_weight = sample_weight
        self.batches_seen = 0

    def run(self, inputs, targets, weights, alpha):
        """Train one pass; the head after it and the MSE per output (standardised units).

        The MSE is ``None`` when the loss or the head stopped being finite (a
        diverged run).
        """
        # Summed on the device and checked once per pass: no host round trip per batch.
        n_outputs = targets.shape[-1]
        squared_error_sum = torch.zeros(n_outputs, dtype=ACCUMULATION_DTYPE, device=inputs.device)
        for index in minibatches(inputs.shape[0], self.batch_size, self.generator, inputs.device):
            weights, residual = self._train_batch(index, inputs, targets, weights, alpha)
            squares = residual.detach().pow(2).reshape(-1, n_outputs)
            if self.sample_weight is not None:
                row_weight = row_weights(self.sample_weight[index], len(squares))
                squares = squares * row_weight[:, None].to(squares)
            squared_error_sum += squares.sum(dim=0).to(squared_error_sum)
        # Rows: samples times grid positions (one position for plain regression).
        n_rows = targets.numel() // n_outputs
        if self.sample_weight is not None:
            n_rows = float(self.sample_weight.sum()) * (n_rows // inputs.shape[0])
        return _epoch_error(squared_error_sum, max(n_rows, 1e-300), weights, self.replicas)

    def _train_batch(self, index, inputs, targets, weights, alpha):
        global_rows = index.shape[0]
        if self.replicas is not None:
            index = self.replicas.share(index)
        x_batch, y_batch = inputs[index], targets[index]
        w_batch = None if self.sample_weight is None else self.sample_weight[index]
        strategy, backbone = self.head_update, self.backbone
        backbone.train()
        module = backbone if self.replicas is None else self.replicas.module
        features = module(x_batch)
        self.batches_seen += 1
        head_due = strategy.is_due(self.batches_seen)
        if head_due and strategy.head_first:
            # The step below then follows the gradient of the batch loss at the
            # head that is optimal for it (proximal pull included): by the
            # envelope theorem, the gradient of the head-optimised objective.
            weights = _update_head(
                strategy, weights, backbone, x_batch, features, y_batch, alpha, w_batch
            )
        residual = strategy.predict(features, weights) - y_batch
        self._backbone_step(residual, global_rows, w_batch)
        if head_due and not strategy.head_first:
            weights = _update_head(
                strategy, weights, backbone, x_batch, features, y_batch, alpha, w_batch
            )
        return weights, residual

    def _backbone_step(self, residual, global_rows, sample_weight=None):
        """One optimiser step on the batch's mean squared error (its share, data-parallel)."""
        if self.optimizer is None:
            return
        if sample_weight is not None:
            loss = _weighted_mse(residual, sample_weight)
        elif self.replicas is None:
            loss = residual.pow(2).mean()
        else:
            loss = self.replicas.loss(residual, global_rows)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.replicas is not None:
            # The baseline's head is no module parameter: DDP does not average it.
            for parameter in self.head_parameters:
                self.replicas.average_gradient(parameter)
        self.optimizer.step()


def _epoch_error(squared_error_sum, n_rows, weights, replicas):
    """The pass's ``(weights, per-output MSE)``, ``None`` for the MSE when not finite.

    The pass's one read-back from the device: nothing in the batch loop
    before it waits for the device (``tests/training/test_device_path.py``).
    """
    if replicas is not None:
        replicas.group.sum_(squared_error_sum)
    per_output_mse = (squared_error_sum / n_rows).cpu()
    if not (torch.isfinite(per_output_mse).all() and torch.isfinite(weights).all()):
        return weights, None
    return weights, per_output_mse


def _weighted_mse(residual, sample_weight):
    """``sum_i w_i |r_i|^2 / sum_i w_i``, each sample's squares averaged over its elements.

    Scale-free in the weights; a batch of zero weights gives a zero loss.
    """
    per_sample = residual.pow(2).reshape(residual.shape[0], -1).mean(dim=1)
    weight = sample_weight.to(per_sample.dtype)
    return (weight * per_sample).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)


@torch.no_grad()
def _update_head(strategy, weights, backbone, x_batch, step_features, y_batch, alpha, w_batch):
    """The strategy's head on the batch: on the step's features, or recomputed ones.

    Features are recomputed only after a backbone step (``head_first`` runs
    before the step, when the step's features are the current ones).
    """
    if strategy.recompute_features and not strategy.head_first:
        backbone.eval()
        return strategy.update(weights, backbone(x_batch), y_batch, alpha, w_batch)
    return strategy.update(weights, step_features.detach(), y_batch, alpha, w_batch)

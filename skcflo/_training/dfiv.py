"""Training schedule of deep-feature IV regression.

The reference schedule (Xu et al., 2021) over two halves of the sample, once
per epoch: ``stage1_iter`` optimiser steps on the instrument network against
the stage-1 loss, ``covariate_iter`` steps on the covariate network against the
stage-2 loss, then ``stage2_iter`` steps on the treatment network against the
stage-2 loss with the stage-1 solve inside the graph.

Where a head is optimal for the loss being differentiated, the envelope
theorem lets the head be held fixed (detached) during the backward pass, as in
CFLO: the stage-1 head for the instrument step and the stage-2 head for the
covariate and treatment steps. Only the stage-1 solve inside the stage-2 loss
must stay in the graph, because stage 2 does not optimise ``V``.

With ``batch_size`` smaller than a half, every step sees one mini-batch of each
half; the heads are then solved on those batches, pulled toward their previous
values when ``proximal_lambda > 0`` (the CFLO paper's proximal variant).
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._ridge.dfiv_stages import (
    fit_stage1,
    fit_stage2,
    predict_stage1,
    stage1_alpha_losses,
    stage2_alpha_losses,
    stage2_design,
    structural_prediction,
)
from .._ridge.head import (
    ACCUMULATION_DTYPE,
    RidgeStatistics,
    apply_head,
    best_candidate,
    solve_head,
    solve_proximal_batch,
)
from .._ridge.inference import two_stage_covariance
from .cflo import DEFAULT_ALPHAS
from .data import PREDICT_CHUNK, compute_features
from .loop import Checkpoint, EpochHistory, EpochLoss, TrainingOptions, run_epochs
from .optim import network_optimizer


@dataclass
class DFIVSample:
    """One half of the data, as tensors on the training device.

    ``instrument`` holds the excluded instruments and the covariates side by
    side (the instrument network sees both); ``covariate`` is ``None`` when
    there are no covariates.
    """

    treatment: torch.Tensor
    instrument: torch.Tensor
    covariate: torch.Tensor | None
    outcome: torch.Tensor

    def __len__(self):
        return self.treatment.shape[0]

    def subset(self, index):
        covariate = None if self.covariate is None else self.covariate[index]
        return DFIVSample(
            self.treatment[index], self.instrument[index], covariate, self.outcome[index]
        )

    def joined(self, other):
        """This sample's rows followed by ``other``'s (``self`` when ``other`` is None)."""
        if other is None:
            return self
        covariate = None
        if self.covariate is not None:
            covariate = torch.cat([self.covariate, other.covariate])
        return DFIVSample(
            torch.cat([self.treatment, other.treatment]),
            torch.cat([self.instrument, other.instrument]),
            covariate,
            torch.cat([self.outcome, other.outcome]),
        )


@dataclass
class DFIVNetworks:
    treatment: nn.Module
    instrument: nn.Module
    covariate: nn.Module | None


@dataclass
class HalfFeatures:
    """The three networks' features of one half, with its outcome."""

    instrument: torch.Tensor
    treatment: torch.Tensor
    covariate: torch.Tensor | None
    outcome: torch.Tensor


@dataclass
class DFIVOptions(TrainingOptions):
    """Settings of one DFIV training run: the shared ones and the two stages'."""

    batch_size: int | None = None
    stage1_alpha: float | str = 0.1
    stage2_alpha: float | str = 0.1
    alphas: tuple = DEFAULT_ALPHAS
    stage1_iter: int = 20
    covariate_iter: int = 20
    stage2_iter: int = 1
    proximal_lambda: float = 0.0
    cross_fitted_stopping: bool = False


@dataclass
class DFIVResult(EpochHistory):
    """What DFIV training produced: the two heads (standardised outcome units)."""

    stage1_weights: torch.Tensor | None = None
    stage2_weights: torch.Tensor | None = None
    stage1_alpha: float | None = None
    stage2_alpha: float | None = None


def _mse(residual):
    return residual.pow(2).mean()


def training_rows(first, second, validation=None):
    """Every row of a fit: both halves and early stopping's held-out rows, if any."""
    return first.joined(second).joined(validation)


def train_dfiv(networks, options, generator, first, second, validation=None):
    """Train the three networks on the stage-1 half ``first`` and the stage-2 half ``second``.

    Runs the shared epoch loop over :class:`DFIVSteps`. A non-finite loss
    (divergence) or Ctrl-C ends training at the last completed epoch, whose
    networks are restored; the result says which. With a ``validation``
    sample, training stops once the held-out stage-2 loss (the IV criterion)
    has not improved by ``tol`` for ``n_iter_no_change`` epochs, and the best
    networks are restored; without one, ``options.cross_fitted_stopping`` does
    the same with :meth:`DFIVSteps.cross_fitted_iv_loss`, which holds out no
    rows. The heads are then solved exactly on all rows
    (both halves and the validation rows), the networks fixed (unless
    ``refit_head=False`` and training ended normally, which keeps the last
    running heads).

    Returns
    -------
    DFIVResult
    """
    steps = DFIVSteps(networks, options, generator, first, second, validation)
    validating = validation is not None or options.cross_fitted_stopping
    history, _ = run_epochs(steps, options, validating=validating)
    heads = (steps.stage1_weights, steps.stage2_weights)
    stopped_early = history.diverged or history.interrupted
    if options.refit_head or stopped_early or any(head is None for head in heads):
        # With the features fixed, both stages are solved on every training row:
        # a two-stage least squares on the learned features. On the demand design
        # (n=2000, 6 seeds) this lowered the level MSE from 339 to 230 and the
        # attenuation of the average effect of price from 15% to 7% against
        # heads solved on the halves, whose stage-1 noise attenuates stage 2.
        # Early stopping's held-out rows join them: they chose the epoch, not the heads.
        steps.choose_alphas()  # (for the networks kept)
        whole = training_rows(first, second, validation)
        heads = steps.refit(whole, whole)
    stage1, stage2 = (head.detach() for head in heads)
    return DFIVResult(
        **vars(history),
        stage1_weights=stage1,
        stage2_weights=stage2,
        stage1_alpha=steps.alpha1,
        stage2_alpha=steps.alpha2,
    )


class DFIVSteps:
    """DFIV's epoch for the shared loop: the reference schedule over the two halves."""

    loss_label = "stage-2 loss"

    @property
    def prefers_latest_epoch(self):
        """Keep the latest epoch within ``tol`` of the best, under the cross-fitted guard.

        Its loss is flat near its minimum, where picking the strict best is
        noise: on the demand design (n=2000, 10 seeds) the strict best gave a
        level MSE of 226 at 10 epochs and 218 at 100; the latest within
        ``tol=3e-4`` gave 212 and 193 (208 at 10 epochs without a guard).
        Held-out early stopping keeps the best epoch, as scikit-learn does.
        """
        return self.validation is None

    def __init__(self, networks, options, generator, first, second, validation=None):
        self.networks = networks
        self.options = options
        self.generator = generator
        self.first, self.second, self.validation = first, second, validation
        optimizers = {
            name: network_optimizer(module, [], options) for name, module in self._modules().items()
        }
        # (No optimiser for a network with nothing to train, such as a linear one.)
        self._optimizers = {name: opt for name, opt in optimizers.items() if opt is not None}
        self.stage1_weights = None
        self.stage2_weights = None
        auto = "auto"
        self.alpha1 = None if options.stage1_alpha == auto else options.stage1_alpha
        self.alpha2 = None if options.stage2_alpha == auto else options.stage2_alpha
        # Both halves' features of the current networks: the guard's score at the end
        # of an epoch and the next epoch's 'auto' penalties both need them.
        self._cached_features = None

    def _modules(self):
        return {name: m for name, m in vars(self.networks).items() if m is not None}

    def optimizers(self):
        return list(self._optimizers.values())

    def run_epoch(self, epoch):
        self.choose_alphas()
        self._cached_features = None  # (the networks are about to change)
        losses = [self._step(a, b) for a, b in self._batch_pairs(self.first, self.second)]
        loss = float(sum(losses) / len(losses))
        if not math.isfinite(loss):
            return None
        return EpochLoss(reported=loss, scheduled=loss)

    def checkpoint(self, epoch):
        # The running heads belong to the state: restoring the best epoch without
        # them would pair its networks with a later epoch's heads (refit_head=False).
        heads = {"stage1": self.stage1_weights, "stage2": self.stage2_weights}
        heads = {name: head for name, head in heads.items() if head is not None}
        return Checkpoint(self._modules(), epoch, heads=heads)

    def restore(self, checkpoint):
        self._cached_features = None
        heads = checkpoint.restore(self._modules())
        self.stage1_weights = heads.get("stage1")
        self.stage2_weights = heads.get("stage2")

    def validation_score(self):
        if self.validation is None:
            return -self.cross_fitted_iv_loss()
        return -self.held_out_stage2_loss(self.validation)

    def score_postfix(self, score):
        label = "cross-fitted IV loss" if self.validation is None else "val IV loss"
        return label, f"{-score:.4g}"

    def _batch_pairs(self, first, second):
        """Pairs of mini-batches of the two halves that use every row once per epoch.

        Each half is shuffled and cut into the same number of batches, about
        ``batch_size`` rows each in the smaller half (the larger half's batches
        are proportionally larger), so that no row is left out when the halves
        differ in size or ``batch_size`` does not divide them.
        """
        size = self.options.batch_size
        if size is None or size >= max(len(first), len(second)):
            return [(first, second)]
        device = first.treatment.device
        order1 = torch.randperm(len(first), generator=self.generator).to(device)
        order2 = torch.randperm(len(second), generator=self.generator).to(device)
        n_batches = max(1, round(min(len(first), len(second)) / size))
        return [
            (first.subset(rows1), second.subset(rows2))
            for rows1, rows2 in zip(
                torch.tensor_split(order1, n_batches),
                torch.tensor_split(order2, n_batches),
                strict=True,
            )
        ]

    def _step(self, first, second):
        self._instrument_steps(first)
        if self.networks.covariate is not None:
            self._covariate_steps(first, second)
        return self._treatment_steps(first, second)

    # -- stage 1: instrument network -------------------------------------------------
    def _instrument_steps(self, first):
        nets = self.networks
        with torch.no_grad():
            nets.treatment.eval()
            target = nets.treatment(first.treatment)
        optimizer = self._optimizers.get("instrument")
        nets.instrument.train()
        for _ in range(self.options.stage1_iter if optimizer else 0):
            features = nets.instrument(first.instrument)
            weights = self._stage1_solve(features.detach(), target)
            loss = _mse(apply_head(features, weights) - target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # -- covariate network -----------------------------------------------------------
    def _covariate_steps(self, first, second):
        nets = self.networks
        predicted = self._predicted_treatment(first, second).detach()
        optimizer = self._optimizers.get("covariate")
        nets.covariate.train()
        for _ in range(self.options.covariate_iter if optimizer else 0):
            design = stage2_design(predicted, nets.covariate(second.covariate).double())
            weights = self._stage2_solve(design.detach(), second.outcome)
            loss = _mse(apply_head(design, weights) - second.outcome)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # -- stage 2: treatment network --------------------------------------------------
    def _treatment_steps(self, first, second):
        nets = self.networks
        with torch.no_grad():
            nets.instrument.eval()
            instrument1 = nets.instrument(first.instrument)
            instrument2 = nets.instrument(second.instrument)
            covariate2 = None
            if nets.covariate is not None:
                nets.covariate.eval()
                covariate2 = nets.covariate(second.covariate).double()
        optimizer = self._optimizers.get("treatment")
        nets.treatment.train()
        loss = None
        for _ in range(max(self.options.stage2_iter, 1)):
            # V stays in the graph: the stage-2 loss reaches phi through it.
            stage1 = fit_stage1(instrument1, nets.treatment(first.treatment), self.alpha1)
            design = stage2_design(predict_stage1(instrument2, stage1), covariate2)
            weights = self._stage2_solve(design.detach(), second.outcome)
            loss = _mse(apply_head(design, weights) - second.outcome)
            if optimizer is None or self.options.stage2_iter == 0:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.detach()

    # -- closed-form pieces ----------------------------------------------------------
    def _predicted_treatment(self, first, second):
        nets = self.networks
        with torch.no_grad():
            nets.treatment.eval()
            nets.instrument.eval()
            stage1 = fit_stage1(
                nets.instrument(first.instrument),
                nets.treatment(first.treatment),
                self.alpha1,
            )
            return predict_stage1(nets.instrument(second.instrument), stage1)

    def _stage1_solve(self, features, target):
        self.stage1_weights = self._proximal(features, target, self.alpha1, self.stage1_weights)
        return self.stage1_weights

    def _stage2_solve(self, design, outcome):
        self.stage2_weights = self._proximal(design, outcome, self.alpha2, self.stage2_weights)
        return self.stage2_weights

    def _proximal(self, features, target, alpha, previous):
        lam = self.options.proximal_lambda
        shape = (features.shape[-1] + 1, target.shape[-1])
        if lam > 0 and previous is not None and previous.shape == shape:
            return solve_proximal_batch(features, target, alpha, lam, previous)
        return solve_head(RidgeStatistics.from_batch(features, target), alpha)

    @torch.no_grad()
    def held_out_stage2_loss(self, validation):
        """Stage-2 loss on held-out rows with exact heads of the current networks."""
        stage1, stage2 = self.refit()
        nets = self.networks
        instrument = compute_features(nets.instrument, validation.instrument)
        covariate = None
        if nets.covariate is not None:
            covariate = compute_features(nets.covariate, validation.covariate)
        fitted = structural_prediction(predict_stage1(instrument, stage1), covariate, stage2)
        return float(_mse(fitted - validation.outcome))

    @torch.no_grad()
    def cross_fitted_iv_loss(self):
        """Stage-2 loss of the stage-1 half's outcomes, which training never uses.

        Training fits the stage-1 half's treatment features, never its
        outcomes. Here they are predicted by a stage-1 head solved on the
        other half, and the stage-2 head is the exact one of the halves
        (trained on the stage-2 half's outcomes): every piece is out of sample
        for these outcomes, so the loss can choose the epoch without holding
        rows out. On the demand design (n=2000, 4 seeds, 40 epochs) the level
        MSE of its best epoch was 0-8% above that of the best epoch, against
        13-20% for epoch 10; the same loss with the in-sample stage-1
        prediction kept falling for 3-7 epochs longer, into overfitting.
        """
        one, two = self._features_of_halves()
        return float(self._cross_fitted_losses(one, two, [self.alpha2])[0])

    def choose_alphas(self):
        """Choose the 'auto' penalties for the current networks, on the two halves.

        Stage 1's penalty minimises the stage-1 loss on the stage-2 half of
        the head solved on the stage-1 half; stage 2's minimises the
        cross-fitted IV loss (:meth:`cross_fitted_iv_loss`): each stage is
        scored on rows its head was not solved on, as the DFIV paper (after
        kernel IV) selects them.
        """
        auto1, auto2 = (option == "auto" for option in self._alpha_options())
        if not (auto1 or auto2):
            return
        one, two = self._features_of_halves()
        candidates = self.options.alphas
        if auto1:
            held_out = (two.instrument, two.treatment)
            losses = stage1_alpha_losses(one.instrument, one.treatment, held_out, candidates)
            self.alpha1 = best_candidate(candidates, losses)
        if auto2:
            losses = self._cross_fitted_losses(one, two, candidates)
            self.alpha2 = best_candidate(candidates, losses)

    def _alpha_options(self):
        return self.options.stage1_alpha, self.options.stage2_alpha

    def _cross_fitted_losses(self, one, two, stage2_alphas):
        """The cross-fitted IV loss for each stage-2 penalty (features of both halves given)."""
        stage1 = fit_stage1(one.instrument, one.treatment, self.alpha1)
        other_stage1 = fit_stage1(two.instrument, two.treatment, self.alpha1)
        held_out = (predict_stage1(one.instrument, other_stage1), one.covariate, one.outcome)
        predicted = predict_stage1(two.instrument, stage1)
        return stage2_alpha_losses(predicted, two.covariate, two.outcome, held_out, stage2_alphas)

    @torch.no_grad()
    def _features_of_halves(self):
        if self._cached_features is None:
            self._cached_features = self._features_of(self.first), self._features_of(self.second)
        return self._cached_features

    def _features_of(self, sample):
        nets = self.networks
        covariate = None
        if nets.covariate is not None:
            covariate = compute_features(nets.covariate, sample.covariate)
        return HalfFeatures(
            compute_features(nets.instrument, sample.instrument),
            compute_features(nets.treatment, sample.treatment),
            covariate,
            sample.outcome,
        )

    @torch.no_grad()
    def refit(self, first=None, second=None):
        """Exact stage-1 and stage-2 heads, networks fixed.

        Stage 1 is solved on the rows of ``first`` and stage 2 on those of
        ``second``: by default the two halves the networks train on.
        """
        nets = self.networks
        first = self.first if first is None else first
        second = self.second if second is None else second
        chunk = PREDICT_CHUNK
        instrument1 = compute_features(nets.instrument, first.instrument, chunk)
        treatment1 = compute_features(nets.treatment, first.treatment, chunk)
        stage1 = fit_stage1(instrument1, treatment1, self.alpha1)
        # Both stages on the same rows (the final refit): one instrument pass serves both.
        if second is first:
            instrument2 = instrument1
        else:
            instrument2 = compute_features(nets.instrument, second.instrument, chunk)
        covariate2 = None
        if nets.covariate is not None:
            covariate2 = compute_features(nets.covariate, second.covariate, chunk)
        predicted = predict_stage1(instrument2, stage1)
        stage2 = fit_stage2(predicted, covariate2, second.outcome, self.alpha2)
        return stage1.to(ACCUMULATION_DTYPE), stage2.to(ACCUMULATION_DTYPE)


@torch.no_grad()
def stage2_covariance(networks, sample, stage1, stage2, alpha, cov_type):
    """Covariance of the stage-2 head fitted on ``sample``, features fixed (standardised units).

    See :func:`skcflo._ridge.inference.two_stage_covariance`.
    """
    treatment = compute_features(networks.treatment, sample.treatment)
    instrument = compute_features(networks.instrument, sample.instrument)
    covariate = None
    if networks.covariate is not None:
        covariate = compute_features(networks.covariate, sample.covariate)
    predicted = predict_stage1(instrument, stage1)
    return two_stage_covariance(
        predicted, treatment, covariate, sample.outcome, stage2, alpha, cov_type
    )


# Permutations of the instruments averaged into the covariates-only prediction.
N_INSTRUMENT_PERMUTATIONS = 10


@torch.no_grad()
def cross_fitted_first_stage(networks, first, second, stage1_alpha, stage2, generator):
    """What the first-stage diagnostics need, on the stage-2 half ``second``.

    The instrument features of ``second`` were not trained on, and the
    stage-1 head predicting the treatment features from them is solved on
    ``first``: the prediction is an out-of-sample instrument. Its part that
    the covariates alone explain (the instrument network sees both) is
    estimated by averaging the prediction over random permutations of the
    excluded instruments' rows (instruments independent of the covariates).

    Returns
    -------
    dict of float64 CPU tensors
        ``treatment`` features, their ``predicted`` values and the
        covariates-only ``baseline``; the structural ``index`` (the stage-2
        head on the true features) with its ``predicted_index`` and
        ``baseline_index``.
    """
    nets = networks
    stage1 = fit_stage1(
        compute_features(nets.instrument, first.instrument),
        compute_features(nets.treatment, first.treatment),
        stage1_alpha,
    )
    covariate = None
    if nets.covariate is not None:
        covariate = compute_features(nets.covariate, second.covariate)

    def predicted_from(instrument_input):
        features = compute_features(nets.instrument, instrument_input)
        return predict_stage1(features, stage1)

    n_excluded = second.instrument.shape[1] - (
        0 if second.covariate is None else second.covariate.shape[1]
    )
    baseline = 0.0
    for _ in range(N_INSTRUMENT_PERMUTATIONS):
        order = torch.randperm(len(second), generator=generator).to(second.instrument.device)
        shuffled = second.instrument.clone()
        shuffled[:, :n_excluded] = second.instrument[order, :n_excluded]
        baseline = baseline + predicted_from(shuffled) / N_INSTRUMENT_PERMUTATIONS
    treatment = compute_features(nets.treatment, second.treatment).double()
    predicted = predicted_from(second.instrument)
    tensors = {"treatment": treatment, "predicted": predicted, "baseline": baseline}
    for name, features in list(tensors.items()):
        tensors[f"{name}_index"] = structural_prediction(features, covariate, stage2)
    return {name: tensor.cpu() for name, tensor in tensors.items()}

"""Streaming training: one epoch per chunk, head statistics carried across chunks.

``partial_fit`` trains on data that never fits in memory at once. Each call
runs one pass of the usual mini-batch training on its chunk, then folds the
chunk's ridge statistics into the running ones, down-weighting everything seen
before by the forgetting factor (the Kalman / recursive least-squares reading:
old features drift as the backbone moves), and solves the head on the result.
The target scaling is fixed by the first chunk. A :class:`Stream` owns all of
this state, its moves between devices and its pickling.
"""

import copy

import torch

from .._ridge.head import (
    ACCUMULATION_DTYPE,
    RidgeStatistics,
    head_covariance,
    select_alpha,
    solve_head,
)
from .cflo import MinibatchTrainer
from .data import TargetScaler, collect_statistics
from .optim import network_optimizer


class Stream:
    """What ``partial_fit`` carries from one chunk to the next.

    Parameters
    ----------
    backbone : torch.nn.Module
        The module the stream trains (owned by the stream from now on).
    inputs, targets : torch.Tensor
        The first chunk (targets float64, in the layout ``(n, *grid, k)``).
    options : CFLOOptions
    generator : torch.Generator
        Source of every chunk's mini-batch order.
    grid : tuple
        Grid shape of operator-shaped features, ``()`` for plain ones.
    sample_weight : torch.Tensor of shape (n,), float64, default=None
        Weights of the first chunk's rows (its target scaling is weighted).
    """

    def __init__(self, backbone, inputs, targets, options, generator, grid=(), sample_weight=None):
        self.backbone, self.generator, self.grid = backbone, generator, grid
        self.scaler = TargetScaler(targets, sample_weight)
        batch_size = min(options.batch_size, len(inputs))
        self.stats = collect_statistics(
            backbone, inputs, self.scaler.transform(targets), batch_size, None, sample_weight
        )
        if not torch.isfinite(self.stats.gram).all():
            raise ValueError("The backbone returned NaN or infinite features on the training data.")
        self.optimizer = network_optimizer(backbone, [], options)
        self.alpha = _choose_alpha(self.stats, options)
        self.weights = solve_head(self.stats, self.alpha)
        self.n_chunks = 0

    @property
    def n_coefficients(self):
        """Head coefficients per output: the feature width plus the intercept."""
        return self.weights.shape[0]

    def train_chunk(
        self, inputs, targets, head_update, options, forgetting_factor, sample_weight=None
    ):
        """One epoch on a chunk, then the exact head on the discounted running statistics.

        Returns the chunk's training loss in the units of ``y``, or ``None`` if
        the epoch diverged: the stream is then left as it was before the call.
        ``sample_weight``: weights of the chunk's rows, or ``None``.
        """
        saved = copy.deepcopy(self.backbone.state_dict())
        scaled = self.scaler.transform(targets)
        batch_size = min(options.batch_size, len(inputs))
        weights, _ = head_update.begin(self.stats, self.weights, self.generator)
        trainer = MinibatchTrainer(
            self.backbone,
            head_update,
            self.optimizer,
            batch_size,
            self.generator,
            sample_weight=sample_weight,
        )
        _, per_output_mse = trainer.run(inputs, scaled.to(inputs.dtype), weights, self.alpha)
        if per_output_mse is None:
            self.backbone.load_state_dict(saved)
            return None
        chunk = collect_statistics(self.backbone, inputs, scaled, batch_size, None, sample_weight)
        # The first chunk's statistics seeded the stream before any training step;
        # they are replaced by the trained ones rather than counted twice.
        if self.n_chunks == 0:
            self.stats = chunk
        else:
            self.stats = self.stats.discounted(forgetting_factor) + chunk
        self.alpha = _choose_alpha(self.stats, options)
        self.weights = solve_head(self.stats, self.alpha)
        self.n_chunks += 1
        return float(self.scaler.variance_to_raw(per_output_mse).mean())

    def head(self):
        """Raw-unit head weights, noise variance and inverse system of the stream."""
        weights = self.weights.detach().to(ACCUMULATION_DTYPE)
        noise_variance, inverse_system = head_covariance(self.stats, self.alpha, weights)
        noise_variance = self.scaler.variance_to_raw(noise_variance)
        return self.scaler.weights_to_raw(weights), noise_variance, inverse_system

    def fitted_backbone(self):
        """The trained module as a fitted estimator stores it: on the CPU, not shared.

        On a GPU the stream goes on training its own module, so the estimator
        gets a CPU copy; on the CPU the module itself.
        """
        if self.weights.device.type == "cpu":
            return self.backbone
        return copy.deepcopy(self.backbone).cpu()

    def to(self, device):
        """Move the backbone and every tensor of the state to ``device``, in place.

        The optimiser's per-parameter ``step`` counters stay where torch keeps
        them (on the CPU for non-capturable optimisers).
        """
        self.backbone.to(device)
        self.scaler.to(device)
        stats = self.stats
        target_sq = None if stats.target_sq is None else stats.target_sq.to(device)
        self.stats = RidgeStatistics(
            stats.gram.to(device), stats.cross.to(device), stats.count, target_sq
        )
        self.weights = self.weights.to(device)
        if self.optimizer is not None:
            for parameter_state in self.optimizer.state.values():
                for key, value in parameter_state.items():
                    if torch.is_tensor(value) and key != "step":
                        parameter_state[key] = value.to(device)
        return self

    def __getstate__(self):
        # A stream trained on a GPU is pickled from a CPU copy, so that the pickle
        # loads without CUDA; partial_fit moves it back to its device.
        if self.weights.device.type == "cpu":
            return self.__dict__
        cpu_copy = object.__new__(Stream)
        cpu_copy.__dict__.update(copy.deepcopy(self.__dict__))
        return cpu_copy.to(torch.device("cpu")).__dict__


def _choose_alpha(stats, options):
    if options.alpha == "auto":
        return select_alpha(stats, options.alphas)[0]
    return options.alpha

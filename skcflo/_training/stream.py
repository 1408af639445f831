"""Streaming training: one epoch per chunk, head statistics carried across chunks.

``partial_fit`` trains on data that never fits in memory at once. Each call
runs one epoch of the usual loop on its chunk, then folds the chunk's ridge
statistics into the running ones, down-weighting everything seen before by
the forgetting factor (the Kalman / recursive least-squares reading: old
features drift as the backbone moves), and solves the head on the result.
The target scaling is fixed by the first chunk.
"""

from dataclasses import dataclass

import torch

from .._ridge.head import (
    ACCUMULATION_DTYPE,
    RidgeStatistics,
    head_covariance,
    select_alpha,
    solve_head,
)
from .cflo import TargetScaler, _run_epoch, collect_statistics, make_optimizer


@dataclass
class StreamState:
    """Everything ``partial_fit`` carries from one chunk to the next."""

    scaler: TargetScaler
    optimizer: torch.optim.Optimizer | None
    stats: RidgeStatistics
    weights: torch.Tensor
    generator: torch.Generator
    alpha: float
    n_chunks: int = 0
    grid: tuple = ()


def start_stream(backbone, inputs, targets, options, generator):
    """State for a stream whose first chunk is ``(inputs, targets)``."""
    scaler = TargetScaler(targets)
    stats = collect_statistics(
        backbone, inputs, scaler.transform(targets), min(options.batch_size, len(inputs))
    )
    if not torch.isfinite(stats.gram).all():
        raise ValueError("The backbone returned NaN or infinite features on the training data.")
    parameters = [p for p in backbone.parameters() if p.requires_grad]
    optimizer = None
    if parameters:
        optimizer = make_optimizer(
            parameters, options.solver, options.learning_rate, options.momentum
        )
    alpha = _choose_alpha(stats, options)
    return StreamState(scaler, optimizer, stats, solve_head(stats, alpha), generator, alpha)


def _choose_alpha(stats, options):
    if options.alpha == "auto":
        return select_alpha(stats, options.alphas)[0]
    return options.alpha


def train_chunk(backbone, state, inputs, targets, head_update, options, forgetting_factor):
    """One epoch on a chunk, then the exact head on the discounted running statistics.

    Returns the chunk's training loss in the units of ``y``, or ``None`` if the
    epoch diverged (the state is then left as it was, except the backbone).
    """
    scaled = state.scaler.transform(targets)
    batch_size = min(options.batch_size, len(inputs))
    head_update.alpha = state.alpha
    head_update.start(state.stats)
    weights, per_output_mse = _run_epoch(
        backbone,
        inputs,
        scaled.to(inputs.dtype),
        state.weights,
        head_update,
        state.optimizer,
        batch_size,
        state.generator,
    )
    if per_output_mse is None:
        return None
    chunk = collect_statistics(backbone, inputs, scaled, batch_size)
    # The first chunk's statistics seeded the stream before any training step;
    # they are replaced by the trained ones rather than counted twice.
    previous = None if state.n_chunks == 0 else state.stats
    state.stats = chunk if previous is None else previous.discounted(forgetting_factor) + chunk
    state.alpha = _choose_alpha(state.stats, options)
    state.weights = solve_head(state.stats, state.alpha)
    state.n_chunks += 1
    return float((per_output_mse * state.scaler.scale.to(per_output_mse) ** 2).mean())


def stream_head(state):
    """Raw-unit head weights, noise variance and inverse system of the stream."""
    weights = state.weights.detach().to(ACCUMULATION_DTYPE)
    noise_variance, inverse_system = head_covariance(state.stats, state.alpha, weights)
    noise_variance = noise_variance * state.scaler.scale.to(noise_variance) ** 2
    return state.scaler.weights_to_raw(weights), noise_variance, inverse_system


def move_stream(backbone, state, device):
    """Move a stream's backbone and every tensor of its state to ``device``, in place.

    Used to keep pickles loadable without CUDA (a stream trained on a GPU is
    pickled from a CPU copy) and to continue such a stream on any device.
    The optimiser's per-parameter ``step`` counters stay where torch keeps
    them (on the CPU for non-capturable optimisers).
    """
    backbone.to(device)
    state.scaler.mean = state.scaler.mean.to(device)
    state.scaler.scale = state.scaler.scale.to(device)
    stats = state.stats
    target_sq = None if stats.target_sq is None else stats.target_sq.to(device)
    state.stats = RidgeStatistics(
        stats.gram.to(device), stats.cross.to(device), stats.count, target_sq
    )
    state.weights = state.weights.to(device)
    if state.optimizer is not None:
        for parameter_state in state.optimizer.state.values():
            for key, value in parameter_state.items():
                if torch.is_tensor(value) and key != "step":
                    parameter_state[key] = value.to(device)

"""Tensors into and out of the networks: batches, features, statistics, target scaling."""

import torch

from .._ridge.head import RidgeStatistics, row_weights

# Rows per forward pass when a network only predicts (no activations kept for
# a backward pass): large enough to amortise per-call overhead, small enough
# for a GPU's memory with wide features.
PREDICT_CHUNK = 4096

# A gradient-free forward pass keeps no activations for a backward pass, so a
# chunk of a few training batches needs about the memory of one training step
# (plus a float64 copy of its features for the statistics). On small batches
# the larger chunks save per-call overhead: the exact head's pass over the
# Burgers data took 0.06 s in chunks of 80-200 samples, 0.16 s in chunks of 20.
NO_GRAD_CHUNK_FACTOR = 4


class TargetScaler:
    """Per-output standardisation of the targets, and its inverse on head weights.

    Ridge is linear in the targets, so a head fitted to standardised targets
    converts back to raw units exactly.
    """

    def __init__(self, targets, sample_weight=None):
        # One scale per head output, shared by all grid positions of operator targets.
        rows = targets.reshape(-1, targets.shape[-1])
        if sample_weight is None:
            self.mean = rows.mean(dim=0)
            scale = rows.std(dim=0, correction=0)
        else:  # the weighted moments: those of the rows repeated by integer weights
            weight = row_weights(sample_weight, rows.shape[0]).to(rows)[:, None]
            total = weight.sum().clamp_min(torch.finfo(rows.dtype).tiny)
            self.mean = (weight * rows).sum(dim=0) / total
            scale = ((weight * (rows - self.mean).square()).sum(dim=0) / total).sqrt()
        self.scale = torch.where(scale > 0, scale, torch.ones_like(scale))

    def transform(self, targets):
        return (targets - self.mean) / self.scale

    def variance_to_raw(self, variance):
        """Per-output variances (or mean squared errors) in the units of the raw targets."""
        return variance * self.scale.to(variance) ** 2

    def weights_to_raw(self, weights):
        """Head weights for raw targets: ``W * s`` and ``b * s + m``."""
        raw = weights * self.scale.to(weights.dtype)
        raw[-1] += self.mean.to(weights.dtype)
        return raw

    def to(self, device):
        """Move the scaling to ``device``, in place; returns ``self``."""
        self.mean = self.mean.to(device)
        self.scale = self.scale.to(device)
        return self


def minibatches(n_samples, batch_size, generator, device):
    """Shuffled index tensors covering ``range(n_samples)`` once."""
    order = torch.randperm(n_samples, generator=generator).to(device)
    return torch.split(order, batch_size)


@torch.no_grad()
def compute_features(network, inputs, batch_size=PREDICT_CHUNK):
    """A network's outputs on ``inputs`` in evaluation mode, batch by batch."""
    network.eval()
    return torch.cat([network(chunk) for chunk in torch.split(inputs, batch_size)])


@torch.no_grad()
def collect_statistics(backbone, inputs, targets, batch_size, group=None, sample_weight=None):
    """Exact ridge statistics of the whole data set, in chunks of a few batches.

    Chunks have ``NO_GRAD_CHUNK_FACTOR * batch_size`` rows. With a
    data-parallel ``group`` each process passes over its share of the rows, in
    chunks of its share of the batch, and the shares' statistics are summed.
    ``sample_weight``: a weight per row of ``inputs``, or ``None``.
    """
    if group is not None:
        rows = group.shard(torch.arange(inputs.shape[0], device=inputs.device))
        share = max(1, batch_size // group.world_size)
        weight = None if sample_weight is None else sample_weight[rows]
        stats = collect_statistics(backbone, inputs[rows], targets[rows], share, None, weight)
        return group.reduce_statistics(stats)
    backbone.eval()
    total = None
    chunk = NO_GRAD_CHUNK_FACTOR * batch_size
    weights = [None] * len(range(0, inputs.shape[0], chunk))
    if sample_weight is not None:
        weights = torch.split(sample_weight, chunk)
    chunks = zip(torch.split(inputs, chunk), torch.split(targets, chunk), weights, strict=True)
    for x_chunk, y_chunk, w_chunk in chunks:
        batch = RidgeStatistics.from_batch(backbone(x_chunk), y_chunk, w_chunk)
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

"""Batch-independent predictions from a trained backbone, at the network's speed.

float32 matrix products sum in an order that depends on the shape of the
batch (a single row takes a different kernel than many), so float32
predictions of one row change in the 7th digit with the rows predicted beside
it. A float64 copy of the trained network makes a row's prediction independent
of its batch to ~1e-15, and no less accurate. Making that copy took longer
than the forward pass itself on small batches (0.3 ms a call for a 100-unit
network), so :class:`PredictionNetwork` keeps it until the backbone changes.
"""

import copy

import torch

from .._training.data import PREDICT_CHUNK, compute_features
from .glue import copy_to_device


class PredictionNetwork:
    """The float64 copy of a backbone that predictions run through, made once.

    The copy is remade for another backbone object (a new fit), when the
    backbone's parameters or buffers are modified in place (their version
    counters change, as with ``load_state_dict`` or an in-place update under
    ``torch.no_grad``), or for another device. Replacing a parameter by a new
    tensor object inside the same backbone is not seen; use
    ``load_state_dict`` instead. A module that cannot run in float64 (a
    custom float32-only operation) predicts in float32. The copy is a cache:
    it is not pickled, and a copy of the estimator makes its own.

    Examples
    --------
    >>> import torch
    >>> net = PredictionNetwork()
    >>> backbone = torch.nn.Linear(2, 3)
    >>> net.features(backbone, torch.ones(4, 2, dtype=torch.float64), "cpu").dtype
    torch.float64
    """

    def __init__(self):
        self._forget()

    def features(self, backbone, inputs, device):
        """The backbone's features of float64 ``inputs``, as float64."""
        module, dtype = self._network(backbone, torch.device(device))
        if dtype == torch.float64:
            try:
                return _forward(module, inputs)
            except (RuntimeError, TypeError):
                module, dtype = self._remember(backbone, device, *_narrow(backbone, device))
        return _forward(module, inputs.to(dtype)).double()

    def _network(self, backbone, device):
        if not self._holds(backbone, device):
            return self._remember(backbone, device, _widened(backbone, device), torch.float64)
        return self._module, self._dtype

    def _holds(self, backbone, device):
        """Whether the copy is of ``backbone``'s current weights, on ``device``."""
        # The tensors listed when the copy was made: walking the module tree on
        # every call cost as much as the forward pass of a small network.
        return (
            backbone is self._backbone
            and device == self._device
            and [t._version for t in self._tensors] == self._versions
        )

    def _remember(self, backbone, device, module, dtype):
        module.eval()
        self._backbone, self._device = backbone, device
        self._tensors = [*backbone.parameters(), *backbone.buffers()]
        self._versions = [t._version for t in self._tensors]
        self._module, self._dtype = module, dtype
        return module, dtype

    def _forget(self):
        self._backbone = self._device = self._module = self._dtype = None
        self._tensors, self._versions = [], []

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._forget()

    def __deepcopy__(self, memo):
        return PredictionNetwork()


@torch.no_grad()
def _forward(module, inputs):
    """``module`` (in evaluation mode) on ``inputs``, in chunks when they are many."""
    if len(inputs) <= PREDICT_CHUNK:  # one call: splitting and joining cost more than it
        return module(inputs)
    return compute_features(module, inputs)


def _narrow(backbone, device):
    return copy_to_device(backbone, device), torch.float32


def _widened(backbone, device):
    """A double-precision copy of ``backbone`` on ``device``.

    Real parameters and buffers become float64 and complex ones complex128
    (``Module.to(torch.float64)`` would cast complex weights, such as those of
    spectral convolutions, to real ones and drop their imaginary parts).
    """

    def widen(tensor):
        if tensor.is_complex():
            return tensor.to(device=device, dtype=torch.complex128)
        if tensor.is_floating_point():
            return tensor.to(device=device, dtype=torch.float64)
        return tensor.to(device=device)

    return copy.deepcopy(backbone)._apply(widen)

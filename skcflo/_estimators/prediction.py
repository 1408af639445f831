"""Batch-independent predictions from a trained backbone, at the network's speed.

float32 matrix products sum in an order that depends on the shape of the
batch (a single row takes a different kernel than many), so float32
predictions of one row change in the 7th digit with the rows predicted beside
it. A float64 copy of the trained network makes a row's prediction independent
of its batch to ~1e-15, and no less accurate. Making that copy took longer
than the forward pass itself on small batches (0.3 ms a call for a 100-unit
network), so :class:`PredictionNetwork` keeps it until the backbone changes.

On the CPU, a plain stack of layers (``Linear``, ReLU, tanh, logistic,
identity, and the inputs put beside the features: every ``MLPBackbone`` with
those activations) runs as numpy products on the copy's float64 weights. For
one row torch spent more time dispatching its operations than computing
them: 1.6-1.8x ``MLPRegressor.predict`` (``benchmarks/bench_predict.py``).
"""

import copy

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from .._networks.backbones import WithInputs
from .._ridge.head import apply_linear_head
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
        if self._layers is not None:
            return torch.from_numpy(_run_layers(self._layers, inputs.numpy()))
        if dtype == torch.float64:
            try:
                return _forward(module, inputs)
            except (RuntimeError, TypeError):
                module, dtype = self._remember(backbone, device, *_narrow(backbone, device))
        return _forward(module, inputs.to(dtype)).double()

    def head_outputs(self, backbone, inputs, device, coef, intercept):
        """The head ``coef``, ``intercept`` on the backbone's features of float64 ``inputs``.

        When the backbone puts its inputs beside the features, the numpy path
        applies the head to the two parts apart rather than joining them first
        (the join cost 40 µs of 520 for 1000 rows).
        """
        self._network(backbone, torch.device(device))
        layers = self._layers
        if layers is None or len(layers) != 1 or layers[0][0] != "with_inputs":
            return apply_linear_head(self.features(backbone, inputs, device), coef, intercept)
        values = inputs.numpy()
        inner = _run_layers(layers[0][1], values)
        n_inputs = values.shape[-1]
        outputs = values @ coef[..., :n_inputs].T
        outputs += inner @ coef[..., n_inputs:].T
        outputs += intercept
        return torch.from_numpy(outputs)

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
        on_cpu = torch.device(device).type == "cpu" and dtype == torch.float64
        self._layers = _numpy_layers(module) if on_cpu else None
        self._backbone, self._device = backbone, device
        self._tensors = [*backbone.parameters(), *backbone.buffers()]
        self._versions = [t._version for t in self._tensors]
        self._module, self._dtype = module, dtype
        return module, dtype

    def _forget(self):
        self._backbone = self._device = self._module = self._dtype = self._layers = None
        self._tensors, self._versions = [], []

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._forget()

    def __deepcopy__(self, memo):
        return PredictionNetwork()


# In place: each writes into the array it is given (one the forward pass owns).
_ACTIVATIONS = {
    nn.ReLU: lambda values: np.maximum(values, 0.0, out=values),
    nn.Tanh: lambda values: np.tanh(values, out=values),
    nn.Sigmoid: lambda values: expit(values, out=values),
    nn.Identity: lambda values: values,
}


def _numpy_layers(module):
    """``module`` as a list of numpy steps on its (float64) weights, or ``None``.

    ``None`` when it holds any other kind of layer, or hooks: those run in torch.
    """
    if module._forward_hooks or module._forward_pre_hooks:
        return None
    if type(module) is nn.Sequential:
        steps = [_numpy_layers(layer) for layer in module]
        return None if any(step is None for step in steps) else [s for step in steps for s in step]
    if type(module) is WithInputs:
        inner = _numpy_layers(module.network)
        return None if inner is None else [("with_inputs", inner)]
    if type(module) is nn.Linear:
        weight = module.weight.detach().numpy().T
        bias = None if module.bias is None else module.bias.detach().numpy()
        return [("linear", (weight, bias))]
    if type(module) in _ACTIVATIONS:
        return [("activation", _ACTIVATIONS[type(module)])]
    return None


def _run_layers(layers, values):
    """The numpy forward pass; new arrays throughout, ``values`` itself is never written."""
    owned = False
    for kind, payload in layers:
        if kind == "linear":
            weight, bias = payload
            values, owned = values @ weight, True
            if bias is not None:
                values += bias  # in place: a 1000 x 100 temporary cost as much as the product
        elif kind == "activation":
            values, owned = payload(values if owned else values.copy()), True
        else:
            values, owned = np.concatenate([values, _run_layers(payload, values)], axis=-1), True
    return values


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

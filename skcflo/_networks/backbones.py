"""Backbones: the networks whose features feed the closed-form head.

A backbone is anything that maps a float tensor ``(n, n_features_in)`` to
features ``(n, d)``. Estimators accept three kinds, resolved by
:func:`build_backbone` at fit time:

* a *spec* such as :class:`MLPBackbone`: a small clone-able object whose
  parameters grid search reaches as ``backbone__<name>``; it builds a fresh
  :class:`torch.nn.Module` once the number of input features is known;
* a :class:`torch.nn.Module` instance: deep-copied, never trained in place;
* a callable ``factory(n_features_in) -> nn.Module``.

A backbone may also return operator-shaped features ``(n, ..., d)``, one
``d``-vector per grid position (``FNOBackbone1d``, ``FNOBackbone2d``): the head
is then shared by every position, and ``y`` holds the positions (row-major)
times the outputs per position as its ``n_outputs`` columns.
"""

import copy
from numbers import Integral

import torch
from sklearn.base import BaseEstimator
from torch import nn

# The Fourier neural operator backbones live in their own module; they are
# backbones like the others, so they are reachable from here too.
from .fno import FNOBackbone1d, FNOBackbone2d  # noqa: F401

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


class MLPBackbone(BaseEstimator):
    """Specification of a fully connected feature network.

    The network is ``Linear -> activation`` repeated once per entry of
    ``hidden_layer_sizes``; by default it has no output layer (the closed-form
    head is the output layer), so its feature width is the last hidden size.
    An empty tuple gives the identity map: the head is then plain ridge
    regression on the inputs.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {'relu', 'tanh', 'logistic', 'gelu', 'silu', 'elu', \
'identity'}, default='relu'
        Non-linearity after every hidden layer.
    output_size : int or None, default=None
        If set, a final linear layer (no activation) maps to this many
        features: a low-dimensional linear read-out, as DFIV's treatment
        network uses.
    include_inputs : bool, default=False
        Put the inputs themselves beside the learned features (a skip
        connection to the head), so that the head can be linear in the inputs
        exactly: ridge on the inputs is then nested in the model. The feature
        width grows by ``n_features_in``.

    Examples
    --------
    >>> from skcflo import MLPBackbone
    >>> net = MLPBackbone(hidden_layer_sizes=(8, 4)).build_module(3)
    >>> net[-2].out_features
    4
    >>> import torch
    >>> skip = MLPBackbone(hidden_layer_sizes=(8, 4), include_inputs=True).build_module(3)
    >>> tuple(skip(torch.zeros(5, 3)).shape)
    (5, 7)
    """

    def __init__(
        self, hidden_layer_sizes=(100,), activation="relu", output_size=None, include_inputs=False
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_size = output_size
        self.include_inputs = include_inputs

    def build_module(self, n_features_in):
        """Build an untrained :class:`torch.nn.Sequential` for ``n_features_in`` inputs."""
        sizes = _validated_sizes(self.hidden_layer_sizes)
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}."
            )
        layers = []
        width = n_features_in
        for size in sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[self.activation]()]
            width = size
        if self.output_size is not None:
            layers.append(nn.Linear(width, _validated_sizes((self.output_size,))[0]))
        if not layers:
            return nn.Sequential(nn.Identity())  # (the inputs already, once)
        network = nn.Sequential(*layers)
        return WithInputs(network) if self.include_inputs else network


class WithInputs(nn.Module):
    """``[x, network(x)]``: a network's features with its inputs beside them."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, inputs):
        return torch.cat([inputs, self.network(inputs)], dim=-1)


def _validated_sizes(hidden_layer_sizes):
    sizes = (
        (hidden_layer_sizes,) if isinstance(hidden_layer_sizes, Integral) else hidden_layer_sizes
    )
    sizes = tuple(sizes)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must hold positive integers, got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def build_backbone(backbone, n_features_in):
    """Turn a backbone parameter into a fresh, trainable module.

    Parameters
    ----------
    backbone : spec, nn.Module or callable
        See the module docstring.
    n_features_in : int

    Returns
    -------
    torch.nn.Module
        A module owned by the caller (never the user's instance).

    Examples
    --------
    >>> from torch import nn
    >>> user = nn.Linear(3, 5)
    >>> built = build_backbone(user, 3)
    >>> built is user
    False
    """
    if isinstance(backbone, nn.Module):
        return copy.deepcopy(backbone)
    if hasattr(backbone, "build_module"):
        module = backbone.build_module(n_features_in)
    elif callable(backbone):
        module = backbone(n_features_in)
    else:
        raise TypeError(
            "backbone must be None, an nn.Module, a spec with build_module(n_features_in) "
            f"or a callable factory; got {type(backbone).__name__}."
        )
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"The backbone factory must return a torch.nn.Module, got {type(module).__name__}."
        )
    return module


class Standardize(nn.Module):
    """Fixed affine input scaling ``(x - mean) / scale``, stored as buffers.

    Prepended to a network so that it sees standardised inputs while the
    fitted module still takes raw data (and pickles with its scaling).

    Examples
    --------
    >>> import torch
    >>> layer = Standardize(torch.tensor([1.0]), torch.tensor([2.0]))
    >>> layer(torch.tensor([[5.0]])).tolist()
    [[2.0]]
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, inputs):
        return (inputs - self.mean) / self.scale

    @classmethod
    def fitted_to(cls, inputs):
        """Scaling fitted to the columns of ``inputs``; constant columns keep scale 1."""
        scale = inputs.std(dim=0, correction=0)
        return cls(inputs.mean(dim=0), torch.where(scale > 0, scale, torch.ones_like(scale)))

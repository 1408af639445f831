"""Fourier neural operator backbones (Li et al., 2021).

A Fourier neural operator (FNO) maps a function sampled on a regular grid to
another function on the same grid:

.. math::

    v_0 = P(a(x), x), \\qquad
    v_{t+1}(x) = \\sigma\\big(W_t v_t(x) + (\\mathcal{K}_t v_t)(x)\\big), \\qquad
    u(x) = Q(v_T(x)),

with a pointwise lift ``P``, pointwise linear maps ``W_t``, spectral
convolutions :math:`\\mathcal{K}_t v = \\mathcal{F}^{-1}(R_t \\cdot \\mathcal{F} v)`
that multiply the lowest Fourier modes by learned complex matrices ``R_t`` and
drop the rest, and a pointwise projection ``Q = Q_2 \\circ \\sigma \\circ Q_1``.
Here the backbone stops after :math:`\\sigma \\circ Q_1` ("projection 1"):
the last, linear projection :math:`Q_2` is the closed-form ridge head, applied
at every grid point. The features are therefore operator-shaped, channels
last: ``(n, s, d)`` in 1-D and ``(n, s, s, d)`` in 2-D.

Inputs arrive flattened, as scikit-learn passes them: ``(n, s * c)`` for ``c``
input channels on ``s`` points (channels fastest, i.e. ``a.reshape(n, -1)`` of
an ``(n, s, c)`` array) and ``(n, s * s * c)`` for an ``s x s`` grid. The
modules read the grid size from the input at every call, so the same weights
apply at any resolution (discretisation invariance, "zero-shot
super-resolution"). The domain is treated as periodic: no padding is added.
"""

import math
from numbers import Integral

import torch
from sklearn.base import BaseEstimator
from torch import nn

__all__ = [
    "FNO1d",
    "FNO2d",
    "FNOBackbone1d",
    "FNOBackbone2d",
    "SpectralConv1d",
    "SpectralConv2d",
]


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _spectral_weight(in_channels, out_channels, *modes):
    """A complex weight ``R[i, o, k...]`` stored as a real ``(..., 2)`` parameter.

    Real storage (real and imaginary parts in the last axis) keeps
    ``state_dict``, ``copy.deepcopy``, pickling, ``module.double()`` and every
    optimiser working as for any real parameter. Initialised as in the
    reference implementation: real and imaginary parts uniform on
    ``[0, 1 / (in_channels * out_channels))``, drawn from the global torch RNG.
    """
    scale = 1.0 / (in_channels * out_channels)
    return nn.Parameter(scale * torch.rand(in_channels, out_channels, *modes, 2))


class SpectralConv1d(nn.Module):
    """Spectral convolution on a periodic 1-D grid.

    For ``x`` of shape ``(batch, in_channels, s)`` with discrete Fourier
    coefficients :math:`\\hat x_i(k) = \\sum_n x_i(n) e^{-2\\pi i k n / s}`,

    .. math::

        \\hat y_o(k) = \\sum_i R_{i o}(k)\\, \\hat x_i(k) \\quad (0 \\le k < m),
        \\qquad \\hat y_o(k) = 0 \\quad (k \\ge m),

    and ``y = irfft(ŷ, n=s)``: a convolution with a learned, band-limited
    periodic kernel. ``m = min(modes, s // 2 + 1)``, so any resolution is
    accepted; a mode ``k`` always meets the same weight ``R(k)``. As for any
    real inverse FFT, the imaginary parts of the constant (and, for even
    ``s``, Nyquist) coefficients are discarded.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and the output.
    modes : int
        Number of lowest Fourier modes kept (``k = 0, ..., modes - 1``).

    Examples
    --------
    >>> import torch
    >>> conv = SpectralConv1d(3, 5, modes=4)
    >>> conv(torch.randn(2, 3, 16)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, in_channels, out_channels, modes):
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.modes = _check_positive_int("modes", modes)
        self.weight = _spectral_weight(self.in_channels, self.out_channels, self.modes)

    def forward(self, x):
        s = x.shape[-1]
        m = min(self.modes, s // 2 + 1)
        x_ft = torch.fft.rfft(x, dim=-1)  # (b, i, s // 2 + 1)
        weight = torch.view_as_complex(self.weight)[..., :m]  # (i, o, m)
        out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, s // 2 + 1)
        # y^(b, o, k) = sum_i x^(b, i, k) R(i, o, k) on the kept modes only.
        out_ft[..., :m] = torch.einsum("bik,iok->bok", x_ft[..., :m], weight)
        return torch.fft.irfft(out_ft, n=s, dim=-1)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"


class SpectralConv2d(nn.Module):
    """Spectral convolution on a periodic 2-D grid.

    For ``x`` of shape ``(batch, in_channels, s1, s2)`` and its 2-D DFT
    :math:`\\hat x_i(k_1, k_2)`, only the half-spectrum ``k_2 >= 0`` is stored
    (the input is real). The kept modes are ``-modes1 <= k_1 < modes1`` and
    ``0 <= k_2 < modes2`` (as in the reference implementation); the blocks
    ``k_1 >= 0`` and ``k_1 < 0`` have their own weights ``R^+`` and ``R^-``:

    .. math::

        \\hat y_o(k_1, k_2) = \\sum_i R^{\\pm}_{i o}(k_1, k_2)\\, \\hat x_i(k_1, k_2),

    zero elsewhere, and ``y = irfft2(ŷ, s=(s1, s2))``. The blocks are
    truncated to the grid (at most ``(s1 + 1) // 2`` non-negative and
    ``s1 // 2`` negative rows, at most ``s2 // 2 + 1`` columns) so that they
    never overlap; a mode always meets the same weight at any resolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and the output.
    modes1, modes2 : int
        Modes kept along the first axis (per sign) and the second axis.

    Examples
    --------
    >>> import torch
    >>> conv = SpectralConv2d(3, 5, modes1=4, modes2=3)
    >>> conv(torch.randn(2, 3, 8, 8)).shape
    torch.Size([2, 5, 8, 8])
    """

    def __init__(self, in_channels, out_channels, modes1, modes2):
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.modes1 = _check_positive_int("modes1", modes1)
        self.modes2 = _check_positive_int("modes2", modes2)
        shape = (self.in_channels, self.out_channels, self.modes1, self.modes2)
        self.weight_pos = _spectral_weight(*shape)  # R^+ for k1 = 0, ..., modes1 - 1
        self.weight_neg = _spectral_weight(*shape)  # R^- for k1 = -modes1, ..., -1

    def forward(self, x):
        s1, s2 = x.shape[-2:]
        m_pos = min(self.modes1, (s1 + 1) // 2)
        m_neg = min(self.modes1, s1 // 2)
        m2 = min(self.modes2, s2 // 2 + 1)
        x_ft = torch.fft.rfft2(x, dim=(-2, -1))  # (b, i, s1, s2 // 2 + 1)
        out_ft = x_ft.new_zeros(x.shape[0], self.out_channels, s1, s2 // 2 + 1)
        # Rows 0..m_pos-1 hold k1 = 0..m_pos-1, weighted by R^+[:, :, k1].
        weight = torch.view_as_complex(self.weight_pos)[:, :, :m_pos, :m2]
        out_ft[:, :, :m_pos, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m_pos, :m2], weight)
        if m_neg:
            # Rows s1-m_neg..s1-1 hold k1 = -m_neg..-1; R^-[:, :, j] is k1 = j - modes1.
            weight = torch.view_as_complex(self.weight_neg)[:, :, self.modes1 - m_neg :, :m2]
            out_ft[:, :, s1 - m_neg :, :m2] = torch.einsum(
                "bixy,ioxy->boxy", x_ft[:, :, s1 - m_neg :, :m2], weight
            )
        return torch.fft.irfft2(out_ft, s=(s1, s2), dim=(-2, -1))

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, modes1={self.modes1}, modes2={self.modes2}"
        )


class _FNO(nn.Module):
    """Shared body of :class:`FNO1d` and :class:`FNO2d` (``n_dims`` grid axes)."""

    n_dims = None

    def __init__(self, modes, width, n_layers, n_features_out, in_channels):
        super().__init__()
        self.modes = _check_positive_int("modes", modes)
        self.width = _check_positive_int("width", width)
        self.n_layers = _check_positive_int("n_layers", n_layers)
        self.n_features_out = _check_positive_int("n_features_out", n_features_out)
        self.in_channels = _check_positive_int("in_channels", in_channels)
        # P: (a(x), x) -> v_0(x), pointwise; the grid coordinates are extra channels.
        self.lift = nn.Linear(self.in_channels + self.n_dims, self.width)
        self.spectral = nn.ModuleList(self._spectral_conv() for _ in range(self.n_layers))
        conv = nn.Conv1d if self.n_dims == 1 else nn.Conv2d
        # W_t: pointwise (1 x 1) linear maps, channels first.
        self.pointwise = nn.ModuleList(
            conv(self.width, self.width, kernel_size=1) for _ in range(self.n_layers)
        )
        # Q_1: "projection 1"; the closed-form head is Q_2.
        self.project = nn.Linear(self.width, self.n_features_out)
        self.activation = nn.GELU()

    def _grid_shape(self, n_features):
        raise NotImplementedError

    def _spectral_conv(self):
        raise NotImplementedError

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(
                f"{type(self).__name__} expects flattened inputs of shape (n, n_features), "
                f"got shape {tuple(x.shape)}."
            )
        grid = self._grid_shape(x.shape[1])
        a = x.reshape(x.shape[0], *grid, self.in_channels)  # channels last
        # Periodic grid coordinates j / s in [0, 1), so that point j at
        # resolution s and point 2 j at resolution 2 s are the same location.
        axes = [torch.arange(s, dtype=x.dtype, device=x.device) / s for s in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        coords = coords.expand(x.shape[0], *coords.shape)
        v = self.lift(torch.cat([a, coords], dim=-1))
        v = v.movedim(-1, 1)  # channels first for the convolutions
        for spectral, pointwise in zip(self.spectral, self.pointwise, strict=True):
            # v_{t+1} = sigma(W_t v_t + K_t v_t); sigma kept after the last layer too.
            v = self.activation(spectral(v) + pointwise(v))
        v = v.movedim(1, -1)
        return self.activation(self.project(v))


class FNO1d(_FNO):
    """Fourier neural operator on a periodic 1-D grid, without its last layer.

    ``lift -> n_layers x (spectral conv + 1x1 linear, GELU) -> linear, GELU``;
    see the module docstring for the equations.

    Parameters
    ----------
    modes : int, default=16
        Fourier modes kept by every spectral convolution.
    width : int, default=32
        Channels of the hidden function ``v_t``.
    n_layers : int, default=4
        Number of Fourier layers.
    n_features_out : int, default=64
        Feature channels at every grid point (the head's input width).
    in_channels : int, default=1
        Channels ``c`` of the input function.

    Notes
    -----
    Input: ``(n, s * c)``, flattened from ``(n, s, c)``; any ``s`` works.
    Output: ``(n, s, n_features_out)``.

    Examples
    --------
    >>> import torch
    >>> net = FNO1d(modes=4, width=8, n_layers=2, n_features_out=6)
    >>> net(torch.randn(3, 16)).shape
    torch.Size([3, 16, 6])
    >>> net(torch.randn(3, 32)).shape  # the same weights at another resolution
    torch.Size([3, 32, 6])
    """

    n_dims = 1

    def __init__(self, modes=16, width=32, n_layers=4, n_features_out=64, in_channels=1):
        super().__init__(modes, width, n_layers, n_features_out, in_channels)

    def _spectral_conv(self):
        return SpectralConv1d(self.width, self.width, self.modes)

    def _grid_shape(self, n_features):
        return (_grid_size_1d(n_features, self.in_channels),)


class FNO2d(_FNO):
    """Fourier neural operator on a periodic square 2-D grid, without its last layer.

    Parameters
    ----------
    modes : int, default=12
        Fourier modes kept per axis (per sign along the first axis).
    width : int, default=32
        Channels of the hidden function ``v_t``.
    n_layers : int, default=4
        Number of Fourier layers.
    n_features_out : int, default=64
        Feature channels at every grid point (the head's input width).
    in_channels : int, default=1
        Channels ``c`` of the input function.

    Notes
    -----
    Input: ``(n, s * s * c)``, flattened from ``(n, s, s, c)``; any ``s``
    works. Output: ``(n, s, s, n_features_out)``.

    Examples
    --------
    >>> import torch
    >>> net = FNO2d(modes=3, width=4, n_layers=1, n_features_out=5)
    >>> net(torch.randn(2, 8 * 8)).shape
    torch.Size([2, 8, 8, 5])
    """

    n_dims = 2

    def __init__(self, modes=12, width=32, n_layers=4, n_features_out=64, in_channels=1):
        super().__init__(modes, width, n_layers, n_features_out, in_channels)

    def _spectral_conv(self):
        return SpectralConv2d(self.width, self.width, self.modes, self.modes)

    def _grid_shape(self, n_features):
        s = _grid_size_2d(n_features, self.in_channels)
        return (s, s)


def _grid_points(n_features, in_channels):
    if n_features < in_channels or n_features % in_channels:
        raise ValueError(
            f"The number of features ({n_features}) must be a positive multiple of "
            f"in_channels={in_channels}."
        )
    return n_features // in_channels


def _grid_size_1d(n_features, in_channels):
    return _grid_points(n_features, in_channels)


def _grid_size_2d(n_features, in_channels):
    points = _grid_points(n_features, in_channels)
    s = math.isqrt(points)
    if s * s != points:
        raise ValueError(
            f"A 2-D FNO needs a square grid: {n_features} features / in_channels="
            f"{in_channels} = {points} points is not a perfect square."
        )
    return s


class _FNOSpec(BaseEstimator):
    """Shared ``build_module`` of the FNO specs; subclasses name the network and grid rule."""

    _network = None
    _grid_size = None

    def build_module(self, n_features_in):
        """Build an untrained network for ``n_features_in`` flattened grid columns.

        The columns must fill the spec's grid (``s * c`` in 1-D, ``s * s * c``
        in 2-D, for ``c = in_channels``); checked before anything is built.
        """
        in_channels = _check_positive_int("in_channels", self.in_channels)
        self._grid_size(n_features_in, in_channels)
        return self._network(
            self.modes, self.width, self.n_layers, self.n_features_out, in_channels
        )


class FNOBackbone1d(_FNOSpec):
    """Specification of a 1-D Fourier neural operator backbone.

    Builds an :class:`FNO1d`: the closed-form head is the FNO's final
    pointwise projection, fitted at every grid point.

    Parameters
    ----------
    modes : int, default=16
        Fourier modes kept by every spectral convolution (fewer if the grid
        has fewer than ``2 * modes - 1`` points).
    width : int, default=32
        Channels of the hidden functions.
    n_layers : int, default=4
        Number of Fourier layers.
    n_features_out : int, default=64
        Features per grid point.
    in_channels : int, default=1
        Input channels ``c``; ``X`` has ``s * c`` columns, flattened from
        ``(n, s, c)``.

    Examples
    --------
    >>> import torch
    >>> spec = FNOBackbone1d(modes=4, width=8, n_layers=1, n_features_out=3)
    >>> net = spec.build_module(16)
    >>> net(torch.randn(2, 16)).shape
    torch.Size([2, 16, 3])
    """

    def __init__(self, modes=16, width=32, n_layers=4, n_features_out=64, in_channels=1):
        self.modes = modes
        self.width = width
        self.n_layers = n_layers
        self.n_features_out = n_features_out
        self.in_channels = in_channels

    _network = FNO1d
    _grid_size = staticmethod(_grid_size_1d)


class FNOBackbone2d(_FNOSpec):
    """Specification of a 2-D Fourier neural operator backbone on a square grid.

    Builds an :class:`FNO2d`: the closed-form head is the FNO's final
    pointwise projection, fitted at every grid point.

    Parameters
    ----------
    modes : int, default=12
        Fourier modes kept per axis.
    width : int, default=32
        Channels of the hidden functions.
    n_layers : int, default=4
        Number of Fourier layers.
    n_features_out : int, default=64
        Features per grid point.
    in_channels : int, default=1
        Input channels ``c``; ``X`` has ``s * s * c`` columns, flattened from
        ``(n, s, s, c)``.

    Examples
    --------
    >>> import torch
    >>> spec = FNOBackbone2d(modes=2, width=4, n_layers=1, n_features_out=3)
    >>> spec.build_module(8 * 8)(torch.randn(2, 64)).shape
    torch.Size([2, 8, 8, 3])
    >>> spec.build_module(60)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: A 2-D FNO needs a square grid: ... is not a perfect square.
    """

    def __init__(self, modes=12, width=32, n_layers=4, n_features_out=64, in_channels=1):
        self.modes = modes
        self.width = width
        self.n_layers = n_layers
        self.n_features_out = n_features_out
        self.in_channels = in_channels

    _network = FNO2d
    _grid_size = staticmethod(_grid_size_2d)

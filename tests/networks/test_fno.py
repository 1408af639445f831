"""Fourier neural operator backbones: spectral layers, shapes, invariances, specs."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skcflo._networks.fno import (
    FNO1d,
    FNO2d,
    FNOBackbone1d,
    FNOBackbone2d,
    SpectralConv1d,
    SpectralConv2d,
)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws its weights from a known seed, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def smooth_1d(s, n_rows=2):
    """A band-limited periodic function (highest mode 3), sampled at j / s."""
    x = torch.arange(s, dtype=torch.float64) / s
    rows = [
        torch.sin(2 * math.pi * x + phase) + 0.5 * torch.cos(6 * math.pi * x)
        for phase in np.linspace(0.0, 1.0, n_rows)
    ]
    return torch.stack(rows)


# --- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("in_channels", [1, 2])
def test_fno1d_output_shape(in_channels):
    net = FNOBackbone1d(modes=4, width=8, n_layers=2, n_features_out=5, in_channels=in_channels)
    module = net.build_module(16 * in_channels)
    assert module(torch.randn(3, 16 * in_channels)).shape == (3, 16, 5)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_fno2d_output_shape(in_channels):
    net = FNOBackbone2d(modes=3, width=6, n_layers=2, n_features_out=4, in_channels=in_channels)
    module = net.build_module(8 * 8 * in_channels)
    assert module(torch.randn(2, 8 * 8 * in_channels)).shape == (2, 8, 8, 4)


def test_default_specs_build_the_documented_networks():
    module = FNOBackbone1d().build_module(64)
    assert (module.modes, module.width, module.n_layers, module.n_features_out) == (16, 32, 4, 64)
    assert len(module.spectral) == len(module.pointwise) == 4
    module = FNOBackbone2d().build_module(32 * 32)
    assert (module.modes, module.width, module.n_layers, module.n_features_out) == (12, 32, 4, 64)
    assert module(torch.randn(1, 32 * 32)).shape == (1, 32, 32, 64)


def test_channels_are_fastest_in_the_flattened_input():
    """``X = a.reshape(n, -1)`` for ``a`` of shape ``(n, s, c)``."""
    module = FNO1d(modes=4, width=8, n_layers=1, n_features_out=3, in_channels=2)
    with torch.no_grad():
        module.lift.weight[:, 1] = 0.0  # the network now ignores channel 1
    a = torch.randn(2, 16, 2)
    changed_1, changed_0 = a.clone(), a.clone()
    changed_1[..., 1] += 1.0
    changed_0[..., 0] += 1.0
    with torch.no_grad():
        reference = module(a.reshape(2, -1))
        torch.testing.assert_close(module(changed_1.reshape(2, -1)), reference)
        assert not torch.allclose(module(changed_0.reshape(2, -1)), reference)


def test_features_are_nonlinear_in_the_input():
    module = FNO1d(modes=4, width=8, n_layers=2, n_features_out=4)
    x = torch.randn(1, 16)
    with torch.no_grad():
        assert not torch.allclose(
            module(2 * x) - module(torch.zeros_like(x)),
            2 * (module(x) - module(torch.zeros_like(x))),
            atol=1e-4,
        )


# --- the spectral layers ------------------------------------------------------------------


def numpy_spectral_conv1d(x, weight, modes):
    """The truncated-mode multiplication written out with an explicit DFT matrix.

    ``X(k) = sum_n x(n) exp(-2 pi i k n / s)``, ``Y_o(k) = sum_i R_io(k) X_i(k)`` for
    ``k < m``, and ``y(n) = (1 / s) sum_k c_k Re(Y(k) exp(2 pi i k n / s))`` with
    ``c_k = 1`` for ``k = 0`` and the Nyquist mode, 2 otherwise (Hermitian symmetry).
    """
    s = x.shape[-1]
    m = min(modes, s // 2 + 1)
    k = np.arange(m)
    n = np.arange(s)
    dft = np.exp(-2j * np.pi * np.outer(k, n) / s)  # (m, s)
    x_hat = x @ dft.T  # (b, i, m)
    y_hat = np.einsum("bik,iok->bok", x_hat, weight[..., :m])
    c = np.where((k == 0) | (2 * k == s), 1.0, 2.0)
    basis = np.exp(2j * np.pi * np.outer(k, n) / s)  # (m, s)
    return np.real(np.einsum("bok,kn->bon", c * y_hat, basis)) / s


@pytest.mark.parametrize(("s", "modes"), [(16, 5), (10, 6), (9, 5), (8, 20)])
def test_spectral_conv1d_matches_an_explicit_dft(s, modes):
    conv = SpectralConv1d(3, 2, modes).double()
    x = torch.randn(4, 3, s, dtype=torch.float64)
    weight = torch.view_as_complex(conv.weight.detach()).numpy()
    with torch.no_grad():
        got = conv(x).numpy()
    np.testing.assert_allclose(got, numpy_spectral_conv1d(x.numpy(), weight, modes), atol=1e-12)


def identity_weights(conv):
    with torch.no_grad():
        for weight in conv.parameters():
            weight.zero_()
            for i in range(weight.shape[0]):
                weight[i, i, ..., 0] = 1.0  # R_io(k) = delta_io: keep every kept mode as is


@pytest.mark.parametrize("s", [8, 9])
def test_spectral_conv1d_with_full_spectrum_and_identity_weights_is_the_identity(s):
    conv = SpectralConv1d(3, 3, modes=s // 2 + 1).double()
    identity_weights(conv)
    x = torch.randn(2, 3, s, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), x)


@pytest.mark.parametrize(("s1", "s2"), [(8, 8), (7, 9), (9, 6)])
def test_spectral_conv2d_with_full_spectrum_and_identity_weights_is_the_identity(s1, s2):
    conv = SpectralConv2d(2, 2, modes1=(s1 + 1) // 2, modes2=s2 // 2 + 1).double()
    identity_weights(conv)
    x = torch.randn(3, 2, s1, s2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), x)


def test_spectral_conv2d_keeps_only_the_low_modes():
    """A single Fourier mode passes if kept and vanishes if dropped.

    Kept: ``-modes1 <= k1 < modes1`` and ``0 <= k2 < modes2``; ``cos`` holds the modes
    ``(k1, k2)`` and ``(-k1, -k2)``, the half-spectrum stores whichever has ``k2 >= 0``.
    """
    conv = SpectralConv2d(1, 1, modes1=2, modes2=2).double()
    identity_weights(conv)
    j = torch.arange(8, dtype=torch.float64) / 8
    rows, cols = torch.meshgrid(j, j, indexing="ij")
    for k1, k2, kept in [(1, 1, True), (-1, 1, True), (0, 0, True), (3, 0, False), (1, 2, False)]:
        wave = torch.cos(2 * math.pi * (k1 * rows + k2 * cols))[None, None]
        with torch.no_grad():
            out = conv(wave)
        torch.testing.assert_close(out, wave if kept else torch.zeros_like(wave))


def test_spectral_conv1d_is_translation_equivariant():
    conv = SpectralConv1d(3, 4, modes=6).double()
    with torch.no_grad():
        conv.weight.normal_()
        x = torch.randn(2, 3, 20, dtype=torch.float64)
        for shift in (1, 7, -3):
            torch.testing.assert_close(
                conv(torch.roll(x, shift, dims=-1)), torch.roll(conv(x), shift, dims=-1)
            )


def test_spectral_conv2d_is_translation_equivariant():
    conv = SpectralConv2d(2, 3, modes1=3, modes2=3).double()
    with torch.no_grad():
        for weight in conv.parameters():
            weight.normal_()
        x = torch.randn(2, 2, 10, 12, dtype=torch.float64)
        shifts, dims = (3, -5), (-2, -1)
        torch.testing.assert_close(
            conv(torch.roll(x, shifts, dims=dims)), torch.roll(conv(x), shifts, dims=dims)
        )


# --- discretisation invariance ------------------------------------------------------------


def test_spectral_conv1d_is_exactly_resolution_invariant_on_band_limited_inputs():
    conv = SpectralConv1d(1, 2, modes=6).double()
    with torch.no_grad():
        coarse = conv(smooth_1d(32)[:, None])
        fine = conv(smooth_1d(128)[:, None])
    torch.testing.assert_close(fine[..., ::4], coarse)


def test_fno1d_is_discretisation_invariant():
    """The same weights at s=64 and s=128 agree at the shared points j / 64."""
    module = FNO1d(modes=8, width=16, n_layers=3, n_features_out=16).double()
    with torch.no_grad():
        for conv in module.spectral:  # make the spectral path matter (it starts small)
            conv.weight.normal_(0.0, 1.0 / 16)
        coarse = module(smooth_1d(64))
        fine = module(smooth_1d(128))
        assert coarse.shape == (2, 64, 16) and fine.shape == (2, 128, 16)
        scale = coarse.abs().max()
        assert (fine[:, ::2] - coarse).abs().max() < 1e-2 * scale
        for conv in module.spectral:  # ... and check that it did
            conv.weight.zero_()
        assert (module(smooth_1d(64)) - coarse).abs().max() > 5e-2 * scale


def test_fno2d_is_discretisation_invariant():
    module = FNO2d(modes=4, width=8, n_layers=2, n_features_out=8).double()

    def field(s):
        j = torch.arange(s, dtype=torch.float64) / s
        rows, cols = torch.meshgrid(j, j, indexing="ij")
        return (torch.sin(2 * math.pi * rows) * torch.cos(2 * math.pi * cols)).reshape(1, -1)

    with torch.no_grad():
        coarse, fine = module(field(16)), module(field(32))
    assert (fine[:, ::2, ::2] - coarse).abs().max() < 1e-2 * coarse.abs().max()


# --- specs and modules as objects ---------------------------------------------------------


@pytest.mark.parametrize(("spec", "n_features"), [(FNOBackbone1d, 16), (FNOBackbone2d, 64)])
def test_specs_clone_and_build_fresh_modules(spec, n_features):
    params = dict(modes=3, width=4, n_layers=2, n_features_out=5, in_channels=1)
    original = spec(**params)
    cloned = clone(original)
    assert cloned is not original and cloned.get_params() == params
    assert clone(original.set_params(width=6)).width == 6

    first, second = cloned.build_module(n_features), cloned.build_module(n_features)
    assert first is not second
    first_params, second_params = set(map(id, first.parameters())), map(id, second.parameters())
    assert first_params.isdisjoint(second_params)
    torch.manual_seed(1)
    a = cloned.build_module(n_features)
    torch.manual_seed(1)
    b = cloned.build_module(n_features)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # weights come from the global RNG only


@pytest.mark.parametrize(
    "module",
    [
        lambda: FNO1d(modes=4, width=6, n_layers=2, n_features_out=3, in_channels=2),
        lambda: FNO2d(modes=3, width=4, n_layers=2, n_features_out=3),
    ],
)
def test_deepcopy_pickle_and_state_dict_round_trips(module):
    module = module()
    x = torch.randn(2, 32) if isinstance(module, FNO1d) else torch.randn(2, 36)
    with torch.no_grad():
        expected = module(x)
        copies = [copy.deepcopy(module), pickle.loads(pickle.dumps(module))]
        fresh = type(module)(
            module.modes, module.width, module.n_layers, module.n_features_out, module.in_channels
        )
        fresh.load_state_dict(module.state_dict())
        for other in [*copies, fresh]:
            torch.testing.assert_close(other(x), expected, rtol=0, atol=0)
    assert all(not p.is_complex() for p in module.parameters())


@pytest.mark.parametrize(
    ("module", "n_features"),
    [
        (FNO1d(modes=4, width=6, n_layers=2, n_features_out=3, in_channels=2), 32),
        (FNO2d(modes=3, width=4, n_layers=2, n_features_out=3), 64),
    ],
)
def test_gradients_reach_every_parameter(module, n_features):
    module(torch.randn(3, n_features)).square().sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


def test_bad_grid_sizes_raise():
    with pytest.raises(ValueError, match="perfect square"):
        FNOBackbone2d().build_module(60)
    with pytest.raises(ValueError, match="perfect square"):
        FNOBackbone2d(in_channels=2).build_module(2 * 15)
    with pytest.raises(ValueError, match="multiple of in_channels"):
        FNOBackbone1d(in_channels=3).build_module(16)
    with pytest.raises(ValueError, match="multiple of in_channels"):
        FNOBackbone2d(in_channels=3).build_module(64)
    with pytest.raises(ValueError, match="perfect square"):
        FNO2d(modes=2, width=4, n_layers=1, n_features_out=2)(torch.randn(1, 10))
    with pytest.raises(ValueError, match="flattened"):
        FNO1d(modes=2, width=4, n_layers=1, n_features_out=2)(torch.randn(1, 8, 1))


@pytest.mark.parametrize(
    "bad", [dict(modes=0), dict(width=-1), dict(n_layers=1.5), dict(in_channels=True)]
)
def test_bad_parameters_raise_at_build_time(bad):
    spec = FNOBackbone1d(**bad)
    with pytest.raises(ValueError, match="must be an integer"):
        spec.build_module(16)

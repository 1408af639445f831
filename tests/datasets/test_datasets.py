"""Tests of the DFIV data generators in :mod:`skcflo.datasets`."""

import numpy as np
import pytest

from skcflo.datasets import (
    _dsprites,
    demand_psi,
    demand_structural,
    dsprites_structural,
    dsprites_weights,
    make_demand,
    make_demand_test,
    make_dsprites,
    make_dsprites_test,
    render_hearts,
)

# ---------------------------------------------------------------- demand design


def _recover_noises(data):
    """Price shock V and outcome noise e, recomputed from the public arrays."""
    price, time = data.X[:, 0], data.X[:, 1]
    cost = data.Z[:, 0]
    psi = 2 * ((time - 5) ** 4 / 600 + np.exp(-4 * (time - 5) ** 2) + time / 10 - 2)
    return price - 25 - (cost + 3) * psi, data.y - data.structural


def test_demand_psi_and_h_at_hand_computed_points():
    # psi(5) = 2 (0 + 1 + 0.5 - 2); psi(0) = 2 (625/600 + e^-100 - 2);
    # psi(10) = 2 (625/600 + e^-100 + 1 - 2).
    assert demand_psi(5.0) == pytest.approx(-1.0)
    assert demand_psi(0.0) == pytest.approx(-23 / 12)
    assert demand_psi(10.0) == pytest.approx(1 / 12)
    # h(10, 5, 1) = 100 + 20 * 1 * (-1) - 20; h(20, 0, 7) = 100 + 30 * 7 * (-23/12) - 40.
    assert demand_structural(10.0, 5.0, 1) == pytest.approx(60.0)
    assert demand_structural(20.0, 0.0, 7) == pytest.approx(-342.5)
    np.testing.assert_allclose(demand_structural([10.0, 20.0], [5.0, 0.0], [1, 7]), [60.0, -342.5])


def test_make_demand_shapes_and_dtypes():
    data = make_demand(300, random_state=0)
    assert data.X.shape == (300, 3) and data.X.dtype == np.float64
    assert data.y.shape == (300,) and data.y.dtype == np.float64
    assert data.Z.shape == (300, 1)
    assert data.structural.shape == (300,)
    assert data.covariates == [1, 2]
    assert data.feature_names == ["price", "time", "emotion"]
    assert isinstance(data.DESCR, str) and "rho=0.5" in data.DESCR
    time, emotion = data.X[:, 1], data.X[:, 2]
    assert np.all((time >= 0) & (time <= 10))
    assert set(np.unique(emotion)) <= set(range(1, 8))


def test_make_demand_is_deterministic():
    first, again = make_demand(200, random_state=3), make_demand(200, random_state=3)
    for key in ("X", "y", "Z", "structural"):
        np.testing.assert_array_equal(first[key], again[key])
    other = make_demand(200, random_state=4)
    assert not np.allclose(first.y, other.y)


def test_make_demand_follows_the_formula():
    data = make_demand(500, rho=0.5, random_state=1)
    price, time, emotion = data.X.T
    expected = 100 + (10 + price) * emotion * demand_psi(time) - 2 * price
    np.testing.assert_allclose(data.structural, expected)
    shock, noise = _recover_noises(data)
    # Price and outcome noise are built from N(0, 1) shocks: sane magnitudes.
    assert np.abs(shock).max() < 6 and np.abs(noise).max() < 6


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_make_demand_confounding_and_noise_variance(rho):
    data = make_demand(100_000, rho=rho, random_state=0)
    shock, noise = _recover_noises(data)
    assert np.corrcoef(shock, noise)[0, 1] == pytest.approx(rho, abs=0.015)
    # The added Gaussian has variance 1 - rho^2, so e itself has unit variance.
    assert np.var(noise - rho * shock) == pytest.approx(1 - rho**2, abs=0.015)
    assert noise.var() == pytest.approx(1.0, abs=0.02)
    assert shock.var() == pytest.approx(1.0, abs=0.02)


def test_ols_on_price_is_biased_relative_to_h():
    data = make_demand(100_000, rho=0.9, random_state=0)
    design = np.column_stack([np.ones(len(data.y)), data.X])
    coef_y = np.linalg.lstsq(design, data.y, rcond=None)[0]
    coef_h = np.linalg.lstsq(design, data.structural, rcond=None)[0]
    shock, _ = _recover_noises(data)
    # Noise correlated with price leaks into the price coefficient; its size
    # is that of the regression of e on the price shock's share of the price.
    residual_price = np.linalg.lstsq(design[:, [0, 2, 3]], data.X[:, 0], rcond=None)
    resid = data.X[:, 0] - design[:, [0, 2, 3]] @ residual_price[0]
    expected_bias = 0.9 * np.mean(shock * resid) / np.mean(resid**2)
    assert coef_y[1] - coef_h[1] == pytest.approx(expected_bias, rel=0.1)
    assert expected_bias > 0.05


def test_make_demand_without_confounding_is_unbiased():
    data = make_demand(50_000, rho=0.0, random_state=0)
    shock, noise = _recover_noises(data)
    assert abs(np.corrcoef(shock, noise)[0, 1]) < 0.02


def test_make_demand_rejects_bad_rho():
    with pytest.raises(ValueError, match="rho"):
        make_demand(10, rho=1.5)


def test_make_demand_test_grid():
    test = make_demand_test()
    assert test.X.shape == (2800, 3) and test.y.shape == (2800,)
    assert len(np.unique(test.X, axis=0)) == 2800
    np.testing.assert_allclose(np.unique(test.X[:, 0]), np.linspace(10, 25, 20))
    np.testing.assert_allclose(np.unique(test.X[:, 1]), np.linspace(0, 10, 20))
    np.testing.assert_array_equal(np.unique(test.X[:, 2]), np.arange(1, 8))
    np.testing.assert_allclose(test.y, demand_structural(*test.X.T))
    # The spec quotes Var h ~ 32,600 on this grid; we get 32,643.65.
    assert test.y.var() == pytest.approx(32_643.65, abs=0.1)
    assert test.y.var() == pytest.approx(32_600, rel=0.01)


def test_demand_as_frame():
    pd = pytest.importorskip("pandas")
    data = make_demand(50, random_state=0, as_frame=True)
    assert isinstance(data.X, pd.DataFrame)
    assert list(data.X.columns) == ["price", "time", "emotion"]
    np.testing.assert_array_equal(data.X.to_numpy(), make_demand(50, random_state=0).X)
    test = make_demand_test(as_frame=True)
    assert isinstance(test.X, pd.DataFrame) and test.X.shape == (2800, 3)


# -------------------------------------------------------------- dSprites design


def _one(scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5, **kwargs):
    return render_hearts([scale], [orientation], [pos_x], [pos_y], **kwargs)[0]


def _centroid(image):
    rows, cols = np.indices(image.shape)
    return np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()


def _bbox_middle(image):
    rows, cols = np.nonzero(image)
    return np.array([rows.min() + rows.max(), cols.min() + cols.max()]) / 2


def test_render_hearts_shape_and_range():
    rng = np.random.default_rng(0)
    n = 50
    images = render_hearts(
        rng.choice(_dsprites.SCALES, n),
        rng.choice(_dsprites.ORIENTATIONS, n),
        rng.random(n),
        rng.random(n),
    )
    assert images.shape == (n, 64, 64) and images.dtype == np.float64
    # Binary by default, like dSprites; every heart is drawn.
    assert set(np.unique(images)) == {0.0, 1.0}
    assert np.all(images.sum(axis=(1, 2)) > 40)
    smooth = _one(orientation=0.3, supersample=4)
    assert smooth.min() >= 0 and smooth.max() <= 1
    assert np.any((smooth > 0) & (smooth < 1))
    assert render_hearts([], [], [], []).shape == (0, 64, 64)


def test_render_hearts_matches_a_naive_full_grid_renderer():
    # The renderer only evaluates a window around each heart; a full-grid
    # evaluation must agree, also for hearts pushed past the frame.
    scale = np.array([0.5, 1.0, 1.3, 0.8, 1.0])
    orientation = np.array([0.0, 1.0, 2.5, 4.0, 5.5])
    pos_x = np.array([0.0, 1.0, -0.2, 0.5, 1.1])
    pos_y = np.array([1.0, 0.0, 1.2, 0.3, -0.1])
    rows, cols = np.indices((64, 64), dtype=np.float64)
    travel = 63 - 2 * _dsprites._MARGIN
    expected = []
    for s, theta, px, py in zip(scale, orientation, pos_x, pos_y, strict=True):
        size = s * _dsprites._HEART_RADIUS
        dx = (cols - (_dsprites._MARGIN + px * travel)) / size
        dy = -(rows - (_dsprites._MARGIN + py * travel)) / size
        u = np.cos(theta) * dx + np.sin(theta) * dy
        v = np.cos(theta) * dy - np.sin(theta) * dx + _dsprites._HEART_CENTROID_Y
        expected.append(((u**2 + v**2 - 1) ** 3 - u**2 * v**3 <= 0).astype(float))
    np.testing.assert_array_equal(render_hearts(scale, orientation, pos_x, pos_y), expected)


def test_heart_is_upright_and_symmetric():
    image = _one()
    # pos 0.5 puts the centre between pixels 31 and 32: a mirror symmetry.
    np.testing.assert_array_equal(image, image[:, ::-1])
    # Lobes up, tip down: the mass sits above the middle of the bounding box.
    assert _centroid(image)[0] < _bbox_middle(image)[0] - 0.5


def test_rotation_changes_the_heart():
    upright = _one()
    quarter = _one(orientation=np.pi / 2)
    assert np.abs(upright - quarter).sum() > 50
    assert np.abs(upright - _one(orientation=np.pi)).sum() > 50
    # Counter-clockwise: after a quarter turn the tip points right.
    assert _centroid(quarter)[1] < _bbox_middle(quarter)[1] - 0.5
    assert np.abs(upright - _one(orientation=2 * np.pi)).sum() <= 2


def test_larger_scale_lights_more_pixels():
    lit = render_hearts(_dsprites.SCALES, np.zeros(6), np.full(6, 0.5), np.full(6, 0.5))
    counts = lit.sum(axis=(1, 2))
    assert np.all(np.diff(counts) > 0)
    # Area grows like scale^2.
    assert counts[-1] / counts[0] == pytest.approx(4.0, rel=0.1)


def test_position_moves_the_centroid():
    left, right = _one(pos_x=0.2), _one(pos_x=0.6)
    top, bottom = _one(pos_y=0.2), _one(pos_y=0.6)
    travel = 63 - 2 * _dsprites._MARGIN
    np.testing.assert_allclose(_centroid(right) - _centroid(left), [0, 0.4 * travel], atol=0.5)
    np.testing.assert_allclose(_centroid(bottom) - _centroid(top), [0.4 * travel, 0], atol=0.5)


def test_dsprites_weights_are_fixed():
    first, again = dsprites_weights(), dsprites_weights()
    np.testing.assert_array_equal(first, again)
    assert first.shape == (4096, 10)
    assert np.all((first >= 0) & (first < 1)) and first.mean() == pytest.approx(0.5, abs=0.01)
    np.testing.assert_array_equal(first, np.random.default_rng(0).uniform(size=(4096, 10)))


def test_dsprites_structural_formula():
    X = np.random.default_rng(1).random((4, 4096))
    expected = (np.linalg.norm(X @ dsprites_weights(), axis=1) ** 2 / 10 - 5000) / 1000
    np.testing.assert_allclose(dsprites_structural(X), expected)


@pytest.fixture(scope="module")
def dsprites_train():
    return make_dsprites(600, random_state=0)


def test_make_dsprites_shapes(dsprites_train):
    data = dsprites_train
    assert data.X.shape == (600, 4096) and data.X.dtype == np.float64
    assert data.y.shape == (600,) and data.structural.shape == (600,)
    assert data.Z.shape == (600, 3) and data.latent_indices.shape == (600, 4)
    assert isinstance(data.DESCR, str)


def test_make_dsprites_is_deterministic(dsprites_train):
    again = make_dsprites(600, random_state=0)
    for key in ("X", "y", "Z", "structural"):
        np.testing.assert_array_equal(dsprites_train[key], again[key])
    assert not np.allclose(make_dsprites(600, random_state=1).y, again.y)


def test_make_dsprites_follows_the_design(dsprites_train):
    data = dsprites_train
    scale, orientation, pos_x, pos_y = data.latent_indices.T
    # Latents uniform on the dSprites grid; Z holds the grid values.
    assert set(np.unique(scale)) == set(range(6)) and pos_y.max() <= 31
    np.testing.assert_array_equal(
        data.Z,
        np.column_stack(
            [
                _dsprites.SCALES[scale],
                _dsprites.ORIENTATIONS[orientation],
                _dsprites.POSITIONS[pos_x],
            ]
        ),
    )
    clean = render_hearts(*data.Z.T, _dsprites.POSITIONS[pos_y]).reshape(600, 4096)
    assert np.std(data.X - clean) == pytest.approx(0.1, rel=0.02)
    # h is applied to the (noisy) treatment, with the fixed A.
    A = np.random.default_rng(0).uniform(size=(4096, 10))
    np.testing.assert_allclose(data.structural, (np.mean((data.X @ A) ** 2, axis=1) - 5000) / 1000)
    residual = data.y - data.structural - (pos_y - 16)
    assert residual.std() == pytest.approx(0.5, rel=0.1) and abs(residual.mean()) < 0.1


def test_dsprites_confounder_is_hidden_from_the_instrument(dsprites_train):
    data = dsprites_train
    pos_y = data.latent_indices[:, 3]
    noise = data.y - data.structural
    assert np.corrcoef(noise, pos_y)[0, 1] > 0.99
    # posY is drawn independently of the instruments.
    assert np.all(np.abs(np.corrcoef(data.Z.T, pos_y)[-1, :-1]) < 0.15)


def test_make_dsprites_test_grid():
    test = make_dsprites_test()
    assert test.X.shape == (588, 4096) and test.y.shape == (588,)
    assert len(np.unique(test.latent_indices, axis=0)) == 588
    assert set(np.unique(test.X)) == {0.0, 1.0}
    np.testing.assert_array_equal(test.y, dsprites_structural(test.X))
    # h has a usable spread, not a degenerate range.
    assert 1 < test.y.std() < 20

"""dSprites-style heart images and the DFIV dSprites design (Xu et al., 2021).

The official dSprites file (Matthey et al., 2017) is not available offline, so
the hearts are rendered here with numpy: the implicit heart curve
``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0``, centred on its centroid, scaled, rotated
and translated on a 64 x 64 grid. The latent grid is that of dSprites:

* scale: 6 values in ``linspace(0.5, 1, 6)``;
* orientation: 40 values in ``linspace(0, 2 pi, 40)`` (as in the dSprites
  file, both end points are included, so indices 0 and 39 draw the same image);
* posX, posY: 32 values each in ``linspace(0, 1, 32)``.

The design: treatment ``X`` = flattened image + N(0, 0.1^2) pixel noise;
instrument ``Z`` = (scale, orientation, posX); hidden confounder posY;
``h(X) = (||X A||^2 / 10 - 5000) / 1000`` with a fixed 4096 x 10 matrix ``A``
(see :func:`dsprites_weights`); ``Y = h(X) + (posY_index - 16) + N(0, 0.5^2)``.
As in the reference code, ``h`` is applied to the noisy treatment.
"""

import numpy as np
from sklearn.utils import Bunch, check_random_state

IMAGE_SIZE = 64
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

PIXEL_NOISE = 0.1
OUTCOME_NOISE = 0.5
WEIGHTS_SEED = 0
N_PROJECTIONS = 10

# Heart geometry, in pixels. The curve spans x in [-1.14, 1.14] and
# y in [-1, 1.24], area 3.66, centroid at y = 0.293; it reaches 1.29 from its
# centroid. A radius of 8 px gives ~234 lit pixels at scale 1 and ~59 at 0.5,
# and the margin keeps the largest heart inside the frame at any rotation.
_HEART_CENTROID_Y = 0.2935
_HEART_REACH = 1.3
_HEART_RADIUS = 8.0
_MARGIN = 10.5
_CHUNK = 256

_TRAIN_DESCR = """dSprites design (training sample)
=================================

DFIV image-treatment benchmark on heart sprites rendered by skcflo (the
official dSprites file is not used). ``X`` (n, 4096): 64 x 64 images plus
N(0, 0.1^2) pixel noise; ``Z`` (n, 3): (scale, orientation, posX) latent values;
the hidden confounder is posY. ``structural`` = h(X) with the fixed projection
of :func:`skcflo.datasets.dsprites_weights`; ``y = h(X) + (posY_index - 16) +
N(0, 0.5^2)``. ``latent_indices`` (n, 4): indices of (scale, orientation, posX,
posY) in the dSprites latent grid. n_samples={n_samples}.
"""

_TEST_DESCR = """dSprites design (test grid)
===========================

588 noise-free heart images: posX and posY indices {0, 5, ..., 30}, scale
indices {0, 3, 5} and orientation indices {0, 10, 20, 30} (the grid of the
DFIV reference code); ``y`` = h(X), the structural function.
"""


def _heart_mask(u, v):
    """Inside test of the heart in its own frame (centroid at the origin)."""
    y = v + _HEART_CENTROID_Y
    u2, y2 = u * u, y * y
    # Explicit products: ``** 3`` on float arrays goes through a slow pow().
    r = u2 + y2 - 1.0
    return r * r * r <= u2 * y2 * y


def _window(centre, reach, width):
    """First pixel of a ``width``-pixel window holding ``centre +- reach``."""
    start = np.floor(centre - reach).astype(np.int64) - 1
    # Clipping keeps the window in the frame; the visible part stays inside.
    return np.clip(start, 0, IMAGE_SIZE - width)


def _render_chunk(scale, orientation, pos_x, pos_y, offsets):
    # Only a window around each heart is evaluated (it reaches at most
    # _HEART_REACH * size pixels from its centre): ~7x less work than 64 x 64.
    size = scale * _HEART_RADIUS
    reach = _HEART_REACH * size.max(initial=0.0)
    width = min(IMAGE_SIZE, int(np.ceil(2 * reach)) + 3)
    travel = IMAGE_SIZE - 1 - 2 * _MARGIN
    centre_x, centre_y = _MARGIN + pos_x * travel, _MARGIN + pos_y * travel
    start_x, start_y = _window(centre_x, reach, width), _window(centre_y, reach, width)
    local = np.arange(width)
    cols = (start_x[:, None] + local)[:, None, :]
    rows = (start_y[:, None] + local)[:, :, None]
    size, cos, sin = (a[:, None, None] for a in (size, np.cos(orientation), np.sin(orientation)))
    window = np.zeros((len(scale), width, width))
    for dx, dy in offsets:
        # Pixel (row i, col j) has its centre at (j, i); rows grow downwards,
        # so the shape frame flips the vertical axis to keep the heart upright.
        dx_img = (cols + dx - centre_x[:, None, None]) / size
        dy_img = -(rows + dy - centre_y[:, None, None]) / size
        # Rotating the sampling points by -theta rotates the heart by +theta.
        u = cos * dx_img + sin * dy_img
        v = cos * dy_img - sin * dx_img
        window += _heart_mask(u, v)
    images = np.zeros((len(scale), IMAGE_SIZE * IMAGE_SIZE))
    flat = (rows * IMAGE_SIZE + cols).reshape(len(scale), -1)
    np.put_along_axis(images, flat, window.reshape(len(scale), -1) / len(offsets), axis=1)
    return images.reshape(len(scale), IMAGE_SIZE, IMAGE_SIZE)


def render_hearts(scale, orientation, pos_x, pos_y, *, supersample=1):
    """Render heart sprites on a 64 x 64 grid.

    Parameters
    ----------
    scale : array-like of shape (n,)
        Size factor; dSprites uses ``[0.5, 1]``.
    orientation : array-like of shape (n,)
        Counter-clockwise rotation in radians.
    pos_x, pos_y : array-like of shape (n,)
        Position in ``[0, 1]``: 0 is the left (top) edge, 1 the right (bottom).
    supersample : int, default=1
        Anti-aliasing: each pixel averages ``supersample**2`` sub-pixel samples.
        The default, 1, gives binary images like dSprites.

    Returns
    -------
    images : ndarray of shape (n, 64, 64), float64 in [0, 1]

    Examples
    --------
    >>> images = render_hearts([1.0], [0.0], [0.5], [0.5])
    >>> images.shape
    (1, 64, 64)
    >>> int(images.sum())
    236
    """
    scale, orientation, pos_x, pos_y = (
        np.atleast_1d(np.asarray(a, dtype=np.float64)).ravel()
        for a in (scale, orientation, pos_x, pos_y)
    )
    steps = (np.arange(supersample) + 0.5) / supersample - 0.5
    offsets = [(dx, dy) for dy in steps for dx in steps]
    # Chunks bound the memory of the (chunk, 64, 64) temporaries.
    chunks = [
        _render_chunk(
            scale[start : start + _CHUNK],
            orientation[start : start + _CHUNK],
            pos_x[start : start + _CHUNK],
            pos_y[start : start + _CHUNK],
            offsets,
        )
        for start in range(0, len(scale), _CHUNK)
    ]
    if not chunks:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE))
    return np.concatenate(chunks)


def dsprites_weights():
    """The fixed 4096 x 10 projection ``A`` of the structural function.

    Its entries are U(0, 1) drawn from ``np.random.default_rng(0)``,
    independently of any ``random_state``, so every sample and the test grid
    share one ``h``. (The DFIV reference code loads its own fixed matrix from a
    file; the values differ, the distribution is the same.)

    Returns
    -------
    A : ndarray of shape (4096, 10)

    Examples
    --------
    >>> A = dsprites_weights()
    >>> A.shape, bool(np.all((A >= 0) & (A < 1)))
    ((4096, 10), True)
    """
    return np.random.default_rng(WEIGHTS_SEED).uniform(size=(N_PIXELS, N_PROJECTIONS))


def dsprites_structural(X):
    """The structural function ``h(X) = (||X A||^2 / 10 - 5000) / 1000``.

    Parameters
    ----------
    X : array-like of shape (n, 4096)
        Flattened images.

    Returns
    -------
    h : ndarray of shape (n,)

    Examples
    --------
    >>> float(dsprites_structural(np.zeros((1, 4096)))[0])
    -5.0
    """
    projected = np.asarray(X, dtype=np.float64) @ dsprites_weights()
    # The mean over the 10 projections is the ||.||^2 / 10 of the formula.
    return (np.mean(projected**2, axis=1) - 5000.0) / 1000.0


def _render_indices(indices):
    scale, orientation, pos_x, pos_y = indices.T
    images = render_hearts(
        SCALES[scale], ORIENTATIONS[orientation], POSITIONS[pos_x], POSITIONS[pos_y]
    )
    return images.reshape(len(indices), N_PIXELS)


def make_dsprites(n_samples=5000, *, random_state=None):
    """Draw a confounded training sample of the dSprites design.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of images.
    random_state : int, RandomState instance or None, default=None
        Seed of the latent draw and of the noise. The projection ``A`` of ``h``
        does not depend on it (see :func:`dsprites_weights`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (n_samples, 4096) noisy images; ``y`` (n_samples,) outcome;
        ``Z`` (n_samples, 3) instrument (scale, orientation, posX) values;
        ``structural`` (n_samples,) ``h(X)``; ``latent_indices``
        (n_samples, 4) grid indices of (scale, orientation, posX, posY);
        ``DESCR``.

    Examples
    --------
    >>> data = make_dsprites(20, random_state=0)
    >>> data.X.shape, data.y.shape, data.Z.shape
    ((20, 4096), (20,), (20, 3))
    """
    rng = check_random_state(random_state)
    sizes = (len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
    indices = np.column_stack([rng.randint(size, size=n_samples) for size in sizes])
    X = _render_indices(indices) + rng.normal(0.0, PIXEL_NOISE, size=(n_samples, N_PIXELS))
    structural = dsprites_structural(X)
    # posY drives the outcome but is not in Z: it is the hidden confounder.
    confounding = indices[:, 3] - 16.0
    y = structural + confounding + rng.normal(0.0, OUTCOME_NOISE, size=n_samples)
    Z = np.column_stack(
        [SCALES[indices[:, 0]], ORIENTATIONS[indices[:, 1]], POSITIONS[indices[:, 2]]]
    )
    return Bunch(
        X=X,
        y=y,
        Z=Z,
        structural=structural,
        latent_indices=indices,
        DESCR=_TRAIN_DESCR.format(n_samples=n_samples),
    )


def make_dsprites_test():
    """The noise-free dSprites test grid (588 images) and the true ``h``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (588, 4096) images; ``y`` (588,) ``h(X)``; ``latent_indices``
        (588, 4) of (scale, orientation, posX, posY); ``DESCR``.

    Examples
    --------
    >>> test = make_dsprites_test()
    >>> test.X.shape, test.y.shape
    ((588, 4096), (588,))
    """
    positions = np.arange(0, 32, 5)
    pos_x, pos_y, scale, orientation = np.meshgrid(
        positions, positions, [0, 3, 5], [0, 10, 20, 30], indexing="ij"
    )
    indices = np.column_stack([a.ravel() for a in (scale, orientation, pos_x, pos_y)])
    X = _render_indices(indices)
    return Bunch(X=X, y=dsprites_structural(X), latent_indices=indices, DESCR=_TEST_DESCR)

"""The demand design of Hartford et al. (2017), as used by DFIV (Xu et al., 2021).

An airline sells tickets at price ``p``; demand depends on the price, the time
of year ``t`` and a customer type ``s`` ("emotion"). Price is confounded with
the demand noise: both share the shock ``V``. The fuel cost ``C`` moves the
price but not the demand, so it is a valid instrument::

    psi(t)     = 2 ((t - 5)^4 / 600 + exp(-4 (t - 5)^2) + t / 10 - 2)
    h(p, t, s) = 100 + (10 + p) s psi(t) - 2 p
    s ~ U{1..7}, t ~ U(0, 10), C ~ N(0, 1), V ~ N(0, 1)
    e = rho V + N(0, 1 - rho^2)
    P = 25 + (C + 3) psi(t) + V
    Y = h(P, t, s) + e

See ``/work/shared/reference/method.md``, section 2, for the specification.
"""

import numpy as np
from sklearn.utils import Bunch, check_random_state

FEATURE_NAMES = ["price", "time", "emotion"]
COVARIATES = [1, 2]
EMOTIONS = np.arange(1, 8)
TEST_PRICES = np.linspace(10, 25, 20)
TEST_TIMES = np.linspace(0, 10, 20)

_TRAIN_DESCR = """Demand design (training sample)
===============================

Hartford et al. (2017) airline-demand benchmark as specified by DFIV
(Xu et al., ICLR 2021).

Columns of ``X``: price (the confounded treatment), time ``t`` ~ U(0, 10) and
emotion ``s`` ~ U{{1..7}} (the exogenous covariates, indices ``covariates``).
``Z`` is the instrument ``C`` (fuel cost). ``y = h(X) + e`` with
``corr(e, V) = rho`` where ``V`` is the price shock; ``structural`` holds the
noise-free ``h(X)``. n_samples={n_samples}, rho={rho}.
"""

_TEST_DESCR = """Demand design (test grid)
=========================

The noise-free grid price in linspace(10, 25, 20) x time in linspace(0, 10, 20)
x emotion in {1..7} (2800 points); ``y`` is the structural function ``h`` on it.
Score an estimate by its mean squared error against ``y``.
"""


def demand_psi(t):
    """The seasonal effect ``psi(t)`` of the demand design.

    Parameters
    ----------
    t : array-like
        Time of year, in ``[0, 10]``.

    Returns
    -------
    ndarray of the shape of ``t``

    Examples
    --------
    >>> float(demand_psi(5.0))
    -1.0
    """
    t = np.asarray(t, dtype=np.float64)
    return 2.0 * ((t - 5.0) ** 4 / 600.0 + np.exp(-4.0 * (t - 5.0) ** 2) + t / 10.0 - 2.0)


def demand_structural(price, time, emotion):
    """The structural function ``h(p, t, s) = 100 + (10 + p) s psi(t) - 2 p``.

    Parameters
    ----------
    price, time, emotion : array-like
        Broadcastable arrays of price ``p``, time ``t`` and emotion ``s``.

    Returns
    -------
    ndarray of the broadcast shape

    Examples
    --------
    >>> float(demand_structural(10.0, 5.0, 1))
    60.0
    """
    price = np.asarray(price, dtype=np.float64)
    emotion = np.asarray(emotion, dtype=np.float64)
    return 100.0 + (10.0 + price) * emotion * demand_psi(time) - 2.0 * price


def _as_frame(X):
    # pandas is optional: imported only when a DataFrame is asked for.
    import pandas as pd

    return pd.DataFrame(X, columns=FEATURE_NAMES)


def make_demand(n_samples=5000, *, rho=0.5, random_state=None, as_frame=False):
    """Draw a confounded training sample of the demand design.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of rows.
    rho : float, default=0.5
        Correlation between the price shock ``V`` and the outcome noise ``e``,
        in ``[0, 1]``; it sets the strength of the confounding.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw (see :func:`sklearn.utils.check_random_state`).
    as_frame : bool, default=False
        If True, ``X`` is a :class:`pandas.DataFrame` with columns
        ``feature_names``; the other arrays stay numpy arrays.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (n_samples, 3) float64 columns [price, time, emotion] (treatment
        first, then the covariates); ``y`` (n_samples,) outcome; ``Z``
        (n_samples, 1) instrument ``C``; ``covariates`` = [1, 2], the indices of
        the covariate columns of ``X``; ``feature_names``; ``structural``
        (n_samples,) the noise-free ``h`` at ``X``; ``DESCR``.

    Examples
    --------
    >>> data = make_demand(100, rho=0.5, random_state=0)
    >>> data.X.shape, data.y.shape, data.Z.shape
    ((100, 3), (100,), (100, 1))
    >>> data.covariates
    [1, 2]
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho!r}.")
    rng = check_random_state(random_state)
    emotion = rng.randint(1, 8, size=n_samples).astype(np.float64)
    time = rng.uniform(0.0, 10.0, size=n_samples)
    cost = rng.normal(0.0, 1.0, size=n_samples)
    price_shock = rng.normal(0.0, 1.0, size=n_samples)
    # The shared shock V in both price and noise is what makes price endogenous.
    noise = rho * price_shock + rng.normal(0.0, np.sqrt(1.0 - rho**2), size=n_samples)
    price = 25.0 + (cost + 3.0) * demand_psi(time) + price_shock
    structural = demand_structural(price, time, emotion)
    X = np.column_stack([price, time, emotion])
    return Bunch(
        X=_as_frame(X) if as_frame else X,
        y=structural + noise,
        Z=cost[:, np.newaxis],
        covariates=list(COVARIATES),
        feature_names=list(FEATURE_NAMES),
        structural=structural,
        DESCR=_TRAIN_DESCR.format(n_samples=n_samples, rho=rho),
    )


def make_demand_test(*, as_frame=False):
    """The noise-free test grid of the demand design (2800 points).

    Parameters
    ----------
    as_frame : bool, default=False
        If True, ``X`` is a :class:`pandas.DataFrame` with columns
        ``feature_names``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (2800, 3) columns [price, time, emotion], ordered as
        ``itertools.product(prices, times, emotions)``; ``y`` (2800,) the true
        ``h``; ``covariates``; ``feature_names``; ``DESCR``.

    Examples
    --------
    >>> test = make_demand_test()
    >>> test.X.shape, test.y.shape
    ((2800, 3), (2800,))
    """
    price, time, emotion = np.meshgrid(TEST_PRICES, TEST_TIMES, EMOTIONS, indexing="ij")
    X = np.column_stack([price.ravel(), time.ravel(), emotion.ravel().astype(np.float64)])
    return Bunch(
        X=_as_frame(X) if as_frame else X,
        y=demand_structural(X[:, 0], X[:, 1], X[:, 2]),
        covariates=list(COVARIATES),
        feature_names=list(FEATURE_NAMES),
        DESCR=_TEST_DESCR,
    )

"""A neuraloperator FNO as the backbone of a CFLO regressor.

Any torch module can be the backbone of :class:`skcflo.CFLORegressor`,
including a model from an established operator library. This script takes
the Fourier neural operator ``neuralop.models.FNO`` of the `neuraloperator
<https://github.com/neuraloperator/neuraloperator>`_ package and fits it on
the viscous Burgers equation (``u0 -> u(., 0.2)`` on 64 grid points, from
:func:`skcflo.datasets.make_burgers`) two ways: with the closed-form ridge head
(CFLO) and end to end with Adam (``head_update='gradient',
refit_head=False``). Both start from the same weights and print their test
relative L2 error.

neuraloperator is an optional extra, never a dependency of skcflo; this
script is not part of the documentation gallery, whose examples run at every
docs build.

Notes
-----
**The adapter.** ``neuralop`` works channels first: ``(n, channels, s)``
in, ``(n, out_channels, s)`` out. scikit-learn passes a flattened grid
``(n, s)``, and a backbone with operator-shaped features returns
``(n, s, d)``, channels last. :class:`NeuralopFNOBackbone` adds the channel
axis on the way in and moves it last on the way out.

**The projection layer is cut, not kept.** neuralop's FNO ends with a
pointwise two-layer projection ``Q = Q_2 o sigma o Q_1`` (``FNO.projection``,
a ``ChannelMLP``: ``Q_1`` widens ``hidden_channels`` to
``projection_channel_ratio * hidden_channels``, ``Q_2`` maps those to
``out_channels``). The adapter keeps ``sigma o Q_1`` and drops the last,
linear ``Q_2``: the closed-form head *is* ``Q_2``, fitted at every grid
point, as in skcflo's own :class:`~skcflo.FNOBackbone1d`. Keeping the whole
projection with ``out_channels=d`` as a ``d``-feature map would put two
linear maps in a row, ``Q_2`` then the head. Their product is still one
linear map, so the extra layer adds no expressiveness. It also lets
training shrink the head's ridge penalty by scaling ``Q_2`` up and the head
down, and ``alpha`` then means little. With everything else equal (seed 0,
300 samples, 10 epochs), keeping it gave a CFLO test error of 0.054 instead
of 0.042.

``n_modes`` counts modes as neuraloperator does: ``n_modes=(16,)`` keeps
the real-FFT modes ``k = 0, ..., 8``.

Examples
--------
Install the optional extra, then run the script from the repository root
(under 20 s on two CPU cores)::

    pip install -e ".[operators]"      # or: pip install "neuraloperator>=2.0"
    python examples/neuraloperator_backbone.py

The functions can also be imported (``runpy.run_path``) and called with
smaller sizes, as ``tests/test_external_backbones.py`` does. On a machine
shared with other work, ``OMP_NUM_THREADS=1 python ...`` avoids torch's
threads contending for the cores, which can make a run many times slower.
"""

import time

import numpy as np
import torch
from neuralop.models import FNO
from sklearn.utils import Bunch
from torch import nn

from skcflo import CFLORegressor
from skcflo.datasets import make_burgers, relative_l2_error


class NeuralopFNOBackbone(nn.Module):
    """``neuralop.models.FNO`` without its last layer: ``(n, s)`` -> ``(n, s, d)``.

    Parameters
    ----------
    n_modes : int, default=16
        Fourier modes, counted as neuraloperator does (``n_modes // 2 + 1``
        real-FFT modes are kept).
    hidden_channels : int, default=24
        Channels of the hidden functions.
    n_layers : int, default=3
        Number of Fourier layers.
    projection_channel_ratio : int, default=2
        Width of the first projection layer ``Q_1`` relative to
        ``hidden_channels``. It sets ``d``, the features per grid point.
    """

    def __init__(self, n_modes=16, hidden_channels=24, n_layers=3, projection_channel_ratio=2):
        super().__init__()
        self.fno = FNO(
            n_modes=(n_modes,),
            in_channels=1,
            out_channels=1,  # only used by Q_2, which is replaced below
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            projection_channel_ratio=projection_channel_ratio,
        )
        # FNO.projection is Q_2 o gelu o Q_1 (1x1 convolutions). Keep gelu o Q_1;
        # the closed-form head is Q_2.
        self.fno.projection = nn.Sequential(self.fno.projection.fcs[0], nn.GELU())
        self.n_features_out = projection_channel_ratio * hidden_channels

    def forward(self, x):
        # (n, s) -> (n, 1, s), channels first for neuralop -> (n, d, s) -> (n, s, d).
        return self.fno(x.unsqueeze(1)).movedim(1, -1)


def main(
    n_samples=300,
    resolution=64,
    max_iter=10,
    hidden_channels=24,
    n_modes=16,
    n_layers=3,
    alpha=1e-3,
    random_state=0,
    verbose=True,
):
    """Fit the FNO with a closed-form head and end to end with Adam; return the results.

    Parameters
    ----------
    n_samples : int, default=300
        Burgers pairs drawn; the first 80% train, the rest test.
    resolution : int, default=64
        Grid points per function.
    max_iter : int, default=10
        Epochs of each fit.
    hidden_channels, n_modes, n_layers : int
        Size of the FNO (see :class:`NeuralopFNOBackbone`).
    alpha : float, default=1e-3
        Ridge penalty of the head.
    random_state : int, default=0
        Seed of the data, the initial weights and the batch order.
    verbose : bool, default=True
        Print one line per model.

    Returns
    -------
    results : :class:`~sklearn.utils.Bunch`
        ``models`` and ``errors`` (test relative L2 error), both keyed by
        ``"CFLO"`` and ``"Adam"``; ``X_train``, ``y_train``, ``X_test``,
        ``y_test``.
    """
    data = make_burgers(n_samples, resolution=resolution, time=0.2, random_state=random_state)
    n_train = int(0.8 * n_samples)
    X_train, y_train = data.X[:n_train], data.y[:n_train]
    X_test, y_test = data.X[n_train:], data.y[n_train:]

    # A module instance is deep-copied at fit and keeps its own initial weights,
    # so both models start from this one network.
    torch.manual_seed(random_state)
    backbone = NeuralopFNOBackbone(n_modes, hidden_channels, n_layers)
    shared = dict(
        backbone=backbone,
        batch_size=20,
        learning_rate_init=3e-3,
        alpha=alpha,
        max_iter=max_iter,
        random_state=random_state,
    )
    models = {
        "CFLO": CFLORegressor(proximal_lambda=0.1, **shared),
        "Adam": CFLORegressor(head_update="gradient", refit_head=False, **shared),
    }
    errors = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        errors[name] = relative_l2_error(y_test, model.predict(X_test))
        if verbose:
            print(f"{name:>4}: test relative L2 error {errors[name]:.4f} ({seconds:.1f} s)")
    if verbose:
        mean = np.broadcast_to(y_train.mean(axis=0), y_test.shape)
        print(f"training mean: test relative L2 error {relative_l2_error(y_test, mean):.4f}")
    return Bunch(
        models=models,
        errors=errors,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
    )


if __name__ == "__main__":
    main()

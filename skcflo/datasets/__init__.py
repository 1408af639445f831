"""Synthetic data sets for deep-feature instrumental-variable (DFIV) regression.

Two benchmark designs of Xu et al., "Learning Deep Features in Instrumental
Variable Regression" (ICLR 2021), generated from scratch (no downloads):

* the demand design (:func:`make_demand`, :func:`make_demand_test`): a
  low-dimensional confounded price treatment with covariates (time, emotion)
  and a fuel-cost instrument;
* the dSprites design (:func:`make_dsprites`, :func:`make_dsprites_test`): a
  64 x 64 heart image as the treatment, rendered by :func:`render_hearts`.

Every generator returns a :class:`sklearn.utils.Bunch` with ``X``, ``y`` and,
for training samples, the instruments ``Z`` and the noise-free structural
function ``structural``; test grids carry the true ``h`` in ``y``.
"""

from ._demand import demand_psi, demand_structural, make_demand, make_demand_test
from ._dsprites import (
    dsprites_structural,
    dsprites_weights,
    make_dsprites,
    make_dsprites_test,
    render_hearts,
)
from ._pde import make_burgers, make_darcy, relative_l2_error, solve_burgers, solve_darcy

__all__ = [
    "demand_psi",
    "demand_structural",
    "dsprites_structural",
    "dsprites_weights",
    "make_burgers",
    "make_darcy",
    "make_demand",
    "make_demand_test",
    "make_dsprites",
    "make_dsprites_test",
    "relative_l2_error",
    "render_hearts",
    "solve_burgers",
    "solve_darcy",
]

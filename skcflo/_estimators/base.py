"""The private base every skcflo estimator stands on.

What the estimators share lives here once, as scikit-learn keeps it in
``BaseMultilayerPerceptron`` for ``MLPRegressor`` / ``MLPClassifier``: the
parameters of the optimiser, the schedule, early stopping, the device and the
seed, with their constraints; the tags; the options handed to the training
loop; the held-out split of early stopping; and the fitted attributes that
describe training (``n_iter_``, ``loss_curve_``, ``validation_scores_``,
``best_validation_score_``). The public classes add what is theirs.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from .._training.optim import LEARNING_RATE_SCHEDULES
from .glue import draw_seed, prediction_input, resolve_device, warn_if_ended_early

# A backbone parameter: None (the default network), a spec with build_module, a
# module, or a factory of one.
BACKBONE_CONSTRAINT = [None, HasMethods(["build_module"]), nn.Module, callable]


class BaseNetworkEstimator(BaseEstimator):
    """Shared parameters, constraints, options and fitted history of the estimators.

    Subclasses set their own ``__init__`` (scikit-learn reads the parameters
    from its signature) and extend :attr:`_parameter_constraints`.
    """

    _parameter_constraints = {
        "solver": [StrOptions({"adam", "sgd"})],
        "learning_rate": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "refit_head": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _shared_options(self):
        """The training-loop settings every estimator passes on in the same way."""
        return {
            "solver": self.solver,
            "learning_rate": self.learning_rate_init,
            "momentum": self.momentum,
            "max_iter": self.max_iter,
            "learning_rate_schedule": self.learning_rate,
            "power_t": self.power_t,
            "tol": self.tol,
            "n_iter_no_change": self.n_iter_no_change,
            "refit_head": self.refit_head,
            "verbose": bool(self.verbose),
        }

    def _device_and_seed(self):
        """The device to train on and the torch seed of this fit."""
        return resolve_device(self.device), draw_seed(self.random_state)

    def _holds_out_rows(self):
        """Whether early stopping scores held-out rows (``True``; a string names another rule)."""
        return bool(self.early_stopping) and not isinstance(self.early_stopping, str)

    def _split_validation(self, order, min_training, hold_out=None):
        """Split a permutation of the rows into training rows and early stopping's held-out rows.

        The first ``ceil(validation_fraction * n)`` rows of ``order`` are held
        out (none without early stopping; ``hold_out`` overrides
        :meth:`_holds_out_rows`). Raises ``ValueError`` unless at least 2 rows
        are held out and ``min_training`` remain.
        """
        if not (self._holds_out_rows() if hold_out is None else hold_out):
            return order, None
        n_samples = len(order)
        n_validation = int(np.ceil(self.validation_fraction * n_samples))
        if n_validation < 2 or n_samples - n_validation < min_training:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} needs at "
                f"least {min_training} training and 2 validation samples; "
                f"got {n_samples} samples."
            )
        return order[n_validation:], order[:n_validation]

    def _store_history(self, result):
        """The fitted attributes that describe training, from an epoch history."""
        warn_if_ended_early(result, stacklevel=5)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        # Empty without early stopping (also when early_stopping='auto' did not apply).
        self.validation_scores_ = result.validation_scores or None
        self.best_validation_score_ = result.best_validation_score

    def _prediction_input(self, X):
        """Fitted check, validated float32 ``X`` and the device to predict on."""
        return prediction_input(self, X)

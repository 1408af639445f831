"""Scorers for model selection with instrumental variables."""

from sklearn.utils.metadata_routing import MetadataRequest


class IVLossScorer:
    """Negative held-out DFIV stage loss, for ``GridSearchCV(scoring=...)``.

    Model selection for instrumental-variable regression must not use the
    outcome MSE of the structural predictions on confounded data; DFIV and
    kernel IV use the out-of-sample stage losses instead (see
    :meth:`DFIVRegressor.iv_loss`). The scorer needs the instruments of the
    held-out fold, so it requests ``Z`` through scikit-learn's metadata
    routing: enable it with ``sklearn.set_config(enable_metadata_routing=True)``
    and ask the estimator for ``Z`` in fit with ``set_fit_request(Z=True)``.

    Parameters
    ----------
    stage : {1, 2}, default=2
        Which stage loss to score.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skcflo import DFIVRegressor, IVLossScorer
    >>> from skcflo.datasets import make_demand
    >>> data = make_demand(n_samples=300, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     search = GridSearchCV(
    ...         DFIVRegressor([1, 2], max_iter=1, random_state=0).set_fit_request(Z=True),
    ...         {"stage2_alpha": [0.01, 0.1]}, scoring=IVLossScorer(), cv=2,
    ...     ).fit(data.X, data.y, Z=data.Z)

    Each fold's score is minus the stage-2 loss of the held-out rows, for a model
    fitted on the other rows (``cv=2``: two contiguous halves):

    >>> import numpy as np
    >>> from sklearn.model_selection import KFold
    >>> losses = [
    ...     DFIVRegressor([1, 2], max_iter=1, stage2_alpha=0.1, random_state=0)
    ...     .fit(data.X[train], data.y[train], Z=data.Z[train])
    ...     .iv_loss(data.X[test], data.y[test], Z=data.Z[test])
    ...     for train, test in KFold(2).split(data.X)
    ... ]
    >>> bool(np.isclose(search.cv_results_["mean_test_score"][1], -np.mean(losses)))
    True
    """

    def __init__(self, stage=2):
        self.stage = stage

    def __call__(self, estimator, X, y, Z=None):
        if Z is None:
            raise ValueError(
                "IVLossScorer needs the held-out instruments Z: enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) and pass Z to fit."
            )
        return -estimator.iv_loss(X, y, Z, stage=self.stage)

    def get_metadata_routing(self):
        """This scorer consumes ``Z`` in ``score``."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="Z", alias=True)
        return request

    def __repr__(self):
        return f"IVLossScorer(stage={self.stage})"

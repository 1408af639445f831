"""skcflo: scikit-learn estimators that train torch networks with a closed-form ridge last layer."""

from .backbones import MLPBackbone
from .iv import DFIVRegressor
from .metrics import IVLossScorer
from .regressor import CFLORegressor

__all__ = ["CFLORegressor", "DFIVRegressor", "IVLossScorer", "MLPBackbone"]
__version__ = "0.1.0.dev0"

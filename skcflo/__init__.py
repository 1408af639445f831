"""skcflo: scikit-learn estimators that train torch networks with a closed-form ridge last layer."""

from .backbones import MLPBackbone
from .fno import FNOBackbone1d, FNOBackbone2d
from .iv import DFIVRegressor
from .metrics import IVLossScorer
from .regressor import CFLORegressor

__all__ = [
    "CFLORegressor",
    "DFIVRegressor",
    "FNOBackbone1d",
    "FNOBackbone2d",
    "IVLossScorer",
    "MLPBackbone",
]
__version__ = "0.1.0.dev0"

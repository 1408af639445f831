"""skcflo: scikit-learn estimators that train torch networks with a closed-form ridge last layer."""

from ._estimators.diagnostics import WeakInstrumentWarning
from ._estimators.iv import DFIVRegressor
from ._estimators.regressor import CFLORegressor
from ._estimators.scoring import IVLossScorer
from ._networks.backbones import MLPBackbone
from ._networks.fno import FNOBackbone1d, FNOBackbone2d

__all__ = [
    "CFLORegressor",
    "DFIVRegressor",
    "FNOBackbone1d",
    "FNOBackbone2d",
    "IVLossScorer",
    "MLPBackbone",
    "WeakInstrumentWarning",
]
__version__ = "0.1.0.dev0"

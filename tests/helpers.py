"""Small modules shared by several test files."""

from torch import nn


class InterruptedNet(nn.Module):
    """A one-layer ReLU network that raises KeyboardInterrupt on its n-th training forward pass.

    Stands in for a user pressing Ctrl-C mid-epoch; evaluation-mode passes
    (exact heads, predictions) do not count.
    """

    def __init__(self, n_features, interrupt_at, width=16):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(n_features, width), nn.ReLU())
        self.interrupt_at = interrupt_at
        self.calls = 0

    def forward(self, inputs):
        if self.training:
            self.calls += 1
            if self.calls == self.interrupt_at:
                raise KeyboardInterrupt
        return self.layer(inputs)


# CFLORegressor's defaults before issue 19 (a fixed head penalty, every epoch on every
# row, the network's features alone): tests of a mechanism pin them, so that what
# they check does not move with the defaults chosen on real data.
FIXED_SETTINGS = {"alpha": 0.1, "early_stopping": False, "include_inputs": False}


def fixed_cflo(*args, **params):
    """A CFLORegressor on :data:`FIXED_SETTINGS`, overridden by ``params``."""
    from skcflo import CFLORegressor

    return CFLORegressor(*args, **{**FIXED_SETTINGS, **params})

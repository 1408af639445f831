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

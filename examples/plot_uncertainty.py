"""
Predictive uncertainty bands
============================

With squared loss and a Gaussian prior on the last layer, the ridge head is
the mean of a Gaussian posterior over the head weights (the Kalman filter's
state in the paper's reading). ``predict(X, return_std=True)`` returns, beside
the mean, the standard deviation of the predictive distribution

.. math::

    \\sigma(x) = \\hat\\sigma \\sqrt{1 + \\tilde\\phi(x)^\\top A^{-1} \\tilde\\phi(x)},
    \\qquad A = \\tilde\\Phi^\\top \\tilde\\Phi + n \\alpha D,

where :math:`\\tilde\\phi = [\\phi, 1]` are the backbone features with a constant
column, :math:`D` leaves the intercept unpenalised and :math:`\\hat\\sigma^2`
is ``noise_variance_``. The backbone is held fixed: the band covers the noise
and the uncertainty of the head, not that of the hidden layers.

A one-dimensional problem with a gap in the training inputs shows both what
the band does and what it does not. One seed, a small network, seconds of
training: an illustration; ``benchmarks/bench_uncertainty.py`` measures the
coverage over seeds on Friedman #1.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from skcflo import CFLORegressor


def truth(x):
    return np.sin(2 * x) + 0.3 * x


NOISE = 0.3
rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, size=1000)
x = x[np.abs(x - 0.8) > 0.6]  # no training data on (0.2, 1.4)
y = truth(x) + rng.normal(0, NOISE, size=x.size)
x_test = rng.uniform(-3, 3, size=5000)
y_test = truth(x_test) + rng.normal(0, NOISE, size=x_test.size)

# %%
# Two ways to estimate the noise
# ------------------------------
# With ``early_stopping=True`` the noise variance is the mean squared residual
# on the held-out validation rows. Without it, it comes from the training
# residuals, which are optimistic because the backbone was fitted to those
# very targets.
shared = dict(hidden_layer_sizes=(64, 64), alpha=0.1, random_state=0)
models = {
    "validation residuals (early stopping)": CFLORegressor(
        early_stopping=True, n_iter_no_change=20, max_iter=300, **shared
    ),
    # About as many epochs as early stopping ran, for a like-for-like fit.
    "training residuals": CFLORegressor(max_iter=120, early_stopping=False, **shared),
}
for name, model in models.items():
    model.fit(x[:, None], y)
    print(f"{name:>38}: {model.n_iter_:3d} epochs, noise sd {np.sqrt(model.noise_variance_):.3f}")
print(f"{'true noise sd':>38}: {NOISE:.3f}")

# %%
# The band, and its calibration on new data
# -----------------------------------------
# Left: the mean and the central 90% interval of the early-stopped model. In the
# gap the mean departs from the truth while the band barely widens: the head's
# posterior knows nothing of how uncertain the hidden layers are there, so do
# not read the band as a guard against extrapolation. Right: the share of new
# targets inside the central interval of each nominal level.
grid = np.linspace(-3.5, 3.5, 400)
mean, std = models["validation residuals (early stopping)"].predict(grid[:, None], return_std=True)
z90 = norm.ppf(0.95)

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(x, y, ".", ms=2, color="0.6", label="training data")
left.plot(grid, truth(grid), "k--", lw=1.5, label="true function")
left.plot(grid, mean, "C0", lw=2, label="prediction")
left.fill_between(
    grid, mean - z90 * std, mean + z90 * std, color="C0", alpha=0.25, label="90% band"
)
left.axvspan(0.2, 1.4, color="C3", alpha=0.08, label="no training data")
left.set_xlabel("x")
left.set_ylabel("y")
left.legend(loc="lower right", fontsize=8)
left.set_title("Early-stopped model")

levels = np.linspace(0.05, 0.99, 30)
for colour, (name, model) in zip(("C0", "C1"), models.items(), strict=True):
    mean_test, std_test = model.predict(x_test[:, None], return_std=True)
    z = np.abs(y_test - mean_test) / std_test
    coverage = [np.mean(z <= norm.ppf(0.5 + level / 2)) for level in levels]
    right.plot(levels, coverage, colour, lw=2, label=f"noise from {name}")
right.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
right.set_xlabel("nominal coverage of the central interval")
right.set_ylabel("observed coverage on new data")
right.legend(fontsize=8)
right.set_title("Calibration")
fig.tight_layout()
plt.show()

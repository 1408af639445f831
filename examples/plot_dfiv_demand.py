"""
DFIV on the demand design: the structural curve and the naive bias
==================================================================

Price is confounded with demand noise (airline-ticket demand design of
Hartford et al., 2017, as used by DFIV). A plain regression of sales on price
learns ``E[y | price, time, emotion]``, which mixes the effect of price with
the hidden shock that moved it. ``DFIVRegressor`` uses the fuel-cost
instrument to recover the structural demand curve ``h(price, time, emotion)``.

The figure shows, at three times of year, the true curve, the DFIV estimate
and the naive ``CFLORegressor`` estimate, with their test MSE on the
noise-free grid of 2,800 points (the variance of ``h`` on it is about 32,600).

An illustration with one seed and 2,000 samples, sized to run in seconds;
``benchmarks/bench_dfiv.py`` measures both methods, and linear two-stage least
squares, over seeds and sample sizes (at 5,000 samples DFIV's mean test MSE is
about 120 there, the naive regression's about 1,700).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor, DFIVRegressor
from skcflo.datasets import demand_structural, make_demand, make_demand_test

data = make_demand(n_samples=2000, rho=0.9, random_state=0)
test = make_demand_test()

dfiv = DFIVRegressor(covariates=[1, 2], random_state=0).fit(data.X, data.y, Z=data.Z)
naive = make_pipeline(StandardScaler(), CFLORegressor(random_state=0)).fit(data.X, data.y)

mse = {
    "DFIV": np.mean((dfiv.predict(test.X) - test.y) ** 2),
    "naive regression": np.mean((naive.predict(test.X) - test.y) ** 2),
}
for name, value in mse.items():
    print(f"{name:>17}: test MSE {value:8.1f}")

# %%
# Demand curves at emotion 4, for three times of year.
prices = np.linspace(10, 25, 100)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
for axis, time in zip(axes, (2.0, 5.0, 8.0), strict=True):
    grid = np.column_stack([prices, np.full_like(prices, time), np.full_like(prices, 4.0)])
    axis.plot(prices, demand_structural(prices, time, 4.0), "k-", lw=2, label="true h")
    axis.plot(prices, dfiv.predict(grid), "C0--", lw=2, label=f"DFIV (MSE {mse['DFIV']:.0f})")
    axis.plot(
        prices,
        naive.predict(grid),
        "C3:",
        lw=2,
        label=f"naive (MSE {mse['naive regression']:.0f})",
    )
    axis.set_title(f"time = {time:g}, emotion = 4")
    axis.set_xlabel("price")
axes[0].set_ylabel("sales")
axes[0].legend(loc="best", fontsize=8)
fig.suptitle("Structural demand curve: DFIV vs naive regression (rho = 0.9, n = 2000)")
fig.tight_layout()
plt.show()

# %%
# The effect of one more unit of price, ``h(p + 1, t, s) - h(p, t, s)``, is
# what a pricing decision needs. Here it is along the time of year for each
# emotion level, with 90% pointwise intervals (the stage-2 sandwich, features
# fixed), beside the truth ``s psi(t) - 2``. The intervals ignore the
# uncertainty of the learned features and the shrinkage of the penalised
# heads: ``benchmarks/bench_iv_inference.py`` measures how often they cover.
times = np.linspace(0, 10, 60)
fig, axis = plt.subplots(figsize=(7, 3.8))
for colour, emotion in zip(("C0", "C1", "C2"), (1.0, 4.0, 7.0), strict=True):
    rows = np.column_stack([np.full_like(times, 17.5), times, np.full_like(times, emotion)])
    effect = dfiv.effect(rows, rows[:, 0] + 1)
    lower, upper = dfiv.effect_interval(rows, rows[:, 0] + 1, alpha=0.1)
    truth = demand_structural(18.5, times, emotion) - demand_structural(17.5, times, emotion)
    axis.plot(times, truth, "-", color=colour, lw=2, label=f"true, emotion {emotion:g}")
    axis.plot(times, effect, "--", color=colour, label="DFIV")
    axis.fill_between(times, lower, upper, color=colour, alpha=0.2)
axis.set_xlabel("time of year")
axis.set_ylabel("effect of +1 price on sales")
axis.legend(fontsize=7, ncol=3)
fig.tight_layout()
plt.show()

# %%
# The average effect over the sample, and the instrument's strength.
one_more = data.X[:, 0] + 1
print(dfiv.summary(data.X, one_more, alpha=0.1))
print(dfiv.first_stage_)

"""
Pipelines and grid search
=========================

``CFLORegressor`` is an ordinary scikit-learn estimator: it sits in a
``Pipeline`` after a scaler, clones, and ``GridSearchCV`` tunes it. Its
backbone can be given as a spec, :class:`~skcflo.MLPBackbone`, whose own
parameters the search reaches with a double underscore,
``cfloregressor__backbone__hidden_layer_sizes``, exactly like a nested
estimator's.

The data is scikit-learn's diabetes set (442 patients, ten measurements, a
disease-progression score): small and noisy, so the head penalty ``alpha``
matters. The grid is small and training is short (30 epochs) so that the
example runs in seconds; it illustrates the mechanics, not a tuned model.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor, MLPBackbone

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipeline = make_pipeline(
    StandardScaler(),
    CFLORegressor(backbone=MLPBackbone(), max_iter=30, random_state=0),
)
param_grid = {
    "cfloregressor__alpha": [0.01, 0.1, 1.0],
    "cfloregressor__backbone__hidden_layer_sizes": [(16,), (64,), (64, 64)],
}
# n_jobs=1: on a machine with more cores, n_jobs=-1 runs the 27 fits in
# parallel worker processes (each limited to its share of the threads).
search = GridSearchCV(pipeline, param_grid, cv=3, n_jobs=1)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated R2 of the best: {search.best_score_:.3f}")
print(f"test R2 of the refitted best:   {search.score(X_test, y_test):.3f}")

# %%
# The fitted pipeline is a plain scikit-learn object: its last step is the
# fitted ``CFLORegressor``, with the trained torch backbone and the ridge head.
best = search.best_estimator_[-1]
print(best.backbone_)
print("head:", best.coef_.shape, "coefficients and an intercept")

# %%
# Mean cross-validated R² over the grid
# -------------------------------------
# A larger penalty protects the small noisy sample from overfitting, more so
# for the wider networks.
alphas = param_grid["cfloregressor__alpha"]
sizes = param_grid["cfloregressor__backbone__hidden_layer_sizes"]
results = search.cv_results_
scores = np.empty((len(sizes), len(alphas)))
for params, score in zip(results["params"], results["mean_test_score"], strict=True):
    row = sizes.index(params["cfloregressor__backbone__hidden_layer_sizes"])
    column = alphas.index(params["cfloregressor__alpha"])
    scores[row, column] = score

fig, axis = plt.subplots(figsize=(5.5, 3.8))
image = axis.imshow(scores, cmap="viridis")
middle = (scores.min() + scores.max()) / 2
for (row, column), score in np.ndenumerate(scores):
    colour = "k" if score > middle else "w"  # readable on light and dark cells
    axis.text(column, row, f"{score:.2f}", ha="center", va="center", color=colour)
axis.set_xticks(range(len(alphas)), [str(alpha) for alpha in alphas])
axis.set_yticks(range(len(sizes)), [str(size) for size in sizes])
axis.set_xlabel("alpha (per-sample head penalty)")
axis.set_ylabel("hidden_layer_sizes")
axis.set_title("Mean cross-validated R²")
fig.colorbar(image, ax=axis)
fig.tight_layout()
plt.show()

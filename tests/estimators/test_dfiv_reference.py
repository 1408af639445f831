"""DFIVRegressor and IVLossScorer against independent computations.

Every expected value here is computed from the fitted networks (run as plain torch modules) with
numpy, scikit-learn's Ridge or a hand formula, through the public API only: a safety net for the
refactor of the package internals.

Notation (method.md, DFIV): treatment features phi(X_t), instrument features psi(Z, O) (the
instruments and the covariates side by side), covariate features chi(O), aug(A) = [A, 1].
"""

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_validate
from sklearn.utils import check_random_state

from skcflo import DFIVRegressor, IVLossScorer, MLPBackbone
from skcflo.datasets import make_demand

NET = MLPBackbone(hidden_layer_sizes=(8,))
FAST = {
    "treatment_backbone": NET,
    "instrument_backbone": NET,
    "covariate_backbone": NET,
    "max_iter": 2,
    "stage1_iter": 2,
    "covariate_iter": 2,
    "stage2_iter": 1,
    # Two different penalties, so that a stage solved with the other stage's penalty shows.
    "stage1_alpha": 0.05,
    "stage2_alpha": 0.2,
    "device": "cpu",
    "random_state": 0,
}
# The hand computations run the same float32 networks on the same rows and solve in float64:
# they agreed with the estimator to 1e-14. 1e-6 leaves room for float32 feature passes over
# other chunks of rows and still catches a penalty of alpha * (n - 1) instead of alpha * n.
RTOL = 1e-6


# -- hand computations -------------------------------------------------------------------------


def _run(module, columns):
    """Features of a fitted network, in evaluation mode, as float64."""
    module.eval()
    with torch.no_grad():
        inputs = torch.from_numpy(np.ascontiguousarray(columns, dtype=np.float32))
        return module(inputs).double().numpy()


def _aug(features):
    return np.hstack([features, np.ones((len(features), 1))])


def _design(treatment, covariate):
    """Stage-2 design: row-wise aug(t) (x) aug(c) without its constant column, or t alone."""
    if covariate is None:
        return treatment
    t, c = _aug(treatment), _aug(covariate)
    columns = [t[:, i] * c[:, j] for i in range(t.shape[1]) for j in range(c.shape[1])]
    return np.column_stack(columns[:-1])


def _treatment_features(model, X):
    return _run(model.treatment_backbone_, X[:, ~model.covariate_mask_])


def _covariate_features(model, X):
    if not model.covariate_mask_.any():
        assert model.covariate_backbone_ is None
        return None
    return _run(model.covariate_backbone_, X[:, model.covariate_mask_])


def _instrument_features(model, X, Z):
    """psi of the instruments and the covariates side by side (X's treatment without Z)."""
    mask = model.covariate_mask_
    instruments = X[:, ~mask] if Z is None else Z
    return _run(model.instrument_backbone_, np.hstack([instruments, X[:, mask]]))


def _affine(features, weights):
    """aug(features) @ W: the last row of W is the intercept."""
    return features @ weights[:-1] + weights[-1]


def _hand_prediction(model, X):
    """h(x, o) = aug(phi(x)) (x) aug(chi(o)) . u, as (n, n_outputs)."""
    design = _design(_treatment_features(model, X), _covariate_features(model, X))
    return _affine(design, model.stage2_weights_)


def _hand_stage1_loss(model, X, Z):
    predicted = _affine(_instrument_features(model, X, Z), model.stage1_weights_)
    return np.mean((predicted - _treatment_features(model, X)) ** 2)


def _hand_stage2_loss(model, X, y, Z, heads=None):
    stage1, stage2 = (model.stage1_weights_, model.stage2_weights_) if heads is None else heads
    predicted = _affine(_instrument_features(model, X, Z), stage1)
    outcome = _affine(_design(predicted, _covariate_features(model, X)), stage2)
    return np.mean((y.reshape(outcome.shape) - outcome) ** 2)


def _stacked(ridge):
    """sklearn Ridge coefficients in skcflo's layout: (d + 1, k), intercept last."""
    intercept = np.atleast_1d(ridge.intercept_)
    return np.vstack([ridge.coef_.reshape(len(intercept), -1).T, intercept])


def _seed(params):
    # DFIVRegressor.fit draws one torch seed from random_state as scikit-learn does.
    return int(check_random_state(params["random_state"]).randint(2**31 - 1))


def _permutation(n_samples, params):
    generator = torch.Generator().manual_seed(_seed(params))
    return torch.randperm(n_samples, generator=generator).numpy()


def _split_rows(n_samples, params):
    """Rows of the stage-1 half, the stage-2 half and the validation set of a fit.

    The split is internal: this re-implements DFIVRegressor's seeding (one seed drawn from
    random_state, then torch.randperm with a torch.Generator seeded with it; validation rows
    first, then round(split_ratio * rest) stage-1 rows). It pins the split, which is behaviour
    the refactor must keep (same seed, same model).
    """
    order = _permutation(n_samples, params)
    validation = order[:0]
    if params.get("early_stopping") is True:  # ('cross-fit', the default, holds out nothing)
        n_validation = int(np.ceil(params.get("validation_fraction", 0.1) * n_samples))
        validation, order = order[:n_validation], order[n_validation:]
    n_first = round(params.get("split_ratio", 0.5) * len(order))
    return order[:n_first], order[n_first:], validation


def _ridge_heads(model, X, y, Z, first, second, alphas=None):
    """Both stages by sklearn Ridge (per-sample penalty alpha * n, free intercept), raw units.

    The code solves stage 2 on the standardised outcome and converts the weights back; ridge
    with a free intercept commutes with that affine map, so raw-unit Ridge must agree.
    ``alphas``: the two penalties (default: the fitted ones).
    """
    alpha1, alpha2 = (model.stage1_alpha_, model.stage2_alpha_) if alphas is None else alphas
    Z1 = None if Z is None else Z[first]
    Z2 = None if Z is None else Z[second]
    psi1 = _instrument_features(model, X[first], Z1)
    stage1 = Ridge(alpha=alpha1 * len(first)).fit(psi1, _treatment_features(model, X[first]))
    predicted2 = stage1.predict(_instrument_features(model, X[second], Z2))
    design2 = _design(predicted2, _covariate_features(model, X[second]))
    y2 = y.reshape(len(y), -1)[second]
    stage2 = Ridge(alpha=alpha2 * len(second)).fit(design2, y2)
    return _stacked(stage1), _stacked(stage2)


# -- fitted configurations ---------------------------------------------------------------------


def _two_outputs(data):
    return np.column_stack([data.y, 0.1 * data.structural + data.X[:, 1]])


# name: (make_demand arguments, covariates, two outputs, pass Z, extra parameters)
CASES = {
    "covariates": ({"n_samples": 300, "random_state": 0}, [1, 2], False, True, {}),
    # 0.3 * 243 = 72.9: round and floor disagree on the size of the stage-1 half.
    "no_covariates_split_0.3": (
        {"n_samples": 243, "random_state": 1},
        None,
        False,
        True,
        {"split_ratio": 0.3},
    ),
    "two_outputs_without_z": ({"n_samples": 300, "random_state": 2}, [1, 2], True, False, {}),
    "mini_batch_refit": (
        {"n_samples": 300, "random_state": 3},
        [1, 2],
        False,
        True,
        {"batch_size": 40, "proximal_lambda": 1.0},
    ),
}


def _data(make_args, two_outputs, with_z):
    data = make_demand(rho=0.5, **make_args)
    y = _two_outputs(data) if two_outputs else data.y
    return data.X, y, data.Z if with_z else None


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make_args, covariates, two_outputs, with_z, extra = CASES[request.param]
    X, y, Z = _data(make_args, two_outputs, with_z)
    params = {**FAST, **extra}
    model = DFIVRegressor(covariates, **params).fit(X, y, Z=Z)
    fresh_args = {**make_args, "n_samples": 120, "random_state": 100 + make_args["random_state"]}
    return {
        "model": model,
        "params": params,
        "train": (X, y, Z),
        "fresh": _data(fresh_args, two_outputs, with_z),
        "two_outputs": two_outputs,
    }


# -- predict -----------------------------------------------------------------------------------


def test_predict_equals_stage2_weights_on_outer_product_of_network_features(case):
    model = case["model"]
    X = case["fresh"][0]
    expected = _hand_prediction(model, X)
    predictions = model.predict(X)
    if case["two_outputs"]:
        assert predictions.shape == expected.shape == (len(X), 2)
    else:
        assert predictions.shape == (len(X),)
        expected = expected.ravel()
    assert_allclose(predictions, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


# -- iv_loss -----------------------------------------------------------------------------------


def test_iv_loss_stage1_is_mse_of_treatment_features_against_instrument_prediction(case):
    model = case["model"]
    X, y, Z = case["fresh"]
    assert_allclose(model.iv_loss(X, y, Z, stage=1), _hand_stage1_loss(model, X, Z), rtol=RTOL)


def test_iv_loss_stage2_is_mse_of_outcome_against_prediction_from_instruments(case):
    model = case["model"]
    X, y, Z = case["fresh"]
    expected = _hand_stage2_loss(model, X, y, Z)
    assert_allclose(model.iv_loss(X, y, Z, stage=2), expected, rtol=RTOL)
    assert_allclose(model.iv_loss(X, y, Z), expected, rtol=RTOL)


# -- stage weights and the split ---------------------------------------------------------------


def test_refitted_stage_weights_equal_sklearn_ridge_on_all_training_rows(case):
    # With the networks fixed, both stages are re-solved on every training row (both halves).
    model, params = case["model"], case["params"]
    X, y, Z = case["train"]
    first, second, _ = _split_rows(len(X), params)
    rows = np.concatenate([first, second])
    stage1, stage2 = _ridge_heads(model, X, y, Z, rows, rows)
    assert model.stage1_weights_.shape == stage1.shape
    assert model.stage2_weights_.shape == stage2.shape
    assert_allclose(model.stage1_weights_, stage1, rtol=RTOL, atol=RTOL * np.abs(stage1).max())
    assert_allclose(model.stage2_weights_, stage2, rtol=RTOL, atol=RTOL * np.abs(stage2).max())


def _cross_fitted_rsquared(model, X, Z, first, second):
    """R² on the stage-2 half of each treatment feature's prediction from a stage-1 Ridge
    fitted on the stage-1 half (what first_stage_.rsquared reports)."""
    Z1 = None if Z is None else Z[first]
    Z2 = None if Z is None else Z[second]
    stage1 = Ridge(alpha=model.stage1_alpha_ * len(first)).fit(
        _instrument_features(model, X[first], Z1), _treatment_features(model, X[first])
    )
    predicted = stage1.predict(_instrument_features(model, X[second], Z2))
    treatment = _treatment_features(model, X[second])
    error = ((treatment - predicted) ** 2).sum(axis=0)
    return 1.0 - error / ((treatment - treatment.mean(axis=0)) ** 2).sum(axis=0)


@pytest.mark.parametrize("case", ["no_covariates_split_0.3"], indirect=True)
def test_split_ratio_gives_the_stage1_half_round_split_ratio_times_n_rows(case):
    # The halves show in the cross-fitted first-stage diagnostics: stage 1 on the first
    # round(split_ratio * n) shuffled rows, scored on the rest.
    model, params = case["model"], case["params"]
    X, y, Z = case["train"]
    ratio, order = params["split_ratio"], _permutation(len(X), params)
    n_first = round(ratio * len(X))
    assert n_first != int(ratio * len(X))  # this case tells round from floor
    expected = _cross_fitted_rsquared(model, X, Z, order[:n_first], order[n_first:])
    assert_allclose(model.first_stage_.rsquared, expected, rtol=1e-5)
    # One row fewer in the stage-1 half gives other diagnostics: the match pins those rows.
    fewer = _cross_fitted_rsquared(model, X, Z, order[: n_first - 1], order[n_first - 1 :])
    assert not np.allclose(model.first_stage_.rsquared, fewer, rtol=1e-5)


# -- score -------------------------------------------------------------------------------------


def test_score_is_r2_of_the_structural_prediction(case):
    model = case["model"]
    X, y, _ = case["fresh"]
    y = y.reshape(len(y), -1)
    residual = ((y - _hand_prediction(model, X)) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    assert_allclose(model.score(X, case["fresh"][1]), np.mean(1.0 - residual / total), rtol=RTOL)


# -- IVLossScorer ------------------------------------------------------------------------------


def test_iv_loss_scorer_stage1_scores_minus_stage1_loss_of_each_held_out_fold():
    data = make_demand(n_samples=200, rho=0.5, random_state=6)
    X, y, Z = data.X, data.y, data.Z
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(
            DFIVRegressor([1, 2], **FAST).set_fit_request(Z=True),
            X,
            y,
            params={"Z": Z},
            scoring=IVLossScorer(stage=1),
            cv=KFold(2),
            return_estimator=True,
            return_indices=True,
            error_score="raise",
        )
    folds = zip(result["estimator"], result["indices"]["test"], result["test_score"], strict=True)
    for model, test, score in folds:
        expected = _hand_stage1_loss(model, X[test], Z[test])
        assert_allclose(score, -expected, rtol=RTOL)
        # The stage-2 loss is another number: the scorer's stage is not ignored.
        assert not np.isclose(expected, _hand_stage2_loss(model, X[test], y[test], Z[test]))
    with pytest.raises(ValueError, match="instruments Z"):
        IVLossScorer(stage=1)(result["estimator"][0], X, y)


# -- early stopping ----------------------------------------------------------------------------


# With tol above the first held-out loss no epoch counts as an improvement, so patience runs
# out after exactly 1 + n_iter_no_change epochs, long before max_iter. A large learning rate
# makes the held-out loss move up and down.
STALLING = {
    **FAST,
    "max_iter": 10,
    "early_stopping": True,
    "n_iter_no_change": 2,
    "tol": 10.0,
    "learning_rate_init": 0.2,
}


def _stopped_after_its_best_epoch(X, y, Z, **extra):
    """A fit that stopped early with its best epoch before the stop, and its parameters.

    The first seed (of ten) whose best epoch comes before the stop is used, so that
    restoring it is not a no-op.
    """
    for random_state in range(10):
        params = {**STALLING, **extra, "random_state": random_state}
        model = DFIVRegressor([1, 2], **params).fit(X, y, Z=Z)
        best_epoch = int(np.argmax(model.validation_scores_)) + 1
        if best_epoch < model.n_iter_:
            return model, params, best_epoch
    pytest.fail("no seed had its best held-out loss before the stop")


def test_early_stopping_stops_restores_the_best_epoch_and_scores_the_validation_rows():
    data = make_demand(n_samples=300, rho=0.5, random_state=4)
    X, y, Z = data.X, data.y, data.Z
    model, params, best_epoch = _stopped_after_its_best_epoch(X, y, Z)
    scores = model.validation_scores_

    assert -scores[0] < params["tol"]
    assert model.n_iter_ == 1 + params["n_iter_no_change"] < params["max_iter"]
    assert len(scores) == len(model.loss_curve_) == model.n_iter_
    assert model.best_validation_score_ == max(scores)

    # The best score is minus the held-out stage-2 loss of the restored networks with their
    # exact heads, in standardised outcome units (y divided by its standard deviation over
    # all rows), on the validation rows: the first ceil(validation_fraction * n) of the split.
    # (During training the exact heads are those of the two halves, the training split.)
    first, second, validation = _split_rows(len(X), params)
    halves = _ridge_heads(model, X, y, Z, first, second)
    held_out = _hand_stage2_loss(model, X[validation], y[validation], Z[validation], halves)
    assert_allclose(-model.best_validation_score_, held_out / y.var(), rtol=RTOL)
    # The final heads: every row, the held-out ones included (they chose the epoch only).
    rows = np.concatenate([first, second, validation])
    stage1, stage2 = _ridge_heads(model, X, y, Z, rows, rows)
    assert_allclose(model.stage1_weights_, stage1, rtol=RTOL, atol=RTOL * np.abs(stage1).max())
    assert_allclose(model.stage2_weights_, stage2, rtol=RTOL, atol=RTOL * np.abs(stage2).max())

    # Training is deterministic given the seed, and a fit of best_epoch epochs holds out the
    # same validation rows: the restored model is that fit.
    short = DFIVRegressor([1, 2], **{**params, "max_iter": best_epoch}).fit(X, y, Z=Z)
    assert short.n_iter_ == best_epoch
    assert_array_equal(short.validation_scores_, scores[:best_epoch])
    assert_array_equal(model.predict(X), short.predict(X))
    assert_array_equal(model.stage2_weights_, short.stage2_weights_)


@pytest.mark.parametrize("tol", [10.0, 0.0], ids=["flat", "strict"])
def test_cross_fitted_stopping_scores_the_stage1_halfs_outcomes_and_holds_out_nothing(tol):
    data = make_demand(n_samples=300, rho=0.5, random_state=4)
    X, y, Z = data.X, data.y, data.Z
    model, params, best_epoch = _stopped_after_its_best_epoch(
        X, y, Z, early_stopping="cross-fit", tol=tol
    )
    scores = model.validation_scores_
    assert model.n_iter_ < params["max_iter"]
    assert len(scores) == model.n_iter_ and model.best_validation_score_ == max(scores)

    first, second, validation = _split_rows(len(X), params)
    assert len(first) + len(second) == len(X)  # no rows held out
    # The score: the stage-2 loss of the stage-1 half's outcomes, their treatment features
    # predicted by a stage-1 head solved on the stage-2 half, the stage-2 head the halves'.
    _, stage2_of_halves = _ridge_heads(model, X, y, Z, first, second)
    stage1_of_second, _ = _ridge_heads(model, X, y, Z, second, second)
    loss = _hand_stage2_loss(
        model, X[first], y[first], Z[first], (stage1_of_second, stage2_of_halves)
    )
    # The networks kept: those of the latest epoch within tol of the best.
    kept = max(e for e, score in enumerate(scores, start=1) if score >= max(scores) - tol)
    assert kept == (model.n_iter_ if tol == 10.0 else best_epoch)
    assert_allclose(-scores[kept - 1], loss / y.var(), rtol=RTOL)
    short = DFIVRegressor([1, 2], **{**params, "max_iter": kept}).fit(X, y, Z=Z)
    assert_array_equal(short.validation_scores_, scores[:kept])
    assert_array_equal(model.predict(X), short.predict(X))


CANDIDATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


def test_auto_penalties_minimise_each_stages_loss_on_the_other_half():
    data = make_demand(n_samples=300, rho=0.5, random_state=6)
    X, y, Z = data.X, data.y, data.Z
    params = {**FAST, "stage1_alpha": "auto", "stage2_alpha": "auto"}
    model = DFIVRegressor([1, 2], **params).fit(X, y, Z=Z)
    first, second, _ = _split_rows(len(X), params)

    # Stage 1: the head solved on the stage-1 half, scored on the stage-2 half's features.
    psi2 = _instrument_features(model, X[second], Z[second])
    phi2 = _treatment_features(model, X[second])
    stage1_losses = []
    for alpha in CANDIDATES:
        stage1, _ = _ridge_heads(model, X, y, Z, first, second, (alpha, 1.0))
        stage1_losses.append(np.mean((_affine(psi2, stage1) - phi2) ** 2))
    assert model.stage1_alpha_ == CANDIDATES[int(np.argmin(stage1_losses))]

    # Stage 2: the head solved on the stage-2 half, scored on the stage-1 half's outcomes,
    # their treatment features predicted by a stage-1 head solved on the stage-2 half.
    alpha1 = model.stage1_alpha_
    other_stage1, _ = _ridge_heads(model, X, y, Z, second, second, (alpha1, 1.0))
    stage2_losses = []
    for alpha in CANDIDATES:
        _, stage2 = _ridge_heads(model, X, y, Z, first, second, (alpha1, alpha))
        loss = _hand_stage2_loss(model, X[first], y[first], Z[first], (other_stage1, stage2))
        stage2_losses.append(loss)
    assert model.stage2_alpha_ == CANDIDATES[int(np.argmin(stage2_losses))]
    # Different criteria, different choices here: neither is a default that leaked through.
    assert (model.stage1_alpha_, model.stage2_alpha_) != (0.1, 0.1)

    # The final heads use the chosen penalties, on every row.
    rows = np.concatenate([first, second])
    stage1, stage2 = _ridge_heads(model, X, y, Z, rows, rows)
    assert_allclose(model.stage1_weights_, stage1, rtol=RTOL, atol=RTOL * np.abs(stage1).max())
    assert_allclose(model.stage2_weights_, stage2, rtol=RTOL, atol=RTOL * np.abs(stage2).max())


def test_fixed_penalties_are_the_fitted_ones():
    data = make_demand(n_samples=200, rho=0.5, random_state=0)
    model = DFIVRegressor([1, 2], **FAST).fit(data.X, data.y, Z=data.Z)
    fixed = (FAST["stage1_alpha"], FAST["stage2_alpha"])
    assert (model.stage1_alpha_, model.stage2_alpha_) == fixed


def test_without_early_stopping_every_epoch_runs_and_the_last_is_kept():
    data = make_demand(n_samples=300, rho=0.5, random_state=4)
    params = {**STALLING, "early_stopping": False}
    model = DFIVRegressor([1, 2], **params).fit(data.X, data.y, Z=data.Z)
    assert model.n_iter_ == params["max_iter"]
    assert model.validation_scores_ is None and model.best_validation_score_ is None


def test_early_stopping_without_refit_keeps_the_best_epochs_running_heads():
    # Restoring the best epoch restores its networks and the heads they were trained with:
    # the model equals a fit that stopped at that epoch, heads included (not the last
    # epoch's heads on the best epoch's networks).
    data = make_demand(n_samples=300, rho=0.5, random_state=4)
    X, y, Z = data.X, data.y, data.Z
    model, params, best_epoch = _stopped_after_its_best_epoch(
        X, y, Z, refit_head=False, batch_size=60
    )
    short = DFIVRegressor([1, 2], **{**params, "max_iter": best_epoch}).fit(X, y, Z=Z)
    assert_array_equal(model.stage1_weights_, short.stage1_weights_)
    assert_array_equal(model.stage2_weights_, short.stage2_weights_)
    assert_array_equal(model.predict(X), short.predict(X))


def test_iv_loss_refuses_an_outcome_of_the_wrong_shape():
    data = make_demand(n_samples=200, rho=0.5, random_state=0)
    model = DFIVRegressor([1, 2], **FAST).fit(data.X, data.y, Z=data.Z)
    with pytest.raises(ValueError, match="y has 100 rows"):
        model.iv_loss(data.X, data.y[:100], data.Z)
    two_columns = np.column_stack([data.y, data.y])
    with pytest.raises(ValueError, match="1 output"):
        model.iv_loss(data.X, two_columns.ravel()[: 2 * len(data.y)].reshape(-1, 2), data.Z)


# -- mini-batch heads --------------------------------------------------------------------------


def _proximal_ridge(features, targets, alpha, lam, previous):
    """argmin ||Y - aug(F) W||^2 + n alpha ||w||^2 + n lam ||W - W_prev||^2 (w: W but intercept).

    Without a previous head: plain ridge (sklearn) with penalty alpha * n.
    """
    n = len(features)
    if previous is None:
        return _stacked(Ridge(alpha=alpha * n).fit(features, targets))
    rows = _aug(features)
    penalty = np.full(rows.shape[1], alpha + lam)
    penalty[-1] = lam
    system = rows.T @ rows + n * np.diag(penalty)
    return np.linalg.solve(system, rows.T @ targets + n * lam * previous)


def test_mini_batch_heads_without_refit_are_the_running_proximal_heads():
    data = make_demand(n_samples=300, rho=0.5, random_state=5)
    X, y, Z = data.X, data.y, data.Z
    params = {
        **FAST,
        "batch_size": 40,
        "proximal_lambda": 0.5,
        "refit_head": False,
        "early_stopping": False,  # every one of max_iter epochs, as the hand schedule runs
        # A step of 1e-30 leaves every float32 weight as it was: the networks stay at their
        # initial values, so their fitted features are the ones every step saw.
        "solver": "sgd",
        "learning_rate_init": 1e-30,
    }
    model = DFIVRegressor([1, 2], **params).fit(X, y, Z=Z)

    def features(rows):
        return (
            _instrument_features(model, X[rows], Z[rows]),
            _treatment_features(model, X[rows]),
            _covariate_features(model, X[rows]),
        )

    # The schedule of dfiv_training.py, by hand. This re-implements (and so pins) internal
    # behaviour besides the split: the batch order comes from a torch.Generator seeded with the
    # fit's seed, two randperms (stage-1 half, then stage-2 half) per epoch, each cut into
    # round(min(n1, n2) / batch_size) nearly equal batches (every row once). Per batch:
    # stage1_iter proximal stage-1 heads on the stage-1 batch; then covariate_iter +
    # max(stage2_iter, 1) proximal stage-2 heads on the stage-2 batch, whose design uses the
    # exact stage-1 ridge of the stage-1 batch. Ridge and its proximal variant commute with
    # the outcome standardisation: raw units throughout.
    first, second, _ = _split_rows(len(X), params)
    generator = torch.Generator().manual_seed(_seed(params))
    size, lam = params["batch_size"], params["proximal_lambda"]
    alpha1, alpha2 = model.stage1_alpha, model.stage2_alpha
    n_batches = max(1, round(min(len(first), len(second)) / size))
    stage1 = stage2 = None
    for _ in range(params["max_iter"]):
        order1 = first[torch.randperm(len(first), generator=generator).numpy()]
        order2 = second[torch.randperm(len(second), generator=generator).numpy()]
        batches = zip(
            np.array_split(order1, n_batches), np.array_split(order2, n_batches), strict=True
        )
        for rows1, rows2 in batches:
            psi1, phi1, _ = features(rows1)
            psi2, _, chi2 = features(rows2)
            for _ in range(params["stage1_iter"]):
                stage1 = _proximal_ridge(psi1, phi1, alpha1, lam, stage1)
            exact1 = _proximal_ridge(psi1, phi1, alpha1, lam, None)
            design = _design(_affine(psi2, exact1), chi2)
            for _ in range(params["covariate_iter"] + max(params["stage2_iter"], 1)):
                stage2 = _proximal_ridge(design, y[rows2, None], alpha2, lam, stage2)

    assert_allclose(model.stage1_weights_, stage1, rtol=RTOL, atol=RTOL * np.abs(stage1).max())
    assert_allclose(model.stage2_weights_, stage2, rtol=RTOL, atol=RTOL * np.abs(stage2).max())
    # ...which are not the exact heads of the full halves (what refit_head=True gives).
    exact_stage1, exact_stage2 = _ridge_heads(model, X, y, Z, first, second)
    assert not np.allclose(model.stage1_weights_, exact_stage1, rtol=1e-3)
    assert not np.allclose(model.stage2_weights_, exact_stage2, rtol=1e-3)

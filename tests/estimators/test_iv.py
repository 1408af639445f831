"""DFIVRegressor as a scikit-learn estimator: accuracy, covariates, Z routing, selection, errors."""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.inspection import partial_dependence
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skcflo import DFIVRegressor, IVLossScorer, MLPBackbone, WeakInstrumentWarning
from skcflo.datasets import make_demand, make_demand_test
from tests.helpers import InterruptedNet

SMALL_NET = MLPBackbone(hidden_layer_sizes=(16,))
SMALL = {
    "treatment_backbone": SMALL_NET,
    "instrument_backbone": SMALL_NET,
    "covariate_backbone": SMALL_NET,
    "max_iter": 5,
    "stage1_iter": 3,
    "covariate_iter": 3,
    "device": "cpu",
    "random_state": 0,
}
TINY = {**SMALL, "max_iter": 2, "stage1_iter": 2, "covariate_iter": 2}


@pytest.fixture(scope="module")
def demand():
    return make_demand(n_samples=600, rho=0.9, random_state=0)


@pytest.fixture(scope="module")
def small_demand():
    return make_demand(n_samples=200, rho=0.9, random_state=1)


@pytest.fixture(scope="module")
def fitted(demand):
    return DFIVRegressor([1, 2], **SMALL).fit(demand.X, demand.y, Z=demand.Z)


def _test_mse(model):
    test = make_demand_test()
    return float(np.mean((model.predict(test.X) - test.y) ** 2)), float(test.y.var())


# -- accuracy on the demand design --------------------------------------------------------


def test_demand_fit_explains_structural_function_on_test_grid(fitted):
    # Measured with these settings: R^2 0.73-0.78 over 8 data/model seeds (test MSE ~7300
    # against Var h ~32,600 on the grid); 0.5 leaves a wide margin.
    mse, variance = _test_mse(fitted)
    assert np.isfinite(mse)
    assert 1.0 - mse / variance > 0.5


def test_demand_fit_needs_a_relevant_instrument(demand):
    # The price effect is identified only through Z: with Z permuted (irrelevant) the
    # structural fit on the grid is far worse (measured 13,800 vs 7,300 for seed 0).
    good = DFIVRegressor([1, 2], **SMALL).fit(demand.X, demand.y, Z=demand.Z)
    permuted = np.random.default_rng(0).permutation(demand.Z)
    with pytest.warns(WeakInstrumentWarning):
        broken = DFIVRegressor([1, 2], **SMALL).fit(demand.X, demand.y, Z=permuted)
    assert _test_mse(good)[0] < 0.8 * _test_mse(broken)[0]


def test_demand_fit_training_loss_decreases(fitted):
    assert fitted.n_iter_ == SMALL["max_iter"] == len(fitted.loss_curve_)
    assert np.all(np.isfinite(fitted.loss_curve_))
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


MINI_BATCH = {**SMALL, "batch_size": 100, "proximal_lambda": 1.0}


def test_proximal_mini_batch_variant_explains_structural_function(demand):
    model = DFIVRegressor([1, 2], **MINI_BATCH).fit(demand.X, demand.y, Z=demand.Z)
    mse, variance = _test_mse(model)
    assert 1.0 - mse / variance > 0.5


def test_without_refit_the_heads_are_the_running_proximal_heads(demand):
    refitted = DFIVRegressor([1, 2], **MINI_BATCH).fit(demand.X, demand.y, Z=demand.Z)
    running = DFIVRegressor([1, 2], refit_head=False, **MINI_BATCH).fit(
        demand.X, demand.y, Z=demand.Z
    )
    # Same seed, same training: the networks agree, only the final heads differ.
    for name in ("treatment_backbone_", "instrument_backbone_", "covariate_backbone_"):
        for a, b in zip(
            getattr(refitted, name).state_dict().values(),
            getattr(running, name).state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)
    assert not np.allclose(refitted.stage2_weights_, running.stage2_weights_)
    mse, variance = _test_mse(running)
    assert 1.0 - mse / variance > 0.3


# -- covariates: indices, mask, names ------------------------------------------------------


@pytest.mark.parametrize(
    "covariates",
    [
        [False, True, True],
        np.array([False, True, True]),
        [-2, -1],
        ["time", "emotion"],
        ["emotion", "time"],
    ],
)
def test_covariate_specifications_give_same_mask_and_predictions(small_demand, covariates):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    reference = DFIVRegressor([1, 2], **TINY).fit(X, y, Z=Z)
    frame = pd.DataFrame(X, columns=["price", "time", "emotion"])
    model = DFIVRegressor(covariates, **TINY).fit(frame, y, Z=Z)
    assert_array_equal(reference.covariate_mask_, [False, True, True])
    assert_array_equal(model.covariate_mask_, reference.covariate_mask_)
    assert_array_equal(model.predict(frame), reference.predict(X))


def test_covariate_mask_given_for_numpy_input_matches_indices(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    by_index = DFIVRegressor([1, 2], **TINY).fit(X, y, Z=Z)
    by_mask = DFIVRegressor([False, True, True], **TINY).fit(X, y, Z=Z)
    assert_array_equal(by_mask.covariate_mask_, by_index.covariate_mask_)
    assert_array_equal(by_mask.predict(X), by_index.predict(X))


# -- routing Z ----------------------------------------------------------------------------


def test_pipeline_routes_z_by_step_prefix_and_by_metadata_routing_alike(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    prefixed = Pipeline(
        [("scale", StandardScaler()), ("dfivregressor", DFIVRegressor([1, 2], **TINY))]
    )
    prefixed.fit(X, y, dfivregressor__Z=Z)
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = DFIVRegressor([1, 2], **TINY).set_fit_request(Z=True)
        routed = Pipeline([("scale", StandardScaler()), ("dfivregressor", estimator)])
        routed.fit(X, y, Z=Z)
        routed_predictions = routed.predict(X)
    assert_array_equal(routed_predictions, prefixed.predict(X))
    # Z reached the estimator: fitting without it (X as its own instrument) differs.
    alone = Pipeline(
        [("scale", StandardScaler()), ("dfivregressor", DFIVRegressor([1, 2], **TINY))]
    )
    assert not np.allclose(alone.fit(X, y).predict(X), prefixed.predict(X))


def test_grid_search_slices_z_per_fold(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    # DFIVRegressor rejects a Z whose row count differs from X (see the bad-input tests),
    # and error_score='raise' surfaces that: the search succeeding means Z was sliced.
    search = GridSearchCV(
        DFIVRegressor([1, 2], **TINY), {"stage2_alpha": [0.01, 1.0]}, cv=2, error_score="raise"
    ).fit(X, y, Z=Z)
    predictions = search.best_estimator_.predict(X[:5])
    assert predictions.shape == (5,)
    assert np.all(np.isfinite(predictions))


def test_grid_search_with_iv_loss_scorer_scores_held_out_stage2_loss(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            DFIVRegressor([1, 2], **TINY).set_fit_request(Z=True),
            {"stage2_alpha": [0.01, 1.0]},
            scoring=IVLossScorer(),
            cv=2,
            error_score="raise",
        ).fit(X, y, Z=Z)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)
    best = int(np.argmax(scores))
    assert search.best_params_ == search.cv_results_["params"][best]

    # One fold by hand: fit on KFold(2)'s first training half, score -iv_loss on its test half.
    train, test = next(KFold(2).split(X))
    for index, params in enumerate(search.cv_results_["params"]):
        model = DFIVRegressor([1, 2], **TINY).set_params(**params)
        model.fit(X[train], y[train], Z=Z[train])
        expected = -model.iv_loss(X[test], y[test], Z[test])
        assert_allclose(search.cv_results_["split0_test_score"][index], expected, rtol=1e-10)


def test_iv_loss_scorer_without_z_asks_for_metadata_routing(fitted, demand):
    with pytest.raises(ValueError, match="metadata routing"):
        IVLossScorer()(fitted, demand.X, demand.y)


def test_iv_loss_scorer_in_search_without_routing_fails_loudly(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    search = GridSearchCV(
        DFIVRegressor([1, 2], **TINY),
        {"stage2_alpha": [0.1]},
        scoring=IVLossScorer(),
        cv=2,
        error_score="raise",
    )
    with pytest.raises(ValueError, match="metadata routing"):
        search.fit(X, y, Z=Z)


# -- iv_loss ------------------------------------------------------------------------------


def test_iv_loss_stages_are_finite_and_stage_is_validated(fitted, demand):
    X, y, Z = demand.X, demand.y, demand.Z
    stage1 = fitted.iv_loss(X, y, Z, stage=1)
    stage2 = fitted.iv_loss(X, y, Z, stage=2)
    assert np.isfinite(stage1) and stage1 >= 0
    assert np.isfinite(stage2) and stage2 >= 0
    assert stage2 == fitted.iv_loss(X, y, Z)  # stage 2 is the default
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        fitted.iv_loss(X, y, Z, stage=3)


def test_iv_loss_stage2_prefers_true_outcomes_to_shuffled_ones(fitted, demand):
    shuffled = np.random.default_rng(0).permutation(demand.y)
    assert fitted.iv_loss(demand.X, demand.y, demand.Z) < fitted.iv_loss(
        demand.X, shuffled, demand.Z
    )


def test_iv_loss_requires_the_instruments_the_model_was_fitted_with(fitted, demand):
    X, y, Z = demand.X, demand.y, demand.Z
    assert fitted.n_instruments_ == Z.shape[1]
    with pytest.raises(ValueError, match="pass the held-out Z"):
        fitted.iv_loss(X, y)
    with pytest.raises(ValueError, match="Z has 2 column"):
        fitted.iv_loss(X, y, np.hstack([Z, Z]))


def test_iv_loss_of_model_fitted_without_z_refuses_a_z(small_demand):
    X, y = small_demand.X, small_demand.y
    model = DFIVRegressor([1, 2], max_iter=1, random_state=0).fit(X, y)
    assert model.n_instruments_ is None
    assert np.isfinite(model.iv_loss(X, y))
    with pytest.raises(ValueError, match="fitted without Z"):
        model.iv_loss(X, y, small_demand.Z)


# -- scikit-learn tooling -----------------------------------------------------------------


@pytest.mark.parametrize(("feature", "n_points"), [(0, 100), (2, 7)])
def test_partial_dependence_returns_curve_over_grid(fitted, demand, feature, n_points):
    result = partial_dependence(fitted, demand.X, features=[feature], kind="average")
    assert len(result["grid_values"][0]) == n_points
    assert result["average"].shape == (1, n_points)
    assert np.all(np.isfinite(result["average"]))


def test_pickle_round_trip_gives_identical_predictions(fitted, demand):
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.predict(demand.X), fitted.predict(demand.X))
    assert restored.iv_loss(demand.X, demand.y, demand.Z) == fitted.iv_loss(
        demand.X, demand.y, demand.Z
    )


def test_clone_is_unfitted_with_same_params(fitted):
    copy = clone(fitted)
    assert not hasattr(copy, "stage2_weights_")
    assert copy.get_params()["covariates"] == [1, 2]
    assert copy.get_params()["max_iter"] == SMALL["max_iter"]


def test_same_random_state_gives_identical_predictions(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    first = DFIVRegressor([1, 2], **TINY).fit(X, y, Z=Z).predict(X)
    second = DFIVRegressor([1, 2], **TINY).fit(X, y, Z=Z).predict(X)
    other = DFIVRegressor([1, 2], **{**TINY, "random_state": 1}).fit(X, y, Z=Z).predict(X)
    assert_array_equal(first, second)
    assert not np.allclose(first, other)


# -- bad input: clear errors before any network is built ------------------------------------


def _bad_input_cases(X, Z):
    frame = pd.DataFrame(X, columns=["price", "time", "emotion"])
    nan_z = Z.copy()
    nan_z[3, 0] = np.nan
    return {
        "z_rows": ([1, 2], X, Z[:-1], "Z has 199 rows but X has 200"),
        "z_nan": ([1, 2], X, nan_z, "Z contains NaN"),
        "unknown_names": (["time", "season"], frame, Z, r"season.*are not columns of X"),
        "index_out_of_range": ([1, 3], X, Z, "out of range for 3 features"),
        "all_covariates": ([0, 1, 2], X, Z, "no treatment is left"),
        "constant_instrument": ([1, 2], X, np.full_like(Z, 2.5), "instruments Z are constant"),
        "short_mask": ([True, False], X, Z, "boolean covariates mask needs 3 entries, got 2"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "z_rows",
        "z_nan",
        "unknown_names",
        "index_out_of_range",
        "all_covariates",
        "constant_instrument",
        "short_mask",
    ],
)
def test_bad_input_raises_clear_error_before_training(small_demand, case):
    covariates, X, Z, message = _bad_input_cases(small_demand.X, small_demand.Z)[case]
    built = []

    def recording_backbone(n_features_in):
        built.append(n_features_in)
        return SMALL_NET.build_module(n_features_in)

    params = {**TINY, "treatment_backbone": recording_backbone}
    params.update(instrument_backbone=recording_backbone, covariate_backbone=recording_backbone)
    model = DFIVRegressor(covariates, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, small_demand.y, Z=Z)
    assert built == []
    assert not hasattr(model, "stage2_weights_")


def test_unknown_covariate_names_are_listed_as_plain_strings(small_demand):
    frame = pd.DataFrame(small_demand.X, columns=["price", "time", "emotion"])
    model = DFIVRegressor(["time", "season"], **TINY)
    with pytest.raises(ValueError, match=r"covariates \['season'\] are not columns of X"):
        model.fit(frame, small_demand.y, Z=small_demand.Z)


def test_failed_fit_leaves_fitted_estimator_usable(small_demand):
    X, y, Z = small_demand.X, small_demand.y, small_demand.Z
    model = DFIVRegressor([1, 2], **TINY).fit(X, y, Z=Z)
    before = model.predict(X)
    weights = model.stage2_weights_.copy()
    # Wider X (resets n_features_in_ during validation) and a NaN instrument.
    wider = np.hstack([X, np.ones((len(X), 1))])
    nan_z = Z.copy()
    nan_z[0, 0] = np.nan
    with pytest.raises(ValueError, match="Z contains NaN"):
        model.fit(wider, y, Z=nan_z)
    assert model.n_features_in_ == 3
    assert_array_equal(model.stage2_weights_, weights)
    assert_array_equal(model.predict(X), before)


def test_image_treatment_takes_a_convolutional_treatment_network():
    from torch import nn

    from skcflo.datasets import make_dsprites

    data = make_dsprites(n_samples=120, random_state=0)
    conv = nn.Sequential(
        nn.Unflatten(1, (1, 64, 64)),
        nn.Conv2d(1, 4, kernel_size=8, stride=8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 8),
    )
    model = DFIVRegressor(**{**TINY, "treatment_backbone": conv})
    model.fit(data.X, data.y, Z=data.Z)
    assert isinstance(model.treatment_backbone_[1][1], nn.Conv2d)
    assert conv[1].weight.grad is None  # the user's module was copied, not trained
    assert np.all(np.isfinite(model.predict(data.X[:5])))


# -- progress, Ctrl-C, divergence ----------------------------------------------------------


def test_verbose_shows_a_progress_bar(small_demand, capsys):
    DFIVRegressor([1, 2], verbose=True, **TINY).fit(
        small_demand.X, small_demand.y, Z=small_demand.Z
    )
    err = capsys.readouterr().err
    assert "2/2" in err and "stage-2 loss=" in err


def test_ctrl_c_keeps_the_last_completed_epoch(small_demand):
    data = small_demand
    torch.manual_seed(0)
    net = InterruptedNet(1, interrupt_at=5, width=8)  # stage2_iter=3: stops in epoch 2
    params = {**TINY, "max_iter": 4, "stage2_iter": 3, "treatment_backbone": net}
    with pytest.warns(UserWarning, match="interrupted; the model keeps the state after epoch 1"):
        interrupted = DFIVRegressor([1, 2], **params).fit(data.X, data.y, Z=data.Z)
    assert interrupted.n_iter_ == 1
    net.interrupt_at = -1
    reference = DFIVRegressor([1, 2], **{**params, "max_iter": 1}).fit(data.X, data.y, Z=data.Z)
    assert_allclose(interrupted.predict(data.X), reference.predict(data.X))


def test_divergence_warns_and_keeps_a_finite_model(small_demand):
    data = small_demand
    # A linear treatment network cannot saturate: a huge step overflows its features.
    linear = MLPBackbone(hidden_layer_sizes=(), output_size=4)
    params = {**TINY, "max_iter": 5, "treatment_backbone": linear}
    model = DFIVRegressor([1, 2], **{**params, "solver": "sgd", "learning_rate_init": 1e38})
    with pytest.warns(Warning, match="diverged"):
        model.fit(data.X, data.y, Z=data.Z)
    assert model.n_iter_ < params["max_iter"]
    assert np.all(np.isfinite(model.predict(data.X)))


def test_early_stopping_on_the_held_out_iv_loss_restores_the_best_epoch(demand):
    params = {**SMALL, "max_iter": 30, "early_stopping": True, "n_iter_no_change": 2}
    model = DFIVRegressor([1, 2], **params).fit(demand.X, demand.y, Z=demand.Z)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ <= 30
    assert all(score < 0 for score in scores)  # negative held-out stage-2 losses
    assert model.best_validation_score_ == max(scores)
    if model.n_iter_ < 30:
        assert model.n_iter_ - (int(np.argmax(scores)) + 1) >= 2
    mse, variance = _test_mse(model)
    assert 1.0 - mse / variance > 0.5


@pytest.mark.parametrize("schedule", ["cosine", "step", "invscaling", "adaptive"])
def test_learning_rate_schedules_train_finite_models(small_demand, schedule):
    model = DFIVRegressor([1, 2], learning_rate=schedule, **TINY)
    model.fit(small_demand.X, small_demand.y, Z=small_demand.Z)
    assert np.all(np.isfinite(model.loss_curve_))
    assert np.all(np.isfinite(model.predict(small_demand.X)))


@pytest.mark.parametrize("batch_size, rate", [("full", 1e-2), (50, 1e-3)])
def test_auto_learning_rate_is_smaller_for_mini_batches(batch_size, rate):
    # Mini-batches take one optimiser step per batch: 'auto' lowers the rate for them.
    data = make_demand(n_samples=300, rho=0.5, random_state=0)
    common = {**SMALL, "batch_size": batch_size}
    auto = DFIVRegressor([1, 2], **common).fit(data.X, data.y, Z=data.Z)
    explicit = DFIVRegressor([1, 2], **common, learning_rate_init=rate)
    explicit.fit(data.X, data.y, Z=data.Z)
    other = DFIVRegressor([1, 2], **common, learning_rate_init=rate * 3)
    other.fit(data.X, data.y, Z=data.Z)
    np.testing.assert_array_equal(auto.predict(data.X), explicit.predict(data.X))
    assert not np.array_equal(auto.predict(data.X), other.predict(data.X))


@pytest.mark.parametrize(
    ("batch_size", "expected"), [("full", 20), (64, 5)], ids=["full batches", "mini-batches"]
)
def test_auto_steps_per_batch_are_fewer_with_mini_batches(batch_size, expected):
    options = DFIVRegressor(batch_size=batch_size)._options()
    assert (options.stage1_iter, options.covariate_iter) == (expected, expected)
    explicit = DFIVRegressor(batch_size=batch_size, stage1_iter=7, covariate_iter=0)._options()
    assert (explicit.stage1_iter, explicit.covariate_iter) == (7, 0)

"""Hyper-parameter searches on a cluster give the same results as the search run locally.

Each search below runs twice on the same data: sequentially in this process
(``n_jobs=1``) and on a cluster through joblib's dask (or ray) backend, where
the estimators are pickled to worker processes, fitted there and scored there.
With a fixed ``random_state`` a CPU fit is a deterministic function of its
inputs *and of the number of torch threads* (the order of float reductions
depends on it: 1 and 2 threads differ by ~1e-13 on the same fit). The suite
runs on one torch thread (``conftest.py``) and dask's nanny starts each worker
with ``OMP_NUM_THREADS=1``, so the scores are compared for exact equality, not
with a tolerance. ``docs/scaling.rst`` states the guarantee for users.

The estimators keep ``device='auto'``: the device must be resolved in the
worker at fit time, so that a worker that sees one GPU trains on it and a CPU
worker on its CPU, whatever the client has.

The test extra installs both engines. The dask tests skip where ``distributed``
is absent (the ``distributed`` extra alone), the ray test where ``ray`` is (the
``ray`` extra alone).
"""

from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_array_equal
from scipy.stats import loguniform
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcflo import CFLORegressor, DFIVRegressor, IVLossScorer, MLPBackbone
from skcflo._estimators.glue import build_seeded_backbone, resolve_device
from skcflo.datasets import make_demand

TINY_NET = MLPBackbone(hidden_layer_sizes=(8,))
DFIV_TINY = {
    "treatment_backbone": TINY_NET,
    "instrument_backbone": TINY_NET,
    "covariate_backbone": TINY_NET,
    "max_iter": 2,
    "stage1_iter": 2,
    "covariate_iter": 2,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def dask_client():
    """A local cluster of two single-threaded worker processes, shared by the module.

    ``processes=True`` makes every estimator travel to its worker by pickle, as
    on a real cluster. Each worker runs one tiny fit here, so that the ~10 s
    their first imports of torch, its optimisers and scikit-learn take on two
    cores is counted as set-up, not charged to whichever test comes first.
    """
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            # No dashboard, and the scheduler's HTTP server on a free port rather than
            # 8787, which another cluster on this machine may hold (a warning here).
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        warm_up = CFLORegressor(hidden_layer_sizes=(2,), max_iter=1, random_state=0)
        client.run(warm_up.fit, np.ones((4, 1)), np.arange(4.0))
        yield client


@pytest.fixture(scope="module")
def regression():
    return make_regression(n_samples=90, n_features=4, noise=5.0, random_state=0)


@pytest.fixture(scope="module")
def demand():
    return make_demand(n_samples=160, rho=0.9, random_state=0)


def _cflo_pipeline():
    return make_pipeline(
        StandardScaler(), CFLORegressor(backbone=TINY_NET, max_iter=4, random_state=0)
    )


CFLO_GRID = {
    "cfloregressor__alpha": [0.01, 1.0],
    "cfloregressor__head_update": ["proximal", "full"],
    "cfloregressor__backbone__hidden_layer_sizes": [(4,), (8,)],
}


def _run_both_ways(make_search, fit, backend="dask", **backend_params):
    """The search fitted locally and on the cluster, as ``(local, remote)``."""
    local = fit(make_search(n_jobs=1))
    with joblib.parallel_config(backend=backend, **backend_params):
        remote = fit(make_search(n_jobs=-1))
    return local, remote


def _assert_same_search(local, remote):
    """Every fold's score, the ranks, the candidates and the winner are identical."""
    split_keys = [key for key in local.cv_results_ if key.startswith("split")]
    assert split_keys, "no per-fold scores recorded"
    for key in [*split_keys, "mean_test_score", "rank_test_score"]:
        assert_array_equal(remote.cv_results_[key], local.cv_results_[key], err_msg=key)
    assert list(remote.cv_results_["params"]) == list(local.cv_results_["params"])
    assert remote.best_params_ == local.best_params_
    # A degenerate search (all candidates tied or failed) would compare equal vacuously.
    assert np.all(np.isfinite(local.cv_results_["mean_test_score"]))
    assert len(np.unique(local.cv_results_["mean_test_score"])) > 1


# -- the workers' setting that exact equality rests on ------------------------------------


def test_dask_workers_run_torch_on_one_thread(dask_client):
    # dask's nanny starts workers with OMP_NUM_THREADS=1 (config
    # distributed.nanny.pre-spawn-environ); torch sizes its intra-op pool from it.
    threads = dask_client.run(torch.get_num_threads)
    assert len(threads) == 2
    assert set(threads.values()) == {1}


# -- CFLORegressor ------------------------------------------------------------------------


def test_grid_search_on_dask_matches_local_search(dask_client, regression):
    X, y = regression
    local, remote = _run_both_ways(
        lambda n_jobs: GridSearchCV(_cflo_pipeline(), CFLO_GRID, cv=3, n_jobs=n_jobs),
        lambda search: search.fit(X, y),
    )
    _assert_same_search(local, remote)
    assert len(local.cv_results_["params"]) == 8


def test_randomized_search_on_dask_matches_local_search(dask_client, regression):
    X, y = regression
    distributions = {
        "cfloregressor__alpha": loguniform(1e-3, 1.0),
        "cfloregressor__learning_rate_init": loguniform(1e-3, 1e-1),
    }
    local, remote = _run_both_ways(
        lambda n_jobs: RandomizedSearchCV(
            _cflo_pipeline(), distributions, n_iter=4, cv=3, random_state=0, n_jobs=n_jobs
        ),
        lambda search: search.fit(X, y),
    )
    _assert_same_search(local, remote)


# -- DFIVRegressor: Z travels with each fold ----------------------------------------------


def test_dfiv_grid_search_with_instruments_on_dask_matches_local(dask_client, demand):
    grid = {"stage1_alpha": [0.01, 0.1], "stage2_alpha": [0.01, 1.0]}
    local, remote = _run_both_ways(
        lambda n_jobs: GridSearchCV(DFIVRegressor([1, 2], **DFIV_TINY), grid, cv=2, n_jobs=n_jobs),
        lambda search: search.fit(demand.X, demand.y, Z=demand.Z),
    )
    _assert_same_search(local, remote)


def test_dfiv_iv_loss_scorer_with_metadata_routing_on_dask_matches_local(dask_client, demand):
    # scikit-learn's delayed() ships the client's config (routing enabled) with each task,
    # so the scorer gets each held-out fold's Z in the worker.
    grid = {"stage2_alpha": [0.01, 0.1, 1.0]}
    with sklearn.config_context(enable_metadata_routing=True):
        local, remote = _run_both_ways(
            lambda n_jobs: GridSearchCV(
                DFIVRegressor([1, 2], **DFIV_TINY).set_fit_request(Z=True),
                grid,
                scoring=IVLossScorer(),
                cv=2,
                n_jobs=n_jobs,
            ),
            lambda search: search.fit(demand.X, demand.y, Z=demand.Z),
        )
    _assert_same_search(local, remote)
    assert np.all(local.cv_results_["mean_test_score"] < 0)  # negative IV losses


# -- devices ------------------------------------------------------------------------------


def test_device_is_resolved_in_each_worker_at_fit_time(dask_client, regression, monkeypatch):
    """A client that sees CUDA does not impose it on workers that do not.

    ``device='auto'`` travels to the worker unresolved. Were it resolved here,
    on a client that reports CUDA, every worker would try CUDA on this CPU-only
    build of torch and fail; ``error_score='raise'`` would surface that.
    """
    X, y = regression
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    search = GridSearchCV(
        _cflo_pipeline(),
        {"cfloregressor__alpha": [0.01, 1.0]},
        cv=2,
        refit=False,  # the refit would run here, on the client's pretended GPU
        error_score="raise",
        n_jobs=-1,
    )
    with joblib.parallel_config(backend="dask"):
        search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.get_params()["estimator__cfloregressor__device"] == "auto"


@pytest.mark.parametrize("kind", ["cflo", "dfiv"])
def test_models_fitted_on_workers_come_back_on_cpu_and_predict_here(
    dask_client, regression, demand, kind
):
    if kind == "cflo":
        estimator, (X, y), params = _cflo_pipeline(), regression, {}
    else:
        estimator = DFIVRegressor([1, 2], **DFIV_TINY)
        X, y, params = demand.X, demand.y, {"Z": demand.Z}
    local = cross_validate(estimator, X, y, cv=2, params=params, return_estimator=True)
    with joblib.parallel_config(backend="dask"):
        remote = cross_validate(
            estimator, X, y, cv=2, params=params, return_estimator=True, n_jobs=-1
        )
    for here, there in zip(local["estimator"], remote["estimator"], strict=True):
        fitted = there[-1] if kind == "cflo" else there
        modules = [value for value in vars(fitted).values() if isinstance(value, torch.nn.Module)]
        assert modules, "no fitted network found"
        for module in modules:
            tensors = [*module.parameters(), *module.buffers()]
            assert {tensor.device.type for tensor in tensors} == {"cpu"}
        assert_array_equal(there.predict(X), here.predict(X))


# -- threads in one process ---------------------------------------------------------------


def test_fits_in_concurrent_threads_draw_their_own_initial_weights():
    """A dask worker with several threads, or joblib's threading backend, runs fits
    side by side in one process, where torch's layer initialisation shares one
    global RNG. Each seeded build must still give the weights of its own seed.
    """
    spec = MLPBackbone(hidden_layer_sizes=(32, 32))

    def weights(seed):
        module = build_seeded_backbone(spec, 5, seed, "cpu")
        return torch.cat([parameter.detach().flatten() for parameter in module.parameters()])

    seeds = list(range(40))
    alone = [weights(seed) for seed in seeds]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(weights, seeds))
    # Without the lock in build_seeded_backbone, 4-5 of these 40 builds mixed seeds.
    assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))


def test_threading_backend_search_matches_local_search(regression):
    X, y = regression
    local, threaded = _run_both_ways(
        lambda n_jobs: GridSearchCV(_cflo_pipeline(), CFLO_GRID, cv=3, n_jobs=n_jobs),
        lambda search: search.fit(X, y),
        backend="threading",
    )
    _assert_same_search(local, threaded)


# -- ray ----------------------------------------------------------------------------------


def test_grid_search_on_ray_matches_local_search(regression):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    X, y = regression
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Ray sets OMP_NUM_THREADS to a task's CPUs (1) when unset, so torch runs one
        # thread there too. A small grid: ray's joblib backend starts fresh worker
        # processes for every search, each paying the imports of torch and skcflo.
        grid = {key: CFLO_GRID[key] for key in list(CFLO_GRID)[:2]}
        local, remote = _run_both_ways(
            lambda n_jobs: GridSearchCV(_cflo_pipeline(), grid, cv=2, n_jobs=n_jobs),
            lambda search: search.fit(X, y),
            backend="ray",
        )
        _assert_same_search(local, remote)
    finally:
        ray.shutdown()

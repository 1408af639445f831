"""scikit-learn glue shared by the estimators.

Device and seed resolution, conversion of validated arrays to tensors,
seeded construction of backbones, and the rollback that keeps a fitted
estimator usable when a later ``fit`` fails.
"""

import contextlib
import copy
import functools
import threading
import warnings

import joblib
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._networks.backbones import build_backbone

_SEED_RANGE = 2**31 - 1

# torch initialises layers from its process-wide RNG, which concurrent fits in
# one process (a dask worker with several threads, joblib's threading backend)
# would otherwise seed and draw from in turn, mixing each other's weights.
_GLOBAL_RNG_LOCK = threading.RLock()


def resolve_device(device, *, fall_back_to_cpu=False):
    """The :class:`torch.device` a ``device`` parameter asks for.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. A CUDA
    device that is not available raises ``ValueError``, or, with
    ``fall_back_to_cpu=True`` (prediction with a model trained on a GPU and
    loaded on a machine without one), gives the CPU with a warning.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:<index>' or a torch.device; "
            f"got {device!r}."
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        message = f"device={device!r} was requested but CUDA is not available here"
        if not fall_back_to_cpu:
            raise ValueError(message + ".")
        warnings.warn(message + "; predicting on the CPU.", UserWarning, stacklevel=3)
        return torch.device("cpu")
    return resolved


@contextlib.contextmanager
def torch_threads(n_jobs):
    """Run the block with ``n_jobs`` torch intra-op threads, scikit-learn style.

    ``None`` means 1 unless inside a ``joblib.parallel_backend`` context, -1
    every CPU (:func:`joblib.effective_n_jobs`). The previous count is restored
    afterwards. torch's count is process-wide: fits running at once in threads
    of one process share it (processes, as in ``GridSearchCV(n_jobs=...)``,
    do not).
    """
    wanted = joblib.effective_n_jobs(n_jobs)
    previous = torch.get_num_threads()
    if wanted == previous:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def uses_n_jobs_threads(method):
    """Decorate an estimator method to run with ``self.n_jobs`` torch threads."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with torch_threads(self.n_jobs):
            return method(self, *args, **kwargs)

    return run


def draw_seed(random_state):
    """An integer seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(_SEED_RANGE))


def make_generator(seed):
    """A CPU :class:`torch.Generator` seeded with ``seed`` (shuffling, head init)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def build_seeded_backbone(backbone, n_features_in, seed, device):
    """Build the backbone with weights drawn from ``seed``, on ``device``.

    The global torch RNG is forked, so a fit neither reads nor advances it,
    and held under a lock, so fits running in concurrent threads each draw
    from their own seed. Weights are drawn on the CPU so that a seed gives the
    same initial network whatever the device.
    """
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_backbone(backbone, n_features_in)
    return module.to(device)


def prediction_input(estimator, X):
    """Checks shared by ``predict``-like methods: fitted, valid ``X``, device.

    Returns ``X`` validated to float32 (the networks' dtype) and the device to
    predict on (the CPU, with a warning, when a requested GPU is absent).
    """
    check_is_fitted(estimator)
    X = validate_data(estimator, X, reset=False, dtype=np.float32)
    return X, resolve_device(estimator.device, fall_back_to_cpu=True)


def copy_to_device(module, device):
    """``module`` itself on the CPU, else a copy on ``device``.

    Fitted modules stay on the CPU so that a pickled model loads anywhere;
    prediction on a GPU works on a copy.
    """
    if torch.device(device).type == "cpu":
        return module
    return copy.deepcopy(module).to(device)


def as_tensor(array, device, dtype=torch.float32):
    """Copy a validated numpy array into a tensor on ``device``.

    Always copies, so read-only inputs (memmaps) are never shared with torch.
    """
    return torch.from_numpy(np.array(array, dtype=torch_to_numpy_dtype(dtype))).to(device)


def torch_to_numpy_dtype(dtype):
    return torch.empty(0, dtype=dtype).numpy().dtype


def warn_if_ended_early(result, stacklevel=4):
    """Warn when training stopped before ``max_iter`` by divergence or Ctrl-C.

    ``result`` is a training result with ``diverged``, ``interrupted`` and
    ``n_iter``; in both cases the networks of epoch ``n_iter`` were kept and the
    heads solved exactly on them.
    """
    if result.diverged:
        warnings.warn(
            "Training diverged (non-finite loss or features); the model keeps the state "
            f"after epoch {result.n_iter}, with the head refitted exactly. "
            "Lower learning_rate_init.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    if result.interrupted:
        warnings.warn(
            f"Training interrupted; the model keeps the state after epoch {result.n_iter}.",
            UserWarning,
            stacklevel=stacklevel,
        )


@contextlib.contextmanager
def rollback_on_failure(estimator):
    """Restore the estimator's attributes if the body raises.

    ``validate_data(reset=True)`` writes ``n_features_in_`` before training
    starts; without the rollback a fit that fails afterwards would leave a
    previously fitted estimator half-overwritten.
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise

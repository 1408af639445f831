"""Data-parallel training across processes with ``torch.distributed``.

Inside :func:`data_parallel`, ``CFLORegressor.fit`` trains as one model spread
over every process of the default process group (launched with ``torchrun``,
one process per GPU or per group of CPU cores):

* every process holds the whole training set and draws the same shuffled
  order of global mini-batches; each takes its own contiguous share of every
  global batch (:meth:`DataParallel.shard`);
* the backbone is wrapped in
  :class:`~torch.nn.parallel.DistributedDataParallel`, which averages its
  gradients; the loss of each share is scaled so that the average is the
  gradient of the global batch's mean squared error;
* the head's sufficient statistics (``Phi^T Phi``, ``Phi^T Y``, the row count
  and ``sum y**2``) of each global batch, and of the exact fits over all data,
  are summed across processes (:meth:`DataParallel.reduce_statistics`), so
  every process solves the same system, proximal terms included, and holds
  the same head.

The result matches a single-process fit with the same global batch size up
to floating-point summation order; ``tests/training/test_data_parallel.py`` states and
checks the tolerance. Example ``train.py``, run as ``torchrun --nproc-per-node
2 train.py``::

    from sklearn.datasets import make_friedman1
    from skcflo import CFLORegressor
    from skcflo.distributed import data_parallel

    X, y = make_friedman1(n_samples=20000, random_state=0)
    model = CFLORegressor(batch_size=512, random_state=0)
    with data_parallel() as group:
        model.fit(X, y)
    if group.rank == 0:
        print(model.score(X, y))
"""

import contextlib
import contextvars
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ._ridge.head import RidgeStatistics

__all__ = ["DataParallel", "current_data_parallel", "data_parallel"]

_ACTIVE = contextvars.ContextVar("skcflo_data_parallel", default=None)


@dataclass(frozen=True)
class DataParallel:
    """The process group a fit is spread over, and this process's place in it.

    Attributes
    ----------
    rank : int
        This process's index in the group.
    world_size : int
        Number of processes.
    device : torch.device
        The device this process trains on (``cuda:LOCAL_RANK`` with CUDA and
        the NCCL backend, else the CPU).

    Examples
    --------
    >>> import torch
    >>> group = DataParallel(rank=1, world_size=2, device=torch.device("cpu"))
    >>> group.shard(torch.arange(5)).tolist()  # rank 1's share of a 5-row batch
    [3, 4]
    """

    rank: int
    world_size: int
    device: torch.device

    def shard(self, index):
        """This process's contiguous share of a global batch's row indices."""
        return torch.tensor_split(index, self.world_size)[self.rank]

    def sum_(self, tensor):
        """Sum ``tensor`` over the group, in place; returns it."""
        dist.all_reduce(tensor)
        return tensor

    def reduce_statistics(self, stats):
        """Ridge statistics summed over the group (one all-reduce)."""
        parts = [stats.gram.reshape(-1), stats.cross.reshape(-1)]
        parts.append(torch.tensor([stats.count], dtype=stats.gram.dtype, device=stats.gram.device))
        if stats.target_sq is not None:
            parts.append(stats.target_sq)
        flat = self.sum_(torch.cat(parts))
        sizes = [part.numel() for part in parts]
        pieces = torch.split(flat, sizes)
        return RidgeStatistics(
            pieces[0].reshape(stats.gram.shape),
            pieces[1].reshape(stats.cross.shape),
            float(pieces[2]),
            pieces[3] if stats.target_sq is not None else None,
        )

    def broadcast_seed(self, seed):
        """Rank 0's ``seed`` on every process (same initial network and batch order)."""
        holder = torch.tensor([seed], dtype=torch.int64, device=self._comm_device())
        dist.broadcast(holder, src=0)
        return int(holder)

    def wrap(self, backbone):
        """The backbone under DDP, whose backward pass averages gradients over the group."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(backbone, device_ids=device_ids)

    def _comm_device(self):
        # NCCL moves CUDA tensors only; gloo moves CPU tensors.
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def current_data_parallel():
    """The active :class:`DataParallel` group, or ``None`` outside :func:`data_parallel`.

    Examples
    --------
    >>> print(current_data_parallel())
    None
    """
    return _ACTIVE.get()


@contextlib.contextmanager
def data_parallel(backend=None):
    """Spread ``CFLORegressor.fit`` calls in this block over the default process group.

    Joins the group that ``torchrun`` describes in the environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) unless one is
    already initialised, and leaves it on exit if it joined it. Every process
    must run the same code on the same data with the same estimator
    parameters; the seed is taken from rank 0, so ``random_state=None`` is
    consistent too.

    Parameters
    ----------
    backend : {'gloo', 'nccl'} or None, default=None
        ``None`` picks NCCL when CUDA is available, else gloo (CPU processes).

    Yields
    ------
    DataParallel
        Rank, world size and this process's device. An estimator with
        ``device='auto'`` trains on that device.

    Examples
    --------
    In a notebook, a group of one process (``torchrun`` sets one up for a
    script, and the block joins it):

    >>> import torch.distributed as dist
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> with data_parallel() as group:
    ...     print(group.rank, group.world_size, group.device.type)
    0 1 cpu
    >>> dist.destroy_process_group()
    """
    joined = not dist.is_initialized()
    if joined:
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    group = DataParallel(dist.get_rank(), dist.get_world_size(), device)
    token = _ACTIVE.set(group)
    try:
        yield group
    finally:
        _ACTIVE.reset(token)
        if joined:
            dist.destroy_process_group()

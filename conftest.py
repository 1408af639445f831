"""Shared test configuration: the test suite and the docstring examples under ``skcflo/``."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run the suite's tiny networks on one intra-op thread.

    On a 2-core machine shared with other work, torch's extra OpenMP threads
    only add contention: a 0.3 s fit took 15 s with 2 threads under load.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The tests share a loaded 2-core machine: one torch thread each, restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The test machine is shared: one intra-op thread, restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

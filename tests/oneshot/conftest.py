import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Supernets train on one intra-op thread, as the one-shot search stage does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

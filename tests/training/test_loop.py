import torch

from nas.training import init_model, pick_device


def test_init_model_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = init_model(lambda: torch.nn.Linear(4, 3), seed=1)
    b = init_model(lambda: torch.nn.Linear(4, 3), seed=1)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_pick_device_names_an_available_device():
    device = pick_device()
    assert device in ("cuda", "mps", "cpu")
    torch.zeros(1, device=device)

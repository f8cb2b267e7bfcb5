from dataclasses import asdict

import pytest
import torch

from nas.training import TrainConfig, init_model, pick_device, train
from nas.training.loop import augment, warmup_cosine


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


def _tiny(prepared_digits, epochs=3, **overrides):
    from nas.data import load_prepared
    from nas.spaces import SPACES, NetworkConfig
    from nas.training import TrainConfig

    data = load_prepared(prepared_digits)
    space = SPACES["nb201"]
    arch = space.decode("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    model = init_model(lambda: space.build(arch, NetworkConfig(4, 1, 1, 10)), seed=0)
    config = TrainConfig(epochs=epochs, batch_size=128, warmup_epochs=1, label_smoothing=0.1, crop_padding=2,
                         flip=True, cutout=3, seed=5, **overrides)
    return model, data, config


class Interrupt(Exception):
    pass


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(prepared_digits, tmp_path):
    model, data, config = _tiny(prepared_digits)
    whole = train(model, data, config)

    resumed_model, _, _ = _tiny(prepared_digits)
    checkpoint = tmp_path / "ckpt.pt"

    def die_after_second_epoch(epoch, metrics):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(resumed_model, data, config, [die_after_second_epoch], checkpoint=checkpoint)
    fresh_model, _, _ = _tiny(prepared_digits)  # a new process: nothing but the checkpoint survives
    seen = []
    rest = train(fresh_model, data, config, [lambda epoch, m: seen.append(epoch)], checkpoint=checkpoint)
    assert rest["resumed_from"] == 2 and seen == [2]
    assert rest["val_accuracy"] == whole["val_accuracy"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh_model.state_dict()[key]), key


def test_a_checkpoint_of_another_config_is_not_resumed(prepared_digits, tmp_path):
    model, data, config = _tiny(prepared_digits, epochs=1)
    checkpoint = tmp_path / "ckpt.pt"
    train(model, data, config, checkpoint=checkpoint)
    other, _, _ = _tiny(prepared_digits, epochs=1)
    assert train(other, data, TrainConfig(**{**asdict(config), "seed": 6}), checkpoint=checkpoint)["resumed_from"] == 0


def test_augmentation_crops_flips_and_cuts_out_on_the_batch():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    same = augment(x, TrainConfig(epochs=1), torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    flipped = augment(x, TrainConfig(epochs=1, flip=True), torch.Generator().manual_seed(1))
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(2)) for f, o in zip(flipped, x))
    cropped = augment(x, TrainConfig(epochs=1, crop_padding=2), torch.Generator().manual_seed(2))
    assert cropped.shape == x.shape and not torch.equal(cropped, x)
    # each crop is a shifted window: its nonzero values form a contiguous block of the original
    for c, o in zip(cropped, x):
        kept = c[c > 0]
        assert set(kept.tolist()) <= set(o.flatten().tolist())
    cut = augment(x, TrainConfig(epochs=1, cutout=2), torch.Generator().manual_seed(3))
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert ((zeros >= 1) & (zeros <= 4)).all()
    again = augment(x, TrainConfig(epochs=1, crop_padding=2, flip=True, cutout=2), torch.Generator().manual_seed(9))
    assert torch.equal(again, augment(x, TrainConfig(epochs=1, crop_padding=2, flip=True, cutout=2),
                                      torch.Generator().manual_seed(9)))


def test_warmup_then_cosine():
    factor = warmup_cosine(4, 12)
    assert [round(factor(s), 3) for s in (0, 1, 3)] == [0.25, 0.5, 1.0]
    assert factor(4) == 1.0 and factor(8) == pytest.approx(0.5) and factor(12) == pytest.approx(0.0)

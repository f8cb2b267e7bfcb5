import math
import time
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from nas.errors import UserError
from nas.training import TrainConfig, init_model, pick_device, train
from nas.training.loop import augment, minibatches, train_config, warmup_cosine
from tests.conftest import flip_a_tensor_bit


def test_init_model_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = init_model(lambda: torch.nn.Linear(4, 3), seed=1)
    b = init_model(lambda: torch.nn.Linear(4, 3), seed=1)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_pick_device_names_an_available_device():
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    assert pick_device() == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    torch.zeros(1, device=pick_device())


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
    started = time.perf_counter()
    rest = train(fresh_model, data, config, [lambda epoch, m: seen.append(epoch)], checkpoint=checkpoint)
    assert rest["resumed_from"] == 2 and seen == [2]
    # Its seconds are the whole training's: the two epochs before the kill as well as the one after
    assert rest["seconds"] > time.perf_counter() - started
    assert rest["val_accuracy"] == whole["val_accuracy"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh_model.state_dict()[key]), key


def test_a_checkpoint_of_another_config_is_not_resumed(prepared_digits, tmp_path):
    model, data, config = _tiny(prepared_digits, epochs=1)
    checkpoint = tmp_path / "ckpt.pt"
    train(model, data, config, checkpoint=checkpoint)
    other, _, _ = _tiny(prepared_digits, epochs=1)
    assert train(other, data, TrainConfig(**{**asdict(config), "seed": 6}), checkpoint=checkpoint)["resumed_from"] == 0


def test_a_checkpoint_of_an_older_format_is_not_resumed(prepared_digits, tmp_path):
    """Before format 2 the schedule's state was a LambdaLR's, which the SequentialLR now used cannot load."""
    model, data, config = _tiny(prepared_digits, epochs=1)
    checkpoint = tmp_path / "ckpt.pt"
    train(model, data, config, checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=False)
    del state["format"]
    torch.save(state, checkpoint)
    other, _, _ = _tiny(prepared_digits, epochs=1)
    assert train(other, data, config, checkpoint=checkpoint)["resumed_from"] == 0


def test_a_damaged_checkpoint_is_one_error_line_naming_it(prepared_digits, tmp_path):
    """A resume must not train on from weights that differ from what was saved: a flipped bit is refused."""
    model, data, config = _tiny(prepared_digits, epochs=1)
    checkpoint = tmp_path / "ckpt.pt"
    train(model, data, config, checkpoint=checkpoint)
    flip_a_tensor_bit(checkpoint)
    other, _, _ = _tiny(prepared_digits, epochs=1)
    with pytest.raises(UserError, match=rf"^{checkpoint}: not a readable training checkpoint: damaged: its record "
                                        r".* fails its CRC-32 check; delete it to train from the first epoch$"):
        train(other, data, config, checkpoint=checkpoint)


def test_augmentation_crops_flips_and_cuts_out_on_the_batch():
    x = torch.arange(32 * 2 * 6 * 6, dtype=torch.float32).view(32, 2, 6, 6) + 1  # distinct nonzero pixels
    same = augment(x, TrainConfig(epochs=1), torch.Generator().manual_seed(0))
    assert torch.equal(same, x)

    flipped = augment(x, TrainConfig(epochs=1, flip=True), torch.Generator().manual_seed(1))
    is_flipped = [torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x)]
    assert all(f or torch.equal(g, o) for f, g, o in zip(is_flipped, flipped, x))
    assert 0 < sum(is_flipped) < len(x)

    p = 2
    cropped = augment(x, TrainConfig(epochs=1, crop_padding=p), torch.Generator().manual_seed(2))
    padded = F.pad(x, (p, p, p, p))
    shifts = [{(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
               if torch.equal(c, o[:, dy:dy + 6, dx:dx + 6])} for c, o in zip(cropped, padded)]
    assert all(shifts)  # each crop is the zero-padded image shifted by at most the padding
    assert len(set().union(*shifts)) > 3  # and the shifts vary across the batch

    cut = augment(x, TrainConfig(epochs=1, cutout=2), torch.Generator().manual_seed(3))
    holes = cut != x
    assert (cut[holes] == 0).all() and torch.equal(holes.all(dim=1), holes.any(dim=1))  # zeros, in every channel
    for hole in holes[:, 0]:  # one filled rectangle of at most 2 x 2 (smaller where it leaves the image)
        rows, cols = hole.any(dim=1).nonzero(), hole.any(dim=0).nonzero()
        assert len(rows) and rows.max() - rows.min() < 2 and cols.max() - cols.min() < 2
        assert hole.sum() == len(rows) * len(cols)

    again = augment(x, TrainConfig(epochs=1, crop_padding=2, flip=True, cutout=2), torch.Generator().manual_seed(9))
    assert torch.equal(again, augment(x, TrainConfig(epochs=1, crop_padding=2, flip=True, cutout=2),
                                      torch.Generator().manual_seed(9)))


@pytest.mark.parametrize("warmup", [0, 1, 4])
def test_warmup_then_cosine_per_step(warmup):
    """The rate of each of 12 steps: (k + 1) / warmup of the full rate at warm-up step k, then the cosine from the
    full rate down to 0 at the end."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = warmup_cosine(optimizer, warmup, 12)
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"] / 0.1)
        optimizer.step()
        scheduler.step()
    expected = [(k + 1) / warmup for k in range(warmup)]
    expected += [0.5 * (1 + math.cos(math.pi * k / (12 - warmup))) for k in range(12 - warmup)]
    assert rates == pytest.approx(expected, abs=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_a_loss_that_becomes_nan_stops_training_with_the_epoch(prepared_digits, tmp_path):
    from nas.training import Diverged

    model, data, config = _tiny(prepared_digits, lr=1e4)
    seen = []
    with pytest.raises(Diverged, match=r"training diverged at epoch 1 \(train_loss nan\)"):
        train(model, data, config, [lambda epoch, m: seen.append(epoch)], checkpoint=tmp_path / "ckpt.pt")
    assert seen == [] and not (tmp_path / "ckpt.pt").exists()  # a NaN epoch is neither reported nor saved


def test_darts_auxiliary_loss_and_drop_path_change_training_and_resume_exactly(prepared_digits, tmp_path):
    """DARTS's retraining extras: the auxiliary head's loss is added, drop-path rises over the epochs, and a resumed
    run ends as an uninterrupted one (drop-path masks come from the loop's seeded generator, which it saves)."""
    from nas.data import load_prepared
    from nas.spaces import SPACES, NetworkConfig
    from nas.spaces.darts import DARTS_V2

    data = load_prepared(prepared_digits)

    def model(auxiliary: bool):
        return init_model(lambda: SPACES["darts"].build(DARTS_V2, NetworkConfig(4, 1, 1, 10, auxiliary=auxiliary)), 0)

    plain = TrainConfig(epochs=3, batch_size=256)
    extras = TrainConfig(epochs=3, batch_size=256, auxiliary_weight=0.4, drop_path_prob=0.2)
    base = train(model(False), data, plain)
    whole_model = model(True)
    whole = train(whole_model, data, extras)
    assert whole["train_loss"][0] > base["train_loss"][0]  # + 0.4 x the auxiliary head's loss
    assert whole_model.drop_path_prob == pytest.approx(0.2 * 2 / 3)  # set for the last epoch
    assert train(model(True), data, extras)["train_loss"] == whole["train_loss"]  # seeded, masks included

    def die_after_second_epoch(epoch, metrics):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(model(True), data, extras, [die_after_second_epoch], checkpoint=tmp_path / "ckpt.pt")
    resumed = model(True)
    rest = train(resumed, data, extras, checkpoint=tmp_path / "ckpt.pt")
    assert rest["resumed_from"] == 2 and rest["train_loss"] == whole["train_loss"]
    for key, value in whole_model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_last_batch_of_one_example_joins_the_one_before():
    assert minibatches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert minibatches(9, 4) == [(0, 4), (4, 9)]  # not (8, 9): BatchNorm cannot train on one example
    assert minibatches(8, 4) == [(0, 4), (4, 8)] and minibatches(1, 4) == [(0, 1)]


def test_a_network_with_a_head_on_a_1x1_map_trains_when_one_example_is_left_over(prepared_digits):
    """1,257 digits in batches of 628 leave one: a BatchNorm on a 1x1 map (three stride-2 layers on 8x8) cannot
    normalise a single value per channel in training mode."""
    from nas.data import load_prepared
    from nas.spaces import SPACES, NetworkConfig

    data = load_prepared(prepared_digits)
    assert len(data.train.y) % 628 == 1
    space = SPACES["macro"]
    arch = space.decode("conv:k3:w1:s2 | conv:k3:w1:s2 | conv:k3:w1:s2")
    model = init_model(lambda: space.build(arch, NetworkConfig(4, 1, 1, 10)), seed=0)
    result = train(model, data, TrainConfig(epochs=1, batch_size=628, seed=0))
    assert math.isfinite(result["train_loss"][0])


@pytest.mark.parametrize(("dataset", "shifted", "flipped"), [
    ("cifar10", True, True), ("cifar100", True, True), ("svhn", False, False), ("mnist", False, False),
    ("digits", False, False),
])
def test_auto_augmentation_never_flips_digits(dataset, shifted, flipped):
    from nas.config import Params

    config = train_config(Params().retrain, "cpu", dataset)
    assert (config.crop_padding > 0, config.flip) == (shifted, flipped)

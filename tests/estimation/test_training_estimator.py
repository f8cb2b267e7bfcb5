import numpy as np

from nas.data import load_prepared
from nas.estimation import estimate
from nas.spaces import SPACES, NetworkConfig
from nas.training import TrainConfig

space = SPACES["nb201"]


def test_estimate_is_deterministic_on_cpu_and_records_the_curve(prepared_digits):
    data = load_prepared(prepared_digits)
    arch = space.sample(np.random.default_rng(0))
    network = NetworkConfig(4, 1, data.in_channels, data.num_classes)
    config = TrainConfig(epochs=2, batch_size=128, seed=3)
    seen = []
    a = estimate(arch, space, data, network, config, [lambda epoch, m: seen.append((epoch, m["val_accuracy"]))])
    b = estimate(arch, space, data, network, config)
    assert a.learning_curve == b.learning_curve and a.train_loss == b.train_loss
    assert len(a.learning_curve) == 2 and a.val_accuracy == a.learning_curve[-1]
    assert seen == [(0, a.learning_curve[0]), (1, a.learning_curve[1])]
    assert a.val_accuracy > 0.3  # learned something beyond chance (0.1) in two epochs
    c = estimate(arch, space, data, network, TrainConfig(epochs=2, batch_size=128, seed=4))
    assert c.train_loss != a.train_loss

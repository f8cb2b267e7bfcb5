"""Weight inheritance: each function-preserving morphism leaves the network's outputs unchanged before training."""

import numpy as np
import pytest
import torch

from nas.estimation.inheritance import inherit
from nas.spaces import SPACES, NetworkConfig

NETWORK = NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, num_classes=10)


def trained_like(space: str, arch: str, seed: int = 0) -> torch.nn.Module:
    """A network whose weights and BatchNorm statistics are all non-trivial, as after training."""
    torch.manual_seed(seed)
    model = SPACES[space].build(SPACES[space].decode(arch), NETWORK)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(("running_mean", "bias")) or (name.endswith("weight") and tensor.dim() == 1):
                tensor.uniform_(-0.5, 1.5)
    return model.eval()


def morph(space: str, parent_arch: str, child_arch: str):
    parent = trained_like(space, parent_arch)
    child_value = SPACES[space].decode(child_arch)
    torch.manual_seed(1)
    child = SPACES[space].build(child_value, NETWORK).eval()
    transfer = inherit(SPACES[space].decode(parent_arch), parent, child_value, child, np.random.default_rng(0))
    x = torch.randn(8, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return transfer, (parent(x) - child(x)).abs().max().item()


@pytest.mark.parametrize(("parent", "child", "kind"), [
    ("conv:k3:w1:s1 | conv:k3:w2:s1", "conv:k3:w2:s1 | conv:k3:w2:s1", "Net2Wider"),  # read by a conv
    ("sep_conv:k3:w1:s1 | sep_conv:k5:w1:s2", "sep_conv:k3:w4:s1 | sep_conv:k5:w1:s2", "Net2Wider"),  # by a sep conv
    ("conv:k3:w1:s1 | dil_conv:k3:w2:s1", "conv:k3:w1:s1 | dil_conv:k3:w4:s1", "Net2Wider"),  # the last: the head
    ("conv:k3:w1:s1 | conv:k3:w2:s1", "conv:k5:w1:s1 | conv:k3:w2:s1", "kernel"),
    ("dil_conv:k3:w2:s2 | max_pool:k3:s1", "dil_conv:k5:w2:s2 | max_pool:k3:s1", "kernel"),
    ("sep_conv:k3:w2:s1", "sep_conv:k5:w2:s1", "kernel"),
    ("conv:k3:w1:s1", "conv:k3:w1:s1 | identity", "identity layer"),
    ("conv:k3:w1:s1 | conv:k3:w2:s2 | conv:k3:w1:s1", "conv:k3:w1:s1 | conv:k3:w2:s2 | conv:k3:w1:s1:sum(0)",
     "skip from 0 added at zero"),
])
def test_function_preserving_macro_morphisms(parent: str, child: str, kind: str) -> None:
    transfer, diff = morph("macro", parent, child)
    assert transfer.preserving, str(transfer)
    assert any(kind in m for m in transfer.morphisms), str(transfer)
    assert diff <= 1e-5


@pytest.mark.parametrize(("parent", "child", "kind"), [
    ("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|", "added at zero"),
    ("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
     "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|", "kernel 1->3"),
])
def test_function_preserving_nb201_morphisms(parent: str, child: str, kind: str) -> None:
    transfer, diff = morph("nb201", parent, child)
    assert transfer.preserving and any(kind in m for m in transfer.morphisms), str(transfer)
    assert transfer.copied > 20  # every other edge, the stem, the reductions and the classifier
    assert diff <= 1e-5


@pytest.mark.parametrize(("space", "parent", "child"), [
    ("macro", "conv:k3:w1:s1 | conv:k3:w2:s1", "conv:k3:w1:s1 | avg_pool:k3:s1"),  # op changed
    ("macro", "conv:k3:w2:s1 | conv:k3:w2:s1", "conv:k3:w1:s1 | conv:k3:w2:s1"),  # narrower
    ("macro", "conv:k3:w2:s1 | conv:k3:w1:s1", "conv:k3:w1:s1 | conv:k3:w2:s1"),  # narrower, then wider
    ("macro", "conv:k3:w2:s1 | sep_conv:k3:w1:s1", "conv:k3:w1:s1 | sep_conv:k3:w4:s1"),
    ("macro", "conv:k3:w1:s1", "conv:k3:w1:s1 | conv:k3:w1:s1"),  # a convolution inserted: ReLU(x), not x
    ("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
     "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"),
])
def test_other_changes_inherit_what_matches_and_say_they_change_the_function(space, parent, child) -> None:
    transfer, diff = morph(space, parent, child)
    assert not transfer.preserving and transfer.fresh and transfer.copied > 0
    assert diff > 1e-3  # the claim is true: the function did change


def test_net2wider_breaks_the_copies_symmetry() -> None:
    parent = trained_like("macro", "conv:k3:w1:s1 | conv:k3:w1:s1")
    child_arch = SPACES["macro"].decode("conv:k3:w2:s1 | conv:k3:w1:s1")
    child = SPACES["macro"].build(child_arch, NETWORK)
    inherit(SPACES["macro"].decode("conv:k3:w1:s1 | conv:k3:w1:s1"), parent, child_arch, child,
            np.random.default_rng(0))
    reader = child.layers[1].op[1].weight  # reads 8 channels, 4 of them copies
    copies = reader[:, 4:]
    assert not any(torch.allclose(copies[:, j], reader[:, k]) for j in range(4) for k in range(4))


def test_a_reshaped_tensor_keeps_its_overlap_and_the_transfer_names_it() -> None:
    parent_arch, child_arch = "conv:k3:w2:s1 | conv:k3:w1:s1", "conv:k3:w1:s1 | conv:k3:w1:s1"
    space, parent = SPACES["macro"], trained_like("macro", parent_arch)
    child = space.build(space.decode(child_arch), NETWORK)
    transfer = inherit(space.decode(parent_arch), parent, space.decode(child_arch), child, np.random.default_rng(0))
    # The second layer reads fewer channels: the ones both networks have are the parent's.
    old, new = parent.state_dict()["layers.1.op.1.weight"], child.state_dict()["layers.1.op.1.weight"]
    assert new.shape[1] < old.shape[1] and torch.equal(new, old[:, : new.shape[1]])
    assert "layers.1.op.1.weight" in str(transfer) and not transfer.preserving


@pytest.mark.parametrize(("parent_arch", "child_arch", "name"), [
    ("conv:k5:w1:s1 | conv:k3:w1:s1", "conv:k3:w1:s1 | conv:k3:w1:s1", "layers.0.op.1.weight"),
    ("dil_conv:k5:w2:s2 | max_pool:k3:s1", "dil_conv:k3:w2:s2 | max_pool:k3:s1", "layers.0.op.1.weight"),
])
def test_a_shrunk_kernel_keeps_the_centre_of_its_parents(parent_arch: str, child_arch: str, name: str) -> None:
    space, parent = SPACES["macro"], trained_like("macro", parent_arch)
    child = space.build(space.decode(child_arch), NETWORK)
    transfer = inherit(space.decode(parent_arch), parent, space.decode(child_arch), child, np.random.default_rng(0))
    old, new = parent.state_dict()[name], child.state_dict()[name]
    assert new.shape[-1] == 3 and torch.equal(new, old[..., 1:4, 1:4])  # centred as the padding is, not the corner
    assert not transfer.preserving and f"{name}: kernel 5->3" in str(transfer)

import torch

from nas.evaluation import count_flops, cpu_latency_ms
from nas.reports import cell_plot
from nas.spaces.nb201 import decode


def test_flops_are_counted_by_torch_for_a_known_layer():
    layer = torch.nn.Linear(10, 4, bias=False)
    assert count_flops(layer, torch.randn(3, 10)) == 2 * 3 * 10 * 4


def test_latency_is_positive_and_model_left_on_cpu():
    model = torch.nn.Linear(10, 4)
    assert cpu_latency_ms(model, torch.randn(1, 10), repeats=5) > 0


def test_cell_drawing_is_a_png(tmp_path):
    path = cell_plot(decode("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"),
                     tmp_path / "cell.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

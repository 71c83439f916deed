"""A ReLU's statistics taken from its input's pass (its sums, and its histogram binned from the
input's sample) equal the statistics of the ReLU's own values, exactly: for layers above and
below the histogram's sample size, inputs of either sign only, and any bin count."""

from __future__ import annotations

import pytest
import torch
from _node_values import node_values

from hawknb.kernels import _stats_jit, trace_run
from hawknb.kernels.activations import trace_activations
from hawknb.kernels.tensor_stats import tensor_stats


class _Relus(torch.nn.Module):
    def __init__(self, width: int, shift: float) -> None:
        super().__init__()
        torch.manual_seed(width)
        self.a = torch.nn.Linear(8, width)
        self.b = torch.nn.Linear(width, width)
        with torch.no_grad():
            self.a.bias += shift  # +: every input of the first ReLU > 0; -: every one < 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return torch.relu(self.b(h)).sum(-1)


@pytest.mark.parametrize(("width", "rows"), [(64, 400), (256, 300), (128, 1024)])
@pytest.mark.parametrize("shift", [0.0, 100.0, -100.0])
@pytest.mark.parametrize("bins", [0, 7, 32])
def test_relu_stats_from_the_input_pass_equal_direct(
    width: int, rows: int, shift: float, bins: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _Relus(width, shift).eval()
    x = torch.randn(rows, 8)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=2)},))
    fused: list[bool] = []  # per ReLU: whether its histogram came from its input's pass

    def spy(y, bins_, bounds, positive):  # type: ignore[no-untyped-def]
        fused.append(positive[2] is not None)
        return real(y, bins_, bounds, positive)

    real = trace_run.relu_stats
    monkeypatch.setattr(trace_run, "relu_stats", spy)
    trace = trace_activations(ep, x.numpy(), histogram_bins=bins)
    if _stats_jit.READY:
        assert fused == [bool(bins)] * 2
    values = node_values(ep, x)
    relus = [n for n in trace.nodes if n.target.split(".")[0] == "relu"]
    assert len(relus) == 2
    for n in trace.nodes:
        if isinstance(values.get(n.name), torch.Tensor):
            assert n.stats == tensor_stats(values[n.name], bins), n.name

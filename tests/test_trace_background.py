"""The background statistics thread: the same trace as on the caller's thread (NaN/inf, empty
and integer values, histograms, the first bad node), values overwritten by in-place ops
summarized before they change, errors raised on the caller's thread, and when it is used."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hawknb.kernels import trace_run
from hawknb.kernels.activations import SnapshotRunError, find_first_anomaly, trace_activations
from hawknb.kernels.graph import program_graph
from hawknb.kernels.tensor_stats import SMALL

DYN = ({0: torch.export.Dim("batch", min=1)},)


class _Mixed(nn.Module):
    """Big and small layers, an integer value, an empty slice and an optional inf weight."""

    def __init__(self, bad: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.a = nn.Linear(6, 64)  # 64 x rows values: big
        self.b = nn.Linear(64, 3)  # small
        if bad:
            with torch.no_grad():
                self.a.weight[5, 2] = math.inf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        count = (h > 0).sum(-1)  # an integer per row
        nothing = h[:, :0]  # an empty value
        return self.b(h).sum(-1) + count + nothing.sum(-1)


def _export(m: nn.Module, n_in: int = 6) -> torch.export.ExportedProgram:
    return torch.export.export(m.eval(), (torch.randn(4, n_in),), dynamic_shapes=DYN)


def _stats(trace: Any) -> list[Any]:
    return [(n.name, n.shape, n.dtype, n.stats) for n in trace.nodes]


def _nan_equal(a: list[Any], b: list[Any]) -> bool:
    """Equality where NaN equals NaN (an all-NaN node's min/mean are NaN)."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("bad", [False, True])
@pytest.mark.parametrize("bins", [0, 16])
def test_background_trace_equals_the_caller_thread_trace(bad: bool, bins: int) -> None:
    ep = _export(_Mixed(bad))
    x = np.random.default_rng(0).normal(size=(3000, 6)).astype(np.float32)
    x[7, 1] = np.nan
    here = trace_activations(ep, x, histogram_bins=bins, background=False)
    there = trace_activations(ep, x, histogram_bins=bins, background=True)
    assert any(n.stats is not None and n.stats.numel > SMALL for n in here.nodes)
    assert any(n.dtype == "int64" for n in here.nodes)
    assert _nan_equal(_stats(there), _stats(here))
    assert here.row_max_abs.keys() == there.row_max_abs.keys()
    for k, v in here.row_max_abs.items():
        np.testing.assert_array_equal(there.row_max_abs[k], v)
        np.testing.assert_array_equal(there.unit_bad[k], here.unit_bad[k])
    fa, fb = find_first_anomaly(here), find_first_anomaly(there)
    assert (fa is None) == (fb is None)
    if fa is not None and fb is not None:
        assert (fa.node, fa.bad_rows, fa.bad_units) == (fb.node, fb.bad_rows, fb.bad_units)


def test_backlog_limit_waits_and_gives_the_same_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = _export(_Mixed(True))
    x = np.random.default_rng(1).normal(size=(2000, 6)).astype(np.float32)
    here = trace_activations(ep, x, background=False)
    monkeypatch.setattr(trace_run, "_BACKLOG_MAX", 1)  # every value waits for the thread
    assert _nan_equal(_stats(trace_activations(ep, x, background=True)), _stats(here))


class _InPlace(nn.Module):
    """Small and big values overwritten by later in-place ops."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.a = nn.Linear(5, 3)
        self.big = nn.Linear(5, 64)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = self.a(x)
        small2 = small * 1.0
        small2.add_(100.0)  # overwrites small2 after its statistics were asked for
        big = self.big(x)
        big = self.act(big)  # relu_ overwrites the linear output
        return small2.sum(-1) + big.sum(-1)


class _Clone(torch.fx.Interpreter):
    """Every node's value as it was right after the node ran."""

    def __init__(self, gm: torch.fx.GraphModule) -> None:
        super().__init__(gm)
        self.seen: dict[str, np.ndarray] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.seen[n.name] = out.detach().clone().double().numpy()
        return out


@pytest.mark.parametrize("background", [False, True])
def test_values_are_summarized_before_an_in_place_op_overwrites_them(background: bool) -> None:
    ep = _export(_InPlace(), 5)
    graph_code = ep.graph_module.code
    assert "add_" in graph_code and "relu_" in graph_code
    x = np.random.default_rng(2).normal(size=(1000, 5)).astype(np.float32)
    pg = program_graph(ep)
    ref = _Clone(pg.module)
    with torch.no_grad():
        ref.run(
            *[torch.from_numpy(x) if n in pg.user_inputs else pg.bound[n] for n in pg.placeholders]
        )
    trace = trace_activations(ep, x, background=background)
    checked = 0
    for n in trace.nodes:
        if n.kind == "op" and n.name in ref.seen and n.stats is not None:
            v = ref.seen[n.name]
            assert (n.stats.min, n.stats.max) == (v.min(), v.max()), n.name
            assert n.stats.mean == pytest.approx(v.mean(), rel=1e-5, abs=1e-6), n.name
            checked += 1
    assert checked >= 5
    mul = next(n for n in trace.nodes if n.name == "mul")
    assert mul.stats is not None and mul.stats.max < 50  # before the add_ of 100


def test_statistics_errors_are_raised_on_the_caller_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ep = _export(_Mixed(False))
    x = np.random.default_rng(3).normal(size=(2000, 6)).astype(np.float32)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ArithmeticError("stats broke")

    monkeypatch.setattr(trace_run, "tensor_stats", broken)
    with pytest.raises(ArithmeticError, match="stats broke"):
        trace_activations(ep, x, background=True)
    monkeypatch.undo()
    assert trace_activations(ep, x, background=True).nodes  # the thread still serves


def test_a_failing_node_is_named_with_a_background_thread() -> None:
    ep = _export(_Mixed(False))
    ep.state_dict["b.weight"] = torch.zeros(3, 7)  # wrong shape: the second matmul fails
    x = np.ones((3000, 6), np.float32)  # the first layer's big value is queued before that
    with pytest.raises(SnapshotRunError) as info:
        trace_activations(ep, x, background=True)
    assert info.value.node == "linear_1"


def test_free_core_needs_a_core_beyond_torch_threads_and_a_low_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert trace_run.free_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (3.9, 0.5, 0.5))
    assert not trace_run.free_core()  # the other cores are busy
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert not trace_run.free_core()  # torch takes every core


def test_trace_nodes_equal_constructed_ones_and_follow_a_replaced_weight() -> None:
    from dataclasses import asdict, fields

    from hawknb.kernels.activations import NodeTrace

    m = _Mixed(False)
    ep = _export(m)
    x = np.random.default_rng(5).normal(size=(500, 6)).astype(np.float32)
    first = trace_activations(ep, x)
    names = {f.name for f in fields(NodeTrace)}
    for n in first.nodes:
        assert set(vars(n)) == names
        assert n == NodeTrace(**asdict(n) | {"stats": n.stats})
    ep.state_dict["b.weight"] = torch.full((3, 64), 2.0)  # a new tensor for the same key
    again = trace_activations(ep, x)
    w = next(n for n in again.nodes if n.name == "p_b_weight")
    assert w.stats is not None and (w.stats.min, w.stats.max) == (2.0, 2.0)
    assert again.node("linear_1").stats != first.node("linear_1").stats

"""The activation trace's recorder: values overwritten by later in-place ops are summarized as
they were when their node ran, node records equal constructed ones, and a replaced weight is
seen by the next trace (the program binding is reused only while the program is unchanged)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hawknb.kernels.activations import trace_activations
from hawknb.kernels.graph import program_graph

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


def test_values_are_summarized_before_an_in_place_op_overwrites_them() -> None:
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
    trace = trace_activations(ep, x)
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


@pytest.mark.parametrize("bad", [False, True])
def test_every_node_matches_a_numpy_reference(bad: bool) -> None:
    ep = _export(_Mixed(bad))
    x = np.random.default_rng(6).normal(size=(3000, 6)).astype(np.float32)
    x[7, 1] = np.nan
    pg = program_graph(ep)
    ref = _Clone(pg.module)
    with torch.no_grad():
        ref.run(
            *[torch.from_numpy(x) if n in pg.user_inputs else pg.bound[n] for n in pg.placeholders]
        )
    trace = trace_activations(ep, x)
    kinds = set()
    for n in trace.nodes:
        v, s = ref.seen[n.name], n.stats
        assert s is not None and s.numel == v.size, n.name
        kinds.add((n.dtype, v.size == 0, bool(np.isnan(v).any()), bool(np.isinf(v).any())))
        assert (s.nan_count, s.inf_count) == (int(np.isnan(v).sum()), int(np.isinf(v).sum()))
        fin = v[np.isfinite(v)]
        if fin.size == 0:
            assert math.isnan(s.min) and math.isnan(s.mean), n.name
            continue
        assert (s.min, s.max) == (fin.min(), fin.max()), n.name
        assert s.mean == pytest.approx(fin.mean(), rel=1e-5, abs=1e-6), n.name
        assert s.std == pytest.approx(fin.std(), rel=1e-4, abs=1e-6), n.name
    assert ("int64", False, False, False) in kinds and any(k[1] for k in kinds)
    assert any(k[2] for k in kinds) and (any(k[3] for k in kinds) or not bad)

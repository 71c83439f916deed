"""Activation tracing and the first-anomaly walk on exported programs with planted faults."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from hawknb.kernels.activations import (
    SnapshotRunError,
    _stats,
    find_first_anomaly,
    graph_structure,
    trace_activations,
)
from hawknb.workspace.errors import HawknbError, WorkspaceError

N_FEAT = 8
NAMES = [f"feat_{i}" for i in range(N_FEAT)]
DYN = ({0: torch.export.Dim("batch")},)


class MLP(nn.Module):
    def __init__(self, n: int = N_FEAT) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


def _export(m: nn.Module, n: int = N_FEAT) -> torch.export.ExportedProgram:
    return torch.export.export(m, (torch.randn(4, n),), dynamic_shapes=DYN)


def _blowup_model(k: int, lo: float) -> nn.Module:
    """Hidden unit 0 of net.0 fires only when feature k > lo; net.2 multiplies it by 1e9, so
    net.2's output is extreme exactly on those rows and healthy elsewhere."""
    torch.manual_seed(0)
    m = MLP()
    with torch.no_grad():
        m.net[0].weight[0].zero_()
        m.net[0].weight[0, k] = 1.0
        m.net[0].bias[0] = -lo
        m.net[2].weight[:, 0] = 0.0
        m.net[2].weight[3, 0] = 1e9
    return m


def _batch(n: int = 4000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, N_FEAT)).astype(np.float32)


def test_healthy_model_has_no_anomaly() -> None:
    torch.manual_seed(0)
    ep = _export(MLP())
    x = _batch()
    tr = trace_activations(ep, x, feature_names=NAMES)
    assert find_first_anomaly(tr) is None
    out = tr.node(tr.outputs[0])
    assert out.shape == (len(x),)
    expected = ep.module()(torch.from_numpy(x)).detach().numpy()
    assert out.stats is not None
    assert out.stats.mean == pytest.approx(float(expected.mean()), rel=1e-5)
    assert out.stats.max == pytest.approx(float(expected.max()), rel=1e-6)
    lin = tr.node("linear_1")
    assert lin.layer == "net.2"
    assert ("relu", "linear_1") in tr.edges
    df = tr.frame()
    assert df.height == len(tr.nodes)
    assert set(df["kind"]) == {"parameter", "input", "op"}


@pytest.mark.parametrize(("k", "lo"), [(3, 1.0), (6, -0.5), (0, 1.5)])
def test_blowup_for_feature_range_finds_layer_and_feature(k: int, lo: float) -> None:
    ep = _export(_blowup_model(k, lo))
    x = _batch()
    tr = trace_activations(ep, x, feature_names=NAMES)
    fault = find_first_anomaly(tr)
    assert fault is not None
    assert fault.layer == "net.2"
    assert fault.node == "linear_1"
    assert fault.kind == "extreme"
    assert fault.bad_units == (3,)
    # the bad rows are those with feature k above lo (+ 1e-3 so that 1e9 * (x - lo) >= 1e6)
    assert fault.bad_rows == int(np.sum(x[:, k] >= lo + 1e-3))
    top = fault.driving_features[0]
    assert top.feature == f"feat_{k}"
    assert top.index == k
    assert top.counterfactual_fix == pytest.approx(1.0)
    assert top.score > 0.9
    assert all(d.score < 0.3 for d in fault.driving_features[1:])
    assert top.bad_range[0] >= lo
    assert fault.upstream_path == ("x", "linear", "relu", "linear_1")
    assert fault.downstream_path[0] == "linear_1"
    assert fault.downstream_path[-1] == tr.outputs[0]
    assert "net.2.weight" in fault.bad_parameters
    assert f"feat_{k}" in fault.explanation


def test_nan_weight_in_first_layer_found_with_feature() -> None:
    torch.manual_seed(0)
    m = MLP()
    with torch.no_grad():
        m.net[0].weight[5, 2] = float("nan")
    ep = _export(m)
    tr = trace_activations(ep, _batch(500), feature_names=NAMES)
    fault = find_first_anomaly(tr)
    assert fault is not None
    assert fault.kind == "nan"
    assert fault.layer == "net.0"
    assert fault.bad_parameters == ("net.0.weight",)
    assert fault.stats.nan_count == 500  # one unit, every row
    assert fault.bad_units == (5,)
    assert fault.bad_row_fraction == 1.0
    assert fault.driving_features[0].feature == "feat_2"
    assert fault.output_nonfinite_fraction == 1.0


def test_nan_in_deeper_bias_found_at_its_layer() -> None:
    torch.manual_seed(0)
    m = MLP()
    with torch.no_grad():
        m.net[4].bias[0] = float("inf")
    tr = trace_activations(_export(m), _batch(300))
    fault = find_first_anomaly(tr)
    assert fault is not None
    assert fault.layer == "net.4"
    assert fault.kind == "inf"
    assert fault.driving_features == ()
    assert tr.feature_names[0] == "x0"


def test_nan_inputs_reported_at_the_input() -> None:
    torch.manual_seed(0)
    ep = _export(MLP())
    x = _batch(1000)
    x[::10, 4] = np.nan
    tr = trace_activations(ep, x, feature_names=NAMES)
    fault = find_first_anomaly(tr)
    assert fault is not None
    assert fault.node == "x"
    assert fault.layer is None
    assert fault.bad_rows == 100
    assert [d.feature for d in fault.driving_features] == ["feat_4"]
    assert fault.output_nonfinite_fraction == pytest.approx(0.1)


def test_frame_inputs_are_selected_by_feature_names() -> None:
    ep = _export(_blowup_model(2, 1.0))
    x = _batch(1000)
    df = pl.DataFrame({n: x[:, i] for i, n in enumerate(NAMES)}).with_columns(
        pl.lit("m").alias("model")
    )
    shuffled = df.select(["model", *reversed(NAMES)])
    tr = trace_activations(ep, shuffled.to_pandas(), feature_names=NAMES)
    fault = find_first_anomaly(tr)
    assert fault is not None
    assert fault.driving_features[0].feature == "feat_2"
    # the caller's frame is untouched
    assert shuffled.columns[0] == "model"


def test_extreme_threshold_is_respected() -> None:
    ep = _export(_blowup_model(3, 1.0))
    tr = trace_activations(ep, _batch(500), extreme=1e12)
    assert find_first_anomaly(tr) is None
    tr = trace_activations(ep, _batch(500))
    assert find_first_anomaly(tr, extreme=1e12) is None
    with pytest.raises(ValueError, match="extreme"):
        find_first_anomaly(tr, extreme=0)


def test_bad_inputs_are_clear() -> None:
    ep = _export(MLP())
    with pytest.raises(WorkspaceError, match="empty batch"):
        trace_activations(ep, np.zeros((0, N_FEAT), dtype=np.float32))
    with pytest.raises(WorkspaceError, match=r"expected 8 features.*found 5"):
        trace_activations(ep, np.zeros((10, 5), dtype=np.float32))
    with pytest.raises(WorkspaceError, match="2-D"):
        trace_activations(ep, np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(WorkspaceError, match="feature_names"):
        trace_activations(ep, pl.DataFrame({"a": [1.0]}))
    with pytest.raises(WorkspaceError, match="lacks feature columns"):
        trace_activations(ep, pl.DataFrame({"a": [1.0]}), feature_names=NAMES)
    with pytest.raises(WorkspaceError, match="feature_names"):
        trace_activations(ep, _batch(3), feature_names=NAMES[:3])
    with pytest.raises(TypeError, match="ExportedProgram"):
        trace_activations(MLP(), _batch(3))
    with pytest.raises(TypeError):
        find_first_anomaly("not a trace")  # type: ignore[arg-type]


def test_fixed_batch_program_is_refused_with_a_fix() -> None:
    ep = torch.export.export(MLP(), (torch.randn(4, N_FEAT),))
    with pytest.raises(WorkspaceError, match="fixed batch"):
        trace_activations(ep, _batch(10))
    assert trace_activations(ep, _batch(4)).n_rows == 4


def test_program_failure_names_the_node() -> None:
    ep = _export(MLP())
    ep.state_dict["net.2.weight"] = torch.zeros(16, 7)  # wrong shape: the matmul fails
    with pytest.raises(SnapshotRunError, match="linear_1") as info:
        trace_activations(ep, _batch(10))
    assert isinstance(info.value, HawknbError)
    assert info.value.node == "linear_1"


def test_histograms_cover_finite_values() -> None:
    torch.manual_seed(0)
    tr = trace_activations(_export(MLP()), _batch(200), histogram_bins=16)
    for n in tr.nodes:
        assert n.stats is not None and n.stats.histogram is not None
        edges, counts = n.stats.histogram
        assert len(edges) == 17 and len(counts) == 16
        assert sum(counts) == n.stats.numel - n.stats.nonfinite


def test_graph_structure_of_a_thousand_node_graph() -> None:
    # 340 x (Linear, ReLU): 680 ops + 680 parameter nodes + input + output > 1,000 nodes
    layers: list[nn.Module] = []
    for _ in range(340):
        layers += [nn.Linear(4, 4), nn.ReLU()]
    ep = torch.export.export(nn.Sequential(*layers), (torch.randn(2, 4),), dynamic_shapes=DYN)
    nodes, edges = graph_structure(ep)
    ops = [n for n in nodes if n["kind"] == "op"]
    assert len(ops) == 680
    assert {n["kind"] for n in nodes} == {"input", "op", "output"}
    g = nx.DiGraph([(e["source"], e["target"]) for e in edges])
    assert nx.is_directed_acyclic_graph(g)
    assert nx.is_weakly_connected(g)
    assert ops[0]["layer"] == "0" and ops[0]["params"] == ["0.weight", "0.bias"]
    assert ops[-2]["layer"] == "678"
    nodes_p, edges_p = graph_structure(ep, include_parameters=True)
    assert len(nodes_p) == len(nodes) + 680 > 1000
    assert len(edges_p) == len(edges) + 680


finite_or_not = st.one_of(
    st.floats(-1e6, 1e6, width=32), st.sampled_from([math.nan, math.inf, -math.inf])
)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 5)), elements=finite_or_not))
def test_stats_match_numpy(a: np.ndarray) -> None:
    s = _stats(torch.from_numpy(a), bins=0)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert s.numel == a.size
    assert s.nan_count == int(np.isnan(a).sum())
    assert s.inf_count == int(np.isinf(a).sum())
    if fin.size:
        assert s.min == fin.min()
        assert s.max == fin.max()
        assert s.mean == pytest.approx(fin.mean(), rel=1e-4, abs=1e-2)
        assert s.std == pytest.approx(fin.std(), rel=1e-3, abs=1e-1)
    else:
        assert math.isnan(s.mean)
    if s.nonfinite:
        assert s.max_abs == math.inf
    elif fin.size:
        assert s.max_abs == np.abs(fin).max()

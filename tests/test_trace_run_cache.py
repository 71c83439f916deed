"""The activation recorder's shortcuts change no statistic: small parameters' statistics are
reused only while the parameters hold the same values (also when they change behind torch's
version counter, through a numpy view, or hold NaN), and a view of a small value shares its
statistics with the value."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hawknb.kernels import trace_run
from hawknb.kernels.activations import trace_activations
from hawknb.kernels.tensor_stats import batch_stats

DYN = ({0: torch.export.Dim("batch", min=1)},)


class _Small(nn.Module):
    """A small MLP whose last layer's output is squeezed (a view of a small value)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.a = nn.Linear(5, 8)
        self.b = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.b(torch.relu(self.a(x))).squeeze(-1))


def _export() -> torch.export.ExportedProgram:
    return torch.export.export(_Small().eval(), (torch.randn(4, 5),), dynamic_shapes=DYN)


def _params(trace: object) -> dict[str, object]:
    return {n.name: n.stats for n in trace.nodes if n.kind == "parameter"}  # type: ignore[attr-defined]


def _direct(ep: torch.export.ExportedProgram, bins: int = 0) -> dict[str, object]:
    """Each parameter summarized on its own, without any cache."""
    from hawknb.kernels.graph import program_graph

    pg = program_graph(ep)
    return {n: batch_stats([pg.bound[n]], bins)[0] for n in pg.bound}


def test_parameter_statistics_follow_every_change_of_the_weights() -> None:
    ep = _export()
    x = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32)
    first = trace_activations(ep, x)
    assert _params(first) == _direct(ep)
    again = trace_activations(ep, x)  # reused: the same statistics
    assert _params(again) == _params(first)
    assert [n.stats for n in again.nodes] == [n.stats for n in first.nodes]
    # a write through a numpy view does not bump torch's version counter
    ep.state_dict["a.weight"].detach().numpy()[0, 0] = 123.0
    changed = trace_activations(ep, x)
    w = changed.node("p_a_weight").stats
    assert w is not None and w.max == 123.0
    assert _params(changed) == _direct(ep)
    assert changed.node("linear").stats != first.node("linear").stats


def test_nan_and_inf_parameters_are_counted_on_every_trace() -> None:
    ep = _export()
    with torch.no_grad():
        ep.state_dict["b.weight"][0, 1] = math.nan
        ep.state_dict["b.weight"][0, 2] = math.inf
    x = np.random.default_rng(2).normal(size=(50, 5)).astype(np.float32)
    for _ in range(2):
        s = trace_activations(ep, x).node("p_b_weight").stats
        assert s is not None and (s.nan_count, s.inf_count) == (1, 1)
    assert _params(trace_activations(ep, x, histogram_bins=8)) == _direct(ep, 8)


def test_histogram_bins_are_part_of_the_reuse_key() -> None:
    ep = _export()
    x = np.random.default_rng(3).normal(size=(40, 5)).astype(np.float32)
    plain = _params(trace_activations(ep, x))
    binned = _params(trace_activations(ep, x, histogram_bins=4))
    assert all(s.histogram is None for s in plain.values())  # type: ignore[attr-defined]
    assert binned == _direct(ep, 4)


def test_a_view_of_a_small_value_shares_its_statistics() -> None:
    ep = _export()
    x = np.random.default_rng(4).normal(size=(200, 5)).astype(np.float32)
    trace = trace_activations(ep, x, histogram_bins=6)
    src, view = trace.node("linear_1"), trace.node("squeeze")
    direct = batch_stats([torch.from_numpy(x)], 6)[0]
    assert direct == trace.node("x").stats
    assert view.stats is src.stats and view.stats.numel == 200  # type: ignore[union-attr]
    assert trace_run._same_source(("v", torch.zeros(3), True, ("same", "s")), {}) is None
    kept = {"s": torch.zeros(4)}  # a different size: not the same values
    assert trace_run._same_source(("v", torch.zeros(3), True, ("same", "s")), kept) is None


def test_the_parameter_cache_stays_bounded() -> None:
    x = np.random.default_rng(5).normal(size=(20, 5)).astype(np.float32)
    ep = _export()
    for bins in range(trace_run._PARAM_CACHE_PROGRAMS + 3):  # a new key each time
        with torch.no_grad():
            ep.state_dict["a.bias"].add_(0.5)
        assert _params(trace_activations(ep, x, histogram_bins=bins)) == _direct(ep, bins)
    assert len(trace_run._PARAM_STATS) <= trace_run._PARAM_CACHE_PROGRAMS


def test_two_snapshots_of_one_model_keep_their_own_statistics() -> None:
    a, b = _export(), _export()
    with torch.no_grad():
        b.state_dict["a.weight"].mul_(3.0)  # same names and shapes, other values
    x = np.random.default_rng(6).normal(size=(30, 5)).astype(np.float32)
    for _ in range(2):  # alternating traces, as a snapshot comparison runs them
        assert _params(trace_activations(a, x)) == _direct(a)
        assert _params(trace_activations(b, x)) == _direct(b)
    assert _params(trace_activations(a, x)) != _params(trace_activations(b, x))


def test_empty_integer_and_in_place_changed_parameters() -> None:
    params = [("e", torch.empty(0)), ("i", torch.arange(5)), ("f", torch.tensor([1.5, -2.0]))]
    first = trace_run._param_stats(params, 3)
    assert first == batch_stats([v for _, v in params], 3)
    assert first[0].numel == 0 and first[1].max == 4.0
    assert trace_run._param_stats(params, 3) is first  # reused
    params[1][1].add_(10)  # an in-place change of an integer parameter
    again = trace_run._param_stats(params, 3)
    assert again[1].max == 14.0 and again == batch_stats([v for _, v in params], 3)


def test_unchanged_nodes_keep_their_records_and_changed_ones_are_rebuilt() -> None:
    ep = _export()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    first = trace_activations(ep, x)
    again = trace_activations(ep, x)
    for a, b in zip(first.nodes, again.nodes, strict=True):
        assert a == b
        # a parameter's statistics are reused, and with them its record; an op's are new
        assert (a is b) == (a.kind == "parameter"), a.name
    fewer = trace_activations(ep, x[:7])  # another batch: new shapes, same parameters
    assert [n.shape for n in fewer.nodes if n.kind == "parameter"] == [
        n.shape for n in first.nodes if n.kind == "parameter"
    ]
    assert fewer.node("x").shape == (7, 5) and fewer.node("x") is not first.node("x")
    ep.state_dict["b.bias"].detach().numpy()[0] = 9.0
    changed = trace_activations(ep, x)
    assert changed.node("p_b_bias").stats.max == 9.0  # type: ignore[union-attr]
    assert changed.node("p_b_bias") is not first.node("p_b_bias")
    assert changed.node("p_a_weight") == first.node("p_a_weight")  # summarized again, equal
    assert first.node("p_b_bias").stats.max != 9.0  # type: ignore[union-attr]


def test_default_feature_names_follow_the_batch_width() -> None:
    ep = _export()
    x = np.zeros((3, 5), np.float32)
    assert trace_activations(ep, x).feature_names == ("x0", "x1", "x2", "x3", "x4")
    named = trace_activations(ep, x, feature_names=list("abcde"))
    assert named.feature_names == tuple("abcde")

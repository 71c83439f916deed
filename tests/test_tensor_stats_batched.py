"""tensor_stats fast paths: NaN/inf counted on big tensors, batched small-tensor stats equal to
per-tensor stats and numpy, exact histograms, and the trace's derived (view, ReLU) stats equal
to the stats of the values themselves."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from _node_values import node_values

from hawknb.kernels.activations import trace_activations
from hawknb.kernels.tensor_stats import (
    BLOCK,
    HIST_SAMPLE,
    SMALL,
    TensorStats,
    batch_stats,
    tensor_stats,
)


def _numpy_stats(a: np.ndarray) -> tuple[int, int, float, float, float, float]:
    fin = a[np.isfinite(a)].astype(np.float64)
    return (
        int(np.isnan(a).sum()),
        int(np.isinf(a).sum()),
        float(fin.min()),
        float(fin.max()),
        float(fin.mean()),
        float(fin.std()),
    )


def test_big_tensor_nonfinite_counts_are_exact() -> None:
    a = np.linspace(0.5, 2.0, 3 * SMALL, dtype=np.float32)  # all positive: min is not 0
    a[::97] = np.nan
    a[5::101] = np.inf
    a[7::103] = -np.inf
    s = tensor_stats(torch.from_numpy(a))
    nan, inf, lo, hi, mean, std = _numpy_stats(a)
    assert (s.nan_count, s.inf_count) == (nan, inf)
    assert (s.min, s.max) == (lo, hi)  # not the 0 that stands in for NaN/inf
    assert s.mean == pytest.approx(mean, rel=1e-5) and s.std == pytest.approx(std, rel=1e-4)
    assert s.max_abs == math.inf


def test_big_all_nan_and_all_negative_with_inf() -> None:
    s = tensor_stats(torch.full((SMALL + 1,), math.nan))
    assert (s.nan_count, s.inf_count, s.numel) == (SMALL + 1, 0, SMALL + 1)
    assert math.isnan(s.min) and math.isnan(s.mean)
    a = -np.arange(1, 2 * SMALL + 1, dtype=np.float32)
    a[0] = -np.inf
    s = tensor_stats(torch.from_numpy(a))
    assert (s.inf_count, s.min, s.max) == (1, -2.0 * SMALL, -2.0)  # max is not the 0 filler


def test_big_float32_overflow_falls_back_to_float64() -> None:
    a = np.full(4 * SMALL, 3e37, dtype=np.float32)
    a[::2] = -1e37
    s = tensor_stats(torch.from_numpy(a))
    assert s.mean == pytest.approx(1e37, rel=1e-6) and s.std == pytest.approx(2e37, rel=1e-6)


def _mixed_tensors() -> list[torch.Tensor]:
    rng = np.random.default_rng(3)
    out = [
        torch.from_numpy(rng.normal(5, 2, (40, 30)).astype(np.float32)),
        torch.arange(17),  # integers
        torch.ones(300, dtype=torch.float16),
        torch.tensor([math.nan, math.inf, -math.inf]),  # nothing finite
        torch.tensor(2.5),  # 0-d
        torch.empty(0),
        torch.from_numpy(rng.normal(0, 1, 3 * SMALL).astype(np.float32)),  # big, in the batch
    ]
    a = rng.normal(0, 1, (64, 8)).astype(np.float32)
    a[rng.random(a.shape) < 0.2] = np.nan
    a[rng.random(a.shape) < 0.1] = -np.inf
    out.append(torch.from_numpy(a))
    out.append(torch.from_numpy(a).t())  # non-contiguous
    return out


@pytest.mark.parametrize("bins", [0, 16])
def test_batched_stats_equal_per_tensor_stats(bins: int) -> None:
    ts = _mixed_tensors()
    assert batch_stats(ts, bins) == [tensor_stats(t, bins) for t in ts]


def test_batched_stats_match_numpy() -> None:
    for t, s in zip(_mixed_tensors(), batch_stats(_mixed_tensors()), strict=True):
        a = t.double().numpy().reshape(-1)
        assert s.numel == a.size
        if a.size == 0 or not np.isfinite(a).any():
            assert math.isnan(s.mean)
            continue
        nan, inf, lo, hi, mean, std = _numpy_stats(a)
        assert (s.nan_count, s.inf_count, s.min, s.max) == (nan, inf, lo, hi)
        assert s.mean == pytest.approx(mean, rel=1e-6, abs=1e-9)
        assert s.std == pytest.approx(std, rel=1e-5, abs=1e-9)


def test_small_histograms_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    arrays = [rng.normal(0, 1, 999), rng.uniform(-3, 7, (50, 20)), np.full(30, 4.0)]
    arrays[1][rng.random(arrays[1].shape) < 0.1] = np.nan
    ts = [torch.from_numpy(a.astype(np.float32)) for a in arrays]
    for t, s in zip(ts, batch_stats(ts, 12), strict=True):
        a = t.double().numpy().reshape(-1)
        fin = a[np.isfinite(a)]
        edges, counts = s.histogram
        assert len(edges) == 13 and edges[0] == fin.min()
        expected, _ = np.histogram(fin, bins=np.asarray(edges))
        # a value exactly on an inner edge may go to either neighbour; none are here
        assert not np.isin(fin, edges[1:-1]).any()
        assert list(counts) == expected.tolist()
    constant = batch_stats([ts[2]], 4)[0].histogram
    assert constant == ((4.0, 4.25, 4.5, 4.75, 5.0), (30, 0, 0, 0))


class _ViewsAndRelus(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(8, 2048)
        self.b = torch.nn.Linear(2048, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        h = h.reshape(x.shape[0], 64, 32).permute(0, 2, 1).flatten(1)
        return self.b(h).squeeze(-1)


@pytest.mark.parametrize("poison", [False, True])
def test_trace_derived_stats_equal_direct_stats(poison: bool) -> None:
    model = _ViewsAndRelus().eval()
    if poison:
        with torch.no_grad():
            model.a.weight[5, 0] = math.inf
    x = torch.randn(32, 8)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=2)},))
    trace = trace_activations(ep, x.numpy(), histogram_bins=8)
    values = node_values(ep, x)
    derived = [n for n in trace.nodes if n.target.split(".")[0] in ("relu", "permute", "view")]
    assert len(derived) >= 2
    for n in trace.nodes:
        if not isinstance(values.get(n.name), torch.Tensor):
            continue
        direct = tensor_stats(values[n.name], 8)
        assert n.stats is not None
        if n.stats.numel > HIST_SAMPLE and n.stats.histogram is not None:
            # a view's histogram is its input's: a strided sample of the same values, taken
            # in the input's layout (equally valid, not the same sample)
            assert n.stats.histogram[0] == direct.histogram[0]
            assert sum(n.stats.histogram[1]) == sum(direct.histogram[1])
            _assert_same_summary(n.stats, direct, n.name)
        else:
            assert n.stats == direct, n.name


def _assert_same_summary(shared: TensorStats, direct: TensorStats, name: str) -> None:
    """A view's statistics are its input's: the same multiset of values summed in another
    order, so the sums (mean, std) agree to float32 rounding and everything else exactly."""
    assert replace(shared, histogram=None, mean=0.0, std=0.0) == replace(
        direct, histogram=None, mean=0.0, std=0.0
    ), name
    assert shared.mean == pytest.approx(direct.mean, rel=1e-6), name
    assert shared.std == pytest.approx(direct.std, rel=1e-6), name


def test_blocks_of_a_big_tensor_combine_exactly() -> None:
    # finite block, all-NaN block, a block holding inf and the minimum, a partial last block
    # holding the maximum: the per-block reductions must combine into the whole's stats
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, 3 * BLOCK + 17).astype(np.float32)
    a[BLOCK : 2 * BLOCK] = np.nan
    a[2 * BLOCK + 3] = np.inf
    a[2 * BLOCK + 9] = -50.0
    a[-1] = 40.0
    nan, inf, lo, hi, mean, std = _numpy_stats(a)
    twice = torch.from_numpy(np.stack([a, a])).t()  # non-contiguous: flattened by a copy
    for x, k in ((torch.from_numpy(a), 1), (twice, 2)):
        s = tensor_stats(x)
        assert (s.nan_count, s.inf_count, s.min, s.max) == (k * nan, k * inf, -50.0, 40.0)
        assert (lo, hi) == (-50.0, 40.0)
        assert s.mean == pytest.approx(mean, rel=1e-4, abs=1e-6)
        assert s.std == pytest.approx(std, rel=1e-5)
    clean = np.abs(a[2 * BLOCK + 10 :])  # finite, >= 0: the ReLU bounds path
    direct = tensor_stats(torch.from_numpy(clean))
    bounded = tensor_stats(torch.from_numpy(clean), bounds=(float(clean.min()), 40.0))
    assert bounded == direct


class _SmallThenBig(torch.nn.Module):
    """A NaN weight in a narrow layer (a kept small value) feeding a wide one (a big value)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.narrow = torch.nn.Linear(8, 2)
        self.wide = torch.nn.Linear(2, 4096)
        with torch.no_grad():
            self.narrow.weight[1, 3] = math.nan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wide(self.narrow(x)).sum(-1)


def test_first_bad_node_is_the_small_one_before_a_big_bad_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hawknb.kernels import trace_run
    from hawknb.kernels.activations import find_first_anomaly

    x = torch.randn(64, 8)
    ep = torch.export.export(_SmallThenBig().eval(), (x,))
    trace = trace_activations(ep, x.numpy())
    fault = find_first_anomaly(trace)
    assert fault is not None and fault.node == "linear"  # the narrow layer, 64 x 2 values
    assert fault.bad_rows == 64 and "linear" in trace.row_max_abs
    assert fault.bad_units == (1,)
    # summarizing the kept small values every few entries gives the same trace
    monkeypatch.setattr(trace_run, "_PENDING_MAX", 10)
    again = trace_activations(ep, x.numpy())
    assert [n.stats for n in again.nodes] == [n.stats for n in trace.nodes]
    assert find_first_anomaly(again).node == "linear"


def test_row_bad_marks_nan_inf_and_extreme_rows() -> None:
    from hawknb.kernels.activations import _row_bad

    x = torch.zeros(5, 2, 3)
    x[1, 0, 2] = math.nan
    x[2, 1, 0] = -math.inf
    x[3, 1, 1] = 1e7
    x[4, 0, 0] = 9.9e5
    assert _row_bad(x, 5, 1e6).tolist() == [False, True, True, True, False]

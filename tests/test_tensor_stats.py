"""tensor_stats: the fused reductions agree with numpy on finite, non-finite, cancelling and
integer tensors; histograms count every finite value exactly once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hawknb.kernels.tensor_stats import HIST_SAMPLE, row_unit_bad, tensor_stats


def _check(a: np.ndarray, bins: int = 0) -> None:
    s = tensor_stats(torch.from_numpy(a), bins)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert (s.nan_count, s.inf_count) == (int(np.isnan(a).sum()), int(np.isinf(a).sum()))
    assert s.min == fin.min() and s.max == fin.max()
    assert s.mean == pytest.approx(fin.mean(), rel=1e-5, abs=1e-6)
    assert s.std == pytest.approx(fin.std(), rel=1e-4, abs=1e-6)
    if bins:
        edges, counts = s.histogram
        expected, _ = np.histogram(fin, bins=np.asarray(edges))
        # values on an inner edge may round into either neighbour; totals are exact
        assert sum(counts) == fin.size
        diff = np.abs(np.asarray(counts) - expected)
        if a.size <= HIST_SAMPLE:
            assert diff.sum() <= 2 * np.isin(fin, edges[1:-1]).sum()
        else:  # a strided sample scaled up: within 6 binomial sigmas of each exact count
            step = a.size / HIST_SAMPLE
            assert np.all(diff <= 6 * np.sqrt(step * (expected + 1)) + step)


def test_large_mean_small_spread_does_not_cancel() -> None:
    rng = np.random.default_rng(0)
    _check((1e4 + rng.normal(0, 1e-2, 200_000)).astype(np.float32))


def test_nonfinite_values_are_counted_and_excluded() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(3, 2, (5000, 16)).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    a[rng.random(a.shape) < 0.05] = np.inf
    a[rng.random(a.shape) < 0.05] = -np.inf
    _check(a, bins=32)


def test_sampled_histogram_visits_every_unit() -> None:
    # column j holds the value j everywhere: a stride sharing a factor with the 64 columns would
    # see only some of them; every bin must get its exact share (rows) up to rounding
    rows = 4 * HIST_SAMPLE // 64
    a = np.tile(np.arange(64, dtype=np.float32), (rows, 1))
    counts = tensor_stats(torch.from_numpy(a), 64).histogram[1]
    assert sum(counts) == a.size
    assert max(counts) - min(counts) <= 0.02 * rows


def test_small_nonfinite_histogram_is_exact() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, (300, 16)).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    a[rng.random(a.shape) < 0.05] = -np.inf
    _check(a, bins=16)


def test_histogram_bins_known_values() -> None:
    # 10 values at each bin centre of [0, 10] split into 10 bins
    a = np.repeat(np.arange(10, dtype=np.float32) + 0.5, 10)
    a = np.concatenate([a, [0.0, 10.0]]).astype(np.float32)
    s = tensor_stats(torch.from_numpy(a), 10)
    assert s.histogram[1] == (11,) + (10,) * 8 + (11,)
    big = tensor_stats(torch.from_numpy(a), 300)  # past uint8 bin indices
    assert sum(big.histogram[1]) == a.size


def test_overflowing_float32_sums_fall_back_to_float64() -> None:
    a = np.full(1000, 3e37, dtype=np.float32)
    a[::2] = -1e37
    _check(a)


def test_integer_and_half_tensors() -> None:
    s = tensor_stats(torch.arange(10))
    assert (s.min, s.max, s.mean) == (0.0, 9.0, 4.5)
    h = tensor_stats(torch.ones(5000, dtype=torch.float16))
    assert h.mean == 1.0 and h.std == 0.0 and h.numel == 5000


def test_all_nonfinite_and_empty() -> None:
    s = tensor_stats(torch.tensor([math.nan, math.inf]), 8)
    assert (s.nan_count, s.inf_count, s.max_abs) == (1, 1, math.inf)
    assert math.isnan(s.mean) and s.histogram is None
    assert tensor_stats(torch.empty(0)).numel == 0


def test_row_unit_bad_marks_rows_and_units() -> None:
    x = torch.zeros(4, 3, 5)
    x[1, 0, 2] = math.nan
    x[3, 2, 4] = 1e7
    w = row_unit_bad(x, 4, 1e6)
    assert np.isinf(w.row_max_abs[1]) and w.row_max_abs[3] == 1e7 and w.row_max_abs[0] == 0
    assert w.unit_bad.tolist() == [0, 0, 1, 0, 1]


@pytest.mark.parametrize("shape", [(300,), (300, 1), (300, 7), (300, 3, 5), (1, 4)])
def test_row_unit_bad_equals_a_numpy_reference(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    a = rng.normal(size=shape).astype(np.float32) * 1e5
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, size=max(1, flat.size // 9), replace=False)] = 3e6  # extreme
    flat[:: max(2, flat.size // 5)] = np.nan
    flat[1 :: max(3, flat.size // 4)] = -np.inf
    w = row_unit_bad(torch.from_numpy(a), shape[0], 1e6)
    mag = np.where(np.isnan(a), np.inf, np.abs(a))
    np.testing.assert_array_equal(w.row_max_abs, mag.reshape(shape[0], -1).max(axis=1))
    width = shape[-1] if len(shape) >= 2 else 1
    expect = (mag.reshape(-1, width) >= 1e6).sum(axis=0)
    assert w.unit_bad.dtype == np.int64 and w.unit_bad.tolist() == expect.tolist()

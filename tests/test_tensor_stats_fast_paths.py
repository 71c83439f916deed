"""The tensor statistics' shortcuts give the results of the general paths: the top edge's bin
folded after counting equals clamping before it, a few small tensors binned one by one equal
the segment-offset ``bincount``, the scaling of a big tensor's sample counts equals the
largest-remainder rounding written with numpy, small float64 tensors whose squares overflow get
their std without a warning, and records built without ``__init__`` equal constructed ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hawknb.kernels import tensor_stats as ts


def _clamped_counts(v: np.ndarray, lo: float, hi: float, bins: int) -> list[int]:
    """The general path: clamp the index to the last bin before counting."""
    top = hi if hi > lo else lo + 1.0
    t = np.subtract(v, lo, dtype=v.dtype) * v.dtype.type(bins / (top - lo))
    idx = np.minimum(t, bins - 1).astype(np.int32)
    return np.bincount(idx, minlength=bins)[:bins].tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bins", [1, 7, 32])
def test_folding_the_top_edge_equals_clamping(dtype: type, bins: int) -> None:
    rng = np.random.default_rng(bins)
    v = rng.normal(3, 2, 5000).astype(dtype)
    v[:50] = v.max()  # many values on the top edge
    lo, hi = float(v.min()), float(v.max())
    assert ts._bin_counts(v, lo, hi, bins, True).tolist() == _clamped_counts(v, lo, hi, bins)
    const = np.full(40, 2.5, dtype)  # a constant tensor: one bin of width 1
    assert ts._bin_counts(const, 2.5, 2.5, bins, True).tolist() == [40] + [0] * (bins - 1)


def test_wide_ranges_and_nonfinite_values_take_the_general_path() -> None:
    v = np.array([-3e38, 0.0, 3e38, 1.0], np.float32)  # v - lo overflows float32
    wide = ts._bin_counts(v, -3e38, 3e38, 4, True).tolist()  # binned in float32 precision
    assert sum(wide) == 4 and wide[0] == 1 and wide[-1] == 1
    w = np.array([0.0, np.nan, 1.0, np.inf, 0.5], np.float32)
    assert ts._bin_counts(w, 0.0, 1.0, 2, False).tolist() == [1, 2]


def _segment_counts(arrays: list[np.ndarray], bins: int) -> list[object]:
    buf = np.concatenate(arrays).astype(np.float64)
    sizes = np.array([a.size for a in arrays])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lo = np.array([a.min() for a in arrays], np.float64)
    hi = np.array([a.max() for a in arrays], np.float64)
    return ts._segment_histograms(buf, None, starts, sizes, lo, hi, sizes, bins)


def test_few_small_tensors_binned_alone_equal_the_segment_path() -> None:
    rng = np.random.default_rng(7)
    arrays = [rng.normal(0, 1, 999), rng.uniform(-3, 7, 1000), np.full(30, 4.0), np.arange(17.0)]
    buf = np.concatenate(arrays)
    first = [0, 999, 1999, 2029]
    sizes = [a.size for a in arrays]
    lo, hi = [float(a.min()) for a in arrays], [float(a.max()) for a in arrays]
    for bins in (1, 5, 32):
        few = ts._few_histograms(buf, first, sizes, lo, hi, bins)
        assert few == _segment_counts(arrays, bins)
        assert [sum(h[1]) for h in few] == sizes  # type: ignore[index]
    huge = [np.array([-1e308, 1e308])]  # a span that overflows float64: not binned here
    assert ts._few_histograms(huge[0], [0], [2], [-1e308], [1e308], 4) is None


def test_batched_histograms_of_a_few_tensors_equal_one_by_one() -> None:
    rng = np.random.default_rng(8)
    tensors = [torch.from_numpy(rng.normal(0, s, 300).astype(np.float32)) for s in (1, 5, 9)]
    assert ts.batch_stats(tensors, 16) == [ts.tensor_stats(t, 16) for t in tensors]
    for t, s in zip(tensors, ts.batch_stats(tensors, 16), strict=True):
        a = t.double().numpy()
        edges, counts = s.histogram  # type: ignore[misc]
        assert list(counts) == np.histogram(a, bins=np.asarray(edges))[0].tolist()


def _scaled_numpy(counts: np.ndarray, total: int) -> tuple[int, ...]:
    share = counts * (total / counts.sum())
    out = np.floor(share).astype(np.int64)
    short = total - int(out.sum())
    out[np.argsort(-(share - out), kind="stable")[:short]] += 1
    return tuple(out.tolist())


def test_scaled_counts_equal_the_numpy_rounding() -> None:
    rng = np.random.default_rng(9)
    for bins in (1, 3, 32, 64, 65, 200):
        for _ in range(20):
            counts = rng.integers(0, 50, bins).astype(np.float64)
            counts[0] += 1  # never all zero
            total = int(rng.integers(int(counts.sum()), 10**6))
            got = ts._scaled(counts, total)
            assert got == _scaled_numpy(counts, total) and sum(got) == total
            assert ts._scaled(counts.astype(np.int64), total) == got  # as bincount gives them
    ties = np.array([1.0, 1.0, 1.0])  # equal remainders: the first bins round up
    assert ts._scaled(ties, 5) == (2, 2, 1)


def test_sample_stride_is_cached_and_coprime_with_the_shape() -> None:
    shape = (4096, 32)
    step = ts._step(math.prod(shape), shape)
    assert step == ts._step(math.prod(shape), shape) and math.gcd(step, 4096 * 32) == 1
    assert ts._STEPS[(4096 * 32, shape)] == step


def test_small_float64_squares_that_overflow_warn_nothing() -> None:
    import warnings

    vals = [torch.tensor([1e200, -3e200, 2e200], dtype=torch.float64), torch.tensor([1.0, 3.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow outside numpy's error state would raise
        big, small = ts.batch_stats(vals)
    assert big.mean == pytest.approx(0.0, abs=1e186) and big.std == pytest.approx(
        2.1602e200, rel=1e-4
    )
    assert (small.mean, small.std) == (2.0, 1.0)


def test_records_equal_constructed_stats() -> None:
    s = ts.tensor_stats(torch.arange(40000, dtype=torch.float32))
    built = ts.TensorStats(**{k: getattr(s, k) for k in vars(s)})
    assert s == built and hash(s) == hash(built) and repr(s) == repr(built)
    assert set(vars(s)) == set(vars(built))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_of_one_signed_blocks_take_blas_asum(dtype: type) -> None:
    rng = np.random.default_rng(12)
    v = rng.normal(0, 3, 50_000).astype(dtype)
    for block in (np.abs(v), -np.abs(v), np.maximum(v, 0), np.zeros(9, dtype), v):
        exact = float(block.astype(np.float64).sum())
        got = ts._sum(block, float(block.min()), float(block.max()))
        assert got == pytest.approx(exact, rel=1e-6, abs=1e-6)
    relu = np.maximum(v, 0).reshape(500, 100)  # a big ReLU output, with and without bounds
    for bounds in (None, (0.0, float(relu.max()))):
        s = ts.tensor_stats(torch.from_numpy(relu), bounds=bounds)
        assert s.mean == pytest.approx(relu.mean(dtype=np.float64), rel=1e-6)
        assert s.std == pytest.approx(relu.std(dtype=np.float64), rel=1e-5)

"""The compiled one-pass moments of big tensors (:mod:`hawknb.kernels._stats_jit`) against
numpy's path: the same counts and extremes exactly, the same moments to float32 rounding, on
blocks holding NaN, +inf, -inf, nothing finite, values whose squares overflow, float64 input
and sizes that are not a multiple of any vector width; numpy's path still answers when numba
is missing; importing the statistics does not import numba."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hawknb.kernels import _stats_jit
from hawknb.kernels import tensor_stats as ts
from hawknb.kernels.tensor_stats import BLOCK, SMALL, TensorStats, tensor_stats

pytestmark = [
    pytest.mark.skipif(not _stats_jit.READY, reason="numba is not installed"),
]

ROOT = Path(__file__).resolve().parents[1]


def _both(
    x: torch.Tensor, monkeypatch: pytest.MonkeyPatch, bins: int = 0, **kw: object
) -> tuple[TensorStats, TensorStats]:
    """(compiled, numpy) stats of ``x``."""
    fast = tensor_stats(x, bins, **kw)
    with monkeypatch.context() as m:
        m.setattr(_stats_jit, "READY", False)
        assert ts._fused() is None
        slow = tensor_stats(x, bins, **kw)
    return fast, slow


def _same(fast: TensorStats, slow: TensorStats, rel: float = 1e-5) -> None:
    exact = ("numel", "nan_count", "inf_count", "min", "max", "max_abs", "histogram")
    for field in exact:
        a, b = getattr(fast, field), getattr(slow, field)
        assert a == b or (a != a and b != b), (field, a, b)  # NaN == NaN here
    for field in ("mean", "std"):
        a, b = getattr(fast, field), getattr(slow, field)
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=1e-7), (
            field,
            a,
            b,
        )


def _blocks(rng: np.random.Generator, n: int, dtype: type) -> dict[str, np.ndarray]:
    """Named arrays of ``n`` values exercising every branch of the kernels."""
    base = rng.normal(0.3, 2.0, n).astype(dtype)
    out = {"finite": base, "relu": np.maximum(base, 0), "negative": -np.abs(base) - 1}
    a = base.copy()
    a[rng.integers(0, n, 7)] = np.nan
    out["nan"] = a
    a = base.copy()
    a[rng.integers(0, n, 5)] = np.inf
    a[rng.integers(0, n, 5)] = -np.inf
    out["inf"] = a
    a = base.copy()
    a[: min(BLOCK, n)] = np.nan  # a whole block with nothing finite
    out["nan block"] = a
    out["all nan"] = np.full(n, np.nan, dtype)
    out["all inf"] = np.where(np.arange(n) % 2 == 0, np.inf, -np.inf).astype(dtype)
    # squares overflow (and float32 sums of them), redone in float64 around the mean
    scale = np.finfo(np.float32).max / 8 if dtype == np.float32 else 1e200
    huge = np.clip(base, -7, 7) * dtype(scale)
    out["huge"] = huge
    h = huge.copy()
    h[n // 2] = np.nan
    out["huge nan"] = h
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [SMALL + 1, BLOCK + 13, 3 * BLOCK + 7])
def test_jit_equals_numpy_path(dtype: type, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(n)
    for name, a in _blocks(rng, n, dtype).items():
        fast, slow = _both(torch.from_numpy(a), monkeypatch, bins=16)
        _same(fast, slow)  # histograms too: all values binned up to HIST_SAMPLE, a sample above
        assert fast.numel == n, name
        fin = a[np.isfinite(a)]
        if fin.size:  # and both equal the plain truth for counts and extremes
            assert (fast.min, fast.max) == (float(fin.min()), float(fin.max())), name
        assert fast.nan_count == int(np.isnan(a).sum()), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histograms_and_bounds_agree(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    for name, a in _blocks(rng, 2 * BLOCK + 5, dtype).items():
        fast, slow = _both(torch.from_numpy(a), monkeypatch, bins=32)
        _same(fast, slow)
        assert (fast.histogram is None) == (slow.histogram is None), name
    relu = np.maximum(rng.normal(0, 1, 2 * BLOCK + 5), 0).astype(dtype)
    bounds = (0.0, float(relu.max()))
    fast, slow = _both(torch.from_numpy(relu), monkeypatch, bounds=bounds)
    _same(fast, slow)
    assert tensor_stats(torch.from_numpy(relu)) == fast  # the same sums with or without bounds


def test_kernel_blocks_match_numpy_blocks() -> None:
    # odd block sizes: every partial block and every vector-width remainder
    rng = np.random.default_rng(11)
    for n, block in ((1, 1), (7, 3), (1000, 17), (5003, 1000), (40_000, 4096)):
        for name, a in _blocks(rng, n, np.float32).items():
            parts = [ts._block_moments(a[i : i + block]) for i in range(0, n, block)]
            lo, hi, s, q, finite, nan = _stats_jit.block_moments(a, block)
            assert finite == sum(p[4] for p in parts), name
            assert nan == sum(p[5] for p in parts), name
            if finite:
                assert lo == min(p[0] for p in parts if p[4]), name
                assert hi == max(p[1] for p in parts if p[4]), name
            else:
                assert math.isnan(lo) and math.isnan(hi), name
            if name.startswith("huge"):  # float32 sums overflow: both redo them in float64
                continue
            fin = a[np.isfinite(a)].astype(np.float64)
            assert s == pytest.approx(fin.sum(), rel=1e-4, abs=1e-3), name
            assert q == pytest.approx(fin @ fin, rel=1e-5), name


def test_signed_zeros_and_extremes() -> None:
    a = np.array([0.0, -0.0, 3.0, -7.5, np.finfo(np.float32).max, -np.finfo(np.float32).max])
    for dtype in (np.float32, np.float64):
        b = np.tile(a.astype(dtype), 3)
        lo, hi, _, _, finite, nan = _stats_jit.block_moments(b, 4)
        assert (lo, hi, finite, nan) == (float(b.min()), float(b.max()), b.size, 0)
        z = np.array([0.0, -0.0, 0.0], dtype)
        lo, hi, s, q, _, _ = _stats_jit.block_moments(z, 2)
        assert lo == 0.0 and hi == 0.0 and s == 0.0 and q == 0.0


def test_other_layouts_take_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.random.default_rng(2).normal(0, 1, 4 * SMALL).astype(np.float32)
    strided = torch.from_numpy(a)[::2]  # 1-d, not contiguous: numpy's path
    assert not _stats_jit.usable(ts._flat(strided))
    assert _stats_jit.usable(ts._flat(strided.contiguous()))
    fast, slow = _both(strided, monkeypatch)
    assert fast == slow
    _same(tensor_stats(strided.contiguous()), slow)
    half = torch.from_numpy(a).half()  # converted to float32 first: compiled
    _same(*_both(half, monkeypatch), rel=1e-4)


def test_numpy_path_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stats_jit, "READY", False)
    a = np.random.default_rng(4).normal(1, 2, 2 * BLOCK + 3).astype(np.float32)
    a[5] = np.nan
    a[9] = -np.inf
    s = tensor_stats(torch.from_numpy(a), 8)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert (s.nan_count, s.inf_count, s.min, s.max) == (1, 1, fin.min(), fin.max())
    assert s.mean == pytest.approx(fin.mean(), rel=1e-5)
    assert s.std == pytest.approx(fin.std(), rel=1e-5)
    assert sum(s.histogram[1]) == fin.size  # type: ignore[index]


def test_importing_the_statistics_does_not_import_numba() -> None:
    code = (
        "import sys, json\nimport hawknb.kernels.activations, hawknb.kernels.tensor_stats\n"
        "print(json.dumps('numba' in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


@pytest.mark.parametrize("n", [SMALL + 1, BLOCK + 13])
@pytest.mark.parametrize("nan", [False, True])
def test_float64_values_whose_squares_overflow_keep_a_finite_std(n: int, nan: bool) -> None:
    """Deviations of ~1e200 square past float64's range: the std is taken in units of the
    largest (it was inf), on both paths, as the small tensors' is."""
    rng = np.random.default_rng(n)
    a = rng.normal(0.0, 1.0, n) * 1e200
    if nan:
        a[n // 3] = np.nan
    fin = a[np.isfinite(a)]
    want = float(np.std(fin / 1e200)) * 1e200
    for jit in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not jit:
                mp.setattr(_stats_jit, "READY", False)
            got = tensor_stats(torch.from_numpy(a.copy()))
        assert math.isfinite(got.std)
        assert got.std == pytest.approx(want, rel=1e-9)
        assert got.mean == pytest.approx(float(np.mean(fin / 1e200)) * 1e200, rel=1e-6, abs=1e192)
        assert got.nan_count == int(nan)

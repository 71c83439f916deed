"""The compiled small-tensor statistics (:mod:`hawknb.kernels._small_jit`) against the
segmented numpy path they replace: equal TensorStats (counts, extremes, mean, std and
histograms to the bit), on sizes of every class of numpy's pairwise sum, NaN/inf, nothing
finite, constants, values whose squares overflow or whose variance cancels, float64 input,
several bin counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hawknb.kernels import _small_jit
from hawknb.kernels import tensor_stats as ts
from hawknb.kernels.tensor_stats import SMALL, batch_stats

pytestmark = pytest.mark.skipif(not _small_jit.READY, reason="numba is not installed")


def _cases(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    sizes = [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 136, 255, 256, 257, 1000, 4096, SMALL]
    for n in sizes + [int(k) for k in rng.integers(1, SMALL, 12)]:
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 7, n)  # order-sensitive sums
        out.append(a.astype(np.float32))
        out.append(a)
        b = a.copy()
        b[rng.integers(0, n, max(1, n // 50))] = rng.choice([np.nan, np.inf, -np.inf])
        out.append(b.astype(np.float32))
    out += [
        np.full(300, np.nan, np.float32),
        np.array([np.inf, -np.inf, np.nan], np.float32),
        np.full(200, 3.5, np.float32),  # constant
        1e4 + rng.standard_normal(500).astype(np.float32) * 1e-3,  # variance cancels
        (rng.standard_normal(300) * 1e200),  # squares overflow
        np.array([1e300, -1e300, np.inf]),
        np.abs(rng.standard_normal(999)).astype(np.float32),
        np.array([-0.0] * 20 + [2.0, -2.0] + [-0.0] * 20),  # signed zeros in the sums
        np.array([-0.0] * 3 + [1e-3], np.float32),
    ]
    return out


@pytest.mark.parametrize("bins", [0, 1, 7, 32])
def test_compiled_small_stats_equal_the_segmented_path(
    bins: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(bins)
    tensors = [torch.from_numpy(a) for a in _cases(rng)]
    fast = batch_stats(tensors, bins)
    with monkeypatch.context() as m:
        m.setattr(ts, "SMALL_JIT", False)
        slow = batch_stats(tensors, bins)
    for f, s, t in zip(fast, slow, tensors, strict=True):
        assert repr(f) == repr(s), (t.dtype, t.numel())  # repr: NaN fields compare too


def test_reduceat_order_is_numpys() -> None:
    rng = np.random.default_rng(7)
    for n in list(range(1, 300)) + [int(k) for k in rng.integers(300, 40000, 40)]:
        y = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 9, n)
        expect = (np.add.reduceat(y, [0])[0], np.add.reduceat(y * y, [0])[0])
        assert _small_jit._reduceat_sums(y) == expect, n
        z = y.astype(np.float32)
        w = z.astype(np.float64)
        assert _small_jit._reduceat_sums(z) == (
            np.add.reduceat(w, [0])[0],
            np.add.reduceat(w * w, [0])[0],
        ), n


@pytest.mark.parametrize("shape", [(5,), (64, 1), (64, 7), (8, 3, 5), (300, 33)])
def test_compiled_row_unit_bad_equals_numpys(
    shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(len(shape))
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(0, 9, shape)).astype(np.float32)
    flat = a.reshape(-1)
    flat[rng.integers(0, flat.size, 4)] = [np.nan, np.inf, -np.inf, -0.0]
    x = torch.from_numpy(a)
    for extreme in (1e6, 3.5, 1e30):
        fast = ts.row_unit_bad(x, shape[0], extreme)
        with monkeypatch.context() as m:
            m.setattr(ts, "ROWS_JIT", False)
            slow = ts.row_unit_bad(x, shape[0], extreme)
        assert fast.row_max_abs.dtype == slow.row_max_abs.dtype
        assert fast.row_max_abs.tolist() == slow.row_max_abs.tolist()
        assert fast.unit_bad.dtype == slow.unit_bad.dtype == np.int64
        assert fast.unit_bad.tolist() == slow.unit_bad.tolist()

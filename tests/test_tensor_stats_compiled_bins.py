"""The compiled kernels added for AVX2 machines and for histograms against the code they
replace: the int32 extreme keys against the int64 ones, the scaled sample counts against
``_scaled``, the small tensors' compiled histograms against numpy's two binning paths, and
whole traces with histograms and NaN/inf weights against numba forced off."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hawknb.kernels import _stats_jit
from hawknb.kernels import tensor_stats as ts
from hawknb.kernels.activations import trace_activations

pytestmark = [pytest.mark.skipif(not _stats_jit.READY, reason="numba is not installed")]


def _special(rng: np.random.Generator, n: int) -> np.ndarray:
    a = (rng.normal(size=n) * 10 ** rng.uniform(-30, 30)).astype(np.float32)
    for v in (np.nan, np.inf, -np.inf, -0.0, 0.0, np.float32(3e38), np.float32(-1e-45)):
        if rng.random() < 0.3:
            a[rng.integers(0, n, 2)] = v
    return a


def test_int32_keys_equal_the_int64_keys() -> None:
    rng = np.random.default_rng(0)
    c = _stats_jit._BITS[np.dtype(np.float32)]
    for n in (1, 7, 8, 9, 31, 257, 4099):
        for _ in range(40):
            bits = _special(rng, n).view(np.int32)
            got = tuple(map(int, _stats_jit._keys32(bits)))
            assert got == tuple(map(int, _stats_jit._keys(bits, c)))


def test_scaled_sample_counts_equal_the_python_rounding() -> None:
    rng = np.random.default_rng(1)
    for bins in (1, 2, 3, 32, 65, 100):
        for _ in range(200):
            counts = rng.integers(0, 50, bins).astype(np.int64)
            counts[rng.integers(0, bins)] += 1  # at least one value
            if rng.random() < 0.3:
                counts[:] = counts[0] + 1  # ties everywhere
            total = int(counts.sum() * rng.uniform(1, 40))
            got = tuple(_stats_jit._scale(counts, total).tolist())
            assert got == ts._scaled(counts, total) and sum(got) == total


@pytest.mark.parametrize("n", [ts.SMALL + 1, ts.HIST_SAMPLE * 3 + 5, ts.BLOCK * 2 + 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_histograms_equal_numpys(n: int, dtype: type, monkeypatch) -> None:
    rng = np.random.default_rng(n)
    for case in range(6):
        a = rng.normal(0.1, 3.0, n).astype(dtype)
        if case % 2:
            a[rng.integers(0, n, 5)] = rng.choice([np.nan, np.inf, -np.inf], 5)
        if case == 4:
            a = np.abs(a)  # one sign
        x = torch.from_numpy(a).reshape(-1, 1) if case == 5 else torch.from_numpy(a)
        fast = ts.tensor_stats(x, 32)
        with monkeypatch.context() as m:
            m.setattr(_stats_jit, "READY", False)
            slow = ts.tensor_stats(x, 32)
        assert fast.histogram == slow.histogram
        assert sum(fast.histogram[1]) == n - fast.nonfinite


def _segments(rng: np.random.Generator) -> list[torch.Tensor]:
    out = []
    for _ in range(int(rng.integers(1, 9))):
        n = int(rng.integers(1, 3000))
        a = rng.normal(size=n) * 10 ** rng.uniform(-3, 5)
        if rng.random() < 0.3:
            a[rng.integers(0, n, 3)] = rng.choice([np.nan, np.inf, -np.inf], 3)
        if rng.random() < 0.1:
            a[:] = a[0]  # constant: the range is lo .. lo + 1
        if rng.random() < 0.1:
            a[:] = np.nan  # nothing finite: no histogram
        out.append(torch.from_numpy(a.astype(np.float32 if rng.random() < 0.6 else np.float64)))
    return out


def test_small_histograms_equal_both_numpy_paths(monkeypatch) -> None:
    """One to eight small tensors (numpy bins up to four finite ones one by one, more with
    segment-offset indices): the compiled loop gives the same counts and edges."""
    rng = np.random.default_rng(2)
    for _ in range(400):
        tensors, bins = _segments(rng), int(rng.choice([1, 2, 7, 32, 100]))
        fast = ts.batch_stats(tensors, bins)
        with monkeypatch.context() as m:
            m.setattr(ts, "_compiled_histograms", lambda *a: None)
            m.setattr(ts, "SMALL_JIT", False)
            slow = ts.batch_stats(tensors, bins)
        assert [s.histogram for s in fast] == [s.histogram for s in slow]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # numpy's fallback
def test_ranges_too_wide_to_scale_fall_back_to_numpy() -> None:
    a = torch.tensor([-1.7e308, 1.7e308, 0.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1.0 + 2**-52], dtype=torch.float64)
    for t in (a, b):
        (s,) = ts.batch_stats([t], 4)
        assert s.histogram is not None and sum(s.histogram[1]) == t.numel()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.lin = nn.Linear(6 * 8 * 8, 40)
        self.out = nn.Linear(40, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.reshape(-1, 1, 8, 8)).relu().flatten(1)
        return torch.sigmoid(self.out(self.lin(h).relu())).squeeze(-1)


@pytest.mark.parametrize("plant", [None, math.nan, math.inf])
def test_traces_with_histograms_equal_numbas_absence(plant: float | None, monkeypatch) -> None:
    """Every node's statistics and histogram of a conv net (big and small values), with a
    NaN/inf weight or none, equal the numpy path's: the histograms exactly, the moments to
    float32 rounding."""
    torch.manual_seed(0)
    m = _Net().eval()
    if plant is not None:
        with torch.no_grad():
            m.lin.weight.view(-1)[3] = plant
    ep = torch.export.export(m, (torch.randn(4, 64),), dynamic_shapes=({0: torch.export.Dim("b")},))
    x = np.random.default_rng(0).normal(size=(900, 64)).astype(np.float32)
    fast = trace_activations(ep, x, histogram_bins=32)
    with monkeypatch.context() as mp:
        mp.setattr(_stats_jit, "READY", False)
        slow = trace_activations(ep, x, histogram_bins=32)
    for a, b in zip(fast.nodes, slow.nodes, strict=True):
        assert a.name == b.name and (a.stats is None) == (b.stats is None)
        if a.stats is None:
            continue
        assert a.stats.histogram == b.stats.histogram, a.name
        assert (a.stats.nan_count, a.stats.inf_count) == (b.stats.nan_count, b.stats.inf_count)
        for f in ("min", "max", "mean", "std"):
            u, v = getattr(a.stats, f), getattr(b.stats, f)
            assert (math.isnan(u) and math.isnan(v)) or u == pytest.approx(v, rel=1e-5, abs=1e-7)
    assert fast.row_max_abs.keys() == slow.row_max_abs.keys()


@pytest.mark.parametrize("fill", [math.nan, math.inf, -math.inf, "mixed"])
def test_blocks_with_nothing_finite_are_counted_as_the_careful_pass_counts(fill) -> None:
    """A float32 block holding no finite value skips the careful pass (only its NaN are
    counted); blocks around it that hold some finite values still take it: the same
    statistics as the careful pass over every block."""
    rng = np.random.default_rng(3)
    block = 1 << 10
    a = rng.normal(size=block * 5 + 17).astype(np.float32)
    if fill == "mixed":
        a[block : 2 * block] = rng.choice([np.nan, np.inf, -np.inf], block)
    else:
        a[block : 2 * block] = fill
    a[3 * block :] = np.nan  # the last blocks: nothing finite
    a[3 * block + 5] = np.inf
    a[block * 2 + 7] = np.nan  # a block with both
    got = _stats_jit.block_moments(a, block)
    c = _stats_jit._BITS[a.dtype]
    want = []  # the kernel before: the careful pass over every block whose keys are not finite
    for i in range(0, a.size, block):
        x, bits = a[i : i + block], a[i : i + block].view(np.int32)
        if np.isfinite(x).all():
            want.append((0, 0, *_stats_jit._block_sums(x)[:2], x.size, 0))
        else:
            want.append(_stats_jit._careful(x, bits, c))
    assert got[4] == sum(int(w[4]) for w in want) and got[5] == sum(int(w[5]) for w in want)
    fin = a[np.isfinite(a)]
    assert (got[0], got[1]) == (fin.min(), fin.max())
    # float32 sums: the compiled loop may vectorize them another way on another CPU (AVX-512
    # against AVX2), so they agree to the rounding of float32 accumulation, not bit for bit
    assert got[2] == pytest.approx(sum(float(w[2]) for w in want), rel=1e-5)
    assert got[3] == pytest.approx(sum(float(w[3]) for w in want), rel=1e-5)

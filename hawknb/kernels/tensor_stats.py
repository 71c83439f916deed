"""Summary statistics of one tensor in a few fused, allocation-free reductions.

Activation tracing summarizes every node of a forward pass, so the summary has to cost a small
fraction of the op that produced the tensor. On CPU, a reduction over a tensor that was just
written (still in cache) costs about as much as an elementwise op, while ``torch.std_mean``
(Welford), ``torch.histc``, boolean masks and mask-selected copies cost 10-300x that. Hence:

- the common, all-finite case is one ``aminmax``, one ``sum`` and one ``vector_norm`` (the sum of
  squares) read back in a single host transfer; the variance ``E[x^2] - mean^2`` is only
  recomputed around the mean when it cancels (``mean^2`` dwarfs the variance);
- NaN/inf are counted only when ``aminmax`` shows a non-finite value, and then without a
  mask-selected copy: the finite values' moments come from ``nan_to_num`` copies;
- histograms bin with a multiply, a clamp and an 8-bit ``bincount`` instead of ``histc``, on
  an evenly strided sample of ~65k values for bigger tensors (the shape is what is displayed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["HIST_SAMPLE", "RowUnitBad", "TensorStats", "row_unit_bad", "tensor_stats"]

#: recompute the variance around the mean when it is below this share of E[x^2]
#: (float32 sums carry ~1e-7 relative error, so the shortcut keeps ~1e-4 relative accuracy)
_CANCEL = 1e-3
#: histograms of bigger tensors are counted on an evenly strided sample of about this many
#: values and scaled to the finite count: a display of the shape, ~0.4% relative noise per bin
HIST_SAMPLE = 1 << 16
_F32_MAX = float(torch.finfo(torch.float32).max)


@dataclass(frozen=True)
class TensorStats:
    """Summary of one tensor. min/max/mean/std are over its finite values (NaN if none)."""

    numel: int
    nan_count: int
    inf_count: int
    min: float
    max: float
    mean: float
    std: float
    max_abs: float
    #: (bin edges, counts) over finite values when histograms were asked for; edges span the
    #: exact min..max, counts are exact up to ``HIST_SAMPLE`` values and above that come from
    #: an evenly strided sample scaled to the finite count (they still sum to it)
    histogram: tuple[tuple[float, ...], tuple[int, ...]] | None = None

    @property
    def nonfinite(self) -> int:
        return self.nan_count + self.inf_count


def _host(*ts: torch.Tensor) -> list[float]:
    """0-d tensors to Python floats in one transfer."""
    return torch.stack([t.to(torch.float64) for t in ts]).tolist()


def _mean_std(x: torch.Tensor, s: float, q: float, count: int, zeroed: int) -> tuple[float, float]:
    """mean and std of ``count`` values from their sum ``s`` and root sum of squares ``q``.

    ``x`` holds the values plus ``zeroed`` zeros (non-finite entries replaced by 0); it is only
    read again when the shortcut variance cancels or the float32 sums overflowed.
    """
    if not (math.isfinite(s) and math.isfinite(q)):  # float32 overflow: redo in float64
        x = x.to(torch.float64)
        s, q = _host(x.sum(), torch.linalg.vector_norm(x))
    mean = s / count
    ex2 = q * q / count
    var = ex2 - mean * mean
    if var < _CANCEL * ex2:  # cancellation: centre first (zeros contribute zeroed * mean^2)
        xc = x.to(torch.float64) if x.numel() < 1 << 16 else x  # small: exact; big: cheap
        c2 = float(torch.linalg.vector_norm(xc - mean)) ** 2
        var = max(c2 - zeroed * mean * mean, 0.0) / count
    return mean, math.sqrt(max(var, 0.0))


def _step(n: int, shape: tuple[int, ...]) -> int:
    """A stride near ``n / HIST_SAMPLE`` sharing no factor with any dimension, so a strided
    sample of the flattened tensor visits every unit/channel rather than a fixed subset."""
    step = max(2, math.ceil(n / HIST_SAMPLE))
    while any(math.gcd(step, d) > 1 for d in shape if d > 1):
        step += 1
    return step


def _scaled(counts: np.ndarray, total: int) -> tuple[int, ...]:
    """Sample counts scaled to ``total`` values, rounded so that they sum to it exactly."""
    share = counts * (total / counts.sum())
    out = np.floor(share).astype(np.int64)
    short = total - int(out.sum())
    out[np.argsort(-(share - out), kind="stable")[:short]] += 1
    return tuple(int(c) for c in out)


def _histogram(
    x: torch.Tensor, lo: float, hi: float, bins: int, finite: int
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Counts of the ``finite`` finite values of ``x`` in ``bins`` equal bins over [lo, hi]
    (the top edge inclusive, as ``torch.histc``); from a strided sample past HIST_SAMPLE."""
    n = x.numel()
    if n > HIST_SAMPLE:
        sample = x.reshape(-1)[:: _step(n, tuple(x.shape))]
        edges, counts = _binned(sample, lo, hi, bins, finite == n)
        if sum(counts):
            return edges, _scaled(np.asarray(counts, dtype=np.float64), finite)
    return _binned(x, lo, hi, bins, finite == n)


def _binned(
    x: torch.Tensor, lo: float, hi: float, bins: int, finite: bool
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    top = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, top, bins + 1)
    scale = bins / (top - lo)
    if not math.isfinite(scale) or not math.isfinite(top - lo):
        vals = x if finite else x[torch.isfinite(x)]
        counts = torch.histc(vals.to(torch.float64), bins=bins, min=lo, max=top)
        return tuple(float(e) for e in edges), tuple(int(c) for c in counts.tolist())
    t = (x - lo).mul_(scale)
    if not finite:
        t.add_(x * 0)  # NaN where x is NaN/inf ...
    t.clamp_(0, bins - 1)
    if not finite:
        t.nan_to_num_(nan=bins)  # ... binned past the end and dropped
    idx = t.to(torch.uint8 if bins < 255 else torch.int32).reshape(-1)
    counts = torch.bincount(idx, minlength=bins + 1)[:bins]
    return tuple(float(e) for e in edges), tuple(int(c) for c in counts.tolist())


def _nonfinite_stats(x: torch.Tensor, bins: int) -> TensorStats:
    """Stats of a tensor holding NaN/inf, from ``nan_to_num`` copies (no mask-selected copy)."""
    n = x.numel()
    nan_count = int(torch.count_nonzero(x != x))
    # x * 0 is NaN exactly where x is NaN/inf (count_nonzero on NaN-heavy floats is ~10x
    # slower than on the bool of a comparison)
    finite = n - int(torch.count_nonzero((x * 0) != 0))
    inf_count = n - finite - nan_count
    if finite == 0:
        return TensorStats(
            n, nan_count, inf_count, math.nan, math.nan, math.nan, math.nan, math.inf
        )
    lo_src = x.nan_to_num(nan=_F32_MAX, posinf=_F32_MAX, neginf=_F32_MAX)
    hi_src = x.nan_to_num(nan=-_F32_MAX, posinf=-_F32_MAX, neginf=-_F32_MAX)
    y = x.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi, s, q = _host(lo_src.amin(), hi_src.amax(), y.sum(), torch.linalg.vector_norm(y))
    mean, std = _mean_std(y, s, q, finite, n - finite)
    hist = _histogram(x, lo, hi, bins, finite) if bins > 0 else None
    return TensorStats(n, nan_count, inf_count, lo, hi, mean, std, math.inf, hist)


def tensor_stats(x: torch.Tensor, bins: int = 0) -> TensorStats:
    """Summary statistics of ``x`` (any dtype), with a ``bins``-bin histogram if ``bins > 0``."""
    n = x.numel()
    if n == 0:
        return TensorStats(0, 0, 0, math.nan, math.nan, math.nan, math.nan, math.nan)
    x = x.detach()
    if not x.is_floating_point():
        x = x.to(torch.float64)
    elif x.dtype in (torch.float16, torch.bfloat16):  # their sums lose counts past 2,048
        x = x.to(torch.float32)
    lo_t, hi_t = torch.aminmax(x)
    lo, hi, s, q = _host(lo_t, hi_t, x.sum(), torch.linalg.vector_norm(x))
    # aminmax propagates NaN and shows inf: finite extremes prove an all-finite tensor
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _nonfinite_stats(x, bins)
    mean, std = _mean_std(x, s, q, n, 0)
    hist = _histogram(x, lo, hi, bins, n) if bins > 0 else None
    return TensorStats(n, 0, 0, lo, hi, mean, std, max(abs(lo), abs(hi)), hist)


@dataclass(frozen=True)
class RowUnitBad:
    """Where a bad tensor is bad: per-row max |x| (inf for NaN/inf) and per-unit (last dim)
    counts of NaN/inf or ``|x| >= extreme`` values."""

    row_max_abs: np.ndarray
    unit_bad: np.ndarray


def row_unit_bad(x: torch.Tensor, n_rows: int, extreme: float) -> RowUnitBad:
    """Per-row and per-unit badness of a [n_rows, ...] tensor from one ``|x|`` copy."""
    a = x.detach().to(torch.float32).abs().nan_to_num_(nan=math.inf)  # NaN and inf -> inf
    row = a.reshape(n_rows, -1).amax(dim=1)
    last = a.reshape(-1, a.shape[-1]) if a.dim() >= 2 else a.reshape(n_rows, 1)
    # a float sum of the mask is cheaper than a bool one, and exact below 2**24 rows
    acc = torch.float32 if last.shape[0] < 1 << 24 else torch.float64
    units = (last >= extreme).to(acc).sum(dim=0).to(torch.int64)
    return RowUnitBad(row.numpy().copy(), units.numpy().copy())

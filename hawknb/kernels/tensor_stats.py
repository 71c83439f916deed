"""Summary statistics of tensors in a few fused reductions, small tensors batched together.

Activation tracing summarizes every node of a forward pass, so the summary has to cost a small
fraction of the op that produced the tensor. Measured on CPU (torch 2.13, one thread): a
``numpy`` min/max, a ``torch`` sum and a BLAS dot over a tensor that was just written cost about
as much as one elementwise op each, while ``torch.aminmax`` costs two, ``std_mean`` (Welford)
~50, and torch comparisons that produce a bool tensor (``x != x``, ``isfinite``) 8-60x an
elementwise op -- so NaN/inf are counted with numpy's ``isnan``/``isfinite``. Hence:

- a tensor of more than :data:`SMALL` values costs one min, one max, one sum and one sum of
  squares (a dot product), taken block by block (:data:`BLOCK` values, within a core's L2
  cache) so that a tensor bigger than the cache is read from memory once, not four times; the
  sum of a block whose values share a sign (a ReLU's output) is BLAS ``?asum``, a third of
  torch's sum;
  min/max propagate NaN and show inf, so finite extremes prove an all-finite block and NaN/inf
  are only counted in blocks where they are not; where numba is installed (a dependency) the
  same reductions of a contiguous float32/float64 tensor run compiled, one pass per block for
  the extremes and one for the sums (:mod:`hawknb.kernels._stats_jit`: ~2.4x faster on a
  block in L2, 2-2.4x on a tensor read from memory, ~3-10x on a block holding NaN/inf);
  numpy's path otherwise;
- tensors of at most :data:`SMALL` values (parameters, per-row outputs, the layers of a small
  model) are summarized together: one concatenation into a float64 buffer and segmented
  reductions (``np.minimum.reduceat``, ...) over it, so a few hundred of them cost a handful of
  calls instead of a few per tensor; their moments are float64 sums of values and squares,
  redone around the mean where the variance cancels (~1e-8 relative accuracy);
- histograms bin with a multiply and one ``bincount`` (all small tensors' histograms in one
  call, segment-offset bins), on an evenly strided sample of ~32k values for bigger tensors
  (the shape is what is displayed); where numba is installed one compiled loop bins (and
  scales) a big tensor's sample, and one bins every small tensor of a batch, with the same
  arithmetic, so the same counts.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

__all__ = [
    "BLOCK",
    "HIST_SAMPLE",
    "SMALL",
    "Positive",
    "RowUnitBad",
    "TensorStats",
    "batch_stats",
    "relu_stats",
    "row_unit_bad",
    "stats_and_positive",
    "tensor_stats",
]

#: tensors with at most this many values are summarized in one batched pass
SMALL = 1 << 14
#: recompute the variance around the mean when it is below this share of E[x^2]
#: (float32 sums carry ~1e-7 relative error, so the shortcut keeps ~1e-4 relative accuracy)
_CANCEL = 1e-3
#: the same for the float64 sums of small tensors (relative error ~n * 1e-16 of E[x^2]: the
#: shortcut keeps ~1e-8 relative accuracy above this share)
_CANCEL64 = 1e-4
#: histograms of bigger tensors are counted on an evenly strided sample of about this many
#: values and scaled to the finite count: a display of the shape (~1/sqrt(HIST_SAMPLE / bins)
#: relative noise per bin: ~3% at 32 bins)
HIST_SAMPLE = 1 << 15
_F32_MAX = float(torch.finfo(torch.float32).max)
_NAN = math.nan
_NATIVE = (torch.float32, torch.float64)


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
    #: exact min..max; counts are exact up to ``SMALL`` values (binned in float64), binned in
    #: the tensor's precision up to ``HIST_SAMPLE`` values and above that come from an evenly
    #: strided sample scaled to the finite count (they still sum to it)
    histogram: tuple[tuple[float, ...], tuple[int, ...]] | None = None

    @property
    def nonfinite(self) -> int:
        return self.nan_count + self.inf_count


_EMPTY = TensorStats(0, 0, 0, _NAN, _NAN, _NAN, _NAN, _NAN)
_NEW = object.__new__


def _record(
    n: int,
    nan: int,
    inf: int,
    lo: float,
    hi: float,
    mean: float,
    std: float,
    max_abs: float,
    hist: tuple[tuple[float, ...], tuple[int, ...]] | None = None,
) -> TensorStats:
    """A TensorStats built as pickle restores one (``object.__new__``, then its ``__dict__``):
    the frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, about
    half of the ~2.7 us this takes, paid for every node of every trace. Equal to the
    constructed one (same fields, same equality, hash and repr)."""
    s = _NEW(TensorStats)
    s.__dict__.update(
        numel=n,
        nan_count=nan,
        inf_count=inf,
        min=lo,
        max=hi,
        mean=mean,
        std=std,
        max_abs=max_abs,
        histogram=hist,
    )
    return s


def _flat(x: torch.Tensor) -> np.ndarray:
    """``x`` as a flat float32/float64 numpy array (a view when it is contiguous on the CPU);
    integers become float64, half precision float32 (their sums lose counts past 2,048)."""
    if x.dtype in _NATIVE and not x.requires_grad and x.is_cpu:  # the common case, no copy
        return x.numpy().reshape(-1)
    x = x.detach()
    if not x.is_floating_point():
        x = x.to(torch.float64)
    elif x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    return x.cpu().reshape(-1).numpy()


_FRACTIONS: dict[int, np.ndarray] = {}


def _fractions(bins: int) -> np.ndarray:
    """0, 1/bins, ..., 1 (cached: ``np.linspace`` costs more than a small tensor's stats)."""
    f = _FRACTIONS.get(bins)
    if f is None:
        f = _FRACTIONS[bins] = np.arange(bins + 1) / bins
    return f


_FRACTION_LISTS: dict[int, list[float]] = {}


def _fraction_list(bins: int) -> list[float]:
    """:func:`_fractions` as Python floats."""
    f = _FRACTION_LISTS.get(bins)
    if f is None:
        f = _FRACTION_LISTS[bins] = _fractions(bins).tolist()
    return f


def _edges(lo: float, hi: float, bins: int) -> tuple[float, ...]:
    """bins + 1 equal-width edges from lo to hi (to lo + 1 when hi == lo), ends exact."""
    top = hi if hi > lo else lo + 1.0
    # never overflows, ends exact; Python floats (the same IEEE operations as numpy's)
    return tuple([lo * (1.0 - f) + top * f for f in _fraction_list(bins)])


# -- tensors above SMALL: one min, max, sum and dot per cache-sized block ---------------------
#: big tensors are reduced in blocks of this many values (512 KiB of float32, within a core's
#: L2): the four reductions of a block read it from memory once, not four times
BLOCK = 1 << 17
#: blocks whose |values| stay below this cannot overflow a float32 sum of squares
_SAFE = math.sqrt(_F32_MAX / BLOCK) / 2
_MIN, _MAX = np.minimum.reduce, np.maximum.reduce
#: below this many bins a float32 index of a value in [lo, hi] stays below ``bins + 1`` (so the
#: top edge's bin can be folded into the last after counting instead of clamped before)
_FOLD_BINS = 1 << 20


def _mean_std(v: np.ndarray, s: float, q: float, count: int, zeroed: int) -> tuple[float, float]:
    """mean and std of the ``count`` finite values of ``v`` from their sum ``s`` and sum of
    squares ``q``; ``zeroed`` values of ``v`` are NaN/inf (treated as 0 in ``s`` and ``q``).
    ``v`` is only read again when the float32 sums overflowed or the shortcut variance
    cancels (``mean^2`` dwarfs it), in float64 around the mean.
    """
    if not (math.isfinite(s) and math.isfinite(q)) or (q / count - (s / count) ** 2) < _CANCEL * (
        q / count
    ):
        y = v.astype(np.float64)
        if zeroed:
            y[~np.isfinite(y)] = 0.0
        s = float(y.sum())
        mean = s / count
        y -= mean
        with np.errstate(over="ignore"):
            dev = float(np.dot(y, y))
        if math.isfinite(dev):
            return mean, math.sqrt(max(dev - zeroed * mean * mean, 0.0) / count)
        # float64 deviations whose squares overflow (values past ~1e154): in units of the
        # largest, as the small tensors' moments are
        unit = float(np.max(np.abs(y)))
        y /= unit
        m = mean / unit
        return mean, math.sqrt(max(float(np.dot(y, y)) - zeroed * m * m, 0.0) / count) * unit
    mean = s / count
    return mean, math.sqrt(max(q / count - mean * mean, 0.0))


#: BLAS ``?asum`` (the sum of |x|) by dtype, filled on first use
_ASUM: dict[np.dtype, Callable[[np.ndarray], float]] = {}


def _asum(b: np.ndarray) -> float:
    """The sum of |x| over a float32/float64 block: BLAS ``?asum`` costs a third of torch's sum
    of a block just written (6 us against 20 us for 128k float32 values), within float32
    rounding as torch's is. scipy's BLAS is imported on first use (``scipy.linalg`` takes
    0.1-0.25 s to import, more than a trace of a small model)."""
    asum = _ASUM.get(b.dtype)
    if asum is None:
        from scipy.linalg.blas import dasum, sasum

        _ASUM.update({np.dtype(np.float32): sasum, np.dtype(np.float64): dasum})
        asum = _ASUM[b.dtype]
    return asum(b)


def _sum(b: np.ndarray, lo: float, hi: float) -> float:
    """The sum of a non-empty finite block whose extremes are lo, hi: ``?asum`` when every
    value has one sign (a ReLU's output, probabilities), torch's sum otherwise."""
    if lo >= 0.0:
        return _asum(b)
    if hi <= 0.0:
        return -_asum(b)
    return float(torch.from_numpy(b).sum())


def _sums(b: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(sum, sum of squares) of a finite block whose extremes are lo, hi; numpy's error state
    (which costs as much as a small reduction to enter) only where float32 can overflow."""
    if lo >= -_SAFE and hi <= _SAFE:
        return _sum(b, lo, hi), float(np.dot(b, b))
    with np.errstate(over="ignore"):  # the overflow is redone in float64 by _mean_std
        return _sum(b, lo, hi), float(np.dot(b, b))


def _block_moments(b: np.ndarray) -> tuple[float, float, float, float, int, int]:
    """(min, max, sum, sum of squares, finite count, NaN count) of one block, over its finite
    values (min/max NaN when it has none): four reductions, NaN/inf counted only when the
    min/max show some."""
    lo, hi = float(_MIN(b)), float(_MAX(b))
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo, hi, *_sums(b, lo, hi), b.size, 0)
    with np.errstate(over="ignore"):  # a float32 overflow is redone in float64
        nan = int(np.count_nonzero(np.isnan(b)))
        finite = int(np.count_nonzero(np.isfinite(b))) if nan < b.size else 0
        if finite == 0:
            return _NAN, _NAN, 0.0, 0.0, 0, nan
        y = torch.from_numpy(b).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).numpy()
        lo, hi = _finite_extreme(b, y, True), _finite_extreme(b, y, False)
        return lo, hi, float(torch.from_numpy(y).sum()), float(np.dot(y, y)), finite, nan


def _big_stats(
    v: np.ndarray, shape: tuple[int, ...], bins: int, bounds: tuple[float, float] | None
) -> TensorStats:
    n = v.size
    jit = _fused()
    if jit is not None and jit.usable(v):  # one compiled pass per block
        if bounds is None:
            lo, hi, s, q, finite, nan_count = jit.block_moments(v, BLOCK)
        else:
            (lo, hi), (s, q), finite, nan_count = bounds, jit.block_sums(v, BLOCK), n, 0
    else:
        lo, hi, s, q, finite, nan_count = _numpy_moments(v, bounds)
    return _big_record(v, shape, bins, (lo, hi, s, q, finite, nan_count))


def _big_record(
    v: np.ndarray,
    shape: tuple[int, ...],
    bins: int,
    moments: tuple[float, float, float, float, int, int],
    hist: tuple[tuple[float, ...], tuple[int, ...]] | None = None,
) -> TensorStats:
    """The statistics of a big tensor from its (min, max, sum, sum of squares, finite count,
    NaN count): mean and std (``v`` read again only where the float32 sums cannot give them),
    the histogram of its sample (``hist`` when it was binned already)."""
    lo, hi, s, q, finite, nan_count = moments
    n = v.size
    inf_count = n - finite - nan_count
    if finite == 0:
        return _record(n, nan_count, inf_count, _NAN, _NAN, _NAN, _NAN, math.inf)
    mean, std = _mean_std(v, s, q, finite, n - finite)
    if bins > 0 and hist is None:
        hist = _histogram(v, shape, lo, hi, bins, finite)
    max_abs = max(abs(lo), abs(hi)) if finite == n else math.inf
    return _record(n, nan_count, inf_count, lo, hi, mean, std, max_abs, hist)


_Hist = tuple[tuple[float, ...], tuple[int, ...]]
#: the sum and sum of squares of ``max(x, 0)`` over a big tensor's float32/float64 blocks,
#: and that ReLU's histogram when it was binned with ``x``'s
Positive = tuple[float, float, _Hist | None]


def stats_and_positive(
    x: torch.Tensor, bins: int = 0, relu: bool = False
) -> tuple[TensorStats, Positive | None]:
    """:func:`tensor_stats` of ``x`` and, when the compiled kernels reduced it and every value
    is finite, the sums of its positive parts from the same pass: what :func:`relu_stats`
    needs to summarize a ReLU of ``x`` without a pass of its own (on the simulator's MLP a
    ReLU's pass and its Python cost ~7 us, 3% of the forward pass, each). With ``relu`` (a
    ReLU of ``x`` follows) and ``bins``, the ReLU's histogram is binned in ``x``'s pass over
    its sample too (~20 us less a ReLU there)."""
    n = x.numel()
    if n <= SMALL:
        return tensor_stats(x, bins), None
    v = _flat(x)
    jit = _fused()
    shape = tuple(x.shape)
    if jit is None or not jit.usable(v):
        return _big_stats(v, shape, bins, None), None
    lo, hi, s, q, finite, nan, sp, qp = jit.block_moments_positive(v, BLOCK)
    both = _relu_histograms(v, shape, lo, hi, bins) if relu and bins and finite == n else None
    hist, relu_hist = both if both is not None else (None, None)
    stats = _big_record(v, shape, bins, (lo, hi, s, q, finite, nan), hist)
    return stats, ((sp, qp, relu_hist) if finite == n else None)


def _relu_histograms(
    v: np.ndarray, shape: tuple[int, ...], lo: float, hi: float, bins: int
) -> tuple[_Hist, _Hist] | None:
    """:func:`_histogram` of an all-finite ``v`` and of its ReLU from one compiled pass over
    the sample (the same counts and edges as each on its own), or None where either range
    takes numpy's binning."""
    n = v.size
    lo_r, hi_r = max(lo, 0.0), max(hi, 0.0)  # the ReLU's extremes, as the recorder takes them
    span = (hi if hi > lo else lo + 1.0) - lo
    span_r = (hi_r if hi_r > lo_r else lo_r + 1.0) - lo_r
    if not (0.0 < span < _F32_MAX / 2 and 0.0 < span_r < _F32_MAX / 2 and bins < _FOLD_BINS):
        return None
    step = _step(n, shape) if n > HIST_SAMPLE else 1
    jit = _fused()
    counts, relu = jit.relu_sample_histograms(v, step, lo, span, lo_r, span_r, bins, n)  # type: ignore[union-attr]
    return (_edges(lo, hi, bins), tuple(counts.tolist())), (
        _edges(lo_r, hi_r, bins),
        tuple(relu.tolist()),
    )


def relu_stats(
    y: torch.Tensor, bins: int, bounds: tuple[float, float], positive: Positive
) -> TensorStats:
    """:func:`tensor_stats` of ``y = relu(x)`` (a big tensor) from ``x``'s finite extremes
    clamped at 0 and ``x``'s :func:`stats_and_positive` sums (and histogram): ``y``'s values
    are ``max(x, 0)`` in the same order, and the kernels' one loop sums them in the same lanes
    as ``x``'s positive parts, so these equal ``tensor_stats(y)`` to the bit; ``y`` is only
    read for its histogram's sample when that was not binned with ``x``'s (or where the
    float32 sums cannot give mean and std)."""
    v = _flat(y)
    sp, qp, hist = positive
    return _big_record(v, tuple(y.shape), bins, (*bounds, sp, qp, v.size, 0), hist)


def _numpy_moments(
    v: np.ndarray, bounds: tuple[float, float] | None
) -> tuple[float, float, float, float, int, int]:
    """(min, max, sum, sum of squares, finite count, NaN count) of ``v`` over its finite
    values with numpy, block by block (where the compiled kernels are not available)."""
    n = v.size
    if bounds is not None:  # known finite extremes: only the sums are left
        lo, hi = bounds
        parts = [
            (lo, hi, *_sums(v[i : i + BLOCK], lo, hi), min(BLOCK, n - i), 0)
            for i in range(0, n, BLOCK)
        ]
    else:
        parts = [_block_moments(v[i : i + BLOCK]) for i in range(0, n, BLOCK)]
    if len(parts) == 1:
        return parts[0]
    finite = sum(p[4] for p in parts)
    lo = min((p[0] for p in parts if p[4]), default=_NAN)
    hi = max((p[1] for p in parts if p[4]), default=_NAN)
    s, q = sum(p[2] for p in parts), sum(p[3] for p in parts)
    return lo, hi, s, q, finite, sum(p[5] for p in parts)


#: :mod:`hawknb.kernels._stats_jit` once imported (it imports numba: ~0.2 s)
_JIT: ModuleType | None = None


def _fused() -> ModuleType | None:
    """The compiled kernels' module, or None where numba is missing (imported on first use, so
    that importing this module does not import numba)."""
    global _JIT
    if _JIT is None:
        from . import _stats_jit

        _JIT = _stats_jit
    return _JIT if _JIT.READY else None


_STEPS: dict[tuple[int, tuple[int, ...]], int] = {}


def _step(n: int, shape: tuple[int, ...]) -> int:
    """A stride near ``n / HIST_SAMPLE`` sharing no factor with any dimension, so a strided
    sample of the flattened tensor visits every unit/channel rather than a fixed subset
    (cached per shape: a trace meets the same few shapes on every batch)."""
    step = _STEPS.get((n, shape))
    if step is None:
        step = max(2, math.ceil(n / HIST_SAMPLE))
        while any(math.gcd(step, d) > 1 for d in shape if d > 1):
            step += 1
        if len(_STEPS) < 4096:
            _STEPS[(n, shape)] = step
    return step


def _scaled(counts: np.ndarray, total: int) -> tuple[int, ...]:
    """Sample counts (integers, or floats holding integers) scaled to ``total`` values, rounded
    so that they sum to it exactly (the largest remainders round up, ties in bin order); a few
    dozen bins on Python numbers, where numpy's calls on so few values cost more (integers
    below 2^53 convert to float exactly, so either input gives the same shares)."""
    if counts.size > 64:
        share = counts * (total / counts.sum())
        out = np.floor(share).astype(np.int64)
        short = total - int(out.sum())
        out[np.argsort(-(share - out), kind="stable")[:short]] += 1
        return tuple(out.tolist())
    c = counts.tolist()
    f = total / sum(c)
    share = [x * f for x in c]
    floor = list(map(math.floor, share))
    short = total - sum(floor)
    if short:  # (floor - share, bin) pairs sort as the stable argsort above
        gaps = map(operator.sub, floor, share)
        for _, i in sorted(zip(gaps, range(len(c)), strict=True))[:short]:
            floor[i] += 1
    return tuple(floor)


def _bin_counts(v: np.ndarray, lo: float, hi: float, bins: int, all_finite: bool) -> np.ndarray:
    """Counts of the finite values of ``v`` in ``bins`` equal bins over [lo, hi] (the top
    edge inclusive, as ``torch.histc``), binned in ``v``'s precision (a sample of a big
    tensor: a value within rounding of an inner edge may land in either neighbour)."""
    top = hi if hi > lo else lo + 1.0
    span = top - lo  # Python floats: no numpy error state to enter (it costs a small reduction)
    if all_finite and 0.0 < span < _F32_MAX / 2 and bins < _FOLD_BINS:
        # no overflow or NaN possible: skip the clamp, fold the top edge's bin (values within
        # rounding of ``hi`` index ``bins``) into the last one after counting
        t = np.subtract(v, lo, dtype=v.dtype)
        t *= v.dtype.type(bins / span)
        counts = np.bincount(t.astype(np.int32), minlength=bins + 1)
        counts[bins - 1] += counts[bins]
        return counts[:bins]
    with np.errstate(over="ignore", divide="ignore"):
        scale = v.dtype.type(bins / (top - lo))
    if not (np.isfinite(scale) and scale > 0):  # a range too wide (or narrow) to scale
        fin = v if all_finite else v[np.isfinite(v)]
        return np.histogram(fin.astype(np.float64), bins=np.asarray(_edges(lo, hi, bins)))[0]
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.subtract(v, lo, dtype=v.dtype)
        t *= scale
        np.minimum(t, bins - 1, out=t)  # the top edge (and rounding past it)
        idx = t.astype(np.int32)  # a quarter of the cost of an int64 cast (bincount widens it)
    if not all_finite:
        idx[~np.isfinite(v)] = bins  # binned past the end and dropped
    return np.bincount(idx, minlength=bins + 1)[:bins]


def _histogram(
    v: np.ndarray, shape: tuple[int, ...], lo: float, hi: float, bins: int, finite: int
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """A histogram of a tensor of more than SMALL values, from an evenly strided sample of
    about HIST_SAMPLE of them scaled to the finite count."""
    n = v.size
    step = _step(n, shape) if n > HIST_SAMPLE else 1
    span = (hi if hi > lo else lo + 1.0) - lo
    jit = _fused()
    if jit is not None and jit.usable(v) and 0.0 < span < _F32_MAX / 2 and bins < _FOLD_BINS:
        counts = jit.sample_histogram(v, step, lo, span, bins, finite)  # same counts, scaled
        return _edges(lo, hi, bins), tuple(counts.tolist())
    counts = _bin_counts(v[::step], lo, hi, bins, finite == n)
    if step > 1 and counts.sum():
        return _edges(lo, hi, bins), _scaled(counts, finite)
    return _edges(lo, hi, bins), tuple(counts.tolist())


def _finite_extreme(v: np.ndarray, y: np.ndarray, lowest: bool) -> float:
    """min (or max) over the finite values of ``v``; ``y`` is ``v`` with NaN/inf set to 0, so
    its min is the answer whenever it is negative (its max when positive)."""
    e = float(y.min() if lowest else y.max())
    if (e < 0) if lowest else (e > 0):
        return e
    fill = _F32_MAX if lowest else -_F32_MAX
    w = torch.from_numpy(v).nan_to_num(nan=fill, posinf=fill, neginf=fill).numpy()
    return float(w.min() if lowest else w.max())


def tensor_stats(
    x: torch.Tensor, bins: int = 0, *, bounds: tuple[float, float] | None = None
) -> TensorStats:
    """Summary statistics of ``x`` (any dtype), with a ``bins``-bin histogram if ``bins > 0``.

    ``bounds`` is the exact (min, max) of an all-finite ``x`` when the caller already knows it
    (a ReLU of a finite tensor: its input's extremes clamped at 0), saving two passes; it is
    ignored for tensors of at most :data:`SMALL` values.
    """
    n = x.numel()
    if n == 0:
        return _EMPTY
    if n <= SMALL:
        return batch_stats([x], bins)[0]
    return _big_stats(_flat(x), tuple(x.shape), bins, bounds)


# -- tensors up to SMALL: segmented reductions over one buffer ------------------------------
def batch_stats(tensors: Sequence[torch.Tensor], bins: int = 0) -> list[TensorStats]:
    """:func:`tensor_stats` of each tensor; those of at most :data:`SMALL` values are computed
    together in one float64 buffer with segmented reductions (a handful of numpy calls for
    the whole batch), or where numba is installed by one compiled call each with the same
    results (:mod:`hawknb.kernels._small_jit`), the others one by one."""
    out: list[TensorStats | None] = [None] * len(tensors)
    small: list[int] = []
    flat: list[np.ndarray] = []
    fast = _small_kernels()
    for i, t in enumerate(tensors):
        n = t.numel()
        if n == 0:
            out[i] = _EMPTY
        elif n <= SMALL:
            v = _flat(t)
            s = _small_summary(fast, v, bins) if fast is not None and fast.usable(v) else None
            if s is None:
                small.append(i)
                flat.append(v)
            else:
                out[i] = s
        else:
            out[i] = tensor_stats(t, bins)
    if small:
        for i, s in zip(small, _segments(flat, bins), strict=True):
            out[i] = s
    return out  # type: ignore[return-value]


#: False sends small tensors through the segmented numpy path even where numba is installed
#: (tests compare the two)
SMALL_JIT = True
_SMALL_JIT: ModuleType | None = None


def _small_jit_module() -> ModuleType | None:
    """:mod:`hawknb.kernels._small_jit` where numba is usable (imported on first use, as
    :func:`_fused` is), else None."""
    global _SMALL_JIT
    if _SMALL_JIT is None:
        from . import _small_jit

        _SMALL_JIT = _small_jit
    return _SMALL_JIT if _SMALL_JIT.READY else None


def _small_kernels() -> ModuleType | None:
    """:func:`_small_jit_module` where the big tensors' kernels are usable too, else None."""
    if not SMALL_JIT or _fused() is None:
        return None
    return _small_jit_module()


def _small_summary(fast: ModuleType, v: np.ndarray, bins: int) -> TensorStats | None:
    """The segmented path's statistics of one small float32/float64 array from one compiled
    call; None where its histogram needs numpy's binning (a range too wide to scale)."""
    lo, hi, s, q, f, nan, counts, binned = fast.summary(v, bins)
    n = v.size
    if not binned:
        return None
    if f == 0:
        return _record(n, nan, n - nan, _NAN, _NAN, _NAN, _NAN, math.inf)
    mean, std = _moment(s, q, f, lo, hi, lambda: _zeroed(v, f < n))
    hist = (_edges(lo, hi, bins), tuple(counts.tolist())) if bins else None
    max_abs = max(abs(lo), abs(hi)) if f == n else math.inf
    return _record(n, nan, n - f - nan, lo, hi, mean, std, max_abs, hist)


def _zeroed(v: np.ndarray, masked: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``v`` as float64 with NaN/inf set to 0, and its finite mask where it has NaN/inf (the
    segmented path's ``y`` and ``fin`` for this tensor)."""
    y = v.astype(np.float64)
    if not masked:
        return y, None
    fin = np.isfinite(y)
    y[~fin] = 0.0
    return y, fin


def _segments(arrays: list[np.ndarray], bins: int) -> list[TensorStats]:
    """Stats of each non-empty array, from reductions over their float64 concatenation; the
    per-segment arithmetic runs on Python floats (numpy calls on a handful of values cost ~1 us
    each, more right after a forward pass has evicted their code and data from the caches)."""
    sizes = [a.size for a in arrays]
    first = list(itertools.accumulate(sizes, initial=0))[:-1]
    starts = np.array(first, dtype=np.intp)
    buf = np.concatenate(arrays, dtype=np.float64)
    lo = np.minimum.reduceat(buf, starts).tolist()
    hi = np.maximum.reduceat(buf, starts).tolist()
    fin: np.ndarray | None = None
    if all(map(math.isfinite, lo)) and all(map(math.isfinite, hi)):
        finite, nans, y = sizes, [0] * len(sizes), buf
    else:  # some segments hold NaN/inf: count them, and take moments over the finite values
        fin = np.isfinite(buf)
        finite = np.add.reduceat(fin, starts, dtype=np.int64).tolist()
        nans = np.add.reduceat(np.isnan(buf), starts, dtype=np.int64).tolist()
        y = np.where(fin, buf, 0.0)
        lo = np.minimum.reduceat(np.where(fin, buf, np.inf), starts).tolist()
        hi = np.maximum.reduceat(np.where(fin, buf, -np.inf), starts).tolist()
    mean, std = _segment_moments(y, fin, first, sizes, finite, lo, hi)
    hists = _compiled_histograms(buf, first, sizes, lo, hi, finite, bins) if bins else None
    if bins and hists is None and fin is None and len(sizes) <= _FEW:
        hists = _few_histograms(buf, first, sizes, lo, hi, bins)
    if bins and hists is None:
        hists = _segment_histograms(
            buf, fin, starts, np.array(sizes), np.array(lo), np.array(hi), np.array(finite), bins
        )
    out = []
    for i, (n, f, nan_i, a, b) in enumerate(zip(sizes, finite, nans, lo, hi, strict=True)):
        if f == 0:
            out.append(_record(n, nan_i, n - nan_i, _NAN, _NAN, _NAN, _NAN, math.inf))
            continue
        max_abs = max(abs(a), abs(b)) if f == n else math.inf
        hist = hists[i] if hists is not None else None
        out.append(_record(n, nan_i, n - f - nan_i, a, b, mean[i], std[i], max_abs, hist))
    return out


#: float64 values below this in magnitude cannot overflow a sum of squares of 2^40 of them
_NO_OVERFLOW = 1e148


def _sum_squares(y: np.ndarray, starts: np.ndarray) -> tuple[list[float], list[float]]:
    return np.add.reduceat(y, starts).tolist(), np.add.reduceat(y * y, starts).tolist()


def _segment_moments(
    y: np.ndarray,
    fin: np.ndarray | None,
    first: list[int],
    sizes: list[int],
    finite: list[int],
    lo: list[float],
    hi: list[float],
) -> tuple[list[float], list[float]]:
    """Per-segment mean and std of ``y`` (float64, NaN/inf zeroed where ``fin`` is False): one
    pass of sums and sums of squares, redone around the mean (two passes) for the segments
    whose variance cancels below ``_CANCEL64`` of E[x^2] or whose squares overflow; a
    constant segment (``lo == hi``: a scalar bias, saturated outputs) is its own mean."""
    starts = np.array(first, dtype=np.intp)
    if max(max(hi), -min(lo)) < _NO_OVERFLOW:  # no square can overflow: no error state to enter
        sums, squares = _sum_squares(y, starts)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            sums, squares = _sum_squares(y, starts)
    mean, std = [], []
    for i, (s, q, f) in enumerate(zip(sums, squares, finite, strict=True)):
        a, n = first[i], sizes[i]
        m, d = _moment(
            s,
            q,
            f,
            lo[i],
            hi[i],
            lambda a=a, n=n: (y[a : a + n], None if fin is None else fin[a : a + n]),
        )
        mean.append(m)
        std.append(d)
    return mean, std


def _moment(
    s: float,
    q: float,
    f: int,
    lo: float,
    hi: float,
    values: Callable[[], tuple[np.ndarray, np.ndarray | None]],
) -> tuple[float, float]:
    """mean and std of a small tensor's ``f`` finite values from their float64 sum ``s`` and
    sum of squares ``q``, redone around the mean where the variance cancels below
    ``_CANCEL64`` of E[x^2] or the squares overflowed (``values()``: the float64 values with
    NaN/inf as 0, and the finite mask or None); a constant tensor (``lo == hi``: a scalar
    bias, saturated outputs) is its own mean."""
    if f == 0 or lo == hi:
        return (lo if f else _NAN), (0.0 if f else _NAN)
    m, e2 = s / f, q / f
    var, unit = e2 - m * m, 1.0
    if not var >= _CANCEL64 * e2 or e2 == math.inf:  # cancels or overflowed: around the mean
        y, fin = values()
        # squares that overflowed are taken in units of the largest |value|
        unit = max(abs(lo), abs(hi)) if e2 == math.inf else 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            d = y - m
            if fin is not None:
                d[~fin] = 0.0
            if unit != 1.0:
                d /= unit
            var = float(np.dot(d, d)) / f
    return m, (math.sqrt(max(var, 0.0)) * unit if var == var else _NAN)  # NaN stays NaN


#: up to this many all-finite small tensors are binned one by one (four numpy calls each)
#: rather than with segment-offset indices (~15 calls whatever their number)
_FEW = 4


def _few_histograms(
    buf: np.ndarray, first: list[int], sizes: list[int], lo: list[float], hi: list[float], bins: int
) -> list[tuple[tuple[float, ...], tuple[int, ...]] | None] | None:
    """Each all-finite segment's histogram binned on its own, with the same float64
    arithmetic as :func:`_segment_histograms` (so the same counts); None where a range is too
    wide or narrow to scale, or there are too many bins to fold the top edge's."""
    spans = [(b if b > a else a + 1.0) - a for a, b in zip(lo, hi, strict=True)]
    if bins >= _FOLD_BINS or not all(0.0 < d < math.inf for d in spans):
        return None
    out: list[tuple[tuple[float, ...], tuple[int, ...]] | None] = []
    for a, n, low, high, span in zip(first, sizes, lo, hi, spans, strict=True):
        t = buf[a : a + n] - low
        t *= bins / span
        counts = np.bincount(t.astype(np.int32), minlength=bins + 1)
        counts[bins - 1] += counts[bins]  # the top edge (and rounding past it)
        out.append((_edges(low, high, bins), tuple(counts[:bins].tolist())))
    return out


def _compiled_histograms(
    buf: np.ndarray,
    first: list[int],
    sizes: list[int],
    lo: list[float],
    hi: list[float],
    finite: list[int],
    bins: int,
) -> list[tuple[tuple[float, ...], tuple[int, ...]] | None] | None:
    """Every segment's histogram binned in one compiled loop (the same cells as numpy's
    :func:`_few_histograms` and :func:`_segment_histograms`, whose 5-15 numpy calls cost
    more than the simulator MLP's ops); None without numba, or where a range is too wide or
    narrow to scale (numpy's paths handle those). Ranges on Python floats, as there."""
    jit = _fused()
    if jit is None or bins >= _FOLD_BINS:
        return None
    lows, tops, scales = [], [], []
    for a, b, f in zip(lo, hi, finite, strict=True):
        low, top = (a, b if b > a else a + 1.0) if f else (0.0, 1.0)
        span = top - low
        if not (0.0 < span < math.inf and bins / span < math.inf):
            return None
        lows.append(low)
        tops.append(top)
        scales.append(bins / span)
    counts = jit.segment_counts(
        buf,
        np.array(first, np.intp),
        np.array(sizes, np.intp),
        np.array(lows),
        np.array(scales),
        bins,
    ).tolist()
    return [
        (_edges(low, top, bins), tuple(c)) if f else None
        for low, top, c, f in zip(lows, tops, counts, finite, strict=True)
    ]


def _segment_histograms(
    buf: np.ndarray,
    fin: np.ndarray | None,
    starts: np.ndarray,
    sizes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    finite: np.ndarray,
    bins: int,
) -> list[tuple[tuple[float, ...], tuple[int, ...]] | None]:
    """Every segment's histogram from one ``bincount`` over segment-offset bin indices."""
    k = len(sizes)
    ok = finite > 0
    top = np.where(hi > lo, hi, lo + 1.0)
    lo_ok, top_ok = np.where(ok, lo, 0.0), np.where(ok, top, 1.0)
    scale = bins / (top_ok - lo_ok)
    if not np.all(np.isfinite(scale) & (scale > 0)):  # a float64 range too wide to scale
        return [
            _histogram(buf[s : s + n], (n,), lo[i], hi[i], bins, int(finite[i])) if ok[i] else None
            for i, (s, n) in enumerate(zip(starts, sizes, strict=True))
        ]
    with np.errstate(invalid="ignore", over="ignore"):
        t = buf - np.repeat(lo_ok, sizes)  # >= 0 where finite
        t *= np.repeat(scale, sizes)
        np.minimum(t, bins - 1, out=t)  # the top edge (and rounding past it)
        if fin is not None:
            t[~fin] = bins  # binned past the segment's end and dropped
        idx = t.astype(np.int32)
    idx += np.repeat(np.arange(0, k * (bins + 1), bins + 1, dtype=np.int32), sizes)
    counts = np.bincount(idx, minlength=k * (bins + 1)).reshape(k, bins + 1)[:, :bins]
    f = _fractions(bins)
    edges = (lo_ok[:, None] * (1.0 - f) + top_ok[:, None] * f).tolist()
    return [
        (tuple(e), tuple(c)) if good else None
        for e, c, good in zip(edges, counts.tolist(), ok.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class RowUnitBad:
    """Where a bad tensor is bad: per-row max |x| (inf for NaN/inf) and per-unit (last dim)
    counts of NaN/inf or ``|x| >= extreme`` values."""

    row_max_abs: np.ndarray
    unit_bad: np.ndarray


def row_unit_bad(x: torch.Tensor, n_rows: int, extreme: float) -> RowUnitBad:
    """Per-row and per-unit badness of a [n_rows, ...] tensor from one ``|x|`` copy (numpy:
    torch's bool-producing comparisons cost ~8 elementwise ops on CPU)."""
    plain = x.dtype == torch.float32 and x.is_cpu and not x.requires_grad  # no conversion
    fast = _row_kernels()
    width = max(x.shape[-1], 1) if x.dim() >= 2 else 1
    if plain and fast is not None and x.dim() >= 1 and x.shape[0] == n_rows > 0 and x.numel():
        edge = np.float32(extreme)
        if float(edge) == extreme:  # compared as numpy compares: in float32
            row, units = fast.row_unit(_flat(x), n_rows, width, edge)
            return RowUnitBad(row, units)
    t = x if plain else x.detach().to(torch.float32).cpu()
    a = t.abs().nan_to_num_(nan=math.inf, posinf=math.inf).numpy().reshape(-1)  # NaN -> inf
    per_row = a.size // n_rows if n_rows else 0
    if per_row == 1:  # ``a`` is a fresh array (``abs`` wrote it): no copy needed
        row = a
    else:  # torch: numpy's max over a short inner axis runs one small reduction per row
        row = torch.from_numpy(a).view(n_rows, per_row).amax(1).numpy()
    return RowUnitBad(row, _column_counts(a >= extreme, width))


#: False sends row_unit_bad through torch and numpy even where numba is installed (tests)
ROWS_JIT = True


def _row_kernels() -> ModuleType | None:
    """:func:`_small_jit_module` (its :func:`row_unit`) unless ``ROWS_JIT`` is off."""
    return _small_jit_module() if ROWS_JIT else None


def _column_counts(bad: np.ndarray, width: int) -> np.ndarray:
    """Per-column True counts of ``bad`` seen as [-1, width]: a float32 matrix-vector product
    (exact below 2^24 rows), as numpy's ``count_nonzero``/``sum`` over axis 0 of a bool array
    go through a buffered cast, ~5x slower; one column is a plain count."""
    m = bad.reshape(-1, width)
    if width == 1:
        return np.array([np.count_nonzero(m)], dtype=np.int64)
    if m.shape[0] >= 1 << 24:
        return np.count_nonzero(m, axis=0).astype(np.int64)
    return (np.ones(m.shape[0], np.float32) @ m.astype(np.float32)).astype(np.int64)

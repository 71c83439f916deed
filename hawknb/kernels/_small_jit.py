"""One compiled call per small tensor, giving the batched float64 path's statistics to the bit.

Why: :func:`~hawknb.kernels.tensor_stats.batch_stats` summarizes the small tensors of a trace
(at most ``SMALL`` values: parameters, per-row outputs, every layer of a small model) with
segmented numpy reductions over one float64 buffer -- 8-15 numpy calls (concatenation, four
``reduceat``, squares, conversions, NaN/inf masks where a segment is not finite), ~16 us for two
4,096-value outputs, while the simulator's MLP runs its whole forward pass in ~200 us. The same
numbers come out of one loop per tensor here: ~1-2 us.

The same numbers, not numbers as good: every result equals what the segmented numpy path
returns for that tensor. Counts and extremes are exact whatever the order. The sums are
float64 and follow the order numpy's ``np.add.reduceat`` adds a segment in: its first value,
plus numpy's pairwise sum of the rest (8 interleaved accumulators over runs of up to 128
values, halves split at a multiple of 8 beyond that) -- replicated in :func:`_pairwise` with no
fast-math, so no reassociation (tests/test_tensor_stats_small_jit.py checks it against numpy
on random segments of every size class). NaN/inf values count as 0 in the sums, as numpy's
``np.where(finite, buf, 0)`` makes them. Histograms bin each value as float64 with the same
arithmetic as :func:`~hawknb.kernels._stats_jit.segment_counts`.

:func:`row_unit` does :func:`~hawknb.kernels.tensor_stats.row_unit_bad`'s work (the first bad
node's and the bad outputs' per-row max |x| and per-unit bad counts) in one call instead of ~6
torch/numpy calls (~10 us for a 4,096-row output of the simulator's MLP with an inf weight,
each such node; ~1 us here): maxima and counts are exact whatever the order.
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - exercised by whichever branch the environment has
    import numba
except ImportError:  # pragma: no cover
    numba = None

from ._stats_jit import _BITS, _keys, _keys32

READY = numba is not None

#: numpy's pairwise summation block (``PW_BLOCKSIZE``)
_PW_BLOCK = 128


def _exact(fn):
    """No fast-math: sums must add in exactly numpy's order, bins round as numpy's do."""
    return numba.njit(nogil=True, cache=True)(fn) if READY else fn


@_exact
def _value(x, i):  # pragma: no cover - compiled
    """``x[i]`` as float64 (exact)."""
    return np.float64(x[i])


@_exact
def _run(x, a, n):  # pragma: no cover - compiled
    """numpy's pairwise sums of ``x[a : a + n]`` and of its squares (each square rounded to
    float64 before it is added, as numpy's ``y * y``) for ``n <= 128``."""
    if n < 8:
        s = q = 0.0
        for i in range(a, a + n):
            v = _value(x, i)
            s += v
            q += v * v
        return s, q
    # numpy starts each accumulator at a value and adds from the 9th; -0.0 + v is v for
    # every v (signed zeros and NaN included), so starting at -0.0 and adding from the
    # first gives the same sums
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = -0.0
    q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = -0.0
    i = a
    end = a + n - n % 8
    while i < end:
        v0 = _value(x, i + 0)
        v1 = _value(x, i + 1)
        v2 = _value(x, i + 2)
        v3 = _value(x, i + 3)
        v4 = _value(x, i + 4)
        v5 = _value(x, i + 5)
        v6 = _value(x, i + 6)
        v7 = _value(x, i + 7)
        s0 += v0
        s1 += v1
        s2 += v2
        s3 += v3
        s4 += v4
        s5 += v5
        s6 += v6
        s7 += v7
        q0 += v0 * v0
        q1 += v1 * v1
        q2 += v2 * v2
        q3 += v3 * v3
        q4 += v4 * v4
        q5 += v5 * v5
        q6 += v6 * v6
        q7 += v7 * v7
        i += 8
    s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    q = ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))
    while i < a + n:
        v = _value(x, i)
        s += v
        q += v * v
        i += 1
    return s, q


@_exact
def _pairwise(x, a, n):  # pragma: no cover - compiled
    """numpy's pairwise sums of ``x[a : a + n]`` and of its squares: runs of at most 128
    values summed by :func:`_run`, longer spans halved (the first half a multiple of 8) and
    the halves' sums added, walked with an explicit stack (depth ~log2(n / 128))."""
    if n <= _PW_BLOCK:
        return _run(x, a, n)
    starts = np.empty(64, np.int64)
    sizes = np.empty(64, np.int64)
    state = np.zeros(64, np.int64)  # 0: new, 1: left half summed, 2: both summed
    left = np.empty((64, 2), np.float64)
    starts[0], sizes[0] = a, n
    top = 0
    s = q = 0.0
    while top >= 0:
        m = sizes[top]
        if m <= _PW_BLOCK:
            s, q = _run(x, starts[top], m)
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if state[top] == 0:  # sum the left half first
            state[top] = 1
            top += 1
            starts[top], sizes[top], state[top] = starts[top - 1], half, 0
        elif state[top] == 1:  # then the right half
            state[top] = 2
            left[top, 0], left[top, 1] = s, q
            top += 1
            starts[top], sizes[top], state[top] = starts[top - 1] + half, m - half, 0
        else:
            s, q = left[top, 0] + s, left[top, 1] + q
            top -= 1
    return s, q


@_exact
def _reduceat_sums(x):  # pragma: no cover - compiled
    """``np.add.reduceat`` of one segment and of its squares: the first value plus the
    pairwise sum of the rest."""
    v = _value(x, 0)
    if x.size == 1:
        return v, v * v
    s, q = _pairwise(x, 1, x.size - 1)
    return v + s, v * v + q


@_exact
def _zeroed(x):  # pragma: no cover - compiled
    """``x`` as float64 with NaN/inf set to 0 (a branch-free pass: a test inside the sums'
    loop cost 3.6 us against 1.7 us for 4,096 values, this pass ~0.3 us)."""
    y = np.empty(x.size, np.float64)
    for i in range(x.size):
        v = np.float64(x[i])
        y[i] = v if math.isfinite(v) else 0.0
    return y


@_exact
def _extremes(x):  # pragma: no cover - compiled
    """(min, max, finite count, NaN count) over the finite values of a block holding
    NaN/inf (inf / -inf when none is finite): one pass, branch-free (NaN among the values
    at random would mispredict every other branch)."""
    lo, hi = np.inf, -np.inf
    finite = nan = 0
    for i in range(x.size):
        v = np.float64(x[i])
        fin = math.isfinite(v)
        finite += 1 if fin else 0
        nan += 1 if v != v else 0
        lo = min(lo, v if fin else np.inf)
        hi = max(hi, v if fin else -np.inf)
    return lo, hi, finite, nan


@_exact
def _finite_keys32(bits):  # pragma: no cover - compiled
    """(min key, max key, finite count, NaN count) over the finite values of float32 bits,
    every step in int32 so that it vectorizes (:func:`_extremes` on float64 does not: ~1 ns
    a value); the keys are :mod:`._stats_jit`'s, NaN's when nothing is finite."""
    mag, inf = np.int32(0x7FFFFFFF), np.int32(0x7F800000)
    lo, hi = mag, -mag
    finite = nan = np.int32(0)
    for i in range(bits.size):
        b = bits[i]
        a = np.int32(b & mag)
        fin = a < inf
        k = np.int32(b ^ ((b >> 31) & mag))
        lo = min(lo, k if fin else mag)
        hi = max(hi, k if fin else -mag)
        finite = np.int32(finite + (1 if fin else 0))
        nan = np.int32(nan + (1 if a > inf else 0))
    return lo, hi, finite, nan


@_exact
def _bins(x, lo, hi, bins):  # pragma: no cover - compiled
    """(counts, binned): each finite value's cell ``int((v - lo) * (bins / span))`` in
    float64, the top edge in the last bin; not binned where the span or the scale is not a
    finite positive number (numpy's path bins those). NaN/inf go to a spare cell past the
    last, so the loop has no branch."""
    counts = np.zeros(bins + 1, np.int64)
    top = hi if hi > lo else lo + 1.0
    span = top - lo
    if not (0.0 < span < np.inf) or not bins / span < np.inf:
        return counts[:bins], False
    scale = bins / span
    last = bins - 1
    for i in range(x.size):
        v = np.float64(x[i])
        fin = math.isfinite(v)
        c = np.int32((v - lo) * scale if fin else 0.0)
        counts[min(c, last) if fin else bins] += 1
    return counts[:bins], True


@_exact
def _summary(x, bits, c, bins):  # pragma: no cover - compiled
    """(min, max, sum, sum of squares, finite count, NaN count, counts, binned) of a
    non-empty contiguous float32/float64 ``x`` taken as float64 (``bits``: its bits as
    integers, ``c`` the dtype's constants of :mod:`._stats_jit`): extremes over the finite
    values from the integer keys (NaN/inf counted only when they are not finite), sums with
    NaN/inf as 0 in reduceat's order, and with ``bins > 0`` :func:`_bins`'s counts."""
    sign, mag, inf = c[0], c[1], c[2]
    if bits.itemsize == 4:
        klo, khi = _keys32(bits)
    else:
        klo, khi = _keys(bits, c)
    finite, nan = x.size, 0
    if not (klo >= -inf and khi < inf):  # NaN/inf among the extremes: count, skip them
        if bits.itemsize == 4:
            klo, khi, finite, nan = _finite_keys32(bits)
        else:
            lo, hi, finite, nan = _extremes(x)
    if finite == x.size or bits.itemsize == 4:  # extremes from the keys
        out = np.empty(2, x.dtype)
        keys = out.view(bits.dtype)
        keys[0] = klo ^ ((klo >> sign) & mag)
        keys[1] = khi ^ ((khi >> sign) & mag)
        lo, hi = np.float64(out[0]), np.float64(out[1])
    if finite == 0:  # nothing finite: no sums to take (the statistics are NaN)
        s = q = 0.0
    elif finite < x.size:  # NaN/inf count as 0, as numpy's ``where`` makes them
        s, q = _reduceat_sums(_zeroed(x))
    else:
        s, q = _reduceat_sums(x)
    if bins > 0 and finite > 0:
        counts, binned = _bins(x, lo, hi, bins)
    else:
        counts, binned = np.zeros(max(bins, 1), np.int64), True
    return lo, hi, s, q, finite, nan, counts, binned


def usable(v: np.ndarray) -> bool:
    """Whether :func:`summary` takes ``v``: a non-empty contiguous float32/float64 array."""
    return READY and v.dtype in _BITS and v.size > 0 and v.flags.c_contiguous


def summary(
    v: np.ndarray, bins: int
) -> tuple[float, float, float, float, int, int, np.ndarray, bool]:
    """(min, max, sum, sum of squares, finite count, NaN count, bin counts, binned) of a
    :func:`usable` ``v`` in one compiled call, equal to the segmented float64 path's values for
    it (see the module's docstring); ``binned`` False means the histogram is left to numpy."""
    c = _BITS[v.dtype]
    return _summary(v, v.view(c.dtype), c, bins)


# -- where a bad tensor is bad ------------------------------------------------------------
@_exact
def _row_unit(a, n_rows, width, extreme):  # pragma: no cover - compiled
    """(row max |a|, per-unit counts of ``|a| >= extreme``) of a flat float32 ``a`` holding
    ``n_rows`` rows of units ``width`` wide, NaN taken as inf: |a| in one branch-free pass
    (it vectorizes), then the rows' maxima and the units' counts over it."""
    inf = np.float32(np.inf)
    b = np.empty(a.size, np.float32)
    for i in range(a.size):
        v = abs(a[i])
        b[i] = inf if v != v else v
    per_row = a.size // n_rows
    units = np.zeros(width, np.int64)
    if per_row == 1:  # one value a row: |a| is the row maxima, one unit
        count = 0
        for i in range(b.size):
            count += 1 if b[i] >= extreme else 0
        units[0] = count
        return b, units
    row = np.empty(n_rows, np.float32)
    for r in range(n_rows):
        m = np.float32(0.0)
        for i in range(r * per_row, (r + 1) * per_row):
            m = max(m, b[i])
        row[r] = m
    for start in range(0, b.size, width):
        for j in range(width):
            units[j] += 1 if b[start + j] >= extreme else 0
    return row, units


def row_unit(
    a: np.ndarray, n_rows: int, width: int, extreme: np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row max |x| (float32, inf for NaN/inf) and per-unit (int64) counts of NaN/inf or
    ``|x| >= extreme`` of a contiguous float32 ``a`` of ``n_rows`` (> 0) rows whose values per
    row are a multiple of ``width``; ``extreme`` is compared in float32, as numpy compares a
    float32 array with a Python float."""
    return _row_unit(a, n_rows, width, extreme)

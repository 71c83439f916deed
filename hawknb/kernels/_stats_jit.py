"""Moments of a big tensor in two compiled passes per block, for :mod:`.tensor_stats`.

Why: with numpy a block of :data:`~hawknb.kernels.tensor_stats.BLOCK` values costs four passes
(min, max, a sum, a dot), each a call of its own. Measured on one thread, 128k float32 values in
L2: numpy's four 21-24 us, :func:`block_moments` 10 us (a pass for the extremes, one for the
sums: 8.4 us fused into one, but see :func:`_block_sums`); a ReLU's sums alone (its extremes
known) 3 us against 7-10 us for ``?asum`` and a dot; a block holding NaN/inf 27 us against
75-320 us for numpy's counting path. The conv net's tensors of 2-8M values, read from memory
as after the op that wrote them: 2.2-2.4x less time for all four, 1.7-2x for a ReLU's sums.

How: float reductions vectorize only when they may be reassociated, so the kernels carry
numba's fast-math flags ``reassoc``, ``contract``, ``nsz`` and ``arcp`` -- never ``nnan`` or
``ninf``: NaN and inf still flow through the arithmetic as IEEE says. Float min/max do not
vectorize even so (LLVM wants no-NaN for them), so the extremes are taken on integer keys: a
float's bits with the magnitude bits flipped when the sign bit is set order exactly as the
floats do (-0.0 just below +0.0), with NaN beyond -inf/+inf, and integer min/max vectorize with
no flag at all. A block whose extreme keys are finite therefore holds only finite values (a NaN
or an inf would be an extreme); any other block is summed again, counting NaN/inf and skipping
them, as numpy's path does. Each block's sums are in the tensor's precision (several lanes,
the rounding class of numpy's and BLAS's vectorized sums) and are added up in float64.

On AVX2 (no 64-bit integer min/max) the int64 keys that numba's integer widening makes of
float32 bits ran scalar (47-67 us for 128k values on a Zen 2 core); float32 blocks take their
keys in int32 (:func:`_keys32`, 6-16 us), the same integers. Histograms: a big tensor's strided
sample is binned and scaled to its finite count in one call, and the small tensors' segments
in one loop over their float64 buffer, with numpy's arithmetic (no fast-math), so the same
counts as numpy's paths.

``READY`` is False where numba cannot be imported; :mod:`~hawknb.kernels.tensor_stats` then
takes its numpy path. Compiled code is cached on disk (``cache=True``); this module is imported
on the first tensor above ``SMALL`` values or the first histogram, never by ``import hawknb``.
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - exercised by whichever branch the environment has
    import numba
except ImportError:  # pragma: no cover
    numba = None

READY = numba is not None

#: reassociation for the sums (several accumulators, hence SIMD); no nnan/ninf, so NaN and inf
#: propagate into the sums and keys as without fast-math
FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


def _jit(fn):
    return numba.njit(nogil=True, cache=True, fastmath=set(FASTMATH))(fn) if READY else fn


#: per float dtype: its bits' integer dtype, and (sign shift, magnitude mask, exponent of
#: inf/NaN, one) in that integer dtype
_BITS = {
    np.dtype(np.float32): np.array([31, 0x7FFFFFFF, 0x7F800000, 1], dtype=np.int32),
    np.dtype(np.float64): np.array([63, 0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000, 1], dtype=np.int64),
}


@_jit
def _keys(bits, c):  # pragma: no cover - compiled
    """(min key, max key) of a non-empty block's values."""
    sign, mag = c[0], c[1]
    lo, hi = mag, -mag
    for i in range(bits.size):
        b = bits[i]
        k = b ^ ((b >> sign) & mag)
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@_jit
def _keys32(bits):  # pragma: no cover - compiled
    """:func:`_keys` of float32 bits with every step in int32: numba widens int32 arithmetic
    to int64, and AVX2 has no 64-bit integer min/max, so :func:`_keys` runs scalar there
    (measured on a Zen 2 core, 131k values in L2: 47-67 us against 6-16 us for this loop,
    whose int32 min/max vectorize). The keys are exact integers: the same extremes."""
    lo, hi = np.int32(0x7FFFFFFF), np.int32(-0x7FFFFFFF)
    for i in range(bits.size):
        b = bits[i]
        k = np.int32(b ^ ((b >> 31) & 0x7FFFFFFF))
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@_jit
def _classes32(bits):  # pragma: no cover - compiled
    """(finite count, NaN count) of float32 bits, in int32 (so it vectorizes on AVX2): a
    block with no finite value has nothing to sum, so its statistics are these counts
    whatever the order, and :func:`_careful`'s one pass (~100 us for 128k values on a Zen 2
    core, its keys in int64) is not needed (~5 us)."""
    finite, nan = np.int32(0), np.int32(0)
    for i in range(bits.size):
        a = np.int32(bits[i] & 0x7FFFFFFF)
        finite = np.int32(finite + (1 if a < 0x7F800000 else 0))
        nan = np.int32(nan + (1 if a > 0x7F800000 else 0))
    return finite, nan


@_jit
def _block_sums(x):  # pragma: no cover - compiled
    """(sum, sum of squares, and the same of ``max(x, 0)``) of a block in its dtype: the one
    loop both :func:`_moments` and :func:`_sums` run, so a ReLU's sums with known extremes
    equal its sums without, bit for bit (a loop fused with the keys' would be vectorized, so
    rounded, differently). The positive parts are a ReLU's sums taken from its input: one
    loop vectorizes its four reductions alike (the same lanes and the same final adds), so
    for a ReLU's input they equal the ReLU's own sums (its values are ``max(x, 0)``) bit for
    bit, and for values >= 0 they equal the plain sums; they cost ~0.6 us a 128k-value block
    (3.4 us against 2.8 us), where the ReLU's own pass costs ~5 us."""
    s = q = sp = qp = np.float32(0.0)  # unified with x's dtype by numba
    zero = np.float32(0.0)
    for i in range(x.size):
        v = x[i]
        w = v if v > zero else zero
        s += v
        q += v * v
        sp += w
        qp += w * w
    return s, q, sp, qp


@_jit
def _careful(x, bits, c):  # pragma: no cover - compiled
    """:func:`_keys` and :func:`_block_sums` in one pass over the finite values only, with the
    finite and NaN counts (branch-free selects, so it vectorizes too). With no finite value the
    keys are NaN's."""
    sign, mag, inf, one = c[0], c[1], c[2], c[3]
    nil = one - one
    lo, hi = mag, -mag
    s = q = np.float32(0.0)
    finite = nan = nil
    for i in range(x.size):
        b = bits[i]
        a = b & mag
        fin = a < inf
        v = x[i] if fin else np.float32(0.0)
        k = b ^ ((b >> sign) & mag)
        lo = min(lo, k if fin else mag)
        hi = max(hi, k if fin else -mag)
        s += v
        q += v * v
        finite += one if fin else nil
        nan += one if a > inf else nil
    return lo, hi, s, q, finite, nan


@_jit
def _moments(x, bits, c, block):  # pragma: no cover - compiled
    """(min, max, sum, sum of squares, finite count, NaN count, sum and sum of squares of the
    positive parts) over the finite values of a non-empty ``x``, block by block (min/max NaN
    when none is finite; the positive parts' sums are only meaningful when all are)."""
    sign, mag, inf = c[0], c[1], c[2]
    lo, hi = mag, -mag
    s = q = sp = qp = 0.0
    finite = nan = 0
    for a in range(0, x.size, block):
        xb, bb = x[a : a + block], bits[a : a + block]
        if bb.itemsize == 4:
            klo, khi = _keys32(bb)
        else:
            klo, khi = _keys(bb, c)
        if klo >= -inf and khi < inf:  # finite extremes: no NaN/inf (the block is in L2 now)
            bs, bq, bp, bpq = _block_sums(xb)
            sp += bp
            qp += bpq
            f, nn = xb.size, 0
        else:  # NaN or inf among the extremes: count them, sum the finite values
            f, nn = _classes32(bb) if bb.itemsize == 4 else (1, 0)
            if f == 0:  # nothing finite (every block after an inf weight): nothing to sum
                nan += nn
                continue
            klo, khi, bs, bq, f, nn = _careful(xb, bb, c)
        if f:
            lo, hi = min(lo, klo), max(hi, khi)
        s += bs
        q += bq
        finite += f
        nan += nn
    out = np.empty(2, x.dtype)
    keys = out.view(bits.dtype)
    keys[0] = lo ^ ((lo >> sign) & mag)  # a key back to the float's bits
    keys[1] = hi ^ ((hi >> sign) & mag)
    return out[0], out[1], s, q, finite, nan, sp, qp


@_jit
def _sums(x, block):  # pragma: no cover - compiled
    """(sum, sum of squares, and the same of the positive parts) of ``x``: each block's in its
    dtype, added up in float64 (all four returned, so that the loop compiled here is
    :func:`_moments`' and rounds as it does)."""
    s = q = sp = qp = 0.0
    for a in range(0, x.size, block):
        bs, bq, bp, bpq = _block_sums(x[a : a + block])
        s += bs
        q += bq
        sp += bp
        qp += bpq
    return s, q, sp, qp


def _exact(fn):
    """No fast-math: the bins' arithmetic must round as numpy's does."""
    return numba.njit(nogil=True, cache=True)(fn) if READY else fn


@_exact
def _bin_sample(x, step, lo, scale, bins, counts):  # pragma: no cover - compiled
    """counts[cell] += 1 for every ``step``-th finite value, its cell ``int((v - lo) * scale)``
    in the values' dtype as :func:`~hawknb.kernels.tensor_stats._bin_counts` computes it, the
    top edge (and rounding past it) in the last bin."""
    last = bins - 1
    for i in range(0, x.size, step):
        v = x[i]
        if math.isfinite(v):
            c = np.int32((v - lo) * scale)
            counts[min(c, last)] += 1


@_exact
def _scale(counts, total):  # pragma: no cover - compiled
    """Sample counts scaled to ``total`` as :func:`~hawknb.kernels.tensor_stats._scaled`
    rounds them: each share floored, the largest remainders (ties in bin order: a stable
    sort of ``floor - share``) rounded up until they sum to ``total``. The same float64
    operations as there (integers below 2^53 convert exactly), so the same counts."""
    f = total / counts.sum()
    share = counts * f
    floor = np.floor(share)
    out = floor.astype(np.int64)
    short = total - out.sum()
    if short > 0:
        order = np.argsort(floor - share, kind="mergesort")
        for k in range(short):
            out[order[k]] += 1
    return out


@_exact
def _sample_histogram(x, step, lo, scale, bins, total):  # pragma: no cover - compiled
    """:func:`_bin_sample`'s counts, scaled to ``total`` by :func:`_scale` when the sample
    is strided and holds a finite value."""
    counts = np.zeros(bins, np.int64)
    _bin_sample(x, step, lo, scale, bins, counts)
    if step > 1 and counts.sum() > 0:
        return _scale(counts, total)
    return counts


@_exact
def _relu_sample_histograms(
    x, step, lo, scale, lo_r, scale_r, bins, total
):  # pragma: no cover - compiled
    """:func:`_sample_histogram`'s counts of an all-finite ``x`` and of ``max(x, 0)`` (a ReLU
    of it: the same sample positions, from ``lo_r`` at ``scale_r``) from one pass over the
    sample, each value's cells computed as there. The ReLU's zeros share one cell, counted
    at the end; its other cells are kept in a buffer advanced only past a positive value,
    so the loop has no branch on the sign (a test mispredicts on every other value of a
    layer's output: 93 us instead of ~45 for a 131k-value layer's sample)."""
    counts = np.zeros(bins, np.int64)
    relu = np.zeros(bins, np.int64)
    last = bins - 1
    cells = np.empty((x.size + step - 1) // step, np.int32)
    zero = lo_r - lo_r  # the ReLU's 0 in the values' dtype
    k = 0
    for i in range(0, x.size, step):
        v = x[i]
        counts[min(np.int32((v - lo) * scale), last)] += 1
        positive = v > zero
        cells[k] = min(np.int32(((v if positive else zero) - lo_r) * scale_r), last)
        k += 1 if positive else 0
    for a in range(k):
        relu[cells[a]] += 1
    relu[min(np.int32((zero - lo_r) * scale_r), last)] += cells.size - k
    if step > 1:
        return _scale(counts, total), _scale(relu, total)
    return counts, relu


@_exact
def _segment_cells(buf, first, sizes, lo, scale, bins, counts):  # pragma: no cover - compiled
    """counts[s, cell] += 1 for every finite value of segment ``s`` of ``buf``, its cell
    ``int((v - lo[s]) * scale[s])`` in float64, the top edge (and rounding past it) in the
    last bin: numpy's subtract, scale, clamp or fold, int32 cast and ``bincount`` of
    :func:`~hawknb.kernels.tensor_stats._few_histograms` in one loop, value for value."""
    last = bins - 1
    for s in range(first.size):
        low, sc = lo[s], scale[s]
        for i in range(first[s], first[s] + sizes[s]):
            v = buf[i]
            if math.isfinite(v):
                c = np.int32((v - low) * sc)
                counts[s, min(c, last)] += 1


def usable(v: np.ndarray) -> bool:
    """Whether the kernels take ``v``: a non-empty contiguous float32/float64 array (other
    layouts would compile another signature for a rare case; numpy's path takes them)."""
    return READY and v.dtype in _BITS and v.size > 0 and v.flags.c_contiguous


def block_moments(v: np.ndarray, block: int) -> tuple[float, float, float, float, int, int]:
    """(min, max, sum, sum of squares, finite count, NaN count) over the finite values of a
    :func:`usable` ``v``, each ``block`` values reduced in one pass."""
    return block_moments_positive(v, block)[:6]


def block_moments_positive(
    v: np.ndarray, block: int
) -> tuple[float, float, float, float, int, int, float, float]:
    """:func:`block_moments` and, from the same pass, the sum and sum of squares of
    ``max(v, 0)`` (meaningful when every value is finite): a ReLU of ``v``'s sums, equal bit
    for bit to those :func:`block_sums` takes of the ReLU's values (see :func:`_block_sums`)."""
    c = _BITS[v.dtype]
    return _moments(v, v.view(c.dtype), c, block)


def block_sums(v: np.ndarray, block: int) -> tuple[float, float]:
    """(sum, sum of squares) of a :func:`usable` all-finite ``v`` in one pass per block."""
    return _sums(v, block)[:2]


def sample_histogram(
    v: np.ndarray, step: int, lo: float, span: float, bins: int, total: int
) -> np.ndarray:
    """The counts of the finite values among every ``step``-th of a :func:`usable` ``v`` in
    ``bins`` equal bins from its finite minimum ``lo`` over ``span`` (0 < span < float32 max
    / 2, bins < 2^20), scaled to ``total`` finite values when ``step > 1``, in one
    compiled call instead of three (the counts' array, the binning, the largest-remainder
    rounding on Python numbers); the same cells as numpy's binning to the bit (no
    fast-math) and the same rounding as :func:`~hawknb.kernels.tensor_stats._scaled`."""
    t = v.dtype.type
    return _sample_histogram(v, step, t(lo), t(bins / span), bins, total)


def relu_sample_histograms(
    v: np.ndarray,
    step: int,
    lo: float,
    span: float,
    lo_r: float,
    span_r: float,
    bins: int,
    total: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_histogram` of an all-finite :func:`usable` ``v`` (``total`` values) and
    of its ReLU (extremes clamped at 0: from ``lo_r`` over ``span_r``) in one pass: the same
    counts as :func:`sample_histogram` of each (the same sample, cells, scaling)."""
    t = v.dtype.type
    return _relu_sample_histograms(
        v, step, t(lo), t(bins / span), t(lo_r), t(bins / span_r), bins, total
    )


def segment_counts(
    buf: np.ndarray,
    first: np.ndarray,
    sizes: np.ndarray,
    lo: np.ndarray,
    scale: np.ndarray,
    bins: int,
) -> np.ndarray:
    """[segments, bins] counts of the finite float64 values of each segment of ``buf`` (from
    ``first``, ``sizes`` long) in ``bins`` equal bins from ``lo`` at ``scale`` bins per unit
    (finite, > 0; bins < 2^20). Why: numpy's five calls per segment (or fifteen for segment-offset
    bins) cost more than a small model's op; the cells are numpy's to the bit (no fast-math)."""
    counts = np.zeros((first.size, bins), np.int64)
    _segment_cells(buf, first, sizes, lo, scale, bins, counts)
    return counts

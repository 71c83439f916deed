"""The two passes over every value of :mod:`hawknb.kernels.drift_binned`, compiled by numba.

Why: with numpy, binning a value on the grid takes six passes over a chunk (subtract,
multiply, clip, two casts, a bincount) and pulling the values of the wanted cells three more
(a gather of a per-cell flag, a nonzero, a take), each a numpy call that hands the GIL over;
two threads then finish only 1.1-1.4x sooner than one. Here each is one loop per value that
releases the GIL for its whole length (``nogil``): the arithmetic is the grid's, operation
for operation in the grid's dtype (no fast-math, so no fused multiply-add), so every value
gets the cell :class:`~hawknb.kernels.drift_binned.Grid` gives it, to the bit.

torch (already a dependency) was measured first: its element-wise kernels and ``bincount``
count a column ~1.3x faster than numpy on one thread, but they run on the process's intra-op
thread pool, whose size is process-global (a library must not set it), and with its default
of two threads under the pool of columns they burnt twice the CPU time.

``READY`` is False where numba cannot be imported; the numpy path then answers (same bits).
Compiled code is cached on disk (``cache=True``), so a process compiles each signature once.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by whichever branch the environment has
    import numba
except ImportError:  # pragma: no cover
    numba = None

READY = numba is not None


def _jit(fn):
    return numba.njit(nogil=True, cache=True)(fn) if READY else fn


@_jit
def _count(x, base, inv, top, counts, keep):  # pragma: no cover - compiled
    """counts[cell] += 1 for every value; keep[i] = its cell when keep is not empty. (Not
    split into two halves for odd and even values against the chain of increments a point
    mass makes: 0.2 ms less per million values on 40% zeros, 0.4 ms more on continuous.)"""
    zero = top - top
    kept = keep.size > 0
    for i in range(x.size):
        c = np.int32(min(max((x[i] - base) * inv, zero), top))
        if kept:
            keep[i] = c
        counts[c] += 1


@_jit
def _cell(x, i, keep, base, inv, top):  # pragma: no cover - compiled (inlined)
    """Value i's cell: kept, or computed again as :func:`_count` did."""
    if keep.size > 0:
        return keep[i]
    return np.int32(min(max((x[i] - base) * inv, top - top), top))


@_jit
def _pull(x, keep, base, inv, top, slot, atoms, out_v, out_c):  # pragma: no cover
    """Values of the cells whose ``slot`` (position in the list of wanted cells) is not
    -1, in sample order, with their cells, less copies of a wanted cell's repeated value
    ``atoms[slot]`` (NaN: none). For wanted cells that hold few values: the branch on
    whether a value's cell is wanted is then nearly always "no". Returns how many."""
    k = 0
    for i in range(x.size):
        c = _cell(x, i, keep, base, inv, top)
        s = slot[c]
        if s >= 0:
            v = x[i]
            if v != atoms[s]:
                out_v[k] = v
                out_c[k] = c
                k += 1
    return k


@_jit
def _pull_dense(x, keep, base, inv, top, lo, hi, out_v, out_c):  # pragma: no cover
    """:func:`_pull` when the wanted cells hold many values (point masses): value v of cell
    c is pulled iff v < lo[c] or v > hi[c] (not wanted: -inf, inf; wanted: inf, or its
    repeated value twice), one branch on the (rare) outcome instead of a coin toss on
    whether the cell is wanted (measured on 40% zeros: 5.7 ms per million values, 1.7)."""
    k = 0
    for i in range(x.size):
        c = _cell(x, i, keep, base, inv, top)
        v = x[i]
        if (v < lo[c]) | (v > hi[c]):
            out_v[k] = v
            out_c[k] = c
            k += 1
    return k


def count(x: np.ndarray, grid, keep: np.ndarray) -> np.ndarray:
    """Every cell's count (intp) of the values ``x`` on ``grid``, keeping each value's
    cell in ``keep`` (int32, x.size values, or empty: not kept)."""
    t = grid.dtype.type
    # int32 counters: half the cache lines of int64 (1.3 vs 1.6 ms per million values)
    out = np.zeros(grid.cells + 2, dtype=np.int32 if x.size < 2**31 else np.int64)
    _count(x, t(grid.base), t(grid.inv), t(grid.cells + 1), out, keep)
    return out.astype(np.intp)


def pull(
    x: np.ndarray, keep: np.ndarray, grid, on: np.ndarray, atoms: np.ndarray, counts
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (sample order) and cells of the cells ``on`` (sorted; ``counts``: their
    counts) other than copies of their repeated value ``atoms`` (one per cell of ``on``,
    NaN where none), and how many such copies each cell of ``on`` holds."""
    t = grid.dtype.type
    args = (x, keep, t(grid.base), t(grid.inv), t(grid.cells + 1))
    size = int(counts.sum())
    out_v, out_c = np.empty(size, dtype=x.dtype), np.empty(size, dtype=np.intp)
    a = atoms.astype(x.dtype)
    if size * 8 > x.size:  # (a point mass in a wanted cell)
        lo = np.full(grid.cells + 2, -np.inf, dtype=x.dtype)
        hi = np.full(grid.cells + 2, np.inf, dtype=x.dtype)
        lo[on] = np.where(np.isnan(a), np.inf, a)
        hi[on] = a
        k = _pull_dense(*args, lo, hi, out_v, out_c)
    else:
        slot = np.full(grid.cells + 2, -1, dtype=np.int32)
        slot[on] = np.arange(on.size, dtype=np.int32)
        k = _pull(*args, slot, a, out_v, out_c)
    v, c = out_v[:k], out_c[:k]
    return v, c, counts - np.bincount(np.searchsorted(on, c), minlength=on.size)

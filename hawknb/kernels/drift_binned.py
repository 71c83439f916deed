"""Drift of large samples without sorting them: count both samples on a fine uniform grid.

Sorting a million values per feature (what the exact distances in
:mod:`hawknb.kernels.drift` do) costs ~100x a pass over them. Here neither sample is sorted:
every value gets a cell of a uniform grid over the reference's bulk through a subtract, a
multiply, a clip and a truncation (a *monotone* map, so cell counts are exact CDF values at
the cell boundaries even in float32), one ``bincount`` per sample gives both CDFs on the
grid, and only the values of the few cells where an exact answer needs them are pulled out
(one gather of a per-cell flag, or compares on the cell indices when they are a few runs of
cells) and sorted:

* KS is exact: the largest CDF gap at the cell boundaries, then every value of each cell
  where the gap, moved by at most each sample's count in the cell in its own direction,
  could exceed that (near the maximum only), the gaps at the pulled values read off one merge
  of the two samples' sorted pulled values;
* PSI is exact: counts below each decile edge are the counts below its cell plus the values
  of that cell below the edge;
* Wasserstein-1 is the trapezoid rule on the grid, exact over the two tails outside it and
  over every pulled-out cell. The trapezoid misplaces a cell's values by at most half its
  width, so a cell where the two CDFs do not cross is off by at most width / 2 times its mass
  in both samples (at most one width in all: :data:`GRID_WIDTH` reference IQRs); a cell where
  they may cross is off by up to twice that, so such cells are pulled out, heaviest first,
  until the bound fits 1e-4 IQR (:func:`_crossings`). Heavy tails shrink the grid's span
  (each side's reference tail 0.1%, else 1%, 5% or 25%, the least left out that fits) so
  that it never needs more than :data:`MAX_CELLS` cells; a reference whose IQR is zero may exceed the bound (its grid is
  capped at :data:`MAX_CELLS` cells over its full range, W1 normalized by its std);
* the reference's quartiles, median and PSI edges are exact order statistics read from the
  pulled-out cells, interpolated as ``np.quantile`` does (same bits), and so is the MAD
  (:func:`_mad_on_grid`: counts by distance from the median's cell find the cells that hold
  its middle ranks, pulled with the rest), so no pass over the reference is needed for them;
* the mean shift uses exact float64 sums.

A cell that is mostly one repeated value (a default, an integer count) is not sorted: its
copies of that value are counted and re-inserted, so point masses stay linear. The reference's
subsample guesses each heavy cell's value; one compare-and-count over a sample checks it, and
a cell that holds nothing else is not pulled at all.

Samples past :data:`_CHUNK` values are binned and pulled chunk by chunk, so the per-value
temporaries stay in cache (two threads share it) and only the cells are kept, as int32, for
the pull. Everything after the
counts works on lists of the wanted cells or on a handful of passes
over the cell arrays: with up to 2^18 cells, each pass over them costs about as much as a
tenth of a pass over a million values.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from . import _drift_jit as _jit
from .drift import DEFAULT_BINS, PSI_EPS, psi_bins, psi_from_counts, robust_scale, spread_scale

#: count and pull with the compiled passes of :mod:`hawknb.kernels._drift_jit` where numba
#: is installed (the numpy passes give the same bits; tests compare them)
USE_JIT = True
#: cell width in reference IQRs (the W1 error is at most this)
GRID_WIDTH = 1e-4
#: reference values that guess the grid's span and the heavy cells' repeated values
_SUBSAMPLE = 8192
#: samples larger than this are binned chunk by chunk (see :class:`_Cells`), so that a
#: chunk's temporaries stay near a core's cache while a whole sample's 8 MB arrays would go
#: to memory through a cache the threads share. Why 2^18 and not smaller: every numpy call
#: hands the GIL over, and with two threads each handover is a context switch; on 40
#: columns x 1M values, two threads, interleaved rounds at load 15-16, 2^18 and 2^19 took
#: 0.89x / 0.90x the wall time of 2^17 (context switches 3,617 -> 2,686 / 2,147); one
#: thread alone was ~2% slower with 2^19 (cache), 8% slower with whole samples
_CHUNK = 1 << 18
#: up to this many values, a chunked sample's cells are kept as int32 for the later passes
#: (a thread's buffer for them is at most 64 MB)
_KEEP = 1 << 24
#: integer type of cell indices (int32 halves the index array but numpy's bincount and
#: take cast it back to intp: measured no faster)
_CELL = np.intp
#: most and fewest cells of a grid (the most grows with :func:`_refine`)
MAX_CELLS = 1 << 18
#: effective sample size n m / (n + m) from which the grid gets finer, and at most how much
_REFINE_FROM = 200_000
_REFINE_MAX = 4.0
MIN_CELLS = 1 << 10
#: reference tail fractions left outside the grid, tried in order until the grid fits
_TAILS = (0.001, 0.01, 0.05, 0.25)
#: each side's tail on its own, least mass left out first: a right-skewed reference keeps
#: its thin left tail on the grid while its long right tail is cut shorter
_TAIL_PAIRS = sorted(
    ((i, j) for i in range(len(_TAILS)) for j in range(len(_TAILS))),
    key=lambda p: _TAILS[p[0]] + _TAILS[p[1]],
)
#: from this many pulled-out values on, repeated values are counted instead of sorted
_ATOMS_FROM = 4096
#: a value repeated this often in a reference cell is counted, not pulled, in the current one
_ATOM_MIN = 64
#: up to this many heavy cells with a repeated value, its copies are found by compares
_ATOM_CHECKS = 16
#: up to this many runs of pulled cells, their values are found by compares, not a gather
_RUNS_BY_COMPARE = 3


@dataclass(frozen=True)
class Grid:
    """Uniform cells over [lo, hi): cell 0 holds x < lo, cells 1..cells hold
    [lo + (j - 1) width, lo + j width), cell cells + 1 holds x >= hi (up to rounding, which
    moves a boundary by an ulp but never breaks monotonicity). ``base`` and ``inv`` are
    exact in ``dtype``, so the boundaries are where the arithmetic puts them."""

    base: float
    inv: float
    cells: int
    dtype: np.dtype

    @property
    def width(self) -> float:
        return 1.0 / self.inv

    @property
    def lo(self) -> float:
        return self.base + self.width

    @property
    def hi(self) -> float:
        return self.base + (self.cells + 1) * self.width

    def __call__(
        self, x: np.ndarray, into: str | None = None, i32: np.ndarray | None = None
    ) -> np.ndarray:
        """Cell index of every value (monotone non-decreasing in x); ``into`` names this
        thread's scratch buffer to write it to (see :func:`_scratch`) instead of a new array,
        ``i32`` an int32 array to keep them in as well."""
        with np.errstate(over="ignore"):  # a float32 value near its limit: +-inf, clipped
            if into is None:
                t = np.subtract(x, self.dtype.type(self.base), dtype=self.dtype)
            else:
                buf = _scratch("t", x.size, self.dtype)
                t = np.subtract(x, self.dtype.type(self.base), out=buf)
            t *= self.dtype.type(self.inv)
        np.clip(t, 0, self.cells + 1, out=t)
        if into is None:
            return t.astype(_CELL)
        # float -> int32 -> intp: numpy converts float32 to int32 with SIMD but to int64
        # one value at a time (measured 0.09 + 0.15 ms vs 0.53 ms per million)
        if i32 is None:
            i32 = _scratch("i32", x.size, np.dtype(np.int32))
        np.copyto(i32, t, casting="unsafe")
        out = _scratch(into, x.size, np.dtype(_CELL))
        np.copyto(out, i32)
        return out


_LOCAL = threading.local()


def _scratch(key: str, n: int, dtype: np.dtype) -> np.ndarray:
    """This thread's reusable buffer ``key`` of n values. Why: a fresh 8 MB index array per
    column costs ~2,000 page faults (the allocator hands big blocks back to the system when
    they are freed), and with two threads faulting in one address space the faults cost more
    than the arithmetic (measured: a third of the CPU time went to the kernel, and wall time
    was 3.5x CPU time). At most _CHUNK values each (larger samples are chunked) but the
    int32 cells a chunked sample keeps (up to _KEEP) and the spans of them a fine grid counts
    (twice its cells), freed with the thread."""
    bufs = _LOCAL.__dict__.setdefault("bufs", {})
    b = bufs.get((key, dtype))
    if b is None or b.size < n:
        b = np.empty(max(n, 1 << 16), dtype=dtype)
        bufs[(key, dtype)] = b
    return b[:n]


def make_grid(
    spans: list[tuple[float, float]], scale: float, dtype: np.dtype, max_cells: int = MAX_CELLS
) -> Grid:
    """The finest grid of cells GRID_WIDTH * scale wide over the first span (reference
    quantile ranges, least tail mass left out first, the last its full range) that fits in
    ``max_cells`` cells."""
    lo, hi = spans[-1]
    for a, b in spans:
        if b > a:
            lo, hi = a, b
            if (b - a) / (GRID_WIDTH * scale) <= max_cells:
                break
    cells = int(np.clip(np.ceil((hi - lo) / (GRID_WIDTH * scale)), MIN_CELLS, max_cells))
    width = (hi - lo) / cells
    dt = np.dtype(dtype)
    if dt != np.float64:
        f = np.finfo(dt)
        if not (abs(lo) + width < f.max / 4 and f.tiny * 4 < 1.0 / width < f.max / 4):
            dt = np.dtype(np.float64)
    base, inv = dt.type(lo - width), dt.type(1.0 / width)
    return Grid(float(base), float(inv), cells, dt)


def _rough_spans(r: np.ndarray) -> tuple[float, list[tuple[float, float]], np.ndarray]:
    """The reference's IQR and grid spans from a subsample of ~8k values (a grid needs only
    rough numbers: its width is checked against the exact IQR afterwards), and the subsample
    (it also guesses the repeated values of heavy cells, :func:`_guess_atoms`)."""
    sub = r[:: max(1, r.size // _SUBSAMPLE)]
    t = len(_TAILS)
    # order statistics of the sorted subsample, no interpolation (np.quantile's machinery
    # cost more than the sort)
    srt = np.sort(sub).astype(np.float64)
    at = np.array([0.25, 0.75, *_TAILS, *(1 - a for a in _TAILS)]) * (srt.size - 1)
    qs = srt[np.rint(at).astype(np.intp)]
    spans = [(float(qs[2 + i]), float(qs[2 + t + j])) for i, j in _TAIL_PAIRS]
    spans.append((float(r.min()), float(r.max())))
    iqr = float(qs[1] - qs[0])
    return (iqr if iqr > 0 else float(np.std(sub)) or 1.0), spans, sub


def _guess_atoms(sub: np.ndarray, grid: Grid, heavy: np.ndarray, size: int) -> np.ndarray:
    """Per cell, the value the subsample repeats most in it, for the heavy cells (NaN
    elsewhere): a guess that :func:`_pull_known` checks by counting, so a cell that is one
    point mass (a default, an integer count) is never pulled out and sorted."""
    atoms = np.full(size, np.nan, dtype=sub.dtype)
    if heavy.size == 0:
        return atoms
    mask = np.zeros(size, dtype=bool)
    mask[heavy] = True
    vals, reps = _runs(np.sort(sub[np.take(mask, grid(sub))]))
    cells = grid(vals)
    top = np.lexsort((-reps, cells))  # by cell, the most repeated value first
    first = np.append(True, cells[top][1:] != cells[top][:-1])
    atoms[cells[top][first]] = vals[top][first]
    return atoms


def _ranks(n: int, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order-statistic ranks and weights of numpy's default (linear) quantile."""
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    gamma = virtual - prev
    lo = np.clip(prev, 0, n - 1).astype(np.int64)
    hi = np.clip(prev + 1, 0, n - 1).astype(np.int64)
    return lo, hi, gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation, operation for operation (same bits)."""
    d = b - a
    out = a + d * t
    return np.where(t >= 0.5, b - d * (1 - t), out)


def _cum(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _runs(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how many times each occurs."""
    if v.size == 0:
        return v, np.zeros(0, dtype=np.int64)
    new = np.empty(v.size, dtype=bool)
    new[0] = True
    np.not_equal(v[1:], v[:-1], out=new[1:])
    at = np.flatnonzero(new)
    return v[at], np.diff(np.append(at, v.size))


def _merge(
    rest: np.ndarray, reps: np.ndarray, atoms: np.ndarray, n_atoms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values ``rest`` (counts ``reps``) with the cells' repeated values
    put in place: a binary search each (they are few, and never equal a value of ``rest``:
    a cell's other values differ from its repeated one, and cells do not share values),
    not a sort of them all (continuous data pulls thousands of values and no atom)."""
    if atoms.size == 0:
        return rest, reps
    o = np.argsort(atoms, kind="stable")
    at = np.searchsorted(rest, atoms[o])
    return np.insert(rest, at, atoms[o]), np.insert(reps, at, n_atoms[o])


class _Cells:
    """Cell indices of a sample, chunk by chunk: kept whole up to _CHUNK values; beyond,
    given out a chunk at a time (see _CHUNK; a 10M-value sample's index array alone would be
    80 MB) from an int32 copy of them all that the counting pass keeps (up to _KEEP values:
    widening a chunk to intp costs a fifth of computing it again), else computed again.
    Chunks are counted by a bincount each, added up, on grids of up to _CHUNK cells; a
    finer grid's kept cells by a bincount per span of twice its cells (a bincount per chunk
    would make and add an array of every cell each time), else (cells not kept) by
    ``np.add.at``. Why not ``np.add.at`` always: it holds the GIL for much of its work (two
    threads counting 2^17-value chunks: 1.17x one thread's throughput, bincount 1.66x), and
    it is slower (10M lognormal values on 478k cells: 62-72 ms, spans of bincounts 40 ms)."""

    def __init__(self, x: np.ndarray, grid: Grid, key: str) -> None:
        self.x, self.grid, self.key = x, grid, key
        self.jit = USE_JIT and _jit.READY  # one compiled pass each (see _drift_jit)
        self.whole = grid(x, key) if x.size <= _CHUNK and not self.jit else None
        self.kept: np.ndarray | None = None

    def __iter__(self):  # (offset, cells of x[offset : offset + their length])
        if self.whole is not None:
            yield 0, self.whole
            return
        n = self.x.size
        if self.kept is not None:
            for i in range(0, n, _CHUNK):
                part = self.kept[i : i + _CHUNK]
                out = _scratch(self.key, part.size, np.dtype(_CELL))
                np.copyto(out, part)
                yield i, out
            return
        keep = _scratch(self.key + " int32", n, np.dtype(np.int32)) if n <= _KEEP else None
        for i in range(0, n, _CHUNK):
            part = None if keep is None else keep[i : i + _CHUNK]
            yield i, self.grid(self.x[i : i + _CHUNK], self.key, part)
        self.kept = keep  # (only once every chunk was computed)

    def counts(self, size: int) -> np.ndarray:
        if self.jit:  # cells kept as int32 up to _KEEP values, else computed again
            n = self.x.size
            keep = _scratch(self.key + " int32", n if n <= _KEEP else 0, np.dtype(np.int32))
            self.kept = keep
            return _jit.count(self.x, self.grid, keep)
        if self.whole is not None:
            return np.bincount(self.whole, minlength=size)
        out = np.zeros(size, dtype=np.intp)
        n = self.x.size
        if size <= _CHUNK or n > _KEEP:
            for _, ix in self:
                if size <= _CHUNK:
                    out += np.bincount(ix, minlength=size)
                else:  # (a bincount would make and add an array of every cell per chunk)
                    np.add.at(out, ix, 1)
            return out
        for _ in self:  # every chunk's cells, kept as int32
            pass
        span = 2 * size  # values per bincount: its array of every cell costs less than them
        for i in range(0, n, span):
            part = self.kept[i : i + span]
            ix = _scratch(self.key + " span", part.size, np.dtype(_CELL))
            np.copyto(ix, part)
            out += np.bincount(ix, minlength=size)
        return out


def _select(
    cells: _Cells, on: np.ndarray, size: int, skip: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the values in cells ``on`` (sorted cell indices), not skipped, and
    their cells. A few runs of cells (the tails, one point mass) are found by compares on
    the cell indices; more by one gather of a per-cell flag."""
    if on.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=_CELL)
    cut = np.flatnonzero(np.diff(on) > 1)
    starts = on[np.append(0, cut + 1)]  # (np.r_ is slow Python: the GIL the threads share)
    ends = on[np.append(cut, on.size - 1)]
    flag = None
    if starts.size > _RUNS_BY_COMPARE:
        flag = np.zeros(size, dtype=bool)
        flag[on] = True
    ats, vis = [], []
    for off, ix in cells:
        if flag is not None:
            sel = np.take(flag, ix)  # (with out=, numpy buffers the take: 2-3x slower)
        else:
            sel = None
            for a, b in zip(starts, ends, strict=True):
                part = ix == a if a == b else (ix >= a) & (ix <= b)
                sel = part if sel is None else np.logical_or(sel, part, out=sel)
        if skip is not None:
            sel &= ~skip[off : off + ix.size]
        at = np.flatnonzero(sel)
        ats.append(at + off)
        vis.append(ix[at])
    return np.concatenate(ats), np.concatenate(vis)


def _slot(cells: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each value's cell ``vi`` sits in the sorted cell list ``cells``, and whether
    it is there at all."""
    loc = np.searchsorted(cells, vi)
    ok = loc < cells.size
    ok[ok] = cells[loc[ok]] == vi[ok]
    return loc, ok


def _pulled(
    x: np.ndarray, cells: _Cells, wanted: np.ndarray, counts: np.ndarray, atoms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of the wanted cells (a boolean per cell), sorted, their counts, and
    each cell's repeated value (NaN if none). Copies of a cell's repeated value are counted,
    not sorted: ``atoms`` (NaN where unknown) names them, else each cell's first value is
    tried when many values are pulled out. Works on the list of wanted cells, never on
    arrays of all cells but the returned one."""
    on = np.flatnonzero(wanted)
    on = on[counts[on] > 0]
    known = ~np.isnan(atoms[on])
    if cells.jit:  # one pass: the values, less the copies of known repeated values
        v, vi, n_atoms = _jit.pull(x, cells.kept, cells.grid, on, atoms[on], counts[on])
        if known.any():
            has = n_atoms > 0
            return (*_merge(*_runs(np.sort(v)), atoms[on[has]], n_atoms[has]), atoms)
        return _first_atoms(v, vi, on, atoms)
    kn = on[known]
    if kn.size:
        return (*_pull_known(x, cells, on, kn, counts, atoms), atoms)
    at, vi = _select(cells, on, wanted.size)
    return _first_atoms(x[at], vi, on, atoms)


def _first_atoms(
    v: np.ndarray, vi: np.ndarray, on: np.ndarray, atoms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_pulled's answer from the pulled values ``v`` (sample order) and their cells ``vi``
    when no repeated value of the cells ``on`` is known (``atoms``: NaN there): many pulled
    values try each cell's first."""
    if v.size < _ATOMS_FROM:
        return (*_runs(np.sort(v)), atoms)
    loc = np.searchsorted(on, vi)  # every pulled value's cell is in ``on``
    first = np.zeros(on.size, dtype=v.dtype)
    first[loc[::-1]] = v[::-1]  # a value of each cell (its first one)
    same = v == first[loc]
    n_same = np.bincount(loc[same], minlength=on.size)
    has = n_same > 0
    found = np.full(atoms.size, np.nan, dtype=v.dtype)
    heavy = n_same >= _ATOM_MIN  # worth a gather over the current sample
    found[on[heavy]] = first[heavy]
    # no value of the rest is the repeated value of its cell
    return (*_merge(*_runs(np.sort(v[~same])), first[has], n_same[has]), found)


def _pull_known(
    x: np.ndarray, cells: _Cells, on: np.ndarray, kn: np.ndarray, counts, atoms
) -> tuple[np.ndarray, np.ndarray]:
    """_pulled when some wanted cells' (``kn`` of ``on``) repeated values are known: their
    copies are counted, not pulled. Up to _ATOM_CHECKS heavy such cells (a default value,
    integer counts), one compare over the sample per cell finds the copies (a cell holding
    nothing else is not pulled at all); with more, a gather of each value's cell value."""
    heavy = kn[counts[kn] >= max(_ATOM_MIN, x.size >> 6)]
    skip = None
    pull = on
    if heavy.size <= _ATOM_CHECKS:
        pure = []
        for j in heavy:
            eq = x == atoms[j]
            if np.count_nonzero(eq) == counts[j]:
                pure.append(j)
            elif skip is None:
                skip = eq
            else:
                skip |= eq
        pull = np.setdiff1d(on, pure, assume_unique=True)
    else:
        skip = np.concatenate([x[o : o + ix.size] == np.take(atoms, ix) for o, ix in cells])
    at, vi = _select(cells, pull, atoms.size, skip)
    v = x[at]
    rest = v != atoms[vi]  # NaN (no repeated value) never equals: kept
    v, vi = v[rest], vi[rest]
    loc, ok = _slot(kn, vi)
    n_atoms = counts[kn] - np.bincount(loc[ok], minlength=kn.size)
    has = n_atoms > 0
    return _merge(*_runs(np.sort(v)), atoms[kn[has]], n_atoms[has])


class _Side:
    """One sample on the grid: cell counts, their cumulative sums, and the distinct values
    of the pulled-out cells with the number of pulled values up to each."""

    def __init__(self, x: np.ndarray, grid: Grid, key: str) -> None:
        self.x, self.n = x, x.size
        self.cells = _Cells(x, grid, key)
        self.counts = self.cells.counts(grid.cells + 2)
        self.cum = _cum(self.counts)

    def pull(self, wanted: np.ndarray, grid: Grid, atoms: np.ndarray) -> np.ndarray:
        """Pull out the wanted cells; returns each cell's repeated value (NaN if none)."""
        vals, self.reps, found = _pulled(self.x, self.cells, wanted, self.counts, atoms)
        self.vals = vals.astype(np.float64)
        self.upto = _cum(self.reps)  # pulled values before distinct value i
        self.cell = grid(vals)
        return found

    def rank_cells(self, k: np.ndarray) -> np.ndarray:
        """The cell of the k-th smallest value (0-based)."""
        return np.searchsorted(self.cum, k, side="right") - 1

    def at_rank(self, k: np.ndarray) -> np.ndarray:
        """The k-th smallest values, from pulled-out cells."""
        j = self.rank_cells(k)
        i = k - self.cum[j] + self._start(j)  # position among the pulled values
        return self.vals[np.searchsorted(self.upto, i, side="right") - 1]

    def _start(self, cell: np.ndarray) -> np.ndarray:
        return self.upto[np.searchsorted(self.cell, cell, side="left")]

    def below(self, v: np.ndarray, cell: np.ndarray, side: str) -> np.ndarray:
        """Values < v (side left) or <= v (side right), v in pulled-out cells ``cell``."""
        return (
            self.cum[cell] + self.upto[np.searchsorted(self.vals, v, side=side)] - self._start(cell)
        )

    def cell_values(self, cell: int) -> np.ndarray:
        """Every value of a pulled-out cell, repeated as often as it occurs."""
        i = np.flatnonzero(self.cell == cell)
        return np.repeat(self.vals[i], self.reps[i])


def _gaps_at_pulled(rs: _Side, cs: _Side, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pulled values of both samples, sorted, and the CDF gap (values <= each,
    n m scaled) there: one merge of the two sorted lists (a stable sort of two runs), no
    binary search of either in the other. A sample's count below a value is its count below
    the value's cell plus its pulled values from the cell's start up to the value."""
    both = np.concatenate([rs.vals, cs.vals])
    if both.size == 0:
        return both, np.zeros(0, dtype=np.int64)
    order = np.argsort(both, kind="stable")
    v = both[order]
    nr = rs.vals.size
    last = np.append(v[1:] != v[:-1], True)  # the last copy of each distinct value
    pts = v[last]
    cells = grid(pts.astype(grid.dtype))
    first = np.flatnonzero(np.append(True, cells[1:] != cells[:-1]))  # each cell's first
    run = np.cumsum(np.append(True, cells[1:] != cells[:-1])) - 1
    isr = order < nr
    rr, cc = np.zeros(both.size, dtype=np.int64), np.zeros(both.size, dtype=np.int64)
    rr[isr] = rs.reps[order[isr]]
    cc[~isr] = cs.reps[order[~isr] - nr]
    out = []
    for side, reps in ((rs, rr), (cs, cc)):
        upto = np.cumsum(reps)[last]  # pulled values <= each point
        before = np.append(0, upto[:-1])[first][run]  # pulled values in earlier cells
        out.append(side.cum[cells] + upto - before)
    return pts, out[0] * cs.n - out[1] * rs.n


def _edge_cells(e: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The cells that may hold values on either side of each float64 edge."""
    ew = e.astype(grid.dtype)
    down = np.where(ew.astype(np.float64) > e, np.nextafter(ew, -np.inf), ew)
    up = np.where(ew.astype(np.float64) < e, np.nextafter(ew, np.inf), ew)
    return grid(down), grid(up)


def _tail(dr: np.ndarray, n: int, dc: np.ndarray, m: int) -> float:
    """Integral of |F_r - F_c| over a tail from distances to its edge (exact: merge)."""
    if dr.size == 0 and dc.size == 0:
        return 0.0
    d = np.concatenate([dr, dc])
    o = np.argsort(-d, kind="stable")  # from the far end in
    g = np.cumsum(np.where(o < dr.size, 1.0 / n, -1.0 / m))
    ds = d[o]
    return float(np.sum(np.abs(g[:-1]) * (ds[:-1] - ds[1:])) + abs(g[-1]) * ds[-1])


def _w1(r: _Side, c: _Side, grid: Grid, gaps: np.ndarray, pulled: np.ndarray, pts, gp) -> float:
    """Integral of |F_r - F_c| (times n m): the trapezoid rule on cells not pulled out (their
    CDFs do not cross inside, so the error is at most width / 2 times both masses), exact on
    pulled-out cells (between consecutive distinct values ``pts``, gaps ``gp``) and tails.
    ``gaps`` are |F_r - F_c| n m at the cells' starts."""
    js = np.flatnonzero(pulled[1:-1]) + 1
    # cells 1..cells: |gap at start| + |gap at end|, less the pulled-out ones (float sums:
    # an int64 sum of n m-scaled gaps could overflow past 10^18)
    inner = gaps[1:-2].sum(dtype=np.float64) + gaps[2:-1].sum(dtype=np.float64)
    inner -= float((gaps[js] + gaps[js + 1]).sum(dtype=np.float64))
    w = float(inner) * grid.width / 2
    # pulled-out inner cells, exactly: from the cell's start to its first value, then on
    cell = grid(pts.astype(grid.dtype))
    ok = (cell > 0) & (cell <= grid.cells)
    pts, cell, gp = pts[ok], cell[ok], gp[ok]
    a = grid.base + cell * grid.width
    nxt = np.minimum(np.append(pts[1:], np.inf), a + grid.width)
    last = np.append(cell[1:] != cell[:-1], True)[: cell.size]  # (none pulled: all atoms)
    nxt[last] = (a + grid.width)[last]
    w += float(np.sum(np.abs(gp) * np.maximum(nxt - pts, 0.0)))
    first = np.searchsorted(cell, js, side="left")
    has = first < cell.size
    has[has] = cell[first[has]] == js[has]
    a_js = grid.base + js * grid.width
    upto = a_js + grid.width  # a pulled cell without values: its start gap all the way
    upto[has] = pts[first[has]]
    w += float(np.sum(gaps[js] * np.maximum(upto - a_js, 0.0)))
    k = grid.cells + 1
    for lo_cell, edge, sign in ((0, grid.lo, -1.0), (k, grid.hi, 1.0)):
        dr = sign * (r.cell_values(lo_cell) - edge)
        dc = sign * (c.cell_values(lo_cell) - edge)
        w += _tail(np.maximum(dr, 0.0), r.n, np.maximum(dc, 0.0), c.n) * r.n * c.n
    return w


def _crossings(
    signed: np.ndarray,
    rm: np.ndarray,
    cn: np.ndarray,
    pulled: np.ndarray,
    width: float,
    budget: float,
    n: int,
    m: int,
) -> np.ndarray:
    """Cells to integrate exactly so that W1's error stays within ``budget``: a cell where
    the CDFs do not cross costs at most width / 2 x its mass in both samples (the trapezoid
    misplaces values by half a cell at most), one where they may cross twice that; the
    crossing cells are pulled out, heaviest first, until the total fits."""
    nm = float(n) * m
    js = np.flatnonzero(pulled[1:-1]) + 1  # inner cells already pulled out
    inner = int(rm[1:-1].sum()) + int(cn[1:-1].sum()) - int((rm[js] + cn[js]).sum())
    base = width / 2 * inner / nm
    start = signed[1:-2]
    cross = start <= cn[1:-1]
    cross &= start + rm[1:-1] >= 0
    cross[js - 1] = False
    idx = np.flatnonzero(cross) + 1
    extra = width / 2 * (rm[idx] + cn[idx]) / nm
    excess = base + float(extra.sum()) - budget
    if excess <= 0:
        return idx[:0]
    order = np.argsort(-extra, kind="stable")
    return idx[order[: int(np.searchsorted(np.cumsum(extra[order]), excess)) + 1]]


def _median_abs_dev(r: np.ndarray, med: float) -> float:
    """np.median(|r - med|), same bits, without partitioning all of it: a subsample brackets
    the middle ranks; a rank on either end of the bracket is read off counts (integer data,
    a point mass), one strictly inside it from a partition of the values in between."""
    a = np.subtract(r, med, dtype=np.float64)
    np.abs(a, out=a)
    n = a.size
    ks = ((n - 1) // 2, n // 2)
    if n < 20_000:
        return float(np.median(a))
    lo, hi = np.quantile(a[:: max(1, n // _SUBSAMPLE)], [0.46, 0.54])
    lt_lo, le_hi = np.count_nonzero(a < lo), np.count_nonzero(a <= hi)
    if not (lt_lo <= ks[0] and ks[1] < le_hi):
        return float(np.median(a))  # the bracket missed (a freak subsample)
    if le_hi - lt_lo <= n // 8:  # continuous data: partition the bracket
        mid = a[(a >= lo) & (a <= hi)]
        mid.partition([k - lt_lo for k in ks])
        return float(np.mean(mid[[k - lt_lo for k in ks]]))
    le_lo, lt_hi = np.count_nonzero(a <= lo), np.count_nonzero(a < hi)
    out, mid = [], None
    for k in ks:
        if k < le_lo:
            out.append(lo)
        elif k >= lt_hi:
            out.append(hi)
        else:  # strictly inside the bracket, whose ends hold most of it
            if mid is None:
                mid = a[(a > lo) & (a < hi)]
                mid.partition([min(max(j - le_lo, 0), mid.size - 1) for j in ks])
            out.append(mid[k - le_lo])
    return float(np.mean(np.array(out)))


def _mad_window(rs: _Side, cm: int, g: int) -> tuple[int, int] | None:
    """Cells to pull so that the MAD can be read off the grid. The median lies in cells
    cm .. cm + g; a value d cells from cm is between (d - 1 - g) and (d + 1 + g) widths
    from it, so counts by distance find the distance of the middle rank, and a window of
    cells around that distance on both sides holds it. Returns the window (distances from
    cm, inclusive), or None when the median is in a tail cell or the cells nearer than the
    window reach a tail (a tail value can be any distance away)."""
    last = rs.counts.size - 1
    if not (cm > 0 and cm + g < last and g <= 3):
        return None
    cum, k = rs.cum, rs.n // 2
    lo, hi = 0, max(cm, last - cm)  # the first distance whose cells hold more than k values
    while lo < hi:  # (a bisection: the distances can number 2^18)
        mid = (lo + hi) // 2
        if cum[min(cm + mid + 1, last + 1)] - cum[max(cm - mid, 0)] > k:
            hi = mid
        else:
            lo = mid + 1
    at = lo
    d1, d2 = max(at - 2 - 2 * g, 0), at + 2 + 2 * g
    if d1 > 0 and not (cm - d1 + 1 > 0 and cm + d1 - 1 < last):
        return None
    return d1, d2


def _mad_on_grid(rs: _Side, grid: Grid, med: float, cm: int, g: int, win: tuple[int, int]) -> float:
    """np.median(|r - med|), same bits, from the grid and the pulled window of
    :func:`_mad_window` (no pass over the values): values nearer than the window are all
    less than t1 = (d1 + g + 1/2) widths away, values beyond it more than
    t2 = (d2 - g - 1/2) widths (cell boundaries are off by far less than half a width), so
    the middle ranks are among the window's values between t1 and t2, whose distinct
    values and counts were pulled. Falls back to :func:`_median_abs_dev` if they are not."""
    n, (d1, d2) = rs.n, win
    ks = ((n - 1) // 2, n // 2)
    w = grid.width
    t1, t2 = ((d1 + g + 0.5) * w if d1 else 0.0), (d2 - g - 0.5) * w
    inner = int(rs.cum[cm + d1] - rs.cum[cm - d1 + 1]) if d1 else 0
    dist = np.abs(rs.cell - cm)
    inw = (dist >= d1) & (dist <= d2)
    a = np.abs(rs.vals[inw] - med)
    reps = rs.reps[inw]
    below = inner + int(reps[a < t1].sum())
    mid = (a >= t1) & (a <= t2)
    o = np.argsort(a[mid], kind="stable")
    upto = np.cumsum(reps[mid][o])
    if not (below <= ks[0] and upto.size and ks[1] < below + int(upto[-1])):
        return _median_abs_dev(rs.x, med)
    pick = np.searchsorted(upto, np.array(ks) - below, side="right")
    return float(np.mean(a[mid][o][pick]))


def _refine(n: int, m: int) -> float:
    """How many times finer than GRID_WIDTH the grid is for samples this large. Why: the gap
    between the CDFs of a column that did not drift shrinks as 1/sqrt(n m / (n + m)) while
    a cell's mass does not, so on a fixed grid the CDFs may cross in most cells of large
    samples and W1's error budget pulls their values out (measured at 10M vs 2M values on a
    lognormal column: ~700k values pulled, twice the time of all of fine-grid binning); cells
    narrower by the square root of the sample's growth past _REFINE_FROM keep them few."""
    return float(np.clip(np.sqrt(n * m / (n + m) / _REFINE_FROM), 1.0, _REFINE_MAX))


def _grid_ks(
    rs: _Side, cs: _Side
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """KS on the grid, then the cells where a larger gap could hide: the CDF gap x n m at
    each cell's start (signed and absolute), its largest, both samples' counts scaled
    alike, and the cells to pull. Inside cell j the gap runs between signed - cn and
    signed + rm (its values, in whatever order, move it by at most their counts): the cells
    where that could beat the best gap on the boundaries, and the tails (for W1)."""
    n, m = rs.n, cs.n
    signed = rs.cum * m
    signed -= cs.cum * n
    gaps = np.abs(signed)
    best = int(gaps.max())
    rm, cn = rs.counts * m, cs.counts * n
    start = signed[:-1]
    reach = start + rm
    wanted = reach > best
    np.subtract(cn, start, out=reach)
    wanted |= reach > best
    wanted[[0, -1]] = True
    return signed, gaps, best, rm, cn, wanted


def _rank_cells(
    wanted: np.ndarray, rs: _Side, lo_k: np.ndarray, hi_k: np.ndarray
) -> tuple[int, int, tuple[int, int] | None]:
    """Mark the cells that hold the reference's quantile ranks and its MAD's; returns the
    median's cells (cm .. cm + g) and the MAD's window (:func:`_mad_window`)."""
    for a, b in zip(rs.rank_cells(lo_k), rs.rank_cells(hi_k), strict=True):
        wanted[a : b + 1] = True
    cm = int(rs.rank_cells(lo_k[1:2])[0])
    g = int(rs.rank_cells(hi_k[1:2])[0]) - cm
    win = _mad_window(rs, cm, g)
    if win is not None:
        d1, d2 = win
        wanted[max(cm - d2, 0) : cm - d1 + 1] = True
        wanted[cm + d1 : cm + d2 + 1] = True
    return cm, g, win


def _pull_reference(rs: _Side, wanted: np.ndarray, grid: Grid, sub: np.ndarray) -> np.ndarray:
    """Pull the reference's wanted cells, its heavy ones' repeated values guessed from the
    subsample; returns each cell's repeated value (NaN if none) for the current sample."""
    on = np.flatnonzero(wanted)
    heavy = on[rs.counts[on] >= max(_ATOM_MIN, rs.n >> 6)]
    return rs.pull(wanted, grid, _guess_atoms(sub, grid, heavy, wanted.size))


def _robust_shift(r, cur, rs: _Side, grid: Grid, q, cm: int, g: int, win, sums) -> float:
    """The mean shift over the robust scale (1.4826 MAD, read off the grid when
    :func:`_mad_window` found its cells), from exact float64 sums."""
    med = float(q[1])
    mad = 1.4826 * (
        _median_abs_dev(r, med) if win is None else _mad_on_grid(rs, grid, med, cm, g, win)
    )
    robust = mad if mad > 0 else robust_scale(r)
    sr, sc = sums if sums is not None else (None, None)
    sr = float(r.sum(dtype=np.float64)) if sr is None else sr
    sc = float(cur.sum(dtype=np.float64)) if sc is None else sc
    return (sc / cur.size - sr / r.size) / robust


def binned_distances(
    r: np.ndarray,
    cur: np.ndarray,
    *,
    n_bins: int = DEFAULT_BINS,
    eps: float = PSI_EPS,
    sums: tuple[float | None, float | None] | None = None,
) -> tuple[float, float, float, float]:
    """(PSI, normalized Wasserstein-1, KS, robust mean shift) of a finite, non-constant
    reference and finite current values, like :func:`hawknb.kernels.drift.distances`,
    sorting neither. Expects values well inside the float range (the caller scales extremes).
    ``sums``: the samples' float64 sums where the caller has them (its check for non-finite
    values takes them), so the mean shift does not take them again."""
    if r.dtype != cur.dtype:
        r, cur = r.astype(np.float64), cur.astype(np.float64)
    n, m = r.size, cur.size
    scale, spans, sub = _rough_spans(r)
    psi_q = np.linspace(0.0, 1.0, psi_bins(n, m, n_bins) + 1)[1:-1]
    lo_k, hi_k, gamma = _ranks(n, np.concatenate([[0.25, 0.5, 0.75], psi_q]))
    refine = _refine(n, m)
    max_cells = int(MAX_CELLS * refine)
    for _ in range(2):  # a second time only if the rough IQR made the grid too coarse
        grid = make_grid(spans, 0.8 * scale / refine, r.dtype, max_cells)
        rs, cs = _Side(r, grid, "ref"), _Side(cur, grid, "cur")
        signed, gaps, best, rm, cn, wanted = _grid_ks(rs, cs)
        cm, g, win = _rank_cells(wanted, rs, lo_k, hi_k)
        atoms = _pull_reference(rs, wanted, grid, sub)
        q = _lerp(rs.at_rank(lo_k), rs.at_rank(hi_k), gamma)
        spread = float(q[2] - q[0]) if q[2] > q[0] else spread_scale(r)
        if grid.width <= GRID_WIDTH * spread * (1 + 1e-6) or grid.cells == max_cells:
            break
        scale = spread
    # the cells of the PSI edges and those W1's error bound needs, then the current sample
    edges = np.unique(q[3:])
    e_lo, e_hi = _edge_cells(edges, grid)
    more = wanted.copy()
    for a, b in zip(e_lo, e_hi, strict=True):
        more[a : b + 1] = True
    more[_crossings(signed, rm, cn, more, grid.width, GRID_WIDTH * spread, n, m)] = True
    if np.count_nonzero(more) != np.count_nonzero(wanted):  # (more holds every wanted cell)
        atoms = _pull_reference(rs, more, grid, sub)
    cs.pull(more, grid, atoms)
    pts, gp = _gaps_at_pulled(rs, cs, grid)
    ks = max(best, int(np.abs(gp).max(initial=0))) / (float(n) * m)
    rb = np.concatenate([[0], rs.below(edges, e_lo, "left"), [n]])
    cb = np.concatenate([[0], cs.below(edges, e_lo, "left"), [m]])
    p = float(psi_from_counts(np.diff(rb), np.diff(cb), eps))
    w = _w1(rs, cs, grid, gaps, more, pts, gp) / (float(n) * m * spread)
    return p, w, ks, _robust_shift(r, cur, rs, grid, q, cm, g, win, sums)

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
  pulled-out cells, interpolated as ``np.quantile`` does (same bits), so no partition of the
  reference is needed but the MAD's (bracketed by a subsample);
* the mean shift uses exact float64 sums.

A cell that is mostly one repeated value (a default, an integer count) is not sorted: its
copies of that value are counted and re-inserted, so point masses stay linear. The reference's
subsample guesses each heavy cell's value; one compare-and-count over a sample checks it, and
a cell that holds nothing else is not pulled at all.

Samples past :data:`_CHUNK` values are binned and pulled chunk by chunk, so no array the
size of the sample is made (the cell arithmetic runs twice instead). Everything after the
counts works on lists of the wanted cells or on a handful of passes
over the cell arrays: with up to 2^18 cells, each pass over them costs about as much as a
tenth of a pass over a million values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drift import DEFAULT_BINS, PSI_EPS, psi_bins, psi_from_counts, robust_scale, spread_scale

#: cell width in reference IQRs (the W1 error is at most this)
GRID_WIDTH = 1e-4
#: reference values that guess the grid's span and the heavy cells' repeated values
_SUBSAMPLE = 8192
#: samples larger than this are binned chunk by chunk (see :class:`_Cells`)
_CHUNK = 1 << 20
#: integer type of cell indices (int32 halves the index array but numpy's bincount and
#: take cast it back to intp: measured no faster)
_CELL = np.intp
#: most and fewest cells of a grid
MAX_CELLS = 1 << 18
MIN_CELLS = 1 << 10
#: reference tail fractions left outside the grid, tried in order until the grid fits
_TAILS = (0.001, 0.01, 0.05, 0.25)
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

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Cell index of every value (monotone non-decreasing in x)."""
        t = np.subtract(x, self.dtype.type(self.base), dtype=self.dtype)
        t *= self.dtype.type(self.inv)
        np.clip(t, 0, self.cells + 1, out=t)
        return t.astype(_CELL)


def make_grid(spans: list[tuple[float, float]], scale: float, dtype: np.dtype) -> Grid:
    """The finest grid of cells GRID_WIDTH * scale wide over the first span (reference
    quantile ranges, least tail mass left out first, the last its full range) that fits in
    MAX_CELLS cells."""
    lo, hi = spans[-1]
    for a, b in spans:
        if b > a:
            lo, hi = a, b
            if (b - a) / (GRID_WIDTH * scale) <= MAX_CELLS:
                break
    cells = int(np.clip(np.ceil((hi - lo) / (GRID_WIDTH * scale)), MIN_CELLS, MAX_CELLS))
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
    qs = np.quantile(sub.astype(np.float64), [0.25, 0.75, *_TAILS, *(1 - a for a in _TAILS)])
    # each side's tail on its own, least mass left out first: a right-skewed reference
    # keeps its thin left tail on the grid while its long right tail is cut shorter
    pairs = sorted(
        ((i, j) for i in range(t) for j in range(t)), key=lambda p: _TAILS[p[0]] + _TAILS[p[1]]
    )
    spans = [(float(qs[2 + i]), float(qs[2 + t + j])) for i, j in pairs]
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
    vals = np.concatenate([rest, atoms])
    o = np.argsort(vals, kind="stable")
    return vals[o], np.concatenate([reps, n_atoms])[o]


class _Cells:
    """Cell indices of a sample, chunk by chunk: kept whole up to _CHUNK values, computed
    again per chunk beyond (a 10M-value sample's index array alone is 80 MB, and every pass
    over arrays that size goes to memory instead of the cache)."""

    def __init__(self, x: np.ndarray, grid: Grid) -> None:
        self.x, self.grid = x, grid
        self.whole = grid(x) if x.size <= _CHUNK else None

    def __iter__(self):  # (offset, cells of x[offset : offset + their length])
        if self.whole is not None:
            yield 0, self.whole
            return
        for i in range(0, self.x.size, _CHUNK):
            yield i, self.grid(self.x[i : i + _CHUNK])

    def counts(self, size: int) -> np.ndarray:
        out = None
        for _, ix in self:
            c = np.bincount(ix, minlength=size)
            out = c if out is None else np.add(out, c, out=out)
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
    starts, ends = on[np.r_[0, cut + 1]], on[np.r_[cut, on.size - 1]]
    flag = None
    if starts.size > _RUNS_BY_COMPARE:
        flag = np.zeros(size, dtype=bool)
        flag[on] = True
    ats, vis = [], []
    for off, ix in cells:
        if flag is not None:
            sel = np.take(flag, ix)
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
    kn = on[~np.isnan(atoms[on])]
    if kn.size:
        return (*_pull_known(x, cells, on, kn, counts, atoms), atoms)
    at, vi = _select(cells, on, wanted.size)
    v = x[at]
    if v.size < _ATOMS_FROM:
        return (*_runs(np.sort(v)), atoms)
    loc = np.searchsorted(on, vi)  # every pulled value's cell is in ``on``
    first = np.zeros(on.size, dtype=v.dtype)
    first[loc[::-1]] = v[::-1]  # a value of each cell (its first one)
    same = v == first[loc]
    n_same = np.bincount(loc[same], minlength=on.size)
    has = n_same > 0
    found = np.full(wanted.size, np.nan, dtype=v.dtype)
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

    def __init__(self, x: np.ndarray, grid: Grid) -> None:
        self.x, self.n = x, x.size
        self.cells = _Cells(x, grid)
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
    last = np.append(cell[1:] != cell[:-1], True)
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


def binned_distances(
    r: np.ndarray, cur: np.ndarray, *, n_bins: int = DEFAULT_BINS, eps: float = PSI_EPS
) -> tuple[float, float, float, float]:
    """(PSI, normalized Wasserstein-1, KS, robust mean shift) of a finite, non-constant
    reference and finite current values, like :func:`hawknb.kernels.drift.distances`,
    sorting neither. Expects values well inside the float range (the caller scales extremes)."""
    if r.dtype != cur.dtype:
        r, cur = r.astype(np.float64), cur.astype(np.float64)
    n, m = r.size, cur.size
    scale, spans, sub = _rough_spans(r)
    psi_q = np.linspace(0.0, 1.0, psi_bins(n, m, n_bins) + 1)[1:-1]
    qs = np.concatenate([[0.25, 0.5, 0.75], psi_q])
    lo_k, hi_k, gamma = _ranks(n, qs)
    for _ in range(2):  # a second time only if the rough IQR made the grid too coarse
        grid = make_grid(spans, 0.8 * scale, r.dtype)
        rs, cs = _Side(r, grid), _Side(cur, grid)
        # KS on the grid, then the cells where a larger gap could hide
        signed = rs.cum * m - cs.cum * n  # CDF gap x n m at each cell's start
        gaps = np.abs(signed)
        best = int(gaps.max())
        rm, cn = rs.counts * m, cs.counts * n
        # inside cell j the gap runs between signed - cn and signed + rm (its values, in
        # whatever order, move it by at most their counts): pull the cells where that
        # could beat the best gap on the boundaries
        start = signed[:-1]
        wanted = start + rm > best
        wanted |= cn - start > best
        wanted[[0, -1]] = True  # the tails, for W1
        for a, b in zip(rs.rank_cells(lo_k), rs.rank_cells(hi_k), strict=True):
            wanted[a : b + 1] = True  # the reference's quantiles
        on = np.flatnonzero(wanted)
        heavy = on[rs.counts[on] >= max(_ATOM_MIN, n >> 6)]
        guess = _guess_atoms(sub, grid, heavy, wanted.size)
        atoms = rs.pull(wanted, grid, guess)
        q = _lerp(rs.at_rank(lo_k), rs.at_rank(hi_k), gamma)
        spread = float(q[2] - q[0]) if q[2] > q[0] else spread_scale(r)
        if grid.width <= GRID_WIDTH * spread * (1 + 1e-6) or grid.cells == MAX_CELLS:
            break
        scale = spread
    edges = np.unique(q[3:])
    e_lo, e_hi = _edge_cells(edges, grid)
    more = wanted.copy()
    for a, b in zip(e_lo, e_hi, strict=True):
        more[a : b + 1] = True
    more[_crossings(signed, rm, cn, more, grid.width, GRID_WIDTH * spread, n, m)] = True
    if not np.array_equal(np.flatnonzero(more), on):
        on = np.flatnonzero(more)
        heavy = on[rs.counts[on] >= max(_ATOM_MIN, n >> 6)]
        atoms = rs.pull(more, grid, _guess_atoms(sub, grid, heavy, more.size))
    cs.pull(more, grid, atoms)
    mad = 1.4826 * _median_abs_dev(r, float(q[1]))
    robust = mad if mad > 0 else robust_scale(r)
    pts, gp = _gaps_at_pulled(rs, cs, grid)
    ks = max(best, int(np.abs(gp).max(initial=0))) / (float(n) * m)
    rb = np.concatenate([[0], rs.below(edges, e_lo, "left"), [n]])
    cb = np.concatenate([[0], cs.below(edges, e_lo, "left"), [m]])
    p = float(psi_from_counts(np.diff(rb), np.diff(cb), eps))
    w = _w1(rs, cs, grid, gaps, more, pts, gp) / (float(n) * m * spread)
    ms = (float(cur.sum(dtype=np.float64)) / m - float(r.sum(dtype=np.float64)) / n) / robust
    return p, w, ks, ms

"""Distribution drift between two windows of a frame, and time-aggregated feature quantiles.

Why several distances: each one misses something the others catch. PSI (population stability
index) on reference-quantile bins is the industry habit and is scale free; Wasserstein-1 says
*how far* the mass moved (normalized by the reference spread so features are comparable); the
KS statistic is the largest CDF gap (bounded in [0, 1], good for ranking); the robust mean shift
is signed, so it tells the direction. Null and non-finite values are not "values": they are
counted separately (a feature that goes missing is a drift of its own kind) and excluded from
the distances, which are then computed on finite values only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError

FrameLike = Any

#: Floor on bin proportions in PSI: an empty bin would make the log blow up.
PSI_EPS = 1e-4
DEFAULT_BINS = 10
#: PSI bins are cut so each holds at least this many rows of the smaller sample: with fewer,
#: empty bins (floored at PSI_EPS) alone make PSI large on two samples of the same distribution
MIN_ROWS_PER_BIN = 5
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
#: from this many current values on, distances bin against the reference's quantiles instead
#: of sorting the current sample (:mod:`hawknb.kernels.drift_binned`)
BINNED_FROM = 50_000
#: threads for many columns (one per core, at most this many)
MAX_THREADS = 8


# -- one-column distances (finite numpy arrays) -----------------------------------------------


def _finite(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """The finite values (float32 stays float32); see :func:`_finite_sum`."""
    return _finite_sum(x)[0]


def _finite_sum(x: np.ndarray | Sequence[float]) -> tuple[np.ndarray, float | None]:
    """The finite values (float32 stays float32) and, when known, their float64 sum: the
    mask is built only when the sum is not finite (one cheap pass instead of two and a
    copy), and the sum is the mean shift's, so it is not taken twice."""
    a = np.asarray(x).ravel()
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(a.sum(dtype=np.float64)) if a.size else np.nan
    if np.isfinite(total):
        return a, total
    return a[np.isfinite(a)], None


def robust_scale(reference: np.ndarray) -> float:
    """A spread of the reference that one outlier cannot inflate: 1.4826*MAD, else IQR/1.349,
    else the std, else 1 (a constant reference: distances are then in raw units)."""
    r = _finite(reference)
    if r.size == 0:
        return float("nan")
    med = np.median(r)
    mad = 1.4826 * float(np.median(np.abs(r - med)))
    if mad > 0:
        return mad
    q75, q25 = np.quantile(r, [0.75, 0.25])
    if q75 > q25:
        return float(q75 - q25) / 1.349
    sd = float(np.std(r))
    return sd if sd > 0 else 1.0


def spread_scale(reference: np.ndarray) -> float:
    """The normalizer of Wasserstein-1: the reference IQR, else its std, else 1."""
    r = _finite(reference)
    if r.size == 0:
        return float("nan")
    q75, q25 = np.quantile(r, [0.75, 0.25])
    if q75 > q25:
        return float(q75 - q25)
    sd = float(np.std(r))
    return sd if sd > 0 else 1.0


def quantile_edges(reference: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner bin edges at the reference quantiles (deduplicated, so point masses such as a
    default value get one bin instead of several empty ones)."""
    r = _finite(reference)
    if r.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(r, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))


def psi_from_counts(
    ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = PSI_EPS
) -> np.ndarray:
    """PSI from bin counts along the last axis (broadcasts, so many windows at once)."""
    rc = np.asarray(ref_counts, dtype=np.float64)
    cc = np.asarray(cur_counts, dtype=np.float64)
    rn = rc.sum(axis=-1, keepdims=True)
    cn = cc.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = np.maximum(rc / rn, eps)
        cp = np.maximum(cc / cn, eps)
        out = np.sum((cp - rp) * np.log(cp / rp), axis=-1)
    return np.where((rn[..., 0] > 0) & (cn[..., 0] > 0), out, np.nan)


def psi_bins(n_reference: int, n_current: int, n_bins: int = DEFAULT_BINS) -> int:
    """Bins for a PSI of samples this size: ``n_bins``, fewer when the smaller sample would put
    under MIN_ROWS_PER_BIN rows in a bin (at least 2)."""
    return int(max(2, min(n_bins, min(n_reference, n_current) // MIN_ROWS_PER_BIN)))


def psi(
    reference: np.ndarray, current: np.ndarray, *, n_bins: int = DEFAULT_BINS, eps: float = PSI_EPS
) -> float:
    """Population stability index on reference-quantile bins, finite values only; small
    samples get fewer bins (:func:`psi_bins`)."""
    r, cur = _finite(reference), _finite(current)
    if r.size == 0 or cur.size == 0:
        return float("nan")
    r, cur, _ = _unit(r, cur)
    edges = quantile_edges(r, psi_bins(r.size, cur.size, n_bins))
    nb = edges.size + 1
    rc = np.bincount(np.searchsorted(edges, r, side="right"), minlength=nb)
    cc = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=nb)
    return float(psi_from_counts(rc, cc, eps))


def _cdf_gaps(r_sorted: np.ndarray, c_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pooled values and |F_ref - F_cur| just after each, exactly.

    Both inputs are sorted, so a stable argsort of their concatenation is a linear merge of
    two runs (much cheaper than binary-searching every pooled value in both samples). The
    gaps come from integer counts, |i m - j n| / (n m): two identical samples give exactly 0
    (a float running sum of +-1/n leaves ~1e-16 that a 1e300 spacing turns into 1e284), and
    no gap exceeds 1."""
    n, m = r_sorted.size, c_sorted.size
    both = np.concatenate([r_sorted, c_sorted])
    order = np.argsort(both, kind="stable")
    grid = both[order]
    i = np.cumsum(order < n, dtype=np.int64)
    j = np.arange(1, grid.size + 1, dtype=np.int64) - i
    gap = np.abs(i * m - j * n) / (float(n) * float(m))
    last = np.empty(grid.size, dtype=bool)  # F is only defined after the last of tied values
    last[:-1] = grid[1:] != grid[:-1]
    last[-1] = True
    return grid[last], gap[last]


def _unit(r: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both samples scaled by the same power of two into (-1, 1) (exact: only the exponent
    changes), and that exponent: differences, means and quantile interpolations of values near
    +-1e308 would overflow to inf or NaN in raw units. Every distance is scale free, so it is
    computed on these; a raw-unit result is ``np.ldexp(x, e)``."""
    top = max(float(np.abs(r).max(initial=0.0)), float(np.abs(cur).max(initial=0.0)))
    if not (0.0 < top < np.inf):
        return r, cur, 0
    e = int(np.frexp(top)[1])
    return np.ldexp(r, -e), np.ldexp(cur, -e), e


def _constant(r: np.ndarray) -> bool:
    return bool(r.size == 0 or r[0] == r[-1] or np.all(r == r[0]))


def _w1(r: np.ndarray, cur: np.ndarray, e: int, normalize: bool) -> float:
    """Wasserstein-1 of sorted unit-scaled samples (see :func:`_unit`)."""
    grid, gap = _cdf_gaps(r, cur)
    w = float(np.sum(gap[:-1] * np.diff(grid)))
    if normalize and not _constant(r):
        return w / spread_scale(r)
    return _raw(w, e)  # raw units: a constant reference has no spread to divide by


def wasserstein(reference: np.ndarray, current: np.ndarray, *, normalize: bool = True) -> float:
    """Wasserstein-1 (earth mover's) distance, divided by the reference IQR (else std) so that
    features of different units are comparable: 1.0 means "moved by one IQR"."""
    r, cur = np.sort(_finite(reference)), np.sort(_finite(current))
    if r.size == 0 or cur.size == 0:
        return float("nan")
    r, cur, e = _unit(r, cur)
    return _w1(r, cur, e, normalize)


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    r, cur = np.sort(_finite(reference)), np.sort(_finite(current))
    if r.size == 0 or cur.size == 0:
        return float("nan")
    return float(_cdf_gaps(r, cur)[1].max())


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The KS statistic of two non-empty samples taken as they are: unlike `ks_statistic`,
    infinite values stay (callers that code a missing value as inf count it as one more
    value)."""
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def _mean_shift(r: np.ndarray, cur: np.ndarray, e: int) -> float:
    """(mean_cur - mean_ref) / robust scale of the reference, on unit-scaled samples; raw
    units (possibly +-inf, never NaN) when the reference is constant."""
    diff = float(cur.mean()) - float(r.mean())
    if _constant(r):
        return _raw(diff, e)
    with np.errstate(over="ignore", divide="ignore"):
        shift = diff / robust_scale(r)
    # a spread that underflows (subnormal) is a constant reference for every practical purpose
    return shift if np.isfinite(shift) else _raw(diff, e)


def _raw(x: float, e: int) -> float:
    """A unit-scaled result back in raw units; +-inf (not a warning) past the float range."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(x, e))


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column between the reference and the current window."""

    column: str
    n_reference: int  # finite values used for the distances
    n_current: int
    psi: float
    wasserstein: float  # in reference-IQR units
    ks: float
    mean_shift: float  # (mean_cur - mean_ref) / robust scale of the reference; signed
    null_rate_reference: float
    null_rate_current: float
    nonfinite_rate_reference: float  # NaN / +-inf share (not counted as null)
    nonfinite_rate_current: float
    note: str

    @property
    def null_rate_change(self) -> float:
        return self.null_rate_current - self.null_rate_reference


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift between two windows; ``frame()`` is the display form."""

    columns: tuple[ColumnDrift, ...]
    n_reference_rows: int
    n_current_rows: int

    def frame(self) -> pl.DataFrame:
        rows = [
            {
                "column": d.column,
                "psi": d.psi,
                "wasserstein": d.wasserstein,
                "ks": d.ks,
                "mean_shift": d.mean_shift,
                "null_rate_reference": d.null_rate_reference,
                "null_rate_current": d.null_rate_current,
                "null_rate_change": d.null_rate_change,
                "nonfinite_rate_reference": d.nonfinite_rate_reference,
                "nonfinite_rate_current": d.nonfinite_rate_current,
                "n_reference": d.n_reference,
                "n_current": d.n_current,
                "note": d.note,
            }
            for d in self.columns
        ]
        schema = {
            "column": pl.String,
            **{
                k: pl.Float64
                for k in (
                    "psi",
                    "wasserstein",
                    "ks",
                    "mean_shift",
                    "null_rate_reference",
                    "null_rate_current",
                    "null_rate_change",
                    "nonfinite_rate_reference",
                    "nonfinite_rate_current",
                )
            },
            "n_reference": pl.Int64,
            "n_current": pl.Int64,
            "note": pl.String,
        }
        return (
            pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
        )

    def __getitem__(self, column: str) -> ColumnDrift:
        for d in self.columns:
            if d.column == column:
                return d
        raise KeyError(
            f"no drift computed for column '{column}'; have {[d.column for d in self.columns]}"
        )


def _resolve_columns(
    schemas: dict[str, pl.Schema], columns: Sequence[str] | None, exclude: Sequence[str]
) -> list[str]:
    names = list(schemas)
    if columns is None:
        first = schemas[names[0]]
        cols = [
            col
            for col, dt in first.items()
            if dt.is_numeric() and col not in exclude and all(col in s for s in schemas.values())
        ]
        if not cols:
            raise WorkspaceError(
                " and ".join(names),
                "have no numeric column in common",
                fix="pass columns=[...] naming the numeric columns to compare",
            )
        return cols
    if isinstance(columns, str):
        columns = [columns]
    for where, schema in schemas.items():
        for col in columns:
            if col not in schema:
                raise WorkspaceError(
                    f"{where}, column '{col}'",
                    "is missing",
                    found=f"columns {list(schema.names())[:20]}",
                    fix="pass only columns that both windows have",
                )
            dt = schema[col]
            if not (dt.is_numeric() or dt == pl.Boolean):
                raise WorkspaceError(
                    f"{where}, column '{col}'",
                    "is not numeric",
                    found=str(dt),
                    fix="drift compares numeric columns only; drop it or cast it to float",
                )
    return list(columns)


def _in_range(*values: float) -> bool:
    top = max(abs(v) for v in values)
    return top == 0.0 or 2.0**-500 < top < 2.0**500


def _binned(
    r: np.ndarray, cur: np.ndarray, n_bins: int, eps: float, sums: tuple | None
) -> tuple[float, float, float, float]:
    """Large samples: count both on a fine grid over the reference's bulk (sorting neither),
    on unit-scaled values when either sample nears the float limits."""
    from .drift_binned import binned_distances  # it imports this module's helpers

    narrow = r.dtype == np.float32 and cur.dtype == np.float32  # always in range: no pass
    if not narrow and not _in_range(
        float(r.min()), float(r.max()), float(cur.min()), float(cur.max())
    ):
        r, cur, _ = _unit(r, cur)
        sums = None  # of the values before scaling
    return binned_distances(r, cur, n_bins=n_bins, eps=eps, sums=sums)


def distances(
    reference: np.ndarray, current: np.ndarray, *, n_bins: int = DEFAULT_BINS, eps: float = PSI_EPS
) -> tuple[float, float, float, float]:
    """(PSI, normalized Wasserstein-1, KS, robust mean shift) of two samples' finite values,
    sharing one sort per sample; NaNs when either side has no finite value."""
    (r, sr), (cur, sc) = _finite_sum(reference), _finite_sum(current)
    return _distances(r, cur, n_bins, eps, (sr, sc))


def _distances(
    r: np.ndarray, cur: np.ndarray, n_bins: int, eps: float, sums: tuple | None = None
) -> tuple[float, float, float, float]:
    """:func:`distances` of samples already reduced to their finite values (a frame's
    columns are, by :func:`_split`: checking them again would be one more pass each);
    ``sums``: their float64 sums where known (None each where not)."""
    if cur.size >= BINNED_FROM and r.size and r.min() < r.max():
        return _binned(r, cur, n_bins, eps, sums)
    r = np.sort(r).astype(np.float64, copy=False)
    cur = np.sort(cur).astype(np.float64, copy=False)
    if r.size == 0 or cur.size == 0:
        return (float("nan"),) * 4
    r, cur, e = _unit(r, cur)
    grid, gap = _cdf_gaps(r, cur)
    w = float(np.sum(gap[:-1] * np.diff(grid)))
    w1 = w / spread_scale(r) if not _constant(r) else _raw(w, e)
    edges = quantile_edges(r, psi_bins(r.size, cur.size, n_bins))
    nb = edges.size + 1
    p = float(
        psi_from_counts(
            np.bincount(np.searchsorted(edges, r, side="right"), minlength=nb),
            np.bincount(np.searchsorted(edges, cur, side="right"), minlength=nb),
            eps,
        )
    )
    return p, w1, float(gap.max()), _mean_shift(r, cur, e)


def _split(series: pl.Series) -> tuple[np.ndarray, int, int, float | None]:
    """Finite values, null count, non-finite (NaN/inf) count of one column, and the
    values' float64 sum when the check for non-finite values found it (see _finite_sum)."""
    n_null = series.null_count()
    if n_null == 0 and series.dtype in (pl.Float32, pl.Float64):
        a = series.to_numpy()  # no copy; float32 stays float32
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(a.sum(dtype=np.float64))
        if np.isfinite(total):  # the common case: no mask, no copy
            return a, 0, 0, total
    else:
        a = series.cast(pl.Float64).to_numpy()  # nulls become NaN
    fin = np.isfinite(a)
    n_nonfinite = int(a.size - fin.sum() - n_null)
    return a[fin], n_null, n_nonfinite, None


def column_drift(
    column: str,
    reference: pl.Series | np.ndarray,
    current: pl.Series | np.ndarray,
    *,
    n_bins: int = DEFAULT_BINS,
    eps: float = PSI_EPS,
) -> ColumnDrift:
    """Drift of one column given its values in both windows (polars Series keep nulls apart
    from NaN; numpy arrays count both as non-finite)."""
    rs = (
        reference
        if isinstance(reference, pl.Series)
        else pl.Series(np.asarray(reference, dtype=np.float64))
    )
    cs = (
        current
        if isinstance(current, pl.Series)
        else pl.Series(np.asarray(current, dtype=np.float64))
    )
    if rs.len() == 0 or cs.len() == 0:
        raise ValueError(f"column '{column}': a window is empty; pass windows that contain rows")
    r, rn, rnf, sr = _split(rs)
    cur, cn, cnf, sc = _split(cs)
    notes = []
    if r.size == 0:
        notes.append("no finite values in the reference window")
    if cur.size == 0:
        notes.append("no finite values in the current window")
    p, w1, ks, ms = _distances(r, cur, n_bins, eps, (sr, sc))
    return ColumnDrift(
        column=column,
        n_reference=int(r.size),
        n_current=int(cur.size),
        psi=p,
        wasserstein=w1,
        ks=ks,
        mean_shift=ms,
        null_rate_reference=rn / rs.len(),
        null_rate_current=cn / cs.len(),
        nonfinite_rate_reference=rnf / rs.len(),
        nonfinite_rate_current=cnf / cs.len(),
        note="; ".join(notes),
    )


def drift(
    reference: FrameLike,
    current: FrameLike,
    columns: Sequence[str] | None = None,
    *,
    n_bins: int = DEFAULT_BINS,
    eps: float = PSI_EPS,
    exclude: Sequence[str] = (c.TS,),
) -> DriftReport:
    """Drift of every requested numeric column from ``reference`` to ``current``.

    ``columns=None`` compares every numeric column the two frames share (except ``exclude``).
    A column with no finite values in one window gets NaN distances and a note rather than an
    error: a feature that went entirely missing is a finding, visible in its null rate.
    """
    ref_lf, cur_lf = as_lazy(reference), as_lazy(current)
    cols = _resolve_columns(
        {"reference window": ref_lf.collect_schema(), "current window": cur_lf.collect_schema()},
        columns,
        exclude,
    )
    ref = collect(ref_lf.select(cols))
    cur = collect(cur_lf.select(cols))
    for where, df in (("reference window", ref), ("current window", cur)):
        if df.height == 0:
            raise WorkspaceError(where, "has no rows", fix="widen the window or check its bounds")

    def one(col: str) -> ColumnDrift:
        return column_drift(col, ref[col], cur[col], n_bins=n_bins, eps=eps)

    workers = min(len(cols), os.cpu_count() or 1, MAX_THREADS)
    if workers > 1 and cur.height >= BINNED_FROM:
        # the binned kernel's passes over the values are compiled and release the GIL for
        # their whole length (numba; numpy's release it call by call): columns on every core
        with ThreadPoolExecutor(workers) as pool:
            out = tuple(pool.map(one, cols))
    else:
        out = tuple(one(col) for col in cols)
    return DriftReport(out, ref.height, cur.height)


# -- time-aggregated view ---------------------------------------------------------------------


def _qname(q: float) -> str:
    return f"p{q * 100:g}"


def windowed_quantiles(
    frame: FrameLike,
    *,
    ts: str = c.TS,
    columns: Sequence[str],
    every: str = "1h",
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> pl.DataFrame:
    """Per time window and column: row count, null and non-finite counts, mean, std and
    quantiles of the finite values -- in one lazy polars ``group_by`` pass.

    Long format (one row per window and column: ``ts, column, count, null_count,
    nonfinite_count, mean, std, p5, p25, ...``) so that feature and prediction series line up by
    ``ts`` for correlation.
    """
    lf = as_lazy(frame)
    schema = lf.collect_schema()
    if isinstance(columns, str):
        columns = [columns]
    if not columns:
        raise ValueError("windowed_quantiles: columns is empty; name at least one numeric column")
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"windowed_quantiles: quantile {q} is outside [0, 1]")
    _resolve_columns({"frame": schema}, list(columns), ())
    if ts not in schema or not isinstance(schema[ts], pl.Datetime):
        raise WorkspaceError(
            f"frame, column '{ts}'",
            "is missing or not a timestamp",
            found=str(schema.get(ts)),
            fix="pass ts= naming the frame's datetime column",
        )
    aggs: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, col in enumerate(columns):
        x = pl.col(col).cast(pl.Float64)
        fin = x.filter(x.is_finite())
        aggs += [
            x.null_count().alias(f"{i}|null_count"),
            (x.is_not_null() & ~x.is_finite()).sum().alias(f"{i}|nonfinite_count"),
            fin.mean().alias(f"{i}|mean"),
            fin.std().alias(f"{i}|std"),
            *[fin.quantile(q, "linear").alias(f"{i}|{_qname(q)}") for q in quantiles],
        ]
    wide = collect(lf.group_by(pl.col(ts).dt.truncate(every).alias(ts)).agg(aggs).sort(ts))
    stats = ["null_count", "nonfinite_count", "mean", "std", *[_qname(q) for q in quantiles]]
    parts = [
        wide.select(
            pl.col(ts),
            pl.lit(col).alias("column"),
            pl.col("__rows").cast(pl.Int64).alias("count"),
            *[pl.col(f"{i}|{s}").alias(s) for s in stats],
        ).with_columns(
            pl.col("null_count").cast(pl.Int64), pl.col("nonfinite_count").cast(pl.Int64)
        )
        for i, col in enumerate(columns)
    ]
    return pl.concat(parts).sort(ts, "column")

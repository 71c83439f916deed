"""Row-level comparison of a newly served snapshot with the snapshots beside it.

Window health (means per hour) dilutes what real rollouts look like: a canary on 5% of one
experiment arm moves its arm's mean by 5% of its own effect, and a blow-up on 5% of rows
moves the mean by a few percent of the prediction's range, both inside hour-to-hour noise.
Row-level statistics keep them apart. For every snapshot first served near an onset, its
rows are compared with the rows the *other* snapshots of the same (model, experiment) served
in the same hours (like with like: anything that varies with time hits both), or, for a full
cut-over with no such rows, with the (model, experiment)'s rows just before it took over:

* tail excess: the share of its predictions outside the reference's central 98% (a blow-up
  saturates the rows it breaks, whatever their share) against the reference's own share,
  as a two-proportion z;
* loss on matured rows: where labels have arrived (late labels leave the newest rows
  unlabeled; those rows are simply not used), the per-row log loss (squared error for
  non-probability models) against the reference's, as a Welch z;
* ks: the two-sample Kolmogorov-Smirnov distance of the predictions (reported, not scored: a
  benign retrain moves the whole distribution a little too).

Pure function over a frame of rows; nothing here reads a workspace.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace.contract import EXPERIMENT, LABEL, MODEL, PREDICTION, SNAPSHOT, TS
from .isolation import _from_us, _to_us

__all__ = ["ROW_SHIFT_SCHEMA", "compare_snapshot_rows"]

#: reference rows needed before the same-hours comparison is used (else: the rows before)
MIN_REFERENCE_ROWS = 100
#: fewest rows of the snapshot for any comparison
MIN_ROWS = 8
#: fewest matured (labeled) rows on each side for the loss comparison
MIN_LABELED = 8
#: the reference's central share; rows outside it are "tail" rows
TAIL_QUANTILE = 0.01
#: probabilities are clipped here before the log loss (an exact 0 or 1 is not infinitely wrong)
LOSS_EPS = 1e-6

ROW_SHIFT_SCHEMA = {
    MODEL: pl.String,
    EXPERIMENT: pl.String,
    SNAPSHOT: pl.String,
    "first_ts": pl.Datetime("us", "UTC"),
    "rows": pl.Int64,
    "reference": pl.String,
    "reference_rows": pl.Int64,
    "tail_share": pl.Float64,
    "tail_expected": pl.Float64,
    "tail_z": pl.Float64,
    "labeled_rows": pl.Int64,
    "loss_delta": pl.Float64,
    "loss_z": pl.Float64,
    "ks": pl.Float64,
    "z": pl.Float64,
}


def _tail_z(p: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """(share of ``p`` outside ref's central band, ref's own share, two-proportion z)."""
    lo, hi = np.quantile(ref, [TAIL_QUANTILE, 1.0 - TAIL_QUANTILE])
    p0 = float(np.mean((ref < lo) | (ref > hi)))
    p0 = max(p0, 1.0 / ref.size)
    share = float(np.mean((p < lo) | (p > hi)))
    se = math.sqrt(p0 * (1.0 - p0) * (1.0 / p.size + 1.0 / ref.size))
    return share, p0, (share - p0) / se


def _row_loss(p: np.ndarray, y: np.ndarray, probabilities: bool) -> np.ndarray:
    if probabilities:
        q = np.clip(p, LOSS_EPS, 1.0 - LOSS_EPS)
        return -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
    return (p - y) ** 2


def _loss_z(
    p: np.ndarray, y: np.ndarray, rp: np.ndarray, ry: np.ndarray
) -> tuple[int, float, float]:
    """(labeled rows of the snapshot, mean loss difference, Welch z) on matured rows only."""
    ok, rok = np.isfinite(y), np.isfinite(ry)
    n, m = int(ok.sum()), int(rok.sum())
    if n < MIN_LABELED or m < MIN_LABELED:
        return n, math.nan, math.nan
    probs = bool(
        np.all((ry[rok] >= 0) & (ry[rok] <= 1)) and np.all((rp >= 0) & (rp <= 1))
    ) and bool(np.all((p >= 0) & (p <= 1)))
    a = _row_loss(p[ok], y[ok], probs)
    b = _row_loss(rp[rok], ry[rok], probs)
    delta = float(a.mean() - b.mean())
    se = math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / m)
    if not se > 0:
        return n, delta, math.nan
    return n, delta, delta / se


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def _reference(
    g: pl.DataFrame, snap: str, first_us: int, end_us: int, bucket_us: int, before_us: int
) -> tuple[pl.DataFrame, str]:
    """The other snapshots' rows in the hours the snapshot served, else the rows before it."""
    mine = g.filter((pl.col(SNAPSHOT) == snap) & (pl.col("_us") >= first_us))
    buckets = (mine["_us"] // bucket_us).unique()
    same = g.filter(
        (pl.col(SNAPSHOT) != snap)
        & (pl.col("_us") >= first_us)
        & (pl.col("_us") <= end_us)
        & (pl.col("_us") // bucket_us).is_in(buckets.implode())
    )
    if same.height >= MIN_REFERENCE_ROWS:
        return same, "same hours"
    before = g.filter(
        (pl.col(SNAPSHOT) != snap) & (pl.col("_us") < first_us) & (pl.col("_us") >= before_us)
    )
    return before, "before"


def compare_snapshot_rows(
    rows: object,
    *,
    onset: datetime,
    end: datetime,
    lookback: timedelta = timedelta(hours=6),
    bucket: timedelta = timedelta(hours=1),
    before: timedelta = timedelta(days=1),
) -> pl.DataFrame:
    """Compare each snapshot first served in [onset - lookback, end] with its neighbours' rows.

    ``rows``: serving rows (pandas or polars, lazy or not) with ts, model, experiment,
    snapshot, prediction and optionally label (null until it arrives), covering at least
    [onset - lookback - before, end]; a snapshot's first row in ``rows`` is taken as its first
    serve, so pass its whole history or rows from well before ``onset - lookback``.
    ``bucket`` is the grain of "the same hours"; ``before`` how far back a cut-over's
    reference reaches. Returns one row per (model, experiment, snapshot) with the columns of
    ``ROW_SHIFT_SCHEMA``; z is the larger of tail_z and loss_z (a worse-direction z).
    """
    if end < onset:
        raise ValueError(f"end ({end}) is before onset ({onset}); pass end >= onset")
    lf = as_lazy(rows)
    schema = lf.collect_schema()
    missing = [col for col in (TS, MODEL, EXPERIMENT, SNAPSHOT, PREDICTION) if col not in schema]
    if missing:
        raise ValueError(f"rows are missing columns {missing}; pass serving rows")
    has_label = LABEL in schema and schema[LABEL] != pl.Null
    us = timedelta(microseconds=1)
    onset_us, end_us = _to_us(onset), _to_us(end)
    lo_us = onset_us - int(lookback / us)
    df = collect(
        lf.select(
            pl.col(TS).cast(pl.Datetime("us", "UTC")).cast(pl.Int64).alias("_us"),
            pl.col(MODEL).cast(pl.String),
            pl.col(EXPERIMENT).cast(pl.String),
            pl.col(SNAPSHOT).cast(pl.String),
            pl.col(PREDICTION).cast(pl.Float64),
            (pl.col(LABEL).cast(pl.Float64).fill_nan(None) if has_label else pl.lit(None))
            .cast(pl.Float64)
            .alias(LABEL),
        ).filter(pl.col("_us") <= end_us)
    )
    out = []
    for (model, exp), g in df.group_by([MODEL, EXPERIMENT], maintain_order=True):
        firsts = g.group_by(SNAPSHOT).agg(pl.col("_us").min().alias("first"))
        new = firsts.filter(pl.col("first") >= lo_us).sort("first", SNAPSHOT)
        for snap, first_us in new.iter_rows():
            r = _compare_one(g, snap, first_us, end_us, int(bucket / us), int(before / us))
            if r is not None:
                out.append({MODEL: model, EXPERIMENT: exp, SNAPSHOT: snap, **r})
    return pl.DataFrame(out, schema=ROW_SHIFT_SCHEMA)


def _compare_one(
    g: pl.DataFrame, snap: str, first_us: int, end_us: int, bucket_us: int, before_us: int
) -> dict | None:
    mine = g.filter((pl.col(SNAPSHOT) == snap) & (pl.col("_us") >= first_us))
    ref, kind = _reference(g, snap, first_us, end_us, bucket_us, first_us - before_us)
    p = mine[PREDICTION].to_numpy()
    rp = ref[PREDICTION].to_numpy()
    fin, rfin = np.isfinite(p), np.isfinite(rp)
    if fin.sum() < MIN_ROWS or rfin.sum() < MIN_REFERENCE_ROWS // 2:
        return None
    y = mine[LABEL].to_numpy().astype(np.float64)
    ry = ref[LABEL].to_numpy().astype(np.float64)
    share, p0, tz = _tail_z(p[fin], rp[rfin])
    n_lab, loss_delta, lz = _loss_z(p[fin], y[fin], rp[rfin], ry[rfin])
    z = max(tz, lz if math.isfinite(lz) else -math.inf)
    return {
        "first_ts": _from_us(first_us),
        "rows": int(fin.sum()),
        "reference": kind,
        "reference_rows": int(rfin.sum()),
        "tail_share": share,
        "tail_expected": p0,
        "tail_z": tz,
        "labeled_rows": n_lab,
        "loss_delta": None if math.isnan(loss_delta) else loss_delta,
        "loss_z": None if math.isnan(lz) else lz,
        "ks": _ks(p[fin], rp[rfin]),
        "z": z,
    }

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
  non-probability models) against the reference's, hour by hour; only against same-hours
  rows (label rates drift over a day, so a before/after loss says nothing about a snapshot);
* far beyond the range: the share of its predictions past the reference's whole range
  widened by its interquartile range, as an exact z under "drawn like the reference"
  (reported with ``z`` untouched: a saturated few % of rows, which the tail share counts like
  rows just outside the band; the caller sets its bar);
* ks: the two-sample Kolmogorov-Smirnov distance of the predictions (reported, not scored: a
  benign retrain moves the whole distribution a little too);
* spread: the snapshot's prediction ranks' variance against the reference's, ranked together
  hour of day by hour of day (a broken unit can squeeze every output into a narrow band
  *inside* the neighbours' range, where the tail share sees nothing), with a z of how far
  below 1 it lies (reported with ``z`` untouched: how narrow counts as a collapse is the
  caller's bar).

Same-hours statistics are stratified by hour: each hour's snapshot rows are held against the
reference rows of that hour, so a data break that starts in the middle of a ramp hits both
sides alike. A before/after comparison cannot separate the snapshot from anything else that
changed when it took over; callers weigh it less.

Pure function over a frame of rows; nothing here reads a workspace.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy.special import ndtri_exp

from ..engine import as_lazy, collect
from ..workspace.contract import EXPERIMENT, LABEL, MODEL, PREDICTION, SNAPSHOT, TS
from .drift import ks_distance
from .isolation import _from_us, _to_us

__all__ = ["ROW_SHIFT_SCHEMA", "compare_snapshot_rows"]

#: fewest reference rows of any comparison, and so the same-hours comparison is used whenever
#: its rows reach it (else: the rows before). Why not more for the same hours: the tail share
#: expected is measured on the same reference rows, with its variance widened by their
#: number, so a smaller reference gives a wider, not a wrong, z; the rows before (weighed
#: less by the triage: a data break moves them too) are the weaker comparison. At 100, half
#: of a canary arm's rows (a sampled log) fell back to the rows before and lost its window
#: to a distractor
MIN_REFERENCE_ROWS = 50
#: fewest rows of the snapshot for any comparison
MIN_ROWS = 8
#: fewest matured (labeled) rows on each side for the loss comparison
MIN_LABELED = 8
#: the reference's central share; rows outside it are "tail" rows
TAIL_QUANTILE = 0.01
#: fewest reference rows of an hour for its rows to be placed among them (spread)
MIN_STRATUM_REFERENCE = 20
#: pseudo-rows of the pooled reference tail share added to each hour's own (shrinkage)
STRATUM_PRIOR = 20.0
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
    "spread_ratio": pl.Float64,
    "spread_z": pl.Float64,
    "range_share": pl.Float64,
    "range_expected": pl.Float64,
    "range_z": pl.Float64,
    "z": pl.Float64,
}


def _strata(b: np.ndarray, rb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(snapshot mask, reference mask) per stratum both sides have rows in."""
    shared = np.intersect1d(np.unique(b), np.unique(rb))
    return [(b == k, rb == k) for k in shared]


def _tail_z(
    p: np.ndarray, ref: np.ndarray, b: np.ndarray, rb: np.ndarray
) -> tuple[float, float, float]:
    """(share of ``p`` outside ref's central band, the share expected from the reference,
    z). Stratified by ``b``/``rb`` (hour buckets; one stratum for a before/after comparison):
    each stratum's snapshot rows are expected to fall outside as often as the reference's rows
    *of the same stratum*, so a break that starts mid-overlap hits both sides alike."""
    lo, hi = np.quantile(ref, [TAIL_QUANTILE, 1.0 - TAIL_QUANTILE])
    out, rout = (p < lo) | (p > hi), (ref < lo) | (ref > hi)
    pooled = max(float(rout.mean()), 1.0 / (ref.size + 1))
    obs = exp = var = 0.0
    n = 0
    for m, rm in _strata(b, rb):
        ns, nr = int(m.sum()), int(rm.sum())
        # an hour with few reference rows borrows the pooled share (shrinkage), an hour with
        # many follows its own (a break that fills the tails in that hour)
        q = (float(rout[rm].sum()) + STRATUM_PRIOR * pooled) / (nr + STRATUM_PRIOR)
        obs += float(out[m].sum())
        exp += ns * q
        var += ns * q * (1.0 - q) * (1.0 + ns / (nr + STRATUM_PRIOR))
        n += ns
    if n == 0 or not var > 0:
        return math.nan, math.nan, math.nan
    return obs / n, exp / n, (obs - exp) / math.sqrt(var)


def _range_z(
    p: np.ndarray, ref: np.ndarray, b: np.ndarray, rb: np.ndarray
) -> tuple[float, float, float]:
    """(share of ``p`` far beyond the reference's whole range, the share expected at most, z),
    over the strata (``b``/``rb``: hour buckets) both sides have rows in, as the tail z is: a
    snapshot that took over in the hour a data break began shares one hour with the rows it
    replaced, and its later hours, broken data and all, are not held against them.

    Why a second tail: the central band counts a row at the reference's 99.5th percentile
    like one at a value the model never produced, so a blow-up that saturates a few % of
    rows reads as a few % of extra tail rows, inside what a benign retrain shows. Beyond the
    range is rarer by construction, and its null needs no shape: if the snapshot's rows were
    drawn like the reference's (exchangeable), k of its m rows lie above the max of the n
    reference rows with probability C(m, k) / C(n + m, k), exactly, whatever the
    distribution (a tie with the extreme is not beyond it). The side with more evidence
    counts, doubled for having looked at both.

    "Far": a row counts only beyond the range widened by the reference's interquartile range
    (probabilities on the logit scale, where a saturated 1.0 is far from 0.9 and a spread
    retrain's rows are not), so a retrain whose predictions merely spread wider (the
    simulator's benign ones, with a small reference, put 18% of rows just past its extremes)
    is not read as rows the model never served. The margin only makes the count smaller, so
    the exact probability stays an upper bound under the null.
    """
    p, ref = p[np.isin(b, rb)], ref[np.isin(rb, b)]
    n, m = ref.size, p.size
    if n < 2 or m == 0:
        return math.nan, math.nan, math.nan
    x, rx = _on_prediction_scale(p, ref)
    q1, q3 = np.quantile(rx, [0.25, 0.75])
    margin = float(q3 - q1)
    lo, hi = float(rx.min()) - margin, float(rx.max()) + margin
    above, below = int((x > hi).sum()), int((x < lo).sum())

    def log_tail(k: int) -> float:
        i = np.arange(k, dtype=np.float64)
        return float(np.sum(np.log(m - i) - np.log(n + m - i)))

    log_p = min(log_tail(above), log_tail(below)) + math.log(2.0)
    z = -float(ndtri_exp(min(log_p, math.log(0.5))))
    return (above + below) / m, 2.0 / (n + 1), z


def _on_prediction_scale(p: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sides on the logit scale when every value is a probability (clipped as the loss
    clips them), else as they are."""
    if not _all_probabilities(p, ref):
        return p, ref

    def logit(v: np.ndarray) -> np.ndarray:
        q = _clipped(v)
        return np.log(q) - np.log1p(-q)

    return logit(p), logit(ref)


def _all_probabilities(*xs: np.ndarray) -> bool:
    """Whether every value of every array lies in [0, 1] (probability predictions or labels:
    the loss and the prediction scale switch on it)."""
    return all(bool(np.all((x >= 0) & (x <= 1))) for x in xs)


def _clipped(p: np.ndarray) -> np.ndarray:
    """Probabilities clipped at LOSS_EPS (an exact 0 or 1 is not infinitely wrong or far)."""
    return np.clip(p, LOSS_EPS, 1.0 - LOSS_EPS)


def _pooled_ranks(p: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-ranks of ``p`` and of ``ref`` in their pooled sample, scaled to (0, 1]: under "same
    distribution" the two are a random split of one set of ranks (ties share theirs)."""
    pooled = np.sort(np.concatenate([p, ref]))
    n = pooled.size

    def rank(x: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(pooled, x, side="left")
        hi = np.searchsorted(pooled, x, side="right")
        return (lo + hi + 1) / (2.0 * n)

    return rank(p), rank(ref)


def _spread_z(p: np.ndarray, ref: np.ndarray, b: np.ndarray, rb: np.ndarray) -> tuple[float, float]:
    """(spread ratio, collapse z): how narrow the snapshot's predictions are against the
    reference's, in rank space. Each stratum's rows are ranked together with its reference
    rows; under "same distribution" the snapshot's ranks are a random draw of the pooled ranks,
    so both sides' rank variances (about their own means: a collapse anywhere in the range
    counts, not only at the centre) estimate one number, whatever the predictions' shape
    (heavy tails and clumps of equal values count as ranks, not as raw spreads would). The
    ratio is the snapshot's rank variance over the reference's; z how many standard errors
    (from the pooled ranks' kurtosis and the snapshot's rows) it lies below 1."""
    u_parts, v_parts = [], []
    for m, rm in _strata(b, rb):
        if int(rm.sum()) < MIN_STRATUM_REFERENCE:
            continue
        u, v = _pooled_ranks(p[m], ref[rm])
        u_parts.append(u)
        v_parts.append(v)
    if not u_parts:
        return math.nan, math.nan
    u, v = np.concatenate(u_parts), np.concatenate(v_parts)
    n = u.size
    if n < MIN_ROWS or v.size < 2:
        return math.nan, math.nan
    var_v = float(v.var(ddof=1))
    if not var_v > 0:
        return math.nan, math.nan
    ratio = float(u.var(ddof=1)) / var_v
    kurt = float(((v - v.mean()) ** 4).mean()) / float(v.var()) ** 2
    se = math.sqrt(max(kurt - (n - 3) / (n - 1), 1e-12) / n)
    return ratio, (1.0 - ratio) / se


def _row_loss(p: np.ndarray, y: np.ndarray, probabilities: bool) -> np.ndarray:
    if probabilities:
        q = _clipped(p)
        return -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
    return (p - y) ** 2


def _loss_z(
    p: np.ndarray, y: np.ndarray, rp: np.ndarray, ry: np.ndarray, b: np.ndarray, rb: np.ndarray
) -> tuple[int, float, float]:
    """(labeled rows of the snapshot, mean loss difference, z) on matured rows only, the
    per-stratum differences weighted by their harmonic row counts."""
    ok, rok = np.isfinite(y), np.isfinite(ry)
    n, m = int(ok.sum()), int(rok.sum())
    if n < MIN_LABELED or m < MIN_LABELED:
        return n, math.nan, math.nan
    probs = _all_probabilities(ry[rok], y[ok], p, rp)
    a = _row_loss(p[ok], y[ok], probs)
    r = _row_loss(rp[rok], ry[rok], probs)
    va, vr = float(a.var(ddof=1)), float(r.var(ddof=1))
    num = den = var = 0.0
    for sm, rm in _strata(b[ok], rb[rok]):
        ns, nr = int(sm.sum()), int(rm.sum())
        w = ns * nr / (ns + nr)
        num += w * float(a[sm].mean() - r[rm].mean())
        den += w
        var += w * w * (va / ns + vr / nr)
    if not den > 0 or not var > 0:
        return n, math.nan, math.nan
    delta = num / den
    return n, delta, delta / (math.sqrt(var) / den)


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
    if fin.sum() < MIN_ROWS or rfin.sum() < MIN_REFERENCE_ROWS:
        return None
    if kind == "same hours":  # like with like: hour by hour
        b, rb = mine["_us"].to_numpy() // bucket_us, ref["_us"].to_numpy() // bucket_us
    else:  # one stratum: the rows after against the rows before
        b, rb = np.zeros(p.size, np.int64), np.zeros(rp.size, np.int64)
    y = mine[LABEL].to_numpy().astype(np.float64)
    ry = ref[LABEL].to_numpy().astype(np.float64)
    hod, rhod = mine["_us"].to_numpy()[fin], ref["_us"].to_numpy()[rfin]
    p, y, b, rp, ry, rb = p[fin], y[fin], b[fin], rp[rfin], ry[rfin], rb[rfin]
    share, p0, tz = _tail_z(p, rp, b, rb)
    if math.isnan(tz):
        return None
    n_lab, loss_delta, lz = _loss_z(p, y, rp, ry, b, rb)
    # by hour of day, also against the day before: a few hours of a day spread less than
    # a whole day does, whatever the snapshot
    day_us = 24 * 3600 * 10**6
    spread, sz = _spread_z(p, rp, hod % day_us // bucket_us, rhod % day_us // bucket_us)
    range_share, range_expected, rz = _range_z(p, rp, b, rb)
    if kind != "same hours":
        # label rates drift over a day (and with any data break): a before/after loss is
        # not evidence about the snapshot
        loss_delta = lz = math.nan
    z = max(tz, lz if math.isfinite(lz) else -math.inf)
    return {
        "first_ts": _from_us(first_us),
        "rows": int(p.size),
        "reference": kind,
        "reference_rows": int(rp.size),
        "tail_share": share,
        "tail_expected": p0,
        "tail_z": tz,
        "labeled_rows": n_lab,
        "loss_delta": None if math.isnan(loss_delta) else loss_delta,
        "loss_z": None if math.isnan(lz) else lz,
        "ks": ks_distance(p, rp),
        "spread_ratio": None if math.isnan(spread) else spread,
        "spread_z": None if math.isnan(sz) else sz,
        "range_share": None if math.isnan(rz) else range_share,
        "range_expected": None if math.isnan(rz) else range_expected,
        "range_z": None if math.isnan(rz) else rz,
        "z": z,
    }

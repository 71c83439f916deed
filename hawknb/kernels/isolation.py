"""Model isolation: which model-experiment's predictions degraded when the top line broke.

Nothing links a metric to a model by name, so the model is found by evidence: a model whose
prediction health series (mean prediction, calibration, NE, NaN rate) shifts *at* the top-line
onset, by much more than its usual hour-to-hour noise, explains the anomaly; one that shifted
days earlier, or never, does not. Both questions are answered per series by two robust
statistics shared with the lineage and rollout kernels (:func:`series_shift`):

* size: the median post-onset residual in units of the reference window's robust spread
  (1.4826 * MAD), where the residual removes the same-hour-of-day median of the reference days
  when the reference spans at least two days (a daily peak is not an anomaly);
* timing: the single best mean-shift change point of the residual series, and how far it lies
  from the onset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace.contract import EXPERIMENT, MODEL, TS, VALUE
from .health import HEALTH_SERIES, WORSE_WHEN_HIGHER

_DAY_US = 86_400_000_000
_MAD_TO_SIGMA = 1.4826
#: a robust z below this is noise; strength() grows from 0 here ...
Z_LOW = 2.0
#: ... to 1 here
Z_HIGH = 6.0
#: robust z is reported up to this size (a series that was exactly constant has no spread)
Z_CAP = 1000.0


# -- shared change statistics -------------------------------------------------------------------
@dataclass(frozen=True)
class Shift:
    """How one series changed at an onset.

    before/after: median level in the reference / post window; delta: median residual shift
    (after minus the seasonal baseline); z: delta in units of the reference robust spread;
    change_ts: the best single change point of the series (None if too short); timing: 1 when
    that change point is at the onset, decaying with distance; seasonal: whether a time-of-day
    baseline was removed; n_before/n_after: points used.
    """

    before: float
    after: float
    delta: float
    z: float
    change_ts: datetime | None
    timing: float
    seasonal: bool
    n_before: int
    n_after: int


def strength(z: float) -> float:
    """Map |robust z| to 0..1: 0 up to Z_LOW (noise), 1 from Z_HIGH on, linear between."""
    if not math.isfinite(z):
        return 1.0 if not math.isnan(z) else 0.0
    return float(np.clip((abs(z) - Z_LOW) / (Z_HIGH - Z_LOW), 0.0, 1.0))


def _to_us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(
            f"the datetime {t!r} is naive; pass a timezone-aware UTC datetime "
            "(e.g. datetime(..., tzinfo=timezone.utc))"
        )
    return int(pl.Series([t]).cast(pl.Datetime("us", "UTC")).cast(pl.Int64)[0])


def _from_us(us: int) -> datetime:
    return pl.Series([us], dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))[0]


def _change_point(x: np.ndarray) -> int | None:
    """Index of the first point after the best single mean shift (a two-segment split maximising
    |mean difference| * sqrt(k (n - k) / n), the likelihood-ratio statistic for a Gaussian mean
    change); None for fewer than 3 points or a constant series."""
    n = x.size
    if n < 3:
        return None
    c = np.cumsum(x)
    k = np.arange(1, n)
    left = c[:-1] / k
    right = (c[-1] - c[:-1]) / (n - k)
    stat = np.abs(left - right) * np.sqrt(k * (n - k) / n)
    if not np.any(stat > 1e-12 * (np.abs(x).max() + 1e-300)):
        return None
    return int(k[np.argmax(stat)])


def seasonal_baseline(
    ts_us: np.ndarray, x: np.ndarray, ref: np.ndarray, *, period_us: int = _DAY_US
) -> tuple[np.ndarray, bool]:
    """The expected value of each point from the reference points (mask ``ref``): the median of
    the reference points at the same phase of the period (hour of day) when the reference spans
    at least two periods and the sampling step divides the period, else the reference median.
    Returns (baseline per point, whether it was seasonal)."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=bool) & np.isfinite(x)
    if not ref.any():
        return np.full(x.size, np.nan), False
    uniq = np.unique(ts_us)
    step = int(np.median(np.diff(uniq))) if uniq.size > 1 else period_us
    span = int(ts_us[ref].max() - ts_us[ref].min()) + step
    seasonal = 0 < step < period_us and period_us % step == 0 and span >= 2 * period_us
    baseline = np.full(x.size, np.median(x[ref]))
    if seasonal:
        phase = (ts_us % period_us) // step
        ref_phase, ref_x = phase[ref], x[ref]
        n_phase = period_us // step
        counts = np.bincount(ref_phase, minlength=n_phase)
        # per-phase medians (vectorized: sort by phase then value, pick the middle)
        o = np.lexsort((ref_x, ref_phase))
        sx = ref_x[o]
        starts = np.searchsorted(ref_phase[o], np.arange(n_phase))
        med = np.full(n_phase, np.nan)
        has = counts >= 2
        lo = starts + (counts - 1) // 2
        hi = starts + counts // 2
        med[has] = 0.5 * (sx[lo[has]] + sx[hi[has]])
        use = has[phase]
        baseline[use] = med[phase[use]]
    return baseline, bool(seasonal)


def series_shift(
    ts_us: np.ndarray,
    values: np.ndarray,
    *,
    onset_us: int,
    end_us: int,
    ref_start_us: int,
    tolerance_us: int,
    ref_end_us: int | None = None,
    period_us: int = _DAY_US,
) -> Shift | None:
    """Robust, seasonality-aware shift of one series at an onset (see the module docstring).

    ``ts_us`` are UTC microseconds (sorted or not), ``values`` floats (non-finite are ignored).
    The reference window is [ref_start, ref_end) (ref_end defaults to the onset), the post
    window [onset, end]; the change point is searched over [ref_start, end]. Returns None when
    the reference has fewer than 3 points or the post window is empty.
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(ts_us, kind="stable")
    ts_us, x = ts_us[order], x[order]
    ok = np.isfinite(x) & (ts_us >= ref_start_us) & (ts_us <= end_us)
    ts_us, x = ts_us[ok], x[ok]
    ref = ts_us < (onset_us if ref_end_us is None else min(ref_end_us, onset_us))
    post = ts_us >= onset_us
    if ref.sum() < 3 or post.sum() < 1:
        return None
    baseline, seasonal = seasonal_baseline(ts_us, x, ref, period_us=period_us)
    return shift_of_residuals(
        ts_us,
        x,
        x - baseline,
        ref,
        post,
        onset_us=onset_us,
        tolerance_us=tolerance_us,
        seasonal=seasonal,
        counts=(int(ref.sum()), int(post.sum())),
    )


def shift_of_residuals(
    ts_us: np.ndarray,
    x: np.ndarray,
    resid: np.ndarray,
    ref: np.ndarray,
    post: np.ndarray,
    *,
    onset_us: int,
    tolerance_us: int,
    seasonal: bool,
    counts: tuple[int, int],
) -> Shift:
    """The shift measured on residuals against some baseline (the one measurement every
    series and lineage node shares, whatever baseline its caller chose): the median post
    residual over the reference's robust spread, the best single change point and its
    distance to the onset. ``counts`` are the (reference, post) points the caller had."""
    center = float(np.median(resid[ref]))
    mad = float(np.median(np.abs(resid[ref] - center))) * _MAD_TO_SIGMA
    level = float(np.median(x[ref]))
    scale = max(mad, 1e-4 * abs(level), 1e-12)
    delta = float(np.median(resid[post]) - center)
    z = float(np.clip(delta / scale, -Z_CAP, Z_CAP)) if math.isfinite(delta) else 0.0
    cp = _change_point(resid)
    change_ts, timing = None, 0.0
    if cp is not None:
        change_us = int(ts_us[cp])
        change_ts = _from_us(change_us)
        timing = float(math.exp(-abs(change_us - onset_us) / max(tolerance_us, 1)))
    return Shift(
        before=level,
        after=float(np.median(x[post])),
        delta=delta,
        z=z,
        change_ts=change_ts,
        timing=timing,
        seasonal=bool(seasonal),
        n_before=counts[0],
        n_after=counts[1],
    )


def worse_z(sh: Shift, series: str) -> float:
    """The shift's z in the direction that hurts, scaled for how long it lasted: a shift
    sustained over several post-onset windows is stronger evidence than one window's (the
    sampling error of a median of n windows, n capped at 6: serial correlation makes longer
    runs less informative than sqrt(n)). NE, NMSE and NaN rate count only when they rise."""
    sustained = sh.z * math.sqrt(min(sh.n_after, 6)) / 1.2533
    return max(sustained, 0.0) if series in WORSE_WHEN_HIGHER else abs(sustained)


# -- model isolation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLevel:
    """Is a model's degradation in all its experiments (the model itself) or in one only?

    scope: "model" (every experiment degraded: not experiment specific), "experiment" (only
    some did), "single" (the model has one experiment, so it cannot tell) or "none".
    """

    model: str
    experiments: tuple[str, ...]
    degraded: tuple[str, ...]
    scope: str

    @property
    def experiment_specific(self) -> bool | None:
        return {"model": False, "experiment": True}.get(self.scope)


@dataclass(frozen=True)
class ModelIsolation:
    """Ranked model-experiments.

    ranking columns: rank, model, experiment, score (0..1, for ordering), confidence (0..1, that
    this model-experiment's predictions degraded at the onset), shifted_series (list of health
    series that moved), series (the strongest), shift (its robust z), delta (its raw shift),
    before, after (its levels), change_ts, timing, correlation (with the metric; null if none
    given). series: the same statistics for every (model, experiment, series).
    """

    ranking: pl.DataFrame
    series: pl.DataFrame
    model_level: dict[str, ModelLevel]
    onset: datetime
    end: datetime

    @property
    def top(self) -> tuple[str, str] | None:
        if self.ranking.is_empty():
            return None
        row = self.ranking.row(0, named=True)
        return (row[MODEL], row[EXPERIMENT])

    @property
    def confidence(self) -> float:
        return 0.0 if self.ranking.is_empty() else float(self.ranking["confidence"][0])


def _window_us(ts_us: np.ndarray) -> int:
    u = np.unique(ts_us)
    return int(np.median(np.diff(u))) if u.size > 1 else 3_600_000_000


def _metric_correlation(
    metric: pl.DataFrame | None, ts_us: np.ndarray, x: np.ndarray, lo: int, onset: int, hi: int
) -> float | None:
    """|Pearson r| of the health series and the metric on the shared windows in [lo, hi],
    both with their same-hour-of-day reference baselines removed (two series that merely share
    a daily cycle are not evidence)."""
    if metric is None or metric.is_empty():
        return None
    m_ts = metric["_us"].to_numpy()
    m_v = metric[VALUE].to_numpy()
    common, ia, ib = np.intersect1d(ts_us, m_ts, return_indices=True)
    keep = (common >= lo) & (common <= hi)
    a, b, t = x[ia[keep]], m_v[ib[keep]], common[keep]
    ok = np.isfinite(a) & np.isfinite(b)
    a, b, t = a[ok], b[ok], t[ok]
    if a.size < 4:
        return None
    ref = t < onset
    if ref.sum() >= 3:
        a = a - seasonal_baseline(t, a, ref)[0]
        b = b - seasonal_baseline(t, b, ref)[0]
    if np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(abs(np.corrcoef(a, b)[0, 1]))


def _load_health(health: object, series: tuple[str, ...]) -> tuple[pl.DataFrame, list[str]]:
    """The health table's series in (model, experiment, time) order, and which it has."""
    lf = as_lazy(health)
    schema = lf.collect_schema()
    for col in (MODEL, EXPERIMENT, TS):
        if col not in schema:
            raise ValueError(
                f"health is missing column '{col}'; pass prediction_health(serving) output"
            )
    present = [s for s in series if s in schema]
    if not present:
        raise ValueError(
            f"health has none of the series {list(series)}; pass prediction_health output"
        )
    df = collect(
        lf.select(
            pl.col(MODEL).cast(pl.String),
            pl.col(EXPERIMENT).cast(pl.String),
            pl.col(TS).cast(pl.Datetime("us", "UTC")).cast(pl.Int64).alias("_us"),
            *[pl.col(s).cast(pl.Float64) for s in present],
        ).sort(MODEL, EXPERIMENT, "_us")
    )
    if df.is_empty():
        raise ValueError("health is empty; is the serving log empty?")
    return df, present


def _reference_us(
    onset_us: int, reference: tuple[datetime, datetime] | timedelta | None
) -> tuple[int, int]:
    """The baseline window in microseconds: given, a duration before the onset, or 7 days."""
    if reference is None:
        return onset_us - 7 * _DAY_US, onset_us
    if isinstance(reference, timedelta):
        return onset_us - int(reference / timedelta(microseconds=1)), onset_us
    ref_start_us, ref_end_us = _to_us(reference[0]), _to_us(reference[1])
    if ref_end_us > onset_us or ref_start_us >= ref_end_us:
        raise ValueError("reference must be a (start, end) pair with start < end <= onset")
    return ref_start_us, ref_end_us


def _metric_frame(metric_series: object | None) -> pl.DataFrame | None:
    if metric_series is None:
        return None
    m = collect(as_lazy(metric_series))
    if TS not in m.columns or VALUE not in m.columns:
        raise ValueError("metric_series needs columns 'ts' and 'value'")
    return m.select(
        pl.col(TS).cast(pl.Datetime("us", "UTC")).cast(pl.Int64).alias("_us"),
        pl.col(VALUE).cast(pl.Float64),
    )


_SERIES_SCHEMA = {
    MODEL: pl.String,
    EXPERIMENT: pl.String,
    "series": pl.String,
    "shift": pl.Float64,
    "delta": pl.Float64,
    "before": pl.Float64,
    "after": pl.Float64,
    "change_ts": pl.Datetime("us", "UTC"),
    "timing": pl.Float64,
    "correlation": pl.Float64,
    "seasonal": pl.Boolean,
    "score": pl.Float64,
    "confidence": pl.Float64,
}


def _pair_series_rows(
    model: object,
    experiment: object,
    part: pl.DataFrame,
    present: list[str],
    metric: pl.DataFrame | None,
    bounds: tuple[int, int, int, int, int],
) -> list[dict[str, object]]:
    """One row per health series of one (model, experiment) that has data on both sides:
    its shift at the onset, scored by strength, timing and tie to the metric."""
    ref_start_us, ref_end_us, onset_us, end_us, tolerance = bounds
    ts_us = part["_us"].to_numpy()
    rows: list[dict[str, object]] = []
    for s in present:
        x = part[s].to_numpy()
        sh = series_shift(
            ts_us,
            x,
            onset_us=onset_us,
            end_us=end_us,
            ref_start_us=ref_start_us,
            ref_end_us=ref_end_us,
            tolerance_us=tolerance,
        )
        if sh is None:
            continue
        wz = worse_z(sh, s)
        corr = _metric_correlation(metric, ts_us, x, ref_start_us, onset_us, end_us)
        # NaN/inf predictions appearing are breakage whatever the metric did, so their
        # evidence does not wait for a correlation with it
        corr_term = 1.0 if corr is None or s == "nan_rate" else 0.5 + 0.5 * corr
        rows.append(
            {
                MODEL: model,
                EXPERIMENT: experiment,
                "series": s,
                "shift": sh.z,
                "delta": sh.delta,
                "before": sh.before,
                "after": sh.after,
                "change_ts": sh.change_ts,
                "timing": sh.timing,
                "correlation": corr,
                "seasonal": sh.seasonal,
                "score": (wz / (wz + Z_HIGH)) * sh.timing * corr_term,
                "confidence": strength(wz) * sh.timing * corr_term,
            }
        )
    return rows


def _rank_pairs(pairs: pl.DataFrame, sdf: pl.DataFrame) -> pl.DataFrame:
    """Each pair's best series (and every series within half of it), pairs best first;
    a pair without any series ranks with score and confidence 0."""
    best = (
        sdf.sort(["confidence", "score"], descending=True)
        .group_by([MODEL, EXPERIMENT], maintain_order=True)
        .agg(
            pl.all().first(),
            pl.col("series")
            .filter(
                (pl.col("confidence") >= 0.5 * pl.col("confidence").max())
                & (pl.col("confidence") > 0)
            )
            .alias("shifted_series"),
        )
    )
    return (
        pairs.join(best, on=[MODEL, EXPERIMENT], how="left")
        .with_columns(
            pl.col("score").fill_null(0.0),
            pl.col("confidence").fill_null(0.0),
            pl.col("shifted_series").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
        .sort(["confidence", "score", MODEL, EXPERIMENT], descending=[True, True, False, False])
        .with_row_index("rank", offset=1)
        .select(
            "rank",
            MODEL,
            EXPERIMENT,
            "score",
            "confidence",
            "shifted_series",
            "series",
            "shift",
            "delta",
            "before",
            "after",
            "change_ts",
            "timing",
            "correlation",
        )
    )


def _model_levels(ranking: pl.DataFrame) -> dict[str, ModelLevel]:
    """Per model: which of its experiments degraded, and so whether the whole model did."""
    model_level: dict[str, ModelLevel] = {}
    for model in ranking[MODEL].unique(maintain_order=True).to_list():
        rows = ranking.filter(pl.col(MODEL) == model).sort(EXPERIMENT)
        exps = tuple(rows[EXPERIMENT].to_list())
        degraded = tuple(rows.filter(pl.col("confidence") >= 0.5)[EXPERIMENT].to_list())
        if not degraded:
            scope = "none"
        elif len(exps) == 1:
            scope = "single"
        elif len(degraded) == len(exps):
            scope = "model"
        else:
            scope = "experiment"
        model_level[model] = ModelLevel(model, exps, degraded, scope)
    return model_level


def rank_model_experiments(
    health: object,
    *,
    onset: datetime,
    end: datetime,
    reference: tuple[datetime, datetime] | timedelta | None = None,
    metric_series: object | None = None,
    direction: int | None = None,
    series: tuple[str, ...] = HEALTH_SERIES,
) -> ModelIsolation:
    """Rank (model, experiment) pairs by how well their prediction degradation explains a
    top-line anomaly in [onset, end].

    ``health`` is :func:`hawknb.kernels.health.prediction_health` output (pandas or polars),
    each row a window labelled by its start; a window that contains the onset is left out.
    ``reference`` is the baseline: a (start, end) pair, a duration before the onset, or None
    for the 7 days before the onset. ``metric_series`` (optional; columns ts, value on the same
    window grid) adds the |correlation| of each health series with the metric over the reference
    and anomaly windows. ``direction`` (+1/-1, the top-line anomaly's sign) is recorded only:
    a model's prediction can move either way and still cause it.

    Per series, score = strength(z) * timing * (0.5 + 0.5 * |corr| when a metric is given),
    where NE and NaN rate count only when they increase; a model-experiment's score is the
    best of its series, its confidence the same with a floor-free strength (0 when nothing
    moved by more than Z_LOW robust sigmas).
    """
    del direction
    onset_us, end_us = _to_us(onset), _to_us(end)
    if end_us < onset_us:
        raise ValueError(f"end ({end}) is before onset ({onset}); pass end >= onset")
    df, present = _load_health(health, series)
    ref_start_us, ref_end_us = _reference_us(onset_us, reference)
    step = _window_us(df["_us"].to_numpy())
    # the top-line onset is itself uncertain by an hour or two and label-based series are
    # noisy per window, so timing tolerates a few windows or half the anomaly
    tolerance = max(3 * step, (end_us - onset_us) // 2)
    metric = _metric_frame(metric_series)
    # a window that straddles the onset holds rows of both states: it is on neither side (else
    # where the onset falls inside the health windows, not the change, would set the evidence)
    straddles = (pl.col("_us") < onset_us) & (pl.col("_us") + step > onset_us)
    df = df.filter(~straddles)
    metric = metric.filter(~straddles) if metric is not None else None
    sdf = pl.DataFrame(
        [
            row
            for (model, experiment), part in df.group_by([MODEL, EXPERIMENT], maintain_order=True)
            for row in _pair_series_rows(
                model,
                experiment,
                part,
                present,
                metric,
                (ref_start_us, ref_end_us, onset_us, end_us, tolerance),
            )
        ],
        schema=_SERIES_SCHEMA,
    )
    ranking = _rank_pairs(df.select(MODEL, EXPERIMENT).unique(maintain_order=True), sdf)
    model_level = _model_levels(ranking)
    return ModelIsolation(
        ranking=ranking, series=sdf, model_level=model_level, onset=onset, end=end
    )

"""One ranked list of the features responsible for a model's prediction shift.

HawkEye combines two kinds of evidence (see docs/feature-isolation.md):

(a) correlational, cheap, needs only the serving log: how each feature's distribution moved,
    window by window, against how the prediction distribution moved (per time bucket, the
    PSI of the feature vs the reference window, correlated with the PSI of the predictions);
(b) causal-ish, needs the snapshot: feature-ablation importance on sampled rows of the
    reference and anomaly windows -- how much each feature's importance shifted and how much of
    the mean prediction shift it carries.

(c) joins them: a feature's drift counts in proportion to its importance, so a feature that
drifted a lot but that the model ignores (and whose ablation moves nothing) ranks low.
Without a program only (a) and the raw drift are available; the result says so and its
confidences are capped, because correlation in time cannot tell two features that changed at
the same moment apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError
from .attribution import ImportanceShift, importance_shift
from .drift import PSI_EPS, distances, psi_from_counts, quantile_edges

FrameLike = Any
#: (reference, anomaly) -> window-level drift per feature (``Workspace.feature_drift``'s columns)
WindowDrift = Callable[[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]], Any]

#: Candidate time-bucket widths for the correlation series, smallest first.
_BUCKETS: tuple[tuple[str, dt.timedelta], ...] = tuple(
    (name, dt.timedelta(minutes=m))
    for name, m in (
        ("1m", 1),
        ("5m", 5),
        ("10m", 10),
        ("15m", 15),
        ("30m", 30),
        ("1h", 60),
        ("2h", 120),
        ("3h", 180),
        ("6h", 360),
        ("12h", 720),
        ("1d", 1440),
    )
)
#: Windows larger than this are subsampled (deterministically) for the window-level distances.
MAX_DRIFT_ROWS = 50_000
#: Time buckets with fewer rows than this are left out of the correlation.
MIN_BUCKET_ROWS = 20

_COLUMNS: dict[str, pl.DataType] = {
    "feature": pl.String,
    "rank": pl.Int64,
    "score": pl.Float64,
    "confidence": pl.Float64,
    "drift_psi": pl.Float64,
    "drift_wasserstein": pl.Float64,
    "drift_ks": pl.Float64,
    "mean_shift": pl.Float64,
    "corr_with_prediction": pl.Float64,
    "importance_before": pl.Float64,
    "importance_after": pl.Float64,
    "importance_shift": pl.Float64,
    "explained_shift": pl.Float64,
    "explained_share": pl.Float64,
    "null_rate_before": pl.Float64,
    "null_rate_after": pl.Float64,
    "nonfinite_rate_before": pl.Float64,
    "nonfinite_rate_after": pl.Float64,
    "evidence": pl.String,
}


@dataclass(frozen=True)
class FeatureRanking:
    """The ranked features for one (model, reference window, anomaly window)."""

    model: str
    table: pl.DataFrame  # one row per feature, best first (columns: see _COLUMNS)
    method: str  # "distribution + ablation" or "distribution only (no program given)"
    used_program: bool
    onset: dt.datetime
    reference: tuple[dt.datetime, dt.datetime]
    anomaly: tuple[dt.datetime, dt.datetime]
    every: str  # bucket width of the correlation series
    n_reference_rows: int
    n_anomaly_rows: int
    prediction_psi: float
    prediction_shift: float  # mean prediction, anomaly - reference (finite predictions)
    topk_stability: float  # bootstrap stability of the ablation top-k (NaN without a program)
    attribution_rows: int  # rows sampled per window for ablation (0 without a program)
    series: pl.DataFrame  # long: ts, feature, psi, mean, rows -- per bucket ("prediction" too)
    notes: tuple[str, ...]
    importance: ImportanceShift | None = None
    #: what the window-level drift (PSI, W1, KS, mean shift, null rates) was computed from:
    #: "rows" (the frame given), else the ``source`` of the ``window_drift`` answer
    drift_source: str = "rows"
    #: the largest stated error of the window-level drift: {"ks", "psi", "wasserstein"} (0 on rows)
    drift_error: dict[str, float] | None = None

    def frame(self) -> pl.DataFrame:
        return self.table

    def top(self, k: int = 5) -> list[str]:
        return self.table["feature"].head(k).to_list()

    def sparklines(self) -> pl.DataFrame:
        """Per-feature drift-over-time series (ts, feature, value) for the ranking widget."""
        return self.series.filter(pl.col("feature") != c.PREDICTION).select(
            "ts", "feature", pl.col("psi").alias("value")
        )


# -- helpers ----------------------------------------------------------------------------------


def _utc(t: Any, name: str) -> dt.datetime:
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    if hasattr(t, "to_pydatetime"):  # pandas Timestamp
        t = t.to_pydatetime()
    if isinstance(t, dt.date) and not isinstance(t, dt.datetime):
        t = dt.datetime(t.year, t.month, t.day)
    if not isinstance(t, dt.datetime):
        raise ValueError(f"{name}: expected a datetime, got {type(t).__name__} {t!r}")
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc)


def _window(w: Any, name: str) -> tuple[dt.datetime, dt.datetime]:
    try:
        start, end = w
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a (start, end) pair, got {w!r}") from None
    s, e = _utc(start, f"{name} start"), _utc(end, f"{name} end")
    if not s < e:
        raise ValueError(f"{name}: start {s} is not before end {e}; pass (start, end)")
    return s, e


def _us(t: dt.datetime) -> int:
    return int((t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1))


def _choose_bucket(span: dt.timedelta, anomaly: dt.timedelta) -> tuple[str, dt.timedelta]:
    """The smallest bucket giving at most ~150 buckets overall; at least 4 in the anomaly."""
    chosen = _BUCKETS[-1]
    for name, width in _BUCKETS:
        if span / width <= 150:
            chosen = (name, width)
            break
    idx = _BUCKETS.index(chosen)
    while idx > 0 and anomaly / _BUCKETS[idx][1] < 4:
        idx -= 1
    return _BUCKETS[idx]


#: the drift magnitudes a feature's PSI and its Wasserstein-1 distance (in the reference's
#: interquartile ranges) count at the same weight: PSI_SCALE of one is W1_SCALE of the other
PSI_SCALE, W1_SCALE = 0.25, 0.5


def _squash(x: np.ndarray, scale: float) -> np.ndarray:
    """Map a non-negative distance to [0, 1): 1 - exp(-x/scale); NaN -> 0."""
    return 1.0 - np.exp(-np.nan_to_num(np.abs(x), nan=0.0) / scale)


def _bucket_psi(
    values: np.ndarray,
    ref_values: np.ndarray,
    ref_mask: np.ndarray,
    bucket: np.ndarray,
    n_buckets: int,
    n_bins: int,
) -> np.ndarray:
    """Per-bucket PSI of one column against the reference window, with one extra bin for
    missing (null/NaN/inf) values -- a feature that goes missing moves too -- and the small-
    sample bias of PSI subtracted, so buckets of different traffic compare."""
    fin = np.isfinite(values)
    edges = quantile_edges(ref_values, n_bins)
    nb = edges.size + 2
    bins = np.where(fin, np.searchsorted(edges, np.where(fin, values, 0.0), side="right"), nb - 1)
    ref_counts = np.bincount(bins[ref_mask], minlength=nb)
    counts = np.bincount(bucket * nb + bins, minlength=n_buckets * nb).reshape(n_buckets, nb)
    p = psi_from_counts(ref_counts[None, :], counts, PSI_EPS)
    occupied = max(int((ref_counts > 0).sum()) - 1, 0)
    n_b = counts.sum(axis=1)
    with np.errstate(divide="ignore"):
        bias = occupied * (1.0 / np.maximum(n_b, 1) + 1.0 / max(int(ref_counts.sum()), 1))
    return p - bias


def _bucket_mean(values: np.ndarray, bucket: np.ndarray, n_buckets: int) -> np.ndarray:
    fin = np.isfinite(values)
    s = np.bincount(bucket[fin], weights=values[fin], minlength=n_buckets)
    n = np.bincount(bucket[fin], minlength=n_buckets)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 4 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    # Spearman = Pearson of ranks (series are continuous; ties are broken by order)
    ra = np.argsort(np.argsort(a[ok], kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b[ok], kind="stable"), kind="stable").astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def _check_columns(schema: pl.Schema, ts: str, features: Sequence[str]) -> None:
    for col in (ts, c.MODEL, c.PREDICTION):
        if col not in schema:
            raise WorkspaceError(
                f"serving, column '{col}'",
                "is missing",
                found=f"columns {list(schema.names())[:20]}",
                fix="pass the serving log of the workspace (ws.table('serving'))",
            )
    if not isinstance(schema[ts], pl.Datetime):
        raise WorkspaceError(
            f"serving, column '{ts}'", "is not a timestamp", found=str(schema[ts]), fix="pass ts="
        )
    missing = [f for f in features if f not in schema]
    if missing:
        raise WorkspaceError(
            "serving",
            f"has no column for features {missing[:10]}",
            found=f"{len(schema)} columns",
            fix="pass feature_names=ws.features(model) for this workspace's model",
        )
    bad = [f for f in features if not (schema[f].is_numeric() or schema[f] == pl.Boolean)]
    if bad:
        raise WorkspaceError(
            "serving", f"feature columns {bad[:10]} are not numeric", fix="cast them to float"
        )


#: the KS statistic in units of its sampling noise (sqrt(n m / (n + m)) D) from which a
#: feature's values start to count as moved (p ~ 0.02), and from which they surely did
OWN_KS = (1.5, 3.0)
#: the same for the change of its null / non-finite share, as a two-proportion z
OWN_NULL_Z = (2.0, 4.0)


def own_change(
    ks: np.ndarray, d_null: np.ndarray, null_rate: np.ndarray, n_reference: int, n_anomaly: int
) -> np.ndarray:
    """0..1 per feature: how surely its own values moved between the windows -- its KS
    distance, or the change of its missing share, against the sampling noise of that many
    rows. 0 for a feature whose distribution held."""
    n, m = max(n_reference, 1), max(n_anomaly, 1)
    k = np.nan_to_num(ks, nan=0.0) * np.sqrt(n * m / (n + m))
    p = np.clip(np.nan_to_num(null_rate, nan=0.0), 1e-6, 1 - 1e-6)
    z = np.nan_to_num(d_null, nan=0.0) / np.sqrt(p * (1 - p) * (1 / n + 1 / m))
    return np.maximum(_ramp(k, *OWN_KS), _ramp(z, *OWN_NULL_Z))


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _fmt(x: float, spec: str = ".2f") -> str:
    return format(x, spec) if np.isfinite(x) else "n/a"


# -- the ranking ------------------------------------------------------------------------------


def rank_features(
    serving: FrameLike,
    *,
    model: str,
    feature_names: Sequence[str],
    onset: Any,
    reference: tuple[Any, Any] | None = None,
    anomaly: tuple[Any, Any] | None = None,
    program: Any = None,
    sample_rows: int = 2048,
    seed: int = 0,
    ts: str = c.TS,
    every: str | None = None,
    n_bins: int = 10,
    experiment: str | None = None,
    window_drift: WindowDrift | None = None,
) -> FeatureRanking:
    """Rank ``model``'s features by how responsible they are for its prediction shift.

    ``anomaly`` defaults to [onset, last row of the model]; ``reference`` to a window of the
    same length right before ``onset`` (clipped to the data). ``program`` (an ExportedProgram
    or nn.Module taking the features in ``feature_names`` order) enables the ablation evidence;
    ``sample_rows`` rows per window are sampled for it, deterministically for ``seed`` (the
    sample grows while the bootstrapped top-k is unstable). ``every`` is the bucket width of
    the correlation series (chosen from the window lengths when None). ``experiment``
    restricts the rows to one experiment of the model (all of them when None).
    ``window_drift`` (e.g. ``Workspace.feature_drift`` of a profile's sketches, which see every
    row where ``serving`` is a sample) answers the window-level drift of the two windows in
    place of the rows; the time series, correlation and ablation still use the rows.
    """
    features = list(dict.fromkeys(str(f) for f in feature_names))
    if not features:
        raise ValueError("feature_names: is empty; pass ws.features(model)")
    if len(features) != len(list(feature_names)):
        raise ValueError("feature_names: contains duplicates")
    lf = as_lazy(serving)
    schema = lf.collect_schema()
    _check_columns(schema, ts, features)
    onset_t = _utc(onset, "onset")
    lf = _model_rows(lf, schema, model, experiment)
    ref, anom = _resolve_windows(lf, ts, model, onset_t, reference, anomaly)
    rows = _load_rows(lf, schema, ts, features, model, ref, anom)
    notes = list(rows.notes)
    drift = _window_level_drift(rows, features, n_bins, seed, window_drift, (ref, anom))
    series = _correlation_series(rows, features, drift, n_bins, every, anom[1] - anom[0], notes)
    imp = _ablation(program, rows, drift, features, sample_rows, seed, notes)
    scored = _combine(drift, series.corr, imp, notes)
    table = _table(features, drift, series.corr, imp, scored)
    return FeatureRanking(
        model=model,
        table=table,
        method=scored.method,
        used_program=imp is not None,
        onset=onset_t,
        reference=ref,
        anomaly=anom,
        every=series.every,
        n_reference_rows=int(rows.in_ref.sum()),
        n_anomaly_rows=int(rows.in_anom.sum()),
        prediction_psi=float(drift.pred_psi),
        prediction_shift=drift.pred_shift,
        topk_stability=float(scored.stability),
        attribution_rows=int(scored.attribution_rows),
        series=series.frame,
        notes=tuple(notes),
        importance=imp,
        drift_source=drift.source,
        drift_error=drift.error,
    )


# -- phase 1: the rows of the two windows ------------------------------------------------------


def _model_rows(
    lf: pl.LazyFrame, schema: pl.Schema, model: str, experiment: str | None
) -> pl.LazyFrame:
    lf = lf.filter(pl.col(c.MODEL) == model)
    if experiment is None:
        return lf
    if c.EXPERIMENT not in schema:
        raise WorkspaceError(
            f"serving, column '{c.EXPERIMENT}'", "is missing", fix="pass experiment=None"
        )
    return lf.filter(pl.col(c.EXPERIMENT) == experiment)


def _resolve_windows(
    lf: pl.LazyFrame,
    ts: str,
    model: str,
    onset_t: dt.datetime,
    reference: tuple[Any, Any] | None,
    anomaly: tuple[Any, Any] | None,
) -> tuple[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]]:
    """(reference, anomaly) windows: the given ones, checked, or the defaults the model's
    own rows imply (anomaly from the onset to its last row, reference as long, before)."""
    if anomaly is None or reference is None:
        span = collect(lf.select(pl.col(ts).min().alias("lo"), pl.col(ts).max().alias("hi")))
        lo, hi = span["lo"][0], span["hi"][0]
        if lo is None:
            raise WorkspaceError(
                "serving",
                f"has no rows for model '{model}'",
                fix="pick a model from ws.models() (the triage's degraded model)",
            )
        lo, hi = _utc(lo, "first ts"), _utc(hi, "last ts")
    anom = (
        _window(anomaly, "anomaly")
        if anomaly is not None
        else _window((onset_t, max(hi, onset_t) + dt.timedelta(microseconds=1)), "anomaly")
    )
    if reference is not None:
        ref = _window(reference, "reference")
    else:
        length = anom[1] - anom[0]
        ref = (max(lo, anom[0] - length), anom[0])
        if not ref[0] < ref[1]:
            raise WorkspaceError(
                "serving",
                f"has no rows of model '{model}' before the onset {onset_t}",
                fix="pass reference=(start, end) naming a window of normal behaviour",
            )
    if ref[0] < anom[1] and anom[0] < ref[1]:
        raise ValueError(f"reference {ref} and anomaly {anom} overlap; pass disjoint windows")
    return ref, anom


@dataclass(frozen=True)
class _Rows:
    """The model's rows of both windows, in time order, as arrays."""

    start: dt.datetime  # the earlier window's start
    end: dt.datetime  # the later window's end
    t_us: np.ndarray
    in_ref: np.ndarray
    in_anom: np.ndarray
    X: np.ndarray  # rows x features, nulls as NaN
    nulls: np.ndarray  # rows x features, True where null
    pred: np.ndarray
    notes: tuple[str, ...]


def _load_rows(
    lf: pl.LazyFrame,
    schema: pl.Schema,
    ts: str,
    features: list[str],
    model: str,
    ref: tuple[dt.datetime, dt.datetime],
    anom: tuple[dt.datetime, dt.datetime],
) -> _Rows:
    start, end = min(ref[0], anom[0]), max(ref[1], anom[1])
    df = collect(
        lf.filter((pl.col(ts) >= start) & (pl.col(ts) < end))
        .select(
            pl.col(ts).dt.convert_time_zone("UTC").dt.epoch("us").alias("__us")
            if schema[ts].time_zone is not None
            else pl.col(ts).dt.epoch("us").alias("__us"),
            pl.col(c.PREDICTION).cast(pl.Float64),
            *[pl.col(f).cast(pl.Float64) for f in features],
        )
        # rows in time order (then by value for ties): the sampling below picks rows by
        # position, so the same rows in another order (a profile's sample, a log written by
        # another engine) must rank the same
        .sort(["__us", c.PREDICTION, *features], nulls_last=True, maintain_order=True)
    )
    t_us = df["__us"].to_numpy()
    in_ref = (t_us >= _us(ref[0])) & (t_us < _us(ref[1]))
    in_anom = (t_us >= _us(anom[0])) & (t_us < _us(anom[1]))
    for name, w, mask in (("reference", ref, in_ref), ("anomaly", anom, in_anom)):
        if not mask.any():
            raise WorkspaceError(
                f"serving, {name} window {w[0]} .. {w[1]}",
                f"has no rows of model '{model}'",
                fix=f"pass {name}=(start, end) covering rows of this model",
            )
    nulls = df.select([pl.col(f).is_null().alias(f) for f in features]).to_numpy()
    X = df.select(features).to_numpy()  # nulls -> NaN
    all_missing = [
        f for j, f in enumerate(features) if not np.isfinite(X[in_ref | in_anom, j]).any()
    ]
    if len(all_missing) == len(features):
        raise WorkspaceError(
            "serving",
            f"features {all_missing[:10]} have no finite value for model '{model}' in either window",
            fix="check feature_names: they should be the model's inputs (ws.features(model))",
        )
    notes = (f"no finite values in either window: {all_missing}",) if all_missing else ()
    pred = df[c.PREDICTION].to_numpy()
    return _Rows(start, end, t_us, in_ref, in_anom, X, nulls, pred, notes)


# -- phase 2: window-level drift ---------------------------------------------------------------


@dataclass(frozen=True)
class _Drift:
    """Window-level drift per feature, and the (sub)sampled rows it was measured on."""

    ri: np.ndarray  # reference rows used (at most MAX_DRIFT_ROWS)
    ai: np.ndarray  # anomaly rows used
    dist: np.ndarray  # (features, 4): psi, wasserstein, ks, mean_shift
    null_before: np.ndarray
    null_after: np.ndarray
    nonfin_before: np.ndarray
    nonfin_after: np.ndarray
    pred_psi: float
    pred_shift: float  # mean prediction, anomaly - reference (finite predictions)
    source: str
    error: dict[str, float]


def _window_level_drift(
    rows: _Rows,
    features: list[str],
    n_bins: int,
    seed: int,
    window_drift: WindowDrift | None,
    windows: tuple[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]],
) -> _Drift:
    """PSI, W1, KS and mean shift per feature between the windows, on at most
    MAX_DRIFT_ROWS rows of each (or ``window_drift``'s answer for the two windows)."""
    rng = np.random.default_rng(seed)
    ri, ai = np.flatnonzero(rows.in_ref), np.flatnonzero(rows.in_anom)
    if ri.size > MAX_DRIFT_ROWS:
        ri = np.sort(rng.choice(ri, MAX_DRIFT_ROWS, replace=False))
    if ai.size > MAX_DRIFT_ROWS:
        ai = np.sort(rng.choice(ai, MAX_DRIFT_ROWS, replace=False))
    X, nulls, pred = rows.X, rows.nulls, rows.pred
    nf = len(features)
    pred_psi = distances(pred[ri], pred[ai], n_bins=n_bins)[0]
    null_before = nulls[rows.in_ref].mean(axis=0)
    null_after = nulls[rows.in_anom].mean(axis=0)
    nonfin_before = (~np.isfinite(X[rows.in_ref])).mean(axis=0) - null_before
    nonfin_after = (~np.isfinite(X[rows.in_anom])).mean(axis=0) - null_after
    source, error = "rows", {"ks": 0.0, "psi": 0.0, "wasserstein": 0.0}
    if window_drift is None:
        dist = np.array([distances(X[ri, j], X[ai, j], n_bins=n_bins) for j in range(nf)])
        dist = dist.reshape(nf, 4)
    else:
        given = _given_drift(window_drift(*windows), features)
        dist = given.distances
        null_before, null_after, nonfin_before, nonfin_after = given.rates
        source, error = given.source, given.error
    pf_ref, pf_anom = pred[rows.in_ref], pred[rows.in_anom]
    pred_shift = (
        float(np.mean(pf_anom[np.isfinite(pf_anom)]) - np.mean(pf_ref[np.isfinite(pf_ref)]))
        if np.isfinite(pf_anom).any() and np.isfinite(pf_ref).any()
        else float("nan")
    )
    return _Drift(
        ri,
        ai,
        dist,
        null_before,
        null_after,
        nonfin_before,
        nonfin_after,
        float(pred_psi),
        pred_shift,
        source,
        error,
    )


# -- phase 3: time-aggregated correlation with the prediction's drift ---------------------------


@dataclass(frozen=True)
class _Series:
    every: str  # bucket width
    corr: np.ndarray  # per feature: Spearman of its bucket PSI with the prediction's
    frame: pl.DataFrame  # long: ts, feature, psi, mean, rows


def _correlation_series(
    rows: _Rows,
    features: list[str],
    drift: _Drift,
    n_bins: int,
    every: str | None,
    anomaly_length: dt.timedelta,
    notes: list[str],
) -> _Series:
    """Per-bucket PSI of each feature and of the predictions, and how they correlate."""
    start, end = rows.start, rows.end
    if every is None:
        every_name, width = _choose_bucket(end - start, anomaly_length)
    else:
        width = pl.select(pl.duration(**_duration_kwargs(every))).item()
        every_name = every
    width_us = max(int(width / dt.timedelta(microseconds=1)), 1)
    used = rows.in_ref | rows.in_anom
    bucket_all = (rows.t_us - _us(start)) // width_us
    n_buckets = int(bucket_all.max()) + 1
    bucket = bucket_all[used]
    ref_u = rows.in_ref[used]
    counts = np.bincount(bucket, minlength=n_buckets)
    good = counts >= MIN_BUCKET_ROWS
    X, pred, ri = rows.X, rows.pred, drift.ri
    pred_series = _bucket_psi(pred[used], pred[ri], ref_u, bucket, n_buckets, n_bins)
    corr = np.full(len(features), np.nan)
    starts = [
        dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        + dt.timedelta(microseconds=_us(start) + b * width_us)
        for b in range(n_buckets)
    ]

    def part(name: str, psi: np.ndarray, values: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ts": starts,
                "feature": name,
                "psi": psi,
                "mean": _bucket_mean(values, bucket, n_buckets),
                "rows": counts,
            }
        )

    parts = [part(c.PREDICTION, pred_series, pred[used])]
    for j, f in enumerate(features):
        xs = X[used, j]
        s = _bucket_psi(xs, X[ri, j], ref_u, bucket, n_buckets, n_bins)
        corr[j] = _corr(s[good], pred_series[good])
        parts.append(part(f, s, xs))
    frame = pl.concat(parts).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    if int(good.sum()) < 4:
        notes.append(
            f"only {int(good.sum())} time buckets of {every_name} with data: correlation not computed"
        )
    return _Series(every_name, corr, frame)


# -- phase 4: ablation importance shift --------------------------------------------------------


def _ablation(
    program: Any,
    rows: _Rows,
    drift: _Drift,
    features: list[str],
    sample_rows: int,
    seed: int,
    notes: list[str],
) -> ImportanceShift | None:
    if program is None:
        return None
    imp = importance_shift(
        program,
        rows.X[drift.ri].astype(np.float32),  # the windows' (sub)samples: ablation samples these
        rows.X[drift.ai].astype(np.float32),
        feature_names=features,
        sample_rows=sample_rows,
        max_rows=max(sample_rows, 4 * sample_rows),
        seed=seed,
    )
    if imp.before.n_nonfinite_outputs or imp.after.n_nonfinite_outputs:
        notes.append(
            f"non-finite predictions/attributions on {imp.before.n_nonfinite_outputs} reference "
            f"and {imp.after.n_nonfinite_outputs} anomaly sampled rows (left out of the means)"
        )
    return imp


# -- phase 5: one score per feature ------------------------------------------------------------


@dataclass(frozen=True)
class _Scores:
    score: np.ndarray
    confidence: np.ndarray
    drift_mag: np.ndarray
    e_share: np.ndarray  # share of the prediction shift each feature carries (NaN: no program)
    method: str
    stability: float
    attribution_rows: int


def _combine(
    drift: _Drift, corr: np.ndarray, imp: ImportanceShift | None, notes: list[str]
) -> _Scores:
    """A feature's drift counts in proportion to its importance; its correlation and its
    importance shift only where its own values moved."""
    psi_v, w1_v, ks_v, _ = drift.dist.T
    d_null = np.abs(drift.null_after - drift.null_before) + np.abs(
        drift.nonfin_after - drift.nonfin_before
    )
    drift_mag = np.clip(
        np.maximum.reduce([_squash(psi_v, PSI_SCALE), _squash(w1_v, W1_SCALE), d_null]), 0, 1
    )
    own = own_change(
        ks_v,
        d_null,
        (drift.null_before + drift.null_after + drift.nonfin_before + drift.nonfin_after) / 2,
        drift.ri.size,
        drift.ai.size,
    )
    # a feature whose own values did not move carries no shift of its own: its bucket PSI
    # series is noise (any correlation with the predictions' is chance), and its importance
    # moved only because other inputs moved (one program scores both windows)
    corr_pos = np.clip(np.nan_to_num(corr, nan=0.0), 0, 1) * own
    if imp is None:
        notes.append(
            "no program: ranked by drift and its correlation with the prediction drift only; "
            "features that changed at the same moment cannot be told apart"
        )
        return _Scores(
            score=drift_mag * (0.4 + 0.6 * corr_pos),
            confidence=np.clip(0.5 * drift_mag * corr_pos, 0, 0.5),
            drift_mag=drift_mag,
            e_share=np.full(len(corr), np.nan),
            method="distribution only (no program given)",
            stability=float("nan"),
            attribution_rows=0,
        )
    ib, ia = imp.before.importance, imp.after.importance
    top_imp = float(np.nanmax(np.maximum(ib, ia))) if np.isfinite(np.maximum(ib, ia)).any() else 0.0
    top_imp = top_imp if top_imp > 0 else 1.0
    weight = np.nan_to_num(np.maximum(ib, ia) / top_imp, nan=0.0)
    i_shift = np.clip(np.nan_to_num(np.abs(imp.shift) / top_imp, nan=0.0), 0, 1) * own
    expl = np.nan_to_num(np.abs(imp.explained_shift), nan=0.0) * own
    denom = max(
        abs(imp.prediction_shift) if np.isfinite(imp.prediction_shift) else 0.0,
        float(expl.sum()),
        1e-12,
    )
    e_share = np.clip(expl / denom, 0, 1)
    score = 0.35 * e_share + 0.25 * i_shift + 0.25 * drift_mag * weight + 0.15 * corr_pos * weight
    strength = np.clip(np.maximum.reduce([e_share, i_shift, drift_mag * weight]), 0, 1)
    freq = np.nan_to_num(imp.top_frequency, nan=0.0)
    return _Scores(
        score=score,
        confidence=np.clip(freq * own * (0.5 + 0.5 * strength), 0, 1),
        drift_mag=drift_mag,
        e_share=e_share,
        method="distribution + ablation",
        stability=imp.topk_stability,
        attribution_rows=imp.n_rows,
    )


# -- phase 6: the table ------------------------------------------------------------------------


def _evidence(
    j: int, drift: _Drift, corr: np.ndarray, imp: ImportanceShift | None, e_share: np.ndarray
) -> str:
    """One feature's evidence, in words a ticket can quote."""
    psi, w1 = drift.dist[j, 0], drift.dist[j, 1]
    parts = [f"PSI {_fmt(psi)}", f"W1 {_fmt(w1)} IQR"]
    if abs(drift.null_after[j] - drift.null_before[j]) >= 0.01:
        parts.append(f"null {drift.null_before[j]:.0%}->{drift.null_after[j]:.0%}")
    if np.isfinite(corr[j]):
        parts.append(f"corr {corr[j]:.2f} with prediction drift")
    if imp is not None:
        before, after = imp.before.importance[j], imp.after.importance[j]
        parts.append(f"importance {_fmt(before, '.3g')}->{_fmt(after, '.3g')}")
        if e_share[j] >= 0.05:
            parts.append(f"carries {e_share[j]:.0%} of the prediction shift")
    return "; ".join(parts)


def _table(
    features: list[str],
    drift: _Drift,
    corr: np.ndarray,
    imp: ImportanceShift | None,
    scored: _Scores,
) -> pl.DataFrame:
    nf = len(features)
    psi_v, w1_v, ks_v, ms_v = drift.dist.T
    nanv = np.full(nf, np.nan)
    order = np.lexsort((-scored.drift_mag, -np.nan_to_num(scored.score, nan=-1.0)))
    rank = np.empty(nf, dtype=np.int64)
    rank[order] = np.arange(1, nf + 1)
    return pl.DataFrame(
        {
            "feature": features,
            "rank": rank,
            "score": scored.score,
            "confidence": scored.confidence,
            "drift_psi": psi_v,
            "drift_wasserstein": w1_v,
            "drift_ks": ks_v,
            "mean_shift": ms_v,
            "corr_with_prediction": corr,
            "importance_before": imp.before.importance if imp is not None else nanv,
            "importance_after": imp.after.importance if imp is not None else nanv,
            "importance_shift": imp.shift if imp is not None else nanv,
            "explained_shift": imp.explained_shift if imp is not None else nanv,
            "explained_share": scored.e_share,
            "null_rate_before": drift.null_before,
            "null_rate_after": drift.null_after,
            "nonfinite_rate_before": drift.nonfin_before,
            "nonfinite_rate_after": drift.nonfin_after,
            "evidence": [_evidence(j, drift, corr, imp, scored.e_share) for j in range(nf)],
        },
        schema=_COLUMNS,
    ).sort("rank")


@dataclass(frozen=True)
class _GivenDrift:
    distances: np.ndarray  # (features, 4): psi, wasserstein, ks, mean_shift
    rates: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # null/non-finite, before/after
    source: str
    error: dict[str, float]


#: the columns of a window_drift answer the ranking reads: distances, then null/non-finite rates
_RATES = tuple(f"{k}_rate_{w}" for k in ("null", "nonfinite") for w in ("reference", "current"))
_GIVEN = ("psi", "wasserstein", "ks", "mean_shift", *_RATES)


def _given_drift(frame: pl.DataFrame, features: list[str]) -> _GivenDrift:
    """A ``window_drift`` answer, checked and in ``features`` order (NaN for a feature it
    lacks: a feature without finite values in a window has no distances either way)."""
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"window_drift: returned {type(frame).__name__}, not a polars DataFrame")
    missing = [col for col in ("feature", *_GIVEN) if col not in frame.columns]
    if missing:
        raise ValueError(f"window_drift: its answer lacks columns {missing}")
    df = pl.DataFrame({"feature": features}).join(
        frame.select("feature", *[pl.col(col).cast(pl.Float64) for col in _GIVEN]),
        on="feature",
        how="left",
    )
    vals = {col: df[col].fill_null(np.nan).to_numpy() for col in _GIVEN}
    errors = {}
    for k in ("ks", "psi", "wasserstein"):
        col = f"{k}_error"
        err = (
            frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy() if col in frame.columns else []
        )
        errors[k] = float(np.nanmax(np.r_[0.0, err]))
    source = str(frame["source"][0]) if "source" in frame.columns and frame.height else "given"
    return _GivenDrift(
        np.column_stack([vals[k] for k in _GIVEN[:4]]),
        tuple(np.nan_to_num(vals[k], nan=0.0) for k in _GIVEN[4:]),  # type: ignore[arg-type]
        source,
        errors,
    )


def _duration_kwargs(every: str) -> dict[str, int]:
    """'90m' / '1h' / '2d' / '30s' -> keyword arguments of pl.duration."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    num, unit = every[:-1], every[-1:]
    if unit not in units or not num.isdigit() or int(num) <= 0:
        raise ValueError(f"every: expected e.g. '30m', '1h' or '1d', got {every!r}")
    return {units[unit]: int(num)}

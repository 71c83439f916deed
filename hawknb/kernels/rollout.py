"""Snapshot isolation: did a snapshot rollout cause the degradation, or only coincide with it?

A new snapshot that ramps up at the onset is the obvious suspect, and often an innocent one:
incidents that hit every snapshot (an upstream feature breaks, traffic shifts) also start at
some hour, and rollouts happen every day. Two pieces of evidence separate the cases:

* same-hours A/B: while two snapshots serve the same (model, experiment) in the same windows,
  anything that varies with time hits both; the per-window *paired* difference of their health
  isolates the snapshot itself. A benign snapshot's paired difference is ~0 even in the middle
  of a time-wide incident.
* dose-response: a bad snapshot's harm to the (model, experiment) grows with its traffic share,
  so share x paired difference should account for the total post-onset degradation
  ("explained"). A real but tiny snapshot difference during a large incident explains little.

Timing (a ramp event at or just before the onset) ranks suspects but never convicts alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace.contract import EXPERIMENT, MODEL, SNAPSHOT, TRAFFIC, TS
from ..workspace.errors import WorkspaceError
from .health import HEALTH_SERIES, WORSE_WHEN_HIGHER
from .isolation import Shift, _from_us, _to_us, seasonal_baseline, series_shift, strength

#: share increase between consecutive health windows that counts as a ramp without rollouts
_RAMP_STEP = 0.2
#: cause score above which a snapshot is convicted
_CAUSE = 0.5
#: explained factor used when the total degradation of a series is unknown or not a degradation
_UNKNOWN_EXPLAINED = 0.4
#: earlier snapshots with shared hours needed before their differences set the chance level
_MIN_HISTORY = 3
#: fewest same-hour windows for a paired A/B test
_MIN_SHARED = 3
#: reference windows needed to borrow a per-window noise level for a short overlap
_MIN_REFERENCE = 4
#: how much the borrowed noise level is inflated: with one or two windows of a few rows, a
#: normal approximation is optimistic (squared-error series are heavy-tailed), so only a gross
#: difference may convict
_FEW_WINDOWS_INFLATION = 2.0


def _few_windows_z(
    d: np.ndarray,
    hw: np.ndarray,
    delta: float,
    n_j: np.ndarray,
    n_o: np.ndarray,
    other_v: np.ndarray,
    other_n: np.ndarray,
    reference: np.ndarray,
    level: float,
) -> float:
    """z of a paired difference seen in fewer than ``_MIN_SHARED`` windows.

    A canary that serves 15-30 minutes before a full cut-over leaves one or two shared health
    windows, too few to estimate the spread of the paired differences themselves; without a z
    such a snapshot could not be convicted even when its predictions are off by orders of
    magnitude, and the A/B read as "no difference". The noise level is borrowed instead from
    the other snapshots' own window-to-window variation before the onset (robust, from first
    differences, so slow drifts and seasonality do not inflate it), rescaled to each shared
    window's row counts on both sides and inflated by ``_FEW_WINDOWS_INFLATION``.

    ``d``/``hw``/``n_j``/``n_o`` are the shared windows' paired differences, weights and row
    counts of the snapshot and of the others; ``other_v``/``other_n`` the others' series and
    rows over every window, ``reference`` the windows to learn the noise from.
    """
    ref = reference & np.isfinite(other_v) & (other_n > 0)
    x = other_v[ref]
    if x.size < _MIN_REFERENCE or d.size == 0:
        return math.nan
    step_sd = 1.4826 * float(np.median(np.abs(np.diff(x)))) / math.sqrt(2.0)
    rows_ref = float(np.median(other_n[ref]))
    if not math.isfinite(step_sd) or rows_ref <= 0:
        return math.nan
    per_row_var = step_sd**2 * rows_ref  # the variance a single row would contribute
    var_t = per_row_var * (1.0 / np.maximum(n_j, 1.0) + 1.0 / np.maximum(n_o, 1.0))
    weights = hw if hw.sum() > 0 else np.ones_like(d)
    se = math.sqrt(float(np.sum(weights**2 * var_t))) / float(weights.sum())
    se = max(_FEW_WINDOWS_INFLATION * se, 1e-3 * level / math.sqrt(d.size), 1e-12)
    return delta / se


def _check_rollouts(lf: pl.LazyFrame) -> pl.DataFrame:
    schema = lf.collect_schema()
    need = [TS, MODEL, EXPERIMENT, SNAPSHOT, TRAFFIC]
    missing = [col for col in need if col not in schema]
    if missing:
        raise WorkspaceError(
            "the rollouts table",
            f"is missing columns {missing}",
            expected=f"columns {need}",
            found=f"columns {list(schema.names())}",
            fix="pass ws.table('rollouts')",
        )
    df = collect(
        lf.select(
            pl.col(TS).cast(pl.Datetime("us", "UTC")),
            pl.col(MODEL).cast(pl.String),
            pl.col(EXPERIMENT).cast(pl.String),
            pl.col(SNAPSHOT).cast(pl.String),
            pl.col(TRAFFIC).cast(pl.Float64),
        )
    )
    bad = df.filter(~pl.col(TRAFFIC).is_between(0.0, 1.0) | pl.col(TRAFFIC).is_null())
    if bad.height:
        raise WorkspaceError(
            "the rollouts table, column 'traffic'",
            "has shares outside [0, 1]",
            found=f"{bad.height} rows, e.g. {bad.row(0)}",
            fix="store traffic as a share of the (model, experiment) traffic in [0, 1]",
        )
    dup = df.group_by(TS, MODEL, EXPERIMENT, SNAPSHOT).len().filter(pl.col("len") > 1)
    if dup.height:
        raise WorkspaceError(
            "the rollouts table",
            "lists a snapshot twice at the same ts",
            found=str(dup.row(0)[:4]),
            fix="keep one row per (ts, model, experiment, snapshot)",
        )
    return df


def rollout_timeline(rollouts: object) -> pl.DataFrame:
    """The rollouts as step series: at every rollout ts of a (model, experiment), one row per
    snapshot that ever served it, with traffic 0 where the snapshot was not listed.

    Columns ts, model, experiment, snapshot, traffic; each row holds from its ts until the next
    ts of the same (model, experiment). Filling the zeros is what makes a drained snapshot's
    line drop instead of hanging at its last share.
    """
    df = _check_rollouts(as_lazy(rollouts))
    events = df.select(MODEL, EXPERIMENT, TS).unique()
    snaps = df.select(MODEL, EXPERIMENT, SNAPSHOT).unique()
    return (
        events.join(snaps, on=[MODEL, EXPERIMENT])
        .join(df, on=[TS, MODEL, EXPERIMENT, SNAPSHOT], how="left")
        .with_columns(pl.col(TRAFFIC).fill_null(0.0))
        .select(TS, MODEL, EXPERIMENT, SNAPSHOT, TRAFFIC)
        .sort(MODEL, EXPERIMENT, SNAPSHOT, TS)
    )


@dataclass(frozen=True)
class SnapshotIsolation:
    """Verdict of snapshot isolation for one (model, experiment).

    suspect: the convicted snapshot, or None ("not the snapshot"); is_snapshot_cause;
    confidence (0..1) in the verdict as stated (that the suspect is the cause, or that no
    snapshot is); rolled_out: the snapshot whose ramp is nearest the onset (convicted or not);
    snapshots: one row per snapshot (share_before, share_after, ramp_ts, timing,
    shared_windows, series, value, others, delta, z, chance_z, history, explained,
    dose_response, cause_score; chance_z is delta over the spread of earlier snapshots'
    same-hours differences, history how many earlier snapshots set that spread);
    evidence: the same statistics per (snapshot, series); notes: plain-language reasons.
    """

    model: str
    experiment: str
    suspect: str | None
    is_snapshot_cause: bool
    confidence: float
    rolled_out: str | None
    snapshots: pl.DataFrame
    evidence: pl.DataFrame
    notes: tuple[str, ...] = field(default=())


def _badness(series: str, x: np.ndarray) -> np.ndarray:
    """Put a series on a 'higher is worse' scale where one exists; calibration is worse the
    further it is from 1 on a log scale; mean prediction keeps its sign (no intrinsic good)."""
    if series == "calibration":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.abs(np.log(np.where(x > 0, x, 1.0))), np.nan)
    return x


def _ramp_events(
    timeline: pl.DataFrame | None,
    snap: str,
    windows: np.ndarray,
    share: np.ndarray,
) -> list[int]:
    """UTC-microsecond times at which the snapshot's share went up."""
    if timeline is not None:
        t = timeline.filter(pl.col(SNAPSHOT) == snap).sort(TS)
        if t.height:
            us = t[TS].cast(pl.Int64).to_numpy()
            tr = t[TRAFFIC].to_numpy()
            prev = np.concatenate([[0.0], tr[:-1]])
            return [int(u) for u in us[tr > prev + 1e-9]]
    prev = np.concatenate([[0.0], share[:-1]])
    first = (share > 0) & (prev == 0)
    up = share - prev >= _RAMP_STEP
    return [int(u) for u in windows[first | up]]


def isolate_snapshot(
    rollouts: object | None,
    health_by_snapshot: object,
    *,
    model: str,
    experiment: str,
    onset: datetime,
    end: datetime,
    reference: timedelta = timedelta(days=7),
    series: tuple[str, ...] = HEALTH_SERIES,
) -> SnapshotIsolation:
    """Decide whether a snapshot of (model, experiment) caused the degradation in [onset, end].

    ``health_by_snapshot`` is ``prediction_health(serving, by_snapshot=True)`` output;
    ``rollouts`` the rollouts table (or None: ramps are then read from the serving shares).
    ``reference`` is how far before the onset to look for baselines and shared windows.

    Per snapshot S and health series: the paired same-window difference d of S against the
    other snapshots (rows-weighted) over every window both served in [onset - reference, end],
    its robust z (median / standard error from the MAD), capped by its chance z (delta over the
    spread of earlier snapshots' same-hours differences, when three or more earlier snapshots
    shared hours: every retrain differs a little), and explained = S's post-onset share *
    median d / the total post-onset shift of the (model, experiment). cause_score =
    strength(z) * (0.3 + 0.7 * timing of S's ramp nearest the onset) * explained. The best
    snapshot is convicted when its cause_score exceeds 0.5. Without same-hour overlap (a full
    cut-over) the verdict leans on timing and the total shift only, with confidence <= 0.4.
    """
    onset_us, end_us = _to_us(onset), _to_us(end)
    if end_us < onset_us:
        raise ValueError(f"end ({end}) is before onset ({onset}); pass end >= onset")
    h, present = _load_health(health_by_snapshot, model, experiment, series)
    timeline = None
    if rollouts is not None:
        tl = rollout_timeline(rollouts).filter(
            (pl.col(MODEL) == model) & (pl.col(EXPERIMENT) == experiment)
        )
        timeline = tl if tl.height else None
    ref_start_us = onset_us - int(reference / timedelta(microseconds=1))
    g = _grid(h, present, onset_us, end_us, ref_start_us)
    totals = _total_shifts(g, present, onset_us, end_us, ref_start_us)

    ev_rows = []
    snap_rows = []
    for j, snap in enumerate(g.snaps):
        timing, ramp_ts = _ramp_timing(g, j, snap, timeline, onset_us, end_us)
        best = None
        for s in present:
            row = _series_evidence(g, j, s, totals[s], timing, onset_us)
            row = {SNAPSHOT: snap, **row}
            ev_rows.append(row)
            if best is None or row["cause_score"] > best["cause_score"]:
                best = row
        assert best is not None
        snap_rows.append(
            {
                SNAPSHOT: snap,
                "share_before": float(np.nanmean(g.share[g.pre, j])) if g.pre.any() else None,
                "share_after": float(np.nanmean(g.share[g.post, j])) if g.post.any() else None,
                "ramp_ts": ramp_ts,
                "timing": timing,
                **{k: v for k, v in best.items() if k != SNAPSHOT},
            }
        )
    evidence, snap_df = _isolation_frames(ev_rows, snap_rows)
    return _verdict(model, experiment, snap_df, evidence, totals)


def _load_health(
    health_by_snapshot: object, model: str, experiment: str, series: tuple[str, ...]
) -> tuple[pl.DataFrame, list[str]]:
    """The (model, experiment)'s per-(window, snapshot) health rows and the series present."""
    lf = as_lazy(health_by_snapshot)
    schema = lf.collect_schema()
    for col in (MODEL, EXPERIMENT, SNAPSHOT, TS, "rows"):
        if col not in schema:
            raise ValueError(
                f"health_by_snapshot is missing column '{col}'; pass "
                "prediction_health(serving, by_snapshot=True)"
            )
    present = [s for s in series if s in schema]
    if not present:
        raise ValueError(f"health_by_snapshot has none of the series {list(series)}")
    weight_col = "labeled_rows" if "labeled_rows" in schema else "rows"
    h = collect(
        lf.filter((pl.col(MODEL) == model) & (pl.col(EXPERIMENT) == experiment)).select(
            pl.col(TS).cast(pl.Datetime("us", "UTC")).cast(pl.Int64).alias("_us"),
            pl.col(SNAPSHOT).cast(pl.String),
            pl.col("rows").cast(pl.Float64),
            pl.col(weight_col).cast(pl.Float64).alias("_lw"),
            *[pl.col(s).cast(pl.Float64) for s in present],
            *([pl.col("std_prediction").cast(pl.Float64)] if "std_prediction" in schema else []),
        )
    )
    if h.is_empty():
        raise ValueError(
            f"health_by_snapshot has no rows for model={model!r}, experiment={experiment!r}; "
            "check the names against the serving log"
        )
    return h, present


@dataclass
class _Grid:
    """Health as (window x snapshot) matrices, with the time masks the tests use."""

    windows: np.ndarray  # window starts, UTC microseconds
    snaps: list[str]
    rows: np.ndarray
    lw: np.ndarray  # label-weighted rows (labeled rows where known)
    std: np.ndarray | None  # std of the prediction, for the row-level test of the means
    vals: dict[str, np.ndarray]
    share: np.ndarray  # each snapshot's share of the window's rows
    step: int
    tolerance: int
    in_range: np.ndarray
    post: np.ndarray
    pre: np.ndarray

    def weights(self, series: str) -> np.ndarray:
        """Label-based series weigh by labeled rows, prediction-based ones by rows."""
        return self.lw if series in ("calibration", "ne", "log_loss") else self.rows


def _grid(
    h: pl.DataFrame, present: list[str], onset_us: int, end_us: int, ref_start_us: int
) -> _Grid:
    windows = np.unique(h["_us"].to_numpy())
    snaps = sorted(h[SNAPSHOT].unique().to_list())
    n_w, n_s = windows.size, len(snaps)
    wi = np.searchsorted(windows, h["_us"].to_numpy())
    si = np.searchsorted(np.asarray(snaps, dtype=object), h[SNAPSHOT].to_numpy())
    rows = np.zeros((n_w, n_s))
    rows[wi, si] = h["rows"].to_numpy()
    lw = np.zeros((n_w, n_s))
    lw[wi, si] = np.nan_to_num(h["_lw"].to_numpy())
    std = None
    if "std_prediction" in h.columns:
        std = np.full((n_w, n_s), np.nan)
        std[wi, si] = h["std_prediction"].to_numpy()
    vals = {}
    for s in present:
        m = np.full((n_w, n_s), np.nan)
        m[wi, si] = h[s].to_numpy()
        vals[s] = m
    step = int(np.median(np.diff(windows))) if n_w > 1 else 3_600_000_000
    return _Grid(
        windows=windows,
        snaps=snaps,
        rows=rows,
        lw=lw,
        std=std,
        vals=vals,
        share=rows / rows.sum(axis=1, keepdims=True),
        step=step,
        tolerance=max(2 * step, (end_us - onset_us) // 4),
        in_range=(windows >= ref_start_us) & (windows <= end_us),
        post=(windows >= onset_us) & (windows <= end_us),
        pre=(windows >= ref_start_us) & (windows < onset_us),
    )


def _total_shifts(
    g: _Grid, present: list[str], onset_us: int, end_us: int, ref_start_us: int
) -> dict[str, Shift | None]:
    """How much each series of the (model, experiment) as a whole moved at the onset."""
    totals: dict[str, Shift | None] = {}
    for s in present:
        w = g.weights(s)
        v = g.vals[s]
        ok = np.isfinite(v) & (w > 0)
        tot = np.where(ok, v * w, 0).sum(1) / np.where(ok, w, 0).sum(1).clip(min=1e-300)
        tot[~ok.any(1)] = np.nan
        totals[s] = series_shift(
            g.windows,
            _badness(s, tot),
            onset_us=onset_us,
            end_us=end_us,
            ref_start_us=ref_start_us,
            tolerance_us=g.tolerance,
        )
    return totals


def _ramp_timing(
    g: _Grid, j: int, snap: str, timeline: pl.DataFrame | None, onset_us: int, end_us: int
) -> tuple[float, datetime | None]:
    """How well the snapshot's ramp nearest the onset lines up with it (1: in the onset
    window, decaying with the distance) and that ramp's time."""
    ramps = [r for r in _ramp_events(timeline, snap, g.windows, g.share[:, j]) if r <= end_us]
    if not ramps:
        return 0.0, None
    ramp = min(ramps, key=lambda r: abs(r - onset_us))
    late = max(0, ramp - onset_us - g.step)  # a ramp within the onset window is on time
    early = max(0, onset_us - ramp)
    return math.exp(-(late + early) / g.tolerance), _from_us(ramp)


@dataclass
class _Paired:
    """The snapshot against the others in the windows both served (one health series)."""

    other_v: np.ndarray  # the other snapshots' rows-weighted value per window
    d_all: np.ndarray  # paired difference per window ('higher is worse' scale)
    hw_all: np.ndarray  # harmonic rows of the two sides per window
    shared: np.ndarray  # windows both served, in range, with a finite difference
    delta: float
    z: float


def _pooled(
    v: np.ndarray, w: np.ndarray, cols: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window: the weighted mean of snapshots ``cols`` (finite values only), their
    weights and the weights' sum."""
    ow = np.where(np.isfinite(v[:, cols]), w[:, cols], 0.0)
    osum = ow.sum(1)
    return (np.nan_to_num(v[:, cols]) * ow).sum(1) / np.where(osum > 0, osum, 1.0), ow, osum


def _harmonic_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per window: the effective sample size of a difference of two sides (harmonic rows);
    0 where either side is empty."""
    return np.where((a > 0) & (b > 0), a * b / np.maximum(a + b, 1e-12), 0.0)


def _deseasoned_total(g: _Grid, s: str) -> np.ndarray:
    """The (model, experiment)'s badness per window over all snapshots, minus its seasonal
    baseline from the reference windows."""
    w, v = g.weights(s), g.vals[s]
    tot = np.nansum(np.nan_to_num(v) * w, 1) / np.where(w.sum(1) > 0, w.sum(1), 1.0)
    tot = _badness(s, tot)
    base, _ = seasonal_baseline(g.windows, tot, g.pre & np.isfinite(tot))
    return tot - base


def _paired_test(g: _Grid, j: int, s: str) -> _Paired:
    """Paired same-window difference of snapshot j against the rest, and its z."""
    w, v = g.weights(s), g.vals[s]
    others = [k for k in range(len(g.snaps)) if k != j]
    other_v, ow, osum = _pooled(v, w, others)
    shared = g.in_range & (g.rows[:, j] > 0) & (osum > 0) & np.isfinite(v[:, j])
    d_all = _badness(s, v[:, j]) - _badness(s, other_v)
    # windows weigh by their effective sample size (a 10% ramp hour has few rows of the new
    # snapshot): harmonic rows of the two sides
    hw_all = _harmonic_rows(w[:, j], osum)
    shared &= np.isfinite(d_all)
    d = d_all[shared]
    n = d.size
    nj, no, hw = w[shared, j], osum[shared], hw_all[shared]
    z = math.nan
    if n and hw.sum() > 0:
        delta = float(np.average(d, weights=hw))
    else:
        delta = float(np.median(d)) if n else math.nan
    if s == "mean_prediction" and g.std is not None and n >= 1:
        # row-level test of the means: inverse-variance weighted paired difference (standard
        # errors from each side's row spread), so one shared ramp hour with many rows counts
        # as much as it should
        o_var = (np.nan_to_num(g.std[:, others]) ** 2 * ow).sum(1) / np.where(osum > 0, osum, 1.0)
        se2 = (g.std[:, j] ** 2 / np.maximum(g.rows[:, j], 1.0)) + (o_var / np.maximum(osum, 1.0))
        se2 = se2[shared]
        ok = np.isfinite(se2) & (se2 > 0)
        if ok.sum() >= 1:
            iw = 1.0 / se2[ok]
            delta = float(np.sum(d[ok] * iw) / iw.sum())
            z = delta * math.sqrt(iw.sum())
    elif n >= _MIN_SHARED:
        resid = d - delta
        mad = float(np.median(np.abs(resid))) * 1.4826
        spread = mad
        if hw.sum() > 0:
            spread = max(mad, math.sqrt(float(np.average(resid**2, weights=hw))))
        level = float(np.nanmedian(np.abs(other_v[shared]))) if n else 0.0
        se = max(1.2533 * spread / math.sqrt(n), 1e-3 * level / math.sqrt(n), 1e-12)
        z = delta / se
    elif n >= 1:
        level = float(np.nanmedian(np.abs(other_v[shared])))
        z = _few_windows_z(
            d, hw, delta, nj, no, _badness(s, other_v), osum, g.pre & g.in_range, level
        )
    return _Paired(other_v, d_all, hw_all, shared, delta, z)


def _explained(
    g: _Grid, j: int, s: str, pr: _Paired, total_shift: Shift | None, onset_us: int
) -> float | None:
    """Share of the (model, experiment)'s post-onset shift that the snapshot accounts for
    (share x paired difference / total), or None when the total is unknown or improved."""
    share_after = float(np.nanmean(g.share[g.post, j])) if g.post.any() else math.nan
    total = None if total_shift is None else total_shift.delta
    if total is None or math.isnan(pr.delta) or total == 0 or math.isnan(share_after):
        return None
    ratio = share_after * pr.delta / total
    explained = float(np.clip(ratio, 0.0, 1.0)) if math.isfinite(ratio) else None
    if explained is not None and s != "mean_prediction" and total < 0:
        return None  # the series improved overall: not what we are explaining
    # the same question on the shared hours alone (like with like: the total there is the
    # share-weighted mix the snapshot is part of), robust to drift after cut-over
    sh_post = pr.shared & (g.windows >= onset_us - g.step)
    if explained is not None and sh_post.sum() >= 2:
        moved = float(np.sum(_deseasoned_total(g, s)[sh_post] * pr.hw_all[sh_post]))
        mine = float(np.sum((g.share[:, j] * pr.d_all)[sh_post] * pr.hw_all[sh_post]))
        if moved * mine > 0 and abs(moved) > 0:
            explained = max(explained, float(np.clip(mine / moved, 0.0, 1.0)))
    return explained


def _dose_response(g: _Grid, j: int, s: str, delta: float) -> float | None:
    """Correlation of the snapshot's share with the (model, experiment)'s deseasoned badness:
    a bad snapshot's harm grows with its traffic."""
    rng = g.in_range & np.isfinite(g.vals[s]).any(1)
    tot_v = _deseasoned_total(g, s)
    rng = rng & np.isfinite(tot_v)
    if rng.sum() >= 4 and np.std(g.share[rng, j]) > 0 and np.std(tot_v[rng]) > 0:
        sign = 1.0 if s in WORSE_WHEN_HIGHER else (np.sign(delta) or 1.0)
        return float(sign * np.corrcoef(g.share[rng, j], tot_v[rng])[0, 1])
    return None


def _history_deltas(g: _Grid, j: int, s: str) -> np.ndarray:
    """Each other snapshot's same-window difference against the rest, over the windows it
    shared with them outside the incident window (before it or after it) and without
    snapshot j: how much two snapshots of this (model, experiment) usually differ. One value
    per snapshot."""
    w, v = g.weights(s), g.vals[s]
    before = ~g.post & ~(g.rows[:, j] > 0)
    out = []
    for a in range(len(g.snaps)):
        if a == j:
            continue
        other_v, _, osum = _pooled(v, w, [k for k in range(len(g.snaps)) if k not in (a, j)])
        d = _badness(s, v[:, a]) - _badness(s, other_v)
        hw = _harmonic_rows(w[:, a], osum)
        ok = before & (hw > 0) & np.isfinite(d)
        if ok.any():
            out.append(float(np.average(d[ok], weights=hw[ok])))
    return np.asarray(out)


def _chance_z(g: _Grid, j: int, s: str, delta: float) -> tuple[float, int]:
    """The snapshot's paired difference over the spread of the differences between earlier
    snapshots of the same (model, experiment) in the hours they shared outside the incident
    window (robust, about zero),
    and how many earlier snapshots set it; nan when fewer than ``_MIN_HISTORY`` did.

    The row-level z asks whether the snapshot differs from the others at all; every retrain
    does, a little, and with thousands of rows that is "significant". Whether it differs more
    than snapshots of this model usually differ from each other is the question a rollout's
    A/B has to answer before it can convict."""
    past = _history_deltas(g, j, s)
    past = past[np.isfinite(past)]
    if past.size < _MIN_HISTORY or math.isnan(delta):
        return math.nan, int(past.size)
    scale = 1.4826 * float(np.median(np.abs(past)))
    if not scale > 0:
        return math.nan, int(past.size)
    return delta / scale, int(past.size)


def _series_evidence(
    g: _Grid, j: int, s: str, total_shift: Shift | None, timing: float, onset_us: int
) -> dict:
    """One (snapshot, series) evidence row, with its cause score: the paired z, capped by how
    the difference compares with earlier snapshots' differences (chance correction)."""
    pr = _paired_test(g, j, s)
    chance_z, history = _chance_z(g, j, s, pr.delta)
    if math.isnan(pr.z):
        worse_z = 0.0
    else:
        worse_z = abs(pr.z) if s == "mean_prediction" else pr.z
    if not math.isnan(chance_z):
        worse_z = min(worse_z, abs(chance_z) if s == "mean_prediction" else chance_z)
    explained = _explained(g, j, s, pr, total_shift, onset_us)
    ex_factor = _UNKNOWN_EXPLAINED if explained is None else explained
    dose = _dose_response(g, j, s, pr.delta)
    shared, v = pr.shared, g.vals[s]
    return {
        "series": s,
        "shared_windows": int(shared.sum()),
        "value": float(np.median(v[shared, j])) if shared.any() else None,
        "others": float(np.median(pr.other_v[shared])) if shared.any() else None,
        "delta": None if math.isnan(pr.delta) else pr.delta,
        "z": None if math.isnan(pr.z) else float(pr.z),
        "chance_z": None if math.isnan(chance_z) else float(chance_z),
        "history": history,
        "explained": explained,
        "dose_response": dose,
        "cause_score": strength(worse_z) * (0.3 + 0.7 * timing) * ex_factor,
    }


_EVIDENCE_SCHEMA = {
    SNAPSHOT: pl.String,
    "series": pl.String,
    "shared_windows": pl.Int64,
    "value": pl.Float64,
    "others": pl.Float64,
    "delta": pl.Float64,
    "z": pl.Float64,
    "chance_z": pl.Float64,
    "history": pl.Int64,
    "explained": pl.Float64,
    "dose_response": pl.Float64,
    "cause_score": pl.Float64,
}


def _isolation_frames(
    ev_rows: list[dict], snap_rows: list[dict]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    evidence = pl.DataFrame(ev_rows, schema=_EVIDENCE_SCHEMA)
    snap_df = pl.DataFrame(
        snap_rows,
        schema={
            SNAPSHOT: pl.String,
            "share_before": pl.Float64,
            "share_after": pl.Float64,
            "ramp_ts": pl.Datetime("us", "UTC"),
            "timing": pl.Float64,
            **{k: v for k, v in _EVIDENCE_SCHEMA.items() if k != SNAPSHOT},
        },
    ).sort(["cause_score", "timing"], descending=True)
    return evidence, snap_df


#: a paired difference this many standard errors away is one the A/B sees for sure
_POWER_Z = 4.0


def _power(ev: pl.DataFrame, share_after: float | None, totals: dict[str, Shift | None]) -> float:
    """How well the rolled-out snapshot's same-hours A/B could have seen a snapshot that
    explains the (model, experiment)'s shift: the paired difference such a snapshot needs
    (total shift / its traffic share) in standard errors of the measured difference, over
    ``_POWER_Z``, best series; 1 when no series shifted (nothing to explain).

    An A/B on a canary's handful of rows per window "finds no difference" whether or not
    there is one; its exoneration is only as good as its power."""
    best, needed_any = 0.0, False
    for row in ev.iter_rows(named=True):
        t = totals.get(row["series"])
        if t is None or not math.isfinite(t.delta) or not math.isfinite(t.z) or abs(t.z) < 2:
            continue
        if row["series"] != "mean_prediction" and t.delta <= 0:
            continue  # the series improved: not what is explained
        needed_any = True
        z, delta = row["z"], row["delta"]
        if z is None or delta is None or z == 0 or not share_after:
            continue
        se = abs(delta / z)
        need = abs(t.delta) / max(share_after, 1e-3)
        best = max(best, min(1.0, need / (_POWER_Z * se)) if se > 0 else 1.0)
    return best if needed_any else 1.0


def _verdict(
    model: str,
    experiment: str,
    snap_df: pl.DataFrame,
    evidence: pl.DataFrame,
    totals: dict[str, Shift | None],
) -> SnapshotIsolation:
    """Convicted by the same-hours A/B; else no rollout near the onset; else a cut-over the
    A/B cannot judge; else exonerated as far as the A/B's overlap and power allow."""
    by_timing = snap_df.filter(pl.col("ramp_ts").is_not_null()).sort("timing", descending=True)
    rolled = None
    if by_timing.height and by_timing["timing"][0] >= 0.2:
        rolled = by_timing[SNAPSHOT][0]
    top = snap_df.row(0, named=True)
    common = {"model": model, "experiment": experiment, "snapshots": snap_df, "evidence": evidence}
    if top["cause_score"] > _CAUSE:
        return _convicted(top, rolled, common)
    if rolled is None:
        return SnapshotIsolation(
            suspect=None,
            is_snapshot_cause=False,
            confidence=float(0.8 * (1 - top["cause_score"])),
            rolled_out=None,
            notes=("no snapshot ramped up near the onset",),
            **common,
        )
    r = snap_df.filter(pl.col(SNAPSHOT) == rolled).row(0, named=True)
    if r["shared_windows"] < _MIN_SHARED:
        return _cut_over(rolled, r, evidence, totals, common)
    return _exonerated(rolled, r, top, evidence, totals, common)


def _convicted(
    top: dict[str, Any], rolled: str | None, common: dict[str, Any]
) -> SnapshotIsolation:
    notes = [
        f"{top[SNAPSHOT]} is worse than the other snapshots in the same windows "
        f"({top['series']}: delta {top['delta']:.4g}, z {top['z']:.1f}, "
        f"{top['shared_windows']} shared windows)"
    ]
    if top["explained"] is not None:
        notes.append(f"its share x delta explains {top['explained']:.0%} of the total shift")
    return SnapshotIsolation(
        suspect=top[SNAPSHOT],
        is_snapshot_cause=True,
        confidence=float(min(1.0, top["cause_score"])),
        rolled_out=rolled,
        notes=tuple(notes),
        **common,
    )


def _cut_over(
    rolled: str,
    r: dict[str, Any],
    evidence: pl.DataFrame,
    totals: dict[str, Shift | None],
    common: dict[str, Any],
) -> SnapshotIsolation:
    """A full cut-over: nothing served the same hours, so time effects cannot be ruled out;
    the snapshot is suspect (weakly) only when the totals moved where it took over."""
    post = evidence.filter(pl.col(SNAPSHOT) == rolled)
    moved = any(
        t is not None and strength(abs(t.z) if s == "mean_prediction" else t.z) >= 0.5
        for s, t in totals.items()
        if s in post["series"].to_list()
    )
    note = (
        f"{rolled} took over at the onset with no same-hour overlap; time effects cannot be "
        "ruled out"
    )
    return SnapshotIsolation(
        suspect=rolled if moved else None,
        is_snapshot_cause=moved,
        confidence=float(0.4 * r["timing"]),
        rolled_out=rolled,
        notes=(note,),
        **common,
    )


def _exonerated(
    rolled: str,
    r: dict[str, Any],
    top: dict[str, Any],
    evidence: pl.DataFrame,
    totals: dict[str, Shift | None],
    common: dict[str, Any],
) -> SnapshotIsolation:
    """Rolled out near the onset but no worse in the same hours: not the snapshot, as sure as
    the overlap and the A/B's power to see a difference that explains the shift."""
    notes = [
        f"{rolled} ramped up near the onset but its health matches the other snapshots in the "
        f"same {r['shared_windows']} windows: not the snapshot"
    ]
    quality = min(1.0, r["shared_windows"] / (2 * _MIN_SHARED))
    power = _power(evidence.filter(pl.col(SNAPSHOT) == rolled), r["share_after"], totals)
    if power < 1.0:
        notes.append(
            f"but with {rolled}'s few rows the same-hours A/B could not have seen a difference "
            f"that explains the shift (power {power:.2f})"
        )
    return SnapshotIsolation(
        suspect=None,
        is_snapshot_cause=False,
        confidence=float((1 - top["cause_score"]) * quality * power),
        rolled_out=rolled,
        notes=tuple(notes),
        **common,
    )

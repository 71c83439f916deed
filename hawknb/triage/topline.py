"""Step 1: the top-line metric anomaly the investigation starts from."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..engine import collect
from ..kernels.anomaly import AnomalyResult, AnomalyWindow, detect_anomalies
from ..workspace import Workspace
from ..workspace import contract as c
from ..workspace.errors import HawknbError
from .findings import Finding

#: robust z a top-line row needs to open a window. Lower than the detector's stand-alone default:
#: a sustained 4-sigma shift is an incident, and the next step (do predictions move with it?)
#: rejects windows that no model explains
TOPLINE_SEVERITY = 3.5


def window_mass(result: AnomalyResult, w: AnomalyWindow) -> float:
    """Evidence of a window: the summed robust z (in its direction) over its rows, so a
    sustained shift outranks a single spike of the same height."""
    b = result.baseline
    if b.is_empty() or "score" not in b.columns:
        return float(w.severity)
    z = b.filter((pl.col(c.TS) >= w.onset) & (pl.col(c.TS) <= w.end))["score"]
    z = (z * w.direction).clip(0.0, None).fill_nan(0.0).fill_null(0.0)
    return max(float(z.sum()), float(w.severity))


#: anomaly windows (across all metrics, most evidence first) the walk weighs against each other
CANDIDATES = 5
#: a --start this many samples before a window's onset still points at it (a person brushing
#: the start of the dip a little early), and this many after its end
START_BEFORE, START_AFTER = 6, 1
#: windows of one metric this many samples apart are one incident: a long shift dips under the
#: alert level for a few hours, or overshoots the other way as it recovers, and the detector
#: splits it; the incident starts at the first window and takes the strongest one's direction
EPISODE_GAP = 6


#: a sustained shift: the mean robust z over this many samples, times its square root (the
#: z of the mean), must reach SUSTAINED_Z. A 3-6% drop of a noisy metric stays under the
#: per-row alert level for hours, yet its mean over a few hours is far outside the noise
SUSTAINED_SPAN, SUSTAINED_Z = 8, 6.0
#: ... and the mean itself must be at least this many robust sigmas (a slow drift is not one)
SUSTAINED_MEAN = 1.5


def sustained_windows(result: AnomalyResult) -> list[AnomalyWindow]:
    """Windows where the metric sits off its baseline for several samples in a row, each
    row too small to alert on its own: the rolling mean of the detector's robust z over
    SUSTAINED_SPAN samples, dated by the best single mean-shift split of the z around the
    first alerting row (the model steps judge timing against this onset, so it must not
    drift back to wherever the noise last crossed zero)."""
    b = result.baseline
    if b.height < 2 * SUSTAINED_SPAN or "score" not in b.columns:
        return []
    ts = b[c.TS]
    z = np.nan_to_num(b["score"].to_numpy().astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    out = []
    for d in (-1, 1):
        dz = d * z
        mean = _trailing_mean(dz, SUSTAINED_SPAN)
        hot = (mean * np.sqrt(SUSTAINED_SPAN) >= SUSTAINED_Z) & (mean >= SUSTAINED_MEAN)
        # a step: the metric was already off its baseline (a weekly swing the daily profile
        # does not model) and then moved, so the level after is unremarkable but the change
        # from the hours before is not; compared over twice the span
        two = 2 * SUSTAINED_SPAN
        m2 = _trailing_mean(dz, two)
        step = np.zeros(z.size)
        step[two:] = m2[two:] - m2[:-two]
        hot |= (step * np.sqrt(SUSTAINED_SPAN) >= SUSTAINED_Z) & (step >= SUSTAINED_MEAN)
        mean = np.maximum(mean, step / np.sqrt(2.0))
        i = 0
        while i < z.size:
            if not hot[i]:
                i += 1
                continue
            j = i
            while j + 1 < z.size and hot[j + 1]:
                j += 1
            lo = _split(dz, max(0, i - 2 * SUSTAINED_SPAN), min(j, i + SUSTAINED_SPAN))
            peak = lo + int(np.argmax(dz[lo : min(j, lo + 2 * SUSTAINED_SPAN) + 1]))
            sev = float(mean[i : j + 1].max() * np.sqrt(SUSTAINED_SPAN))
            conf = float(1.0 - min(1.0, z.size * math.erfc(sev / math.sqrt(2.0))))
            # the hours the later steps compare: the shift's first span or two, not a whole
            # day of a slowly recovering baseline
            end = min(j, lo + 2 * SUSTAINED_SPAN)
            out.append(AnomalyWindow(ts[lo], ts[end], ts[peak], d, sev, conf))
            i = j + 1
    return out


def _trailing_mean(x: np.ndarray, span: int) -> np.ndarray:
    """Mean of each row and the span - 1 before it (0 where there are fewer)."""
    out = np.convolve(x, np.ones(span) / span, mode="full")[: x.size]
    out[: span - 1] = 0.0
    return out


def _split(x: np.ndarray, a: int, b: int) -> int:
    """The onset of a shift alerting in rows [a, b]: the row that best splits x[a:b+1] into a
    lower-mean head and a higher-mean tail (x is oriented so the shift is up)."""
    seg = x[a : b + 1]
    n = seg.size
    if n < 3:
        return a
    c = np.cumsum(seg)
    k = np.arange(1, n)
    head = c[:-1] / k
    tail = (c[-1] - c[:-1]) / (n - k)
    stat = (tail - head) * np.sqrt(k * (n - k) / n)
    return a + int(k[np.argmax(stat)])


def merge_episodes(result: AnomalyResult, cadence: timedelta) -> list[tuple[AnomalyWindow, float]]:
    """The detector's windows with their evidence, close neighbours merged so that the
    investigated onset is the start of the incident, not of its second half."""
    out: list[tuple[AnomalyWindow, float]] = []
    # a sustained window adds a candidate only where the detector saw nothing: where it did,
    # its window (and so the hours the later steps examine) stays as it was
    near = EPISODE_GAP * cadence
    found = result.windows + [
        s
        for s in sustained_windows(result)
        if not any(w.onset - near <= s.end and s.onset <= w.end + near for w in result.windows)
    ]
    for w in sorted(found, key=lambda w: w.onset):
        mass = window_mass(result, w)
        if out:
            prev, pmass = out[-1]
            if w.onset - prev.end <= EPISODE_GAP * cadence:
                keep = prev if prev.severity >= w.severity else w
                merged = replace(
                    keep,
                    onset=prev.onset,
                    end=max(prev.end, w.end),
                    severity=max(prev.severity, w.severity),
                    confidence=max(prev.confidence, w.confidence),
                )
                # overlapping windows (an alert inside a sustained shift) are counted once
                out[-1] = (
                    merged,
                    max(pmass + mass, window_mass(result, merged))
                    if w.onset > prev.end
                    else window_mass(result, merged),
                )
                continue
        out.append((w, mass))
    return out


@dataclass(frozen=True)
class Anomaly:
    """The window the rest of the walk explains."""

    metric: str
    onset: datetime
    end: datetime
    direction: int
    severity: float
    confidence: float
    cadence: timedelta
    user_given: bool = False
    #: found only as a sustained shift (no row alerted): weaker evidence of an incident
    sustained: bool = False
    #: found by a model's health step, not by the metric's own detector (led.py): the metric
    #: moved by only this window's severity (its history's step spreads) at that time
    led: bool = False


def top_line_series(ws: Workspace) -> pl.DataFrame:
    """(metric, ts, value) of the top line: the `all`/null segment when segments exist."""
    lf = ws.metrics
    if c.SEGMENT in lf.collect_schema():
        top = pl.col(c.SEGMENT).is_null() | (pl.col(c.SEGMENT) == c.TOP_LINE_SEGMENT)
        has_top = lf.group_by(c.METRIC).agg(top.any().alias("has_top")).filter(pl.col("has_top"))
        # metrics with a top line use it; a metric recorded only per segment is summed
        lf = pl.concat(
            [
                lf.join(has_top.select(c.METRIC), on=c.METRIC, how="semi").filter(top),
                lf.join(has_top.select(c.METRIC), on=c.METRIC, how="anti"),
            ]
        )
    out = collect(
        lf.filter(pl.col(c.VALUE).is_finite())
        .group_by(c.METRIC, c.TS)
        .agg(pl.col(c.VALUE).sum())
        .sort(c.METRIC, c.TS)
    )
    return out


def _cadence(ts: pl.Series) -> timedelta:
    d = ts.diff().drop_nulls()
    if d.is_empty():
        return timedelta(hours=1)
    return d.median()  # type: ignore[return-value]


def _describe(
    series: pl.DataFrame,
    chosen: tuple[str, AnomalyWindow, float],
    checked: str,
    others: list[dict],
    sustained: frozenset = frozenset(),
) -> tuple[Anomaly, Finding]:
    name, w, mass = chosen
    s = series.filter(pl.col(c.METRIC) == name)
    anomaly = Anomaly(
        name,
        w.onset,
        w.end,
        w.direction,
        w.severity,
        w.confidence,
        _cadence(s[c.TS]),
        sustained=(name, w.onset) in sustained,
    )
    word = "rose" if w.direction > 0 else "dropped"
    finding = Finding(
        "topline",
        checked=checked,
        decision=f"{name} {word} from {w.onset:%Y-%m-%d %H:%M} UTC to {w.end:%Y-%m-%d %H:%M} "
        f"(robust z {w.severity:.1f}); find the model whose predictions moved with it",
        confidence=float(w.confidence),
        evidence={
            "metric": name,
            "onset": w.onset,
            "end": w.end,
            "peak": w.peak,
            "direction": w.direction,
            "severity": round(w.severity, 2),
            "mass": round(mass, 1),
            "detected": others,
        },
        next_step="models",
    )
    return anomaly, finding


def find_anomaly(
    ws: Workspace, metric: str | None, start: datetime | None, end: datetime | None = None
) -> tuple[Anomaly | None, Finding, dict[str, AnomalyResult], pl.DataFrame]:
    """Detect anomalies on every top-line metric (or the one asked for) and pick the window to
    investigate: the one containing ``start`` if given, else the most severe. When no detected
    anomaly contains ``start``, the window asked for is investigated: ``start`` to ``end``
    (a brushed window), or the 6 hours from ``start`` without an end."""
    series = top_line_series(ws)
    names = sorted(series[c.METRIC].unique().to_list())
    if metric is not None and metric not in names:
        raise HawknbError(f"metric {metric!r} is not in {ws.where('metrics')}; it has {names[:20]}")
    wanted = [metric] if metric else names
    results, candidates, quiet = _detect_all(series, wanted)
    checked = f"{len(wanted)} top-line metric(s) for seasonal anomalies: {', '.join(wanted[:8])}"
    chosen: tuple[str, AnomalyWindow, float] | None = None
    pool = sorted(candidates, key=lambda cand: -cand[2])
    if start is not None:
        pool = [cand for cand in pool if _contains(series, cand, start)]
    if pool:
        chosen = pool[0]

    others = [
        {"metric": n, "onset": w.onset, "severity": round(w.severity, 2), "mass": round(m, 1)}
        for n, w, m in sorted(candidates, key=lambda cand: -cand[2])[:8]
    ]
    if chosen is None and start is not None:
        name = wanted[0] if metric else (names[0] if names else "")
        anomaly, finding = _asked_window(series, name, start, end, checked, others)
        return anomaly, finding, results, series
    if chosen is None:
        finding = Finding(
            "topline",
            checked=checked,
            decision="no top-line anomaly: nothing to investigate",
            confidence=0.9,
            evidence={"detected": []},
        )
        return None, finding, results, series
    anomaly, finding = _describe(series, chosen, checked, others, frozenset(quiet))
    # every window the walk weighs (the chosen one first): a metric that moves for reasons
    # outside the models can be the biggest, so the next step decides between them
    finding.result = [(anomaly, finding, chosen[2])] + [
        (*_describe(series, cand, checked, others, frozenset(quiet)), cand[2])
        for cand in _shortlist(pool)[1:]
    ]
    return anomaly, finding, results, series


def _shortlist(pool: list[tuple[str, AnomalyWindow, float]]) -> list:
    """The windows worth putting to model isolation: the most evidence first, plus each
    metric's latest window (triage is mostly asked about what is going on now, and a recent
    moderate drop can carry less summed evidence than an old, long, unrelated shift)."""
    out = pool[:CANDIDATES]
    latest: dict[str, tuple[str, AnomalyWindow, float]] = {}
    for cand in pool:
        if cand[0] not in latest or cand[1].onset > latest[cand[0]][1].onset:
            latest[cand[0]] = cand
    out += [cand for cand in latest.values() if not any(cand is o for o in out)]
    return out


def _contains(series: pl.DataFrame, cand: tuple[str, AnomalyWindow, float], t: datetime) -> bool:
    """Whether a time given by a person points into a window (a little slack on each side,
    in samples of the window's metric, so it means the same at any cadence)."""
    name, w, _ = cand
    cad = _cadence(series.filter(pl.col(c.METRIC) == name)[c.TS])
    return w.onset - START_BEFORE * cad <= t <= w.end + START_AFTER * cad


def describe_window(
    series: pl.DataFrame, metric: str, w: AnomalyWindow, mass: float, why: str
) -> tuple[Anomaly, Finding]:
    """The anomaly and top-line finding of a window found by other evidence than the metric's
    own detector (``why`` says which); marked ``sustained`` (no row alerted on its own)."""
    anomaly, finding = _describe(
        series,
        (metric, w, mass),
        f"a window the models point at: {why}",
        [],
        frozenset({(metric, w.onset)}),
    )
    finding.evidence["led_by"] = why
    return replace(anomaly, led=True), finding


def _detect_all(
    series: pl.DataFrame, wanted: list[str]
) -> tuple[
    dict[str, AnomalyResult], list[tuple[str, AnomalyWindow, float]], list[tuple[str, datetime]]
]:
    """Every metric's detected anomalies, its merged episodes as (metric, window, mass)
    candidates, and the episodes no detected window overlaps (found only as sustained
    shifts)."""
    results: dict[str, AnomalyResult] = {}
    candidates: list[tuple[str, AnomalyWindow, float]] = []
    quiet: list[tuple[str, datetime]] = []
    for name in wanted:
        s = series.filter(pl.col(c.METRIC) == name).select(c.TS, c.VALUE)
        if s.height < 8:
            continue
        res = detect_anomalies(s, min_severity=TOPLINE_SEVERITY)
        results[name] = res
        merged = merge_episodes(res, _cadence(s[c.TS]))
        candidates += [(name, w, m) for w, m in merged]
        quiet += [
            (name, w.onset)
            for w, _ in merged
            if not any(d.onset <= w.end and w.onset <= d.end for d in res.windows)
        ]
    return results, candidates, quiet


def _asked_window(
    series: pl.DataFrame,
    name: str,
    start: datetime,
    end: datetime | None,
    checked: str,
    others: list[dict[str, Any]],
) -> tuple[Anomaly, Finding]:
    """The window a person asked for when no detected anomaly contains ``start``: ``start``
    to ``end`` (a brushed window) or the 6 hours from ``start``, at low confidence, so the
    walk follows the person rather than refusing."""
    s = series.filter(pl.col(c.METRIC) == name)
    cad = _cadence(s[c.TS]) if s.height else timedelta(hours=1)
    last = s[c.TS].max() if s.height else start
    if not (s.height and s[c.TS].min() <= start <= last):
        raise HawknbError(
            f"--start {start.isoformat()} is outside the data of metric {name!r}"
            + (f" ({s[c.TS].min()} .. {last})" if s.height else "")
        )
    stop = min(last, end if end is not None and end > start else start + timedelta(hours=6))
    asked = (
        f"{start.isoformat()} to {stop.isoformat()}"
        if end is not None and end > start
        else "the 6 hours from it"
    )
    anomaly = Anomaly(name, start, stop, 0, float("nan"), 0.5, cad, True)
    finding = Finding(
        "topline",
        checked=checked,
        decision=f"no detected anomaly contains {start.isoformat()}; investigating "
        f"{asked} on {name!r} as asked",
        status="warning",
        confidence=0.5,
        evidence={"metric": name, "onset": start, "detected": others},
        next_step="models",
    )
    return anomaly, finding

"""Model-led candidate windows: times where a model's predictions got worse, or many of its
input features stepped at once, and a top-line metric stepped with them.

The top-line detector looks at each metric alone. A 3-6% drop of a noisy metric with weekly
swings the daily profile does not model can stay within a couple of robust sigmas of its
history, while unrelated shifts of other metrics (or of the same metric on another day) are
bigger: the metric alone cannot find it. A model whose prediction health got clearly worse at
some time is independent evidence that something happened then; a metric that also stepped
at that same time (tested at a handful of times the models point at, not at every time of
the history, so a smaller step is unusual) makes it a candidate incident. The window weighing
(windows.py) then decides between it and the detector's windows by how well a model explains
each, exactly as for any other candidate.

A model's predictions are not the only independent evidence. Labels that arrive many hours
late leave calibration and NE blind to an incident in its first hours, and a data break that
changes which rows score high can keep the mean prediction inside its noise on a few dozen
rows an hour; yet the inputs show it at once: many of the model's features step in the same
hour, which by chance they (nearly) never do. Such a time leads like a health step does.

Both steps are measured against the series' own history (the spread of the same before/after
difference at every other time), so neither a metric's noise, its autocorrelation nor a
health series' units set the scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import polars as pl
from scipy.special import gammaln, ndtri_exp, pdtrc

from ..engine import collect
from ..kernels.anomaly import AnomalyResult, AnomalyWindow
from ..kernels.health import HEALTH_SERIES, WORSE_WHEN_HIGHER, window_start
from ..workspace import contract as c
from .findings import Finding
from .topline import Anomaly, describe_window

#: samples before and after a time whose mean levels are compared
STEP_SPAN = 6
#: a model-experiment's health step (in the worse direction) must be this unusual for its own
#: history: many series x times are scanned, so only a clear change leads
HEALTH_STEP_Z = 5.0
#: the metric's step at that time must be this unusual for the metric's history: it is
#: tested at a few times only (those the models point at), so a smaller step counts
METRIC_STEP_Z = 2.0
#: at most this many model-led windows are put to model isolation (each costs one)
LED_WINDOWS = 3
#: a feature's windowed mean stepped when its standardized step reaches this
FEATURE_STEP_Z = 4.0
#: a model's inputs broke at a time when at least this many features stepped there at once ...
INPUT_MIN_BROKEN = 3
#: ... and that many is this unlikely by chance over every model and time scanned (the
#: count's chance rate is the model's own mean count of stepping features per time)
INPUT_CHANCE = 0.01

#: a lead's strength is capped here: past it, how unlikely a step was by chance says nothing
#: more about whether the metric moved with it
MAX_LEAD_Z = 40.0

#: one lead: (strength as a z, time, model, what moved)
Peak = tuple[float, object, str, str]


def standardized_steps(x: np.ndarray, span: int) -> np.ndarray:
    """Per index i: mean of x[i:i+span] minus mean of x[i-span:i] (finite values only, at
    least half of each side present), divided by the robust spread (1.4826 MAD) of that
    difference over the whole series; nan where undefined or when the spread is zero."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    out = np.full(n, np.nan)
    if n < 4 * span:
        return out
    ok = np.isfinite(x)
    cs = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    cn = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(span, n - span + 1)
    n_after, n_before = cn[i + span] - cn[i], cn[i] - cn[i - span]
    enough = (n_after >= span / 2) & (n_before >= span / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        step = (cs[i + span] - cs[i]) / n_after - (cs[i] - cs[i - span]) / n_before
    step = np.where(enough, step, np.nan)
    fin = np.isfinite(step)
    if fin.sum() < 4 * span:
        return out
    med = float(np.median(step[fin]))
    spread = 1.4826 * float(np.median(np.abs(step[fin] - med)))
    if not spread > 0:
        return out
    out[i] = (step - med) / spread
    return out


def _steps_either_span(x: np.ndarray, signed: bool) -> np.ndarray:
    """The larger of the standardized steps over STEP_SPAN and twice that many windows.

    Why: a few dozen rows per health window make a health series noisy; a level shift that
    stays (a retrain that doubled the mean prediction) is as clear as a short blip over
    STEP_SPAN windows but twice as clear (in its own history's spreads) over a span twice as
    long, while a blip is not. ``signed``: keep the sign (worse is higher), else |z|."""
    out = np.full(np.asarray(x).size, np.nan)
    for span in (STEP_SPAN, 2 * STEP_SPAN):
        z = standardized_steps(x, span)
        z = z if signed else np.abs(z)
        out = np.fmax(out, z)
    return out


def _health_peaks(health: pl.DataFrame) -> list[Peak]:
    """(z, ts, model, what) of the clearest worse-going health steps, one per model and time."""
    peaks: list[Peak] = []
    if health.is_empty():
        return peaks
    for (model, _exp), part in health.sort(c.TS).group_by(
        [c.MODEL, c.EXPERIMENT], maintain_order=True
    ):
        ts = part[c.TS]
        for s in HEALTH_SERIES:
            if s not in part.columns:
                continue
            zs = _steps_either_span(part[s].cast(pl.Float64).to_numpy(), s in WORSE_WHEN_HIGHER)
            zs = np.nan_to_num(zs, nan=0.0)
            for j in np.flatnonzero(zs >= HEALTH_STEP_Z):
                what = f"{model}'s prediction health ({s}) stepped worse"
                peaks.append((float(zs[j]), ts[int(j)], str(model), what))
    return _by_strength(peaks)


def input_peaks(
    serving: pl.LazyFrame,
    features: dict[str, Sequence[str]],
    every: str,
    offset: timedelta | None = None,
) -> list[Peak]:
    """(z, ts, model, what) of the times where many of a model's input features stepped at
    once: each feature's mean per ``every`` window, its standardized step (own history), and
    the count of features stepping by FEATURE_STEP_Z at each time. A count counts when it is
    at least INPUT_MIN_BROKEN and so unlikely for the model's own mean count (Poisson) that
    fewer than INPUT_CHANCE such times are expected over everything scanned; one peak per
    model and run of such times (its largest count). z is that chance as a normal quantile.
    Windows start ``offset`` after the grid (`kernels.health.window_start`)."""
    schema = serving.collect_schema()
    features = {m: [f for f in dict.fromkeys(fs) if f in schema] for m, fs in features.items()}
    features = {m: fs for m, fs in features.items() if fs}
    cols = sorted({f for fs in features.values() for f in fs})
    if not cols:
        return []
    means = collect(
        serving.filter(pl.col(c.MODEL).is_in(list(features)))
        .group_by(pl.col(c.MODEL).cast(pl.String), window_start(pl.col(c.TS), every, offset))
        .agg([pl.col(f).cast(pl.Float64).mean() for f in cols])
        .sort(c.MODEL, c.TS)
    )
    counts = {}
    for (model,), part in means.group_by([c.MODEL], maintain_order=True):
        fs = [f for f in features[str(model)] if f in part.columns]
        z = np.stack([np.abs(standardized_steps(part[f].to_numpy(), STEP_SPAN)) for f in fs])
        counts[str(model)] = (part[c.TS], (np.nan_to_num(z, nan=0.0) >= FEATURE_STEP_Z).sum(0))
    scanned = sum(n.size for _, n in counts.values())
    peaks: list[Peak] = []
    for model, (ts, n) in counts.items():
        log_sf = _poisson_log_sf(n, max(float(n.mean()), 1e-3))
        hot = (n >= INPUT_MIN_BROKEN) & (log_sf + math.log(scanned) <= math.log(INPUT_CHANCE))
        for lo, hi in _runs(hot):
            j = lo + int(np.argmax(n[lo:hi]))
            z = float(-ndtri_exp(log_sf[j]))
            what = f"{int(n[j])} of {model}'s input features stepped"
            peaks.append((min(z, MAX_LEAD_Z), ts[j], model, what))
    return _by_strength(peaks)


def _by_strength(peaks: list[Peak]) -> list[Peak]:
    """Clearest first; at equal strength the earlier time, then the model's name.

    Why: an upstream break steps the inputs of every model that reads it, often at the cap;
    the first of those steps is the incident's onset, and a tie left to the order models
    happen to be listed in (their names) would move the window with a rename."""
    return sorted(peaks, key=lambda p: (-p[0], p[1], p[2]))


def _poisson_log_sf(n: np.ndarray, mu: float) -> np.ndarray:
    """log P(X >= n) for X ~ Poisson(mu), finite where the probability underflows.

    Why: a few dozen features stepping in a model whose features (nearly) never step is a
    chance far below 1e-300; read as 0 it made every such peak the same capped strength.
    Where ``pdtrc`` underflows n is far above mu, so the tail is its first term times at
    most 1 / (1 - mu / (n + 1))."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.log(pdtrc(n - 1, mu))
    first = -mu + n * math.log(mu) - gammaln(n + 1) - np.log1p(-np.minimum(mu / (n + 1), 0.5))
    return np.where(n <= 0, 0.0, np.where(direct > -650.0, direct, first))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _metric_steps(
    results: dict[str, AnomalyResult],
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, timedelta]]:
    """Per metric: (ts as epoch us, robust z, standardized step of z, cadence)."""
    out = {}
    for name, res in results.items():
        b = res.baseline
        if b.height < 4 * STEP_SPAN or "score" not in b.columns:
            continue
        us = b[c.TS].cast(pl.Datetime("us", "UTC")).cast(pl.Int64).to_numpy()
        z = np.nan_to_num(b["score"].to_numpy().astype(np.float64), posinf=0.0, neginf=0.0)
        cad = timedelta(microseconds=int(np.median(np.diff(us)))) if us.size > 1 else None
        if cad is None or cad <= timedelta(0):
            continue
        steps = standardized_steps(z, STEP_SPAN)
        if "value" in b.columns:
            day = _day_over_day_steps(b["value"].cast(pl.Float64).to_numpy(), cad)
            steps = _larger_step(day, steps)
        out[name] = (us, z, steps, cad)
    return out


#: days of history the day-over-day step needs (the first day has nothing to compare with)
DAY_OVER_DAY_MIN_DAYS = 4


def _day_over_day_steps(value: np.ndarray, cad: timedelta) -> np.ndarray:
    """The standardized step (over STEP_SPAN and twice that) of the metric minus itself a
    day before; nan where undefined or with fewer than DAY_OVER_DAY_MIN_DAYS of history.

    Why: the detector's baseline follows a shift within hours, so its robust z, and any
    step of it, fade while a 3-6% drop is still there; and the raw metric swings with the
    hour of day. The same hours a day before are a baseline that does neither, and a drop
    that lasts grows clearer over the longer span instead of fading."""
    per = round(timedelta(days=1) / cad) if cad > timedelta(0) else 0
    out = np.full(value.size, np.nan)
    if per < 1 or value.size < DAY_OVER_DAY_MIN_DAYS * per:
        return out
    diff = np.full(value.size, np.nan)
    diff[per:] = value[per:] - value[:-per]
    for span in (STEP_SPAN, 2 * STEP_SPAN):
        zs = standardized_steps(diff, span)
        out = _larger_step(zs, out)
    return out


def _larger_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per index, whichever of two signed steps is larger in magnitude (a nan counts as 0)."""
    return np.where(np.abs(np.nan_to_num(a)) > np.abs(np.nan_to_num(b)), a, b)


def led_windows(
    health: pl.DataFrame,
    every: timedelta,
    results: dict[str, AnomalyResult],
    series: pl.DataFrame,
    known: list[Anomaly],
    inputs: list[Peak] | None = None,
) -> list[tuple[Anomaly, Finding, float]]:
    """Up to LED_WINDOWS candidate windows (anomaly, top-line finding, evidence mass) where a
    model-experiment's health stepped worse, or its inputs broke (``inputs``: input_peaks),
    and some metric stepped at the same time (within one health window), skipping times a
    known candidate of that metric already covers; the clearest leads first."""
    steps = _metric_steps(results)
    out: list[tuple[Anomaly, Finding, float]] = []
    used: list[tuple[int, str]] = []
    leads = _by_strength([*_health_peaks(health), *(inputs or [])])
    for hz, t, _model, moved in leads:
        if len(out) >= LED_WINDOWS:
            break
        t_us = int(pl.Series([t]).cast(pl.Datetime("us", "UTC")).cast(pl.Int64)[0])
        tol = int(every / timedelta(microseconds=1))
        best = _best_metric(steps, t_us, tol)
        if best is None:
            continue
        name, j, zs = best
        # one window per incident and metric: a lead near one already used for this metric
        # is the same incident, but one hours after it that points at another metric is not
        # (a health step can lead to a metric that stepped by chance in the hours before
        # the rollout whose rows then lead to the metric that broke)
        if any(abs(t_us - u) <= 2 * STEP_SPAN * tol and m == name for u, m in used):
            continue
        us, z, _, cad = steps[name]
        onset = _to_dt(us[j])
        if any(k.metric == name and k.onset - 2 * cad <= onset <= k.end + 2 * cad for k in known):
            continue
        used.append((t_us, name))
        d = 1 if zs > 0 else -1
        end_j = min(us.size - 1, j + STEP_SPAN - 1)
        peak = j + int(np.argmax(d * z[j : end_j + 1]))
        sev = abs(zs)
        # the joint chance: a health step this clear and a metric step at the same time
        conf = float(1.0 - min(1.0, math.erfc(sev / math.sqrt(2.0)) * us.size / STEP_SPAN))
        w = AnomalyWindow(onset, _to_dt(us[end_j]), _to_dt(us[peak]), d, sev, max(0.0, conf))
        mass = float(np.clip(d * z[j : end_j + 1], 0.0, None).sum())
        why = (
            f"{moved} at {onset:%Y-%m-%d %H:%M} (a {hz:.1f}-sigma event for its history) "
            f"and {name} stepped {sev:.1f} of its own step spread"
        )
        anomaly, finding = describe_window(series, name, w, mass, why)
        out.append((anomaly, finding, mass))
    return out


def _best_metric(
    steps: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, timedelta]], t_us: int, tol: int
) -> tuple[str, int, float] | None:
    """The metric with the most unusual step within one health window of t (index, z)."""
    best: tuple[str, int, float] | None = None
    for name, (us, _z, zs, _cad) in steps.items():
        near = np.flatnonzero((us >= t_us - tol) & (us <= t_us + tol) & np.isfinite(zs))
        if near.size == 0:
            continue
        j = int(near[np.argmax(np.abs(zs[near]))])
        if abs(zs[j]) >= METRIC_STEP_Z and (best is None or abs(zs[j]) > abs(best[2])):
            best = (name, j, float(zs[j]))
    return best


def _to_dt(us: int) -> object:
    return pl.Series([int(us)]).cast(pl.Datetime("us", "UTC"))[0]

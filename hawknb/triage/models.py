"""Step 2: which model(s) and experiment's predictions degraded with the top line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from ..kernels.base_rate import ShiftBaseRate, shift_base_rate
from ..kernels.health import HEALTH_SERIES, prediction_health, window_start
from ..kernels.isolation import ModelIsolation, rank_model_experiments
from ..workspace import Workspace
from ..workspace import contract as c
from . import led, row_evidence, upstream
from .findings import Finding
from .topline import Anomaly
from .walk_cache import memo

#: below this model-isolation confidence no model's predictions explain the anomaly
MODEL_CONFIDENCE = 0.15
#: from this confidence a model clearly explains the anomaly (no other window is tried)
CLEAR = 0.5
#: broken input features a suspect named by its inputs hands to the features step
LINEAGE_INPUTS = 10
#: the experiment name of a model's pooled health (all experiments together): pooling doubles
#: the rows per window, so a model-wide degradation too small to see per experiment shows
ALL_EXPERIMENTS = "(all experiments)"


@dataclass(frozen=True)
class Suspect:
    model: str
    experiment: str
    #: experiments of the model whose predictions degraded
    degraded: tuple[str, ...]
    experiment_specific: bool
    confidence: float
    #: how often the same health series moved as much at other times of the history (nan:
    #: not measured, e.g. a suspect named by its rows rather than its health series)
    base_rate: float = math.nan
    #: the input features that broke at the onset, most surprising first, when the model was
    #: named by its inputs (upstream.input_suspect) rather than by its predictions, and the
    #: break was unusual for its history (feature evidence in itself)
    inputs: tuple[str, ...] = ()
    #: the same inputs whether or not their break was unusual: where the lineage walk starts
    #: when no feature of the ranking explains the shift (a break too small to be unusual on a
    #: sampled log still points at the right upstream better than an unexplained top feature)
    broken: tuple[str, ...] = ()


def health_step(anomaly: Anomaly) -> timedelta:
    """Health windows no finer than the metric's cadence and never finer than 15 minutes: a
    sampled serving log has too few rows per minute for stable health statistics."""
    minutes = max(15, int(anomaly.cadence / timedelta(minutes=1)))
    return timedelta(hours=1) if minutes >= 60 else timedelta(minutes=minutes)


def health_every(anomaly: Anomaly) -> str:
    """`health_step` as the window width polars and the health cache are keyed by."""
    step = health_step(anomaly)
    return "1h" if step == timedelta(hours=1) else f"{int(step / timedelta(minutes=1))}m"


def health_key(every: str) -> tuple[str, str]:
    """The walk-cache key of `health_tables` at windows of ``every``."""
    return ("health", every)


def health_phase(ws: Workspace, every: str, cache: dict | None) -> timedelta:
    """Where the health windows of ``every`` start: on the phase of the workspace's first
    metric stamp, not on the clock's grid.

    Why: the verdict must not depend on where the clock's grid falls on the data. With windows
    fixed at :00/:15/..., moving a whole workspace by 17 minutes split its onset window
    differently and changed the metric, model or cause of 10 of 24 hard verdicts of the
    independent generator (tests/test_triage_metamorphic.py moves the clock by an odd amount now). The
    first metric stamp moves with the data, so the windows move with it; a metric window
    and a health window then also cover the same span."""

    def read() -> timedelta:
        first = ws.metrics.select(pl.col(c.TS).min()).collect().item()
        if first is None:
            return timedelta(0)
        grid = pl.select(pl.lit(first).dt.truncate(every)).item()
        return first - grid

    return memo(cache, ("health-phase", every), read)


def health_tables(ws: Workspace, every: str, cache: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-experiment and pooled prediction health at windows of ``every`` (on the workspace's
    `health_phase`), computed once per width (``cache``: one pass over the serving log per
    width for all windows weighed)."""

    def read() -> tuple[pl.DataFrame, pl.DataFrame]:
        phase = health_phase(ws, every, cache)
        pooled = ws.serving.with_columns(pl.lit(ALL_EXPERIMENTS).alias(c.EXPERIMENT))
        return (
            prediction_health(ws.serving, every=every, offset=phase),
            prediction_health(pooled, every=every, offset=phase),
        )

    return memo(cache, health_key(every), read)


def isolate_model(
    ws: Workspace,
    anomaly: Anomaly,
    metric_series: pl.DataFrame,
    health_cache: dict | None = None,
) -> tuple[Suspect | None, Finding, pl.DataFrame, ModelIsolation]:
    """``health_cache`` (window width -> per-experiment and pooled health, and the other
    reads of the walk) lets the walk try several anomaly windows with one pass over the
    serving log per width."""
    return isolate_models(ws, [anomaly], metric_series, health_cache)[0]


def isolate_models(
    ws: Workspace,
    anomalies: list[Anomaly],
    metric_series: pl.DataFrame,
    cache: dict | None = None,
) -> list[tuple[Suspect | None, Finding, pl.DataFrame, ModelIsolation]]:
    """`isolate_model` of each anomaly, in their order, with what the steps read from the log
    read once for all of them: the row-level comparisons of every window
    (`row_evidence.prefetch_row_shifts`), then the input breaks of the windows whose
    predictions do not settle them (`upstream.prefetch_breaks`). The answers are those of
    one window at a time; only the reads are shared."""
    cache = {} if cache is None else cache
    row_evidence.prefetch_row_shifts(ws, anomalies, cache)
    staged = [_health_isolation(ws, a, metric_series, cache) for a in anomalies]
    unsettled = [a for a, st in zip(anomalies, staged, strict=True) if _needs_inputs(st)]
    if unsettled:
        upstream.prefetch_breaks(ws, unsettled, cache)
    return [_settle(ws, a, st, cache) for a, st in zip(anomalies, staged, strict=True)]


@dataclass
class _Staged:
    """One window's prediction-health isolation and row-level suspect, before the inputs."""

    iso: ModelIsolation
    health: pl.DataFrame
    pooled: pl.DataFrame
    checked: str
    evidence: dict[str, Any]
    rows: row_evidence.RowSuspect | None


def _health_isolation(
    ws: Workspace, anomaly: Anomaly, metric_series: pl.DataFrame, cache: dict
) -> _Staged:
    every = health_every(anomaly)
    health, pooled = health_tables(ws, every, cache)
    phase = health_phase(ws, every, cache)
    start = window_start(pl.col(c.TS), every, phase)
    metric = (
        metric_series.filter(pl.col(c.METRIC) == anomaly.metric)
        .group_by(start.alias(c.TS))
        .agg(pl.col(c.VALUE).mean())
        .sort(c.TS)
    )
    end = max(anomaly.end, anomaly.onset + timedelta(hours=3))
    iso = rank_model_experiments(
        pl.concat([health, pooled], how="diagonal_relaxed"),
        onset=anomaly.onset,
        end=end,
        metric_series=metric,
        direction=anomaly.direction or None,
    )
    ranking = iso.ranking
    top_rows = ranking.head(5).select(
        c.MODEL, c.EXPERIMENT, "confidence", "series", "shift", "change_ts"
    )
    evidence = {"ranking": top_rows.to_dicts(), "health_every": every}
    # windows off the clock's grid are named, so a person re-reading the health sees why
    # its windows start at, e.g., 14:17
    after = f" from {phase} past the grid, the metric's phase" if phase else ""
    if phase:
        evidence["health_phase"] = str(phase)
    checked = (
        f"prediction health ({every} windows{after}: mean prediction, calibration, NE, NaN "
        f"rate) of {ranking.height} model-experiments around the onset"
    )
    rows = row_evidence.row_suspect(ws, anomaly, cache)
    return _Staged(iso, health, pooled, checked, evidence, rows)


def _rows_win(st: _Staged) -> bool:
    """A canary or partial blow-up the window means dilute: its rows name the model."""
    return st.rows is not None and st.rows.confidence > max(st.iso.confidence, MODEL_CONFIDENCE)


def _needs_inputs(st: _Staged) -> bool:
    """Whether `_settle` asks the inputs (the predictions did not clearly name a model)."""
    return not _rows_win(st) and (st.iso.top is None or st.iso.confidence < CLEAR)


def _settle(
    ws: Workspace, anomaly: Anomaly, st: _Staged, cache: dict
) -> tuple[Suspect | None, Finding, pl.DataFrame, ModelIsolation]:
    """The window's suspect from its rows, its inputs or its predictions, in that order."""
    iso, health = st.iso, st.health
    if _rows_win(st):
        rows = st.rows
        assert rows is not None
        suspect = Suspect(
            rows.model, rows.experiment, rows.degraded, rows.experiment_specific, rows.confidence
        )
        return suspect, rows.finding, health, iso
    named = _input_named(ws, anomaly, iso, cache) if _needs_inputs(st) else None
    if named is not None:
        return named[0], named[1], health, iso
    if iso.top is None or iso.confidence < MODEL_CONFIDENCE:
        finding = Finding(
            "models",
            checked=st.checked,
            decision="no model's predictions moved with the metric: the anomaly is not "
            "explained by a model (look at traffic, product or logging changes)",
            confidence=1.0 - iso.confidence,
            evidence=st.evidence,
        )
        return None, finding, health, iso
    return _model_suspect(iso, health, st.pooled, st.checked, st.evidence)


def _input_named(
    ws: Workspace, anomaly: Anomaly, iso: ModelIsolation, cache: dict
) -> tuple[Suspect, Finding] | None:
    """The model named by its inputs breaking at the onset: the model whose predictions moved
    most, when its own inputs broke too (both kinds of evidence agree), else the one with the
    most broken inputs. None when no model's inputs broke.

    When the predictions moved somewhat (MODEL_CONFIDENCE..CLEAR), the inputs override them
    only when the break is unusual for the model's own history (an input peak, led.py, near
    the onset): a few features drifting at once happens at ordinary times too, and so does a
    mean prediction wandering; only an unusual break is clearer evidence than a prediction
    that moved. Only then are its broken features handed on as feature evidence."""
    brk = upstream.input_suspect(ws, anomaly, cache)
    if brk is None or brk.confidence <= max(iso.confidence, MODEL_CONFIDENCE):
        return None
    top = iso.top[0] if iso.top is not None else None
    same = [b for b in brk.breaks if b.model == top and b.n_broken >= upstream.MIN_BROKEN]
    pick = same[0] if same else brk.breaks[0]
    unusual = _unusual_inputs(ws, anomaly, pick.model, cache)
    if iso.confidence >= MODEL_CONFIDENCE and not unusual:
        return None
    conf = max(upstream.confidence(pick.n_broken), iso.confidence if same else 0.0)
    experiment = brk.experiment if pick.model == brk.model else iso.top[1]  # type: ignore[index]
    if experiment == ALL_EXPERIMENTS:
        window = upstream.compare_window(anomaly)
        experiment = upstream.busiest_experiment(ws, pick.model, anomaly, window, cache)
    broken = tuple(pick.top(LINEAGE_INPUTS))
    inputs = broken if unusual else ()
    finding = brk.finding
    if pick.model != brk.model:
        finding.decision = (
            f"{pick.model}'s predictions moved most (confidence {iso.confidence:.2f}) and "
            f"{pick.n_broken} of its own inputs broke too, so it is the suspect; "
            + finding.decision
        )
        finding.evidence.update(model=pick.model, experiment=experiment)
    finding.evidence["unusual_for_its_history"] = unusual
    finding.confidence = conf
    suspect = Suspect(
        pick.model, experiment, (experiment,), False, conf, inputs=inputs, broken=broken
    )
    return suspect, finding


def input_peaks(ws: Workspace, every: str, cache: dict) -> list[led.Peak]:
    """led.input_peaks of the workspace at health windows of ``every``, computed once."""
    return memo(
        cache,
        ("input-peaks", every),
        lambda: led.input_peaks(
            ws.serving,
            upstream.model_features(ws, cache),
            every,
            offset=health_phase(ws, every, cache),
        ),
    )


def _unusual_inputs(ws: Workspace, anomaly: Anomaly, model: str, cache: dict) -> bool:
    """Whether the model's inputs broke near the onset by more than they ever do by chance
    (an input peak within STEP_SPAN health windows of it)."""
    tol = led.STEP_SPAN * health_step(anomaly)
    return any(
        m == model and anomaly.onset - tol <= t <= anomaly.onset + tol  # type: ignore[operator]
        for _, t, m, _ in input_peaks(ws, health_every(anomaly), cache)
    )


def _model_suspect(
    iso: ModelIsolation,
    health: pl.DataFrame,
    pooled: pl.DataFrame,
    checked: str,
    evidence: dict[str, Any],
) -> tuple[Suspect, Finding, pl.DataFrame, ModelIsolation]:
    """The top model-experiment as the suspect: which of the model's arms degraded (all of
    them, or only some: an experiment-specific change), and how often its health moves this
    much anyway (the base rate the verdict corrects for)."""
    ranking = iso.ranking
    assert iso.top is not None
    model, experiment = iso.top
    level = iso.model_level.get(model)
    degraded = tuple(e for e in (level.degraded if level else ()) if e != ALL_EXPERIMENTS)
    arms = [e for e in (level.experiments if level else ()) if e != ALL_EXPERIMENTS]
    # experiment specific: some, not all, of the model's own experiments degraded
    specific = 0 < len(degraded) < len(arms)
    if experiment == ALL_EXPERIMENTS:
        # only the pooled series moved clearly: name the model's most degraded experiment
        own = ranking.filter((pl.col(c.MODEL) == model) & (pl.col(c.EXPERIMENT) != ALL_EXPERIMENTS))
        experiment = own[c.EXPERIMENT][0] if own.height else experiment
        degraded = degraded or tuple(own[c.EXPERIMENT].to_list())
    degraded = degraded or (experiment,)
    row = ranking.row(0, named=True)
    scope = (
        f"only in experiment {experiment!r}"
        if specific
        else f"in {'every experiment' if level and level.scope == 'model' else 'its experiment'}"
    )
    finding = Finding(
        "models",
        checked=checked,
        decision=f"{model}'s predictions degraded at the onset {scope} "
        f"({row['series']} moved by {row['shift']:.1f} robust sigmas); check its snapshots",
        confidence=iso.confidence,
        evidence={**evidence, "model": model, "experiment": experiment, "degraded": degraded},
        next_step="snapshot",
    )
    rate = explanation_base_rate(health, pooled, iso)
    finding.evidence["base_rate"] = {
        "observed": round(rate.observed, 3),
        "rate": rate.rate,
        "n": rate.n,
    }
    return (
        Suspect(model, experiment, degraded, specific, iso.confidence, rate.rate),
        finding,
        health,
        iso,
    )


def explanation_base_rate(
    health: pl.DataFrame, pooled: pl.DataFrame, iso: ModelIsolation
) -> ShiftBaseRate:
    """How often the top model-experiment's health series moved as much as at this onset,
    elsewhere in its history: a model that moves all the time explains any window."""
    assert iso.top is not None
    model, experiment = iso.top
    src = pooled if experiment == ALL_EXPERIMENTS else health
    part = src.filter((pl.col(c.MODEL) == model) & (pl.col(c.EXPERIMENT) == experiment)).sort(c.TS)
    ts = part[c.TS].cast(pl.Datetime("us", "UTC")).cast(pl.Int64).to_numpy()
    series = {s: part[s].cast(pl.Float64).to_numpy() for s in HEALTH_SERIES if s in part.columns}
    onset, end = _us(iso.onset), _us(iso.end)
    step = int(np.median(np.diff(ts))) if ts.size > 1 else 3_600_000_000
    # the same timing tolerance model isolation uses
    return shift_base_rate(
        ts, series, onset_us=onset, end_us=end, tolerance_us=max(3 * step, (end - onset) // 2)
    )


def _us(t: object) -> int:
    return int(pl.Series([t]).cast(pl.Datetime("us", "UTC")).cast(pl.Int64)[0])


def runner_up(choice_iso: ModelIsolation, suspect: Suspect) -> Suspect | None:
    """The next model (not the suspect's) whose predictions moved at the onset, as a competing
    suspect, or None when no other model moved beyond MODEL_CONFIDENCE. Its confidence is
    its own, capped at the suspect's: it explains the window no better than the top model
    (whose confidence was already corrected for chance)."""
    ranking = choice_iso.ranking
    if ranking.is_empty():
        return None
    others = ranking.filter(
        (pl.col(c.MODEL) != suspect.model) & (pl.col("confidence") >= MODEL_CONFIDENCE)
    )
    if others.is_empty():
        return None
    row = others.row(0, named=True)
    model, experiment = str(row[c.MODEL]), str(row[c.EXPERIMENT])
    level = choice_iso.model_level.get(model)
    arms = [e for e in (level.experiments if level else ()) if e != ALL_EXPERIMENTS]
    degraded = tuple(e for e in (level.degraded if level else ()) if e != ALL_EXPERIMENTS)
    if experiment == ALL_EXPERIMENTS:
        own = others.filter((pl.col(c.MODEL) == model) & (pl.col(c.EXPERIMENT) != ALL_EXPERIMENTS))
        experiment = str(own[c.EXPERIMENT][0]) if own.height else (arms[0] if arms else "")
    specific = 0 < len(degraded) < len(arms)
    conf = min(float(row["confidence"]), suspect.confidence)
    return Suspect(model, experiment, degraded or (experiment,), specific, conf)

"""Candidate windows: a sustained small shift is found, noise is not, and rollout steps are
read as changes (not the state the history starts in)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.anomaly import detect_anomalies
from hawknb.triage.calibration import calibrated
from hawknb.triage.findings import Finding
from hawknb.triage.hypotheses import Hypothesis
from hawknb.triage.models import Suspect
from hawknb.triage.run import _window_doubt
from hawknb.triage.topline import TOPLINE_SEVERITY, Anomaly, sustained_windows
from hawknb.triage.windows import (
    SUSTAINED_WEIGHT,
    WINDOW_PRIOR,
    WindowChoice,
    _certainty,
    _chance_corrected,
    distinct,
    rollout_changes,
)

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _series(shift_at: int | None, size: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = 48 * 10  # ten days at 30 minutes
    hour = (np.arange(n) % 48) / 2
    x = 1000 * (1 + 0.2 * np.cos(2 * np.pi * hour / 24)) + 10 * rng.standard_normal(n)
    if shift_at is not None:
        x[shift_at:] -= size * 10
    ts = [T0 + timedelta(minutes=30 * i) for i in range(n)]
    return pl.DataFrame({"ts": ts, "value": x})


def test_a_sustained_small_drop_is_found_and_dated():
    at = 48 * 9 + 10
    s = _series(at, 3.0, 1)
    res = detect_anomalies(s, min_severity=TOPLINE_SEVERITY)
    found = [w for w in sustained_windows(res) if w.direction < 0]
    assert found, "a 3-sigma drop held for hours is an incident"
    onset = s["ts"][at]
    assert any(abs(w.onset - onset) <= timedelta(hours=1) for w in found)


def test_noise_has_no_sustained_window():
    for seed in range(3):
        res = detect_anomalies(_series(None, 0.0, seed), min_severity=TOPLINE_SEVERITY)
        assert sustained_windows(res) == []


def test_too_short_a_series_has_none():
    s = _series(None, 0.0, 0).head(10)
    assert sustained_windows(detect_anomalies(s, min_severity=TOPLINE_SEVERITY)) == []


class _WS:
    def __init__(self, rollouts: pl.DataFrame | None) -> None:
        self.r = rollouts

    def has(self, name: str) -> bool:
        return name == "rollouts" and self.r is not None

    def table(self, name: str) -> pl.LazyFrame:
        assert self.r is not None
        return self.r.lazy()


def test_rollout_changes_are_steps_not_the_initial_state():
    t = [T0, T0, T0 + timedelta(days=2), T0 + timedelta(days=2), T0 + timedelta(days=3)]
    r = pl.DataFrame(
        {
            "ts": t,
            "model": ["m"] * 5,
            "experiment": ["a"] * 5,
            "snapshot": ["s1", "s0", "s1", "s0", "s1"],
            "traffic": [0.0, 1.0, 0.1, 0.9, 0.1],
        }
    )
    ch = rollout_changes(_WS(r))
    # the start is the initial state; day 2 moves both snapshots; day 3 repeats a share
    assert ch["ts"].to_list() == [t[2], t[3]]
    assert rollout_changes(_WS(None)).is_empty()


# -- chance-corrected explanations and the window choice's margin -------------------------------
def _anomaly(day: int, metric: str = "m") -> Anomaly:
    onset = T0 + timedelta(days=day)
    return Anomaly(metric, onset, onset + timedelta(hours=4), -1, 5.0, 0.9, timedelta(hours=1))


def _suspect(model: str, conf: float, base_rate: float = 0.0) -> Suspect:
    return Suspect(model, "a", ("a",), False, conf, base_rate)


def test_a_model_that_explains_every_window_is_discounted():
    wins = [_anomaly(d) for d in (2, 4, 6, 8)]
    everywhere = [(w, "follower", 0.6) for w in wins]
    s, rate = _chance_corrected(_suspect("follower", 0.6), wins[0], everywhere)
    # it also "explains" the three other incidents: 3 / (3 + WINDOW_PRIOR)
    assert rate == pytest.approx(3 / (3 + WINDOW_PRIOR))
    assert s.confidence == pytest.approx((0.6 - rate) / (1 - rate))
    assert s.confidence < 0.6
    only_here = [(wins[0], "culprit", 0.6), *[(w, None, 0.0) for w in wins[1:]]]
    s, rate = _chance_corrected(_suspect("culprit", 0.6), wins[0], only_here)
    assert rate == 0.0 and s.confidence == pytest.approx(0.6)
    # a culprit that also moved a little at some blip keeps its incident; the blip does not
    blip = [(wins[0], "culprit", 0.6), (wins[1], "culprit", 0.3)]
    s, rate = _chance_corrected(_suspect("culprit", 0.6), wins[0], blip)
    assert rate == 0.0
    s, rate = _chance_corrected(_suspect("culprit", 0.3), wins[1], blip)
    assert rate == pytest.approx(1 / (1 + WINDOW_PRIOR)) and s.confidence == 0.0


def test_the_history_base_rate_discounts_a_model_that_moves_all_the_time():
    w = _anomaly(3)
    s, rate = _chance_corrected(_suspect("m", 0.6, base_rate=0.5), w, [(w, "m", 0.6)])
    assert rate == 0.5 and s.confidence == pytest.approx(0.2)
    # nan: not measured (a suspect named by its rows): no correction from history
    s, rate = _chance_corrected(_suspect("m", 0.6, base_rate=float("nan")), w, [(w, "m", 0.6)])
    assert s.confidence == pytest.approx(0.6)


def test_windows_of_one_incident_on_two_metrics_are_not_rivals():
    a = _anomaly(3, "clicks")
    b = replace(a, metric="revenue", onset=a.onset + timedelta(hours=1))
    assert not distinct(a, b)
    assert distinct(a, _anomaly(5))
    # the other metric's window is the same incident: it neither discounts nor competes
    _, rate = _chance_corrected(_suspect("m", 0.6), a, [(a, "m", 0.6), (b, "m", 0.9)])
    assert rate == 0.0


def _choice(anomaly: Anomaly, score: float) -> WindowChoice:
    f = Finding("topline", checked="", decision="")
    return WindowChoice(anomaly, f, 1.0, None, f, pl.DataFrame(), None, score)  # type: ignore[arg-type]


def test_a_near_tie_halves_the_window_certainty_and_the_verdict_confidence():
    near = [_choice(_anomaly(3), 0.40), _choice(_anomaly(6), 0.39)]
    _certainty(near)
    assert near[0].certainty == pytest.approx(0.40 / 0.79)
    clear = [_choice(_anomaly(3), 0.40), _choice(_anomaly(6), 0.0)]
    _certainty(clear)
    assert clear[0].certainty == 1.0

    def verdict_confidence(choice: WindowChoice, support: float) -> float:
        h = Hypothesis("bad_snapshot", support, snapshot="s")
        _window_doubt([h], choice)
        return calibrated(h, None)

    # a verdict that just convicts on an uncontested window: the least support whose
    # calibrated confidence reaches 0.7 (found on the map in place, whatever its knots)
    support = next(s / 1000 for s in range(1001) if verdict_confidence(clear[0], s / 1000) >= 0.7)
    sure = verdict_confidence(clear[0], support)
    tied = verdict_confidence(near[0], support)
    assert sure >= 0.7, "the same evidence on an uncontested window convicts"
    assert tied < sure - 0.15, "a near-tie between windows cannot convict as firmly"
    assert tied == pytest.approx(
        calibrated(Hypothesis("bad_snapshot", support * near[0].certainty, snapshot="s"), None)
    )


def test_a_sustained_only_window_supports_its_verdict_less():
    """No row alerted: weaker evidence that there is an incident at all."""
    alerted = _choice(_anomaly(3), 0.5)
    quiet = _choice(replace(_anomaly(3), sustained=True), 0.5)
    a, q = Hypothesis("upstream_data", 0.6), Hypothesis("upstream_data", 0.6)
    _window_doubt([a], alerted)
    _window_doubt([q], quiet)
    assert a.support == pytest.approx(0.6)
    assert q.support == pytest.approx(0.6 * SUSTAINED_WEIGHT)
    # the share the window left is kept apart from the cause's own support (what the
    # calibration fit reads): support / window is how well the cause explains its window
    assert a.window == 1.0 and q.window == pytest.approx(SUSTAINED_WEIGHT)
    assert q.support / q.window == pytest.approx(0.6)

"""Candidate windows: a sustained small shift is found, noise is not, and rollout steps are
read as changes (not the state the history starts in)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from hawknb.kernels.anomaly import detect_anomalies
from hawknb.triage.topline import TOPLINE_SEVERITY, sustained_windows
from hawknb.triage.windows import rollout_changes

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

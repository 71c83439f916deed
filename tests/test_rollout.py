"""Snapshot isolation with planted truth: a bad snapshot vs a benign rollout during a
time-wide incident, full cut-overs, and the rollout timeline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from hawknb.kernels.health import prediction_health
from hawknb.kernels.rollout import _few_windows_z, isolate_snapshot, rollout_timeline
from hawknb.workspace import contract as c
from hawknb.workspace.errors import WorkspaceError

START = datetime(2026, 5, 1, tzinfo=timezone.utc)
ONSET = START + timedelta(days=4, hours=13)
END = ONSET + timedelta(hours=10)
HOURS = 5 * 24


def _world(
    *,
    new_share: float,
    new_factor: float,
    time_factor: float,
    ramp_at: datetime = ONSET,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Serving log and rollouts of model m / experiment e: 'old' serves alone until ramp_at,
    then 'new' takes new_share. The new snapshot multiplies predictions by new_factor; from the
    onset on, every prediction is also multiplied by time_factor (a time-wide incident)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=HOURS, freq="h")
    n = 80
    t = np.repeat(ts, n) + pd.to_timedelta(rng.integers(0, 3600, HOURS * n), "s")
    hour = t.hour.to_numpy()
    truth = 0.08 * (1 + 0.5 * np.sin(2 * np.pi * hour / 24)) * rng.lognormal(0, 0.3, t.size)
    truth = np.clip(truth, 1e-3, 0.9)
    y = (rng.random(t.size) < truth).astype(float)
    after_ramp = t >= pd.Timestamp(ramp_at)
    is_new = after_ramp & (rng.random(t.size) < new_share)
    p = truth * np.where(is_new, new_factor, 1.0)
    p = p * np.where(t >= pd.Timestamp(ONSET), time_factor, 1.0)
    serving = pd.DataFrame(
        {
            c.TS: t,
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: np.where(is_new, "new", "old"),
            c.PREDICTION: np.clip(p, 1e-4, 0.999),
            c.LABEL: y,
            "f1": rng.normal(size=t.size),
        }
    )
    rollouts = pd.DataFrame(
        {
            c.TS: [pd.Timestamp(START), pd.Timestamp(ramp_at), pd.Timestamp(ramp_at)],
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: ["old", "old", "new"],
            c.TRAFFIC: [1.0, 1 - new_share, new_share],
        }
    )
    if new_share == 1.0:
        rollouts = rollouts.iloc[[0, 2]]
    return serving, rollouts


def _isolate(serving: pd.DataFrame, rollouts: pd.DataFrame | None, **kw):
    h = prediction_health(serving, by_snapshot=True)
    return isolate_snapshot(rollouts, h, model="m", experiment="e", onset=ONSET, end=END, **kw)


def test_bad_snapshot_ramping_at_onset_is_the_suspect() -> None:
    serving, rollouts = _world(new_share=0.5, new_factor=2.0, time_factor=1.0)
    iso = _isolate(serving, rollouts)
    assert iso.is_snapshot_cause
    assert iso.suspect == "new"
    assert iso.rolled_out == "new"
    assert iso.confidence > 0.6
    new = iso.snapshots.filter(pl.col(c.SNAPSHOT) == "new").row(0, named=True)
    assert new["shared_windows"] >= 8
    assert new["share_after"] == pytest.approx(0.5, abs=0.05)
    assert new["share_before"] == 0.0
    assert new["ramp_ts"] == ONSET
    assert new["explained"] > 0.6
    # evidence per series: the new snapshot predicts ~2x the old in the same hours
    mp = iso.evidence.filter(pl.col(c.SNAPSHOT) == "new", pl.col("series") == "mean_prediction")
    assert mp["value"][0] / mp["others"][0] == pytest.approx(2.0, rel=0.2)


def test_benign_rollout_during_time_wide_shift_is_not_the_snapshot() -> None:
    serving, rollouts = _world(new_share=0.5, new_factor=1.0, time_factor=2.0)
    iso = _isolate(serving, rollouts)
    assert not iso.is_snapshot_cause
    assert iso.suspect is None
    assert iso.rolled_out == "new"
    assert iso.confidence > 0.5
    assert iso.snapshots["cause_score"].max() < 0.3
    assert any("not the snapshot" in n for n in iso.notes)


def test_ramps_read_from_serving_shares_without_rollouts() -> None:
    serving, _ = _world(new_share=0.3, new_factor=0.4, time_factor=1.0, seed=2)
    iso = _isolate(serving, None)
    assert iso.suspect == "new" and iso.is_snapshot_cause
    serving, _ = _world(new_share=0.3, new_factor=1.0, time_factor=0.4, seed=2)
    assert not _isolate(serving, None).is_snapshot_cause


def test_no_rollout_near_onset() -> None:
    serving, rollouts = _world(
        new_share=0.5, new_factor=1.0, time_factor=2.0, ramp_at=START + timedelta(days=1)
    )
    iso = _isolate(serving, rollouts)
    assert not iso.is_snapshot_cause and iso.rolled_out is None
    assert iso.confidence > 0.5


def test_full_cutover_cannot_rule_out_time_effects() -> None:
    serving, rollouts = _world(new_share=1.0, new_factor=2.0, time_factor=1.0)
    iso = _isolate(serving, rollouts)
    assert iso.suspect == "new" and iso.is_snapshot_cause
    assert iso.confidence <= 0.4
    assert any("time effects" in n for n in iso.notes)


def test_short_canary_z_borrows_the_reference_noise() -> None:
    """One or two shared windows (a 15-30 minute canary) cannot estimate the spread of the
    paired differences; the noise is borrowed from the other snapshots' reference windows.
    A gross difference must then score, and noise-sized ones must not."""
    rng = np.random.default_rng(0)
    other_v = 1.0 + rng.normal(0, 0.1, 48)  # 48 reference windows of 50 rows, sd 0.1
    other_n = np.full(48, 50.0)
    reference = np.ones(48, dtype=bool)
    n_j, n_o = np.array([5.0, 5.0]), np.array([45.0, 45.0])
    hw = n_j * n_o / (n_j + n_o)

    def z(d: np.ndarray) -> float:
        delta = float(np.average(d, weights=hw))
        return _few_windows_z(d, hw, delta, n_j, n_o, other_v, other_n, reference, 1.0)

    assert z(np.array([1e3, 2e3])) > 100  # blown-up predictions: convicting evidence
    # per-window sd of a 5-row side is ~0.1 * sqrt(50 / 5 + 50 / 45) ~ 0.33: noise stays weak
    benign = [abs(z(rng.normal(0, 0.33, 2))) for _ in range(500)]
    assert np.quantile(benign, 0.99) < 2.0  # isolation.Z_LOW: no strength at all
    assert max(benign) < 4.0  # strength < 0.5 even at the worst draw: never convicts alone
    few = reference.copy()
    few[3:] = False  # too few reference windows to learn a noise level from
    d = np.array([1e3])
    assert np.isnan(_few_windows_z(d, hw[:1], 1e3, n_j[:1], n_o[:1], other_v, other_n, few, 1.0))


def test_rollout_timeline_fills_drained_snapshots() -> None:
    _, rollouts = _world(new_share=0.5, new_factor=1.0, time_factor=1.0)
    extra = pd.DataFrame(
        {
            c.TS: [pd.Timestamp(END)],
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: ["new"],
            c.TRAFFIC: [1.0],
        }
    )
    tl = rollout_timeline(pd.concat([rollouts, extra]))
    assert tl.columns == [c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.TRAFFIC]
    old = tl.filter(pl.col(c.SNAPSHOT) == "old")[c.TRAFFIC].to_list()
    new = tl.filter(pl.col(c.SNAPSHOT) == "new")[c.TRAFFIC].to_list()
    assert old == [1.0, 0.5, 0.0]
    assert new == [0.0, 0.5, 1.0]
    assert np.allclose(tl.group_by(c.TS).agg(pl.col(c.TRAFFIC).sum())[c.TRAFFIC], 1.0)


def test_bad_inputs() -> None:
    serving, rollouts = _world(new_share=0.5, new_factor=1.0, time_factor=1.0)
    bad = rollouts.assign(traffic=[1.0, 1.5, -0.5])
    with pytest.raises(WorkspaceError, match="traffic"):
        rollout_timeline(bad)
    with pytest.raises(WorkspaceError, match="missing"):
        rollout_timeline(rollouts.drop(columns=[c.TRAFFIC]))
    with pytest.raises(WorkspaceError, match="twice"):
        rollout_timeline(pd.concat([rollouts, rollouts]))
    h = prediction_health(serving, by_snapshot=True)
    with pytest.raises(ValueError, match="no rows"):
        isolate_snapshot(rollouts, h, model="zz", experiment="e", onset=ONSET, end=END)
    with pytest.raises(ValueError, match="snapshot"):
        isolate_snapshot(
            rollouts, prediction_health(serving), model="m", experiment="e", onset=ONSET, end=END
        )
    with pytest.raises(ValueError, match="before onset"):
        isolate_snapshot(rollouts, h, model="m", experiment="e", onset=END, end=ONSET)

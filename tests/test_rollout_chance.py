"""Snapshot isolation's chance correction: every retrain predicts a little differently from
its predecessor, and with thousands of rows that difference is 'significant'. A rollout's
same-hours A/B convicts only when the new snapshot differs more than this model's earlier
snapshots differed from each other in the hours they shared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl

from hawknb.kernels.health import prediction_health
from hawknb.kernels.isolation import Shift, strength
from hawknb.kernels.rollout import _power, isolate_snapshot
from hawknb.workspace import contract as c

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 8
ONSET = START + timedelta(days=DAYS - 1, hours=10)
END = ONSET + timedelta(hours=10)
#: how much each retrain scales the predictions of the one before (a healthy model's spread)
RETRAIN_SD = 0.1


def _history(last_factor: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A snapshot a day, each ramped to half the traffic for 8 hours at 10:00 and then alone;
    each retrain scales predictions by 1 + N(0, RETRAIN_SD); the one rolled out at the onset
    scales its predecessor's by ``last_factor``. No incident besides what that snapshot does."""
    rng = np.random.default_rng(seed)
    n_snap = DAYS
    factor = 1.0 + rng.normal(0.0, RETRAIN_SD, n_snap)
    factor[0] = 1.0
    factor[-1] = factor[-2] * last_factor  # relative to the snapshot it replaces
    ramps = [START + timedelta(days=k, hours=10) for k in range(n_snap)]
    ramps[0] = START
    hours = DAYS * 24 + 10
    n = 800
    ts = pd.date_range(START, periods=hours, freq="h")
    t = np.repeat(ts, n) + pd.to_timedelta(rng.integers(0, 3600, hours * n), "s")
    truth = np.clip(0.1 * rng.lognormal(0, 0.4, t.size), 1e-3, 0.9)
    y = (rng.random(t.size) < truth).astype(float)
    snap = np.zeros(t.size, dtype=int)
    for k in range(1, n_snap):
        ramp = pd.Timestamp(ramps[k])
        full = ramp + pd.Timedelta(hours=8)
        on = np.asarray(t >= ramp) & (np.asarray(t >= full) | (rng.random(t.size) < 0.5))
        snap[on] = k
    names = np.array([f"s{k}" for k in range(n_snap)])
    serving = pd.DataFrame(
        {
            c.TS: t,
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: names[snap],
            c.PREDICTION: np.clip(truth * factor[snap], 1e-4, 0.999),
            c.LABEL: y,
        }
    )
    rows = []
    for k in range(n_snap):
        if k == 0:
            rows.append((ramps[0], "s0", 1.0))
            continue
        rows += [(ramps[k], f"s{k - 1}", 0.5), (ramps[k], f"s{k}", 0.5)]
        rows += [(ramps[k] + timedelta(hours=8), f"s{k}", 1.0)]
    rollouts = pd.DataFrame(rows, columns=[c.TS, c.SNAPSHOT, c.TRAFFIC])
    rollouts[c.MODEL], rollouts[c.EXPERIMENT] = "m", "e"
    return serving, rollouts


def _isolate(last_factor: float, seed: int = 0):
    serving, rollouts = _history(last_factor, seed)
    h = prediction_health(serving, by_snapshot=True)
    return isolate_snapshot(rollouts, h, model="m", experiment="e", onset=ONSET, end=END)


#: seeds whose benign retrain the row-level evidence alone would convict (checked below)
SEEDS = (2, 4, 5)


def test_a_retrain_that_differs_as_much_as_retrains_do_is_not_convicted() -> None:
    for seed in SEEDS:
        iso = _isolate(1.0 + 1.2 * RETRAIN_SD, seed)
        assert iso.rolled_out == f"s{DAYS - 1}"
        new = iso.evidence.filter(
            (pl.col(c.SNAPSHOT) == iso.rolled_out) & (pl.col("series") == "mean_prediction")
        ).row(0, named=True)
        assert new["history"] >= 3
        # the row-level z alone convicts (its strength x explained share is above 0.5) ...
        assert strength(abs(new["z"])) * (new["explained"] or 0.0) > 0.5
        # ... but the difference is one earlier retrains made too
        assert abs(new["chance_z"]) < 2.0
        assert not iso.is_snapshot_cause, iso.notes


def test_a_snapshot_far_beyond_the_usual_retrain_difference_is_convicted() -> None:
    for seed in SEEDS:
        iso = _isolate(1.0 + 10 * RETRAIN_SD, seed)
        assert iso.is_snapshot_cause and iso.suspect == f"s{DAYS - 1}", iso.notes


def test_without_history_the_row_level_test_stands() -> None:
    """Fewer than three earlier snapshots with shared hours: no chance level, no cap."""
    serving, rollouts = _history(1.0 + 10 * RETRAIN_SD)
    late = serving[c.TS] >= pd.Timestamp(START + timedelta(days=DAYS - 2))
    h = prediction_health(serving[late], by_snapshot=True)
    iso = isolate_snapshot(rollouts, h, model="m", experiment="e", onset=ONSET, end=END)
    assert iso.evidence["chance_z"].is_null().all()
    assert iso.is_snapshot_cause


def _shift(delta: float, z: float) -> Shift:
    return Shift(0.0, delta, delta, z, None, 1.0, False, 100, 10)


def _ev(series: list[str], delta: list[float | None], z: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"series": series, "delta": delta, "z": z}, schema_overrides={"delta": pl.Float64}
    )


def test_an_ab_without_the_rows_to_see_the_shift_does_not_exonerate() -> None:
    """A canary on 10% of an arm must differ by 10x the arm's shift to explain it. An A/B
    whose standard error is far below that could have seen it (power 1); one with no labeled
    rows in the shifted series (z unknown) could not (power 0); nothing shifted: 1."""
    totals = {"ne": _shift(0.05, 6.0), "mean_prediction": _shift(0.001, 0.5)}
    seen = _ev(["ne", "mean_prediction"], [0.01, 0.0], [0.5, 0.1])  # se 0.02 vs need 0.5
    assert _power(seen, 0.1, totals) == 1.0
    blind = _ev(["ne", "mean_prediction"], [None, 0.0], [None, 0.1])
    assert _power(blind, 0.1, totals) == 0.0
    noisy = _ev(["ne"], [0.4], [0.5])  # se 0.8: a 0.5 difference is 0.6 se away
    assert 0.0 < _power(noisy, 0.1, totals) < 0.3
    assert _power(seen, 0.1, {"ne": _shift(0.05, 1.0)}) == 1.0

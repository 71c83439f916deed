"""Model isolation on serving logs with a planted truth (built here, not by the simulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hawknb.kernels.health import prediction_health
from hawknb.kernels.isolation import rank_model_experiments, series_shift, strength
from hawknb.workspace import contract as c

START = datetime(2026, 4, 1, tzinfo=timezone.utc)
ONSET = START + timedelta(days=7, hours=9)
END = ONSET + timedelta(hours=8)
HOURS = 7 * 24 + 24


def _serving(shifts: dict[tuple[str, str], tuple[datetime | None, float]], seed: int = 0):
    """Probability predictions with a daily cycle; shifts[(model, exp)] = (when, factor)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=HOURS, freq="h")
    frames = []
    for (model, exp), (when, factor) in shifts.items():
        n = 60
        t = np.repeat(ts, n)
        hour = t.hour.to_numpy()
        base = 0.1 * (1 + 0.4 * np.sin(2 * np.pi * hour / 24))
        p = np.clip(base * rng.lognormal(0, 0.3, t.size), 1e-4, 0.999)
        y = (rng.random(t.size) < p).astype(float)
        if when is not None:
            late = t >= pd.Timestamp(when)
            p = np.where(late, np.clip(p * factor, 1e-4, 0.999), p)
        frames.append(
            pd.DataFrame(
                {
                    c.TS: t + pd.to_timedelta(rng.integers(0, 3600, t.size), "s"),
                    c.MODEL: model,
                    c.EXPERIMENT: exp,
                    c.SNAPSHOT: "s1",
                    c.PREDICTION: p,
                    c.LABEL: y,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    serving = _serving(
        {
            ("ads", "ctrl"): (None, 1.0),
            ("ranker", "ctrl"): (ONSET, 1.8),  # the culprit, in all its experiments
            ("ranker", "test"): (ONSET, 1.8),
            ("early", "ctrl"): (ONSET - timedelta(days=3), 1.8),  # moved days before
            ("solo", "ctrl"): (None, 1.0),
            ("solo", "test"): (ONSET + timedelta(minutes=30), 0.5),  # only one experiment
        }
    )
    return prediction_health(serving)


def test_picks_the_model_that_shifted_at_the_onset(planted: pl.DataFrame) -> None:
    iso = rank_model_experiments(planted, onset=ONSET, end=END)
    r = iso.ranking
    top_models = set(r.head(3)[c.MODEL].to_list())
    assert top_models == {"ranker", "solo"}
    by = {(row[c.MODEL], row[c.EXPERIMENT]): row for row in r.iter_rows(named=True)}
    for key in [("ranker", "ctrl"), ("ranker", "test"), ("solo", "test")]:
        assert by[key]["confidence"] > 0.6, key
        assert "mean_prediction" in by[key]["shifted_series"]
        assert abs(by[key]["change_ts"] - ONSET) <= timedelta(hours=2)
    for key in [("ads", "ctrl"), ("early", "ctrl"), ("solo", "ctrl")]:
        assert by[key]["confidence"] < 0.3, (key, by[key])
        assert by[key]["rank"] > 3
    assert iso.top in {("ranker", "ctrl"), ("ranker", "test"), ("solo", "test")}
    assert by[("ranker", "ctrl")]["shift"] > 0  # predictions went up
    assert by[("solo", "test")]["shift"] < 0


def test_model_level_scope(planted: pl.DataFrame) -> None:
    iso = rank_model_experiments(planted, onset=ONSET, end=END)
    assert iso.model_level["ranker"].scope == "model"
    assert iso.model_level["ranker"].experiment_specific is False
    assert iso.model_level["solo"].scope == "experiment"
    assert iso.model_level["solo"].degraded == ("test",)
    assert iso.model_level["ads"].scope == "none"
    assert iso.model_level["early"].experiment_specific is None


def test_nothing_moved_gives_low_confidence() -> None:
    h = prediction_health(_serving({("a", "x"): (None, 1.0), ("b", "x"): (None, 1.0)}, seed=3))
    iso = rank_model_experiments(h, onset=ONSET, end=END)
    assert iso.confidence < 0.3
    assert iso.ranking["confidence"].max() < 0.3


def test_nan_rate_counts_only_upwards_and_metric_correlation(planted: pl.DataFrame) -> None:
    # inject NaNs into 'ads' after the onset: its nan_rate is the series that moved
    h = planted.with_columns(
        pl.when((pl.col(c.MODEL) == "ads") & (pl.col(c.TS) >= ONSET))
        .then(0.2)
        .otherwise(pl.col("nan_rate"))
        .alias("nan_rate")
    )
    metric = (
        planted.filter(pl.col(c.MODEL) == "ranker", pl.col(c.EXPERIMENT) == "ctrl")
        .select(c.TS, (-pl.col("mean_prediction")).alias(c.VALUE))
        .to_pandas()
    )
    iso = rank_model_experiments(h, onset=ONSET, end=END, metric_series=metric)
    ads = iso.ranking.filter(pl.col(c.MODEL) == "ads").row(0, named=True)
    assert ads["shifted_series"] == ["nan_rate"]
    assert ads["confidence"] > 0.5
    ranker = iso.ranking.filter(pl.col(c.MODEL) == "ranker").row(0, named=True)
    assert ranker["correlation"] > 0.9
    # lower NaN rate is not a degradation
    h2 = planted.with_columns(
        pl.when(pl.col(c.TS) < ONSET).then(0.2).otherwise(0.0).alias("nan_rate")
    )
    iso2 = rank_model_experiments(h2, onset=ONSET, end=END, series=("nan_rate",))
    assert iso2.ranking["confidence"].max() == 0.0


def test_explicit_reference_and_bad_inputs(planted: pl.DataFrame) -> None:
    iso = rank_model_experiments(
        planted.to_pandas(),
        onset=ONSET,
        end=END,
        reference=(ONSET - timedelta(days=3), ONSET - timedelta(hours=1)),
    )
    assert iso.top is not None and iso.top[0] in {"ranker", "solo"}
    with pytest.raises(ValueError, match="before onset"):
        rank_model_experiments(planted, onset=END, end=ONSET)
    with pytest.raises(ValueError, match="naive"):
        rank_model_experiments(planted, onset=ONSET.replace(tzinfo=None), end=END)
    with pytest.raises(ValueError, match="model"):
        rank_model_experiments(planted.drop(c.MODEL), onset=ONSET, end=END)
    with pytest.raises(ValueError, match="series"):
        rank_model_experiments(planted.select(c.MODEL, c.EXPERIMENT, c.TS), onset=ONSET, end=END)
    with pytest.raises(ValueError, match="reference"):
        rank_model_experiments(
            planted, onset=ONSET, end=END, reference=(ONSET, ONSET + timedelta(hours=1))
        )


@settings(max_examples=30, deadline=None)
@given(
    shift=st.floats(-50, 50).filter(lambda v: abs(v) > 12),
    at=st.integers(24 * 3, 24 * 6),
    seed=st.integers(0, 1000),
)
def test_series_shift_recovers_planted_step(shift: float, at: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 24 * 7
    hours = np.arange(n)
    x = 100 + 20 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, n)
    x[at:] += shift
    us = hours.astype(np.int64) * 3_600_000_000
    sh = series_shift(
        us,
        x,
        onset_us=int(us[at]),
        end_us=int(us[-1]),
        ref_start_us=0,
        tolerance_us=2 * 3_600_000_000,
    )
    assert sh is not None and sh.seasonal
    assert np.sign(sh.z) == np.sign(shift)
    assert abs(sh.z) > 6 and strength(sh.z) == 1.0
    assert sh.delta == pytest.approx(shift, abs=3)
    assert sh.timing > 0.6
    # no shift: small z
    y = x.copy()
    y[at:] -= shift
    quiet = series_shift(
        us, y, onset_us=int(us[at]), end_us=int(us[-1]), ref_start_us=0, tolerance_us=7_200_000_000
    )
    assert quiet is not None and abs(quiet.z) < 3 and strength(quiet.z) < 0.3


def test_the_window_that_holds_the_onset_counts_on_neither_side(planted: pl.DataFrame) -> None:
    """An onset inside a health window: that window mixes rows from before and after, so what
    it holds must not set the evidence (where the onset falls in the windows would)."""
    onset = ONSET + timedelta(minutes=20)  # inside the ONSET window [9:00, 10:00)
    inside = pl.col(c.TS) == ONSET
    wild = planted.with_columns(
        pl.when(inside).then(pl.col(col) * 50).otherwise(pl.col(col)).alias(col)
        for col in ("mean_prediction", "median_prediction", "p90_prediction", "calibration")
    )
    ranked = [
        rank_model_experiments(h, onset=onset, end=END).ranking.select(
            c.MODEL, c.EXPERIMENT, "confidence"
        )
        for h in (planted, wild)
    ]
    assert ranked[0].equals(ranked[1])
    # the ONSET window itself (with the onset at its start) is after: the wild one moves it
    moved = rank_model_experiments(wild, onset=ONSET, end=END).ranking
    assert not moved.select(c.MODEL, c.EXPERIMENT, "confidence").equals(
        rank_model_experiments(planted, onset=ONSET, end=END).ranking.select(
            c.MODEL, c.EXPERIMENT, "confidence"
        )
    )

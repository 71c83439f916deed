"""The timeline's baseline inside an anomaly is the pre-onset expectation, not the anomaly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from hawknb.kernels.anomaly import detect_anomalies
from hawknb.widgets._baseline import baseline_before

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _series(drop_at: int = 24 * 10, n: int = 24 * 13, drop: float = 0.5) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    h = np.arange(n)
    normal = 10 + 3 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.2, n)
    value = np.where(h >= drop_at, normal * drop, normal)
    return pl.DataFrame(
        {"ts": [T0 + dt.timedelta(hours=int(i)) for i in h], "value": value, "normal": normal}
    )


def test_baseline_inside_the_anomaly_follows_the_seasonal_pattern_before_it() -> None:
    df = _series()
    res = detect_anomalies(df.select("ts", "value"))
    assert res.windows, "the drop is detected"
    onset = res.windows[0].onset
    fitted = baseline_before(res.baseline, onset, res.period)
    inside = fitted.filter(pl.col("ts") >= onset)
    normal = df.filter(pl.col("ts") >= onset)["normal"].to_numpy()
    # the projected baseline tracks what the metric would have been (the un-dropped series) ...
    err = np.abs(inside["baseline"].to_numpy() - normal)
    assert np.median(err) < 0.5
    # ... while the detector's trailing baseline sank towards the anomaly
    old = res.baseline.filter(pl.col("ts") >= onset)["baseline"].to_numpy()
    assert np.median(np.abs(old - normal)) > 2 * np.median(err)
    # the data is below the band inside the anomaly, the band keeps its pre-onset width
    assert (inside["value"] < inside["lower"]).mean() > 0.9
    before = fitted.filter(pl.col("ts") < onset)
    assert before.equals(res.baseline.filter(pl.col("ts") < onset))


def test_baseline_before_leaves_short_or_baseline_less_frames_alone() -> None:
    df = _series(n=30, drop_at=5)
    res = detect_anomalies(df.select("ts", "value"), period=0)
    short = baseline_before(res.baseline, T0 + dt.timedelta(hours=3), None)
    assert short.equals(res.baseline)
    plain = df.select("ts", "value")
    assert baseline_before(plain, T0 + dt.timedelta(hours=20), 24).equals(plain)

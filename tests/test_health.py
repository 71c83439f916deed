"""Prediction health: values against hand computation and a numpy reference; bad inputs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hawknb.kernels.health import prediction_health
from hawknb.workspace import contract as c
from hawknb.workspace.errors import WorkspaceError

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _small() -> pl.DataFrame:
    m = timedelta(minutes=1)
    return pl.DataFrame(
        {
            c.TS: [T0, T0 + 10 * m, T0 + 20 * m, T0 + 30 * m, T0 + 40 * m, T0 + 65 * m, T0],
            c.MODEL: ["a", "a", "a", "a", "a", "a", "b"],
            c.EXPERIMENT: ["e", "e", "e", "e", "f", "e", "e"],
            c.SNAPSHOT: ["s1", "s1", "s2", "s2", "s1", "s1", "s9"],
            c.PREDICTION: [0.2, 0.4, float("nan"), 0.6, 0.5, float("inf"), 3.0],
            c.LABEL: [0.0, 1.0, 1.0, None, 1.0, 0.0, 2.0],
        }
    )


def test_hand_computed_window() -> None:
    h = prediction_health(_small())
    row = h.filter((pl.col(c.MODEL) == "a") & (pl.col(c.EXPERIMENT) == "e")).row(0, named=True)
    assert row[c.TS] == T0
    assert row["rows"] == 4
    assert row["nan_rate"] == pytest.approx(0.25)
    assert row["mean_prediction"] == pytest.approx(0.4)
    assert row["median_prediction"] == pytest.approx(0.4)
    assert row["std_prediction"] == pytest.approx(0.2)  # sample std of 0.2, 0.4, 0.6
    assert row["p90_prediction"] == pytest.approx(0.56)  # linear between 0.4 and 0.6
    # labeled rows with finite predictions: (0.2, 0) and (0.4, 1)
    assert row["labeled_rows"] == 2
    assert row["calibration"] == pytest.approx(0.6)
    ll = -(math.log(0.8) + math.log(0.4)) / 2
    assert row["log_loss"] == pytest.approx(ll)
    assert row["ne"] == pytest.approx(ll / math.log(2))
    # model a at T0 has 4 rows in e and 1 in f
    assert row["traffic_share"] == pytest.approx(0.8)
    # squared error (0.04 + 0.36) over the labels' sum of squares around their mean 0.5 (0.5)
    assert row["nmse"] == pytest.approx(0.8)


def test_nmse_rises_when_a_regression_model_loses_its_signal() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.normal(size=n)
    good = y + rng.normal(scale=0.1, size=n)
    bad = np.full(n, y.mean()) + rng.normal(scale=0.1, size=n)  # a feature stuck at default
    ts = [T0] * n + [T0 + timedelta(hours=1)] * n
    frame = pl.DataFrame(
        {
            c.TS: ts,
            c.MODEL: "r",
            c.EXPERIMENT: "e",
            c.PREDICTION: np.concatenate([good, bad]),
            c.LABEL: np.concatenate([y, y]),
        }
    )
    h = prediction_health(frame).sort(c.TS)
    assert h["ne"].null_count() == 2  # not a probability model
    assert h["nmse"][0] == pytest.approx(np.mean((good - y) ** 2) / np.var(y))
    assert h["nmse"][0] < 0.05
    assert h["nmse"][1] > 0.9


def test_all_nan_window_and_non_probability_model() -> None:
    h = prediction_health(_small())
    late = h.filter(pl.col(c.TS) == T0 + timedelta(hours=1)).row(0, named=True)
    assert late["nan_rate"] == 1.0
    assert late["mean_prediction"] is None
    assert late["calibration"] is None
    b = h.filter(pl.col(c.MODEL) == "b").row(0, named=True)
    # predictions of 3 and labels of 2 are not probabilities: no log loss / NE, still calibration
    assert b["log_loss"] is None and b["ne"] is None
    assert b["calibration"] == pytest.approx(1.5)


def test_by_snapshot_shares_and_pandas_input_not_mutated() -> None:
    df = _small().to_pandas()
    before = df.copy()
    h = prediction_health(df, by_snapshot=True)
    pd.testing.assert_frame_equal(df, before)
    assert {c.SNAPSHOT, "snapshot_share"} <= set(h.columns)
    sums = h.group_by(c.MODEL, c.EXPERIMENT, c.TS).agg(pl.col("snapshot_share").sum())
    assert np.allclose(sums["snapshot_share"].to_numpy(), 1.0)
    s2 = h.filter((pl.col(c.SNAPSHOT) == "s2") & (pl.col(c.TS) == T0)).row(0, named=True)
    assert s2["snapshot_share"] == pytest.approx(0.5)
    assert s2["nan_rate"] == pytest.approx(0.5)
    assert s2["calibration"] is None  # the only labeled s2 row has a NaN prediction


def test_no_label_column_and_lazy_input() -> None:
    lf = _small().drop(c.LABEL).lazy()
    h = prediction_health(lf, every="1d")
    assert h.height == 3  # (a,e), (a,f), (b,e) in one day
    assert h["calibration"].null_count() == 3
    assert h["ne"].null_count() == 3
    assert h.filter(pl.col(c.EXPERIMENT) == "e", pl.col(c.MODEL) == "a")["rows"][0] == 5


def test_zero_label_sum_gives_null_calibration() -> None:
    df = _small().with_columns(pl.lit(0.0).alias(c.LABEL))
    h = prediction_health(df)
    assert h["calibration"].null_count() == h.height
    assert h["ne"].null_count() == h.height  # base rate 0: entropy 0, NE undefined


def test_bad_inputs() -> None:
    with pytest.raises(WorkspaceError, match="prediction"):
        prediction_health(_small().drop(c.PREDICTION))
    with pytest.raises(WorkspaceError, match="snapshot"):
        prediction_health(_small().drop(c.SNAPSHOT), by_snapshot=True)
    with pytest.raises(WorkspaceError, match="timestamp"):
        prediction_health(_small().with_columns(pl.col(c.TS).cast(pl.String)))
    with pytest.raises(ValueError, match="duration"):
        prediction_health(_small(), every="hourly")
    with pytest.raises(TypeError):
        prediction_health([1, 2, 3])


@settings(max_examples=40, deadline=None)
@given(
    preds=st.lists(
        st.one_of(
            st.floats(0, 1),
            st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        ),
        min_size=1,
        max_size=60,
    ),
    seed=st.integers(0, 10_000),
)
def test_matches_numpy_reference(preds: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(preds)
    p = np.asarray(preds)
    y = rng.integers(0, 2, n).astype(float)
    y[rng.random(n) < 0.3] = np.nan
    hours = rng.integers(0, 3, n)
    exps = rng.choice(["x", "y"], n)
    df = pd.DataFrame(
        {
            c.TS: pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(hours * 60 + 7, "m"),
            c.MODEL: "m",
            c.EXPERIMENT: exps,
            c.SNAPSHOT: "s",
            c.PREDICTION: p,
            c.LABEL: y,
        }
    )
    h = prediction_health(df)
    assert h["rows"].sum() == n
    for row in h.iter_rows(named=True):
        sel = (exps == row[c.EXPERIMENT]) & (hours == row[c.TS].hour)
        ps, ys = p[sel], y[sel]
        fin = np.isfinite(ps)
        assert row["rows"] == sel.sum()
        assert row["nan_rate"] == pytest.approx(1 - fin.mean())
        if fin.any():
            assert row["mean_prediction"] == pytest.approx(ps[fin].mean())
            assert row["median_prediction"] == pytest.approx(np.median(ps[fin]))
        lab = fin & ~np.isnan(ys)
        if lab.any() and ys[lab].sum() > 0:
            assert row["calibration"] == pytest.approx(ps[lab].sum() / ys[lab].sum())
        else:
            assert row["calibration"] is None
        model_rows = (hours == row[c.TS].hour).sum()
        assert row["traffic_share"] == pytest.approx(sel.sum() / model_rows)


def test_label_coverage_counts_the_labels_that_arrived_in_the_window() -> None:
    from hawknb.kernels.health import label_coverage

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ts = [t0 + timedelta(hours=i) for i in range(8)]
    frame = pl.DataFrame(
        {
            "ts": ts,
            "model": ["a"] * 4 + ["b"] * 4,
            "label": [1.0, None, None, 0.0, None, None, None, None],
        }
    )
    end = t0 + timedelta(hours=8)
    assert label_coverage(frame, "a", t0, end) == 0.5
    assert label_coverage(frame.lazy(), "b", t0, end) == 0.0
    assert label_coverage(frame, None, t0, end) == 0.25
    # the window is [start, end): the row at `end` is outside
    assert label_coverage(frame, "a", t0 + timedelta(hours=1), t0 + timedelta(hours=3)) == 0.0
    # in another zone the times are compared as instants
    other = frame.with_columns(pl.col("ts").dt.convert_time_zone("Asia/Tokyo"))
    assert label_coverage(other, "a", t0, end) == 0.5
    assert label_coverage(frame, "zzz", t0, end) is None
    assert label_coverage(frame.drop("label"), "a", t0, end) is None


def test_windows_move_with_the_offset_and_a_shifted_log_gives_the_same_health() -> None:
    """An offset puts the windows on the data's phase: the log moved by 17 minutes, with its
    windows moved by 17 minutes too, has the same health per window, moved (the clock's
    own grid would have split its rows differently)."""
    rng = np.random.default_rng(3)
    n = 4_000
    log = pl.DataFrame(
        {
            c.TS: [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 6 * 3600, n)],
            c.MODEL: rng.choice(["a", "b"], n),
            c.EXPERIMENT: "e",
            c.PREDICTION: rng.beta(2, 5, n),
            c.LABEL: (rng.random(n) < 0.3).astype(float),
        }
    )
    shift = timedelta(minutes=17)
    moved = log.with_columns(pl.col(c.TS) + shift)
    base = prediction_health(log, every="1h").sort(c.MODEL, c.TS)
    same = prediction_health(moved, every="1h", offset=shift).sort(c.MODEL, c.TS)
    assert (same[c.TS] - base[c.TS]).unique().to_list() == [shift]
    # equal up to float summation order (the streaming engine's threads may add in any order)
    assert_frame_equal(same.drop(c.TS), base.drop(c.TS), rel_tol=1e-12, abs_tol=1e-15)
    # the clock's grid cuts the moved log elsewhere: the window counts differ
    grid = prediction_health(moved, every="1h").sort(c.MODEL, c.TS)
    assert grid["rows"].to_list() != base["rows"].to_list()
    assert all(t.minute == 0 for t in grid[c.TS])
    # an offset of a whole window is no offset
    whole = prediction_health(log, every="1h", offset=timedelta(hours=1)).sort(c.MODEL, c.TS)
    assert_frame_equal(whole, base, rel_tol=1e-12, abs_tol=1e-15)

"""Calibration / NE / ECE against hand-computed values; null labels and NaN predictions."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hawknb.kernels.calibration import (
    calibration,
    calibration_frame,
    calibration_report,
    expected_calibration_error,
    log_loss,
    normalized_entropy,
    reliability_curve,
)
from hawknb.workspace.errors import WorkspaceError

P = [0.2, 0.4, 0.6, 0.8]
Y = [0.0, 1.0, 1.0, 0.0]


def test_hand_computed_values() -> None:
    assert calibration(P, Y) == pytest.approx(2.0 / 2.0)
    assert calibration([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0]) == pytest.approx(2.0)
    ll = -(math.log(0.8) + math.log(0.4) + math.log(0.6) + math.log(0.2)) / 4
    assert log_loss(P, Y) == pytest.approx(ll)
    assert normalized_entropy(P, Y) == pytest.approx(ll / math.log(2))  # base rate 0.5
    # two bins [0, .5), [.5, 1]: (.3 vs .5) and (.7 vs .5), each half the rows
    assert expected_calibration_error(P, Y, n_bins=2) == pytest.approx(0.2)
    curve = reliability_curve(P, Y, n_bins=2)
    assert curve.mean_prediction.tolist() == pytest.approx([0.3, 0.7])
    assert curve.count.tolist() == [2, 2]


def test_constant_base_rate_predictor_has_ne_one() -> None:
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], float)
    assert normalized_entropy(np.full(10, y.mean()), y) == pytest.approx(1.0)
    assert normalized_entropy(np.full(10, 0.5), y) > 1.0


def test_null_labels_skipped_nan_predictions_counted() -> None:
    p = pl.Series([0.2, 0.4, float("nan"), 0.6, float("inf"), 0.8, 0.9])
    y = pl.Series([0.0, 1.0, 1.0, 1.0, None, 0.0, None])
    rep = calibration_report(p, y)
    assert rep.n_rows == 7 and rep.n_labelled == 4
    assert rep.n_null_label == 2 and rep.n_nonfinite_prediction == 1
    assert rep.calibration == pytest.approx(1.0) and rep.base_rate == pytest.approx(0.5)
    assert rep.normalized_entropy == pytest.approx(normalized_entropy(P, Y))
    ps = pd.Series([0.2, 0.4, 0.6, 0.8, 0.5])
    ys = pd.Series([0.0, 1.0, 1.0, 0.0, None])
    assert calibration(ps, ys) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from([0.0, 1.0])), min_size=2, max_size=50))
def test_properties(rows: list[tuple[float, float]]) -> None:
    p, y = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    ece = expected_calibration_error(p, y)
    assert 0.0 <= ece <= 1.0
    assert log_loss(p, y) >= 0.0
    curve = reliability_curve(p, y, strategy="quantile", n_bins=4)
    assert curve.count.sum() == len(rows)
    # scaling every prediction scales calibration by the same factor
    if y.sum() > 0 and p.sum() > 0:
        assert calibration(p * 0.5, y) == pytest.approx(0.5 * calibration(p, y))


def test_non_probability_predictions() -> None:
    rep = calibration_report([2.0, 4.0], [1.0, 5.0])
    assert rep.calibration == pytest.approx(1.0)
    assert math.isnan(rep.normalized_entropy) and math.isnan(rep.log_loss)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        normalized_entropy([2.0, 0.5], [1.0, 0.0])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no rows with both a label"):
        calibration([0.1, 0.2], [None, None])
    with pytest.raises(ValueError, match="no rows with both a label"):
        calibration([float("nan")], [1.0])
    with pytest.raises(ValueError, match="2 values and label 3"):
        calibration([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="strategy"):
        reliability_curve(P, Y, strategy="bogus")  # type: ignore[arg-type]
    assert calibration([0.1], [0.0]) == math.inf


def test_calibration_frame_matches_array_functions() -> None:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    rng = np.random.default_rng(0)
    n = 4000
    p = rng.uniform(0.01, 0.99, n)
    y = rng.binomial(1, p).astype(float)
    y[::10] = np.nan
    p[::37] = np.nan
    df = pl.DataFrame(
        {
            "ts": [t0 + dt.timedelta(minutes=i) for i in range(n)],
            "model": np.where(np.arange(n) % 2 == 0, "a", "b"),
            "experiment": "x",
            "prediction": p,
            "label": pl.Series(y).fill_nan(None),
        }
    )
    out = calibration_frame(df)
    assert out["model"].to_list() == ["a", "b"]
    sel = np.arange(n) % 2 == 0
    row = out.row(0, named=True)
    assert row["calibration"] == pytest.approx(calibration(p[sel], y[sel]))
    assert row["normalized_entropy"] == pytest.approx(normalized_entropy(p[sel], y[sel]))
    assert row["null_label"] == int(np.isnan(y[sel]).sum())
    assert row["nonfinite_prediction"] == int((np.isnan(p[sel]) & ~np.isnan(y[sel])).sum())
    hourly = calibration_frame(df, every="1h")
    assert hourly.height == 2 * math.ceil(n / 60)
    with pytest.raises(WorkspaceError, match="missing columns"):
        calibration_frame(df.drop("label"))

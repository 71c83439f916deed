"""The base rate of a prediction shift: how often a health series moves as much as it did
at an onset, elsewhere in its own history."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hawknb.kernels.base_rate import ShiftBaseRate, shift_base_rate

H = 3_600_000_000
N = 24 * 12  # twelve days of hourly health windows


def _ts() -> np.ndarray:
    return np.arange(N, dtype=np.int64) * H


def _args(onset: int) -> dict:
    return {"onset_us": onset * H, "end_us": (onset + 3) * H, "tolerance_us": 3 * H}


def test_a_shift_only_at_the_onset_is_specific():
    rng = np.random.default_rng(0)
    x = 0.3 + 0.01 * rng.standard_normal(N)
    onset = N - 12
    x[onset:] += 0.1  # ten sigmas, once
    br = shift_base_rate(_ts(), {"mean_prediction": x}, **_args(onset))
    assert br.observed > 0.9
    assert br.n >= 12
    assert br.rate < 0.05
    assert br.corrected(0.8) == pytest.approx(0.8, abs=0.05)


def test_a_series_that_jumps_all_the_time_explains_nothing_specifically():
    rng = np.random.default_rng(1)
    # a 3-hour excursion every 10 hours, each as large as the one at the onset
    x = 0.3 + 0.01 * rng.standard_normal(N)
    for s in range(3, N, 10):
        x[s : s + 3] += 0.1
    onset = N - 12
    x[onset : onset + 3] = 0.4 + 0.01 * rng.standard_normal(3)
    br = shift_base_rate(_ts(), {"mean_prediction": x}, **_args(onset))
    assert br.observed > 0.3
    assert br.rate > 0.2
    assert br.corrected(br.observed) < 0.5 * br.observed


def test_worse_only_series_count_only_when_they_rise():
    rng = np.random.default_rng(2)
    x = 1.0 + 0.01 * rng.standard_normal(N)
    onset = N - 12
    x[onset:] -= 0.2  # the error fell: not a degradation
    br = shift_base_rate(_ts(), {"nmse": x}, **_args(onset))
    assert br.observed == 0.0
    # nothing moved at the onset: every quiet pseudo-onset moved at least as much
    assert br.rate == 1.0
    assert br.corrected(0.5) == 0.0


def test_early_onsets_borrow_history_after_the_window():
    rng = np.random.default_rng(3)
    x = 0.3 + 0.01 * rng.standard_normal(N)
    onset = 30  # barely a day of history before it
    x[onset : onset + 6] += 0.1
    br = shift_base_rate(_ts(), {"mean_prediction": x}, **_args(onset))
    assert br.n >= 12
    assert br.rate < 0.1


def test_too_little_history_gives_no_rate_and_no_correction():
    x = np.zeros(30)
    ts = np.arange(30, dtype=np.int64) * H
    br = shift_base_rate(ts, {"mean_prediction": x}, **_args(26))
    assert math.isnan(br.rate)
    assert br.corrected(0.6) == 0.6


def test_bad_input():
    ts = _ts()
    with pytest.raises(ValueError, match="sorted"):
        shift_base_rate(ts[::-1], {"mean_prediction": np.zeros(N)}, **_args(100))
    with pytest.raises(ValueError, match="values for"):
        shift_base_rate(ts, {"mean_prediction": np.zeros(5)}, **_args(100))
    with pytest.raises(ValueError, match="before onset"):
        shift_base_rate(
            ts, {"mean_prediction": np.zeros(N)}, onset_us=5 * H, end_us=H, tolerance_us=H
        )


def test_corrected_is_kappa():
    br = ShiftBaseRate(observed=1.0, rate=0.5, n=40)
    assert br.corrected(0.75) == pytest.approx(0.5)
    assert br.corrected(0.4) == 0.0
    assert ShiftBaseRate(1.0, 1.0, 40).corrected(0.9) == 0.0

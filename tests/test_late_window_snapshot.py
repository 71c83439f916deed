"""A snapshot that blows up on the rows where one input feature is high is rolled out in the
morning; the blown-up share grows with the hours that feature peaks, and the window the
model's health leads to opens seven hours later, on a metric other than the incident's. The
snapshot must still be a suspect of that window: the look-back before an onset is measured
in hours as well as in metric samples (six hours of half-hour samples would miss it).
On an independently generated hard workspace (benchmarks.indepgen, a tuning seed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from _cases import assert_verdict, generated_walk

from hawknb.triage import row_evidence
from hawknb.triage.results import ToplineResult
from hawknb.triage.topline import Anomaly


def _window(cadence: timedelta) -> Anomaly:
    onset = datetime(2026, 4, 25, 18, 30, tzinfo=UTC)
    return Anomaly("m", onset, onset + 4 * cadence, -1, 5.0, 0.9, cadence)


@pytest.mark.parametrize(
    ("cadence", "wide"),
    [
        (timedelta(minutes=5), timedelta(hours=12)),
        (timedelta(minutes=30), timedelta(hours=12)),
        (timedelta(hours=2), timedelta(hours=24)),
    ],
)
def test_causes_look_back_twelve_samples_and_at_least_twelve_hours(cadence, wide):
    assert row_evidence.lookback(_window(cadence), wide=True) == wide
    # choosing the window: twelve samples, whatever they span
    assert row_evidence.lookback(_window(cadence)) == 12 * cadence


def test_a_row_suspect_served_hours_before_the_onset_keeps_most_of_its_confidence():
    w = _window(timedelta(minutes=30))

    def conf(before: timedelta) -> float:
        return row_evidence.row_confidence(12.0, w.onset - before, w, "same hours", wide=True)

    near, seven_h, beyond = conf(timedelta(0)), conf(timedelta(hours=7)), conf(timedelta(hours=13))
    assert near > seven_h > beyond
    assert seven_h >= 0.8 * near


def test_the_wide_comparison_reaches_the_snapshot_the_narrow_one_does_not(walked):
    truth, ws, inv = walked
    anomaly = inv.get(ToplineResult).anomaly
    narrow = row_evidence.row_shifts(ws, anomaly)
    wide = row_evidence.row_shifts(ws, anomaly, wide=True)
    assert truth["snapshot"] not in narrow["snapshot"].to_list()
    assert truth["snapshot"] in wide["snapshot"].to_list()


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    return generated_walk(tmp_path_factory, "activation_blowup", 8)


def test_the_snapshot_rolled_out_hours_before_the_led_window_is_the_verdict(walked):
    truth, _, inv = walked
    assert_verdict(inv, truth, "bad_snapshot", ("model", "snapshot", "layer"))
    # the feature that triggers the blow-up is named
    assert set(truth["features"]) <= set(inv.verdict.to_dict()["features"])


def test_the_window_opened_hours_after_the_rollout(walked):
    truth, _, inv = walked
    anomaly = inv.get(ToplineResult).anomaly
    gap = anomaly.onset - datetime.fromisoformat(truth["onset"])
    # more than twelve of the window's samples: the old look-back would not reach it
    assert gap > 12 * anomaly.cadence, (anomaly.onset, truth["onset"])

"""A canary whose predictions collapse into a narrow band of its neighbours' range
(triage.row_evidence: COLLAPSE_RATIO, COLLAPSE_Z), on a hand-built serving log whose answer is
known.

Each arm serves its main snapshot at 60 rows an hour. In arm `a` a canary serves 3 rows an hour
whose predictions all sit in a narrow band inside the main snapshot's range: no row falls in
its tails, so only the collapse shows it. In arm `b` a canary at the same rate serves the main
snapshot's distribution. Over its canary span the collapsed one leads and is named a suspect in
words that say what its rows did; the benign one does neither."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from _serving_rows import RowsWorkspace as _Ws
from _serving_rows import serving_rows

from hawknb.triage import row_evidence
from hawknb.triage.topline import Anomaly
from hawknb.workspace import contract as c

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
BAD_AT = T0 + timedelta(days=2, hours=2)
OK_AT = T0 + timedelta(days=2, hours=1)
END = T0 + timedelta(days=3)


def _hours(start: datetime) -> float:
    return (END - start).total_seconds() / 3600


def _frame(collapsed_width: float, seed: int = 13) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    bad = serving_rows(rng, BAD_AT, _hours(BAD_AT), "a", "bad", 3)
    # a narrow band just under the main snapshots' median (beta(2, 8): median ~0.18)
    band = rng.uniform(0.15 - collapsed_width, 0.15 + collapsed_width, bad.height)
    parts = [
        serving_rows(rng, T0, _hours(T0), "a", "s0", 60),
        bad.with_columns(pl.Series(c.PREDICTION, band)),
        serving_rows(rng, T0, _hours(T0), "b", "s0", 60),
        serving_rows(rng, OK_AT, _hours(OK_AT), "b", "ok", 3),
    ]
    return pl.concat(parts).with_columns(pl.col(c.TS).cast(pl.Datetime("us", "UTC"))).sort(c.TS)


@pytest.fixture(scope="module")
def ws() -> _Ws:
    return _Ws(_frame(0.01).lazy())


def test_a_collapsed_canary_leads_though_its_tails_are_quiet(ws):
    leads = row_evidence.rollout_rows(ws)
    z = dict(zip(leads[c.SNAPSHOT].to_list(), leads["z"].to_list(), strict=True))
    assert z["bad"] >= row_evidence.LEAD_Z
    assert z["ok"] < 3.0
    peaks = row_evidence.rollout_peaks(ws)
    assert [p[3].split()[2] for p in peaks] == ["bad"]
    assert "narrow band" in peaks[0][3]


def test_the_window_names_the_collapsed_canary_and_says_why(ws):
    window = Anomaly("m", BAD_AT, BAD_AT + timedelta(hours=3), -1, 4.0, 0.9, timedelta(hours=1))
    shifts = row_evidence.row_shifts(ws, window, {})
    by = {r[c.SNAPSHOT]: r for r in shifts.iter_rows(named=True)}
    assert by["bad"]["collapse"] and not by["ok"]["collapse"]
    assert by["bad"]["tail_z"] < 3.0  # the tails alone would not see it
    suspect = row_evidence.row_suspect(ws, window, {})
    assert suspect is not None
    assert (suspect.snapshot, suspect.experiment) == ("bad", "a")
    assert "narrow band" in suspect.finding.decision


def test_a_mild_narrowing_is_not_a_collapse():
    # the canary's band spans most of the main snapshots' range: its rank spread is above
    # COLLAPSE_RATIO however many rows it has, so its z stays the tails' (and no lead)
    leads = row_evidence.rollout_rows(_Ws(_frame(0.12).lazy()))
    row = leads.filter(pl.col(c.SNAPSHOT) == "bad").row(0, named=True)
    assert row["z"] < row_evidence.LEAD_Z


def test_a_few_rows_in_a_band_are_not_enough():
    # twelve rows in a narrow band: below COLLAPSE_MIN_ROWS, the collapse does not count
    rng = np.random.default_rng(3)
    main = serving_rows(rng, T0, _hours(T0), "a", "s0", 60)
    few = serving_rows(rng, BAD_AT, 12, "a", "bad", 1, evenly=True)
    few = few.with_columns(pl.Series(c.PREDICTION, rng.uniform(0.14, 0.16, few.height)))
    rows = pl.concat([main, few]).with_columns(pl.col(c.TS).cast(pl.Datetime("us", "UTC")))
    shifts = row_evidence._compare_rows(
        rows.sort(c.TS), onset=BAD_AT, end=BAD_AT + timedelta(hours=12), lookback=timedelta(0)
    )
    row = shifts.filter(pl.col(c.SNAPSHOT) == "bad").row(0, named=True)
    assert row["rows"] < row_evidence.COLLAPSE_MIN_ROWS
    assert row["spread_ratio"] < row_evidence.COLLAPSE_RATIO
    assert row["spread_z"] > 2.0  # the band is there ...
    assert not row["collapse"]  # ... but twelve rows do not make a suspect
    assert row["z"] < row_evidence.ROW_Z

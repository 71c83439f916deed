"""A canary's evidence is its rows, not its hours (triage.row_evidence: LEAD_ROWS and
CANARY_SPAN), on a hand-built serving log whose answer is known.

Each arm serves its main snapshot at 60 rows an hour; a canary beside it serves 4 rows an
hour. In arm `a` the canary breaks every sixth row it serves; in arm `b` it serves the main
snapshot's distribution. In its first 6 hours the bad canary serves about 24 rows, too few for its
tail share to reach the lead bar; over 12 hours it does, while the benign one stays quiet."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from _serving_rows import RowsWorkspace as _Ws
from _serving_rows import serving_rows

from hawknb.kernels.snapshot_rows import compare_snapshot_rows
from hawknb.triage import row_evidence
from hawknb.triage.topline import Anomaly
from hawknb.workspace import contract as c

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
BAD_AT = T0 + timedelta(days=2, hours=2)
OK_AT = T0 + timedelta(days=2, hours=1)
END = T0 + timedelta(days=3)


def _rows(rng, start, end, arm, snap, per_hour, broken_every=0):
    hours = (end - start).total_seconds() / 3600
    evenly = per_hour < 10  # a canary's row count in a span is then exact, not a draw
    return serving_rows(
        rng, start, hours, arm, snap, per_hour, broken_every=broken_every, evenly=evenly
    )


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    parts = [
        _rows(rng, T0, END, "a", "s0", 60),
        _rows(rng, BAD_AT, END, "a", "bad", 4, broken_every=6),
        _rows(rng, T0, END, "b", "s0", 60),
        _rows(rng, OK_AT, END, "b", "ok", 4),
    ]
    return pl.concat(parts).with_columns(pl.col(c.TS).cast(pl.Datetime("us", "UTC"))).sort(c.TS)


def _z_over(rows: pl.DataFrame, snap: str, first: datetime, span: timedelta) -> tuple[int, float]:
    shifts = compare_snapshot_rows(
        rows.filter(pl.col(c.TS) <= first + span),
        onset=first,
        end=first + span,
        lookback=timedelta(0),
    )
    row = shifts.filter(pl.col(c.SNAPSHOT) == snap).row(0, named=True)
    return row["rows"], row["z"]


def test_six_hours_of_a_canary_are_too_few_rows_to_lead(rows):
    n, z = _z_over(rows, "bad", BAD_AT, row_evidence.LEAD_SPAN)
    assert n < row_evidence.LEAD_ROWS
    assert z < row_evidence.LEAD_Z  # why the span grows: the same rows, too few of them


def test_a_bad_canary_leads_over_its_longer_span_and_a_benign_one_does_not(rows):
    leads = row_evidence.rollout_rows(_Ws(rows.lazy()))
    z = dict(zip(leads[c.SNAPSHOT].to_list(), leads["z"].to_list(), strict=True))
    assert z["bad"] >= row_evidence.LEAD_Z
    assert z["ok"] < 3.0
    peaks = row_evidence.rollout_peaks(_Ws(rows.lazy()))
    assert [p[3].split()[2] for p in peaks] == ["bad"]
    # compared over more rows than its first LEAD_SPAN holds (the slice it is compared in
    # may start at the other canary's first serve, an hour before its own)
    served = int(peaks[0][3].split(" of its ")[1].split()[0])
    assert served > _z_over(rows, "bad", BAD_AT, row_evidence.LEAD_SPAN)[0] + 12


def test_a_window_compares_a_canary_over_its_longer_span(rows):
    # a window of two hours from the canary's first serve holds eight of its rows
    window = Anomaly("m", BAD_AT, BAD_AT + timedelta(hours=2), -1, 4.0, 0.9, timedelta(hours=1))
    shifts = row_evidence.row_shifts(_Ws(rows.lazy()), window, {})
    bad = shifts.filter(pl.col(c.SNAPSHOT) == "bad").row(0, named=True)
    assert bad["rows"] == _z_over(rows, "bad", BAD_AT, row_evidence.CANARY_SPAN)[0]
    suspects = row_evidence.row_suspects(shifts, window)
    assert suspects[c.SNAPSHOT].to_list()[:1] == ["bad"]


def test_a_snapshot_with_enough_rows_keeps_the_window_span(rows):
    # the main snapshots are not new; a full-traffic cut-over is compared over LEAD_SPAN only
    cut = T0 + timedelta(days=2, hours=3)
    big = pl.concat(
        [
            rows.filter(~((pl.col(c.EXPERIMENT) == "b") & (pl.col(c.TS) >= cut))),
            _rows(np.random.default_rng(3), cut, END, "b", "next", 60).with_columns(
                pl.col(c.TS).cast(pl.Datetime("us", "UTC"))
            ),
        ]
    ).sort(c.TS)
    leads = row_evidence.rollout_rows(_Ws(big.lazy()))
    what = leads.filter(pl.col(c.SNAPSHOT) == "next")["what"][0]
    n6, _ = _z_over(big, "next", cut, row_evidence.LEAD_SPAN)
    assert n6 >= row_evidence.LEAD_ROWS
    served = int(what.split(" of its ")[1].split()[0])
    assert served <= n6  # at most its first LEAD_SPAN's rows, not CANARY_SPAN's


@pytest.fixture(scope="module")
def sparse() -> pl.DataFrame:
    """Arm `a` serves its main snapshot at 60 rows an hour and, from RARE_AT, a canary at one
    row an hour whose every second row saturates: fewer rows in a 2-hour window or its first
    6 hours than any comparison takes (MIN_ROWS), enough over CANARY_SPAN."""
    rng = np.random.default_rng(5)
    parts = [
        _rows(rng, T0, END, "a", "s0", 60),
        _rows(rng, RARE_AT, END, "a", "rare", 1, broken_every=2),
    ]
    return pl.concat(parts).with_columns(pl.col(c.TS).cast(pl.Datetime("us", "UTC"))).sort(c.TS)


RARE_AT = T0 + timedelta(days=2, hours=2, minutes=10)


def test_a_canary_too_thin_for_any_short_comparison_is_compared_over_its_longer_span(sparse):
    """A canary with fewer rows in the short span than a comparison needs was dropped from
    it, and so never reached the longer span meant for canaries: a 1% canary of a sampled
    log was invisible. Now it is compared over CANARY_SPAN, in a window and as a lead."""
    short = compare_snapshot_rows(
        sparse.filter(pl.col(c.TS) <= RARE_AT + row_evidence.LEAD_SPAN),
        onset=RARE_AT,
        end=RARE_AT + row_evidence.LEAD_SPAN,
        lookback=timedelta(0),
    )
    assert "rare" not in short[c.SNAPSHOT].to_list()  # too few rows: no comparison at all
    n, z = _z_over(sparse, "rare", RARE_AT, row_evidence.CANARY_SPAN)
    assert z >= row_evidence.LEAD_Z
    window = Anomaly("m", RARE_AT, RARE_AT + timedelta(hours=2), -1, 4.0, 0.9, timedelta(hours=1))
    shifts = row_evidence.row_shifts(_Ws(sparse.lazy()), window, {})
    rare = shifts.filter(pl.col(c.SNAPSHOT) == "rare").row(0, named=True)
    assert (rare["rows"], rare["z"]) == (n, z)
    assert row_evidence.row_suspects(shifts, window)[c.SNAPSHOT].to_list() == ["rare"]
    leads = row_evidence.rollout_rows(_Ws(sparse.lazy()))
    assert leads[c.SNAPSHOT].to_list() == ["rare"]
    assert leads["z"][0] >= row_evidence.LEAD_Z

"""Rollouts as leads and as explanations (triage.row_evidence.rollout_rows / rollout_peaks,
triage.windows._rollout_weight), on hand-built serving logs whose answer is known: one
snapshot saturates a share of its rows, one serves rows like its predecessor's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from _serving_rows import RowsWorkspace as _Ws
from _serving_rows import serving_rows

from hawknb.triage import row_evidence, windows
from hawknb.workspace import contract as c

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
BAD_AT = T0 + timedelta(days=2, hours=12)
OK_AT = T0 + timedelta(days=2, hours=6)


@pytest.fixture(scope="module")
def ws():
    rng = np.random.default_rng(7)
    end = T0 + timedelta(days=3)
    parts = [
        # arm a: s0, then a cut-over to `bad` that saturates 30% of its rows
        serving_rows(rng, T0, int((BAD_AT - T0).total_seconds() // 3600), "a", "s0"),
        serving_rows(
            rng, BAD_AT, int((end - BAD_AT).total_seconds() // 3600), "a", "bad", broken=0.3
        ),
        # arm b: s0, then a cut-over to `ok`, a retrain serving the same distribution
        serving_rows(rng, T0, int((OK_AT - T0).total_seconds() // 3600), "b", "s0"),
        serving_rows(rng, OK_AT, int((end - OK_AT).total_seconds() // 3600), "b", "ok"),
    ]
    frame = pl.concat(parts).with_columns(pl.col(c.TS).cast(pl.Datetime("us", "UTC")))
    return _Ws(frame.sort(c.TS).lazy())


def test_only_the_snapshot_whose_rows_differ_leads(ws):
    peaks = row_evidence.rollout_peaks(ws)
    assert len(peaks) == 1, peaks
    z, first, model, what = peaks[0]
    assert model == "ranker" and "bad" in what
    assert z >= row_evidence.LEAD_Z
    assert abs(first - BAD_AT) < timedelta(minutes=5)


def test_rollout_rows_score_every_new_snapshot_but_not_the_first(ws):
    rows = row_evidence.rollout_rows(ws)
    z = dict(zip(rows[c.SNAPSHOT].to_list(), rows["z"].to_list(), strict=True))
    assert set(z) == {"bad", "ok"}  # s0 is the state the log starts in
    assert z["ok"] < 3.0 < row_evidence.LEAD_Z <= z["bad"]


def test_a_cache_answers_the_second_call_with_the_same_frame(ws):
    cache: dict = {}
    first = row_evidence.rollout_rows(ws, cache)
    assert row_evidence.rollout_rows(ws, cache) is first


def _near(*snaps: str) -> pl.DataFrame:
    return pl.DataFrame({c.MODEL: ["ranker"] * len(snaps), c.SNAPSHOT: list(snaps)})


def test_a_quiet_rollout_explains_less_than_one_whose_rows_moved(ws):
    rows = row_evidence.rollout_rows(ws)
    quiet = windows._rollout_weight(_near("ok", "s0"), rows)
    moved = windows._rollout_weight(_near("bad", "s0"), rows)
    assert windows.QUIET_ROLLOUT <= quiet < 0.75
    assert moved == 1.0
    # nothing new compared (only the retired snapshot, or no row evidence at all): unknown,
    # so the rollout keeps its full weight; no rollout at all explains nothing
    assert windows._rollout_weight(_near("s0"), rows) == 1.0
    assert windows._rollout_weight(_near("ok"), None) == 1.0
    assert windows._rollout_weight(_near(), rows) == 0.0


def test_a_log_shorter_than_a_day_has_no_leads():
    rng = np.random.default_rng(1)
    frame = serving_rows(rng, T0, 12, "a", "s0").with_columns(
        pl.col(c.TS).cast(pl.Datetime("us", "UTC"))
    )
    assert row_evidence.rollout_peaks(_Ws(frame.lazy())) == []


@pytest.mark.parametrize("only", [{("ranker", "bad")}, {("ranker", "ok")}, set()])
def test_only_some_snapshots_read_the_same_z_as_all(ws, only):
    """A walk on an asked window reads just the snapshots at its onset; each keeps the z it
    has among all (its clearest over every comparison that holds its first serve)."""
    every = row_evidence.rollout_rows(ws)
    some = row_evidence.rollout_rows(ws, only=frozenset(only))
    assert set(some.select(c.MODEL, c.SNAPSHOT).iter_rows()) == only
    want = every.filter(pl.col(c.SNAPSHOT).is_in([s for _, s in only]))
    assert some.sort(c.SNAPSHOT).equals(want.sort(c.SNAPSHOT))

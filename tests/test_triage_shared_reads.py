"""The walk's shared reads give the answers of fresh ones.

The window weighing reads the serving log once per group of overlapping windows (input
breaks, row-level comparisons) and keeps what it read in a walk-level cache that later steps
reuse (`windows.rollout_suspect`). Every test here compares a cached or batched answer with
the answer of a fresh, one-window read: they must be equal, not merely close.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from _cases import simulated_case

import hawknb
from hawknb.kernels import coverage
from hawknb.triage import models, row_evidence, upstream, windows
from hawknb.triage.findings import Finding
from hawknb.triage.models import Suspect
from hawknb.triage.results import ToplineResult

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    ws_dir, _ = simulated_case(tmp_path_factory, "shared_reads", "upstream_data", 3)
    ws = hawknb.Workspace.open(ws_dir)
    inv = hawknb.triage(ws, progress=False)
    top = inv.get(ToplineResult)
    return ws, top.candidates, top.series


def _same(a, b) -> None:
    """Two isolate_model answers are equal: suspect, finding and isolation."""
    sa, fa, _, ia = a
    sb, fb, _, ib = b
    assert sa == sb
    # repr: a nan base rate is equal to itself there
    assert (fa.decision, fa.confidence, repr(fa.evidence)) == (
        fb.decision,
        fb.confidence,
        repr(fb.evidence),
    )
    assert ia.confidence == ib.confidence and ia.top == ib.top


def _health_only(shared: dict, windows_: list) -> dict:
    """A cache holding only the prediction-health tables of ``shared``: polars' parallel
    sums can differ in the last bit between two computations of the same table, and those
    tables are not what these tests are about."""
    keys = {models.health_key(models.health_every(a)) for a in windows_}
    return {k: shared[k] for k in keys}


def test_batched_isolation_equals_one_window_at_a_time(walked):
    ws, candidates, series = walked
    assert len(candidates) >= 2
    shared: dict = {}
    batched = models.isolate_models(ws, candidates, series, shared)
    for a, got in zip(candidates, batched, strict=True):
        _same(got, models.isolate_model(ws, a, series, _health_only(shared, [a])))
    # weighed again on the same cache: read from it, the same answers
    for a, got in zip(candidates, batched, strict=True):
        _same(got, models.isolate_model(ws, a, series, shared))


def test_weighing_with_a_shared_cache_equals_a_fresh_one(walked):
    ws, candidates, series = walked
    cands = [(a, Finding("topline", "", ""), 1.0) for a in candidates]
    shared: dict = {}
    windows.weigh_windows(ws, cands, series, cache=shared)
    again = windows.weigh_windows(ws, cands, series, cache=shared)
    fresh = windows.weigh_windows(ws, cands, series, cache=_health_only(shared, candidates))
    assert [w.brief() for w in again] == [w.brief() for w in fresh]
    assert repr([w.finding.evidence for w in again]) == repr([w.finding.evidence for w in fresh])


def test_rollout_suspect_and_rows_from_the_walk_cache(walked):
    ws, candidates, _ = walked
    shared: dict = {}
    every = row_evidence.rollout_rows(ws, shared)
    changes = windows.rollout_changes(ws, shared)
    for a in candidates:
        for model in [None, *sorted(set(changes[hawknb.workspace.contract.MODEL]))][:3]:
            other = Suspect(model or "someone-else", "ctl", ("ctl",), False, 0.4)
            cached = windows.rollout_suspect(ws, a, other, shared)
            assert cached == windows.rollout_suspect(ws, a, other)
        _, pairs = windows._near_pairs(changes, [a])
        got = row_evidence.rollout_rows(ws, shared, only=pairs)
        assert got.equals(row_evidence.rollout_rows(ws, only=pairs))
    assert row_evidence.rollout_rows(ws, shared) is every


def test_prefetched_row_shifts_equal_one_read_per_window(walked):
    ws, candidates, _ = walked
    shared: dict = {}
    row_evidence.prefetch_row_shifts(ws, candidates, shared)
    for a in candidates:
        assert row_evidence.row_shifts(ws, a, shared).equals(row_evidence.row_shifts(ws, a))


def test_row_shifts_of_another_cadence_are_not_answered_from_the_cache(walked):
    """Same onset and end, a finer cadence: a shorter look-back, so another comparison."""
    from dataclasses import replace

    ws, candidates, _ = walked
    a = candidates[0]
    fine = replace(a, cadence=a.cadence / 6)
    shared: dict = {}
    row_evidence.row_shifts(ws, a, shared)
    assert row_evidence.row_shifts(ws, fine, shared).equals(row_evidence.row_shifts(ws, fine))


def test_a_wide_look_back_as_long_as_the_narrow_one_reuses_its_comparison(walked):
    """Hourly metrics: twelve samples are twelve hours, so the chosen window's causes (the
    wide look-back) read the comparison the window weighing made, as does a half-hour
    window's wide look-back (also twelve hours); a two-hour cadence's is a day, compared
    anew on its own rows."""
    from dataclasses import replace

    ws, candidates, _ = walked
    hourly = replace(candidates[0], cadence=dt.timedelta(hours=1))
    shared: dict = {}
    narrow = row_evidence.row_shifts(ws, hourly, shared)
    n = len(shared)
    assert row_evidence.row_shifts(ws, hourly, shared, wide=True) is narrow
    assert len(shared) == n
    half_hour = replace(hourly, cadence=dt.timedelta(minutes=30))
    assert row_evidence.row_shifts(ws, half_hour, shared, wide=True) is narrow
    coarse = replace(hourly, cadence=dt.timedelta(hours=2))
    wide = row_evidence.row_shifts(ws, coarse, shared, wide=True)
    assert len(shared) == n + 1
    assert wide.equals(row_evidence.row_shifts(ws, coarse, wide=True))


def test_prefetched_input_breaks_equal_one_read_per_window(walked):
    ws, candidates, _ = walked
    shared: dict = {}
    upstream.prefetch_breaks(ws, candidates, shared)
    for a in candidates:
        fresh, cached = upstream.input_suspect(ws, a), upstream.input_suspect(ws, a, shared)
        assert (fresh is None) == (cached is None)
        if fresh is not None and cached is not None:
            assert fresh.breaks == cached.breaks and fresh.experiment == cached.experiment


def _serving(rows_per_hour: int, hours: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = rows_per_hour * hours
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    us = np.sort(rng.integers(0, hours * 3_600_000_000, n))
    x = rng.normal(size=n)
    brk = us >= 150 * 3_600_000_000
    ts = pl.Series(us + int(t0.timestamp() * 1e6)).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "ts": ts,
            "model": rng.choice(["a", "b"], n),
            "f0": np.where(brk, 0.0, x),
            "f1": rng.normal(size=n),
            "f2": np.where(brk & (rng.uniform(size=n) < 0.5), np.nan, x * 2),
        }
    )


def test_input_breaks_many_equals_input_breaks(monkeypatch):
    # a small per-window cap, so the deterministic subsample is exercised
    monkeypatch.setattr(coverage, "MAX_WINDOW_ROWS", 40)
    df = _serving(60)
    feats = {"a": ["f0", "f1", "f2"], "b": ["f0", "f1"]}
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    asks = [
        (t0 + dt.timedelta(hours=h), dt.timedelta(hours=w))
        for h, w in [(150, 3), (151, 3), (149, 2), (60, 1), (152, 6)]
    ]
    many = coverage.input_breaks_many(df, feats, asks)
    one = [coverage.input_breaks(df, feats, o, window=w) for o, w in asks]
    assert many == one
    assert one[0][0].n_broken >= 2  # a real break, not only empty answers compared


def test_span_groups_merge_overlaps_within_the_cap():
    spans = [(0, 10), (5, 15), (30, 40), (12, 20), (100, 110)]
    assert coverage.span_groups(spans) == [[0, 1, 3], [2], [4]]
    # a chain of overlapping ranges does not become one whole-history read
    chain = [(i * 5, i * 5 + 10) for i in range(20)]
    groups = coverage.span_groups(chain)
    assert len(groups) > 1
    for g in groups:
        lo, hi = min(chain[i][0] for i in g), max(chain[i][1] for i in g)
        assert hi - lo <= coverage.GROUP_SPAN * 10

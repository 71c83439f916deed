"""The lineage walk on graphs whose nodes report different statistics (tables their row
count, features their mean), as lineage monitors and feature stores usually do."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import networkx as nx
import numpy as np
import pandas as pd
import polars as pl

from hawknb.kernels.lineage import root_cause
from hawknb.workspace import contract as c

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
ONSET = START + timedelta(days=5, hours=14)
HOURS = 6 * 24
#: source -> table -> job -> features; a second source feeds the same job
EDGES = [
    ("src", "tbl"),
    ("tbl", "job"),
    ("other", "tbl2"),
    ("tbl2", "job"),
    ("job", "f1"),
    ("job", "f2"),
    ("job", "f3"),
]


def _stats(drop: set[str], moved_mean: set[str], seed: int = 0) -> pl.DataFrame:
    """Hourly stats: pipeline nodes report row_count and null_rate, features mean and
    null_rate; nodes in ``drop`` lose 40% of their rows at the onset, features in
    ``moved_mean`` lose 40% of their mean."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=HOURS, freq="h", tz="UTC")
    late = np.asarray(ts >= pd.Timestamp(ONSET))
    rows = []
    for node in {n for e in EDGES for n in e}:
        first = "mean" if node.startswith("f") else "row_count"
        level = 5.0 if first == "mean" else 1e5
        x = level * (1 + 0.02 * rng.standard_normal(HOURS))
        if node in drop or node in moved_mean:
            x = x * np.where(late, 0.6, 1.0)
        nulls = np.abs(0.01 + 0.001 * rng.standard_normal(HOURS))
        rows += [(t, node, first, v) for t, v in zip(ts, x, strict=True)]
        rows += [(t, node, "null_rate", v) for t, v in zip(ts, nulls, strict=True)]
    return pl.DataFrame(rows, schema=[c.TS, c.NODE, c.STAT, c.VALUE], orient="row")


def test_a_row_count_drop_explains_features_that_report_only_their_mean() -> None:
    g = nx.DiGraph(EDGES)
    stats = _stats({"src", "tbl", "job"}, {"f1", "f2"})
    res = root_cause(g, stats, ["f1", "f2"], ONSET)
    assert res.top is not None and res.top.node == "src" and res.top.is_root
    assert set(res.top.targets_explained) == {"f1", "f2"}
    by = {cand.node: cand for cand in res.candidates}
    assert not by["f1"].is_root and "src" in by["f1"].explained_by


def test_a_statistic_both_report_that_held_downstream_still_cuts_the_chain() -> None:
    """The source's null rate jumps, the features' null rates hold while their means move: the
    source's change does not reach them (the job, unmonitored here, is where they broke)."""
    g = nx.DiGraph(EDGES)
    stats = _stats(set(), {"f1", "f2"})
    late = pl.col(c.TS) >= ONSET
    stats = stats.with_columns(
        pl.when((pl.col(c.NODE) == "src") & (pl.col(c.STAT) == "null_rate") & late)
        .then(0.5)
        .otherwise(pl.col(c.VALUE))
        .alias(c.VALUE)
    ).filter(pl.col(c.NODE) != "job")
    res = root_cause(g, stats, ["f1", "f2"], ONSET)
    by = {cand.node: cand for cand in res.candidates}
    assert by["src"].targets_explained == ()
    assert res.top is not None and res.top.node in ("f1", "f2")

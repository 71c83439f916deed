"""Property tests of the kernels on generated input (hypothesis).

Properties, not answers: drift of a sample against itself is zero, every distance is in its
range and ignores non-finite values; anomaly scores are in [0, 1] and windows lie inside the
series; root cause only names nodes of the graph, whatever the ids (integers, unicode); sketch
quantiles are monotone, inside [min, max] and survive serialization; health shares and rates
are in [0, 1] and account for every row. The only exceptions allowed are the documented
ValueError / WorkspaceError on bad input.

Two profiles: the default (a few hundred cases, well under a minute) runs in CI; the full one
(``HAWKNB_FUZZ=full python -m pytest -m fuzz tests/test_fuzz.py``) runs FULL_TOTAL cases.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta, timezone

import networkx as nx
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hawknb.kernels.anomaly import anomaly_scores, detect_anomalies
from hawknb.kernels.drift import distances, ks_statistic, psi, wasserstein
from hawknb.kernels.health import prediction_health
from hawknb.kernels.lineage import root_cause
from hawknb.kernels.sketch import QuantileSketch
from hawknb.workspace import WorkspaceError
from hawknb.workspace.workspace import _build_lineage

FULL = os.environ.get("HAWKNB_FUZZ", "").lower() == "full"
pytestmark = [pytest.mark.fuzz] if FULL else []

#: cases per property: (default profile, full profile)
BUDGET = {
    "drift_self": (40, 2000),
    "drift_ranges": (40, 1500),
    "drift_extreme": (20, 500),
    "anomaly": (25, 1000),
    "lineage": (30, 1500),
    "lineage_ids": (30, 1000),
    "lineage_int_kernel": (10, 300),
    "sketch": (40, 2000),
    "sketch_merge": (20, 500),
    "health": (20, 1000),
}
#: properties that a known bug in another helper's kernel fails (xfail: they stop at the first
#: counterexample, so their cases are not counted)
KNOWN_BUGS: set[str] = set()
FULL_TOTAL = sum(full for name, (_small, full) in BUDGET.items() if name not in KNOWN_BUGS)
SMALL_TOTAL = sum(small for small, _full in BUDGET.values())


def budget(name: str) -> settings:
    """Settings for one property: no deadline (no timed assertions), no example database
    written into the checkout, and a fixed seed in the default profile so CI is repeatable."""
    small, full = BUDGET[name]
    return settings(
        max_examples=full if FULL else small,
        deadline=None,
        database=None,
        derandomize=not FULL,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# moderate magnitudes: where a distance is expected to be exact up to rounding
moderate = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
samples = st.lists(moderate, min_size=1, max_size=200)


# -- drift ------------------------------------------------------------------------------------
@budget("drift_self")
@given(samples)
def test_drift_of_a_sample_against_itself_is_zero(a: list[float]):
    p, _w, ks, ms = distances(np.array(a), np.array(a))
    assert ks == pytest.approx(0.0, abs=1e-12)  # cumulated 1/n steps: rounding, not drift
    assert p == pytest.approx(0.0, abs=1e-9)
    assert ms == 0.0
    # the Wasserstein part is in test_drift_at_extreme_magnitudes (a known bug, owned by rca)


@budget("drift_ranges")
@given(samples, samples, st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), max_size=5))
def test_drift_distances_are_in_range_and_ignore_non_finite(a, b, junk):
    ra, rb = np.array(a), np.array(b)
    p, w, ks, ms = distances(ra, rb)
    assert 0.0 <= ks <= 1.0 + 1e-12  # exactly <= 1: see test_drift_at_extreme_magnitudes
    assert ks == pytest.approx(ks_statistic(rb, ra), abs=1e-12)  # symmetric
    assert p >= 0.0 and w >= 0.0 and not math.isnan(ms)  # see test_drift_at_extreme_magnitudes
    assert p == pytest.approx(psi(ra, rb)) and w == pytest.approx(wasserstein(ra, rb))
    # non-finite values are counted elsewhere, never part of a distance
    dirty = distances(np.array(a + junk), np.array(junk + b))
    assert dirty == pytest.approx((p, w, ks, ms), nan_ok=True)
    # and a side with no finite value has no distance
    assert all(math.isnan(x) for x in distances(np.array(junk or [math.nan]), rb))


# Found by this profile, in hawknb/kernels/drift.py (helper "rca" owns it; issue 10 item 7).
# Minimal examples, each an @example below:
# - KS (and Wasserstein) exceed 1 by rounding of the cumulated 1/n steps:
#   distances(np.zeros(9), np.ones(1)) -> KS 1.0000000000000002;
# - Wasserstein of a sample against itself is not 0 (rounding amplified by a small spread):
#   a = [0, 0, 0, 562950, 0.03125]: distances(a, a) -> W 1.0e-09 (1e284 at 1e300 magnitudes);
# - the mean shift overflows: distances([1e308, 1e308], same) -> NaN, and
#   distances([0, 9.56e-308], [13]) -> inf (divided by a subnormal spread).
# Fixed in kernels/drift.py (scaled samples, capped KS); kept as regression examples.
@budget("drift_extreme")
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50),
       st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))  # fmt: skip
@example([0.0] * 9, [1.0])
@example([0.0, 0.0, 0.0, 562950.0, 0.03125], [1.0])
@example([1e308, 1e308], [1e308, 1e308])
@example([0.0, 9.562108587776296e-308], [13.0])
def test_drift_at_extreme_magnitudes(a, b):
    p, w, ks, ms = distances(np.array(a), np.array(b))
    assert 0.0 <= ks <= 1.0 and p >= 0.0 and w >= 0.0 and not math.isnan(ms)
    # the shift is in raw units for a (practically) constant reference: finite unless the raw
    # difference itself is past the float range
    assert math.isfinite(ms) or max(map(abs, a + b)) > 1e300
    _sp, sw, sks, sms = distances(np.array(a), np.array(a))
    assert sks == pytest.approx(0.0, abs=1e-12) and sw == pytest.approx(0.0, abs=1e-9)
    assert sms == pytest.approx(0.0, abs=1e-9)


# -- anomaly ----------------------------------------------------------------------------------
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@budget("anomaly")
@given(
    st.lists(st.one_of(moderate, anything), min_size=1, max_size=300),
    st.sampled_from([timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)]),
    st.floats(0.5, 10),
)
def test_anomaly_windows_lie_in_the_series_and_scores_in_unit_range(values, step, severity):
    ts = [T0 + i * step for i in range(len(values))]
    frame = pl.DataFrame({"ts": ts, "value": values}, schema={"ts": pl.Datetime("us", "UTC"),
                                                               "value": pl.Float64})  # fmt: skip
    finite = any(math.isfinite(v) for v in values)
    try:
        result = detect_anomalies(frame, min_severity=severity)
    except ValueError:
        assert not finite  # the documented refusal: no finite value to detect on
        return
    assert finite
    for w in result.windows:
        assert ts[0] <= w.onset <= ts[-1]
        assert w.severity >= severity
    scores = anomaly_scores(np.array(values))
    assert scores.shape == (len(values),)
    assert np.all((scores >= 0) & (scores <= 1) | np.isnan(scores))


# -- lineage root cause -----------------------------------------------------------------------
ids = st.one_of(
    st.integers(-(10**6), 10**6),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
            max_size=8),
)  # fmt: skip


@st.composite
def dags(draw, id_strategy=ids):
    """A random DAG: edges only from earlier to later nodes of a random order."""
    nodes = draw(st.lists(id_strategy, min_size=1, max_size=12, unique_by=str))
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for j in range(1, len(nodes)):
        for i in draw(st.lists(st.integers(0, j - 1), max_size=3, unique=True)):
            graph.add_edge(nodes[i], nodes[j])
    return graph


def _stats(graph: nx.DiGraph, draw_shift, onset: datetime) -> pl.DataFrame:
    rows = []
    for k, node in enumerate(graph.nodes):
        jump = draw_shift[k % len(draw_shift)]
        for h in range(-48, 12):
            value = 100.0 + (h % 5) + (jump if h >= 0 else 0.0)
            rows.append((onset + timedelta(hours=h), str(node), "row_count", value))
    return pl.DataFrame(rows, schema={"ts": pl.Datetime("us", "UTC"), "node": pl.String,
                                      "stat": pl.String, "value": pl.Float64}, orient="row")  # fmt: skip


def _check_root_cause(graph: nx.DiGraph, shifts: list[float], targets: list) -> None:
    onset = T0 + timedelta(days=3)
    result = root_cause(graph, _stats(graph, shifts, onset), targets, onset)
    names = set(graph.nodes)
    for cand in result.candidates:
        assert cand.node in names
        assert set(cand.explained) <= names and set(cand.explained_by) <= names
    assert set(result.status) <= names
    assert 0.0 <= result.confidence <= 1.0


@budget("lineage")
@given(dags(st.text(min_size=1, max_size=8)), st.lists(st.floats(-50, 50), min_size=1, max_size=5),
       st.data())  # fmt: skip
def test_root_cause_names_only_nodes_of_the_graph(graph, shifts, data):
    targets = data.draw(st.lists(st.sampled_from(sorted(graph.nodes)), min_size=1, max_size=3))
    _check_root_cause(graph, shifts, targets)


@budget("lineage_ids")
@given(dags(), st.lists(st.floats(-50, 50), min_size=1, max_size=5), st.data())
def test_root_cause_on_workspace_lineage_with_integer_and_unicode_ids(graph, shifts, data):
    """A lineage.json with integer and unicode ids, read the way the workspace reads it."""
    raw = {
        "nodes": [{"id": n, "kind": "table"} for n in graph.nodes],
        "edges": [{"source": s, "target": t} for s, t in graph.edges],
    }
    read = _build_lineage(raw, "lineage.json")
    assert set(read.nodes) == {str(n) for n in graph.nodes}
    assert set(_build_lineage(graph, "a DiGraph").nodes) == set(read.nodes)
    targets = data.draw(st.lists(st.sampled_from(sorted(read.nodes)), min_size=1, max_size=3))
    _check_root_cause(read, shifts, targets)
    with pytest.raises(WorkspaceError):  # a target that is not a node: the documented error
        root_cause(read, _stats(read, shifts, T0), ["\x00not-a-node"], T0)


# Found by this profile, in hawknb/kernels/lineage.py (helper "rca" owns it): a graph built in
# Python with integer node ids crashes root_cause with KeyError (it matches the stats' string
# `node` column against str(node) and then indexes the graph with the string). Minimal
# example: g = nx.DiGraph([(1, 2)]), stats of nodes "1" and "2", root_cause(g, stats, [2], t)
# -> KeyError: 1. Workspaces are not affected: the workspace reads every id as a string.
@budget("lineage_int_kernel")
@given(dags(st.integers(-(10**6), 10**6)), st.lists(st.floats(-50, 50), min_size=1, max_size=5),
       st.data())  # fmt: skip
@example(nx.DiGraph([(1, 2)]), [40.0], None)
def test_root_cause_on_a_graph_with_integer_ids(graph, shifts, data):
    targets = (
        [max(graph.nodes)]
        if data is None
        else data.draw(st.lists(st.sampled_from(sorted(graph.nodes)), min_size=1, max_size=3))
    )
    _check_root_cause(graph, shifts, targets)


# -- sketches ---------------------------------------------------------------------------------
@budget("sketch")
@given(st.lists(st.one_of(moderate, anything), min_size=1, max_size=2000),
       st.integers(8, 300), st.lists(st.floats(0, 1), min_size=1, max_size=20))  # fmt: skip
def test_sketch_quantiles_are_monotone_and_survive_bytes(values, k, qs):
    finite = [v for v in values if math.isfinite(v)]
    sketch = QuantileSketch(k).update(values)
    assert sketch.n == len(finite) and sketch.n_nonfinite == len(values) - len(finite)
    if not finite:
        with pytest.raises(ValueError):
            sketch.quantile(0.5)
        return
    q = np.sort(np.array(qs))
    out = sketch.quantile(q)
    assert np.all(np.diff(out) >= 0)
    assert np.all((out >= min(finite)) & (out <= max(finite)))
    assert sketch.quantile(0.0) == min(finite) and sketch.quantile(1.0) == max(finite)
    cdf = sketch.cdf(np.array(finite))
    assert np.all((cdf >= 0) & (cdf <= 1))
    again = QuantileSketch.from_bytes(sketch.to_bytes())
    assert np.array_equal(again.quantile(q), out)
    with pytest.raises(ValueError):
        sketch.quantile(1.5)


@budget("sketch_merge")
@given(st.lists(moderate, min_size=1, max_size=1000), st.lists(moderate, min_size=1, max_size=1000))
def test_sketch_merge_counts_everything_and_keeps_the_range(a, b):
    merged = QuantileSketch.of(a, 64).merge(QuantileSketch.of(b, 64))
    assert merged.n == len(a) + len(b)
    assert merged.min == min(a + b) and merged.max == max(a + b)
    q = merged.quantile(np.linspace(0, 1, 11))
    assert np.all(np.diff(q) >= 0)


# -- health -----------------------------------------------------------------------------------
@budget("health")
@given(
    st.lists(
        st.tuples(
            st.integers(0, 72),  # hour
            st.sampled_from(["m1", "m2", "ünï"]),
            st.sampled_from(["prod", "canary"]),
            st.one_of(st.floats(0, 1), st.sampled_from([math.nan, math.inf])),
            st.one_of(st.none(), st.sampled_from([0.0, 1.0])),
        ),
        min_size=1,
        max_size=300,
    ),
    st.sampled_from(["1h", "6h", "1d"]),
)
def test_health_accounts_for_every_row_and_rates_are_shares(rows, every):
    frame = pl.DataFrame(
        [(T0 + timedelta(hours=h, minutes=7), m, e, "s1", p, y) for h, m, e, p, y in rows],
        schema={"ts": pl.Datetime("us", "UTC"), "model": pl.String, "experiment": pl.String,
                "snapshot": pl.String, "prediction": pl.Float64, "label": pl.Float64},
        orient="row",
    )  # fmt: skip
    health = prediction_health(frame, every=every)
    assert int(health["rows"].sum()) == len(rows)
    for col in ("nan_rate", "traffic_share"):
        vals = health[col].drop_nulls().to_numpy()
        assert np.all((vals >= 0) & (vals <= 1 + 1e-12)), col
    shares = health.group_by("model", "ts").agg(pl.col("traffic_share").sum())["traffic_share"]
    assert np.allclose(shares.to_numpy(), 1.0)


def test_the_profiles_add_up():
    """The README states the full profile's count (cases of properties that must pass)."""
    assert FULL_TOTAL >= 10_000
    assert SMALL_TOTAL <= 400

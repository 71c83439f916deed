"""Widget state, serialization, downsampling and the request/reply protocol (no browser)."""

from __future__ import annotations

import datetime as dt

import ipywidgets
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hawknb.widgets import AnomalyTimeline, InvestigationNavigator, RolloutCorrelator
from hawknb.widgets._base import HawknbWidget, static_esm
from hawknb.widgets._downsample import minmax_indices, range_slice
from hawknb.widgets._serialization import (
    from_typed_array,
    ipc_to_table,
    jsonable,
    ms_to_iso,
    records,
    table_to_ipc,
    to_ms,
    typed_array,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
T0_MS = 1704067200000.0


def minutely(n: int, spike_at: int | None = None) -> pl.DataFrame:
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
    v = np.sin(np.arange(n) / 50.0)
    if spike_at is not None:
        v[spike_at] = 100.0
    return pl.DataFrame({"ts": ts, "value": v})


# -- serialization ---------------------------------------------------------------------------
def test_ipc_round_trip_times_as_epoch_ms_and_keeps_nan_and_null() -> None:
    df = pl.DataFrame(
        {
            "ts": [T0, T0 + dt.timedelta(hours=1)],
            "v": [1.5, float("nan")],
            "n": pl.Series([1, None], dtype=pl.Int64),
            "s": ["a", None],
        }
    )
    out = ipc_to_table(table_to_ipc(df))
    assert out["ts"].to_list() == [T0_MS, T0_MS + 3600e3]
    assert out["v"][0] == 1.5 and np.isnan(out["v"][1])
    assert out["n"].to_list() == [1.0, None]
    assert out["s"].to_list() == ["a", None]
    assert df["ts"].dtype == pl.Datetime("us", "UTC")  # input untouched


def test_ipc_accepts_pandas_and_rejects_unknown_columns() -> None:
    pdf = pd.DataFrame({"a": [1.0, 2.0]})
    assert ipc_to_table(table_to_ipc(pdf))["a"].to_list() == [1.0, 2.0]
    with pytest.raises(ValueError, match="not in the frame"):
        table_to_ipc(pdf, ["b"])
    with pytest.raises(ValueError, match="DataFrame"):
        table_to_ipc(42)


def test_typed_array_round_trip() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    meta, data = typed_array(a)
    assert meta == {"dtype": "float32", "shape": [3, 4]}
    np.testing.assert_array_equal(from_typed_array(meta, data), a)
    assert typed_array(np.array([True, False]))[0]["dtype"] == "uint8"
    with pytest.raises(ValueError, match="no JS typed array"):
        typed_array(np.array([1 + 2j]))


def test_time_helpers() -> None:
    assert to_ms("2024-01-01T00:00:00Z") == T0_MS
    assert to_ms(dt.datetime(2024, 1, 1)) == T0_MS  # naive = UTC, as the contract says
    assert to_ms(pd.Timestamp("2024-01-01", tz="UTC")) == T0_MS
    assert to_ms(np.datetime64("2024-01-01T00:00")) == T0_MS
    assert to_ms(None) is None and to_ms(pd.NaT) is None
    assert ms_to_iso(T0_MS + 1) == "2024-01-01T00:00:00.001Z"
    with pytest.raises(ValueError, match="ISO-8601"):
        to_ms("yesterday")
    assert jsonable({"a": float("nan"), "b": np.float32(2), "t": T0}) == {
        "a": None,
        "b": 2.0,
        "t": "2024-01-01T00:00:00.000Z",
    }
    with pytest.raises(ValueError, match="expected a dict"):
        records([1, 2])


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0, max_value=4e12, allow_nan=False))
def test_ms_iso_round_trip_property(ms: float) -> None:
    ms = round(ms)
    assert to_ms(ms_to_iso(ms)) == ms


# -- downsampling ----------------------------------------------------------------------------
def test_minmax_keeps_a_single_spike_and_gaps() -> None:
    n = 500_000
    x = np.arange(n, dtype=np.float64)
    y = np.zeros(n)
    y[123_457] = 9.0
    y[400_000] = -9.0
    y[300_000:300_010] = np.nan
    idx = minmax_indices(x, y, 1000)
    assert len(idx) <= 5 * 1000
    assert 123_457 in idx and 400_000 in idx
    assert np.isnan(y[idx]).any()
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), min_size=1, max_size=400),
    st.integers(min_value=1, max_value=50),
)
def test_minmax_property_extremes_survive(values: list[float], buckets: int) -> None:
    y = np.array(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    idx = minmax_indices(x, y, buckets)
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(y)
    finite = np.isfinite(y)
    if finite.any():
        assert np.nanmax(y[idx]) == y[finite].max()
        assert np.nanmin(y[idx]) == y[finite].min()


def test_minmax_bad_input() -> None:
    with pytest.raises(ValueError, match="sorted"):
        minmax_indices(np.array([3.0, 2.0, 1.0, 0.0, 5.0]), np.zeros(5), 1)
    with pytest.raises(ValueError, match="n_buckets"):
        minmax_indices(np.zeros(3), np.zeros(3), 0)
    with pytest.raises(ValueError, match="equal"):
        minmax_indices(np.zeros(3), np.zeros(4), 1)
    assert range_slice(np.array([1.0, 2.0, 3.0, 4.0]), 2, 3) == (1, 3)


# -- base protocol ---------------------------------------------------------------------------
class _Echo(HawknbWidget):
    _esm = static_esm("no-such-view")

    def _request_echo(self, payload, buffers):
        if payload.get("boom"):
            raise RuntimeError("boom")
        return {"x": payload["x"]}, [b"abc"]


def test_request_reply_protocol() -> None:
    w = _Echo()
    assert "missing" in w._esm  # a missing bundle renders a visible message
    reply, bufs = w.handle_request(
        {"type": "request", "id": 7, "kind": "echo", "payload": {"x": 1}}, []
    )
    assert reply == {"type": "reply", "id": 7, "kind": "echo", "ok": True, "payload": {"x": 1}}
    assert bufs == [b"abc"]
    bad, _ = w.handle_request({"id": 8, "kind": "echo", "payload": {"boom": True}}, [])
    assert bad["ok"] is False and "boom" in bad["error"]
    unknown, _ = w.handle_request({"id": 9, "kind": "__class__"}, [])
    assert unknown["ok"] is False
    w._dispatch_request(w, {"type": "request", "id": 1, "kind": "echo", "payload": {"x": 2}}, [])
    assert w.requests_served == 1 and w.bytes_replied == 3


# -- AnomalyTimeline -------------------------------------------------------------------------
def test_timeline_downsamples_a_year_and_keeps_the_spike() -> None:
    n = 525_600
    tl = AnomalyTimeline(minutely(n, spike_at=300_001), max_points=3000)
    assert tl.total_points == n
    assert 1000 < tl.sent_points <= 3000
    wire = tl.get_state()["data"]  # what crosses: the trait's serializer makes Arrow IPC
    assert isinstance(wire, memoryview) and wire.nbytes < 150_000  # well under 1% of raw
    overview = ipc_to_table(wire)
    assert overview["value"].max() == 100.0
    assert overview["ts"].is_sorted()
    assert tl.empty_reason == ""
    assert tl.x_range == [T0_MS, T0_MS + (n - 1) * 60e3]


def test_timeline_detail_request_for_a_range() -> None:
    tl = AnomalyTimeline(minutely(100_000))
    lo, hi = T0_MS + 1000 * 60e3, T0_MS + 2000 * 60e3
    reply, bufs = tl.handle_request(
        {
            "type": "request",
            "id": 1,
            "kind": "range",
            "payload": {"lo": lo, "hi": hi, "width": 2000},
        },
        [],
    )
    assert reply["ok"] and reply["payload"]["n_raw"] == 1001
    detail = ipc_to_table(bufs[0])
    # the 1001 points in range (plus one neighbour each side) fit under 2*width: all of them come back
    assert detail.height == 1003
    assert detail["ts"].min() < lo and detail["ts"].max() > hi


def test_timeline_windows_markers_and_selection() -> None:
    rollouts = pl.DataFrame(
        {
            "ts": [T0, T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)],
            "model": ["m"] * 4,
            "experiment": ["e"] * 4,
            "snapshot": ["a", "b", "b", "b"],
            "traffic": [0.5, 0.5, 1.0, 1.0],
        }
    )
    series = minutely(300).to_pandas()
    tl = AnomalyTimeline(
        series,
        windows=[{"onset": "2024-01-01T01:00Z", "end": None, "direction": "down", "severity": "x"}],
        rollouts=rollouts,
    )
    assert tl.windows[0]["onset"] == T0_MS + 3600e3
    assert tl.windows[0]["end"] == T0_MS + 299 * 60e3  # open window runs to the last point
    assert tl.windows[0]["severity"] is None
    # the hour-2 row repeats the hour-1 mix: no marker for it
    assert [m["ts"] for m in tl.markers] == [T0_MS, T0_MS + 3600e3]
    assert tl.selection_range is None
    tl.select("2024-01-01T02:00Z", T0)
    assert tl.selected_window == {
        "start": "2024-01-01T00:00:00.000Z",
        "end": "2024-01-01T02:00:00.000Z",
    }
    assert tl.selection_range == (T0, T0 + dt.timedelta(hours=2))
    tl.select(None, None)
    assert tl.selected_window == {}


def test_timeline_empty_states_and_bad_input() -> None:
    nan = pl.DataFrame({"ts": [T0, T0 + dt.timedelta(minutes=1)], "value": [float("nan"), None]})
    assert "NaN" in AnomalyTimeline(nan).empty_reason
    empty = pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "value": pl.Float64})
    assert "no rows" in AnomalyTimeline(empty).empty_reason
    with pytest.raises(ValueError, match="missing column"):
        AnomalyTimeline(pl.DataFrame({"ts": [T0]}))
    with pytest.raises(ValueError, match="timestamp"):
        AnomalyTimeline(pl.DataFrame({"ts": ["x"], "value": [1.0]}))
    with pytest.raises(ValueError, match="onset"):
        AnomalyTimeline(minutely(10), windows=[{"end": T0}])
    with pytest.raises(ValueError, match="before onset"):
        AnomalyTimeline(minutely(10), windows=[{"onset": T0 + dt.timedelta(hours=1), "end": T0}])
    with pytest.raises(ValueError, match="rollouts"):
        AnomalyTimeline(minutely(10), rollouts=pl.DataFrame({"ts": [T0]}))


# -- RolloutCorrelator -----------------------------------------------------------------------
def _health() -> pl.DataFrame:
    rows = []
    for m, e in [("b", "ctrl"), ("a", "test"), ("a", "ctrl")]:
        for h in range(50):
            rows.append(
                {
                    "ts": T0 + dt.timedelta(hours=h),
                    "model": m,
                    "experiment": e,
                    "mean_prediction": 0.1 + h * 1e-3,
                    "ne": 0.8,
                    "note": "x",
                }
            )
    return pl.DataFrame(rows)


def test_rollouts_panels_suspect_first_and_ramp() -> None:
    roll = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(hours=10)] * 2 + [T0 + dt.timedelta(hours=20)],
            "model": ["b"] * 3,
            "experiment": ["ctrl"] * 3,
            "snapshot": ["s1", "s2", "s2"],
            "traffic": [0.75, 0.25, 1.0],
        }
    )
    rc = RolloutCorrelator(
        _health(), rollouts=roll, suspect={"model": "b", "experiment": "ctrl", "snapshot": "s2"}
    )
    assert [(p["model"], p["experiment"]) for p in rc.panels] == [
        ("b", "ctrl"),
        ("a", "ctrl"),
        ("a", "test"),
    ]
    assert [p["suspect"] for p in rc.panels] == [True, False, False]
    assert rc.panels[0]["ramp"] == [[T0_MS + 10 * 3600e3, 0.25], [T0_MS + 20 * 3600e3, 1.0]]
    assert rc.series == ["mean_prediction", "ne", "traffic"]  # calibration absent, note not numeric
    data = rc.data
    assert data.columns == ["panel", "ts", "mean_prediction", "ne"]
    assert data.height == 150
    rc.select("a", "test")
    assert rc.selected_panel == {"model": "a", "experiment": "test"}
    with pytest.raises(ValueError, match="no panel"):
        rc.select("zzz", "q")


def test_rollouts_thins_long_panels_and_empty_states() -> None:
    n = 5000
    long = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=i) for i in range(n)],
            "model": "m",
            "experiment": "e",
            "ne": np.arange(n, dtype=float),
        }
    )
    rc = RolloutCorrelator(long, series=["ne"])
    data = rc.data
    assert data.height <= 601
    assert abs(data["ne"].mean() - (n - 1) / 2) < 5  # bucket means preserve the mean
    assert "no rows" in RolloutCorrelator(long.head(0)).empty_reason
    assert "none of the series" in RolloutCorrelator(long, series=["calibration"]).empty_reason
    nan = long.with_columns(pl.lit(float("nan")).alias("ne"))
    assert "NaN" in RolloutCorrelator(nan, series=["ne"]).empty_reason
    with pytest.raises(ValueError, match="missing column"):
        RolloutCorrelator(long.drop("model"))
    with pytest.raises(ValueError, match="suspect"):
        RolloutCorrelator(long, suspect={"model": "m"})


# -- InvestigationNavigator ------------------------------------------------------------------
STEPS = [
    {
        "id": "metric",
        "title": "Metric",
        "status": "done",
        "decision": "CTR down",
        "confidence": 0.9,
    },
    {"id": "model", "title": "Model", "status": "warning", "parent": "metric"},
    {"id": "snap", "title": "Snapshot", "status": "skipped", "parent": "model"},
]


def test_navigator_selection_path_and_views() -> None:
    view = ipywidgets.HTML("snapshot view")
    nav = InvestigationNavigator(STEPS, views={"snap": view})
    assert [s["id"] for s in nav.steps] == ["metric", "model", "snap"]
    assert nav.steps[1]["confidence"] is None and nav.steps[0]["parent"] is None
    assert nav.with_views == ["snap"]
    assert nav.box.children[1] is nav.stack and nav.stack.children == (view,)
    assert nav.shown_view is None and nav.stack.selected_index is None
    nav.selected_step = "snap"  # what a click in the browser does (with selected_view)
    assert nav.shown_view is view and nav.selected_view == nav.stack.selected_index == 0
    assert nav.path() == ["metric", "model", "snap"]
    nav.select("metric")
    assert nav.shown_view is None and nav.selected_view is None
    with pytest.raises(ValueError, match="no step"):
        nav.select("nope")
    with pytest.raises(ValueError, match="ipywidget"):
        nav.set_view("model", "not a widget")  # type: ignore[arg-type]
    assert "no steps" in InvestigationNavigator([]).empty_reason


def test_navigator_views_live_in_a_stack_the_browser_switches() -> None:
    """Every view is a child of the stack and a front-end link drives its selected index, so a
    click switches the view with no kernel (saved notebooks, offline reports)."""
    a, b, c = (ipywidgets.HTML(x) for x in "abc")
    nav = InvestigationNavigator(STEPS, views={"snap": a, "metric": b}, selected="snap")
    assert nav.with_views == ["metric", "snap"] and nav.stack.children == (b, a)
    assert nav.selected_view == nav.stack.selected_index == 1 and nav.shown_view is a
    link = nav._link
    assert isinstance(link, ipywidgets.widgets.widget_link.DirectionalLink)
    assert link.source == (nav, "selected_view") and link.target == (nav.stack, "selected_index")
    # the link travels in the widget state as model references, like any widget's children
    state = link.get_state()
    assert state["source"] == [f"IPY_MODEL_{nav.model_id}", "selected_view"]
    assert state["target"] == [f"IPY_MODEL_{nav.stack.model_id}", "selected_index"]
    # a view added later shifts the indices; the selection stays on its step
    nav.set_view("model", c)
    assert nav.with_views == ["metric", "model", "snap"] and nav.stack.children == (b, c, a)
    assert nav.selected_view == nav.stack.selected_index == 2 and nav.shown_view is a
    # a replaced view (dashboard.py re-ranks features this way) is shown when selected
    d = ipywidgets.HTML("d")
    nav.select("model")
    nav.set_view("model", d)
    assert nav.shown_view is d and nav.stack.children == (b, d, a)


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([{"title": "x"}], "missing 'id'"),
        ([{"id": "a"}, {"id": "a"}], "duplicate"),
        ([{"id": "a", "status": "great"}], "status"),
        ([{"id": "a", "parent": "zz"}], "parent"),
        ([{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}], "cycle"),
        ([{"id": "a", "confidence": "high"}], "confidence"),
    ],
)
def test_navigator_bad_steps(steps: list[dict], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InvestigationNavigator(steps)


def _arm_rollouts() -> pl.DataFrame:
    """Arm a/ctrl: s1 alone, then s2 ramps to 50% at hour 20 (the onset) while s3 arrives on
    a/test at hour 40 (the newest snapshot, far from the onset)."""
    rows = []
    for h in range(50):
        t = T0 + dt.timedelta(hours=h)
        if h < 20:
            rows.append((t, "a", "ctrl", "s1", 1.0))
        else:
            rows += [(t, "a", "ctrl", "s1", 0.5), (t, "a", "ctrl", "s2", 0.5)]
        rows.append((t, "a", "test", "s3" if h >= 40 else "s1", 1.0))
    return pl.DataFrame(
        rows, schema=["ts", "model", "experiment", "snapshot", "traffic"], orient="row"
    )


def test_rollouts_bands_stack_every_snapshot_and_label_those_near_the_anomaly() -> None:
    window = (T0 + dt.timedelta(hours=20), T0 + dt.timedelta(hours=26))
    topline = pl.DataFrame(
        {"ts": [T0 + dt.timedelta(hours=h) for h in range(50)], "value": np.linspace(1, 2, 50)}
    )
    rc = RolloutCorrelator(
        _health().filter(pl.col("model") == "a"),
        rollouts=_arm_rollouts(),
        topline=topline,
        topline_name="ctr",
        window=window,
    )
    bands = rc.bands
    assert bands.columns == ["panel", "ts", "snap", "share"]
    # every (panel, ts) stacks to a share of 1
    sums = bands.group_by("panel", "ts").agg(pl.col("share").sum())["share"]
    assert np.allclose(sums.to_numpy(), 1.0)
    names = {s["name"]: s for s in rc.snapshots}
    assert set(names) == {"s1", "s2", "s3"}
    assert names["s2"]["near"] and not names["s3"]["near"]
    assert rc.window == [T0_MS + 20 * 3600e3, T0_MS + 26 * 3600e3]
    assert rc.topline.height == 50 and rc.topline_name == "ctr"
    # the frames cross as Arrow IPC buffers through the traits' serializers
    wire = rc.get_state()["bands"]
    assert isinstance(wire, memoryview) and ipc_to_table(wire).height == bands.height


def test_rollouts_traffic_follows_the_snapshots_a_finding_names() -> None:
    """The per-row ramp shows the snapshot named by the snapshot step, not the newest one."""
    rc = RolloutCorrelator(_health(), rollouts=_arm_rollouts(), named=["s2"])
    ramp = {(p["model"], p["experiment"]): p["snapshot"] for p in rc.panels}
    assert ramp[("a", "ctrl")] == "s2"
    assert {s["name"]: s["role"] for s in rc.snapshots}["s2"] == "named"
    newest = RolloutCorrelator(_health(), rollouts=_arm_rollouts())
    assert {(p["model"], p["experiment"]): p["snapshot"] for p in newest.panels}[
        ("a", "test")
    ] == "s3"


def test_rollouts_compare_puts_the_suspect_next_to_its_predecessor() -> None:
    from hawknb.widgets.rollouts import predecessor_pair

    roll = _arm_rollouts()
    by_snap = (
        roll.filter(pl.col("experiment") == "ctrl")
        .rename({"traffic": "snapshot_share"})
        .with_columns(mean_prediction=pl.when(pl.col("snapshot") == "s2").then(0.3).otherwise(0.1))
    )
    pair = predecessor_pair(by_snap, "a", "ctrl", "s2")
    assert pair == ("s2", "s1")
    assert predecessor_pair(by_snap, "a", "ctrl", "s1") is None  # the first has none
    rc = RolloutCorrelator(
        _health(), rollouts=roll, compare=by_snap, compare_pair=pair, series=["mean_prediction"]
    )
    cmp = rc.compare
    assert set(cmp["which"]) == {0, 1}
    same_hours = set(cmp.filter(pl.col("which") == 0)["ts"]) & set(
        cmp.filter(pl.col("which") == 1)["ts"]
    )
    assert len(same_hours) == 30  # hours 20..49, both served
    assert cmp.filter(pl.col("which") == 0)["mean_prediction"].mean() == pytest.approx(0.3)
    roles = {s["name"]: s["role"] for s in rc.snapshots}
    assert roles["s2"] == "suspect" and roles["s1"] == "predecessor"
    cleared = RolloutCorrelator(
        _health(),
        rollouts=roll,
        compare=by_snap,
        compare_pair=pair,
        compare_roles=("examined", "predecessor"),
    )
    assert {s["name"]: s["role"] for s in cleared.snapshots}["s2"] == "examined"
    with pytest.raises(ValueError, match="ISO-8601"):
        RolloutCorrelator(_health(), window=("x", T0))


def test_timeline_marks_only_rollouts_near_the_anomaly() -> None:
    series = pl.DataFrame(
        {"ts": [T0 + dt.timedelta(hours=h) for h in range(200)], "value": np.ones(200)}
    )
    times = [5, 60, 95, 120, 190]  # hours; the anomaly is hours 100..110
    roll = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(hours=h) for h in times],
            "model": "m",
            "experiment": "e",
            "snapshot": [f"s{i}" for i in range(len(times))],
            "traffic": 1.0,
        }
    )
    window = {"onset": T0 + dt.timedelta(hours=100), "end": T0 + dt.timedelta(hours=110)}
    tl = AnomalyTimeline(series, windows=[window], rollouts=roll)
    near = [m["ts"] for m in tl.markers if m["near"]]
    assert near == [T0_MS + 95 * 3600e3]  # 120 is 20 h into it, 60 is 40 h before its onset
    assert len(tl.markers) == len(times)  # the rest stay available on demand
    assert all(m["near"] for m in AnomalyTimeline(series, rollouts=roll).markers)

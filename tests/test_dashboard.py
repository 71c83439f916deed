"""The linked dashboard: each step gets its view, selections flow back through triage."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import polars as pl
import pytest
from _cases import simulated_case

import hawknb
from hawknb.triage.findings import Verdict
from hawknb.widgets.dashboard import Dashboard, modelgraph_view


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    ws, truth = simulated_case(tmp_path_factory, "dash", "feature_coverage", 2)
    return hawknb.investigate(ws), truth


@pytest.fixture(scope="module")
def snapshot_case(tmp_path_factory):
    ws, truth = simulated_case(tmp_path_factory, "dash_snap", "activation_blowup", 2)
    return hawknb.investigate(ws), truth


def test_every_step_has_a_view_with_content(upstream):
    dash, truth = upstream
    assert isinstance(dash, Dashboard)
    steps = [s["id"] for s in dash.navigator.steps]
    assert steps[:3] == ["topline", "models", "snapshot"]
    assert set(dash.navigator.views) == set(steps)
    assert dash.navigator.selected_step == "verdict"
    assert dash.timeline.empty_reason == ""
    assert dash.features.empty_reason == ""
    assert dash.lineage.empty_reason == ""
    # the planted feature is in the ranking and the lineage explorer starts at the top feature
    top = dash.features._frame["feature"].to_list()
    assert truth["features"][0] in top[:5]
    assert dash.lineage.focus == top[0]
    # the culprit lineage node is ranked among the candidates shown
    assert truth["upstream"][0] in [c["node"] for c in dash.lineage._candidates]
    # the model graph was not needed: it says why instead of staying blank
    assert "outside the model" in dash.modelgraph.empty_reason


@pytest.mark.parametrize(
    ("cause", "says", "never"),
    [
        ("none", "no cause was convicted", "outside the model"),
        ("training_data", "training data", "outside the model"),
        ("upstream_data", "outside the model", "no cause"),
    ],
)
def test_an_empty_model_graph_says_why_in_the_verdicts_terms(cause, says, never):
    inv = SimpleNamespace(get=lambda _kind: None, verdict=Verdict(cause=cause))
    reason = modelgraph_view(inv).empty_reason
    assert says in reason
    assert never not in reason


def test_selecting_a_feature_focuses_the_lineage(upstream):
    dash, _ = upstream
    features = dash.features._frame["feature"].to_list()
    graph = dash.investigation.workspace.lineage()
    pick = next(f for f in features[1:] if f in graph)
    dash.features.selected_feature = pick
    assert dash.lineage.focus == pick
    assert dash.navigator.selected_step == "lineage"


def test_selecting_a_model_reranks_its_features(upstream):
    dash, _ = upstream
    inv = dash.investigation
    other = next(m for m in inv.workspace.models() if m != inv.verdict.model)
    dash.rollouts.selected_panel = {"model": other, "experiment": "x"}
    assert other in dash.features.title
    assert set(dash.features._frame["feature"]) == set(inv.workspace.features(other))
    assert dash.navigator.selected_step == "features"


def test_brushing_a_window_reruns_the_walk_from_it(upstream):
    dash, truth = upstream
    onset = datetime.fromisoformat(truth["onset"])
    dash.timeline.selected_window = {
        "start": (onset + timedelta(hours=1)).isoformat(),
        "end": (onset + timedelta(hours=3)).isoformat(),
    }
    v = dash.investigation.verdict
    assert v.metric == truth["metric"]
    assert abs(v.onset - onset) <= timedelta(hours=6)
    assert v.cause == truth["cause"]


def test_snapshot_case_shows_the_model_graph(snapshot_case):
    dash, truth = snapshot_case
    v = dash.investigation.verdict
    assert v.snapshot == truth["snapshot"]
    assert dash.modelgraph.empty_reason == ""
    assert len(dash.modelgraph._nodes) > 3
    flagged = [n for n, f in dash.modelgraph._flags.items() if f]
    assert flagged, "the first NaN/extreme node is flagged"
    # the features view shows the data-break alternative the snapshot was preferred to
    assert "convicted a snapshot" in dash.features.title


def test_no_anomaly_dashboard_explains_itself(tmp_path):
    ts = pl.datetime_range(
        datetime(2026, 1, 1), datetime(2026, 1, 5), "1h", time_zone="UTC", eager=True
    )
    metrics = pl.DataFrame({"ts": ts, "metric": "revenue", "value": 1.0})
    serving = pl.DataFrame(
        {
            "ts": ts,
            "model": "m",
            "experiment": "e",
            "snapshot": "s",
            "prediction": 0.5,
            "label": 1.0,
            "f": 1.0,
        }
    )
    dash = hawknb.investigate(hawknb.Workspace(metrics=metrics, serving=serving))
    assert dash.investigation.verdict.cause == "none"
    assert [s["id"] for s in dash.navigator.steps] == ["topline"]

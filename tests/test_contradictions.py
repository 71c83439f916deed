"""Statements of one investigation that must not contradict each other (issue 13, item 3).

Each test here is written against the contradiction a reader saw: a count in one step that
another step's data disproves, a list that holds what it says it does not, a text that names
a colour the view does not draw.
"""

from __future__ import annotations

import colorsys
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _cases import simulated_case

import hawknb

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    ws, truth = simulated_case(tmp_path_factory, "contra", "upstream_data", 0)
    return hawknb.investigate(ws), truth


def test_blast_radius_counts_the_models_that_read_the_changed_features(case):
    dash, truth = case
    inv = dash.investigation
    lineage = inv.finding("lineage")
    m = re.search(r"blast radius: (\d+) feature\(s\), (\d+) model\(s\)", lineage.decision)
    assert m, lineage.decision
    models = lineage.evidence["blast_radius_models"]
    assert int(m.group(2)) == len(models)
    # every model the planted change reaches reads one of those features
    assert set(truth["affected_models"]) <= set(models)
    ws = inv.workspace
    blast = set(lineage.evidence["blast_radius"])
    for model in models:
        assert blast & set(ws.features(model)), model


def test_verdict_upstream_lists_no_feature(case):
    dash, truth = case
    inv = dash.investigation
    v = inv.verdict
    assert v.upstream, "the walk found an upstream cause"
    assert not set(v.upstream) & set(inv.workspace.feature_columns)
    assert not set(v.upstream) & set(v.features)
    assert truth["upstream"][0] in v.upstream


def test_feature_table_shows_confidence_only_where_it_means_something(case):
    dash, _ = case
    frame = dash.features.frame
    conf = frame["confidence"]
    assert conf[0] is not None and conf[0] > 0  # the top feature
    assert (conf.drop_nulls() > 0).all()  # never a bare 0 that reads "surely not"
    assert conf.null_count() > 0  # the ranking has features outside the top-k


def test_brushed_window_is_investigated_to_its_end(case):
    dash, truth = case
    onset = datetime.fromisoformat(truth["onset"])
    start = onset - timedelta(days=4)  # far from any anomaly: nothing detected contains it
    end = start + timedelta(hours=10)
    dash.timeline.selected_window = {"start": start.isoformat(), "end": end.isoformat()}
    top = dash.investigation.finding("topline")
    assert "no detected anomaly contains" in top.decision
    assert end.isoformat() in top.decision
    assert "6 hours" not in top.decision


def _warn_colour() -> str:
    theme = (ROOT / "js" / "src" / "_shared" / "theme.js").read_text()
    m = re.search(r'warn:\s*cssVar\(el,\s*"[^"]+",\s*"(#[0-9a-fA-F]{6})"\)', theme)
    assert m, "the theme names its warn colour"
    return m.group(1)


def test_notebook_names_the_colour_the_lineage_view_draws() -> None:
    """The candidates are filled with the theme's warn colour; the template must call it that."""
    hexcol = _warn_colour()
    r, g, b = (int(hexcol[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue = colorsys.rgb_to_hsv(r, g, b)[0] * 360
    assert 15 <= hue <= 45, f"{hexcol} is no longer orange: update the template's words"
    lineage_js = (ROOT / "js" / "src" / "lineage" / "index.js").read_text()
    assert ".warn" in lineage_js  # candidates are drawn in the warn colour
    for nb in (ROOT / "notebooks" / "triage.ipynb", ROOT / "hawknb" / "templates" / "triage.ipynb"):
        text = nb.read_text()
        assert "orange nodes" in text, nb
        assert "red nodes" not in text, nb


def test_verdict_table_shows_no_python_reprs(case):
    from hawknb.widgets.dashboard import verdict_view

    dash, _ = case
    text = verdict_view(dash.investigation).value
    assert "['" not in text and "[&#x27;" not in text  # no list repr, escaped or not
    assert "<code>" in text
    conf = dash.investigation.verdict.confidence
    shown = f"{conf:.2f}"
    assert shown in text
    assert repr(conf) == shown or repr(conf) not in text  # a float's repr, unless it is short

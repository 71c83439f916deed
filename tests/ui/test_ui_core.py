"""Real-browser checks of AnomalyTimeline, RolloutCorrelator and InvestigationNavigator.

Each test renders a view in a real JupyterLab, checks real content (bands, panels, steps),
drives a brush/click, reads the trait back from the kernel, and saves a screenshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

TIMELINE_CELLS = [
    """
import datetime as dt
import numpy as np
import polars as pl
from hawknb.widgets import AnomalyTimeline

n = 200_000
t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
ts = pl.datetime_range(t0, t0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
rng = np.random.default_rng(0)
v = 10 + np.sin(np.arange(n) / 500) + rng.normal(0, 0.1, n)
v[100_000:101_000] += 5
v[150_000:150_500] -= 4
series = pl.DataFrame({"ts": ts, "value": v, "lower": v * 0 + 8.5, "upper": v * 0 + 11.5})
windows = [
    {"onset": ts[100_000], "end": ts[101_000], "direction": "up", "severity": 5.0},
    {"onset": ts[150_000], "end": ts[150_500], "direction": "down", "severity": 3.0},
]
rollouts = pl.DataFrame({
    "ts": [ts[99_000], ts[99_000], ts[99_500]],
    "model": ["m1", "m1", "m1"], "experiment": ["e", "e", "e"],
    "snapshot": ["s1", "s2", "s2"], "traffic": [0.9, 0.1, 1.0],
})
tl = AnomalyTimeline(series, windows=windows, rollouts=rollouts, title="CTR")
tl
""",
]


def test_timeline_renders_brushes_and_zooms(lab, ui_out: Path) -> None:
    lab.run_notebook("timeline.ipynb", TIMELINE_CELLS, wait_for=".hawknb-timeline canvas")
    root = lab.wait_for(".hawknb-timeline")
    assert root.get_attribute("data-bands") == "2"
    assert lab.page.locator(".hawknb-timeline .hawknb-band").count() == 2
    # only the rollout that lines up with an onset is drawn (ts[99_500], 8 h before the first);
    # the one 17 h before it appears on demand
    markers = lab.page.locator(".hawknb-timeline .hawknb-rollout-marker")
    assert markers.count() == 1
    assert root.get_attribute("data-markers-near") == "1"
    lab.page.locator(".hawknb-timeline .hawknb-all-rollouts input").check()
    lab.page.wait_for_selector(".hawknb-timeline[data-markers-drawn='2']", timeout=10_000)
    assert markers.count() == 2
    points = int(root.get_attribute("data-points"))
    assert 500 < points <= 3000
    assert root.get_attribute("data-total-points") == "200000"
    lab.screenshot(ui_out / "timeline.png", ".hawknb-timeline")

    # brush a window in the middle of the plot -> kernel-side selection
    over = lab.page.locator(".hawknb-timeline .u-over").first
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    lab.page.mouse.move(box["x"] + box["width"] * 0.2, y)
    lab.page.mouse.down()
    lab.page.mouse.move(box["x"] + box["width"] * 0.3, y, steps=5)
    lab.page.mouse.up()
    lab.wait_kernel("tl.selected_window.get('start')")
    sel = lab.kernel_json("tl.selected_window")
    assert sel["start"] < sel["end"]
    assert sel["start"].startswith("2024-")

    # zoom to the selection -> the kernel answers a detail request for the visible range
    lab.page.locator(".hawknb-timeline .hawknb-zoom").click()
    lab.page.wait_for_selector(".hawknb-timeline[data-detail-loaded='1']", timeout=20_000)
    assert int(lab.kernel_eval("print(tl.requests_served)")) >= 1
    lab.screenshot(ui_out / "timeline-zoomed.png", ".hawknb-timeline")

    # clicking inside an anomaly band selects exactly that window
    lab.page.locator(".hawknb-timeline .hawknb-reset").click()
    band = lab.page.locator(".hawknb-timeline .hawknb-band").first
    bb = band.bounding_box()
    lab.page.mouse.click(bb["x"] + bb["width"] / 2, y)
    lab.wait_kernel("tl.selected_window.get('start', '').startswith('2024-03-10')")
    assert lab.kernel_json("tl.selected_window")["start"] == "2024-03-10T10:40:00.000Z"


def test_timeline_empty_state(lab, ui_out: Path) -> None:
    cells = [
        "import polars as pl, datetime as dt\nfrom hawknb.widgets import AnomalyTimeline\n"
        "AnomalyTimeline(pl.DataFrame({'ts': [dt.datetime(2024,1,1), dt.datetime(2024,1,2)],"
        " 'value': [float('nan'), float('nan')]}))"
    ]
    lab.run_notebook("timeline_empty.ipynb", cells, wait_for=".hawknb-timeline .hawknb-empty")
    text = lab.page.locator(".hawknb-timeline .hawknb-empty").inner_text()
    assert "Nothing to show, because" in text
    assert "NaN" in text
    lab.screenshot(ui_out / "timeline-empty.png", ".hawknb-timeline")


ROLLOUT_CELLS = [
    """
import datetime as dt
import polars as pl
from hawknb.widgets import RolloutCorrelator

t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
rows = []
for m, e in [("ranker", "ctrl"), ("ranker", "test"), ("ctr_model", "ctrl")]:
    for h in range(240):
        bad = (m, e) == ("ranker", "test") and h >= 120
        rows.append({"ts": t0 + dt.timedelta(hours=h), "model": m, "experiment": e,
                     "mean_prediction": 0.10 + (0.04 if bad else 0.0) + 0.001 * (h % 7),
                     "calibration": 1.0 + (0.4 if bad else 0.0), "ne": 0.8})
health = pl.DataFrame(rows)
rollouts = pl.DataFrame({
    "ts": [t0 + dt.timedelta(hours=100)] * 2 + [t0 + dt.timedelta(hours=120)],
    "model": ["ranker"] * 3, "experiment": ["test"] * 3,
    "snapshot": ["s1", "s2", "s2"], "traffic": [0.9, 0.1, 1.0],
})
topline = health.group_by("ts").agg(pl.col("mean_prediction").mean().alias("value")).sort("ts")
rc = RolloutCorrelator(health, rollouts=rollouts,
                       suspect={"model": "ranker", "experiment": "test", "snapshot": "s2"},
                       topline=topline, topline_name="ctr",
                       window=(t0 + dt.timedelta(hours=100), t0 + dt.timedelta(hours=110)))
rc
""",
]


def test_rollouts_renders_panels_and_click_selects(lab, ui_out: Path) -> None:
    lab.run_notebook("rollouts.ipynb", ROLLOUT_CELLS, wait_for=".hawknb-rollouts canvas")
    root = lab.wait_for(".hawknb-rollouts")
    assert root.get_attribute("data-panels") == "3"
    assert root.get_attribute("data-series") == "mean_prediction,calibration,ne,traffic"
    # one full-width row per model/experiment under the top line, every snapshot a band
    assert lab.page.locator(".hawknb-rollouts canvas.hawknb-spark").count() == 3
    assert lab.page.locator(".hawknb-rollouts canvas.hawknb-topline").count() == 1
    assert root.get_attribute("data-snapshots") == "2"
    lab.page.wait_for_selector(".hawknb-rollouts[data-labelled='2']", timeout=10_000)
    suspect = lab.page.locator(".hawknb-rollouts-panel[data-suspect='true']")
    assert suspect.count() == 1
    assert suspect.get_attribute("data-experiment") == "test"
    lab.screenshot(ui_out / "rollouts.png", ".hawknb-rollouts")
    lab.page.locator(".hawknb-rollouts-panel[data-model='ctr_model'] .hawknb-label").first.click()
    lab.wait_kernel("rc.selected_panel.get('model') == 'ctr_model'")
    assert lab.kernel_json("rc.selected_panel") == {"model": "ctr_model", "experiment": "ctrl"}


NAV_CELLS = [
    """
import ipywidgets as W
from hawknb.widgets import InvestigationNavigator
steps = [
    {"id": "metric", "title": "Top-line anomaly", "status": "done", "decision": "CTR down 4%",
     "confidence": 0.97, "parent": None},
    {"id": "model", "title": "Degraded model", "status": "done", "decision": "ranker/test",
     "confidence": 0.9, "parent": "metric"},
    {"id": "snapshot", "title": "Snapshot rollout", "status": "warning",
     "decision": "s2 ramp aligns", "confidence": 0.7, "parent": "model"},
    {"id": "features", "title": "Responsible features", "status": "skipped",
     "decision": "not reached", "confidence": None, "parent": "snapshot"},
    {"id": "training", "title": "Training data", "status": "failed", "decision": "no table",
     "parent": "model"},
]
nav = InvestigationNavigator(steps, views={"snapshot": W.HTML("<b class='snapview'>S2 view</b>")})
nav
""",
]


def test_navigator_renders_steps_and_click_shows_view(lab, ui_out: Path) -> None:
    lab.run_notebook("navigator.ipynb", NAV_CELLS, wait_for=".hawknb-navigator .hawknb-step")
    root = lab.wait_for(".hawknb-navigator")
    assert root.get_attribute("data-steps") == "5"
    assert lab.page.locator(".hawknb-navigator .hawknb-step").count() == 5
    assert lab.page.locator(".hawknb-step[data-status='failed']").count() == 1
    lab.page.locator(".hawknb-step[data-step-id='snapshot']").click()
    lab.wait_kernel("nav.selected_step == 'snapshot'")
    # breadcrumbs show the path root -> selected, and the step's view appears below
    lab.page.wait_for_selector(".hawknb-crumb[data-step-id='snapshot']")
    crumbs = lab.page.locator(".hawknb-navigator .hawknb-crumb").all_inner_texts()
    assert crumbs == ["Investigation", "Top-line anomaly", "Degraded model", "Snapshot rollout"]
    lab.wait_for(".snapview")
    lab.screenshot(ui_out / "navigator.png")

"""The demo, end to end in a real browser: `hawknb demo`'s notebook in JupyterLab + Chromium.

What a user of ``hawknb demo`` gets is checked here the way they get it: a simulated workspace
with a planted incident and the triage notebook instantiated beside it exactly as
``hawknb/cli/demo.py`` does, opened in the real JupyterLab server and run with *Run All*. Then:

- the linked dashboard (``hawknb.investigate``) shows one navigator step per finding, and
  clicking each step shows that step's view with real content (anomaly bands, rollout panels,
  one row per model feature, lineage nodes, the verdict table); a screenshot of each view is
  saved under ``test-results/ui/<test>/``;
- a click in the browser changes kernel state *through the triage layer*: clicking a feature
  row focuses the kernel's lineage explorer on it and switches the navigator to the lineage step;
- for a snapshot incident the model-graph viewer lays out the snapshot's graph and flags nodes;
- the notebook executed with saved widget state (``hawknb new --execute``) and exported with
  ``hawknb report NOTEBOOK --from-notebook`` renders the navigator and its selected view with the network
  blocked (``test_ui_report.py`` covers the one-shot ``hawknb report WORKSPACE`` path);
- no console error or page error comes from hawknb's views during any of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ui

# the view each dashboard step shows, by the class its root element carries
VIEW_CLASS = {
    "topline": "hawknb-timeline",
    "models": "hawknb-rollouts",
    "snapshot": "hawknb-rollouts",
    "features": "hawknb-features",
    "lineage": "hawknb-lineage",
    "weights": "hawknb-modelgraph",
    "activations": "hawknb-modelgraph",
    "training": "hawknb-training, .hawknb-dashboard .hawknb-empty",
    "hypotheses": "hawknb-hypotheses",
    "verdict": "hawknb-verdict",
}
DASH = ".hawknb-dashboard"
NAV = f"{DASH} .hawknb-navigator"
from _offline import block_network  # noqa: E402  (tests/ui is on sys.path, as for conftest)


@dataclass(frozen=True)
class Demo:
    """A demo folder inside the server root: workspace + notebook, truth kept outside."""

    folder: str  # relative to the server root
    notebook: str  # relative to the server root (what JupyterLab opens)
    workspace: Path
    truth: dict[str, Any]


@pytest.fixture(scope="module")
def make_demo(lab_server: Any) -> Callable[..., Demo]:
    """Simulate an incident into the server root and write the demo notebook beside it, the way
    ``hawknb demo`` does (relative workspace path, so notebook and workspace move together)."""
    from hawknb.notebooks import instantiate
    from hawknb.simulate import simulate

    made: dict[tuple[str, int], Demo] = {}

    def make(incident: str, seed: int) -> Demo:
        if (incident, seed) in made:
            return made[(incident, seed)]
        folder = f"demo-{incident}-{seed}"
        out = lab_server.root / folder
        ws = out / "workspace"
        truth_path = lab_server.base / f"{folder}.truth.json"  # outside the server root
        simulate(ws, incident=incident, seed=seed, days=5, truth_path=truth_path)
        instantiate("triage", out / "investigation.ipynb", parameters={"workspace": "workspace"})
        demo = Demo(folder, f"{folder}/investigation.ipynb", ws, json.loads(truth_path.read_text()))
        made[(incident, seed)] = demo
        return demo

    return make


def _watch_console(page: Any) -> list[str]:
    """Every console error and uncaught page error, as 'where: text'."""
    seen: list[str] = []

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            seen.append(f"{loc.get('url', '')}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}\n{getattr(e, 'stack', '')}"))
    return seen


def _from_hawknb(errors: list[str]) -> list[str]:
    """The errors raised by hawknb's view bundles: anywidget loads each ESM from a blob: URL
    (all anywidgets here are hawknb's), and the views name themselves in their messages."""
    marks = ("hawknb", "anywidget", "blob:")
    return [e for e in errors if any(m in e.lower() for m in marks)]


def _open_and_run(lab: Any, demo: Demo) -> None:
    lab.open(demo.notebook, timeout=90_000)
    lab.run_all(timeout=120_000)
    errors = lab.page.locator(".jp-OutputArea-output[data-mime-type*='error']")
    if errors.count():
        raise AssertionError(f"a demo cell raised: {errors.first.inner_text()[:2000]}")


def _show_step(lab: Any, step: str, title: str | None) -> Any:
    """Click a step in the navigator; wait until the kernel selected it and its view (the one
    whose title the kernel gave, not the previous step's) is the only view under the navigator."""
    lab.page.locator(f"{NAV} .hawknb-step[data-step-id='{step}']").click()
    lab.page.wait_for_selector(f"{NAV}[data-selected='{step}']", timeout=10_000)
    lab.wait_kernel(f"dashboard.navigator.selected_step == {step!r}")
    cls = VIEW_CLASS[step]
    view = lab.page.locator(f"{DASH} .{cls}")
    if title:
        view = view.filter(has=lab.page.locator(".hawknb-title", has_text=title))
    view.first.wait_for(state="visible", timeout=30_000)
    view.first.scroll_into_view_if_needed()
    # the previous step's view has left the page (views under the navigator: exactly one)
    lab.page.wait_for_function(
        """(dash) => {
          const roots = [...document.querySelectorAll(dash + ' .hawknb-root')]
            .filter((r) => !r.classList.contains('hawknb-navigator'));
          return roots.length <= 1;
        }""",
        arg=DASH,
        timeout=10_000,
    )
    return view.first


def _attr(loc: Any, name: str) -> int:
    value = loc.get_attribute(name)
    assert value is not None, f"view has no {name}"
    return int(value)


def test_demo_dashboard_steps_views_and_feature_click(make_demo, lab, ui_out: Path) -> None:
    demo = make_demo("upstream_data", 3)
    # the planted incident is a real one: an upstream break reaching several models' features
    assert demo.truth["cause"] == "upstream_data"
    assert demo.truth["upstream"] and len(demo.truth["affected_models"]) >= 1
    console = _watch_console(lab.page)
    _open_and_run(lab, demo)

    # the walk found the planted incident (any affected model; the planted upstream root)
    verdict = lab.kernel_json("inv.verdict.to_dict()")
    assert verdict["cause"] == "upstream_data"
    assert verdict["model"] in demo.truth["affected_models"]
    assert demo.truth["upstream"][0] in verdict["upstream"]

    # -- the navigator: one step per finding, the verdict selected first ----------------------
    k = lab.kernel_json(
        """{
        "findings": [f.step for f in inv.findings],
        "steps": [s["id"] for s in dashboard.navigator.steps],
        "views": sorted(dashboard.navigator.views),
        "selected": dashboard.navigator.selected_step,
        "titles": {s: getattr(w, "title", None) for s, w in dashboard.navigator.views.items()},
        "bands": len(dashboard.timeline.windows),
        "panels": len(dashboard.rollouts.panels),
        "snapshot_panels": len(dashboard.snapshots.panels),
        "ranked_model": inv.context["ranking"].model,
        "model_features": len(ws.features(inv.context["ranking"].model)),
        "lineage_nodes": len(dashboard.lineage._nodes),
        "lineage_focus": dashboard.lineage.focus,
        }"""
    )
    assert k["steps"] == k["findings"]
    assert set(k["steps"]) >= {"topline", "models", "features", "lineage", "verdict"}
    nav = lab.wait_for(f"{NAV}[data-steps='{len(k['steps'])}']", timeout=30_000)
    assert lab.page.locator(f"{NAV} .hawknb-step").count() == len(k["steps"])
    dom_steps = lab.page.locator(f"{NAV} .hawknb-step").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.stepId)"
    )
    assert sorted(dom_steps) == sorted(k["steps"])
    assert nav.get_attribute("data-selected") == k["selected"] == "verdict"
    lab.wait_for(f"{DASH} .hawknb-verdict")
    # textContent, not innerText: JupyterLab's cells use `content-visibility: auto`, under
    # which Chromium may answer innerText with "" for a rendered table
    assert "upstream_data" in lab.page.locator(f"{DASH} .hawknb-verdict").text_content()
    lab.screenshot(ui_out / "00-dashboard.png", DASH)

    # -- click through every step that has a view; each shows real content ---------------------
    for i, step in enumerate(k["steps"], start=1):
        if step not in k["views"]:
            continue
        view = _show_step(lab, step, k["titles"].get(step))
        if step == "topline":
            assert view.get_attribute("data-empty") == "false"
            assert _attr(view, "data-bands") == k["bands"] >= 1
            assert _attr(view, "data-points") > 0
            assert lab.page.locator(f"{DASH} .hawknb-timeline .hawknb-band").count() >= 1
        elif step in ("models", "snapshot"):
            assert view.get_attribute("data-empty") == "false"
            want = k["panels"] if step == "models" else k["snapshot_panels"]
            assert _attr(view, "data-panels") == want >= 1
            assert view.locator(".hawknb-rollouts-panel").count() == want
            if step == "models":  # the verdict's model has its panels
                mine = view.locator(f".hawknb-rollouts-panel[data-model='{verdict['model']}']")
                assert mine.count() >= 1
        elif step == "features":
            assert view.get_attribute("data-empty") == "false"
            view.locator(".hawknb-row").first.wait_for(timeout=10_000)
            assert _attr(view, "data-rows") == k["model_features"] >= 2
        elif step == "lineage":
            assert view.get_attribute("data-empty") == "false"
            lab.page.wait_for_selector(f"{DASH} .hawknb-lineage[data-layout='done']")
            assert _attr(view, "data-nodes") == k["lineage_nodes"] > 0
            assert _attr(view, "data-visible-nodes") > 0
            assert view.get_attribute("data-focus") == k["lineage_focus"]
        elif step == "hypotheses":  # the chosen explanation and why not the runner-up
            text = view.text_content()
            assert "chosen" in text and "upstream_data" in text and "runner-up" in text
        elif step == "verdict":
            assert "upstream_data" in view.text_content()
        lab.screenshot(ui_out / f"{i:02d}-{step}.png", f"{DASH} .{VIEW_CLASS[step]}")

    # -- a click goes through the triage layer: feature row -> lineage focus + lineage step ------
    feats = _show_step(lab, "features", k["titles"]["features"])
    rows = feats.locator(".hawknb-row")
    rows.first.wait_for(timeout=10_000)
    names = rows.evaluate_all("(rs) => rs.map((r) => r.dataset.feature)")
    pick = next(n for n in names if n and n != k["lineage_focus"])
    assert lab.kernel_json(f"{pick!r} in ws.lineage()"), "the picked feature has no lineage node"
    feats.locator(f".hawknb-row[data-feature='{pick}']").click()
    lab.wait_kernel(f"dashboard.features.selected_feature == {pick!r}")
    lab.wait_kernel(f"dashboard.lineage.focus == {pick!r}")
    lab.wait_kernel("dashboard.navigator.selected_step == 'lineage'")
    # ... and the browser follows the kernel: the navigator and the re-rendered lineage view
    lab.page.wait_for_selector(f"{NAV}[data-selected='lineage']", timeout=10_000)
    lineage = lab.wait_for(f"{DASH} .hawknb-lineage[data-focus='{pick}']", timeout=30_000)
    lab.page.wait_for_selector(f"{DASH} .hawknb-lineage[data-layout='done']", timeout=30_000)
    assert _attr(lineage, "data-visible-nodes") > 0
    lab.screenshot(ui_out / "20-lineage-focused.png", f"{DASH} .hawknb-lineage")

    print("console errors:", console)  # shown on failure; JupyterLab's own are not asserted
    ours = _from_hawknb(console)
    assert ours == [], "hawknb views logged errors:\n" + "\n".join(ours)


def test_demo_snapshot_incident_model_graph_flags_nodes(make_demo, lab, ui_out: Path) -> None:
    # activation_blowup seed 1: the triage convicts the planted snapshot (checked below), and
    # the replay hits inf/NaN activations the viewer must flag
    demo = make_demo("activation_blowup", 1)
    assert demo.truth["cause"] == "bad_snapshot" and demo.truth["snapshot"]
    console = _watch_console(lab.page)
    _open_and_run(lab, demo)
    verdict = lab.kernel_json("inv.verdict.to_dict()")
    assert verdict["cause"] == "bad_snapshot"
    assert (verdict["model"], verdict["snapshot"]) == (demo.truth["model"], demo.truth["snapshot"])
    k = lab.kernel_json(
        """{
        "steps": [s["id"] for s in dashboard.navigator.steps],
        "nodes": len(dashboard.modelgraph._nodes),
        "flags": sorted(dashboard.modelgraph._flags),
        "title": dashboard.modelgraph.title,
        }"""
    )
    assert "activations" in k["steps"]
    lab.wait_for(f"{NAV}[data-steps='{len(k['steps'])}']", timeout=30_000)
    view = _show_step(lab, "activations", k["title"])
    lab.page.wait_for_selector(f"{DASH} .hawknb-modelgraph[data-layout='done']", timeout=60_000)
    assert view.get_attribute("data-empty") == "false"
    assert _attr(view, "data-nodes") == k["nodes"] > 0
    assert _attr(view, "data-flagged") == len(k["flags"]) >= 1
    assert _attr(view, "data-painted") > 0
    lab.screenshot(ui_out / "activations-modelgraph.png", f"{DASH} .hawknb-modelgraph")

    print("console errors:", console)  # shown on failure; JupyterLab's own are not asserted
    ours = _from_hawknb(console)
    assert ours == [], "hawknb views logged errors:\n" + "\n".join(ours)


def test_demo_saved_widget_state_renders_offline(make_demo, page, tmp_path: Path, ui_out) -> None:
    """``hawknb new --execute`` + ``hawknb report NB --from-notebook``: the views come back from
    the saved widget state with their saved content, and nothing is fetched. (The one-shot
    ``hawknb report WORKSPACE`` path is ``test_ui_report.py``'s.)"""
    import logging

    import nbformat

    from hawknb import Workspace
    from hawknb._offline_html import has_widget_state
    from hawknb.cli import main
    from hawknb.report import notebook_verdict

    demo = make_demo("upstream_data", 3)
    nb_path, html = tmp_path / "executed.ipynb", tmp_path / "executed.html"
    try:  # what a user types: execute with widget state saved, then export that notebook
        rc = main(
            ["new", "triage", "--workspace", str(demo.workspace), "-o", str(nb_path), "--execute"]
        )
        assert rc == 0
        rc = main(["report", str(nb_path), "--from-notebook", "-o", str(html)])
        assert rc == 0
    finally:
        logging.disable(logging.NOTSET)
    nb = nbformat.read(nb_path, as_version=4)
    assert has_widget_state(nb)
    verdict = notebook_verdict(nb)
    assert verdict["cause"] == "upstream_data"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    saved = [s["state"] for s in state.values() if s.get("model_name") == "AnyModel"]
    navs = [s for s in saved if "selected_step" in s]
    assert len(navs) == 1, "expected one navigator in the saved state"
    steps = navs[0]["steps"]
    (timeline,) = [s for s in saved if "windows" in s and "total_points" in s]
    (lineage,) = [s for s in saved if "_nodes" in s and "focus" in s]
    n_features = len(Workspace.open(demo.workspace).features(verdict["model"]))

    blocked = block_network(page)
    console = _watch_console(page)
    page.goto(html.resolve().as_uri())
    # the navigator from the saved state: every step, the verdict selected, its view below
    nav = page.wait_for_selector(f".hawknb-navigator[data-steps='{len(steps)}']", timeout=30_000)
    assert nav.get_attribute("data-empty") == "false"
    assert page.locator(".hawknb-navigator .hawknb-step").count() == len(steps)
    assert nav.get_attribute("data-selected") == navs[0]["selected_step"] == "verdict"
    table = page.wait_for_selector(f"{DASH} .hawknb-verdict", timeout=30_000)
    assert "upstream_data" in table.text_content()
    page.locator(DASH).first.screenshot(path=str(ui_out / "offline-dashboard.png"))
    # the views the notebook also shows on their own render with the saved content
    tl = page.wait_for_selector(".hawknb-timeline[data-points]", timeout=30_000)
    assert int(tl.get_attribute("data-bands")) == len(timeline["windows"]) >= 1
    assert int(tl.get_attribute("data-points")) > 0
    ft = page.wait_for_selector(".hawknb-features[data-rows]", timeout=30_000)
    assert int(ft.get_attribute("data-rows")) == n_features
    ln = page.wait_for_selector(".hawknb-lineage[data-layout='done']", timeout=30_000)
    assert int(ln.get_attribute("data-nodes")) == len(lineage["_nodes"]) > 0
    assert page.locator(".hawknb-rollouts[data-panels]").count() >= 1
    assert page.locator(".hawknb-error").count() == 0
    ln.screenshot(path=str(ui_out / "offline-lineage.png"))
    # no kernel, yet a click on a step switches the dashboard's view (the saved front-end link
    # from the navigator to its view stack) and the verdict table leaves the page
    for step in ("features", "lineage"):
        page.locator(f"{NAV} .hawknb-step[data-step-id='{step}']").click()
        page.wait_for_selector(f"{NAV}[data-selected='{step}']", timeout=10_000)
        page.wait_for_selector(f"{DASH} .{VIEW_CLASS[step]}", timeout=30_000)
        page.wait_for_selector(f"{DASH} .hawknb-verdict", state="detached", timeout=10_000)
    page.wait_for_selector(f"{DASH} .hawknb-features", state="detached", timeout=10_000)
    page.wait_for_selector(f"{DASH} .hawknb-lineage[data-layout='done']", timeout=30_000)
    page.locator(DASH).first.screenshot(path=str(ui_out / "offline-dashboard-lineage.png"))
    page.locator(f"{NAV} .hawknb-step[data-step-id='features']").click()
    ranked = page.wait_for_selector(f"{DASH} .hawknb-features[data-rows]", timeout=30_000)
    assert int(ranked.get_attribute("data-rows")) == n_features
    assert blocked == [], f"the exported notebook fetched {blocked}"
    print("console errors:", console)  # shown on failure; JupyterLab's own are not asserted
    ours = _from_hawknb(console)
    assert ours == [], "hawknb views logged errors offline:\n" + "\n".join(ours)


# -- regressions of bugs this suite found (suspect panel, weights-only flags) ---------------------
def _dashboard_at(lab, demo, step: str, notebook: str, wait_for: str) -> None:
    """Run a notebook that opens the demo's dashboard with ``step`` selected."""
    cells = [
        f"import hawknb\ndashboard = hawknb.investigate({str(demo.workspace)!r})\n"
        f"dashboard.navigator.select({step!r})\ndashboard"
    ]
    lab.run_notebook(notebook, cells, wait_for=wait_for)


def test_models_view_marks_the_verdict_model_suspect(make_demo, lab) -> None:
    demo = make_demo("upstream_data", 3)
    _dashboard_at(lab, demo, "models", "suspect.ipynb", f"{DASH} .hawknb-rollouts[data-panels]")
    model = lab.kernel_eval("print(dashboard.investigation.verdict.model)")
    panel = f"{DASH} .hawknb-rollouts-panel[data-model='{model}']"
    assert lab.page.locator(panel).count() >= 1
    assert lab.page.locator(f"{panel}[data-suspect='true']").count() >= 1


def test_model_graph_flags_the_convicted_weights_layer(make_demo, lab) -> None:
    demo = make_demo("bad_snapshot", 3)
    _dashboard_at(lab, demo, "weights", "weights.ipynb", f"{DASH} .hawknb-modelgraph")
    verdict = lab.kernel_json("dashboard.investigation.verdict.to_dict()")
    assert verdict["cause"] == "bad_snapshot" and verdict["layer"]
    assert verdict["snapshot"] == demo.truth["snapshot"]
    root = lab.wait_for(f"{DASH} .hawknb-modelgraph[data-layout='done']", timeout=60_000)
    assert _attr(root, "data-nodes") > 0
    assert _attr(root, "data-flagged") >= 1

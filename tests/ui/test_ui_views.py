"""Real-browser checks of FeatureTable, ModelGraphTensorViewer and LineageExplorer.

Each test renders a view in a real JupyterLab, checks real content (row and node counts, the
virtualized DOM staying small), clicks something and reads the trait back from the kernel, and
saves a screenshot under test-results/ui/<test>/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

FEATURE_CELLS = [
    """
import numpy as np
import polars as pl
from hawknb.widgets import FeatureTable

n = 3000
rng = np.random.default_rng(0)
names = [f"feat_{i:04d}" for i in range(n)]
score = np.sort(rng.random(n))[::-1]
table = pl.DataFrame({
    "feature": names,
    "rank": np.arange(1, n + 1),
    "score": score,
    "drift_psi": rng.random(n),
    "evidence": ["drift at onset" if i % 7 == 0 else "attribution shift" for i in range(n)],
})
sparks = {f: rng.normal(0, 1, 48).cumsum() for f in names[:200]}
dists = {f: {"before": rng.normal(0, 1, 300), "after": rng.normal(1, 1.5, 300)} for f in names[:200]}
fr = FeatureTable(table, sparklines=sparks, distributions=dists, title="Responsible features")
fr
""",
]


def _click_canvas_node(lab, root_sel: str, node: str, which: str = "point") -> None:
    """Centre ``node`` in its canvas, then click its centre (or its '+' badge) with the mouse."""
    lab.page.locator(f"{root_sel} canvas.hawknb-graph-canvas").scroll_into_view_if_needed()
    lab.page.evaluate(
        "([sel, id]) => document.querySelector(sel).hawknb.center(id)", [root_sel, node]
    )
    lab.page.wait_for_timeout(100)  # one animation frame for the redraw
    pt = lab.page.evaluate(
        "([sel, id, which]) => document.querySelector(sel).hawknb[which](id)",
        [root_sel, node, which],
    )
    assert pt is not None, f"{node} is not laid out"
    lab.page.mouse.click(pt["x"], pt["y"])


def test_feature_ranking_virtualizes_sorts_filters_and_selects(lab, ui_out: Path) -> None:
    lab.run_notebook("features.ipynb", FEATURE_CELLS, wait_for=".hawknb-features .hawknb-row")
    root = lab.wait_for(".hawknb-features")
    assert root.get_attribute("data-rows") == "3000"
    assert root.get_attribute("data-visible-rows") == "3000"
    rendered = lab.page.locator(".hawknb-features .hawknb-row").count()
    assert 5 < rendered < 80, rendered  # only the scroll window is in the DOM
    assert root.get_attribute("data-sort-key") == "rank"
    first = lab.page.locator(".hawknb-features .hawknb-row").first
    assert first.get_attribute("data-feature") == "feat_0000"
    assert lab.page.locator(".hawknb-features canvas.hawknb-spark").count() > 0
    lab.screenshot(ui_out / "features.png", ".hawknb-features")

    # scrolling far down swaps the rows without growing the DOM
    lab.page.locator(".hawknb-features .hawknb-ft-scroll").evaluate(
        "(e) => { e.scrollTop = 26 * 2000; }"
    )
    lab.page.wait_for_selector(
        ".hawknb-features .hawknb-row[data-feature='feat_2005']", timeout=10_000
    )
    assert lab.page.locator(".hawknb-features .hawknb-row").count() < 80

    # sort by drift_psi (descending first), then filter
    lab.page.locator(".hawknb-features .hawknb-ft-head [data-col='drift_psi']").click()
    assert root.get_attribute("data-sort-key") == "drift_psi"
    assert root.get_attribute("data-sort-dir") == "desc"
    top = lab.page.locator(".hawknb-features .hawknb-row").first.get_attribute("data-feature")
    expected = lab.kernel_eval("print(table.sort('drift_psi', descending=True)['feature'][0])")
    assert top == expected
    lab.page.locator(".hawknb-features .hawknb-filter").fill("feat_01")
    lab.page.wait_for_selector(".hawknb-features[data-visible-rows='100']", timeout=10_000)

    # click a row -> the kernel sees the selection
    row = lab.page.locator(".hawknb-features .hawknb-row").nth(2)
    name = row.get_attribute("data-feature")
    row.click()
    lab.wait_kernel(f"fr.selected_feature == {name!r}")
    lab.page.wait_for_selector(".hawknb-features .hawknb-row.selected", timeout=10_000)
    lab.screenshot(ui_out / "features-selected.png", ".hawknb-features")


MODELGRAPH_CELLS = [
    """
import numpy as np
from hawknb.widgets import ModelGraphTensorViewer

n = 400
nodes = [{"id": "x", "label": "x", "op": "placeholder", "kind": "input", "layer": None}]
nodes += [{"id": f"op{i}", "label": ["linear", "relu", "add"][i % 3], "op": "call_function",
           "layer": f"net.{i}"} for i in range(n)]
nodes += [{"id": "out", "label": "output", "op": "output", "layer": None}]
edges = [{"source": "x", "target": "op0"}]
edges += [{"source": f"op{i}", "target": f"op{i + 1}"} for i in range(n - 1)]
edges += [{"source": f"op{i - 3}", "target": f"op{i}"} for i in range(3, n, 3)]
edges += [{"source": f"op{n - 1}", "target": "out"}]
rng = np.random.default_rng(1)
stats = {}
for nd in nodes:
    m = float(10 ** rng.uniform(-1, 2))
    stats[nd["id"]] = {"max_abs": m, "mean": m / 3, "std": m / 5, "nan": 0, "inf": 0,
                       "hist": {"edges": list(np.linspace(-m, m, 21)),
                                "counts": list(rng.integers(0, 50, 20))}}
stats["op250"].update({"nan": 64, "max_abs": float("inf")})
mg = ModelGraphTensorViewer(nodes, edges, stats=stats, title="snapshot s2")
mg
""",
]


def test_model_graph_lays_out_colours_walks_and_selects(lab, ui_out: Path) -> None:
    lab.run_notebook("modelgraph.ipynb", MODELGRAPH_CELLS, wait_for=".hawknb-modelgraph canvas")
    lab.page.wait_for_selector(".hawknb-modelgraph[data-layout='done']", timeout=60_000)
    root = lab.wait_for(".hawknb-modelgraph")
    assert root.get_attribute("data-nodes") == "402"
    assert root.get_attribute("data-engine") == "elk"
    assert int(root.get_attribute("data-painted")) > 0
    assert int(root.get_attribute("data-flagged")) >= 1
    # few DOM nodes per graph node: one canvas for the whole graph
    assert lab.page.locator(".hawknb-modelgraph *").count() < 150
    lab.screenshot(ui_out / "modelgraph.png", ".hawknb-modelgraph")

    _click_canvas_node(lab, ".hawknb-modelgraph", "op250")
    lab.wait_kernel("mg.selected_node == 'op250'")
    lab.page.wait_for_selector(".hawknb-modelgraph .hawknb-mg-hist", timeout=10_000)
    assert "NaN" in lab.page.locator(".hawknb-modelgraph .hawknb-flag").inner_text()

    lab.page.locator(".hawknb-modelgraph .hawknb-walk-up").click()
    assert root.get_attribute("data-walk") == "up"
    assert root.get_attribute("data-highlighted") == "252"  # op0..op250 + x
    lab.page.locator(".hawknb-modelgraph .hawknb-walk-down").click()
    assert root.get_attribute("data-highlighted") == "151"  # op250..op399 + out
    lab.screenshot(ui_out / "modelgraph-walk.png", ".hawknb-modelgraph")

    lab.page.locator(".hawknb-modelgraph select.hawknb-colorby").select_option("mean")
    lab.wait_kernel("mg.color_by == 'mean'")


LINEAGE_CELLS = [
    """
import datetime as dt
import numpy as np
from hawknb.widgets import LineageExplorer

# a 3-ary in-tree of depth 5 upstream of the feature, plus sibling features
nodes = [{"id": "feat_ctr", "kind": "feature", "name": "feat_ctr"}]
edges = []
frontier = ["feat_ctr"]
k = 0
for depth in range(5):
    nxt = []
    for child in frontier:
        for _ in range(3):
            nid = f"n{k}"; k += 1
            nodes.append({"id": nid, "kind": ["job", "table", "source"][depth % 3], "name": f"node {nid}"})
            edges.append({"source": nid, "target": child})
            nxt.append(nid)
    frontier = nxt
for j in range(4):
    nodes.append({"id": f"sib{j}", "kind": "feature", "name": f"sibling {j}"})
    edges.append({"source": "n0", "target": f"sib{j}"})
t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
ts = [t0 + dt.timedelta(hours=h) for h in range(48)]
rng = np.random.default_rng(2)
series = {}
for nd in nodes:
    v = 100 + rng.normal(0, 1, 48)
    if nd["id"] in ("n0", "n3", "n12"):
        v[30:] -= 40
    series[nd["id"]] = {"ts": ts, "value": v, "onset": ts[30]}
cands = [{"node": "n12", "score": 0.92, "confidence": 0.8}, {"node": "n3", "score": 0.5, "confidence": 0.4}]
ln = LineageExplorer(nodes, edges, series=series, candidates=cands,
                     blast_radius=["sib0", "sib1", "sib2", "sib3"], focus="feat_ctr", hops=1)
ln
""",
]


def test_lineage_expands_collapses_and_selects(lab, ui_out: Path) -> None:
    lab.run_notebook("lineage.ipynb", LINEAGE_CELLS, wait_for=".hawknb-lineage canvas")
    lab.page.wait_for_selector(".hawknb-lineage[data-layout='done']", timeout=60_000)
    root = lab.wait_for(".hawknb-lineage")
    total = 1 + 3 + 9 + 27 + 81 + 243 + 4
    assert root.get_attribute("data-nodes") == str(total)
    # 1 hop (feat + n0..n2) plus the candidates pinned with their paths (n12 -> n3 -> n0)
    visible = set(
        lab.page.evaluate("() => document.querySelector('.hawknb-lineage').hawknb.visible()")
    )
    assert visible == {"feat_ctr", "n0", "n1", "n2", "n3", "n12"}
    assert root.get_attribute("data-visible-nodes") == "6"
    assert lab.page.locator(".hawknb-lineage .hawknb-cand").count() == 2
    lab.screenshot(ui_out / "lineage.png", ".hawknb-lineage")

    # '+' on n1 expands its three parents
    _click_canvas_node(lab, ".hawknb-lineage", "n1", which="plusPoint")
    lab.page.wait_for_selector(
        ".hawknb-lineage[data-visible-nodes='9'][data-layout='done']", timeout=30_000
    )
    # '−' on n1 collapses them again
    _click_canvas_node(lab, ".hawknb-lineage", "n1", which="plusPoint")
    lab.page.wait_for_selector(
        ".hawknb-lineage[data-visible-nodes='6'][data-layout='done']", timeout=30_000
    )

    _click_canvas_node(lab, ".hawknb-lineage", "n12")
    lab.wait_kernel("ln.selected_node == 'n12'")
    lab.page.wait_for_selector(".hawknb-lineage .hawknb-ln-spark-large", timeout=10_000)

    lab.page.locator(".hawknb-lineage .hawknb-ln-blast").click()
    lab.page.wait_for_selector(
        ".hawknb-lineage[data-visible-nodes='10'][data-layout='done']", timeout=30_000
    )
    lab.page.locator(".hawknb-lineage .hawknb-ln-all").click()
    lab.page.wait_for_selector(
        f".hawknb-lineage[data-visible-nodes='{total}'][data-layout='done']", timeout=60_000
    )
    lab.screenshot(ui_out / "lineage-expanded.png", ".hawknb-lineage")

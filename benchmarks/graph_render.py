"""Model graph (1,000 ops) and lineage graph (2,000 nodes): layout + first paint in Chromium.

What the on-call engineer waits for when a DAG view opens: ELK's layered layout of the whole
graph plus the first canvas paint. The views run exactly as in JupyterLab (the committed
bundles, the widget's real synced state) but under a minimal anywidget host page served
locally, so the number excludes kernel start-up and notebook rendering. Headless Debian
Chromium, software rendering (no GPU). Run with

    .venv/bin/python benchmarks/graph_render.py [--repeat 3] [--out results/graph_render.md]

Reported per graph: ELK layout ms (measured in the page around ``elk.layout``), render ms
(from ``render()`` to the layout applied and the canvas painted), median of ``--repeat`` runs
each in a fresh page (cold JIT: what a user sees the first time).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import itertools
import json
import shutil
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from hawknb.widgets import LineageExplorer, ModelGraphTensorViewer

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "hawknb" / "static"
CHROMIUM = "/usr/bin/chromium"

HOST = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><div id="out" style="width:1300px"></div>
<script type="module">
const state = await (await fetch("state.json")).json();
const listeners = {};
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (listeners["change:" + k] || []).forEach((f) => f()); },
  save_changes: () => {},
  on: (ev, f) => { (listeners[ev] = listeners[ev] || []).push(f); },
  off: () => {},
  send: () => {},
};
const mod = await import("./view.js");
window.__t0 = performance.now();
mod.default.render({ model, el: document.getElementById("out") });
</script></body></html>
"""


def model_graph(n: int = 1000, seed: int = 0) -> ModelGraphTensorViewer:
    """A 1,000-op graph shaped like an exported MLP: a chain with residual skips."""
    rng = np.random.default_rng(seed)
    nodes = [{"id": "x", "label": "x", "op": "placeholder", "kind": "input"}]
    nodes += [
        {
            "id": f"op{i}",
            "label": ["linear", "relu", "add", "mul"][i % 4],
            "op": "call_function",
            "layer": f"net.{i // 4}",
        }
        for i in range(n - 2)
    ]
    nodes.append({"id": "out", "label": "output", "op": "output"})
    ids = [nd["id"] for nd in nodes]
    edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    edges += [{"source": ids[i - 4], "target": ids[i]} for i in range(5, n - 1, 4)]
    stats = {i: {"max_abs": float(10 ** rng.uniform(-2, 3)), "nan": 0, "inf": 0} for i in ids}
    stats[ids[n // 2]].update(nan=10, max_abs=float("inf"))
    return ModelGraphTensorViewer(nodes, edges, stats=stats)


def lineage_graph(n: int = 2000, seed: int = 0) -> LineageExplorer:
    """A 2,000-node lineage: sources -> tables -> jobs -> features, each node fed by 1-3 parents
    of the previous tier (a realistic many-to-many warehouse DAG), every node with a series."""
    rng = np.random.default_rng(seed)
    tiers = [("source", n // 10), ("table", n * 3 // 10), ("job", n * 3 // 10)]
    tiers.append(("feature", n - sum(c for _, c in tiers)))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    prev: list[str] = []
    for kind, count in tiers:
        cur = [f"{kind}_{i}" for i in range(count)]
        nodes += [{"id": c, "kind": kind, "name": c} for c in cur]
        if prev:
            for c in cur:
                for p in rng.choice(prev, size=int(rng.integers(1, 4)), replace=False):
                    edges.append({"source": str(p), "target": c})
        prev = cur
    ts = [f"2024-01-01T{h:02d}:00Z" for h in range(24)]
    series = {nd["id"]: {"ts": ts, "value": rng.normal(0, 1, 24), "onset": ts[16]} for nd in nodes}
    cands = [{"node": "source_3", "score": 0.9, "confidence": 0.8}]
    # focus=None: every node is laid out (the worst case; a focused view starts much smaller)
    return LineageExplorer(nodes, edges, series=series, candidates=cands, focus=None)


def widget_state(w: Any) -> dict[str, Any]:
    """The synced traits the view reads (what the comm would carry)."""
    return {k: getattr(w, k) for k in w.trait_names(sync=True) if not k.startswith("_view")}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def measure(view: str, widget: Any, root_sel: str, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        shutil.copy(STATIC / f"{view}.js", d / "view.js")
        (d / "index.html").write_text(HOST)
        (d / "state.json").write_text(json.dumps(widget_state(widget), default=str))
        handler = functools.partial(_Quiet, directory=str(d))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        layout_ms, render_ms, painted = [], [], []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                for _ in range(repeat):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(url)
                    page.wait_for_selector(f"{root_sel}[data-layout='done']", timeout=120_000)
                    res = page.evaluate(
                        """(sel) => new Promise((ok) => requestAnimationFrame(() => {
                          const r = document.querySelector(sel);
                          ok({layout: +r.dataset.layoutMs, total: performance.now() - window.__t0,
                              nodes: +(r.dataset.visibleNodes || r.dataset.nodes),
                              painted: +r.dataset.painted, engine: r.dataset.engine,
                              dom: r.querySelectorAll('*').length});
                        }))""",
                        root_sel,
                    )
                    assert res["engine"] == "elk", res
                    layout_ms.append(res["layout"])
                    render_ms.append(res["total"])
                    painted.append(res["painted"])
                    page.close()
                browser.close()
        finally:
            server.shutdown()
    return {
        "view": view,
        "nodes": res["nodes"],
        "edges": len(widget._edges),
        "layout_ms": statistics.median(layout_ms),
        "render_ms": statistics.median(render_ms),
        "runs": [round(x) for x in render_ms],
        "dom_elements": res["dom"],
        "painted": painted[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = [
        measure("modelgraph", model_graph(), ".hawknb-modelgraph", args.repeat),
        measure("lineage", lineage_graph(), ".hawknb-lineage", args.repeat),
    ]
    lines = [
        "| view | nodes | edges | ELK layout ms (median) | layout + first paint ms (median) | runs ms | DOM elements |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['view']} | {r['nodes']} | {r['edges']} | {r['layout_ms']:.0f} | "
            f"{r['render_ms']:.0f} | {r['runs']} | {r['dom_elements']} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "# graph_render: DAG views in headless Chromium (software rendering)\n\n" + text + "\n"
        )


if __name__ == "__main__":
    main()

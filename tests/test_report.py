"""Offline HTML export and `hawknb report` (the browser side is in tests/ui/test_ui_report.py)."""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hawknb import _offline_html as oh
from hawknb.report import notebook_to_report, notebook_verdict, write_report
from hawknb.workspace import HawknbError

REPO = Path(__file__).resolve().parents[1]

WIDGET_CELL = '''
import anywidget, traitlets
class Probe(anywidget.AnyWidget):
    _esm = """export default { render({ model, el }) {
      el.classList.add('hawknb-probe'); el.textContent = 'probe=' + model.get('value'); } }"""
    value = traitlets.Int(41).tag(sync=True)
w = Probe(); w.value = 42; w
'''


#: a navigator whose steps have views (two HTML views and a hawknb anywidget), "metric" shown
NAVIGATOR_CELL = """
import ipywidgets, polars as pl
from hawknb.widgets import FeatureTable, InvestigationNavigator
steps = [
    {"id": "metric", "title": "Metric", "status": "done"},
    {"id": "model", "title": "Model", "status": "warning", "parent": "metric"},
    {"id": "features", "title": "Features", "status": "done", "parent": "model"},
    {"id": "verdict", "title": "Verdict", "status": "done"},
]
views = {
    "metric": ipywidgets.HTML("<div class='probe-view-metric'>metric view</div>"),
    "model": ipywidgets.HTML("<div class='probe-view-model'>model view</div>"),
    "features": FeatureTable(pl.DataFrame({"feature": ["f1", "f2"], "score": [0.9, 0.1]})),
}
nav = InvestigationNavigator(steps, views=views, selected="metric")
nav
"""


def _execute(markdown: str, code: list[str]) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in code]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    return nb


def executed_widget_notebook() -> nbformat.NotebookNode:
    """A real executed notebook holding one anywidget (a kernel runs it; ~2 s)."""
    return _execute(
        "# Probe report\n\nA `</script>` in markdown is harmless.",
        [WIDGET_CELL, "print('</script><script>alert(1)</script>')"],
    )


def executed_navigator_notebook() -> nbformat.NotebookNode:
    """A real executed notebook showing an InvestigationNavigator with views (see
    NAVIGATOR_CELL), its widget state saved as ``hawknb report`` saves it."""
    return _execute("# Navigator report", [NAVIGATOR_CELL])


def saved_state(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """model id -> {model_name, state, ...} of a notebook's saved widget state."""
    return dict(nb.metadata["widgets"][oh.WIDGET_STATE_MIME]["state"])


@pytest.fixture(scope="module")
def probe_nb() -> nbformat.NotebookNode:
    return executed_widget_notebook()


class _Scripts(HTMLParser):
    """Parse as a browser would: each <script> element with its text, and what tags fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.texts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
            self.texts.append("")
            self._in_script = True
        for key in ("src", "href"):
            if a.get(key) and tag in ("script", "link", "img", "iframe"):
                self.fetches.append(str(a[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.texts[-1] += data


def test_vendored_assets_are_present_and_match_node_modules() -> None:
    assets = oh.offline_assets()
    assert "requirejs" in assets.require_js[:2000].lower() or "requirejs" in assets.require_js
    assert 'define("@jupyter-widgets/html-manager' in assets.embed_amd_js
    assert 'define(["@jupyter-widgets/base"]' in assets.anywidget_js
    manifest = json.loads((oh.VENDOR_DIR / "manifest.json").read_text())
    assert set(manifest) == {"embed-amd.js.gz", "require.js.gz"}
    for name, src in oh._NODE_SOURCES.items():
        if src.exists():  # a source checkout after `npm ci`: the vendored copy is up to date
            vendored = gzip.decompress((oh.VENDOR_DIR / f"{name}.gz").read_bytes())
            assert vendored == src.read_bytes(), f"{name}: rerun `node js/vendor.mjs`"


@given(st.text(alphabet=st.sampled_from(list("<!-/scriptSCRIPT>ab\"'")), max_size=60))
def test_inline_script_text_can_never_close_its_element(js: str) -> None:
    safe = oh._script_safe(js)
    assert not re.search(r"</script", safe, re.IGNORECASE)
    assert "<!--" not in safe
    # nothing but the two escapes changed
    assert safe.replace("<\\/", "</").replace("<\\!--", "<!--") == js


def test_export_is_self_contained(probe_nb: nbformat.NotebookNode, tmp_path: Path) -> None:
    assert oh.has_widget_state(probe_nb)
    html = oh.notebook_to_offline_html(probe_nb, title="probe")
    parser = _Scripts()
    parser.feed(html)
    external = [u for u in parser.fetches if not u.startswith(("data:", "#", "blob:"))]
    assert external == [], f"the report would fetch {external}"
    # one state element, one view element, and the inlined loaders
    types = [s.get("type") for s in parser.scripts]
    assert types.count(oh.WIDGET_STATE_MIME) == 1
    assert types.count(oh.WIDGET_VIEW_MIME) == 1
    assert "require.config({paths:{anywidget:url}})" in html
    assert "MathJax.Hub.Config" not in html and "mermaid.esm" not in html
    # each inlined loader is one whole script element (no early `</script` cut it short) ...
    assets = oh.offline_assets()
    texts = parser.texts
    assert oh._script_safe(assets.require_js) in texts
    assert oh._script_safe(assets.embed_amd_js) in texts
    # ... and the printed '</script><script>alert(1)</script>' stayed text
    assert not any("alert(1)" in t for t in texts)
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html
    state = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S
    )
    assert state and '"value": 42' in state.group(1).replace('"value":42', '"value": 42')
    out = notebook_to_report_from_node(probe_nb, tmp_path)
    assert out.stat().st_size > 1_000_000  # the html-manager is inlined


def test_saved_state_links_the_navigator_to_its_view_stack() -> None:
    """What a click needs with no kernel is in the saved state: the views as the children of a
    Stack and a front-end link from the navigator's ``selected_view`` to the Stack's index."""
    nb = executed_navigator_notebook()
    state = saved_state(nb)
    (nav_id,) = [k for k, m in state.items() if "selected_step" in m["state"]]
    nav = state[nav_id]["state"]
    assert nav["selected_step"] == "metric"
    assert nav["with_views"] == ["features", "metric", "model"]
    links = [m["state"] for m in state.values() if m["model_name"] == "DirectionalLinkModel"]
    assert len(links) == 1, "the navigator's front-end link was not saved"
    link = links[0]
    assert link["source"] == [f"IPY_MODEL_{nav_id}", "selected_view"]
    stack_id = link["target"][0].removeprefix("IPY_MODEL_")
    assert link["target"][1] == "selected_index"
    stack = state[stack_id]
    assert stack["model_name"] == "StackModel"
    # the stack holds every view in with_views order and shows the selected step's
    kids = [k.removeprefix("IPY_MODEL_") for k in stack["state"]["children"]]
    assert len(kids) == 3
    assert "probe-view-metric" in state[kids[1]]["state"]["value"]
    assert "probe-view-model" in state[kids[2]]["state"]["value"]
    assert state[kids[0]]["model_name"] == "AnyModel"
    assert nav["selected_view"] == stack["state"]["selected_index"] == 1
    # the displayed output is the box holding the navigator above the stack
    (out,) = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    box = state[out["data"][oh.WIDGET_VIEW_MIME]["model_id"]]["state"]
    assert box["children"] == [f"IPY_MODEL_{nav_id}", f"IPY_MODEL_{stack_id}"]


def notebook_to_report_from_node(nb: nbformat.NotebookNode, tmp_path: Path) -> Path:
    src = tmp_path / "executed.ipynb"
    nbformat.write(nb, src)
    return notebook_to_report(src, tmp_path / "probe.html")


def test_cli_exports_an_ipynb_given_in_place_of_a_workspace(
    probe_nb: nbformat.NotebookNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hawknb.cli import main

    src = tmp_path / "done.ipynb"
    nbformat.write(probe_nb, src)
    out = tmp_path / "done.html"
    assert main(["report", str(src), "-o", str(out)]) == 0  # no --from-notebook needed
    assert out.stat().st_size > 1_000_000 and "Probe report" in out.read_text()
    assert capsys.readouterr().out.startswith(f"wrote {out}")


def test_hide_code_drops_inputs_not_outputs(probe_nb: nbformat.NotebookNode) -> None:
    shown = oh.notebook_to_offline_html(probe_nb)
    hidden = oh.notebook_to_offline_html(probe_nb, hide_code=True)
    assert shown.count('<span class="nc">Probe</span>') == 1
    assert '<span class="nc">Probe</span>' not in hidden
    assert "Probe report" in hidden and oh.WIDGET_VIEW_MIME in hidden


def test_missing_vendor_files_say_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(oh, "VENDOR_DIR", tmp_path)
    monkeypatch.setattr(oh, "_NODE_SOURCES", {k: tmp_path / "no" / k for k in oh._NODE_SOURCES})
    oh.offline_assets.cache_clear()
    try:
        with pytest.raises(HawknbError, match=r"missing .*Fix: run `make js`|fix: run `make js`"):
            oh.offline_assets()
    finally:
        oh.offline_assets.cache_clear()


def test_notebook_verdict_reads_the_tagged_cell() -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show_verdict(inv)")
    cell.metadata["tags"] = ["verdict"]
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": "x", "application/json": {"cause": "none"}}
        )
    ]
    other = nbformat.v4.new_code_cell("1")
    other.outputs = [nbformat.v4.new_output("display_data", data={"application/json": {"a": 1}})]
    nb.cells = [other, cell]
    assert notebook_verdict(nb) == {"cause": "none"}
    assert notebook_verdict(nbformat.v4.new_notebook()) == {}


def test_report_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HawknbError, match="is not a workspace directory"):
        write_report(tmp_path / "nope", tmp_path / "r.html")
    with pytest.raises(HawknbError, match=r"a report is HTML; Fix: pass -o NAME.html"):
        write_report(tmp_path, tmp_path / "r.pdf")
    import logging

    from hawknb.cli import main

    try:
        rc = main(["report", str(tmp_path / "nope")])
    finally:
        logging.disable(logging.NOTSET)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("hawknb: error:") and err.count("\n") == 1

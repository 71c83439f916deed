"""Injection payloads in every name, opened in a real browser: nothing may run.

A simulated workspace has its metric, model, experiment, snapshot, feature and lineage-node
names replaced by payloads (``tests/_hostile.py``: script tags, ``<img onerror>``, event-handler
attributes breaking out of quotes, ``javascript:`` links, Markdown links/images, backticks and
table pipes). Then

- the offline report (``hawknb report``) is opened in Chromium with the network blocked, and
- ``hawknb.investigate`` runs in JupyterLab with the verdict and findings displayed, every
  navigator step clicked so that every view renders its names,

and each fails on any dialog (``alert``), any console or page error, and any element that the
payloads could only have produced by being parsed as markup: an ``on*`` attribute, a
``javascript:`` URL, a script / iframe / svg holding a payload. The test also checks that the
names *are* shown (as text), so it cannot pass by showing nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from _hostile import Hostile, make_hostile  # noqa: E402

pytestmark = pytest.mark.ui

from _offline import block_network  # noqa: E402  (tests/ui is on sys.path, as for conftest)

#: markup that only a parsed payload can have put into the page (all payloads carry "-<n>")
_SCAN_JS = """
() => {
  const bad = [];
  const all = [document, ...[...document.querySelectorAll('*')].map((e) => e.shadowRoot)
                                                                 .filter(Boolean)];
  for (const root of all) {
    for (const el of root.querySelectorAll('*')) {
      for (const a of el.attributes) {
        const v = a.value || '';
        if (a.name.startsWith('on')) bad.push(`${el.tagName} ${a.name}=${v.slice(0, 80)}`);
        if (/^\\s*javascript:/i.test(v)) bad.push(`${el.tagName} ${a.name}=${v.slice(0, 80)}`);
        if (a.name === 'srcdoc') bad.push(`${el.tagName} srcdoc`);
      }
      const tag = el.tagName.toLowerCase();
      // a script of a data type (the saved widget state, JSON) is never run: names inside it
      // are data; only a script the browser would execute counts
      const type = (el.getAttribute('type') || '').trim().toLowerCase();
      const runs = tag !== 'script'
        || ['', 'module', 'text/javascript', 'application/javascript'].includes(type);
      if (runs && (tag === 'script' || tag === 'svg' || tag === 'iframe' || tag === 'img')
          && /alert\\(/.test(el.outerHTML.slice(0, 2000))) {
        bad.push(`${tag}: ${el.outerHTML.slice(0, 120)}`);
      }
    }
  }
  return bad;
}
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    from hawknb.simulate import simulate

    base = tmp_path_factory.mktemp("hostile")
    ws = base / "ws"
    simulate(
        ws,
        incident="upstream_data",
        seed=3,
        days=5,
        rows_per_hour=20,
        n_models=2,
        features_per_model=8,
        truth_path=base / "truth.json",
    )
    return make_hostile(ws)


def _watch(page: Any) -> tuple[list[str], list[str]]:
    """(dialogs, console/page errors) seen on ``page``; dialogs are dismissed."""
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e} {getattr(e, 'stack', '')}"))
    return dialogs, errors


def _hover_everything(page: Any) -> None:
    """Fire mouse and focus events on every element, for handlers a payload might have set."""
    page.evaluate(
        """() => { for (const el of document.querySelectorAll('body *')) {
             for (const t of ['mouseover', 'mouseenter', 'focus', 'click'])
               if (!el.closest('a, button, .hawknb-step, .jp-Toolbar'))
                 el.dispatchEvent(new Event(t));
           } }"""
    )


def test_offline_report_runs_no_payload(hostile: Hostile, page: Any, tmp_path: Path) -> None:
    from hawknb.report import write_report

    rep = write_report(hostile.root, tmp_path / "report.html", timeout=600)
    # the walk went through the renamed names (so they all reached the report)
    assert rep.verdict["model"] in hostile.names["model"].values()
    assert rep.verdict["upstream"][0] in hostile.names["node"].values()
    dialogs, errors = _watch(page)
    blocked = block_network(page)
    page.goto(rep.path.resolve().as_uri())
    # the dashboard has rendered its first view (the verdict) before anything is clicked
    page.wait_for_selector(".hawknb-dashboard .hawknb-navigator[data-selected]", timeout=30_000)
    page.wait_for_selector(".hawknb-dashboard .hawknb-verdict", timeout=30_000)
    for step in page.locator(".hawknb-dashboard .hawknb-navigator .hawknb-step").all():
        step.click()  # every view renders its names
        page.wait_for_timeout(500)
    _hover_everything(page)
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.evaluate(_SCAN_JS) == []
    assert errors == []
    assert blocked == []
    text = page.locator("body").text_content() or ""
    # shown as text: the model, metric and root-cause node, verbatim
    for name in (rep.verdict["model"], rep.verdict["metric"], rep.verdict["upstream"][0]):
        assert name in text


def test_investigate_in_jupyterlab_runs_no_payload(hostile: Hostile, lab: Any) -> None:
    dialogs, errors = _watch(lab.page)
    cells = [
        "import hawknb\nfrom IPython.display import Markdown, display\n"
        "from hawknb.notebooks import findings_markdown, show_verdict\n"
        f"inv = hawknb.triage({str(hostile.root)!r}, progress=False)",
        "dashboard = hawknb.investigate(inv)\ndashboard",
        "show_verdict(inv)",
        "display(Markdown(findings_markdown(inv)))",
        "inv",
    ]
    lab.run_notebook("hostile.ipynb", cells, wait_for=".hawknb-navigator", timeout=180_000)
    verdict = lab.kernel_json("inv.verdict.to_dict()")
    assert verdict["model"] in hostile.names["model"].values()
    steps = lab.page.locator(".hawknb-dashboard .hawknb-navigator .hawknb-step")
    for i in range(steps.count()):
        steps.nth(i).click()
        lab.page.wait_for_timeout(500)
    _hover_everything(lab.page)
    lab.page.wait_for_timeout(500)
    # show_verdict is a table in JupyterLab, not a JSON tree
    outputs = lab.page.locator(".jp-OutputArea-output")
    assert lab.page.locator(".jp-RenderedJSON").count() == 0
    assert outputs.locator("table").filter(has_text="confidence").count() >= 1
    assert dialogs == []
    assert lab.page.evaluate(_SCAN_JS) == []
    assert errors == []
    text = lab.page.locator(".jp-Notebook").text_content() or ""
    assert verdict["model"] in text and verdict["metric"] in text

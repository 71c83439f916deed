"""Self-contained HTML from an executed notebook: the widgets render with no network at all.

nbconvert's default export loads require.js, MathJax, the widget html-manager and anywidget's
loader from CDNs, so an exported investigation shows nothing on an air-gapped laptop (or in a
browser that blocks third-party scripts). Here every script is inlined from local files:

- require.js and ``@jupyter-widgets/html-manager``'s ``embed-amd.js``: from
  ``hawknb/static/vendor/*.js.gz`` (written by ``js/vendor.mjs`` after ``npm ci`` and committed,
  so ``pip install`` users need no Node), else from ``js/node_modules`` in a source checkout;
- anywidget's AMD loader: from the installed ``anywidget`` Python package
  (``anywidget/nbextension/index.js``), handed to require.js as a blob URL so that its
  anonymous ``define`` is loaded as the module ``anywidget``.

Each anywidget view's own JavaScript travels inside the saved widget state (its ``_esm``), so
the report needs nothing else. MathJax and mermaid are dropped rather than fetched.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .workspace.errors import HawknbError

_PKG = Path(__file__).resolve().parent
VENDOR_DIR = _PKG / "static" / "vendor"
_NODE_MODULES = _PKG.parent / "js" / "node_modules"

#: where each vendored script comes from in a source checkout (after `npm ci` in js/)
_NODE_SOURCES = {
    "require.js": _NODE_MODULES / "requirejs" / "require.js",
    "embed-amd.js": _NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js",
}

#: the HTML parser ends a script element at `</script` in any letter case
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


class OfflineAssetsMissing(HawknbError):
    """A script the offline report must inline is not installed."""


@dataclass(frozen=True)
class OfflineAssets:
    """The scripts inlined into a report, with where each came from (for error messages)."""

    require_js: str
    embed_amd_js: str
    anywidget_js: str
    sources: tuple[str, ...]


def _read_vendored(name: str) -> tuple[str, str]:
    gz = VENDOR_DIR / f"{name}.gz"
    if gz.exists():
        return gzip.decompress(gz.read_bytes()).decode("utf-8"), str(gz)
    src = _NODE_SOURCES[name]
    if src.exists():
        return src.read_text(encoding="utf-8"), str(src)
    raise OfflineAssetsMissing(
        f"{gz}: missing (needed to render widgets offline); fix: run `make js` (npm ci, then "
        "node js/vendor.mjs) or reinstall hawknb"
    )


def _read_anywidget_loader() -> tuple[str, str]:
    try:
        import anywidget
    except ImportError as exc:  # pragma: no cover - anywidget is a dependency
        raise OfflineAssetsMissing(
            "anywidget is not installed; fix: pip install anywidget"
        ) from exc
    path = Path(anywidget.__file__).resolve().parent / "nbextension" / "index.js"
    if not path.exists():
        raise OfflineAssetsMissing(
            f"{path}: missing (anywidget's notebook loader); fix: reinstall anywidget>=0.9"
        )
    return path.read_text(encoding="utf-8"), str(path)


@lru_cache(maxsize=1)
def offline_assets() -> OfflineAssets:
    """Read (once per process) the three scripts a widget report inlines."""
    require_js, s1 = _read_vendored("require.js")
    embed_js, s2 = _read_vendored("embed-amd.js")
    anywidget_js, s3 = _read_anywidget_loader()
    return OfflineAssets(require_js, embed_js, anywidget_js, (s1, s2, s3))


def _script_safe(js: str) -> str:
    """Make JavaScript source safe inside an inline <script> element.

    The HTML parser ends a script at the first ``</script`` whatever the JavaScript means, and
    ``<!--`` switches it into an escaped state; ``<\\/`` and ``<\\!`` mean the same characters in
    every JavaScript string, regex or comment where they can occur.
    """
    js = _SCRIPT_END.sub(lambda m: "<\\/" + m.group(1), js)
    return js.replace("<!--", "<\\!--")


def _anywidget_bootstrap(anywidget_js: str) -> str:
    # requirejs does not append ".js" to blob: URLs, so the anonymous define() in anywidget's
    # loader resolves as the module named "anywidget" that the saved widget state asks for
    src = json.dumps(anywidget_js).replace("</", "<\\/").replace("<!--", "<\\u0021--")
    return (
        "(function(){var src=" + src + ";"
        "var url=URL.createObjectURL(new Blob([src],{type:'text/javascript'}));"
        "require.config({paths:{anywidget:url}});})();"
    )


_TEMPLATE = r"""
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}
<script>{{ resources.hawknb.require_js }}</script>
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}
{%- if "widgets" in nb.metadata -%}
<script>{{ resources.hawknb.anywidget_boot }}</script>
<script>{{ resources.hawknb.embed_amd_js }}</script>
{%- endif -%}
{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">{{ resources.hawknb.extra_css }}</style>
{%- endblock extra_css -%}
"""

_EXTRA_CSS = """
.hawknb-report-banner { font-family: var(--jp-ui-font-family, sans-serif); padding: 8px 16px;
  border-bottom: 1px solid #ddd; color: #555; font-size: 12px; }
"""


def has_widget_state(nb: Any) -> bool:
    """Whether an executed notebook carries saved widget state (so its views render live)."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE_MIME, {})
    return bool(state.get("state"))


def notebook_to_offline_html(nb: Any, *, title: str | None = None, hide_code: bool = False) -> str:
    """Render an executed notebook (nbformat node) to one self-contained HTML string.

    Nothing in the result is fetched from the network: scripts and CSS are inlined and MathJax
    / mermaid are left out. ``hide_code`` drops code inputs (for a report read by people who
    did not write it); outputs, markdown and widget views stay.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.from_dict(nb)
    assets = offline_assets()
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"hawknb_offline.html.j2": _TEMPLATE})],
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
    )
    exporter.template_file = "hawknb_offline.html.j2"
    resources = {
        "hawknb": {
            "require_js": _script_safe(assets.require_js),
            "embed_amd_js": _script_safe(assets.embed_amd_js),
            "anywidget_boot": _anywidget_bootstrap(assets.anywidget_js),
            "extra_css": _EXTRA_CSS,
        },
        "metadata": {"name": title or nb.get("metadata", {}).get("title", "hawknb report")},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body

"""`hawknb report`: one self-contained HTML file of a triage, readable with no network.

The report is the triage notebook template, executed on the workspace with its widget state
saved, then exported with every script inlined (see :mod:`hawknb._offline_html`). Using the
notebook rather than a separate HTML writer keeps one presentation of an investigation: what the
on-call engineer saw in JupyterLab is what the incident review reads, views included.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ._io import check_target, is_special, write_file
from ._offline_html import has_widget_state, notebook_to_offline_html
from .workspace.errors import HawknbError

VERDICT_TAG = "verdict"


@dataclass(frozen=True)
class Report:
    """What ``write_report`` wrote."""

    path: Path
    size_bytes: int
    seconds: float
    widget_state_saved: bool
    #: the triage verdict (the JSON of the notebook's verdict cell), empty if it did not run
    verdict: dict[str, Any] = field(default_factory=dict)
    #: the executed notebook, when kept
    notebook: Path | None = None


def notebook_verdict(nb: Any) -> dict[str, Any]:
    """The verdict JSON of an executed template: the ``VERDICT_MIME`` output of the cell tagged
    ``verdict`` (``application/json`` in notebooks written before it; empty dict when absent)."""
    from .notebooks import VERDICT_MIME

    for cell in nb.get("cells", []):
        if VERDICT_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime in (VERDICT_MIME, "application/json"):
                if mime in data:
                    value = data[mime]
                    return json.loads(value) if isinstance(value, str) else dict(value)
    return {}


def _banner(nb: Any, workspace: str, verdict: dict[str, Any]) -> None:
    """Prepend a markdown cell saying what the report is, so a forwarded file explains itself."""
    import nbformat

    from .triage.markdown import code

    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cause = code(verdict.get("cause") or "unknown")
    text = (
        f"*hawknb report, written {when} from workspace {code(workspace)}. Verdict: {cause}"
        + (f" (model {code(verdict['model'])})" if verdict.get("model") else "")
        + ". Views are live (saved widget state); no network is needed to open this file.*"
    )
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(text))


def write_report(
    workspace: str | os.PathLike[str],
    output: str | os.PathLike[str] = "report.html",
    *,
    metric: str | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    keep_notebook: str | os.PathLike[str] | None = None,
    hide_code: bool = True,
    timeout: float | None = 900,
    force: bool = False,
    progress: bool = False,
) -> Report:
    """Execute the triage template on ``workspace`` and write an offline HTML report.

    ``hide_code`` drops code cells' inputs (a report is read by people who did not write it;
    the notebook itself keeps them). ``keep_notebook`` also writes the executed notebook there.
    Raises :class:`~hawknb.notebooks.ParameterError` for a bad metric/window, before any
    analysis runs, and :class:`~hawknb.notebooks.NotebookExecutionError` if a cell fails.
    Both outputs are written atomically; an existing file hawknb did not write is replaced only
    with ``force``, and that is checked before the notebook runs (a refusal costs nothing).
    """
    import nbformat

    from .notebooks import instantiate

    ws = Path(workspace)
    if not ws.is_dir():
        raise HawknbError(f"{ws}: is not a workspace directory; Fix: pass an existing directory")
    out = _html_target(output, force)
    if keep_notebook is not None:
        check_target(keep_notebook, force=force)
    params: dict[str, Any] = {}
    if metric is not None:
        params["metric"] = metric
    if start is not None:
        params["start"] = start.isoformat() if isinstance(start, datetime) else str(start)
    if end is not None:
        params["end"] = end.isoformat() if isinstance(end, datetime) else str(end)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hawknb-report-") as tmp:
        nb_path = Path(tmp) / "triage.ipynb"
        instantiate(
            "triage",
            nb_path,
            params,
            workspace=str(ws.resolve()),
            execute=True,
            timeout=timeout,
            progress=progress,
        )
        raw = nb_path.read_bytes()
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    verdict = notebook_verdict(nb)
    saved = has_widget_state(nb)
    _banner(nb, str(ws), verdict)
    nb.metadata["title"] = f"hawknb report: {ws.resolve().name}"
    html = notebook_to_offline_html(nb, hide_code=hide_code).encode("utf-8")
    write_file(out, html, force=force)
    if keep_notebook is not None:
        write_file(keep_notebook, raw, force=force)
    return Report(
        path=out,
        size_bytes=len(html),
        seconds=time.perf_counter() - t0,
        widget_state_saved=saved,
        verdict=verdict,
        notebook=Path(keep_notebook) if keep_notebook else None,
    )


def _html_target(output: str | os.PathLike[str], force: bool) -> Path:
    """``output`` checked as a report target: an .html name (a device such as /dev/stdout is
    taken as is) that may be written (see :func:`hawknb._io.check_target`)."""
    out = check_target(output, force=force)
    if out.suffix.lower() not in (".html", ".htm") and not is_special(out):
        raise HawknbError(f"{out}: a report is HTML; Fix: pass -o NAME.html")
    return out


def notebook_to_report(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    hide_code: bool = False,
    force: bool = False,
) -> Path:
    """Export an already executed notebook (e.g. from ``hawknb new --execute``) to offline HTML,
    written atomically; an existing file hawknb did not write is replaced only with ``force``."""
    import nbformat

    out = _html_target(output, force)
    try:
        nb = nbformat.read(Path(notebook), as_version=4)
    except (OSError, ValueError) as exc:
        raise HawknbError(f"{notebook}: could not be read as a notebook ({exc})") from exc
    return write_file(out, notebook_to_offline_html(nb, hide_code=hide_code), force=force)

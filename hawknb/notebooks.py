"""Templated investigation notebooks: discovery, parameter checks, instantiation, execution.

An on-call engineer should not start from a blank notebook at 3 a.m.: each workflow of the
decision tree (top-line triage, feature isolation, snapshot diagnosis, lineage root cause,
training data, snapshot validation) ships as a notebook with a papermill ``parameters`` cell.
``hawknb new`` fills the parameters in and, optionally, runs it with the widget state saved into
the notebook, so the views render again when the file is reopened or exported to HTML.

The templates live in ``hawknb/templates/`` (shipped in the wheel); ``notebooks/`` in the
repository holds the same files for people browsing the source or opening Binder, and a test
checks that the two are identical (:func:`sync_templates` copies notebooks/ over).
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import replacing_file
from .workspace.errors import HawknbError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: the repository's copy, present in a source checkout only
REPO_NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: the papermill parameters every template declares, in this order
PARAMETERS: tuple[str, ...] = ("workspace", "metric", "start", "end", "model", "snapshot")


class ParameterError(HawknbError, ValueError):
    """A notebook parameter does not fit the workspace (unknown metric, model, window ...).

    Raised by the first code cell of every template so that a wrong ``-p`` fails at once with a
    one-line message saying what to pass instead, not ten cells later with a KeyError.
    """


class NotebookExecutionError(HawknbError):
    """An instantiated notebook failed while executing; the message names the cell and error."""


@dataclass(frozen=True)
class Template:
    """One investigation notebook template."""

    name: str
    path: Path
    title: str
    description: str
    #: parameter name -> default value, as written in the template's parameters cell
    parameters: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _literal_assignments(src: str) -> dict[str, Any]:
    """``name = literal`` lines of a parameters cell, read without executing anything."""
    out: dict[str, Any] = {}
    for node in ast.parse(src).body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            try:
                out[target.id] = ast.literal_eval(node.value)
            except ValueError:
                out[target.id] = ast.unparse(node.value)
    return out


def _template_from(path: Path) -> Template:
    nb = _read_json(path)
    meta = nb.get("metadata", {}).get("hawknb", {})
    defaults: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
            "tags", []
        ):
            defaults = _literal_assignments("".join(cell.get("source", "")))
            break
    return Template(
        name=path.stem,
        path=path,
        title=meta.get("title", path.stem),
        description=meta.get("description", ""),
        parameters=defaults,
    )


def list_templates() -> list[Template]:
    """Every shipped template, sorted with ``triage`` (the demo, the whole tree) first."""
    paths = sorted(TEMPLATE_DIR.glob("*.ipynb"))
    found = [_template_from(p) for p in paths]
    return sorted(found, key=lambda t: (t.name != "triage", t.name))


def get_template(name: str) -> Template:
    """A template by name (``triage`` or ``triage.ipynb``); a clear error lists the others."""
    stem = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
    names = [t.name for t in list_templates()]
    if stem not in names:
        close = difflib.get_close_matches(stem, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise HawknbError(
            f"unknown template '{name}'{hint}; expected one of {names}. "
            "Fix: run `hawknb new --list`"
        )
    return _template_from(TEMPLATE_DIR / f"{stem}.ipynb")


def sync_templates(src: Path = REPO_NOTEBOOKS_DIR, dst: Path = TEMPLATE_DIR) -> list[Path]:
    """Copy the repository's notebooks/*.ipynb into the package (the one source of truth is
    notebooks/; the package copy is what ``pip install`` users get). Returns the copied files."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for nb in sorted(src.glob("*.ipynb")):
        target = dst / nb.name
        shutil.copyfile(nb, target)
        out.append(target)
    return out


# -- parameter validation (run by each template's first code cell) --------------------------------
@dataclass(frozen=True)
class Parameters:
    """A template's parameters, checked against the workspace and normalized.

    ``start``/``end`` are UTC ``datetime``s (or None); ``data_start``/``data_end`` is the span of
    the metrics table, so a notebook can default its window to the data it has.
    """

    workspace: Any
    metric: str | None
    start: datetime | None
    end: datetime | None
    model: str | None
    snapshot: str | None
    data_start: datetime
    data_end: datetime
    metrics: tuple[str, ...]
    models: tuple[str, ...]


def _one_of(what: str, value: str, choices: list[str], param: str, of: str = "") -> ParameterError:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    shown = choices[:12] + (["..."] if len(choices) > 12 else [])
    return ParameterError(
        f"{what} '{value}'{of} is not in the workspace{hint}; it has {shown}. "
        f"Fix: pass one of them as -p {param} NAME, or leave {param} as None to let triage choose"
    )


def _parse_ts(name: str, value: Any) -> datetime | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            f"parameter {name}={value!r} is not a timestamp; "
            f"Fix: pass an ISO time such as -p {name} 2024-01-05T12:00Z"
        ) from exc
    if ts is pd.NaT:
        raise ParameterError(f"parameter {name}={value!r} is not a timestamp (NaT)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def check_parameters(
    workspace: Any,
    metric: str | None = None,
    start: Any = None,
    end: Any = None,
    model: str | None = None,
    snapshot: str | None = None,
) -> Parameters:
    """Check a template's parameters against the workspace before any analysis runs.

    Fails with a one-line :class:`ParameterError` naming the bad value and the fix for: a
    workspace that cannot be opened, an unknown metric, an unparsable or empty window, a window
    outside the metrics' time span, a model not in the serving log, a snapshot the model never
    served. ``workspace`` is a path or an open :class:`~hawknb.Workspace`.
    """
    import polars as pl

    from .workspace import Workspace
    from .workspace import contract as c

    _short_hawknb_errors()
    if workspace is None or (isinstance(workspace, str) and not workspace.strip()):
        raise ParameterError(
            "parameter workspace is not set; Fix: pass -p workspace PATH (a workspace directory)"
        )
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(os.fspath(workspace))

    metrics = ws.metric_names()
    if metric is not None and metric not in metrics:
        raise _one_of("metric", str(metric), metrics, "metric")

    span = ws.metrics.select(pl.col(c.TS).min().alias("lo"), pl.col(c.TS).max().alias("hi"))
    row = span.collect().row(0)
    if row[0] is None:
        raise ParameterError(f"{ws.where('metrics')} has no rows; Fix: export some metric values")
    lo, hi = (t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t for t in row)

    t0, t1 = _check_window(start, end, lo, hi)

    models = ws.models()
    if model is not None and model not in models:
        raise _one_of("model", str(model), models, "model")
    if snapshot is not None:
        model = _check_snapshot(ws, model, snapshot)
    return Parameters(
        workspace=ws,
        metric=metric,
        start=t0,
        end=t1,
        model=model,
        snapshot=snapshot,
        data_start=lo,
        data_end=hi,
        metrics=tuple(metrics),
        models=tuple(models),
    )


def _check_window(
    start: Any, end: Any, lo: datetime, hi: datetime
) -> tuple[datetime | None, datetime | None]:
    """Parse the window and check it is ordered and overlaps the metrics' span [lo, hi]."""
    t0, t1 = _parse_ts("start", start), _parse_ts("end", end)
    if t0 is not None and t1 is not None and t0 >= t1:
        raise ParameterError(
            f"window start={t0.isoformat()} is not before end={t1.isoformat()}; "
            "Fix: pass start earlier than end"
        )
    data = f"the metrics cover {lo.isoformat()} .. {hi.isoformat()}"
    if t0 is not None and t0 > hi:
        raise ParameterError(
            f"window start={t0.isoformat()} is after the data ends ({data}); "
            "Fix: pass a start inside that span or leave start as None"
        )
    if t1 is not None and t1 < lo:
        raise ParameterError(
            f"window end={t1.isoformat()} is before the data begins ({data}); "
            "Fix: pass an end inside that span or leave end as None"
        )
    return t0, t1


def _check_snapshot(ws: Any, model: str | None, snapshot: str) -> str | None:
    """Check the snapshot was served (by `model` when given) or has a program; returns the
    model, filled in when exactly one model served the snapshot."""
    import polars as pl

    from .workspace import contract as c

    serving = ws.serving
    if model is not None:
        serving = serving.filter(pl.col(c.MODEL) == model)
    owners = (
        serving.filter(pl.col(c.SNAPSHOT) == snapshot)
        .select(pl.col(c.MODEL).unique())
        .collect()[c.MODEL]
        .to_list()
    )
    known = {s for m, s in ws.programs(model)}
    if not owners and snapshot not in known:
        snaps = sorted(
            serving.select(pl.col(c.SNAPSHOT).unique()).collect()[c.SNAPSHOT].drop_nulls()
        )
        of = f" of model '{model}'" if model else ""
        raise _one_of("snapshot", str(snapshot), snaps, "snapshot", of)
    if model is None and len(owners) == 1:
        model = owners[0]
    return model


# -- helpers the templates call -------------------------------------------------------------------
def _short_hawknb_errors() -> None:
    """In IPython, show a HawknbError as its one-line message instead of a traceback.

    These errors are the user's to fix (a wrong parameter, a bad file) and their message says
    how; a 40-line traceback through hawknb's internals only hides that line. Other exceptions
    keep their full traceback.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_hawknb_short_errors", False):
        return

    def handler(_shell: Any, etype: type, value: BaseException, _tb: Any, tb_offset: Any = None):
        stb = [f"\x1b[31m{etype.__name__}\x1b[0m: {value}"]
        # IPython ignores what a custom handler returns; publishing it is the handler's job (the
        # kernel's _showtraceback sends the `error` message that notebooks and papermill read)
        _shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((HawknbError,), handler)
    shell._hawknb_short_errors = True


def findings_markdown(investigation: Any, steps: tuple[str, ...] | list[str] | None = None) -> str:
    """Markdown of the findings of ``steps`` (all when None): what was checked, the evidence,
    the decision. Steps the walk did not reach are listed as such, so a reader knows why a
    section is empty. Rendered by :mod:`hawknb.triage.markdown` (names escaped)."""
    from .triage.markdown import text

    wanted = list(steps) if steps is not None else [f.step for f in investigation.findings]
    lines: list[str] = []
    for step in wanted:
        f = investigation.finding(step)
        if f is None:
            lines.append(f"**{text(step)}**: not reached by this walk (an earlier step decided).\n")
            continue
        lines += [f.to_markdown(level=4), ""]
    return "\n".join(lines)


#: the verdict's JSON in a notebook output. Not ``application/json``: JupyterLab prefers that
#: type over HTML and Markdown and would show the verdict as a JSON tree instead of the table.
VERDICT_MIME = "application/vnd.hawknb.verdict+json"


def show_verdict(investigation: Any) -> None:
    """Display the verdict as a table for people (Markdown and HTML, names escaped) and as
    JSON for machines (``hawknb report`` and papermill tests read :data:`VERDICT_MIME`)."""
    from IPython.display import display

    from .triage import markdown as md

    v = investigation.verdict
    bundle = {
        "text/html": md.verdict_html(v),
        "text/markdown": md.verdict(v),
        "text/plain": investigation.summary_text(),
        VERDICT_MIME: v.to_dict(),
    }
    display(bundle, raw=True)


def views(investigation: Any) -> Any:
    """The linked views of an investigation: ``hawknb.investigate``'s dashboard."""
    from .widgets.dashboard import investigate

    return investigate(investigation)


def show_views(dashboard: Any, steps: tuple[str, ...] | list[str] | None = None) -> None:
    """Display the views of ``steps`` (all when None) one below the other, each under its
    step's title and decision.

    The dashboard shows one step's view at a time (its navigator switches them in the browser,
    saved notebooks and ``hawknb report`` included); a report that reads top to bottom, with each
    view next to the finding it illustrates, is easier to skim and to print. A view shared by two
    steps (the model graph) is shown once. Returns None, so that a template cell ending with
    this call shows no stray value.
    """
    from IPython.display import Markdown, display

    from .triage.markdown import listing, text

    nav = getattr(dashboard, "navigator", None)
    inv = getattr(dashboard, "investigation", None)
    if nav is None or inv is None:
        display(dashboard)
        return
    shown: set[int] = set()
    for f in inv.findings:
        if steps is not None and f.step not in steps:
            continue
        view = nav.views.get(f.step)
        if view is None or id(view) in shown:
            continue
        shown.add(id(view))
        display(Markdown(f"#### {text(f.title)}\n{text(f.decision)}"))
        display(view)
    if not shown:
        display(Markdown(f"*No view for {listing(steps or [])}: the walk did not reach them.*"))


# -- instantiation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instantiated:
    """Where ``hawknb new`` wrote a notebook, with what, and whether it ran."""

    path: Path
    template: str
    parameters: dict[str, Any]
    executed: bool
    seconds: float
    widget_state_saved: bool


def _clean_parameters(template: Template, parameters: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(parameters) - set(template.parameters) - set(PARAMETERS))
    if unknown:
        raise HawknbError(
            f"template '{template.name}' has no parameter(s) {unknown}; it takes "
            f"{list(template.parameters) or list(PARAMETERS)}. Fix: drop or rename them"
        )
    out: dict[str, Any] = {}
    for k, v in parameters.items():
        out[k] = None if isinstance(v, str) and v in ("None", "null") else v
    return out


def _notebook_parameters(
    tpl: Template, parameters: Mapping[str, Any] | None, workspace: str | os.PathLike[str] | None
) -> dict[str, Any]:
    """The template's parameters with the workspace set (it is required: a notebook without
    one fails in its first cell, far from the cause)."""
    params = _clean_parameters(tpl, dict(parameters or {}))
    if workspace is not None:
        params["workspace"] = os.fspath(workspace)
    if not params.get("workspace"):
        raise HawknbError(
            f"template '{tpl.name}' needs a workspace; Fix: pass --workspace DIR "
            "(or parameters={'workspace': DIR})"
        )
    params["workspace"] = os.fspath(params["workspace"])
    return params


def _run_papermill(
    tpl: Template,
    tmp: Path,
    out: Path,
    params: dict[str, Any],
    execute: bool,
    kernel_name: str | None,
    timeout: float | None,
    progress: bool,
) -> NotebookExecutionError | None:
    """Write (and with ``execute`` run) the notebook into ``tmp``; a failed cell is returned,
    not raised, so that the partly run notebook is still moved into place for inspection."""
    import tempfile

    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    with tempfile.TemporaryFile() as kernel_log:
        try:
            pm.execute_notebook(
                str(tpl.path),
                str(tmp),
                parameters=params,
                prepare_only=not execute,
                kernel_name=kernel_name,
                kernel_manager_class=_kernel_manager_logging_to(kernel_log),
                progress_bar={"file": sys.stderr, "desc": out.name} if progress else False,
                cwd=str(out.resolve().parent),
                store_widget_state=True,
                execution_timeout=timeout,
            )
        except pm.PapermillExecutionError as exc:
            evalue = str(exc.evalue).splitlines()[0] if exc.evalue else ""
            failed = NotebookExecutionError(
                f"{out}: cell {exc.exec_count} failed: {exc.ename}: {evalue}"
            )
            failed.__cause__ = exc
            return failed
        except DeadKernelError as exc:
            failed = NotebookExecutionError(
                f"{out}: the kernel died: {_last_line(kernel_log) or exc}"
            )
            failed.__cause__ = exc
            return failed
    return None


def _kernel_manager_logging_to(log: Any) -> type:
    """A kernel manager whose kernel writes its own stderr to ``log``, not to ours.

    A kernel's process stderr holds no cell output (that travels over the protocol), only the
    kernel's own noise: ipykernel prints a traceback when its sockets close under it during
    shutdown, a race seen on a loaded machine, which would read as hawknb failing after a
    notebook that ran fine. The log is kept for the one case where it says something: a kernel
    that died.
    """
    from jupyter_client import AsyncKernelManager

    class _KernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stderr", log)
            await super().start_kernel(**kw)

    return _KernelManager


def _last_line(log: Any) -> str:
    """The last non-empty line of a binary log file (what a dying kernel said last)."""
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def instantiate(
    template: str,
    output: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    workspace: str | os.PathLike[str] | None = None,
    execute: bool = False,
    kernel_name: str | None = None,
    timeout: float | None = 900,
    force: bool = False,
    record: bool = False,
    progress: bool = False,
) -> Instantiated:
    """Write ``template`` to ``output`` with its papermill parameters set; optionally run it.

    ``workspace`` (or ``parameters["workspace"]``) is written as given: a relative path is
    relative to the notebook's own directory, where the notebook executes, so a notebook and
    its workspace can move together (the CLI passes a path relative to the output). Executed
    notebooks keep their widget state in the metadata
    (``application/vnd.jupyter.widget-state+json``), so the views render when reopened and in
    ``hawknb report``'s offline HTML. A cell that fails raises :class:`NotebookExecutionError`
    with the cell's one-line error; the partly run notebook is still written for inspection.
    The notebook is written atomically, and an existing ``output`` that hawknb did not write
    is only replaced with ``force`` (see :mod:`hawknb._io`); ``record`` marks it as hawknb's so
    that a rerun may replace it while it is unchanged (``hawknb demo``).
    ``progress`` shows a bar over the cells on stderr (a run takes tens of seconds).
    """
    import time

    tpl = get_template(template)
    params = _notebook_parameters(tpl, parameters, workspace)
    out = Path(output) if output is not None else Path(f"{tpl.name}.ipynb")
    if out.resolve() == tpl.path.resolve():
        raise HawknbError(f"{out}: refusing to overwrite the template; Fix: pass -o another path")
    t0 = time.perf_counter()
    with replacing_file(out, force=force, record=record) as tmp:
        failed = _run_papermill(tpl, tmp, out, params, execute, kernel_name, timeout, progress)
    if failed is not None:
        raise failed
    seconds = time.perf_counter() - t0
    saved = False
    if execute:
        from ._offline_html import has_widget_state

        saved = has_widget_state(_read_json(out))
    return Instantiated(
        path=out,
        template=tpl.name,
        parameters=params,
        executed=execute,
        seconds=seconds,
        widget_state_saved=saved,
    )

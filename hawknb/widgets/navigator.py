"""InvestigationNavigator: where an investigation is in the decision tree, and each step's view.

A triage is a path through a decision tree (metric -> model -> snapshot/not -> features ->
lineage -> ...). The on-call engineer needs to see which steps ran, which were skipped and why,
and to jump to the evidence of any step: breadcrumbs show the path to the selected step, the
tree shows every step with its status and confidence, and clicking a step shows its view (any
ipywidget) below -- the navigator composes with ipywidgets containers instead of owning views.

The views sit in an ``ipywidgets.Stack`` (which shows only its selected child) whose
``selected_index`` follows the navigator's ``selected_view`` through a front-end link
(``ipywidgets.jsdlink``). The link is a widget of its own, saved with the widget state, so a click
switches the view in the browser alone: in a saved notebook or the offline ``hawknb report`` HTML
(no kernel) as well as live, where the selection still reaches Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets
import traitlets

from ._base import HawknbWidget, static_esm
from ._serialization import jsonable, records

STATUSES = ("done", "skipped", "warning", "failed", "running", "pending")


def _normalize_steps(steps: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, s in enumerate(records(list(steps), "InvestigationNavigator(steps)")):
        sid = s.get("id")
        if sid is None or str(sid) == "":
            raise ValueError(f"InvestigationNavigator(steps)[{i}]: missing 'id'")
        sid = str(sid)
        if sid in seen:
            raise ValueError(f"InvestigationNavigator(steps)[{i}]: duplicate id {sid!r}")
        seen.add(sid)
        status = str(s.get("status") or "done")
        if status not in STATUSES:
            raise ValueError(
                f"InvestigationNavigator(steps)[{i}] ({sid}): status {status!r} is not one of "
                f"{STATUSES}"
            )
        conf = s.get("confidence")
        try:
            conf = None if conf is None else float(conf)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"InvestigationNavigator(steps)[{i}] ({sid}): confidence {conf!r} is not a number"
            ) from exc
        parent = s.get("parent")
        out.append(
            {
                "id": sid,
                "title": str(s.get("title") or sid),
                "status": status,
                "decision": str(s.get("decision") or ""),
                "confidence": jsonable(conf),
                "parent": None if parent is None or parent == "" else str(parent),
            }
        )
    ids = {s["id"] for s in out}
    for s in out:
        if s["parent"] is not None and s["parent"] not in ids:
            raise ValueError(
                f"InvestigationNavigator(steps): step {s['id']!r} has parent {s['parent']!r}, "
                "which is not a step. Fix: use the id of an earlier step or None for a root."
            )
    # a cycle would make the tree and the breadcrumbs loop forever
    parent_of = {s["id"]: s["parent"] for s in out}
    for sid in parent_of:
        seen_path: set[str] = set()
        cur: str | None = sid
        while cur is not None:
            if cur in seen_path:
                raise ValueError(f"InvestigationNavigator(steps): parent cycle through {cur!r}")
            seen_path.add(cur)
            cur = parent_of[cur]
    return out


class InvestigationNavigator(HawknbWidget):
    """Breadcrumbs + tree of investigation steps; click a step to see its view.

    ``steps``: dicts/objects with ``id``, ``title``, ``status`` (done, skipped, warning, failed,
    running, pending), ``decision``, ``confidence`` (0-1), ``parent`` (id or None).
    ``views``: step id -> ipywidget shown under the navigator when that step is selected.
    Trait ``selected_step`` is the id of the clicked step; ``selected_view`` is its index in
    ``with_views`` (None when the step has no view), the index the view stack shows. Display
    ``navigator.box`` (or the navigator itself, which displays its box when it has views).
    """

    _esm = static_esm("navigator")

    steps = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected_step = traitlets.Unicode("").tag(sync=True)
    #: ids that have a view (the tree marks them), in the order of the view stack's children
    with_views = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: index of the selected step's view in ``with_views`` (None: no view); the browser sets it
    #: with ``selected_step`` on a click, and a front-end link copies it to the view stack
    selected_view = traitlets.Int(None, allow_none=True).tag(sync=True)

    def __init__(
        self,
        steps: Iterable[Any],
        *,
        views: Mapping[str, ipywidgets.Widget] | None = None,
        selected: str | None = None,
        title: str = "",
    ) -> None:
        norm = _normalize_steps(steps)
        super().__init__(title=title)
        self.steps = norm
        self.views: dict[str, ipywidgets.Widget] = {}
        self._stack = ipywidgets.Stack(layout=ipywidgets.Layout(width="100%"))
        self._stack.add_class("hawknb-view-stack")
        # front-end only: the stack follows a click without a kernel round trip (or a kernel)
        self._link = ipywidgets.jsdlink((self, "selected_view"), (self._stack, "selected_index"))
        self._box = ipywidgets.VBox([self, self._stack])
        self.observe(self._show_view, names="selected_step")
        for sid, view in dict(views or {}).items():
            self.set_view(sid, view)
        if not norm:
            self.empty_reason = "the investigation has no steps yet"
        if selected is not None:
            self.select(selected)

    @property
    def box(self) -> ipywidgets.VBox:
        """The navigator above the selected step's view (what to display)."""
        return self._box

    @property
    def stack(self) -> ipywidgets.Stack:
        """The views, one child per id of ``with_views``; it shows the selected step's view."""
        return self._stack

    @property
    def shown_view(self) -> ipywidgets.Widget | None:
        """The view shown under the navigator (None when the selected step has none)."""
        i = self._stack.selected_index
        return None if i is None else self._stack.children[i]

    def set_view(self, step_id: str, view: ipywidgets.Widget) -> None:
        """Attach (or replace) the view shown when ``step_id`` is selected."""
        if step_id not in {s["id"] for s in self.steps}:
            raise ValueError(f"InvestigationNavigator.set_view: no step {step_id!r}")
        if not isinstance(view, ipywidgets.Widget):
            raise ValueError(
                f"InvestigationNavigator.set_view({step_id!r}): expected an ipywidget, got "
                f"{type(view).__name__}. Fix: wrap it, e.g. ipywidgets.HTML or an Output."
            )
        self.views[step_id] = view
        self.with_views = sorted(self.views)
        with self._stack.hold_sync():
            self._stack.children = tuple(self.views[sid] for sid in self.with_views)
            self._show_view()

    def select(self, step_id: str | None) -> None:
        """Select a step from Python ("" or None clears)."""
        if step_id and step_id not in {s["id"] for s in self.steps}:
            raise ValueError(f"InvestigationNavigator.select: no step {step_id!r}")
        self.selected_step = step_id or ""

    def path(self, step_id: str | None = None) -> list[str]:
        """Ids from the root to ``step_id`` (default: the selected step) -- the breadcrumbs."""
        sid = self.selected_step if step_id is None else step_id
        parent_of = {s["id"]: s["parent"] for s in self.steps}
        out: list[str] = []
        while sid:
            out.append(sid)
            sid = parent_of.get(sid)
        return out[::-1]

    def _show_view(self, _change: Any = None) -> None:
        # the browser already did this for a click; set here for Python's own selections, for
        # a replaced view (set_view) and for the widget state a saved notebook keeps
        sel = self.selected_step
        index = self.with_views.index(sel) if sel in self.with_views else None
        self.selected_view = index
        self._stack.selected_index = index

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # with views, the useful thing to display is the navigator *and* the view area
        if self.views:
            return self._box._repr_mimebundle_(**kwargs)
        return super()._repr_mimebundle_(**kwargs)

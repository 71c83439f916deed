"""The base every hawknb widget builds on: bundle loading, the empty state, request/reply.

Stable API (other widgets build on it; keep signatures):

- ``static_esm(view) -> Path | str``: the built bundle ``hawknb/static/<view>.js`` for a class's
  ``_esm``; when the bundle is missing, a tiny ESM that renders a "run npm run build" message
  (so a missing build is visible in the notebook, not only in the console).
- ``class HawknbWidget(anywidget.AnyWidget)``: subclass it and set ``_esm = static_esm("x")``.
  Synced traits every view honours:

  * ``title: Unicode`` -- shown as the view's heading when non-empty.
  * ``empty_reason: Unicode`` -- non-empty means "nothing to show, because <empty_reason>"; the
    JS side renders that state (``renderEmpty`` in ``js/src/_shared/empty.js``) instead of a
    chart. Set it from Python where the data is known to be empty/all-NaN.

  Request/reply over custom messages (how the browser asks for more data, e.g. the detail of a
  zoomed range): JS calls ``request(model, kind, payload, buffers)`` from
  ``js/src/_shared/comm.js``, which sends ``{"type": "request", "id", "kind", "payload"}``. The
  widget calls its method ``_request_<kind>(payload: dict, buffers: list[bytes])`` which returns
  ``(reply_payload: dict, reply_buffers: list[bytes])``; the base replies with ``{"type":
  "reply", "id", "kind", "ok": true, "payload"}`` + buffers, or ``{"ok": false, "error": msg}``
  when the handler raised. ``bytes_replied`` counts the bytes of reply buffers (benchmarks).
- ``HawknbWidget.state_bytes() -> int``: bytes of the synced ``Bytes`` traits plus the JSON of
  the other synced traits -- what the initial render costs on the wire.

Why a base: every view needs the same three things (bundle, empty state, paging protocol) and
tests of one view's protocol then cover all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anywidget
import traitlets

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_MISSING_BUNDLE = """
export default { render({ el }) {
  el.textContent = "hawknb: the JavaScript bundle %s.js is missing. Fix: cd js && npm run build";
} };
"""


def static_esm(view: str) -> Path | str:
    """The built bundle of ``view`` for ``_esm``, or an ESM that says the bundle is missing."""
    path = STATIC_DIR / f"{view}.js"
    if path.is_file():
        return path
    return _MISSING_BUNDLE % view


class HawknbWidget(anywidget.AnyWidget):
    """Base class of the hawknb views (see the module docstring for the protocol)."""

    title = traitlets.Unicode("").tag(sync=True)
    empty_reason = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bytes_replied = 0
        self.requests_served = 0
        self.on_msg(self._dispatch_request)

    # -- request/reply --------------------------------------------------------------------------
    def _dispatch_request(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or content.get("type") != "request":
            return
        reply = self.handle_request(content, [bytes(b) for b in buffers or []])
        payload, out_buffers = reply
        self.bytes_replied += sum(len(b) for b in out_buffers)
        self.requests_served += 1
        self.send(payload, buffers=out_buffers or None)

    def handle_request(
        self, content: dict[str, Any], buffers: list[bytes]
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Route one request to ``_request_<kind>``; never raises (errors go back to JS).

        Public so tests (and non-browser front-ends) can drive the protocol without a comm.
        """
        kind = str(content.get("kind", ""))
        rid = content.get("id")
        base = {"type": "reply", "id": rid, "kind": kind}
        handler = getattr(self, f"_request_{kind}", None) if kind.isidentifier() else None
        if handler is None:
            return {**base, "ok": False, "error": f"unknown request kind {kind!r}"}, []
        try:
            payload, out = handler(content.get("payload") or {}, buffers)
        except Exception as exc:  # the browser shows it; the kernel must keep serving
            return {**base, "ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
        return {**base, "ok": True, "payload": payload}, list(out)

    # -- measurement ----------------------------------------------------------------------------
    def state_bytes(self) -> int:
        """Approximate bytes of the initial widget state on the wire (buffers + JSON)."""
        total = 0
        for name in self.keys:
            if name.startswith("_") and name not in self._binary_traits():
                continue
            value = getattr(self, name)
            to_json = self.traits()[name].metadata.get("to_json")
            if to_json is not None:  # a serialized trait (a frame as Arrow IPC): its wire form
                value = to_json(value, self)
            if isinstance(value, memoryview):
                total += value.nbytes
            elif isinstance(value, (bytes, bytearray)):
                total += len(value)
            else:
                try:
                    total += len(json.dumps(value, default=str))
                except (TypeError, ValueError):
                    total += len(str(value))
        return total

    def _binary_traits(self) -> set[str]:
        traits = self.traits()
        return {
            n
            for n in self.keys
            if isinstance(traits.get(n), traitlets.Bytes) or "to_json" in traits[n].metadata
        }

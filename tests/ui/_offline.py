"""Keep a page on this machine: what an offline report or a saved notebook loads must come from
the file itself (file:, blob:, data:, about:), so any other request is aborted and recorded."""

from __future__ import annotations

from typing import Any

LOCAL = ("file:", "blob:", "data:", "about:")


def block_network(page: Any) -> list[str]:
    """Abort every request of ``page``'s context that leaves the machine; returns the list the
    blocked URLs are appended to (a test asserts it stays empty)."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(LOCAL):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    return blocked

"""The workspace contract: open a directory or frames, validate it, name what is wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from . import contract
from .errors import HawknbError, WorkspaceError, WorkspaceWarning

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace, load_exported_program

__all__ = [
    "HawknbError",
    "Workspace",
    "WorkspaceError",
    "WorkspaceWarning",
    "contract",
    "load_exported_program",
]

# the reader pulls in polars and torch; `hawknb.workspace.errors` (imported by every CLI command)
# must not, so the reader resolves on first use
__getattr__, __dir__ = lazy_attributes(
    __name__,
    globals(),
    {"Workspace": ".workspace", "load_exported_program": ".workspace"},
)

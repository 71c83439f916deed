"""The workspace contract: open a directory or frames, validate it, name what is wrong."""

from . import contract
from .errors import HawknbError, WorkspaceError, WorkspaceWarning
from .workspace import Workspace, load_exported_program

__all__ = [
    "HawknbError",
    "Workspace",
    "WorkspaceError",
    "WorkspaceWarning",
    "contract",
    "load_exported_program",
]

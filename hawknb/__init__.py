"""hawknb: find out why a production model's predictions went wrong, from JupyterLab.

The public API is re-exported here; see docs/ for the workspace contract and the CLI.
"""

from .triage import Investigation, triage
from .workspace import HawknbError, Workspace, WorkspaceError, WorkspaceWarning

__version__ = "0.1.0"

__all__ = [
    "HawknbError",
    "Investigation",
    "Workspace",
    "WorkspaceError",
    "WorkspaceWarning",
    "__version__",
    "triage",
]

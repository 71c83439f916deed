"""hawknb: find out why a production model's predictions went wrong, from JupyterLab.

The public API is re-exported here; see docs/ for the workspace contract and the CLI. The views
(and `investigate`, which composes them) are imported on first use so that the command line and
the kernels do not pay for the widget stack.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .workspace.errors import HawknbError, WorkspaceError, WorkspaceWarning

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .triage import Finding, Investigation, Verdict, triage
    from .workspace import Workspace

# Everything below pulls in polars, torch or the widget stack; `import hawknb` (and so every
# `hawknb` command) stays cheap by resolving these on first use.
_LAZY = {
    "Finding": ".triage",
    "Investigation": ".triage",
    "Verdict": ".triage",
    "triage": ".triage",
    "Workspace": ".workspace",
    "investigate": ".widgets.dashboard",
    "Dashboard": ".widgets.dashboard",
    "AnomalyTimeline": ".widgets.timeline",
    "RolloutCorrelator": ".widgets.rollouts",
    "FeatureTable": ".widgets.features",
    "FeatureRanking": ".widgets.features",  # deprecated alias of FeatureTable
    "ModelGraphTensorViewer": ".widgets.modelgraph",
    "LineageExplorer": ".widgets.lineage",
    "InvestigationNavigator": ".widgets.navigator",
}

__all__ = [
    "AnomalyTimeline",
    "Dashboard",
    "FeatureRanking",
    "FeatureTable",
    "Finding",
    "HawknbError",
    "Investigation",
    "InvestigationNavigator",
    "LineageExplorer",
    "ModelGraphTensorViewer",
    "RolloutCorrelator",
    "Verdict",
    "Workspace",
    "WorkspaceError",
    "WorkspaceWarning",
    "__version__",
    "investigate",
    "triage",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)


class _Package(types.ModuleType):
    """`hawknb.triage` is the function, as it was when it was imported eagerly.

    The import system binds a loaded sub-package onto its parent; without this guard, importing
    anything from the `hawknb.triage` package first would make `hawknb.triage` that package.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "triage" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""hawknb: find out why a production model's predictions went wrong, from JupyterLab.

The public API is re-exported here; see docs/ for the workspace contract and the CLI. The views
(and `investigate`, which composes them) are imported on first use so that the command line and
the kernels do not pay for the widget stack.
"""

from __future__ import annotations

from ._lazy import lazy_attributes
from .triage import Finding, Investigation, Verdict, triage
from .workspace import HawknbError, Workspace, WorkspaceError, WorkspaceWarning

__version__ = "0.1.0"

_LAZY = {
    "investigate": ".widgets.dashboard",
    "Dashboard": ".widgets.dashboard",
    "AnomalyTimeline": ".widgets.timeline",
    "RolloutCorrelator": ".widgets.rollouts",
    "FeatureRanking": ".widgets.features",
    "ModelGraphTensorViewer": ".widgets.modelgraph",
    "LineageExplorer": ".widgets.lineage",
    "InvestigationNavigator": ".widgets.navigator",
}

__all__ = [
    "AnomalyTimeline",
    "Dashboard",
    "FeatureRanking",
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

"""Jupyter views of an investigation: thin anywidgets over plain frames and lists of dicts.

Widgets take plain data (polars/pandas frames, lists of dicts), never triage objects, so the
triage layer and users can both build them. Classes are imported lazily: ``import
hawknb.widgets`` stays cheap and a view whose module is not there yet does not break the others.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "HawknbWidget": "._base",
    "AnomalyTimeline": ".timeline",
    "RolloutCorrelator": ".rollouts",
    "InvestigationNavigator": ".navigator",
    "FeatureTable": ".features",
    "FeatureRanking": ".features",  # deprecated alias of FeatureTable
    "ModelGraphTensorViewer": ".modelgraph",
    "LineageExplorer": ".lineage",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)

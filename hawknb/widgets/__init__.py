"""Jupyter views of an investigation: thin anywidgets over plain frames and lists of dicts.

Widgets take plain data (polars/pandas frames, lists of dicts), never triage objects, so the
triage layer and users can both build them. Classes are imported lazily: ``import
hawknb.widgets`` stays cheap and a view whose module is not there yet does not break the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "HawknbWidget": "._base",
    "AnomalyTimeline": ".timeline",
    "RolloutCorrelator": ".rollouts",
    "InvestigationNavigator": ".navigator",
    "FeatureRanking": ".features",
    "ModelGraphTensorViewer": ".modelgraph",
    "LineageExplorer": ".lineage",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hawknb.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

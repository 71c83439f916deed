"""Typed results of the triage steps: what each step computed, for the views to draw.

Each step records one dataclass on the `Investigation` (``inv.record(result)``) and a view asks
for it by type (``inv.get(FeaturesResult)``). Adding a step means a new dataclass here, the
code that produces it and the view that reads it, not a new string key that the walk, the
findings and the dashboard must all spell the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from ..kernels.anomaly import AnomalyResult
    from ..kernels.features import FeatureRanking
    from ..kernels.isolation import ModelIsolation
    from ..kernels.lineage import RootCauseResult
    from ..kernels.rollout import SnapshotIsolation
    from .hypotheses import Hypothesis
    from .models import Suspect
    from .topline import Anomaly


@dataclass
class WarningsResult:
    """Workspace check warnings raised before the walk."""

    messages: list[str] = field(default_factory=list)


@dataclass
class ToplineResult:
    """The metric series, every metric's detected anomalies, and the windows considered."""

    series: pl.DataFrame
    anomalies: dict[str, AnomalyResult]
    #: the window the verdict explains (None: no top-line anomaly)
    anomaly: Anomaly | None = None
    #: every candidate window the walk weighed, most evidence first
    candidates: list[Anomaly] = field(default_factory=list)


@dataclass
class ModelsResult:
    """Prediction health of every model-experiment and the isolation of the chosen window."""

    health: pl.DataFrame
    isolation: ModelIsolation
    suspect: Suspect | None = None


@dataclass
class SnapshotResult:
    """Snapshot isolation of the suspect model, with its health per snapshot."""

    isolation: SnapshotIsolation | None
    health_by_snapshot: pl.DataFrame


@dataclass
class FeaturesResult:
    """The feature ranking of one model (re-ranked when a person picks another model)."""

    ranking: FeatureRanking | None
    model: str | None = None


@dataclass
class LineageResult:
    """The upstream root-cause walk from the responsible features."""

    root_cause: RootCauseResult | None


@dataclass
class HypothesesResult:
    """The competing explanations the verdict was chosen from, best first."""

    hypotheses: list[Hypothesis] = field(default_factory=list)

    @property
    def chosen(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    @property
    def runner_up(self) -> Hypothesis | None:
        return self.hypotheses[1] if len(self.hypotheses) > 1 else None


def legacy_context(results: dict[type, Any]) -> dict[str, Any]:
    """The old string-keyed view of the results (read-only; for notebooks written against it)."""
    out: dict[str, Any] = {}
    w = results.get(WarningsResult)
    if w is not None:
        out["warnings"] = w.messages
    t = results.get(ToplineResult)
    if t is not None:
        out.update(anomalies=t.anomalies, metric_series=t.series, anomaly=t.anomaly)
    m = results.get(ModelsResult)
    if m is not None:
        out.update(health=m.health, isolation=m.isolation)
    s = results.get(SnapshotResult)
    if s is not None:
        out.update(snapshot_isolation=s.isolation, health_by_snapshot=s.health_by_snapshot)
    f = results.get(FeaturesResult)
    if f is not None:
        out["ranking"] = f.ranking
    lin = results.get(LineageResult)
    if lin is not None:
        out["root_cause"] = lin.root_cause
    from .diagnosis import Diagnosis

    d = results.get(Diagnosis)
    if d is not None:
        out["diagnosis"] = d
    return out

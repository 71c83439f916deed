"""Which anomaly window to explain: the one some model's predictions explain best.

The most severe top-line anomaly is often not the incident: another metric shifts for
reasons no model has anything to do with (a traffic mix, a logging change), or another day
had a bigger but unrelated dip. Every candidate window (across all metrics) is therefore
put to the model-isolation step, and the window whose degradation a model explains best
wins; the window's own evidence only breaks near-ties. An anomaly some model's predictions
explain beats a bigger one that none explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ..kernels.isolation import ModelIsolation
from . import models
from .findings import Finding
from .models import Suspect
from .topline import Anomaly

#: how much of a window's score its own evidence (its summed robust z relative to the
#: strongest candidate) contributes; the rest is how well a model explains it
MASS_WEIGHT = 0.25


@dataclass
class WindowChoice:
    """One candidate window and what the model-isolation step made of it."""

    anomaly: Anomaly
    topline: Finding
    mass: float
    suspect: Suspect | None
    finding: Finding
    health: pl.DataFrame
    isolation: ModelIsolation
    score: float = 0.0

    def brief(self) -> dict[str, Any]:
        return {
            "metric": self.anomaly.metric,
            "onset": self.anomaly.onset,
            "mass": round(self.mass, 1),
            "model": self.suspect.model if self.suspect else None,
            "model_confidence": round(self.isolation.confidence, 3),
            "score": round(self.score, 3),
        }


def weigh_windows(
    ws: Any,
    candidates: list[tuple[Anomaly, Finding, float]],
    series: pl.DataFrame,
) -> list[WindowChoice]:
    """Isolate the model behind each candidate window and score the windows, best first."""
    cache: dict = {}
    top_mass = max((m for _, _, m in candidates), default=1.0) or 1.0
    out = []
    for anomaly, top_finding, mass in candidates:
        suspect, finding, health, iso = models.isolate_model(ws, anomaly, series, cache)
        explained = suspect.confidence if suspect is not None else 0.0
        rel = min(1.0, mass / top_mass) if top_mass > 0 else 0.0
        score = explained * ((1 - MASS_WEIGHT) + MASS_WEIGHT * rel)
        out.append(WindowChoice(anomaly, top_finding, mass, suspect, finding, health, iso, score))
    # stable: equal scores keep the topline order (most evidence first)
    return sorted(out, key=lambda w: -round(w.score, 6))


def note_choice(choices: list[WindowChoice]) -> None:
    """Say in the chosen window's finding which bigger window it was preferred to, and why."""
    best = choices[0]
    bigger = [w for w in choices[1:] if w.mass > best.mass]
    if bigger:
        w = bigger[0]
        best.topline.decision += (
            f" (chosen over {w.anomaly.metric} at {w.anomaly.onset:%Y-%m-%d %H:%M}, a bigger "
            "anomaly that no model's predictions explain as well)"
        )
    best.topline.evidence["windows_weighed"] = [w.brief() for w in choices[:6]]

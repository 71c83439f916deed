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
from datetime import timedelta
from typing import Any

import polars as pl

from ..engine import collect
from ..kernels.isolation import ModelIsolation
from ..workspace import contract as c
from . import models
from .findings import Finding
from .models import Suspect
from .topline import Anomaly

#: how much of a window's score its own evidence (its summed robust z relative to the
#: strongest candidate) contributes; the rest is how well a model explains it
MASS_WEIGHT = 0.25
#: how much a change to what a model serves (a rollout step) at a window's onset explains
#: it when no model's pooled predictions moved: a canary on a few % of traffic, or labels
#: that arrive hours late, leave the pooled health flat while the top line already drops
ROLLOUT_EXPLAINS = 0.35
#: a window found only as a sustained shift (no row alerted) is weaker evidence of an
#: incident: its explanation counts this much (a detector window a model explains as well wins)
SUSTAINED_WEIGHT = 0.6
#: a rollout this many metric samples (at least ROLLOUT_MIN) from the onset is "at" it
ROLLOUT_SAMPLES, ROLLOUT_MIN = 3, timedelta(hours=1)


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
    #: rollout steps (changes of what a model serves) at the onset
    rollouts: int = 0

    def brief(self) -> dict[str, Any]:
        return {
            "metric": self.anomaly.metric,
            "onset": self.anomaly.onset,
            "mass": round(self.mass, 1),
            "model": self.suspect.model if self.suspect else None,
            "model_confidence": round(self.isolation.confidence, 3),
            "rollouts_at_onset": self.rollouts,
            "score": round(self.score, 3),
        }


def weigh_windows(
    ws: Any,
    candidates: list[tuple[Anomaly, Finding, float]],
    series: pl.DataFrame,
) -> list[WindowChoice]:
    """Isolate the model behind each candidate window and score the windows, best first.

    A window's explanation combines (as independent evidence) how clearly a model's
    predictions moved at its onset and whether a model's serving changed (a rollout step)
    at it; its own size only scales that, so a big shift nothing explains loses to a
    smaller one something does."""
    cache: dict = {}
    changes = rollout_changes(ws)
    span = (series[c.TS].min(), series[c.TS].max()) if series.height else None
    top_mass = max((m for _, _, m in candidates), default=1.0) or 1.0
    out = []
    for anomaly, top_finding, mass in candidates:
        suspect, finding, health, iso = models.isolate_model(ws, anomaly, series, cache)
        # a rollout at the onset helps choose the window, but does not name a suspect by
        # itself: a simulator `none` workspace has metric blips at its daily rollout hour
        near = _near(changes, anomaly)
        explained = suspect.confidence if suspect is not None else 0.0
        # worth only as much as a rollout that close to a random time would be unlikely
        # (none at all when a random time is as likely as not to have one that close)
        chance = _chance(changes, anomaly, span)
        weight = ROLLOUT_EXPLAINS * max(0.0, 1 - 2 * chance) * (near.height > 0)
        explained = 1 - (1 - explained) * (1 - weight)
        if anomaly.sustained:
            explained *= SUSTAINED_WEIGHT
        rel = min(1.0, mass / top_mass) if top_mass > 0 else 0.0
        score = explained * ((1 - MASS_WEIGHT) + MASS_WEIGHT * rel)
        out.append(
            WindowChoice(
                anomaly, top_finding, mass, suspect, finding, health, iso, score, near.height
            )
        )
    # stable: equal scores keep the topline order (most evidence first)
    return sorted(out, key=lambda w: -round(w.score, 6))


def rollout_changes(ws: Any) -> pl.DataFrame:
    """(ts, model, experiment, snapshot) of every change of a snapshot's traffic share (its
    first row counts as a change from nothing, except at the table's first time: that is
    the state the history starts in, not a change); empty without a rollouts table."""
    if not ws.has("rollouts"):
        return pl.DataFrame(schema={c.TS: pl.Datetime("us", "UTC"), c.MODEL: pl.String})
    key = [c.MODEL, c.EXPERIMENT, c.SNAPSHOT]
    t = collect(ws.table("rollouts").select(c.TS, *key, c.TRAFFIC).sort(c.TS))
    prev = pl.col(c.TRAFFIC).shift(1).over(key)
    t = t.filter(prev.is_null() | (prev != pl.col(c.TRAFFIC))).select(c.TS, *key)
    return t.filter(pl.col(c.TS) > t[c.TS].min()) if t.height else t


def _tolerance(anomaly: Anomaly) -> timedelta:
    return max(ROLLOUT_MIN, ROLLOUT_SAMPLES * anomaly.cadence)


def _chance(changes: pl.DataFrame, anomaly: Anomaly, span: tuple | None) -> float:
    """The share of the history that lies within the tolerance of some rollout step: how
    likely a window would have one at its onset by coincidence (a workspace that rolls out
    every few hours gives this evidence no weight)."""
    if changes.is_empty() or span is None or span[1] <= span[0]:
        return 0.0
    tol = _tolerance(anomaly)
    covered, last = timedelta(0), None
    for t in changes[c.TS].unique().sort():
        lo, hi = max(t - tol, span[0]), min(t + tol, span[1])
        if last is not None and lo < last:
            lo = last
        if hi > lo:
            covered += hi - lo
            last = hi
    return min(1.0, covered / (span[1] - span[0]))


def _near(changes: pl.DataFrame, anomaly: Anomaly) -> pl.DataFrame:
    tol = _tolerance(anomaly)
    if changes.is_empty():
        return changes
    ts = pl.col(c.TS)
    return changes.filter((ts >= anomaly.onset - tol) & (ts <= anomaly.onset + tol))


def _why(w: WindowChoice) -> str:
    """What explained a window (or that nothing did), in a few words."""
    parts = []
    if w.suspect is not None:
        parts.append(f"{w.suspect.model}'s predictions (confidence {w.isolation.confidence:.2f})")
    if w.rollouts:
        parts.append("a rollout at its onset")
    return " and ".join(parts) if parts else "nothing: no model's predictions or rollouts"


def note_choice(choices: list[WindowChoice]) -> None:
    """Say in the chosen window's finding what explains it, and which window came second
    (a bigger one first, if any) and why it lost, so a person sees why not the other."""
    best = choices[0]
    bigger = [w for w in choices[1:] if w.mass > best.mass]
    other = bigger[0] if bigger else (choices[1] if len(choices) > 1 else None)
    best.topline.decision += f"; explained by {_why(best)}"
    if other is not None:
        size = "a bigger anomaly" if other.mass > best.mass else "runner-up"
        best.topline.decision += (
            f" (chosen over {other.anomaly.metric} at {other.anomaly.onset:%Y-%m-%d %H:%M}, "
            f"{size} explained by {_why(other)}; score {other.score:.2f} vs {best.score:.2f})"
        )
        best.topline.evidence["runner_up_window"] = other.brief()
    best.topline.evidence["windows_weighed"] = [w.brief() for w in choices[:6]]

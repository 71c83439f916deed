"""Which anomaly window to explain: the one some model's predictions explain best.

The most severe top-line anomaly is often not the incident: another metric shifts for
reasons no model has anything to do with (a traffic mix, a logging change), or another day
had a bigger but unrelated dip. Every candidate window (across all metrics) is therefore
put to the model-isolation step, and the window whose degradation a model explains best
wins; the window's own evidence only breaks near-ties. An anomaly some model's predictions
explain beats a bigger one that none explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import polars as pl

from ..engine import collect
from ..kernels.anomaly import AnomalyResult
from ..kernels.base_rate import chance_corrected
from ..kernels.isolation import ModelIsolation
from ..workspace import contract as c
from . import led, models, row_evidence
from .findings import Finding
from .models import Suspect
from .topline import Anomaly
from .walk_cache import memo

#: how much of a window's score its own evidence (its summed robust z relative to the
#: strongest candidate) contributes; the rest is how well a model explains it
MASS_WEIGHT = 0.25
#: how much a change to what a model serves (a rollout step) at a window's onset explains
#: it when no model's pooled predictions moved: a canary on a few % of traffic, or labels
#: that arrive hours late, leave the pooled health flat while the top line already drops
ROLLOUT_EXPLAINS = 0.35
#: how much a rollout at the onset explains when its first rows look like its neighbours'
#: (against one whose rows clearly differ; row_evidence.rollout_rows)
QUIET_ROLLOUT = 0.5
#: a window found only as a sustained shift (no row alerted) is weaker evidence of an
#: incident: its explanation counts this much (a detector window a model explains as well wins)
SUSTAINED_WEIGHT = 0.6
#: a rollout this many metric samples (at least ROLLOUT_MIN) from the onset is "at" it
ROLLOUT_SAMPLES, ROLLOUT_MIN = 3, timedelta(hours=1)
#: pseudo-counts of windows a model does NOT explain, added to the other windows weighed
#: before the share it explains counts as a base rate (two or three windows say little)
WINDOW_PRIOR = 2


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
    #: the model's confidence before the chance correction, and the base rate used
    raw_confidence: float = 0.0
    base_rate: float = 0.0
    #: the share of the weighed windows' scores that this one holds (1: nothing competes)
    certainty: float = 1.0

    def brief(self) -> dict[str, Any]:
        return {
            "metric": self.anomaly.metric,
            "onset": self.anomaly.onset,
            "mass": round(self.mass, 1),
            "model": self.suspect.model if self.suspect else None,
            "model_confidence": round(self.raw_confidence, 3),
            "base_rate": round(self.base_rate, 3),
            "explained": round(self.suspect.confidence, 3) if self.suspect else 0.0,
            "rollouts_at_onset": self.rollouts,
            "score": round(self.score, 3),
            "certainty": round(self.certainty, 3),
        }


def weigh_windows(
    ws: Any,
    candidates: list[tuple[Anomaly, Finding, float]],
    series: pl.DataFrame,
    results: dict[str, AnomalyResult] | None = None,
    cache: dict | None = None,
) -> list[WindowChoice]:
    """Isolate the model behind each candidate window and score the windows, best first.

    A window's explanation combines (as independent evidence) how clearly a model's
    predictions moved at its onset and whether a model's serving changed (a rollout step)
    at it; its own size only scales that, so a big shift nothing explains loses to a
    smaller one something does. With every metric's detector ``results`` (no metric or
    time asked for), windows the models point at (led.py) join the candidates. ``cache``:
    the walk's reads (health tables, rollouts, row comparisons), which later steps of the
    same walk reuse (`rollout_suspect`)."""
    cache = {} if cache is None else cache
    if results and candidates:
        candidates = candidates + _led(ws, candidates, series, results, cache)
    changes = rollout_changes(ws, cache)
    rows = _rollout_rows(ws, changes, [a for a, _, _ in candidates], cache, every=bool(results))
    span = (series[c.TS].min(), series[c.TS].max()) if series.height else None
    top_mass = max((m for _, _, m in candidates), default=1.0) or 1.0
    found = models.isolate_models(ws, [a for a, _, _ in candidates], series, cache)
    isolated = [(*cand, *iso) for cand, iso in zip(candidates, found, strict=True)]
    explained_by = [
        (a, s.model if s else None, s.confidence if s else 0.0) for a, _, _, s, *_ in isolated
    ]
    out = []
    for anomaly, top_finding, mass, suspect, finding, health, iso in isolated:
        raw = suspect.confidence if suspect is not None else 0.0
        rate = 0.0
        if suspect is not None:
            suspect, rate = _chance_corrected(suspect, anomaly, explained_by)
            finding.evidence["chance_corrected"] = {
                "confidence": round(raw, 3),
                "base_rate": round(rate, 3),
                "explained": round(suspect.confidence, 3),
            }
        near = _near(changes, anomaly)
        explained = _explained(suspect, anomaly, near, changes, rows, span)
        rel = min(1.0, mass / top_mass) if top_mass > 0 else 0.0
        score = explained * ((1 - MASS_WEIGHT) + MASS_WEIGHT * rel)
        out.append(
            WindowChoice(
                anomaly,
                top_finding,
                mass,
                suspect,
                finding,
                health,
                iso,
                score,
                near.height,
                raw,
                rate,
            )
        )
    # stable: equal scores keep the topline order (most evidence first)
    ranked = sorted(out, key=lambda w: -round(w.score, 6))
    _certainty(ranked)
    return ranked


def _led(
    ws: Any,
    candidates: list[tuple[Anomaly, Finding, float]],
    series: pl.DataFrame,
    results: dict[str, AnomalyResult],
    cache: dict,
) -> list[tuple[Anomaly, Finding, float]]:
    """The windows the models point at (led.py): their health steps, input peaks and
    rollouts whose rows differ, where some metric stepped with them."""
    every = models.health_every(candidates[0][0])
    health, _ = models.health_tables(ws, every, cache)
    step = models.health_step(candidates[0][0])
    known = [a for a, _, _ in candidates]
    inputs = models.input_peaks(ws, every, cache) + row_evidence.rollout_peaks(ws, cache)
    return led.led_windows(health, step, results, series, known, inputs)


def _explained(
    suspect: Suspect | None,
    anomaly: Anomaly,
    near: pl.DataFrame,
    changes: pl.DataFrame,
    rows: pl.DataFrame | None,
    span: tuple | None,
) -> float:
    """How well the window is explained: the suspect's chance-corrected confidence and the
    rollouts ``near`` its onset, as independent evidence; a sustained-only window less.

    A rollout at the onset helps choose the window, but does not name a suspect by itself:
    a simulator `none` workspace has metric blips at its daily rollout hour."""
    explained = suspect.confidence if suspect is not None else 0.0
    # worth only as much as a rollout that close to a random time would be unlikely
    # (none at all when a random time is as likely as not to have one that close)
    chance = _chance(changes, anomaly, span)
    weight = ROLLOUT_EXPLAINS * max(0.0, 1 - 2 * chance) * _rollout_weight(near, rows)
    explained = 1 - (1 - explained) * (1 - weight)
    return explained * SUSTAINED_WEIGHT if anomaly.sustained else explained


def distinct(a: Anomaly, b: Anomaly) -> bool:
    """Two windows are different incidents when neither onset lies within the other's span
    (padded by the rollout tolerance): one incident's windows on several metrics are not."""
    pad = max(_tolerance(a), _tolerance(b))
    a_end = max(a.end, a.onset + 3 * a.cadence)
    b_end = max(b.end, b.onset + 3 * b.cadence)
    return not (a.onset - pad <= b.onset <= a_end + pad or b.onset - pad <= a.onset <= b_end + pad)


def _chance_corrected(
    suspect: Suspect, anomaly: Anomaly, explained_by: list[tuple[Anomaly, str | None, float]]
) -> tuple[Suspect, float]:
    """The suspect with its confidence beyond chance, and the base rate used.

    Two base rates, the larger counts: how often the model's health series moved as much at
    other times of its history (measured by model isolation), and the share of the other
    incidents weighed (windows at other times) that the same model also "explains", shrunk
    towards zero by WINDOW_PRIOR, counting those it explains at least as clearly (a culprit that
    also moved a little at some blip keeps its incident). A model whose predictions follow
    every anomaly explains none of them specifically. Chance-corrected as Cohen's kappa: (p - rate) / (1 - rate)."""
    others = [(m, p) for a, m, p in explained_by if distinct(a, anomaly)]
    # as the history's base rate: the other incidents it explains at least as clearly
    cross = sum(m == suspect.model and p >= suspect.confidence for m, p in others) / (
        len(others) + WINDOW_PRIOR
    )
    history = suspect.base_rate if math.isfinite(suspect.base_rate) else 0.0
    rate = max(cross, history)
    conf = chance_corrected(suspect.confidence, rate)
    return replace(suspect, confidence=conf), rate


def _certainty(ranked: list[WindowChoice]) -> None:
    """Each window's share of the scores of the distinct incidents weighed: a near-tie
    between two windows that different evidence explains leaves either at about one half,
    and the verdict's confidence carries that (a near-tie cannot convict at 0.8)."""
    for w in ranked:
        rivals = [o.score for o in ranked if o is not w and distinct(o.anomaly, w.anomaly)]
        total = w.score + sum(rivals)
        w.certainty = w.score / total if total > 0 else 1.0


def rollout_changes(ws: Any, cache: dict | None = None) -> pl.DataFrame:
    """(ts, model, experiment, snapshot) of every change of a snapshot's traffic share (its
    first row counts as a change from nothing, except at the table's first time: that is
    the state the history starts in, not a change); empty without a rollouts table.
    ``cache``: the walk's, read once."""
    return memo(cache, "rollout-changes", lambda: _rollout_changes(ws))


def _rollout_changes(ws: Any) -> pl.DataFrame:
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


def _rollout_weight(near: pl.DataFrame, rows: pl.DataFrame | None) -> float:
    """How much the rollouts at a window's onset can explain it (0..1): fully when what the
    new snapshots among them served is unknown or changed (row-level z from
    `row_evidence.rollout_rows`), QUIET_ROLLOUT when every one served rows like its
    neighbours' did. A retrain on bad data
    can serve ordinary-looking predictions, so a quiet rollout is not cleared, only weaker
    evidence than a rollout whose rows moved."""
    if near.is_empty():
        return 0.0
    if rows is None or rows.is_empty() or c.SNAPSHOT not in near.columns:
        return 1.0
    z = {(m, s): v for m, s, v in rows.select(c.MODEL, c.SNAPSHOT, "z").iter_rows()}
    # the snapshots a cut-over retires were served from the start: only the new ones say
    # what changed, and without any compared the rollouts keep their full weight
    known = [z[k] for k in near.select(c.MODEL, c.SNAPSHOT).iter_rows() if k in z]
    if not known:
        return 1.0
    share = min(1.0, max(0.0, max(known) / row_evidence.ROW_Z))
    return QUIET_ROLLOUT + (1.0 - QUIET_ROLLOUT) * share


def _rollout_rows(
    ws: Any, changes: pl.DataFrame, windows: list[Anomaly], cache: dict, every: bool
) -> pl.DataFrame | None:
    """`row_evidence.rollout_rows` of the snapshots `_rollout_weight` reads: those rolled
    out at some window's onset, or every one when the leads (which read them all) were made."""
    if not changes.height:
        return None
    if every or c.SNAPSHOT not in changes.columns:
        return row_evidence.rollout_rows(ws, cache)
    return row_evidence.rollout_rows(ws, cache, only=_near_pairs(changes, windows)[1])


def _near_pairs(
    changes: pl.DataFrame, windows: list[Anomaly], other_than: str | None = None
) -> tuple[pl.DataFrame, frozenset[tuple[str, str]]]:
    """The rollout steps at any of the windows' onsets (of models other than ``other_than``)
    and their (model, snapshot) pairs: the rollouts whose rows `rollout_rows` compares for
    the window weighing and for `rollout_suspect` alike."""
    near = [_near(changes, a) for a in windows]
    if not near:
        return changes.clear(), frozenset()
    steps = pl.concat(near)
    if other_than is not None:
        steps = steps.filter(pl.col(c.MODEL) != other_than)
    return steps, frozenset(steps.select(c.MODEL, c.SNAPSHOT).iter_rows())


def rollout_suspect(
    ws: Any, anomaly: Anomaly, suspect: Suspect, cache: dict | None = None
) -> Suspect | None:
    """Another model's snapshot rolled out at the window's onset whose first hours' rows
    clearly differ from its neighbours' (`row_evidence.rollout_rows` z >= LEAD_Z), as a
    competing suspect, or None. ``cache``: the walk's (`weigh_windows`), whose rollouts and
    row comparisons this reuses.

    Why: a blow-up on a few % of one model's rows, with labels hours late, can leave its
    window health flat while some other model's health moves a little at the same hour by
    chance; model isolation then names the other model, whose causes explain nothing. The
    rollout's own rows (its first hours, more than the window's) still show it. Its
    confidence is capped at the suspect's, as the next model by health is: it explains the
    window no better than the model isolation chose."""
    changes = rollout_changes(ws, cache)
    if changes.is_empty() or c.SNAPSHOT not in changes.columns:
        return None
    near, pairs = _near_pairs(changes, [anomaly], other_than=suspect.model)
    if near.is_empty():
        return None
    rows = row_evidence.rollout_rows(ws, cache, only=pairs)
    rows = rows.filter(pl.col("z") >= row_evidence.LEAD_Z)
    if rows.is_empty():
        return None
    top = rows.sort("z", descending=True).row(0, named=True)
    model, snap = top[c.MODEL], top[c.SNAPSHOT]
    arms = sorted(
        set(near.filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snap))[c.EXPERIMENT])
    )
    every = set(changes.filter(pl.col(c.MODEL) == model)[c.EXPERIMENT])
    return Suspect(model, arms[0], tuple(arms), len(arms) < len(every), suspect.confidence)


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

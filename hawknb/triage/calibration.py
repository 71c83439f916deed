"""Calibrated verdict confidence: a number that matches how often such verdicts are right.

The support of the best hypothesis is a product of evidence factors; it ranks verdicts well
but is not a probability. `calibrated` maps it onto the share of verdicts right at that level:
a monotone piecewise-linear map fitted (isotonic regression, a handful of knots) on TUNING
runs of both the simulator and the independent generator (benchmarks/fit_calibration.py),
and judged on other seeds with `benchmarks/triage_accuracy.py --reliability`.

A `none` verdict ("no cause found / nothing wrong") is a claim like any other, and its
confidence is the probability that it is right: that there was no incident to find. It is
read from the evidence of an incident the walk had (`NoneEvidence`: how far the top line
stepped, whether a model's predictions moved with it, how strongly the best cause
hypothesis was supported), combined into one `doubt` score and mapped by a decreasing
isotonic fit on the same tuning runs (`NONE_KNOTS`). A `none` verdict with a strong
unexplained top-line step is worded as the weak answer it is ("low confidence: no cause
found; the strongest lead was ...").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..workspace import contract as c
from .hypotheses import Hypothesis

if TYPE_CHECKING:
    from .investigation import Investigation

#: (support, confidence) knots for verdicts that name a cause, and (doubt, confidence) knots
#: for `none` verdicts: the share right at each level, isotonic, a handful of knots.
#: fitted by benchmarks/fit_calibration.py on 132 tuning runs
#: (60 simulator, 72 independent generator); ECE over all verdicts 0.072
#: on those runs, 2-fold cross-fitted 0.034 (benchmarks/results/calibration.md)
CAUSE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.02),
    (0.002, 0.02),
    (0.213, 0.97),
    (0.428, 0.97),
    (0.609, 0.97),
    (0.802, 0.97),
    (0.999, 0.97),
    (1.0, 0.97),
)
NONE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.97),
    (0.191, 0.733),
    (0.236, 0.733),
    (0.25, 0.733),
    (0.269, 0.733),
    (0.725, 0.02),
    (1.0, 0.02),
)
#: (support, confidence) knots for verdicts that name a cause where the labels were blind:
#: fewer than LABELS_BLIND of the suspect's rows in the LABEL_WINDOW after the onset had their
#: label yet. Calibration and NE cannot move there, so a real incident's support is small by
#: construction and the support says less about whether the verdict is right.
#: fitted by benchmarks/fit_calibration.py on the 87 cause verdicts of 228 tuning runs
#: whose labels were blind
BLIND_CAUSE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.97),
    (0.002, 0.97),
    (0.052, 0.97),
    (0.127, 0.97),
    (0.266, 0.97),
    (0.389, 0.97),
    (0.797, 0.97),
    (1.0, 0.97),
)
#: (doubt, confidence) knots for `none` verdicts on a thin serving log: fewer than THIN_LOG
#: rows per model and hour. There a real incident often moves no health series clearly
#: enough, so "no cause found" is absence of evidence more often than evidence of absence.
#: fitted by benchmarks/fit_calibration.py on the 23 none verdicts of 348 tuning runs
#: whose log was thin: NONE_KNOTS capped at their share right (fit_capped)
THIN_NONE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.97),
    (0.191, 0.304),
    (0.236, 0.304),
    (0.25, 0.304),
    (0.269, 0.304),
    (0.725, 0.02),
    (1.0, 0.02),
)
#: a serving log is thin below this many rows per model and hour (median over models).
#: Between the thin tuning logs' 12 and 24 (where 7 of 23 `none` verdicts were right) and the
#: independent generator's usual 48 (where most were); the simulator serves 120
THIN_LOG = 32.0
#: the labels are blind when fewer than this share of the rows had one ...
LABELS_BLIND = 0.5
#: ... in this long after the onset
LABEL_WINDOW = timedelta(hours=6)
#: the most a verdict naming a snapshot with nothing found inside it (no bad activation, weight
#: change beyond the usual drift or training anomaly: `Hypothesis.mechanism` 0) is stated at:
#: it rests on the same-hours comparison alone. Such verdicts were right 0 of 5 times on the
#: tuning runs of both generators (supports 0.02-0.12; benign rollouts in the incident hours);
#: the cap is Laplace's estimate of that share, (0 + 1) / (5 + 2). Without it a support above
#: the cause map's step (0.21) read 0.97 however empty the snapshot was
UNEXPLAINED_SNAPSHOT = 0.14
#: a runner-up this close to the winner (support ratio) halves the distance to a coin flip
CLOSE_CALL = 0.8
#: below this calibrated confidence a verdict is worded as a weak lead, not a finding
LOW, MODERATE = 0.4, 0.65


def _interp(knots: tuple[tuple[float, float], ...], x: float) -> float:
    xs, ys = zip(*knots, strict=True)
    return float(np.interp(x, xs, ys))


def excused_by_labels(mechanism: float | None, labels_seen: float | None) -> float | None:
    """The label share a cause verdict's map is chosen by: its own, unless it names a
    snapshot with nothing found inside it (``mechanism`` 0), which reads as if its labels had
    been seen (None).

    Why: the blind map is for support that late labels kept small (the health step's
    calibration and NE cannot move without them). A snapshot convicted only by the same-hours
    comparison, with no bad activation, weight change or training anomaly inside it, is weak
    for a reason the labels do not excuse: the diagnosis reads weights and replayed inputs,
    not labels. Such verdicts were right 0 of 5 times on both generators' tuning and held-out
    runs (each time a benign rollout in the incident hours), one of them stated at 0.97 by
    the blind map on a foreign cadence."""
    return None if mechanism == 0 else labels_seen


def cause_knots(labels_seen: float | None) -> tuple[tuple[float, float], ...]:
    """The support-to-confidence map for a cause verdict whose window had this share of its
    labels (None: not measured, e.g. no label column)."""
    return BLIND_CAUSE_KNOTS if _blind(labels_seen) else CAUSE_KNOTS


def _blind(labels_seen: float | None) -> bool:
    return labels_seen is not None and labels_seen < LABELS_BLIND


def blind_note(cause: str, labels_seen: float | None, labelled: bool = True) -> str:
    """What a cause verdict's summary adds when its window's labels were blind: the reader
    should know the health series could not show the incident and where the confidence comes
    from ('' otherwise, and for `none`). ``labelled``: the log has a label column at all."""
    if cause == "none" or not _blind(labels_seen):
        return ""
    hours = LABEL_WINDOW / timedelta(hours=1)
    why = (
        f"only {labels_seen:.0%} of its labels had arrived in the {hours:g} h after the onset"
        if labelled
        else "the serving log has no labels"
    )
    return (
        f"; {why}, so calibration and NE could not show it (confidence: how often verdicts on "
        "such windows were right)"
    )


def calibrated(
    best: Hypothesis, runner_up: Hypothesis | None, labels_seen: float | None = None
) -> float:
    """The verdict's confidence from its support (read with the map for its window's label
    coverage, `cause_knots`, unless nothing inside a named snapshot explains it:
    `excused_by_labels`), lowered when the runner-up is a close call for a different
    cause (two explanations nearly as good: either could be right), and never above
    UNEXPLAINED_SNAPSHOT for a snapshot with nothing found inside it. A `none` verdict gets
    its final confidence from `settle_none` once the walk is over (its support is not
    evidence that nothing is wrong); this is only its placeholder."""
    seen = excused_by_labels(best.mechanism, labels_seen)
    conf = _interp(cause_knots(seen), max(0.0, min(1.0, best.support)))
    if (
        runner_up is not None
        and runner_up.cause != best.cause
        and best.support > 0
        and runner_up.support / best.support >= CLOSE_CALL
    ):
        conf = 0.5 + (conf - 0.5) * 0.5 if conf > 0.5 else conf
    if best.mechanism == 0:
        conf = min(conf, UNEXPLAINED_SNAPSHOT)
    return max(0.0, min(1.0, conf))


def wording(confidence: float) -> str:
    """The qualifier a summary starts with at this confidence ('' when confident)."""
    if confidence < LOW:
        return "low confidence"
    if confidence < MODERATE:
        return "moderate confidence"
    return ""


@dataclass(frozen=True)
class NoneEvidence:
    """What speaks against "no cause found / nothing wrong": the evidence of an incident the
    walk had, each 0..1 (0: nothing of it)."""

    #: the explained window's top-line step (`kernels.isolation.strength` of its robust z:
    #: 0 at noise, 1 from 6 spreads); 0 when no top-line anomaly was found
    anomaly: float = 0.0
    #: that step's robust z itself (unbounded; recorded for the fit)
    severity: float = 0.0
    #: the explained window's detector confidence (0 when none)
    anomaly_confidence: float = 0.0
    #: how clearly some model's predictions moved with it (the model step's confidence)
    moved: float = 0.0
    #: the best cause hypothesis' support: how strongly the best lead pointed at a cause
    lead: float = 0.0
    #: the label of that lead ('' when no cause was weighed)
    lead_label: str = ""
    #: the window was found only as a sustained shift, or from a model's health step
    sustained: bool = False
    led: bool = False
    #: serving rows per model and hour (median over models of their median health window,
    #: scaled to an hour): how much evidence the log could hold; None when not measured
    rows_per_hour: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, rounded (what the benchmarks record for the fit)."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def none_evidence(inv: Investigation) -> NoneEvidence:
    """The evidence of an incident in a finished walk, read from its typed results (the same
    numbers whether the verdict is `none` or names a cause)."""
    from ..kernels.isolation import strength
    from .results import HypothesesResult, ModelsResult, ToplineResult

    top, models, hyps = inv.get(ToplineResult), inv.get(ModelsResult), inv.get(HypothesesResult)
    anomaly = top.anomaly if top is not None else None
    if anomaly is None:
        return NoneEvidence()
    moved = 0.0
    if models is not None:
        moved = models.suspect.confidence if models.suspect else models.isolation.confidence
    causes = [h for h in (hyps.hypotheses if hyps else []) if h.cause != "none"]
    best = max(causes, key=lambda h: h.support, default=None)
    return NoneEvidence(
        rows_per_hour=rows_per_hour(models.health) if models is not None else None,
        anomaly=strength(anomaly.severity),
        severity=float(anomaly.severity) if np.isfinite(anomaly.severity) else 99.0,
        anomaly_confidence=float(anomaly.confidence),
        moved=float(max(0.0, min(1.0, moved))),
        lead=float(best.support) if best else 0.0,
        lead_label=best.label if best else "",
        sustained=bool(anomaly.sustained),
        led=bool(anomaly.led),
    )


def rows_per_hour(health: pl.DataFrame) -> float | None:
    """Serving rows per model and hour from a prediction-health table (model, experiment,
    ts, rows per window): each model's median window, scaled by the windows' width; the
    median over models. None when the table cannot say (no rows, one window)."""
    need = {c.MODEL, c.TS, "rows"}
    if health.is_empty() or not need <= set(health.columns):
        return None
    per = health.group_by(c.MODEL, c.TS).agg(pl.col("rows").sum())
    stamps = per[c.TS].unique().sort()
    if stamps.len() < 2:
        return None
    width = stamps.diff().drop_nulls().median()
    hours = width.total_seconds() / 3600.0 if isinstance(width, timedelta) else 0.0
    if not hours > 0:
        return None
    rows = per.group_by(c.MODEL).agg(pl.col("rows").median())["rows"].median()
    return None if rows is None else float(rows) / hours


def thin_log(rows_per_hour: float | None) -> bool:
    """Whether a log with this many rows per model and hour is thin (None: not measured,
    read as dense)."""
    return rows_per_hour is not None and rows_per_hour < THIN_LOG


def none_knots(rows_per_hour: float | None) -> tuple[tuple[float, float], ...]:
    """The doubt-to-confidence map for a `none` verdict on a log with this many rows per
    model and hour (None: not measured)."""
    return THIN_NONE_KNOTS if thin_log(rows_per_hour) else NONE_KNOTS


def doubt(ev: NoneEvidence) -> float:
    """How strongly the walk's evidence says there WAS an incident (0..1), which a `none`
    verdict leaves unexplained: a noisy-or of the best cause hypothesis' support, a top-line
    step that some model's predictions moved with, and the step on its own at
    `UNEXPLAINED_STEP` weight (a step no model moved with is often a metric's own noise or a
    business change, but not always). Fixed, not fitted: only the map of it onto confidence
    (`NONE_KNOTS`) is fitted, so it stays monotone in every piece of evidence."""
    lead = max(0.0, min(1.0, ev.lead))
    step = max(0.0, min(1.0, ev.anomaly))
    moved = max(0.0, min(1.0, ev.moved))
    return 1.0 - (1.0 - lead) * (1.0 - step * moved) * (1.0 - UNEXPLAINED_STEP * step)


#: the weight of a top-line step that no model's predictions moved with in `doubt`
UNEXPLAINED_STEP = 0.25


def none_confidence(ev: NoneEvidence) -> float:
    """The probability that "no cause found / nothing wrong" is right, given the evidence of
    an incident the walk had (decreasing in every piece of it), read with the map for the
    log's density (`none_knots`: on a thin log, no cause found is weaker)."""
    return max(0.0, min(1.0, _interp(none_knots(ev.rows_per_hour), doubt(ev))))


def none_summary(summary: str, confidence: float, ev: NoneEvidence) -> str:
    """A `none` verdict's summary, worded by its confidence: a low one says that no cause was
    found and names the strongest lead, so nobody reads it as "all clear"; on a thin log it
    also says so, since then the next step is more rows, not another hypothesis."""
    note = wording(confidence)
    if not note:
        return summary
    if note == "low confidence":
        out = f"{note}: no cause found ({summary})" if summary else f"{note}: no cause found"
        if ev.lead_label:
            out += f"; the strongest lead was {ev.lead_label} (support {ev.lead:.2f})"
        elif ev.moved >= 0.5:
            out += f"; the strongest lead was a model's predictions moving with it ({ev.moved:.2f})"
        elif ev.anomaly > 0:
            out += f"; the strongest lead was the top line's step ({ev.severity:.1f} of its spread)"
    else:
        out = f"{note}: {summary}"
    if ev.rows_per_hour is not None and thin_log(ev.rows_per_hour):
        out += (
            f"; the serving log holds about {ev.rows_per_hour:.0f} rows per model and hour, too "
            "few to show a change on a small arm or a few % of rows"
        )
    return out


def _unworded(summary: str) -> str:
    for note in ("low confidence", "moderate confidence"):
        if summary.startswith(f"{note}: "):
            return summary[len(note) + 2 :]
    return summary


def settle_none(inv: Investigation) -> None:
    """Give a finished walk's `none` verdict its confidence (`none_confidence`) and wording,
    and put the evidence behind it on the `none` hypothesis and the verdict finding. A verdict
    that names a cause is left as it is."""
    v = inv.verdict
    if v.cause != "none":
        return
    from .results import HypothesesResult

    ev = none_evidence(inv)
    v.confidence = none_confidence(ev)
    v.summary = none_summary(_unworded(v.summary), v.confidence, ev)
    hyps = inv.get(HypothesesResult)
    weighed = hyps.hypotheses if hyps else []
    for h in weighed:
        if h.cause == "none":
            _argue(h, ev)
    listed = inv.finding("hypotheses")
    if listed is not None and weighed:
        listed.evidence["hypotheses"] = [h.brief() for h in weighed[:6]]
    f = inv.finding("verdict")
    if f is not None:
        f.confidence = v.confidence
        f.decision = f"{v.cause}: {v.summary}"
        f.evidence.update(confidence=round(v.confidence, 3), none_evidence=ev.as_dict())


def _argue(h: Hypothesis, ev: NoneEvidence) -> None:
    """The evidence for and against "nothing the workspace shows" in words."""
    strong = 0.5
    if ev.anomaly >= strong:
        h.evidence_against.append(f"the top line stepped {ev.severity:.1f} of its spread")
    else:
        h.evidence_for.append(f"the top line stepped only {ev.severity:.1f} of its spread")
    if ev.moved >= strong:
        h.evidence_against.append(f"a model's predictions moved with it ({ev.moved:.2f})")
    if ev.lead_label:
        h.evidence_against.append(f"the strongest lead: {ev.lead_label} (support {ev.lead:.2f})")

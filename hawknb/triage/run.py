"""`triage`: walk HawkEye's decision tree from a top-line anomaly to a root cause.

Data flows one way: each phase reads the workspace and the earlier phases' results, runs
kernels, and records findings and typed results. The walk keeps competing hypotheses instead
of following the first plausible branch: several anomaly windows (across all metrics) are
put to model isolation and the one a model explains best is explained; then every cause
(each snapshot rolled out near the onset, a data break, nothing) is scored by the evidence
for and against it, and the best supported one is the verdict, with the runner-up recorded.
When none of the suspect model's causes explains the window, the causes of the next model
whose predictions moved compete too (a canary on another model can sit one rank lower), and
then those of the next window that is another incident (a distractor can move some model's
predictions by chance and still have no cause behind it).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..kernels.health import label_coverage
from ..kernels.isolation import strength
from ..workspace import Workspace, WorkspaceWarning
from ..workspace import contract as c
from . import causes, features, models, snapshot, topline, windows
from .calibration import (
    LABEL_WINDOW,
    blind_note,
    calibrated,
    excused_by_labels,
    settle_none,
    wording,
)
from .diagnosis import Diagnosis
from .findings import Finding, Verdict
from .hypotheses import Hypothesis, hypotheses_finding, ranked
from .investigation import Investigation
from .models import Suspect
from .results import (
    FeaturesResult,
    HypothesesResult,
    LineageResult,
    ModelsResult,
    SnapshotResult,
    ToplineResult,
    WarningsResult,
)
from .topline import Anomaly

T = TypeVar("T")


class _Progress:
    """One line per step on stderr (a tqdm bar over the steps when it is a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=7, desc="triage", unit="step", file=sys.stderr, leave=False)

    def step(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _timed(inv: Investigation, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    items = out if isinstance(out, tuple) else (out,)
    for item in items:
        if isinstance(item, Finding):
            item.seconds = dt
        elif isinstance(item, list):
            for f in item:
                if isinstance(f, Finding):
                    f.seconds = dt / max(1, len(item))
    return out


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def triage(
    workspace: Workspace | str,
    metric: str | None = None,
    start: datetime | None = None,
    *,
    end: datetime | None = None,
    progress: bool = True,
) -> Investigation:
    """Walk the decision tree on a workspace and return the `Investigation`.

    ``metric`` restricts the walk to one top-line metric; ``start`` (a time inside the anomaly)
    picks the window to explain; ``end`` (e.g. of a brushed window) bounds it when no detected
    anomaly contains ``start``. Without them the most severe top-line anomaly is explained.
    Steps whose inputs are missing are skipped with a finding that says so.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    inv = Investigation(workspace=ws)
    bar = _Progress(progress)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WorkspaceWarning)
            ws.validate()
        inv.record(WarningsResult([str(w.message) for w in caught]))
        _walk(ws, inv, metric, _utc(start), bar, _utc(end))
        settle_none(inv)  # a `none` verdict's confidence: that nothing is wrong
    finally:
        bar.close()
    _cite_serving_source(inv, ws)
    return inv


#: steps that read serving rows or aggregates (the log, or a profile in its place)
_SERVING_STEPS = ("models", "snapshot", "features", "activations", "training")


def _cite_serving_source(inv: Investigation, ws: Workspace) -> None:
    """Every step that read serving data says what it read: the full log or a profile."""
    for f in inv.findings:
        if f.step in _SERVING_STEPS and f.status != "skipped":
            f.evidence.setdefault("serving", ws.serving_source)


def _walk(
    ws: Workspace,
    inv: Investigation,
    metric: str | None,
    start: datetime | None,
    bar: _Progress,
    end: datetime | None = None,
) -> None:
    v = inv.verdict
    anomaly, f, results, series = _timed(inv, lambda: topline.find_anomaly(ws, metric, start, end))
    inv.findings.append(f)
    top = ToplineResult(series, results, anomaly)
    inv.record(top)
    bar.step("top line")
    if anomaly is None:
        v.summary = "no top-line anomaly"
        v.confidence = 0.0
        return
    # the models may point at other windows only when no metric or time was asked for
    asked = metric is not None or start is not None
    t0 = time.perf_counter()
    reads: dict = {}  # the walk's reads of the log, shared by the window weighing and later steps
    choices = _pick_window(inv, ws, f, anomaly, top, asked, reads)
    # weighing the windows is the models step (the model behind each candidate window): its
    # time is the models finding's (a list of choices carries no finding for `_timed`)
    choices[0].finding.seconds = time.perf_counter() - t0
    choice = choices[0]
    anomaly, suspect = choice.anomaly, choice.suspect
    v.metric, v.onset = anomaly.metric, anomaly.onset
    bar.step("models")
    if suspect is None:
        v.summary = f"{anomaly.metric} moved, but no model's predictions moved with it"
        v.confidence = max(0.0, min(0.3, choice.isolation.confidence))
        return
    hyps = _model_hypotheses(ws, inv, anomaly, suspect, bar)
    side = _runner_up(ws, anomaly, choice, hyps, reads)
    hyps += side.get(HypothesesResult).hypotheses if side is not None else []
    _window_doubt(hyps, choice)
    hyps = ranked(hyps)
    if side is not None and any(h is hyps[0] for h in side.get(HypothesesResult).hypotheses):
        _adopt(inv, side, suspect)
    other = None if asked else _next_window(ws, choices, hyps)
    if other is not None:
        nxt, walked, theirs = other
        merged = ranked(hyps + theirs)
        if merged[0].cause != "none" and any(h is merged[0] for h in theirs):
            _adopt_window(inv, top, nxt, walked, choices[0])
            v.metric, v.onset = nxt.anomaly.metric, nxt.anomaly.onset
            hyps = merged
    _conclude(inv, hyps, [w.brief() for w in choices])


def _model_hypotheses(
    ws: Workspace, inv: Investigation, anomaly: Anomaly, suspect: Suspect, bar: _Progress
) -> list[Hypothesis]:
    """Every cause one suspect model can have: each recent snapshot, and a data break."""
    hyps = _snapshot_hypotheses(ws, inv, anomaly, suspect, bar)
    hyps.append(_data_hypothesis(ws, inv, anomaly, suspect, bar))
    return hyps


def _runner_up(
    ws: Workspace,
    anomaly: Anomaly,
    choice: windows.WindowChoice,
    hyps: list[Hypothesis],
    reads: dict | None = None,
) -> Investigation | None:
    """When nothing about the suspect model explains the window (its best cause is `none`),
    the next model whose predictions moved (else the model of a rollout at the onset whose
    rows clearly differ, `windows.rollout_suspect`) is a competing suspect: its causes are weighed
    too, walked in a side investigation (its findings and results, which replace the main
    walk's when one of its causes wins), with its hypotheses recorded as its result."""
    suspect = choice.suspect
    if suspect is None or ranked(hyps)[0].cause != "none":
        return None
    alt = models.runner_up(choice.isolation, suspect) or windows.rollout_suspect(
        ws, anomaly, suspect, reads
    )
    if alt is None:
        return None
    side = Investigation(workspace=ws)
    side.record(HypothesesResult(_model_hypotheses(ws, side, anomaly, alt, _Progress(False))))
    side.record(ModelsResult(choice.health, choice.isolation, alt))
    return side


def _adopt(inv: Investigation, side: Investigation, first: Suspect) -> None:
    """The runner-up model's cause won: its step findings and results replace the first
    suspect's, and the models finding says the first suspect's causes explained nothing."""
    steps = {f.step for f in side.findings}
    inv.findings[:] = [f for f in inv.findings if f.step not in steps]
    inv.findings.extend(side.findings)
    for kind, result in side.results.items():
        if kind is not HypothesesResult:
            inv.record(result)
    alt = side.get(ModelsResult)
    models_finding = inv.finding("models")
    if alt is not None and alt.suspect is not None and models_finding is not None:
        models_finding.decision += (
            f"; none of {first.model}'s causes explains it, so the next model whose "
            f"predictions moved, {alt.suspect.model}, was examined too"
        )


def _next_window(
    ws: Workspace, choices: list[windows.WindowChoice], hyps: list[Hypothesis]
) -> tuple[windows.WindowChoice, Investigation, list[Hypothesis]] | None:
    """When no cause of the chosen window explains it (its best hypothesis is `none`), the
    next window that is another incident and that a model explains competes: the window
    choice weighs how well a model's predictions moved, but a distractor (another metric, or
    another day) can move some model's predictions by chance and still have no cause behind
    it, while the incident's own window, smaller or only a sustained shift, has one. Its
    causes are walked in a side investigation, their supports scaled by that window's own
    doubt (its share of the windows' scores), so they win only with the evidence to carry
    the weaker window. Not when a metric or time was asked for: the person chose the window."""
    if ranked(hyps)[0].cause != "none":
        return None
    first = choices[0]
    nxt = next(
        (
            w
            for w in choices[1:]
            if w.suspect is not None and windows.distinct(w.anomaly, first.anomaly)
        ),
        None,
    )
    if nxt is None or nxt.suspect is None:
        return None
    side = Investigation(workspace=ws)
    theirs = _model_hypotheses(ws, side, nxt.anomaly, nxt.suspect, _Progress(False))
    _window_doubt(theirs, nxt)
    return nxt, side, theirs


def _adopt_window(
    inv: Investigation,
    top: ToplineResult,
    nxt: windows.WindowChoice,
    side: Investigation,
    first: windows.WindowChoice,
) -> None:
    """The next window's cause won: its top-line, models and later findings and results
    replace the chosen window's, and the top-line finding says why the window changed."""
    steps = {f.step for f in side.findings} | {"topline", "models"}
    kept = [f for f in inv.findings if f.step not in steps]
    spent = {f.step: f.seconds for f in inv.findings if f.step in ("topline", "models")}
    topline_finding = replace(
        nxt.topline,
        decision=(
            f"{nxt.topline.decision}; explained by {nxt.suspect.model if nxt.suspect else '?'}'s "
            f"predictions. Walked after {first.anomaly.metric} at "
            f"{first.anomaly.onset:%Y-%m-%d %H:%M} (the window first chosen, score "
            f"{first.score:.2f} vs {nxt.score:.2f}), whose causes explained nothing"
        ),
        evidence={**nxt.topline.evidence, "first_window": first.brief()},
        seconds=spent.get("topline", 0.0),
    )
    nxt.finding.seconds = spent.get("models", 0.0)  # the windows were weighed together
    inv.findings[:] = [topline_finding, nxt.finding, *kept, *side.findings]
    for kind, result in side.results.items():
        if kind is not HypothesesResult:
            inv.record(result)
    inv.record(ModelsResult(nxt.health, nxt.isolation, nxt.suspect))
    top.anomaly = nxt.anomaly


def _window_doubt(hyps: list[Hypothesis], choice: windows.WindowChoice) -> None:
    """Every cause explains the chosen window only as far as that window is the incident:
    when other windows (other times) are explained nearly as well, the supports shrink by
    the chosen window's share (a near-tie halves them), so the verdict's confidence carries
    the window choice's margin; a window found only as a sustained shift (no row alerted) is
    weaker evidence that there is an incident at all and counts SUSTAINED_WEIGHT as much, as
    it does when the windows are weighed. A window the models led to (led.py) is an incident
    only as far as its metric's own step is beyond noise: the supports also scale by that
    step's strength (0 at 2, 1 at 6 of its history's spreads, as model isolation maps a z),
    so a verdict on a metric that barely moved is worded as the weak lead it is. The ranking
    of causes within the window is unchanged."""
    factor = choice.certainty * (windows.SUSTAINED_WEIGHT if choice.anomaly.sustained else 1.0)
    if choice.anomaly.led:
        factor *= strength(choice.anomaly.severity)
        for h in hyps:
            h.evidence_against.append(
                f"the window was found from a model's health step or input break; "
                f"{choice.anomaly.metric} "
                f"itself stepped only {choice.anomaly.severity:.1f} of its history's spread"
            )
    if factor >= 1.0:
        return
    doubt = (
        f"other times' anomalies are explained nearly as well (this window holds "
        f"{choice.certainty:.0%} of the windows' scores)"
    )
    for h in hyps:
        h.support *= factor
        h.window *= factor
        if choice.certainty < WINDOW_DOUBT:
            h.evidence_against.append(doubt)


#: below this share of the windows' scores the window choice is named as evidence against
WINDOW_DOUBT = 2 / 3


def _pick_window(
    inv: Investigation,
    ws: Workspace,
    f: Finding,
    anomaly: Anomaly,
    top: ToplineResult,
    asked: bool = False,
    reads: dict | None = None,
) -> list[windows.WindowChoice]:
    """Weigh the candidate windows and keep the one a model explains best (``reads``: the
    walk's cache of log reads, kept for the steps after it)."""
    candidates = f.result or [(anomaly, f, float("nan"))]
    led_by = None if asked else top.anomalies
    choices = windows.weigh_windows(ws, candidates, top.series, led_by, reads)
    windows.note_choice(choices)
    best = choices[0]
    best.topline.seconds = f.seconds  # the top-line step's time stays with its finding
    inv.findings[inv.findings.index(f)] = best.topline
    top.anomaly = best.anomaly
    top.candidates = [w.anomaly for w in choices]
    inv.findings.append(best.finding)
    inv.record(ModelsResult(best.health, best.isolation, best.suspect))
    return choices


def _snapshot_hypotheses(
    ws: Workspace, inv: Investigation, anomaly: Anomaly, suspect: Suspect, bar: _Progress
) -> list[Hypothesis]:
    """Isolate the snapshots (same-hours A/B) and diagnose each candidate."""
    rows: dict = {}  # the window's row-level comparison, read once for every snapshot
    iso, f, by_snap = _timed(inv, lambda: snapshot.isolate(ws, anomaly, suspect, rows))
    inv.findings.append(f)
    inv.record(SnapshotResult(iso, by_snap))
    bar.step("snapshot")
    fallback = iso.experiment if iso is not None else suspect.experiment
    out: list[Hypothesis] = []
    for snap in causes.snapshot_candidates(ws, anomaly, suspect, iso):
        h, diag, found = _timed(
            inv,
            lambda snap=snap: causes.snapshot_hypothesis(ws, anomaly, suspect, iso, snap, rows),
        )
        h.experiment = causes.snapshot_experiment(ws, suspect.model, snap, fallback)
        h.diagnosis, h.findings = diag, found
        out.append(h)
    bar.step("snapshot diagnosis")
    return out


def _data_hypothesis(
    ws: Workspace, inv: Investigation, anomaly: Anomaly, suspect: Suspect, bar: _Progress
) -> Hypothesis:
    """Rank the features and walk their lineage: the case for a data break."""
    ranking, f = _timed(inv, lambda: features.rank(ws, suspect.model, anomaly))
    inv.findings.append(f)
    inv.record(FeaturesResult(ranking, suspect.model))
    bar.step("features")
    experiment = suspect.experiment if suspect.experiment_specific else None
    if ranking is None:
        h = causes.none_hypothesis(
            suspect, f"{suspect.model}'s predictions moved but its features cannot be examined", 0.2
        )
        h.experiment = experiment
        return h
    feat_conf = float(ranking.table["confidence"][0]) if ranking.table.height else 0.0
    if suspect.inputs:
        # the model was named by its inputs breaking: that is feature evidence in itself
        feat_conf = max(feat_conf, suspect.confidence)
    walk_from = suspect.inputs or suspect.broken
    result, f = _timed(inv, lambda: features.upstream(ws, ranking, anomaly, walk_from))
    inv.findings.append(f)
    inv.record(LineageResult(result))
    bar.step("lineage")
    # the features are what the walk explains, not causes upstream of them
    inputs = frozenset(ws.feature_columns)
    h = causes.data_hypothesis(suspect, ranking, result, feat_conf, inputs)
    h.experiment = experiment
    return h


def _conclude(inv: Investigation, hyps: list[Hypothesis], weighed: list[dict]) -> None:
    """Write the best supported hypothesis into the verdict, with the runner-up's case."""
    v = inv.verdict
    best = hyps[0]
    best.fill(v)
    labelled = inv.workspace is None or _has_labels(inv.workspace)
    seen = _labels_seen(inv, v, labelled)
    v.confidence = calibrated(best, hyps[1] if len(hyps) > 1 else None, seen)
    v.summary += blind_note(v.cause, excused_by_labels(best.mechanism, seen), labelled)
    note = wording(v.confidence)
    if note:
        v.summary = f"{note}: {v.summary}"
    snaps = [h for h in hyps if h.diagnosis is not None]
    shown = best if best.snapshot else (snaps[0] if snaps else None)
    if shown is not None:
        at = next(i for i, f in enumerate(inv.findings) if f.step == "snapshot") + 1
        inv.findings[at:at] = shown.findings
        if shown is best:
            inv.record(shown.diagnosis)
    inv.record(HypothesesResult(hyps))
    assert v.metric is not None and v.onset is not None
    inv.findings.append(hypotheses_finding(hyps, v.metric, v.onset, weighed))
    inv.findings.append(_verdict_finding(v, hyps, seen))


def _labels_seen(inv: Investigation, v: Verdict, labelled: bool) -> float | None:
    """The share of the verdict model's rows with a label in the LABEL_WINDOW after the onset
    (`kernels.health.label_coverage`); the verdict finding records it. A serving log without a
    label column (``labelled`` False) has seen none (0.0): calibration and NE can move nowhere
    in it, the blind windows' case throughout."""
    if v.onset is None or inv.workspace is None:
        return None
    if not labelled:
        return 0.0
    return label_coverage(inv.workspace.serving, v.model, v.onset, v.onset + LABEL_WINDOW)


def _has_labels(ws: Workspace) -> bool:
    return c.LABEL in ws.serving.collect_schema()


def _verdict_finding(v: Verdict, hyps: list[Hypothesis], labels_seen: float | None) -> Finding:
    evidence = {k: val for k, val in v.to_dict().items() if k != "summary"}
    if labels_seen is not None:
        evidence["labels_seen"] = round(labels_seen, 3)
    if len(hyps) > 1:
        evidence["runner_up"] = hyps[1].brief()
    return Finding(
        "verdict",
        checked="the competing hypotheses of every step walked",
        decision=f"{v.cause}: {v.summary}",
        confidence=v.confidence,
        evidence=evidence,
    )


__all__ = ["Diagnosis", "triage"]

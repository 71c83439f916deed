"""`triage`: walk HawkEye's decision tree from a top-line anomaly to a root cause.

Data flows one way: each step reads the workspace and the previous steps' decisions, runs
kernels, and records a Finding; the verdict is composed from the findings at the end.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import polars as pl

from ..kernels.lineage import UNCHANGED
from ..workspace import Workspace, WorkspaceWarning
from . import diagnosis, features, models, snapshot, topline
from .findings import Finding, Verdict
from .investigation import Investigation
from .results import (
    FeaturesResult,
    LineageResult,
    ModelsResult,
    SnapshotResult,
    ToplineResult,
    WarningsResult,
)

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
    progress: bool = True,
) -> Investigation:
    """Walk the decision tree on a workspace and return the `Investigation`.

    ``metric`` restricts the walk to one top-line metric; ``start`` (a time inside the anomaly)
    picks the window to explain. Without them the most severe top-line anomaly is explained.
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
        _walk(ws, inv, metric, _utc(start), bar)
    finally:
        bar.close()
    return inv


def _walk(
    ws: Workspace,
    inv: Investigation,
    metric: str | None,
    start: datetime | None,
    bar: _Progress,
) -> None:
    v = inv.verdict
    anomaly, f, results, series = _timed(inv, lambda: topline.find_anomaly(ws, metric, start))
    inv.findings.append(f)
    top = ToplineResult(series, results, anomaly)
    inv.record(top)
    bar.step("top line")
    if anomaly is None:
        v.summary = "no top-line anomaly"
        v.confidence = 0.0
        return
    v.metric, v.onset = anomaly.metric, anomaly.onset

    health_cache: dict = {}
    suspect, f, health, iso = _timed(
        inv, lambda: models.isolate_model(ws, anomaly, series, health_cache)
    )
    alternatives = inv.findings[-1].result or []
    if (suspect is None or suspect.confidence < models.CLEAR) and alternatives:
        # no model clearly explains the most sustained window: try the next ones and keep the
        # one whose degradation a model explains best
        for alt, alt_finding in alternatives:
            alt_suspect, alt_f, alt_health, alt_iso = models.isolate_model(
                ws, alt, series, health_cache
            )
            if alt_suspect is not None and alt_suspect.confidence > (
                suspect.confidence if suspect is not None else 0.0
            ):
                alt_finding.decision += (
                    f" (chosen over {anomaly.metric} at {anomaly.onset:%Y-%m-%d %H:%M}, which "
                    "no model's predictions explain as well)"
                )
                inv.findings[-1] = alt_finding
                anomaly, suspect, f, health, iso = alt, alt_suspect, alt_f, alt_health, alt_iso
                top.anomaly = anomaly
        v.metric, v.onset = anomaly.metric, anomaly.onset
    inv.findings.append(f)
    inv.record(ModelsResult(health, iso, suspect))
    bar.step("models")
    if suspect is None:
        v.summary = f"{anomaly.metric} moved, but no model's predictions moved with it"
        v.confidence = max(0.0, min(0.3, iso.confidence))
        return
    v.model = suspect.model
    v.experiment = suspect.experiment if suspect.experiment_specific else None

    iso_snap, f, by_snap = _timed(inv, lambda: snapshot.isolate(ws, anomaly, suspect))
    inv.findings.append(f)
    inv.record(SnapshotResult(iso_snap, by_snap))
    bar.step("snapshot")

    if iso_snap is not None and iso_snap.is_snapshot_cause and iso_snap.suspect:
        _snapshot_branch(ws, inv, anomaly, suspect, iso_snap, bar)
    else:
        _data_branch(ws, inv, anomaly, suspect, bar)


def _snapshot_branch(ws, inv, anomaly, suspect, iso_snap, bar) -> None:
    v = inv.verdict
    snap = iso_snap.suspect
    v.snapshot = snap
    v.experiment = _snapshot_experiment(ws, suspect.model, snap, iso_snap.experiment)
    diag, found = _timed(
        inv, lambda: diagnosis.diagnose_snapshot(ws, suspect.model, snap, anomaly.onset)
    )
    inv.findings.extend(found)
    inv.record(diag)
    bar.step("snapshot diagnosis")
    base = min(1.0, 0.5 + 0.5 * iso_snap.confidence) * min(1.0, 0.5 + 0.5 * suspect.confidence)
    fault, weights, training = diag.fault, diag.weights, diag.training
    if fault is not None:
        v.cause = "bad_snapshot"
        v.layer = fault.layer
        v.features = [d.feature for d in fault.driving_features]
        v.confidence = base * 0.95
        v.summary = (
            f"snapshot {snap} of {suspect.model} produces {fault.kind} activations at "
            f"{fault.layer or fault.node}"
        )
    elif training is not None and training.verdict and not training.volume_only:
        v.cause = "training_data"
        v.confidence = base * max(0.6, training.confidence)
        v.summary = f"snapshot {snap} of {suspect.model} was trained on anomalous data: " + (
            "; ".join(training.reasons[:2])
        )
    elif weights is not None and weights.suspect and weights.suspect_layers:
        # before row-count-only training evidence: fewer rows of the same data do not explain
        # a layer that changed far more than its usual snapshot-to-snapshot drift
        v.cause = "bad_snapshot"
        v.layer = weights.suspect_layers[0].layer
        v.confidence = base * 0.85
        v.summary = f"snapshot {snap} of {suspect.model} has corrupted weights in {v.layer}"
    elif training is not None and training.verdict:
        v.cause = "training_data"
        v.confidence = base * min(0.6, training.confidence)
        v.summary = f"snapshot {snap} of {suspect.model} was trained on unusual data volumes: " + (
            "; ".join(training.reasons[:2])
        )
    else:
        v.cause = "bad_snapshot"
        v.confidence = base * 0.5
        v.summary = (
            f"snapshot {snap} of {suspect.model} predicts worse than its predecessor in the "
            "same hours; neither its weights nor its training data show why"
        )
    inv.findings.append(_verdict_finding(v))


def _snapshot_experiment(ws: Workspace, model: str, snap: str, fallback: str) -> str | None:
    """The experiment a culprit snapshot served; None when it served every experiment."""
    exps = snapshot.served_experiments(ws, model, snapshot=snap)
    if len(exps) == 1:
        return exps[0]
    if exps and set(exps) == set(snapshot.served_experiments(ws, model)):
        return None
    return fallback


def _data_branch(ws, inv, anomaly, suspect, bar) -> None:
    v = inv.verdict
    ranking, f = _timed(inv, lambda: features.rank(ws, suspect.model, anomaly))
    inv.findings.append(f)
    inv.record(FeaturesResult(ranking, suspect.model))
    bar.step("features")
    if ranking is None:
        v.cause = "none"
        v.confidence = 0.2
        v.summary = f"{suspect.model}'s predictions moved but its features cannot be examined"
        inv.findings.append(_verdict_finding(v))
        return
    v.features = ranking.top(10)
    feat_conf = float(ranking.table["confidence"][0]) if ranking.table.height else 0.0
    result, f = _timed(inv, lambda: features.upstream(ws, ranking, anomaly))
    inv.findings.append(f)
    inv.record(LineageResult(result))
    bar.step("lineage")
    if result is not None and result.top is not None:
        v.upstream = [cand.node for cand in result.candidates if cand.is_root] or [result.top.node]
        rest = [cand.node for cand in result.candidates if cand.node not in v.upstream]
        v.upstream += rest
        v.features = _features_of_root(ranking, result)
    v.confidence = suspect.confidence * (0.5 + 0.5 * feat_conf) * _lineage_support(result)
    if feat_conf < _FEATURE_EVIDENCE and not v.upstream:
        # the model moved, but nothing examined explains it: say so, and do not list features
        # that explain nothing as if they were the culprits (the ranking stays in its finding)
        v.cause = "none"
        v.features = []
        v.confidence = min(v.confidence, 0.25)
        v.summary = (
            f"{suspect.model}'s predictions moved at the onset, but no input feature or upstream "
            "node explains it"
        )
        inv.findings.append(_verdict_finding(v))
        return
    v.cause = "upstream_data"
    v.summary = (
        f"{suspect.model}'s input features changed at the onset"
        + (f" ({', '.join(v.features[:3])})" if v.features else "")
        + (f", caused upstream by {v.upstream[0]}" if v.upstream else "")
    )
    inv.findings.append(_verdict_finding(v))


#: below this confidence of the top feature, no feature explains the prediction shift
_FEATURE_EVIDENCE = 0.2


def _lineage_support(result: Any) -> float:
    """How much the lineage walk supports an upstream data break (a confidence factor).

    Without lineage (or without statistics on the features' ancestors) it neither supports
    nor refutes one. Ancestors that have statistics and did *not* change at the onset are
    evidence against: a real upstream break shows somewhere upstream.
    """
    if result is None:
        return 0.8
    if result.top is not None:
        return 0.6 + 0.4 * result.confidence
    checked = any(state == UNCHANGED for state in result.status.values())
    return 0.4 if checked else 0.8


#: a feature moved (population stability index) when promoted for sitting under the root
_MOVED_PSI = 0.05


def _features_of_root(ranking: Any, result: Any) -> list[str]:
    """The ranked features, those downstream of the lineage root that moved first: the root
    explains them, while a feature that drifted elsewhere at the same time is a bystander."""
    table = ranking.table
    order = table["feature"].to_list()
    radius = set(result.blast_radius.nodes) if result.blast_radius else set()
    moved = set(
        table.filter(
            (pl.col("confidence") > 0) | (pl.col("drift_psi").fill_nan(0.0) >= _MOVED_PSI)
        )["feature"].to_list()
    )
    under = [f for f in order if f in radius and f in moved]
    return (under + [f for f in order if f not in under])[:10]


def _verdict_finding(v: Verdict) -> Finding:
    return Finding(
        "verdict",
        checked="the findings of every step walked",
        decision=f"{v.cause}: {v.summary}",
        confidence=v.confidence,
        evidence={k: val for k, val in v.to_dict().items() if k != "summary"},
    )

"""Steps 5 and 6: diagnose a suspect snapshot (weights, activations) and its training data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..engine import collect
from ..kernels.activation_drivers import (
    MIN_ROWS,
    DriverFeature,
    OutlierRows,
    find_outlier_rows,
    rank_drivers,
    row_magnitudes,
)
from ..kernels.activations import ActivationTrace, GraphFault, find_first_anomaly, trace_activations
from ..kernels.graph import NotAvailableForFormat
from ..kernels.training import TrainingDiagnosis, diagnose_training
from ..kernels.weights import RATIO_THRESHOLD, WeightComparison, compare_weights
from ..workspace import Workspace, WorkspaceError
from ..workspace import contract as c
from .findings import Finding

#: rows of recent serving traffic replayed through the suspect snapshot
TRACE_ROWS = 4096
#: stable predecessors the weights are compared with
STABLE_SNAPSHOTS = 4


@dataclass
class Diagnosis:
    weights: WeightComparison | None = None
    trace: ActivationTrace | None = None
    fault: GraphFault | None = None
    training: TrainingDiagnosis | None = None
    #: a partial blow-up (a minority of rows far above the rest, or above the previous
    #: snapshot on the same rows) when no NaN/inf/extreme value shows, and its trigger features
    blowup: OutlierRows | None = None
    drivers: tuple[DriverFeature, ...] = ()
    #: the last layer with parameters at or before the blow-up node (topological order): the
    #: layer that feeds a parameter-free node (an activation function) where rows blow up
    blowup_layer: str | None = None
    #: the snapshot it was compared with
    reference: str | None = None
    #: whether the fault or blow-up also shows on inputs from before the onset (None: unknown)
    reproduces: bool | None = None

    #: whether the fault sits at the model input (bad features, not a bad snapshot)
    @property
    def fault_at_input(self) -> bool:
        return (
            self.fault is not None
            and self.trace is not None
            and self.fault.node == self.trace.input_node
        )

    @property
    def driver_names(self) -> list[str]:
        """The input features behind the bad activations, strongest first."""
        if self.fault is not None:
            return [d.feature for d in self.fault.driving_features]
        return [d.feature for d in self.drivers if d.score >= DRIVER_SCORE][:5]


#: a feature whose values separate the bad rows from the healthy ones this well (2|AUC-0.5|)
#: is named as a trigger
DRIVER_SCORE = 0.5


def snapshot_order(ws: Workspace, model: str) -> list[str]:
    """The model's snapshots, oldest first: by published_ts, else by first rollout, else by the
    first serving row."""
    if ws.has("snapshots"):
        t = ws.table("snapshots").filter(pl.col(c.MODEL) == model)
        first = t.group_by(c.SNAPSHOT).agg(pl.col(c.PUBLISHED_TS).min().alias("first"))
    elif ws.has("rollouts"):
        t = ws.table("rollouts").filter((pl.col(c.MODEL) == model) & (pl.col(c.TRAFFIC) > 0))
        first = t.group_by(c.SNAPSHOT).agg(pl.col(c.TS).min().alias("first"))
    else:
        t = ws.serving.filter(pl.col(c.MODEL) == model)
        first = t.group_by(c.SNAPSHOT).agg(pl.col(c.TS).min().alias("first"))
    return collect(first.sort("first", c.SNAPSHOT))[c.SNAPSHOT].to_list()


def served_before(ws: Workspace, model: str, snapshot: str) -> set[str]:
    """The snapshots that served the experiments ``snapshot`` serves before it first served:
    the ones it replaced (empty when it served from the log's start)."""
    return _replaced(_first_served(ws, model), snapshot)


def siblings(ws: Workspace, model: str, snapshot: str) -> set[str]:
    """Snapshots first served after the newest one that ``snapshot`` replaced, which it did
    not replace: rolled out beside it (on other arms), not before it."""
    first = _first_served(ws, model)
    replaced = _replaced(first, snapshot)
    if not replaced:
        return set()
    by_snap = first.group_by(c.SNAPSHOT).agg(pl.col("first").min())
    starts = dict(zip(by_snap[c.SNAPSHOT].to_list(), by_snap["first"].to_list(), strict=True))
    since = max(starts[s] for s in replaced if s in starts)
    return {s for s, t in starts.items() if t > since and s != snapshot and s not in replaced}


def _first_served(ws: Workspace, model: str) -> pl.DataFrame:
    """When each snapshot of the model first served each experiment: one pass over the log
    answers both which snapshots one replaced and which were rolled out beside it."""
    return collect(
        ws.serving.filter(pl.col(c.MODEL) == model)
        .group_by(c.SNAPSHOT, c.EXPERIMENT)
        .agg(pl.col(c.TS).min().alias("first"))
    )


def _replaced(first: pl.DataFrame, snapshot: str) -> set[str]:
    """The snapshots that served ``snapshot``'s experiments before it first served."""
    mine = first.filter(pl.col(c.SNAPSHOT) == snapshot)
    start = mine["first"].min()
    if mine.height == 0 or start is None:
        return set()
    arms = mine[c.EXPERIMENT].unique().to_list()
    prior = first.filter(
        pl.col(c.EXPERIMENT).is_in(arms)
        & (pl.col("first") < start)
        & (pl.col(c.SNAPSHOT) != snapshot)
    )
    return set(prior[c.SNAPSHOT].to_list())


def _features_of(ws: Workspace, model: str) -> list[str]:
    return ws.features(model)


def recent_inputs(
    ws: Workspace, model: str, snapshot: str, since: datetime, features: list[str]
) -> np.ndarray:
    """Serving rows the snapshot answered after ``since`` (a deterministic sample)."""
    mine = (pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snapshot)
    rows = collect(ws.serving.filter(mine & (pl.col(c.TS) >= since)).select(c.TS, *features))
    if rows.height == 0:
        rows = collect(ws.serving.filter(mine).select(c.TS, *features).top_k(TRACE_ROWS, by=c.TS))
    return _sample(rows, features)


def earlier_inputs(ws: Workspace, model: str, until: datetime, features: list[str]) -> np.ndarray:
    """Serving rows of ``model`` (any snapshot) from before ``until``: the inputs the model
    saw while healthy (a deterministic sample of the most recent ones)."""
    rows = collect(
        ws.serving.filter((pl.col(c.MODEL) == model) & (pl.col(c.TS) < until))
        .select(c.TS, *features)
        .top_k(4 * TRACE_ROWS, by=c.TS)
    )
    return _sample(rows, features)


def _sample(rows: pl.DataFrame, features: list[str]) -> np.ndarray:
    """At most TRACE_ROWS of ``rows`` as float32 inputs, the same ones whatever order the log
    lists them in.

    Why: a sample by position picks other rows when a pipeline writes the same log in another
    order (by model, reversed, another engine's partitions), and the traced activations, the
    bad rows and the features named as their trigger would change with it. Rows are put in time
    order (then by value) first; the most recent ones are picked by time, not by position."""
    rows = rows.sort([c.TS, *features], nulls_last=True, maintain_order=True)
    if rows.height > TRACE_ROWS:
        rows = rows.sample(TRACE_ROWS, seed=0)
    return rows.select(pl.col(features).cast(pl.Float32)).to_numpy()


def _reproduces(
    ws: Workspace, model: str, program: Any, onset: datetime, features: list[str], diag: Diagnosis
) -> bool | None:
    """Whether the fault or blow-up also shows when the snapshot is replayed on inputs from
    before the onset: then it is the snapshot's own (it breaks on ordinary traffic), not new
    inputs that any snapshot would choke on. None when there are no earlier rows."""
    x = earlier_inputs(ws, model, onset, features)
    if x.shape[0] < 32:
        return None
    try:
        if diag.fault is not None:
            fault = find_first_anomaly(trace_activations(program, x, feature_names=features))
            return fault is not None and fault.node == diag.fault.node
        if diag.blowup is not None:
            ref = ws.load_program(model, diag.reference) if diag.reference else None
            again = find_outlier_rows(
                row_magnitudes(program, x), row_magnitudes(ref, x) if ref is not None else None
            )
            return again is not None and again.bad_fraction >= 0.3 * diag.blowup.bad_fraction
    except (WorkspaceError, ValueError, RuntimeError):
        return None
    return None


def diagnose_snapshot(
    ws: Workspace, model: str, snapshot: str, onset: datetime
) -> tuple[Diagnosis, list[Finding]]:
    """The suspect snapshot's weights against its predecessors, its activations replayed on
    the rows it served, then its training data: one finding per step (skipped or failed steps
    say why), the typed results in the returned `Diagnosis`."""
    diag = Diagnosis()
    findings: list[Finding] = []
    available = {s for _, s in ws.programs(model)}
    program = _load_suspect(ws, model, snapshot, available, findings)
    if program is not None:
        order = snapshot_order(ws, model)
        before = [s for s in order if s != snapshot and s in available]
        if snapshot in order:
            before = [s for s in order[: order.index(snapshot)] if s in available]
        # a snapshot published just before this one may be a sibling rolled out on another arm
        # at the same hour (or the broken one itself): no baseline for this one
        others = siblings(ws, model, snapshot)
        before = [s for s in before if s not in others] or before
        findings.append(_weights_step(ws, model, snapshot, program, before, diag))
        findings.extend(_activations_step(ws, model, snapshot, program, before, onset, diag))
    findings.append(_training(ws, model, snapshot, onset, diag))
    return diag, findings


def _load_suspect(
    ws: Workspace, model: str, snapshot: str, available: set[str], findings: list[Finding]
) -> Any:
    """The snapshot's program, or None with a finding that says why it cannot be examined."""
    checked = f"the exported program of {model}/{snapshot}"
    if snapshot not in available:
        findings.append(
            Finding(
                "weights",
                checked=checked,
                decision="skipped: the workspace has no program for this snapshot",
                status="skipped",
                next_step="training",
            )
        )
        return None
    try:
        return ws.load_program(model, snapshot)
    except WorkspaceError as exc:
        findings.append(
            Finding(
                "weights",
                checked=checked,
                decision=f"the snapshot does not load: {exc}",
                status="failed",
                confidence=0.9,
                evidence={"error": str(exc)},
                next_step="training",
            )
        )
        return None


def _weights_step(
    ws: Workspace, model: str, snapshot: str, program: Any, before: list[str], diag: Diagnosis
) -> Finding:
    """Compare the snapshot's tensors with the last few snapshots before it."""
    stable = before[-STABLE_SNAPSHOTS:]
    why = "skipped: no earlier snapshot with a program to compare with"
    try:  # an ONNX snapshot without weight tensors cannot be compared: a skipped step
        states = [ws.load_program(model, s) for s in stable]
        diag.weights = compare_weights(program, states) if stable else None
    except NotAvailableForFormat as exc:
        stable, why = [], f"skipped: {exc}"
    if not stable or diag.weights is None:
        return Finding(
            "weights",
            checked=f"{snapshot}'s tensors",
            decision=why,
            status="skipped",
            next_step="activations",
        )
    top = diag.weights.suspect_layers[:3]
    suspect = diag.weights.suspect and bool(top)
    return Finding(
        "weights",
        checked=f"{snapshot}'s tensors against {len(stable)} earlier snapshot(s) "
        f"({', '.join(stable)})",
        decision=f"layer {top[0].layer} changed unusually: {top[0].reason}"
        if suspect
        else "no tensor changed more than the usual snapshot-to-snapshot drift",
        confidence=weights_confidence(top[0].score) if suspect else 0.2,
        evidence={
            "suspect_layers": [
                {"layer": s.layer, "score": s.score, "reason": s.reason} for s in top
            ]
        },
        next_step="activations",
        result=diag.weights,
    )


def _activations_step(
    ws: Workspace,
    model: str,
    snapshot: str,
    program: Any,
    before: list[str],
    onset: datetime,
    diag: Diagnosis,
) -> list[Finding]:
    """Replay the snapshot on the rows it served with activation capture: the first
    non-finite or extreme node (or a blow-up on a minority of rows), and whether the fault
    reproduces on earlier inputs."""
    features = _features_of(ws, model)
    x = recent_inputs(ws, model, snapshot, onset, features)
    if x.shape[0] == 0:
        return [
            Finding(
                "activations",
                checked=f"{snapshot} on recent serving rows",
                decision="skipped: the snapshot served no rows",
                status="skipped",
            )
        ]
    try:
        diag.trace = trace_activations(program, x, feature_names=features)
        diag.fault = find_first_anomaly(diag.trace)
    except NotAvailableForFormat as exc:  # e.g. ONNX: no graph to replay, not a fault
        return [Finding("activations", snapshot, f"skipped: {exc}", "skipped")]
    except Exception as exc:  # a program that fails to run is itself a finding
        return [
            Finding(
                "activations",
                checked=f"{snapshot} replayed on {x.shape[0]} serving rows",
                decision=f"the snapshot fails to run: {exc}",
                status="failed",
                confidence=0.9,
            )
        ]
    if diag.fault is None:
        _partial_blowup(ws, model, program, x, features, before, diag)
    if diag.fault is not None or diag.blowup is not None:
        diag.reproduces = _reproduces(ws, model, program, onset, features, diag)
    return [_activation_finding(snapshot, x.shape[0], diag)]


def _activation_finding(snapshot: str, n_rows: int, diag: Diagnosis) -> Finding:
    """The activations step's finding: a NaN/inf/extreme fault, a partial blow-up, or neither."""
    assert diag.trace is not None
    checked = (
        f"{snapshot} replayed node by node on {n_rows} recent serving rows "
        f"({len(diag.trace.nodes)} graph nodes)"
    )
    f, b = diag.fault, diag.blowup
    drivers = diag.driver_names
    if f is not None:
        decision = (
            f"{f.kind} values first appear at node {f.node} (layer {f.layer}) on "
            f"{f.bad_row_fraction:.0%} of rows"
            + (f", driven by {', '.join(drivers[:3])}" if drivers else "")
            + f"; {f.output_nonfinite_fraction:.0%} of outputs are NaN/inf"
        )
        conf, node, layer, kind, share = 0.9, f.node, f.layer, f.kind, f.bad_row_fraction
    elif b is not None:
        trig = ", ".join(
            f"{d.feature} {'>' if d.direction > 0 else '<'} {d.threshold:.3g}"
            for d in diag.drivers[:3]
            if d.score >= DRIVER_SCORE
        )
        first = (
            f"every row first blows up at node {b.whole_node} (layer {b.whole_layer}); "
            if b.whole_node and b.whole_node != b.node
            else ""
        )
        decision = (
            first + f"{b.bad_fraction:.1%} of rows blow up at node {b.node} (layer {b.layer}): "
            f"{b.ratio:.3g}x the {b.reference}"
            + (f" ({diag.reference})" if diag.reference and b.reference != "healthy rows" else "")
            + (
                f"; triggered when {trig}"
                if trig
                else "; every row alike (the whole node)"
                if b.bad_fraction > 0.5
                else "; no input feature separates those rows"
            )
        )
        conf, node, kind, share = 0.8, b.node, "partial", b.bad_fraction
        layer = b.whole_layer or b.layer
    else:
        decision = "no NaN, inf, extreme or partial blow-up anywhere in the graph"
        conf, node, layer, kind, share = 0.2, None, None, None, 0.0
    return Finding(
        "activations",
        checked=checked,
        decision=decision,
        confidence=conf,
        evidence={
            "node": node,
            "layer": layer,
            "kind": kind,
            "driving_features": drivers,
            "bad_row_fraction": share,
        },
        next_step="training",
        result=diag.trace,
    )


def _partial_blowup(
    ws: Workspace,
    model: str,
    program: Any,
    x: np.ndarray,
    features: list[str],
    before: list[str],
    diag: Diagnosis,
) -> None:
    """Look for a minority of rows that blow up (no absolute cut-off), measured against the
    previous snapshot on the same rows when it has a program, and name their trigger features
    (a whole-node blow-up from fewer rows: `find_outlier_rows`)."""
    if x.shape[0] < MIN_ROWS:
        return
    try:
        current = row_magnitudes(program, x)
        reference = None
        if before:
            diag.reference = before[-1]
            reference = row_magnitudes(ws.load_program(model, before[-1]), x)
    except (WorkspaceError, ValueError, RuntimeError, NotAvailableForFormat):
        return  # (an ONNX snapshot has no torch graph to replay row by row)
    diag.blowup = find_outlier_rows(current, reference)
    if diag.blowup is not None:
        diag.drivers = rank_drivers(np.nan_to_num(x), diag.blowup.bad, features)
        at = current.nodes.index(diag.blowup.node) if diag.blowup.node in current.nodes else -1
        diag.blowup_layer = next((lay for lay in reversed(current.layers[: at + 1]) if lay), None)


def weights_confidence(score: float) -> float:
    """A layer's suspicion score (its change over its usual change, inf for NaN/inf weights)
    as a confidence: 0.5 at the suspicion threshold, approaching 0.99 as the change grows."""
    if not score > 0:
        return 0.2
    return 0.5 + 0.49 * (1.0 - min(1.0, RATIO_THRESHOLD / score))


def _training(
    ws: Workspace, model: str, snapshot: str, onset: datetime, diag: Diagnosis
) -> Finding:
    missing = [f"{t}.parquet" for t in ("training", "snapshots") if not ws.has(t)]
    if missing:
        return Finding(
            "training",
            checked="training partitions of the snapshot",
            decision=f"skipped: the workspace has no {' and no '.join(missing)}",
            status="skipped",
        )
    meta = collect(
        ws.table("snapshots").filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snapshot))
    )
    if meta.height == 0:
        return Finding(
            "training",
            checked="training partitions of the snapshot",
            decision=f"skipped: {snapshot} is not in snapshots.parquet",
            status="skipped",
        )
    row = meta.row(0, named=True)
    # exact from a profile's label sums too, not only from the full log
    serving_mean = ws.label_mean(model, before=onset)
    curves = ws.table("training_curves") if ws.has("training_curves") else None
    try:
        diag.training = diagnose_training(
            ws.table("training"),
            curves,
            model=model,
            snapshot=snapshot,
            train_start=row[c.TRAIN_START],
            train_end=row[c.TRAIN_END],
            serving_label_mean=serving_mean,
        )
    except (ValueError, WorkspaceError) as exc:
        return Finding(
            "training",
            checked="training partitions of the snapshot",
            decision=f"skipped: {exc}",
            status="skipped",
        )
    t = diag.training
    return Finding(
        "training",
        checked=f"{len(t.partitions)} training partitions of {snapshot} "
        f"({row[c.TRAIN_START]:%Y-%m-%d} .. {row[c.TRAIN_END]:%Y-%m-%d}) against earlier ones"
        + (" and its loss curve" if curves is not None else ""),
        decision=("; ".join(t.reasons[:3]) or "training data looks like earlier partitions")
        + (" (row counts only: labels and loss look usual)" if t.volume_only else "")
        if t.verdict
        else "training data looks like earlier partitions",
        confidence=t.confidence,
        evidence={
            "anomalous_partitions": list(t.anomalous_partitions),
            "label_shift_z": t.label_shift.robust_z if t.label_shift else None,
            "reasons": list(t.reasons),
            "volume_only": t.volume_only,
        },
        result=t,
    )

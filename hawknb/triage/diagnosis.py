"""Steps 5 and 6: diagnose a suspect snapshot (weights, activations) and its training data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..engine import collect
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


def _features_of(ws: Workspace, model: str) -> list[str]:
    return ws.features(model)


def recent_inputs(
    ws: Workspace, model: str, snapshot: str, since: datetime, features: list[str]
) -> np.ndarray:
    """Serving rows the snapshot answered after ``since`` (a deterministic sample)."""
    rows = collect(
        ws.serving.filter(
            (pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snapshot) & (pl.col(c.TS) >= since)
        ).select(features)
    )
    if rows.height == 0:
        rows = collect(
            ws.serving.filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snapshot))
            .select(features)
            .tail(TRACE_ROWS)
        )
    if rows.height > TRACE_ROWS:
        rows = rows.sample(TRACE_ROWS, seed=0)
    return rows.select(pl.all().cast(pl.Float32)).to_numpy()


def diagnose_snapshot(
    ws: Workspace, model: str, snapshot: str, onset: datetime
) -> tuple[Diagnosis, list[Finding]]:
    diag = Diagnosis()
    findings: list[Finding] = []
    # -- weights ------------------------------------------------------------------------------
    available = {s for _, s in ws.programs(model)}
    order = snapshot_order(ws, model)
    program: Any = None
    why = "skipped: no earlier snapshot with a program to compare with"
    if snapshot not in available:
        findings.append(
            Finding(
                "weights",
                checked=f"the exported program of {model}/{snapshot}",
                decision="skipped: the workspace has no program for this snapshot",
                status="skipped",
                next_step="training",
            )
        )
    else:
        try:
            program = ws.load_program(model, snapshot)
        except WorkspaceError as exc:
            findings.append(
                Finding(
                    "weights",
                    checked=f"the exported program of {model}/{snapshot}",
                    decision=f"the snapshot does not load: {exc}",
                    status="failed",
                    confidence=0.9,
                    evidence={"error": str(exc)},
                    next_step="training",
                )
            )
    if program is not None:
        before = [s for s in order if s != snapshot and s in available]
        if snapshot in order:
            before = [s for s in order[: order.index(snapshot)] if s in available]
        stable = before[-STABLE_SNAPSHOTS:]
        try:  # an ONNX snapshot without weight tensors cannot be compared: a skipped step
            states = [ws.load_program(model, s) for s in stable]
            diag.weights = compare_weights(program, states) if stable else None
        except NotAvailableForFormat as exc:
            stable, why = [], f"skipped: {exc}"
        if stable:
            top = diag.weights.suspect_layers[:3]
            decision = (
                f"layer {top[0].layer} changed unusually: {top[0].reason}"
                if diag.weights.suspect and top
                else "no tensor changed more than the usual snapshot-to-snapshot drift"
            )
            findings.append(
                Finding(
                    "weights",
                    checked=f"{snapshot}'s tensors against {len(stable)} earlier snapshot(s) "
                    f"({', '.join(stable)})",
                    decision=decision,
                    confidence=weights_confidence(top[0].score)
                    if diag.weights.suspect and top
                    else 0.2,
                    evidence={
                        "suspect_layers": [
                            {"layer": s.layer, "score": s.score, "reason": s.reason} for s in top
                        ]
                    },
                    next_step="activations",
                    result=diag.weights,
                )
            )
        else:
            findings.append(
                Finding(
                    "weights",
                    checked=f"{snapshot}'s tensors",
                    decision=why,
                    status="skipped",
                    next_step="activations",
                )
            )
        # -- activations --------------------------------------------------------------------
        features = _features_of(ws, model)
        x = recent_inputs(ws, model, snapshot, onset, features)
        if x.shape[0] == 0:
            findings.append(
                Finding(
                    "activations",
                    checked=f"{snapshot} on recent serving rows",
                    decision="skipped: the snapshot served no rows",
                    status="skipped",
                )
            )
        else:
            try:
                diag.trace = trace_activations(program, x, feature_names=features)
                diag.fault = find_first_anomaly(diag.trace)
            except NotAvailableForFormat as exc:  # e.g. ONNX: no graph to replay, not a fault
                findings.append(Finding("activations", snapshot, f"skipped: {exc}", "skipped"))
            except Exception as exc:  # a program that fails to run is itself a finding
                findings.append(
                    Finding(
                        "activations",
                        checked=f"{snapshot} replayed on {x.shape[0]} serving rows",
                        decision=f"the snapshot fails to run: {exc}",
                        status="failed",
                        confidence=0.9,
                    )
                )
            else:
                f = diag.fault
                if f is not None:
                    drivers = [d.feature for d in f.driving_features[:3]]
                    decision = (
                        f"{f.kind} values first appear at node {f.node} (layer {f.layer}) on "
                        f"{f.bad_row_fraction:.0%} of rows"
                        + (f", driven by {', '.join(drivers)}" if drivers else "")
                        + f"; {f.output_nonfinite_fraction:.0%} of outputs are NaN/inf"
                    )
                    conf = 0.9
                else:
                    decision = "no NaN, inf or extreme activation anywhere in the graph"
                    conf = 0.2
                findings.append(
                    Finding(
                        "activations",
                        checked=f"{snapshot} replayed node by node on {x.shape[0]} recent "
                        f"serving rows ({len(diag.trace.nodes)} graph nodes)",
                        decision=decision,
                        confidence=conf,
                        evidence={
                            "node": f.node if f else None,
                            "layer": f.layer if f else None,
                            "kind": f.kind if f else None,
                            "driving_features": [d.feature for d in f.driving_features]
                            if f
                            else [],
                            "bad_row_fraction": f.bad_row_fraction if f else 0.0,
                        },
                        next_step="training",
                        result=diag.trace,
                    )
                )
    # -- training data ------------------------------------------------------------------------
    findings.append(_training(ws, model, snapshot, onset, diag))
    return diag, findings


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
    labels = collect(
        ws.serving.filter((pl.col(c.MODEL) == model) & (pl.col(c.TS) < onset)).select(
            pl.col(c.LABEL).mean()
        )
    )
    serving_mean = labels[c.LABEL][0] if c.LABEL in labels.columns else None
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

"""Step 4: the features responsible for the prediction shift, and their upstream root cause."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ..kernels.coverage import input_breaks
from ..kernels.features import FeatureRanking, WindowDrift, rank_features
from ..kernels.lineage import RootCauseResult, root_cause
from ..workspace import Workspace, WorkspaceError
from ..workspace import contract as c
from .findings import Finding
from .topline import Anomaly
from .upstream import MIN_BROKEN, compare_window

#: features handed to the lineage walk as targets
LINEAGE_TARGETS = 5
#: a feature below this ranking confidence is not a lineage target
TARGET_CONFIDENCE = 0.3
#: windows (of upstream.compare_window) before the metric's onset where the inputs' own
#: break is looked for
INPUT_LOOKBACK = 2


def data_onset(ws: Workspace, model: str, features: list[str], anomaly: Anomaly) -> datetime:
    """When the model's inputs broke, if they broke shortly *before* the metric's onset, else
    the metric's onset. Labels that arrive hours late (and the detector's own lag) put a
    label-based metric's onset after the data break; windows anchored there would hold the
    break on both sides, and the ranking and the lineage walk would compare broken with
    broken."""
    window = compare_window(anomaly)
    brk = input_breaks(
        ws.serving, {model: features}, anomaly.onset, window=window, lookback=INPUT_LOOKBACK
    )[0]
    if brk.n_broken >= MIN_BROKEN and brk.start is not None and brk.start < anomaly.onset:
        return brk.start
    return anomaly.onset


def serving_snapshot(ws: Workspace, model: str, anomaly: Anomaly) -> str | None:
    """The snapshot that served most of the model's rows during the anomaly."""
    # counted from the profile's row counts when there is one (its sample is capped per
    # snapshot, so counting sampled rows would tie)
    counts = ws.snapshot_rows(
        model, anomaly.onset, max(anomaly.end, anomaly.onset + timedelta(hours=3))
    )
    return counts[c.SNAPSHOT][0] if counts.height else None


def rank(ws: Workspace, model: str, anomaly: Anomaly) -> tuple[FeatureRanking | None, Finding]:
    features = ws.features(model)
    if not features:
        return None, Finding(
            "features",
            checked=f"{model}'s features",
            decision="skipped: the serving log has no feature columns for this model",
            status="skipped",
        )
    program: Any = None
    snap = serving_snapshot(ws, model, anomaly)
    note = ""
    if snap is not None and (model, snap) in ws.programs(model):
        try:
            program = ws.load_program(model, snap)
        except WorkspaceError as exc:
            note = f" (snapshot {snap} does not load: {exc}; distribution evidence only)"
    elif snap is not None:
        note = f" (no program for {snap}: distribution evidence only)"
    end = max(anomaly.end, anomaly.onset + timedelta(hours=3))
    onset = data_onset(ws, model, features, anomaly)
    if onset < anomaly.onset:
        note += (
            f" (its inputs broke at {onset:%Y-%m-%d %H:%M}, before the metric's onset "
            f"{anomaly.onset:%H:%M}: windows start there)"
        )
    ranking = rank_features(
        ws.serving,
        model=model,
        feature_names=features,
        onset=onset,
        anomaly=(onset, end),
        program=program,
        window_drift=_sketch_drift(ws, model, features),
    )
    table = ranking.table
    top = table.head(5).select("feature", "confidence", "drift_psi", "importance_shift", "evidence")
    sampled = (
        f"; ablation on {ranking.attribution_rows} sampled rows per window "
        f"(top-5 bootstrap stability {ranking.topk_stability:.2f})"
        if ranking.used_program
        else ""
    )
    best = table.row(0, named=True) if table.height else None
    decision = (
        f"{best['feature']} ranks first ({best['evidence']}); walk its upstream lineage"
        if best
        else "no feature explains the prediction shift"
    )
    finding = Finding(
        "features",
        checked=f"{len(features)} features of {model}: drift vs a reference window, "
        f"correlation with the prediction shift ({ranking.method}){sampled}{note}",
        decision=decision,
        confidence=float(best["confidence"]) if best else 0.0,
        evidence={
            "top": top.to_dicts(),
            "method": ranking.method,
            "serving": _sources(ws, ranking),
            "drift_error": ranking.drift_error,
        },
        next_step="lineage",
        result=ranking,
    )
    return ranking, finding


def _sketch_drift(ws: Workspace, model: str, features: list[str]) -> WindowDrift | None:
    """On a profile, the window-level drift comes from its sketches, which saw every row (the
    sample the rows come from is capped per bucket); on the full log the rows have it all."""
    if ws.profile is None:
        return None
    return lambda reference, current: ws.feature_drift(model, features, reference, current)


def _sources(ws: Workspace, ranking: FeatureRanking) -> str:
    """What each part of the ranking read, for the finding's evidence."""
    if ranking.drift_source == "rows":
        return ws.serving_source
    err = ranking.drift_error or {}
    return (
        f"window drift (PSI, KS, W1, null rates) from the KLL sketches of "
        f"{ranking.drift_source} (largest stated error: KS ±{err.get('ks', 0):.3f}, PSI "
        f"±{err.get('psi', 0):.3f}); drift over time, correlation and ablation from its sample rows"
    )


def upstream(
    ws: Workspace, ranking: FeatureRanking, anomaly: Anomaly, broken: Iterable[str] = ()
) -> tuple[RootCauseResult | None, Finding]:
    """Walk the lineage above the features that explain the shift: the ranking's confident
    features, else the ``broken`` inputs that named the model (a break the predictions hid),
    else the ranking's first feature."""
    graph = ws.lineage()
    if graph is None or not ws.has("lineage_stats"):
        missing = "lineage.json" if graph is None else "lineage_stats.parquet"
        return None, Finding(
            "lineage",
            checked="the upstream lineage of the top features",
            decision=f"skipped: the workspace has no {missing}",
            status="skipped",
        )
    table = ranking.table
    strong = table.filter(pl.col("confidence") >= TARGET_CONFIDENCE)["feature"].to_list()
    pick = strong or list(broken) or table["feature"].to_list()[:1]
    targets = [f for f in pick if f in graph][:LINEAGE_TARGETS]
    if not targets:
        return None, Finding(
            "lineage",
            checked="the upstream lineage of the top features",
            decision="skipped: none of the top features is a node of lineage.json",
            status="skipped",
        )
    # the ranking's onset: the inputs' own break when it came before the metric's onset
    result = root_cause(
        graph,
        ws.table("lineage_stats"),
        targets,
        ranking.onset,
        features=ws.feature_columns,
    )
    top = result.top
    roots = [cand for cand in result.candidates if cand.is_root]
    reached: list[str] = []
    if top is None:
        decision = "no upstream node changed at the onset"
    else:
        changed = ", ".join(f"{s.stat} {s.before:.3g}→{s.after:.3g}" for s in top.changed_stats[:2])
        blast = result.blast_radius
        reached = models_reading(ws, blast.features, blast.models) if blast else []
        decision = (
            f"{top.node} ({top.kind or 'node'}) changed at the onset ({changed}) and explains "
            f"{len(top.targets_explained)} of {len(targets)} responsible feature(s)"
            + (
                f"; blast radius: {len(blast.features)} feature(s), {len(reached)} model(s)"
                if blast
                else ""
            )
        )
    finding = Finding(
        "lineage",
        checked=f"ancestors of {', '.join(targets)} in lineage.json, scored by the change of "
        "their statistics at the onset",
        decision=decision,
        confidence=result.confidence,
        evidence={
            "candidates": [
                {"node": r.node, "kind": r.kind, "confidence": r.confidence, "root": r.is_root}
                for r in result.candidates[:6]
            ],
            "roots": [r.node for r in roots[:5]],
            "blast_radius": list(result.blast_radius.nodes) if result.blast_radius else [],
            "blast_radius_models": reached,
        },
        result=result,
    )
    return result, finding


def models_reading(
    ws: Workspace, features: Iterable[str], lineage_models: Iterable[str] = ()
) -> list[str]:
    """The models a changed feature reaches: those that read one of ``features`` as an input
    (the workspace's per-model features), plus any model nodes of the lineage graph itself.

    A lineage graph usually ends at features, so its own model nodes alone would report a
    blast radius of "0 models" while several models read the broken features.
    """
    wanted = set(features)
    reading = {m for m in ws.models() if wanted & set(ws.features(m))}
    return sorted(reading | set(lineage_models))

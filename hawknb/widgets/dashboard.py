"""`investigate`: the linked dashboard over a triage `Investigation`.

The views stay thin: this module turns triage results into their plain-data inputs, and routes
selections back through the triage layer (a brushed window re-runs the walk from it, a picked
model re-ranks that model's features, a picked feature focuses the lineage explorer). Data
flows one way: selection -> triage -> new view inputs -> views.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

import ipywidgets
import polars as pl

from ..triage import Investigation, triage
from ..triage import features as feature_step
from ..triage.diagnosis import Diagnosis
from ..triage.findings import STEPS
from ..triage.results import (
    FeaturesResult,
    HypothesesResult,
    LineageResult,
    ModelsResult,
    SnapshotResult,
    ToplineResult,
)
from ..triage.topline import Anomaly
from ..workspace import Workspace
from ..workspace import contract as c
from ._baseline import baseline_before
from .features import FeatureTable
from .lineage import LineageExplorer
from .modelgraph import ModelGraphTensorViewer
from .navigator import InvestigationNavigator
from .rollouts import RolloutCorrelator, predecessor_pair
from .timeline import AnomalyTimeline


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def timeline_view(inv: Investigation) -> AnomalyTimeline:
    top = inv.get(ToplineResult)
    anomaly: Anomaly | None = top.anomaly if top else None
    results = top.anomalies if top else {}
    series: pl.DataFrame = top.series if top else pl.DataFrame()
    name = anomaly.metric if anomaly else (next(iter(results), None))
    if name is None or name not in results:
        empty = pl.DataFrame(schema={c.TS: pl.Datetime("us", "UTC"), c.VALUE: pl.Float64})
        view = AnomalyTimeline(empty, title="Top-line metric")
        view.empty_reason = "the workspace has no top-line metric with enough points"
        return view
    res = results[name]
    frame = res.baseline if not res.baseline.is_empty() else series.filter(pl.col(c.METRIC) == name)
    if anomaly is not None and anomaly.metric == name and not res.baseline.is_empty():
        frame = baseline_before(frame, anomaly.onset, res.period)  # the band is the expectation
    cols = [col for col in (c.TS, c.VALUE, "baseline", "lower", "upper") if col in frame.columns]
    rollouts = None
    ws = inv.workspace
    if ws is not None and ws.has("rollouts"):
        rollouts = ws.table("rollouts")
        if inv.verdict.model:
            rollouts = rollouts.filter(pl.col(c.MODEL) == inv.verdict.model)
        rollouts = rollouts.collect()
    return AnomalyTimeline(
        frame.select(cols),
        windows=res.windows,
        rollouts=rollouts,
        title=f"{name}: top line, seasonal baseline and detected anomalies",
    )


def models_view(inv: Investigation) -> RolloutCorrelator:
    models = inv.get(ModelsResult)
    health = models.health if models else None
    if health is None:
        empty = pl.DataFrame(
            schema={c.TS: pl.Datetime("us", "UTC"), c.MODEL: pl.String, c.EXPERIMENT: pl.String}
        )
        view = RolloutCorrelator(empty, title="Prediction health")
        view.empty_reason = "the walk stopped before model isolation (no top-line anomaly)"
        return view
    ws = inv.workspace
    rollouts = ws.table("rollouts").collect() if ws is not None and ws.has("rollouts") else None
    v = inv.verdict
    suspect = None
    if v.model:
        # a model-wide cause has no verdict experiment: highlight the model's most degraded one
        models = inv.finding("models")
        exp = v.experiment or (models.evidence.get("experiment") if models else None)
        suspect = {"model": v.model, "experiment": exp, "snapshot": v.snapshot}
    return RolloutCorrelator(
        health,
        rollouts=rollouts,
        suspect=suspect,
        title="Top line, prediction health per model / experiment and snapshot traffic shares",
        **_correlator_context(inv),
    )


def _correlator_context(inv: Investigation) -> dict[str, Any]:
    """What every correlator row is read against: the top line, the anomaly window and the
    snapshots the snapshot step names (so the traffic shown is theirs, not the newest)."""
    top_line = inv.get(ToplineResult)
    anomaly = top_line.anomaly if top_line else None
    series = top_line.series if top_line else pl.DataFrame()
    out: dict[str, Any] = {}
    if anomaly is not None and not series.is_empty():
        top = series.filter(pl.col(c.METRIC) == anomaly.metric).select(c.TS, c.VALUE)
        out.update(topline=top, topline_name=anomaly.metric, window=(anomaly.onset, anomaly.end))
    snap = inv.finding("snapshot")
    arms = (snap.evidence.get("experiments") or {}) if snap is not None else {}
    named = [
        str(s)
        for arm in arms.values()
        if isinstance(arm, dict)
        for s in (arm.get("suspect"), arm.get("rolled_out"))
        if s
    ]
    out["named"] = sorted(set(named) | ({inv.verdict.snapshot} if inv.verdict.snapshot else set()))
    return out


def snapshot_view(inv: Investigation) -> RolloutCorrelator:
    snap = inv.get(SnapshotResult)
    by_snap = snap.health_by_snapshot if snap else None
    if by_snap is None or by_snap.is_empty():
        view = models_view(inv)
        if by_snap is None:
            view.empty_reason = "the walk did not reach snapshot isolation"
        return view
    # the model's rows over its snapshots' bands, and the snapshot under suspicion next to its
    # predecessor in the same hours
    v = inv.verdict
    models = inv.get(ModelsResult)
    health = models.health if models else None
    iso = snap.isolation if snap else None
    exp = v.experiment or (iso.experiment if iso is not None else None)
    under = v.snapshot or (iso.rolled_out if iso is not None else None)
    pair = predecessor_pair(by_snap, v.model, exp, under) if under else None
    ws = inv.workspace
    rollouts = ws.table("rollouts").collect() if ws is not None and ws.has("rollouts") else None
    frame = health.filter(pl.col(c.MODEL) == v.model) if health is not None else by_snap
    return RolloutCorrelator(
        frame,
        rollouts=rollouts,
        suspect={"model": v.model, "experiment": exp, "snapshot": under} if exp else None,
        compare=by_snap.filter(pl.col(c.MODEL) == v.model) if pair else None,
        compare_pair=pair,
        compare_roles=("suspect" if v.snapshot else "examined", "predecessor"),
        compare_title=(
            f"{pair[0]} (convicted) vs {pair[1]} (its predecessor) in the same hours"
            if pair and v.snapshot
            else f"{pair[0]} (examined and cleared by the snapshot step) vs "
            f"{pair[1]} (its predecessor) in the same hours"
            if pair
            else ""
        ),
        title=f"{v.model}: snapshot under suspicion and its predecessor in the same hours",
        **_correlator_context(inv),
    )


def _ranking(inv: Investigation) -> Any:
    got = inv.get(FeaturesResult)
    return got.ranking if got else None


def features_view(inv: Investigation) -> FeatureTable:
    ranking = _ranking(inv)
    if ranking is None:
        view = FeatureTable(pl.DataFrame(schema={"feature": pl.String}), title="Features")
        view.empty_reason = (
            "feature isolation was not needed: the walk convicted a snapshot"
            if inv.verdict.snapshot
            else "the walk did not reach feature isolation"
        )
        return view
    title = f"{ranking.model}: features ranked by responsibility ({ranking.method})"
    if inv.verdict.snapshot:
        # the ranking is the evidence of the data-break hypothesis the snapshot was preferred to
        title += " — the data-break alternative; the verdict convicted a snapshot"
    return FeatureTable(
        _meaningful_confidence(ranking.table), sparklines=ranking.sparklines(), title=title
    )


def _meaningful_confidence(table: pl.DataFrame) -> pl.DataFrame:
    """Blank the ranking's confidence where it is 0: it is how often a feature is in the top-k
    across resamples, so 0 means "never in the top-k", not "surely not responsible"."""
    if "confidence" not in table.columns:
        return table
    conf = pl.col("confidence")
    return table.with_columns(pl.when(conf > 0).then(conf).otherwise(None).alias("confidence"))


def lineage_view(inv: Investigation, focus: str | None = None) -> LineageExplorer:
    ws = inv.workspace
    graph = ws.lineage() if ws is not None else None
    if graph is None:
        view = LineageExplorer([], [], title="Upstream lineage")
        view.empty_reason = "the workspace has no lineage.json"
        return view
    nodes = [
        {"id": n, "kind": d.get("kind", ""), "name": d.get("name", n)}
        for n, d in graph.nodes(data=True)
    ]
    edges = [{"source": u, "target": v} for u, v in graph.edges]
    lin = inv.get(LineageResult)
    result = lin.root_cause if lin else None
    ranking = _ranking(inv)
    focus = focus or (ranking.top(1)[0] if ranking is not None and ranking.table.height else None)
    if focus not in graph:
        focus = None
    candidates: list[dict[str, Any]] = []
    blast: list[str] = []
    series: dict[str, dict[str, Any]] = {}
    if result is not None:
        candidates = [
            {"node": r.node, "score": r.score, "confidence": r.confidence}
            for r in result.candidates[:10]
        ]
        blast = list(result.blast_radius.nodes) if result.blast_radius else []
        if ws is not None and ws.has("lineage_stats") and inv.verdict.onset is not None:
            from ..kernels.lineage import node_series

            want = [r.node for r in result.candidates[:30]] + ([focus] if focus else [])
            stat_of = {
                r.node: (r.changed_stats[0].stat if r.changed_stats else None)
                for r in result.candidates
            }
            long = node_series(ws.table("lineage_stats"), want, around=inv.verdict.onset)
            for node, part in long.group_by(c.NODE):
                node = node[0]
                stat = stat_of.get(node) or part[c.STAT][0]
                one = part.filter(pl.col(c.STAT) == stat)
                series[node] = {
                    "ts": one[c.TS].to_list(),
                    "value": one[c.VALUE].to_list(),
                    "onset": inv.verdict.onset.isoformat(),
                }
    view = LineageExplorer(
        nodes,
        edges,
        series=series or None,
        candidates=candidates,
        blast_radius=blast,
        focus=focus,
        title="Upstream lineage: candidates ranked, blast radius shaded",
    )
    if result is None:
        view.empty_reason = (
            (
                "the lineage walk was not run: "
                + (
                    "a snapshot was convicted first"
                    if inv.verdict.snapshot
                    else "no feature explained the shift"
                )
            )
            if not candidates and focus is None
            else ""
        )
    return view


_NO_DIAGNOSIS = {
    "upstream_data": "the walk found the cause outside the model, in its input data",
    "training_data": "the walk blamed the snapshot's training data, not its weights",
    "none": "no cause was convicted, so no snapshot was suspect (see the competing explanations)",
}


def _no_diagnosis_reason(cause: str) -> str:
    """Why the graph is empty, in the verdict's terms: saying "outside the model" when the walk
    convicted nothing would point the reader at a cause that was never found."""
    why = _NO_DIAGNOSIS.get(cause, "the snapshot step did not convict a snapshot")
    return f"no snapshot was diagnosed: {why}"


def modelgraph_view(inv: Investigation) -> ModelGraphTensorViewer:
    diag = inv.get(Diagnosis)
    trace = diag.trace if diag is not None else None
    if trace is None:
        view = ModelGraphTensorViewer([], [], title="Model graph")
        view.empty_reason = (
            _no_diagnosis_reason(inv.verdict.cause)
            if diag is None
            else "the suspect snapshot could not be replayed (see the activations finding)"
        )
        return view
    change: dict[str, float] = {}
    if diag.weights is not None:
        for t in diag.weights.tensors:
            change[t.layer] = max(change.get(t.layer, 0.0), float(t.ratio))
    nodes, stats = [], {}
    for n in trace.nodes:
        nodes.append({"id": n.name, "label": n.target or n.name, "op": n.op, "layer": n.layer})
        if n.stats is None:
            continue
        s = n.stats
        entry = {
            "min": _num(s.min),
            "max": _num(s.max),
            "mean": _num(s.mean),
            "std": _num(s.std),
            "nan": s.nan_count,
            "inf": s.inf_count,
            "max_abs": _num(s.max_abs),
        }
        if n.layer in change:
            entry["change_vs_previous"] = _num(change[n.layer])
        if s.histogram is not None:
            entry["hist"] = {"edges": list(s.histogram[0]), "counts": list(s.histogram[1])}
        stats[n.name] = entry
    edges = [{"source": a, "target": b} for a, b in trace.edges]
    flagged: dict[str, str] = {}
    if diag.fault is not None:
        flagged[diag.fault.node] = f"first {diag.fault.kind} values"
    if diag.weights is not None and diag.weights.suspect:
        bad_layers = {s.layer: s.reason for s in diag.weights.suspect_layers}
        for n in trace.nodes:
            if n.layer in bad_layers and n.name not in flagged and n.op == "call_function":
                flagged[n.name] = f"weights of {n.layer}: {bad_layers[n.layer]}"
    return ModelGraphTensorViewer(
        nodes,
        edges,
        stats=stats,
        flagged=flagged,
        color_by="max_abs",
        title=f"{inv.verdict.model}/{inv.verdict.snapshot}: activations on recent traffic",
    )


def training_view(inv: Investigation) -> ipywidgets.HTML:
    diag = inv.get(Diagnosis)
    t = diag.training if diag is not None else None
    if t is None:
        return ipywidgets.HTML(
            "<div class='hawknb-empty'>Nothing to show, because the training data of a "
            "snapshot was not diagnosed in this walk.</div>"
        )
    frame = t.frame().to_pandas()
    return ipywidgets.HTML(
        f"<div class='hawknb-training'><p>{html.escape('; '.join(t.reasons) or 'no anomaly')}"
        f"</p>{frame.to_html(index=False, float_format=lambda x: f'{x:.4g}')}</div>"
    )


def hypotheses_view(inv: Investigation) -> ipywidgets.HTML:
    """The competing explanations, best first, with the evidence for and against each: the
    runner-up's row says why it was not chosen."""
    got = inv.get(HypothesesResult)
    if got is None or not got.hypotheses:
        return ipywidgets.HTML(
            "<div class='hawknb-empty'>Nothing to show, because the walk stopped before "
            "weighing causes.</div>"
        )
    esc = html.escape
    rows = []
    for i, h in enumerate(got.hypotheses[:8]):
        mark = "chosen" if i == 0 else ("runner-up" if i == 1 else "")
        rows.append(
            f"<tr><td>{esc(mark)}</td><td>{esc(h.label)}</td><td>{h.support:.2f}</td>"
            f"<td>{esc('; '.join(h.evidence_for[:3]))}</td>"
            f"<td>{esc('; '.join(h.evidence_against[:3]))}</td></tr>"
        )
    return ipywidgets.HTML(
        "<table class='hawknb-hypotheses'><tr><th></th><th>hypothesis</th><th>support</th>"
        f"<th>evidence for</th><th>evidence against</th></tr>{''.join(rows)}</table>"
    )


def verdict_view(inv: Investigation) -> ipywidgets.HTML:
    """The verdict table, from the one renderer the notebooks and the report use (names
    escaped, lists joined in words, not Python reprs)."""
    from ..triage.markdown import verdict_html

    return ipywidgets.HTML(verdict_html(inv.verdict))


class Dashboard(ipywidgets.VBox):
    """The investigation navigator with one linked view per step."""

    def __init__(self, inv: Investigation) -> None:
        super().__init__(layout=ipywidgets.Layout(width="100%"))
        self.add_class("hawknb-dashboard")
        self._build(inv)

    # -- building ----------------------------------------------------------------------------
    def _build(self, inv: Investigation) -> None:
        self.investigation = inv
        self.timeline = timeline_view(inv)
        self.rollouts = models_view(inv)
        self.snapshots = snapshot_view(inv)
        self.features = features_view(inv)
        self.lineage = lineage_view(inv)
        self.modelgraph = modelgraph_view(inv)
        views: dict[str, ipywidgets.Widget] = {
            "topline": self.timeline,
            "models": self.rollouts,
            "snapshot": self.snapshots,
            "features": self.features,
            "lineage": self.lineage,
            "weights": self.modelgraph,
            "activations": self.modelgraph,
            "training": training_view(inv),
            "hypotheses": hypotheses_view(inv),
            "verdict": verdict_view(inv),
        }
        steps = [
            {
                "id": f.step,
                "title": f.title,
                "status": f.status,
                "decision": f.decision,
                "confidence": f.confidence,
                "parent": STEPS.get(f.step, {}).get("parent")
                if STEPS.get(f.step, {}).get("parent") in {g.step for g in inv.findings}
                else None,
            }
            for f in inv.findings
        ]
        views = {k: w for k, w in views.items() if k in {s["id"] for s in steps}}
        first = "verdict" if "verdict" in views else (steps[0]["id"] if steps else None)
        self.navigator = InvestigationNavigator(
            steps, views=views, selected=first, title="hawknb investigation"
        )
        self.timeline.observe(self._on_window, names="selected_window")
        self.rollouts.observe(self._on_model, names="selected_panel")
        self.features.observe(self._on_feature, names="selected_feature")
        self.children = [self.navigator.box]

    # -- selections flow back through the triage layer ---------------------------------------
    def _on_window(self, change: dict[str, Any]) -> None:
        sel = change["new"] or {}
        if not sel.get("start") or self.investigation.workspace is None:
            return
        start = datetime.fromisoformat(str(sel["start"]).replace("Z", "+00:00"))
        end = (
            datetime.fromisoformat(str(sel["end"]).replace("Z", "+00:00"))
            if sel.get("end")
            else None
        )
        metric = self.investigation.verdict.metric
        inv = triage(
            self.investigation.workspace, metric=metric, start=start, end=end, progress=False
        )
        self._build(inv)

    def _on_model(self, change: dict[str, Any]) -> None:
        sel = change["new"] or {}
        model = sel.get("model")
        inv = self.investigation
        top = inv.get(ToplineResult)
        anomaly: Anomaly | None = top.anomaly if top else None
        if not model or anomaly is None or inv.workspace is None:
            return
        ranking, _ = feature_step.rank(inv.workspace, model, anomaly)
        inv.record(FeaturesResult(ranking, model))
        new = features_view(inv)
        self.features.unobserve(self._on_feature, names="selected_feature")
        self.features = new
        self.features.observe(self._on_feature, names="selected_feature")
        if "features" in self.navigator.views:
            self.navigator.set_view("features", new)
            self.navigator.select("features")

    def _on_feature(self, change: dict[str, Any]) -> None:
        feature = change["new"]
        if not feature:
            return
        graph = self.investigation.workspace.lineage() if self.investigation.workspace else None
        if graph is not None and feature in graph:
            # rebuilt rather than refocused, so the new focus gets its sparkline too
            self.lineage = lineage_view(self.investigation, focus=feature)
            if "lineage" in self.navigator.views:
                self.navigator.set_view("lineage", self.lineage)
                self.navigator.select("lineage")


def investigate(
    source: Workspace | Investigation | str,
    *,
    metric: str | None = None,
    start: datetime | None = None,
    progress: bool = False,
) -> Dashboard:
    """Triage a workspace (or take a finished Investigation) and return the linked dashboard.

    End a notebook cell with it to display it. Brushing a window on the timeline re-runs the
    walk from that window; clicking a model re-ranks its features; clicking a feature focuses
    the lineage explorer on it.
    """
    inv = (
        source
        if isinstance(source, Investigation)
        else triage(source, metric=metric, start=start, progress=progress)
    )
    return Dashboard(inv)


__all__ = ["Dashboard", "investigate"]

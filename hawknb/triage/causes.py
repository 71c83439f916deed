"""The cause hypotheses for one (window, model): each snapshot rolled out near the onset, a
data break, or nothing the workspace shows.

Snapshot evidence comes in two kinds that are scored together: the same-hours A/B (is it
worse than the snapshot it replaced, in the same hours?) and a mechanism (bad activations on
its own traffic, weights far beyond the usual drift, anomalous training data). A canary on 1%
of traffic or on one experiment arm leaves the A/B with too few rows to convict, but its
mechanism shows on the rows it did serve; a benign rollout in the same hour has neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..engine import collect
from ..kernels.drift import psi_from_counts
from ..kernels.features import PSI_SCALE, W1_SCALE
from ..kernels.lineage import UNCHANGED
from ..kernels.rollout import SnapshotIsolation
from ..workspace import Workspace
from ..workspace import contract as c
from . import diagnosis, row_evidence, snapshot
from .diagnosis import Diagnosis
from .findings import Finding
from .hypotheses import Hypothesis
from .models import Suspect
from .topline import Anomaly

#: snapshots diagnosed besides the one the A/B convicted
MAX_CANDIDATES = 3


def recent_snapshots(ws: Workspace, anomaly: Anomaly, model: str) -> list[str]:
    """Snapshots of ``model`` first served between a little before the onset and the window's
    end, nearest the onset first."""
    lo = anomaly.onset - row_evidence.lookback(anomaly, wide=True)
    hi = max(anomaly.end, anomaly.onset + 3 * anomaly.cadence)
    first = collect(
        ws.serving.filter(pl.col(c.MODEL) == model)
        .group_by(c.SNAPSHOT)
        .agg(pl.col(c.TS).min().alias("first"))
        .filter((pl.col("first") >= lo) & (pl.col("first") <= hi))
    )
    rows = sorted(
        first.iter_rows(named=True),
        key=lambda r: (abs((r["first"] - anomaly.onset).total_seconds()), str(r[c.SNAPSHOT])),
    )
    return [str(r[c.SNAPSHOT]) for r in rows]


def _ab_support(iso: SnapshotIsolation | None, snap: str) -> tuple[float, float]:
    """(for, against) from the same-hours A/B: convicted -> its confidence for; rolled out and
    exonerated with real shared windows -> its confidence against; else nothing either way."""
    if iso is None:
        return 0.0, 0.0
    if iso.is_snapshot_cause and iso.suspect == snap:
        return iso.confidence, 0.0
    if iso.rolled_out == snap and not iso.is_snapshot_cause:
        ev = iso.evidence
        if ev.height and "shared_windows" in ev.columns:
            shared = ev.filter(pl.col(c.SNAPSHOT) == snap)["shared_windows"].max()
            if shared is not None and shared >= 3:
                return 0.0, iso.confidence
    return 0.0, 0.0


def _mechanism(diag: Diagnosis, convicted: bool) -> tuple[Any, float, str | None, str]:
    """(cause, strength 0..1, layer, what) of what inside the snapshot explains a degradation."""
    t, w, f, b = diag.training, diag.weights, diag.fault, diag.blowup
    if not convicted and (diag.fault_at_input or diag.reproduces is False):
        # bad values that come with the inputs, or that the snapshot does not produce on the
        # inputs from before the onset: new data breaking it, not a snapshot that is broken
        f = b = None
    if f is not None:
        return "bad_snapshot", 0.95, f.layer, f"{f.kind} activations at {f.layer or f.node}"
    if t is not None and t.verdict and not t.volume_only and not t.loss_only:
        return _trained_on_anomalous_data(t)
    if b is not None and b.reference == "previous snapshot" and w is not None and w.suspect:
        # rows that blow up against the previous snapshot on the same inputs locate the
        # broken layer directly; the weights' ranking of relative changes only corroborates
        strength = 0.85 if convicted else 0.8
        # a parameter-free node (an activation function) has no layer of its own in the
        # contract's sense: the layer feeding it is the first bad one (the weights' most
        # changed layer may sit later: a ratio of relative changes ranks, it does not locate)
        held = {t.layer for t in w.tensors}
        layer = b.whole_layer if b.whole_layer in held else b.layer
        if layer not in held:
            layer = diag.blowup_layer if diag.blowup_layer in held else None
        if layer is None and w.suspect_layers:
            layer = w.suspect_layers[0].layer
        what = f"{b.bad_fraction:.1%} of its rows blow up at {layer or b.node}"
        return "bad_snapshot", strength, layer, what
    if w is not None and w.suspect and w.suspect_layers:
        top = w.suspect_layers[0]
        # without an A/B conviction, a weight change is only as strong as it is far beyond
        # the usual snapshot-to-snapshot drift (a retrain moves some layer 3x sometimes), and
        # half that: weights that moved while its activations on its own traffic look fine
        # are more likely a legitimate retrain than a broken snapshot
        strength = 0.85 if convicted else 0.5 * diagnosis.weights_confidence(top.score)
        return (
            "bad_snapshot",
            strength,
            top.layer,
            f"weights of {top.layer} changed far beyond usual",
        )
    if b is not None:
        strength = 0.8 if diag.driver_names else 0.65
        return (
            "bad_snapshot",
            strength,
            b.whole_layer or b.layer or diag.blowup_layer,
            (f"{b.bad_fraction:.1%} of its rows blow up at {b.layer or b.node}"),
        )
    if t is not None and t.verdict and t.loss_only:
        # a run that ended worse, and nothing inside the snapshot that explains it otherwise
        return _trained_on_anomalous_data(t)
    if t is not None and t.verdict and convicted:
        # fewer rows of the same data only explain a snapshot the A/B already convicted
        why = "; ".join(t.reasons[:2])
        return "training_data", min(0.6, t.confidence), None, f"unusual data volumes: {why}"
    return "bad_snapshot", 0.0, None, ""


def _trained_on_anomalous_data(t: Any) -> tuple[Any, float, str | None, str]:
    why = "; ".join(t.reasons[:2])
    return "training_data", max(0.6, t.confidence), None, f"trained on anomalous data: {why}"


def snapshot_hypothesis(
    ws: Workspace,
    anomaly: Anomaly,
    suspect: Suspect,
    iso: SnapshotIsolation | None,
    snap: str,
    cache: dict | None = None,
) -> tuple[Hypothesis, Diagnosis, list[Finding]]:
    """Diagnose one snapshot and score the hypothesis that it caused the degradation.
    ``cache``: the walk's row-level comparisons (row_evidence.row_shifts), shared with the
    snapshot step, so each candidate does not read the window's rows again."""
    diag, found = diagnosis.diagnose_snapshot(ws, suspect.model, snap, anomaly.onset)
    ab_for, ab_against = _ab_support(iso, snap)
    row_z = _row_z(ws, anomaly, suspect.model, snap, cache) if ab_against > 0 else None
    if row_z is not None:
        # the window A/B weighs the snapshot's few rows by window means; compared one by
        # one, its rows clearly differ from the rows around it: the A/B cannot clear it (nor
        # convict it: a data break that began with it moves its rows too), so only its
        # mechanism and the competing data hypothesis decide
        ab_against = 0.0
    cause, mech, layer, what = _mechanism(diag, ab_for > 0)
    # the A/B and the mechanism are evidence about the snapshot; that it explains THIS
    # window rests on the model's move at the onset (chance-corrected by the window step),
    # so a snapshot worse than its predecessor does not convict on a window the model's
    # predictions explain no better than chance
    model_factor = suspect.confidence
    h = Hypothesis(cause, 0.0, model=suspect.model, snapshot=snap, layer=layer, mechanism=mech)
    if diag.reproduces is False:
        h.evidence_against.append("its bad activations do not show on the inputs before the onset")
    if ab_for > 0:
        # the A/B convicts: the mechanism says why (and how sure). A conviction is evidence
        # FOR the snapshot, so it never leaves it below what its mechanism alone earns
        h.support = max(
            (0.5 + 0.5 * ab_for) * model_factor * (mech if mech > 0 else 0.5),
            suspect.confidence * 0.8 * mech,
        )
        h.evidence_for.append(
            f"predicts worse than its predecessor in the same hours ({ab_for:.2f})"
        )
    else:
        # no A/B conviction: only a mechanism on its own traffic makes it a suspect, weighed
        # like a data break (by how clearly the model's predictions moved)
        h.support = suspect.confidence * 0.8 * mech * (1.0 - 0.6 * ab_against)
        if diag.reproduces is False:
            h.support *= 0.5  # it breaks on the new inputs only: the inputs changed
        if ab_against > 0:
            h.evidence_against.append(
                f"serves as well as its predecessor in the same hours ({ab_against:.2f})"
            )
        elif mech > 0:
            h.evidence_for.append("rolled out at the onset (too little traffic for an A/B)")
    elsewhere = _serves_only_healthy_arms(ws, anomaly, suspect, snap)
    if elsewhere:
        # a snapshot explains only the arms it serves: when the degradation is confined to
        # other arms, it is a bystander however broken it is (a benign rollout next door
        # shares the model's training partitions, hence its training-data findings)
        h.support *= _ELSEWHERE_FACTOR
        h.evidence_against.append(
            f"it serves only {', '.join(elsewhere)}, which kept its health; the degradation is "
            f"in {', '.join(suspect.degraded)}"
        )
    if row_z is not None:
        h.evidence_for.append(
            f"its rows differ from the rows around it (z {row_z:.1f}), too few for a same-hours "
            "A/B of window means to clear it"
        )
    if what:
        h.evidence_for.append(what)
    else:
        h.evidence_against.append("no bad activation, weight or training anomaly inside it")
    h.features = diag.driver_names if cause == "bad_snapshot" and mech > 0 else []
    partial = diag.blowup is not None and diag.blowup.bad_fraction <= 0.5
    if ab_for == 0 and partial and mech > 0 and not h.features:
        h.evidence_against.append("no input feature separates the rows it breaks on")
    h.summary = _snapshot_summary(snap, suspect.model, cause, what, h.features, ab_for > 0)
    return h, diag, found


def _row_z(
    ws: Workspace, anomaly: Anomaly, model: str, snap: str, cache: dict | None = None
) -> float | None:
    """The row-level z of ``snap`` when its served rows make it a suspect on their own
    (row_evidence.row_suspects: z >= ROW_Z against same hours' or the rows before), else
    None."""
    shifts = row_evidence.row_shifts(ws, anomaly, cache, wide=True)
    sus = row_evidence.row_suspects(shifts, anomaly, wide=True)
    mine = sus.filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snap))
    return None if mine.is_empty() else float(mine["z"].max())


#: what is left of a snapshot's support when it serves none of the arms that degraded (not
#: nothing: the model step's arm may be only the most degraded of several close ones)
_ELSEWHERE_FACTOR = 0.5


def _serves_only_healthy_arms(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect, snap: str
) -> list[str]:
    """The experiments ``snap`` served since the onset when the model step names only some
    of the model's arms as degraded (or as the most degraded one) and the snapshot served
    none of them; else []."""
    degraded = set(suspect.degraded)
    arms = set(snapshot.served_experiments(ws, suspect.model, since=anomaly.onset))
    if not degraded or not arms - degraded:
        return []
    served = snapshot.served_experiments(ws, suspect.model, snapshot=snap, since=anomaly.onset)
    if not served or set(served) & degraded:
        return []
    return served


def _snapshot_summary(
    snap: str, model: str, cause: str, what: str, drivers: list[str], convicted: bool
) -> str:
    if not what:
        return (
            f"snapshot {snap} of {model} predicts worse than its predecessor in the same "
            "hours; neither its weights nor its training data show why"
        )
    out = f"snapshot {snap} of {model}: {what}"
    if drivers:
        out += f", triggered by {', '.join(drivers[:3])}"
    return out


def data_hypothesis(
    suspect: Suspect,
    ranking: Any,
    result: Any,
    feature_conf: float,
    inputs: frozenset[str] = frozenset(),
) -> Hypothesis:
    """The hypothesis that the model's inputs changed (an upstream data break), or that
    nothing examined explains the shift (``none``) when no feature or upstream node does.
    ``inputs`` (the model's feature columns) never count as upstream causes: they are what
    the lineage walk explains."""
    h = Hypothesis("upstream_data", 0.0, model=suspect.model)
    h.features = ranking.top(10) if ranking is not None else []
    top = getattr(result, "top", None)
    if top is not None:
        roots = [cand.node for cand in result.candidates if cand.is_root]
        upstream = roots or [top.node]
        upstream += [cand.node for cand in result.candidates if cand.node not in upstream]
        not_upstream = inputs | set(result.targets)
        h.upstream = [n for n in upstream if n not in not_upstream]
        h.features = features_of_root(ranking, result, h.upstream[0] if h.upstream else None)
        if h.upstream:
            h.evidence_for.append(f"upstream {h.upstream[0]} changed at the onset")
    support = lineage_support(result)
    base = suspect.confidence * (0.5 + 0.5 * feature_conf) * support
    changed = input_change(ranking, h.features)
    h.support = base * changed_factor(changed)
    if changed < PSI_NO_CHANGE:
        h.evidence_against.append(
            f"its features' values barely moved (largest PSI {changed:.3f}, under {PSI_NO_CHANGE})"
        )
    if feature_conf >= FEATURE_EVIDENCE:
        h.evidence_for.append(f"{h.features[0]} moved with the predictions ({feature_conf:.2f})")
    else:
        h.evidence_against.append("no input feature moved with the predictions")
    if result is not None and top is None and support < 0.8:
        h.evidence_against.append("the features' upstream statistics did not change")
    h.summary = (
        f"{suspect.model}'s input features changed at the onset"
        + (f" ({', '.join(h.features[:3])})" if h.features else "")
        + (f", caused upstream by {h.upstream[0]}" if h.upstream else "")
    )
    if (feature_conf < FEATURE_EVIDENCE and not h.upstream) or changed < PSI_NO_CHANGE:
        # the model moved, but nothing examined explains it: say so, and do not list features
        # that explain nothing as if they were the culprits (the ranking stays in its finding)
        h.cause, h.features, h.upstream = "none", [], []
        h.support = min(base, 0.25)
        why = (
            "its input features barely moved"
            if changed < PSI_NO_CHANGE
            else "no input feature or upstream node explains it"
        )
        h.summary = f"{suspect.model}'s predictions moved at the onset, but {why}"
    return h


#: below this confidence of the top feature, no feature explains the prediction shift
FEATURE_EVIDENCE = 0.2
#: population stability index, as it is commonly read: under 0.1 no significant change of a
#: distribution, from 0.25 a significant one
PSI_NO_CHANGE, PSI_SIGNIFICANT = 0.1, 0.25


def input_change(ranking: Any, features: list[str]) -> float:
    """How much the named features' inputs changed between the windows, as a PSI: the largest
    of their values' PSI, their Wasserstein-1 distance on the PSI scale (the ranking's own
    equivalence, `kernels.features.PSI_SCALE` / `W1_SCALE`: a few % of rows turned extreme
    barely move a quantile-binned PSI), and the PSI of their null and non-finite indicators (a
    coverage break or a NaN flood can leave the finite values that remain as they were).
    Infinite when the ranking cannot say (no ranking, or a named feature without a PSI: no
    finite value on one side is a change of its own): no evidence against a break."""
    if ranking is None or not features:
        return float("inf")
    rows = ranking.table.filter(pl.col("feature").is_in(features))
    psi = rows["drift_psi"].fill_nan(None)
    if psi.null_count() or not psi.len():
        return float("inf")
    w1 = rows["drift_wasserstein"].fill_nan(None).drop_nulls() * (PSI_SCALE / W1_SCALE)
    rates = [
        psi_from_counts(*(_two_bins(rows[f"{kind}_{w}"].to_numpy()) for w in ("before", "after")))
        for kind in ("null_rate", "nonfinite_rate")
    ]
    return float(max(psi.max(), w1.max() or 0.0, *(np.nanmax(r, initial=0.0) for r in rates)))


def _two_bins(rate: np.ndarray) -> np.ndarray:
    """A rate (null, non-finite) as the shares of a two-bin distribution."""
    return np.stack([1.0 - rate, rate], axis=-1)


def changed_factor(psi: float) -> float:
    """The share of an upstream data break's support its inputs' change leaves: a break the
    features did not show (PSI under PSI_NO_CHANGE) is not the model's inputs changing, a
    significant change (PSI_SIGNIFICANT and above) counts in full, linear between. Why: a
    benign upstream change (a source's mean moving 3%) moved no feature that the model
    reads beyond noise, and still carried the verdict whenever its model's calibration moved
    for another reason; a real break, however faint at the top line, moves its features."""
    if not psi >= PSI_NO_CHANGE:  # (and NaN, which input_change never gives)
        return 0.0
    return min(1.0, (psi - PSI_NO_CHANGE) / (PSI_SIGNIFICANT - PSI_NO_CHANGE))


def none_hypothesis(suspect: Suspect | None, why: str, support: float) -> Hypothesis:
    h = Hypothesis("none", support, model=suspect.model if suspect else None, summary=why)
    h.evidence_for.append(why)
    return h


def snapshot_candidates(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect, iso: SnapshotIsolation | None
) -> list[str]:
    """The convicted snapshot first, then the snapshots rolled out near the onset."""
    out = [iso.suspect] if iso is not None and iso.is_snapshot_cause and iso.suspect else []
    if iso is not None and iso.rolled_out and iso.rolled_out not in out:
        out.append(iso.rolled_out)
    programs = {s for _, s in ws.programs(suspect.model)}
    for snap in recent_snapshots(ws, anomaly, suspect.model):
        if snap not in out and (snap in programs or ws.has("training")):
            out.append(snap)
    return out[: 1 + MAX_CANDIDATES]


def snapshot_experiment(ws: Workspace, model: str, snap: str, fallback: str | None) -> str | None:
    """The experiment a culprit snapshot served; None when it served every experiment."""
    exps = snapshot.served_experiments(ws, model, snapshot=snap)
    if len(exps) == 1:
        return exps[0]
    if exps and set(exps) == set(snapshot.served_experiments(ws, model)):
        return None
    return fallback


__all__ = [
    "data_hypothesis",
    "none_hypothesis",
    "recent_snapshots",
    "snapshot_candidates",
    "snapshot_experiment",
    "snapshot_hypothesis",
]


def lineage_support(result: Any) -> float:
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


def features_of_root(ranking: Any, result: Any, root: Any = None) -> list[str]:
    """The ranked features, those downstream of the lineage root that moved first: the root
    explains them, while a feature that drifted elsewhere at the same time is a bystander.

    ``root`` is the upstream node the verdict names; when it is not the walk's top candidate
    (the top was a feature or a target, which the verdict does not call upstream), the
    features are those that root explains, not those under the top candidate."""
    table = ranking.table
    order = table["feature"].to_list()
    radius = set(result.blast_radius.nodes) if result.blast_radius else set()
    top = getattr(result, "top", None)
    if root is not None and top is not None and root != top.node:
        chosen = next((cand for cand in result.candidates if cand.node == root), None)
        if chosen is not None:
            radius = set(chosen.explained)
    moved = set(
        table.filter(
            (pl.col("confidence") > 0) | (pl.col("drift_psi").fill_nan(0.0) >= _MOVED_PSI)
        )["feature"].to_list()
    )
    under = [f for f in order if f in radius and f in moved]
    return (under + [f for f in order if f not in under])[:10]

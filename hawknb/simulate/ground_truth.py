"""Build the incident's `Truth` from what the simulator planted and what the log measured."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import metrics as mx
from .draws import Snap
from .incidents import Plan
from .models import Runner
from .serving_log import ServingTotals
from .system import System
from .truth import CAUSE, Truth


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class TruthInputs:
    plan: Plan
    system: System
    seed: int
    start: dt.datetime
    hours: int
    top_line_served: dict[str, np.ndarray]
    top_line_clean: dict[str, np.ndarray]
    totals: ServingTotals
    runners: list[Runner]
    snaps: dict[tuple[int, int, int], Snap]
    fault_detail: dict


def build_truth(ti: TruthInputs) -> Truth:
    """What a perfect triage concludes: the metric the incident moved most, the model(s), the
    snapshot or upstream node and features, plus every distractor planted beside it."""
    p, system = ti.plan, ti.system
    distractors = _distractors(ti)
    details: dict[str, Any] = {
        "start": iso(ti.start),
        "hours": ti.hours,
        "serving_rows": ti.totals.n_rows,
        "label_lag_hours": p.label_lag,
    }
    if p.kind == "none":
        return Truth(
            "none", ti.seed, None, None, None, [], None, None, "none", [], [], [], None,
            distractors, details,
        )  # fmt: skip
    tl = ti.top_line_served
    strength = {k: mx.anomaly_strength(tl[k], ti.top_line_clean[k], p.onset, ti.hours) for k in tl}
    details["metric_strength"] = strength
    deg = ti.totals.deg
    post = slice(p.onset, None)
    degradation = deg[0, :, post].sum(1) / np.maximum(deg[1, :, post].sum(1), 1)
    models = system.models
    details["prediction_degradation"] = {
        models[i].name: float(degradation[i]) for i in range(len(models))
    }
    fields: dict[str, Any] = {"experiment": None, "snapshot": None, "layer": None}
    fields.update(features=[], downstream_features=[], upstream=[])
    if p.kind in ("upstream_data", "feature_coverage"):
        fields.update(_upstream_truth(ti, degradation, details))
    else:
        cm, ce, cd = p.culprit
        fields.update(
            model=models[cm].name,
            affected_models=[models[cm].name],
            experiment=system.experiments[ce],
            snapshot=ti.snaps[(cm, ce, cd)].name,
        )
        if p.kind == "bad_snapshot":
            fields["layer"] = ti.fault_detail["layer"]
        elif p.kind == "activation_blowup":
            fields["layer"] = "net.2"
            pos = p.snapshot_fault["feature_pos"]
            fields["features"] = [system.features[models[cm].features[pos]].name]
        details.update(ti.fault_detail)
    return Truth(
        kind=p.kind,
        seed=ti.seed,
        metric=max(strength, key=lambda k: strength[k]),
        onset=iso(ti.start + dt.timedelta(hours=p.onset)),
        cause=CAUSE[p.kind],
        distractors=distractors,
        details=details,
        **fields,
    )


def _distractors(ti: TruthInputs) -> list[dict]:
    """Organic drifts, the benign snapshot rollout and the harmless upstream change."""
    p, system, start = ti.plan, ti.system, ti.start
    models = system.models
    out: list[dict] = []
    for d in p.world.drifts:
        out.append(
            {
                "kind": "organic_drift",
                "feature": system.features[d.feature].name,
                "start": iso(start + dt.timedelta(hours=d.start)),
                "ramp_hours": d.ramp_hours,
                "shift_sd": d.shift_sd,
                "models": [models[m].name for m in system.models_using([d.feature])],
            }
        )
    m, e, d = p.distractor_rollout
    out.append(
        {
            "kind": "snapshot_rollout",
            "model": models[m].name,
            "experiment": system.experiments[e],
            "snapshot": ti.snaps[(m, e, d)].name,
            "ts": iso(start + dt.timedelta(days=d, hours=p.starts[(m, e, d)])),
        }
    )
    uc = p.upstream_change
    out.append(
        {
            "kind": "upstream_change",
            "node": system.table_id(uc["table"]),
            "change": "row_count_drop",
            "drop": uc["drop"],
            "ts": iso(start + dt.timedelta(hours=uc["start"])),
            "downstream_features": [],
        }
    )
    return out


def _upstream_truth(ti: TruthInputs, degradation: np.ndarray, details: dict) -> dict[str, Any]:
    """The broken node, the features downstream of it, the model whose predictions degraded
    most among their users, and those features ranked by their impact on that model."""
    p, system = ti.plan, ti.system
    if p.kind == "upstream_data":
        sf = p.world.source_fault
        dfeat = system.features_of_source(sf.source)
        upstream = [system.source_id(sf.source)]
        details.update(subtype=sf.subtype, fraction=sf.frac)
    else:
        cv = p.world.coverage
        dfeat = system.features_of_transform(cv.transform)
        upstream = [system.transform_id(cv.transform)]
        details.update(
            subtype="default_fill", fraction=cv.frac, feature=system.features[cv.feature].name
        )
    users = sorted(system.models_using(dfeat), key=lambda i: -degradation[i])
    primary = users[0]
    affected = [i for i in users if degradation[i] > 0.01] or [primary]
    details["models_using_downstream"] = [system.models[i].name for i in users]
    impact = _feature_impact(ti, primary, set(dfeat))
    details["feature_impact"] = impact
    return {
        "model": system.models[primary].name,
        "affected_models": [system.models[i].name for i in affected],
        "features": sorted(impact, key=lambda k: -impact[k]),
        "downstream_features": [system.features[f].name for f in dfeat],
        "upstream": upstream,
    }


def _feature_impact(ti: TruthInputs, primary: int, downstream: set[int]) -> dict[str, float]:
    """How much restoring each downstream feature to its clean value moves the primary model's
    predictions, on the post-onset rows the log kept."""
    system = ti.system
    mspec = system.models[primary]
    cols = [j for j, f in enumerate(mspec.features) if f in downstream]
    kept = ti.totals.keep[primary]
    impact: dict[str, float] = {}
    if not kept:
        return impact
    kept = sorted(kept, key=lambda k: (k[0], k[1]))
    clean = np.concatenate([k[2] for k in kept])
    served = np.concatenate([k[3] for k in kept])
    names = np.concatenate([k[4] for k in kept])
    runner = ti.runners[primary]
    for j in cols:
        restored = served.copy()
        restored[:, j] = clean[:, j]
        diff = []
        for sname in np.unique(names):
            sel = names == sname
            s = next(s for s in ti.snaps.values() if s.model == primary and s.name == sname)
            a = runner.predict(s.served, served[sel])
            b = runner.predict(s.served, restored[sel])
            diff.append(np.nan_to_num(np.abs(a.astype(np.float64) - b), nan=1e3, posinf=1e3))
        impact[system.features[mspec.features[j]].name] = float(np.concatenate(diff).mean())
    return impact

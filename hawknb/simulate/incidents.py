"""Planning an incident and its distractors: what breaks, where, when and how badly.

Every choice (the onset, the model, the node, the fault subtype, the magnitude) is drawn from
the seed, so benchmarks over many seeds see many different incidents. Distractors are planted
in every scenario, `none` included: organic drift on features that barely matter, a routine
snapshot rollout near the onset, and an upstream change that feeds nothing important.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .models import LAYERS
from .serving import CoverageFault, Drift, SourceFault, World
from .system import System

SNAPSHOT_KINDS = ("bad_snapshot", "activation_blowup", "training_data")
FIRST_HOD, LAST_HOD = 1, 18  # rollouts start in these hours of the day (ramps end by midnight)


@dataclass
class Plan:
    kind: str
    onset: int | None  # hour index of the onset (None for `none`)
    anchor: int  # hour the distractors cluster around (the onset, or a pseudo-onset)
    world: World
    starts: dict[tuple[int, int, int], int]  # (model, exp, day) -> rollout start hour of day
    ramps: dict[tuple[int, int, int], tuple[int, int]]
    test_share: list[float]  # per model, share of traffic of the test experiment
    culprit: tuple[int, int, int] | None = None  # (model, exp, day) of the culprit snapshot
    snapshot_fault: dict = field(default_factory=dict)
    upstream_change: dict = field(default_factory=dict)
    distractor_rollout: tuple[int, int, int] | None = None
    label_lag: int = 4


def _weighted_pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    w = np.asarray(weights, dtype=float)
    if w.sum() <= 0:
        return int(rng.integers(len(w)))
    return int(rng.choice(len(w), p=w / w.sum()))


def feature_importance(system: System) -> np.ndarray:
    """Per feature: its largest importance in any model, relative to that model's largest."""
    out = np.zeros(len(system.features))
    for m in system.models:
        rel = m.importance / m.importance.max()
        for f, r in zip(m.features, rel, strict=True):
            out[f] = max(out[f], r)
    return out


def plan(rng: np.random.Generator, kind: str, system: System, days: int) -> Plan:
    """Draw the incident of `kind` and its distractors. The draws' order is part of the seed's
    meaning (held-out benchmark seeds must keep producing the same workspaces): append new
    draws at the end, never in between."""
    H = 24 * days
    lo, hi = max(30, int(0.4 * H)), H - 12
    candidates = [h for h in range(lo, hi + 1) if 3 <= h % 24 <= LAST_HOD and h >= 24]
    if not candidates:
        raise ValueError(f"days={days}: the simulator needs at least 3 days")
    anchor = int(rng.choice(candidates))
    n_models = len(system.models)
    imp = feature_importance(system)
    p = Plan(
        kind=kind,
        onset=None if kind == "none" else anchor,
        anchor=anchor,
        world=World(),
        starts={},
        ramps={},
        test_share=[float(rng.uniform(0.3, 0.5)) for _ in range(n_models)],
        label_lag=int(rng.integers(3, 9)),
    )
    _routine_rollouts(rng, p, n_models, days)
    frozen: dict[tuple[int, int], int] = {}  # (m, e) -> first day with no publish
    if kind == "upstream_data":
        incident_feats = _plan_source_fault(rng, p, system, imp)
    elif kind == "feature_coverage":
        incident_feats = _plan_coverage_fault(rng, p, system, imp)
    elif kind in SNAPSHOT_KINDS:
        incident_feats = _plan_snapshot_fault(rng, p, system, frozen)
    else:
        incident_feats = set()
    for (m, e), first in frozen.items():
        for d in range(first, days):
            p.starts.pop((m, e, d), None)
    _plan_distractor_rollout(rng, p, system, frozen, incident_feats)
    _plan_distractor_drifts(rng, p, system, imp, incident_feats, H)
    _plan_distractor_upstream(rng, p, system, H)
    return p


def _routine_rollouts(rng: np.random.Generator, p: Plan, n_models: int, days: int) -> None:
    """A daily publish per (model, experiment), skipped on some days (never the anchor's)."""
    for m in range(n_models):
        for e in range(2):
            for d in range(days):
                if rng.random() < 0.1 and d not in (p.anchor // 24,):
                    continue  # some days a pipeline does not publish
                p.starts[(m, e, d)] = int(rng.integers(FIRST_HOD, LAST_HOD + 1))
                p.ramps[(m, e, d)] = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))


def _plan_source_fault(
    rng: np.random.Generator, p: Plan, system: System, imp: np.ndarray
) -> set[int]:
    """Break a source that feeds an important feature; returns the features it feeds."""
    cand = [s for s in range(len(system.sources)) if system.features_of_source(s)]
    w = np.array([imp[system.features_of_source(s)].max() for s in cand])
    w = np.where(w >= np.median(w), w**2, 0.0)
    s = cand[_weighted_pick(rng, w)]
    subtype = str(rng.choice(["unit_x100", "unit_x1000", "default_fill", "sign_flip"]))
    p.world.source_fault = SourceFault(
        source=s,
        subtype=subtype,
        frac=float(rng.uniform(0.7, 1.0))
        if subtype != "default_fill"
        else float(rng.uniform(0.6, 0.95)),
        onset=p.anchor,
    )
    return set(system.features_of_source(s))


def _plan_coverage_fault(
    rng: np.random.Generator, p: Plan, system: System, imp: np.ndarray
) -> set[int]:
    """Drop the coverage of an important single-output transform; returns its feature."""
    single = [x for x in range(len(system.transforms)) if len(system.features_of_transform(x)) == 1]
    if not single:  # pragma: no cover - build_system always makes some
        raise ValueError("no single-output transform to break")
    w = np.array([imp[system.features_of_transform(x)[0]] for x in single])
    w = np.where(w >= np.median(w), w**2, 0.0)
    x = single[_weighted_pick(rng, w)]
    f = system.features_of_transform(x)[0]
    p.world.coverage = CoverageFault(
        transform=x, feature=f, frac=float(rng.uniform(0.7, 0.97)), onset=p.anchor
    )
    return {f}


def _plan_snapshot_fault(
    rng: np.random.Generator, p: Plan, system: System, frozen: dict[tuple[int, int], int]
) -> set[int]:
    """A culprit snapshot rolled out at the anchor hour; its arm (and for training data the
    other arm) publishes nothing after. Returns the trigger feature of a blow-up, if any."""
    m = int(rng.integers(len(system.models)))
    e = int(rng.integers(2))
    d = p.anchor // 24
    p.culprit = (m, e, d)
    p.starts[(m, e, d)] = p.anchor % 24
    p.ramps[(m, e, d)] = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    frozen[(m, e)] = d + 1
    if p.kind == "bad_snapshot":
        p.snapshot_fault = {
            "subtype": str(
                rng.choice(["scaled_weights", "nan_weights", "inf_weights", "blown_bias"])
            ),
            "layer": str(rng.choice(LAYERS)),
        }
        return set()
    if p.kind == "activation_blowup":
        j = int(rng.integers(len(system.models[m].features)))
        p.snapshot_fault = {"feature_pos": j, "quantile": float(rng.uniform(0.4, 0.7))}
        return {system.models[m].features[j]}
    p.snapshot_fault = {"bad_day": d - 1, "factor": float(rng.uniform(4.0, 8.0))}
    frozen[(m, 1 - e)] = d  # the other arm did not retrain on the bad partition
    return set()


def _plan_distractor_rollout(
    rng: np.random.Generator,
    p: Plan,
    system: System,
    frozen: dict[tuple[int, int], int],
    incident_feats: set[int],
) -> None:
    """A harmless routine rollout near the onset: for upstream incidents on a model that uses
    the broken features, otherwise on another model's arm."""
    n_models = len(system.models)
    d = p.anchor // 24
    if p.kind in ("upstream_data", "feature_coverage"):
        users = system.models_using(sorted(incident_feats))
        m = int(rng.choice(users)) if users else int(rng.integers(n_models))
        e = int(rng.integers(2))
        hod = int(np.clip(p.anchor % 24 - rng.integers(0, 4), FIRST_HOD, LAST_HOD))
    else:
        arms = [
            (m, e)
            for m in range(n_models)
            for e in range(2)
            if (m, e) not in frozen and (p.culprit is None or m != p.culprit[0])
        ]
        m, e = arms[int(rng.integers(len(arms)))]
        hod = int(np.clip(p.anchor % 24 + rng.integers(-3, 4), FIRST_HOD, LAST_HOD))
    p.starts[(m, e, d)] = hod
    p.ramps[(m, e, d)] = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    p.distractor_rollout = (m, e, d)


def _plan_distractor_drifts(
    rng: np.random.Generator,
    p: Plan,
    system: System,
    imp: np.ndarray,
    incident_feats: set[int],
    H: int,
) -> None:
    """Organic drift on two or three features that barely matter."""
    weak = [f for f in range(len(system.features)) if imp[f] < 0.1 and f not in incident_feats]
    if not weak:
        weak = [int(np.argmin(imp))]
    n_drift = min(len(weak), int(rng.integers(2, 4)))
    for f in rng.choice(weak, size=n_drift, replace=False):
        p.world.drifts.append(
            Drift(
                feature=int(f),
                start=int(rng.integers(int(0.15 * H), int(0.85 * H))),
                ramp_hours=int(rng.integers(12, 73)),
                shift_sd=float(rng.uniform(1.0, 2.5) * rng.choice([-1.0, 1.0])),
            )
        )


def _plan_distractor_upstream(rng: np.random.Generator, p: Plan, system: System, H: int) -> None:
    """An unrelated upstream change: partial volume in one table not under the broken source."""
    root_src = p.world.source_fault.source if p.world.source_fault else -1
    tabs = [t for t, s in enumerate(system.table_source) if s != root_src]
    t = int(rng.choice(tabs))
    p.upstream_change = {
        "table": t,
        "drop": float(rng.uniform(0.3, 0.6)),
        "start": int(np.clip(p.anchor + rng.integers(-12, 13), 1, H - 1)),
    }

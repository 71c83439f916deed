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
    H = 24 * days
    lo, hi = max(30, int(0.4 * H)), H - 12
    candidates = [h for h in range(lo, hi + 1) if 3 <= h % 24 <= LAST_HOD and h >= 24]
    if not candidates:
        raise ValueError(f"days={days}: the simulator needs at least 3 days")
    anchor = int(rng.choice(candidates))
    onset = None if kind == "none" else anchor
    n_models = len(system.models)
    imp = feature_importance(system)
    world = World()
    p = Plan(
        kind=kind,
        onset=onset,
        anchor=anchor,
        world=world,
        starts={},
        ramps={},
        test_share=[float(rng.uniform(0.3, 0.5)) for _ in range(n_models)],
        label_lag=int(rng.integers(3, 9)),
    )
    # routine daily rollouts
    for m in range(n_models):
        for e in range(2):
            for d in range(days):
                if rng.random() < 0.1 and d not in (anchor // 24,):
                    continue  # some days a pipeline does not publish
                p.starts[(m, e, d)] = int(rng.integers(FIRST_HOD, LAST_HOD + 1))
                p.ramps[(m, e, d)] = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    incident_feats: set[int] = set()
    frozen: dict[tuple[int, int], int] = {}  # (m, e) -> first day with no publish
    if kind == "upstream_data":
        cand = [s for s in range(len(system.sources)) if system.features_of_source(s)]
        w = np.array([imp[system.features_of_source(s)].max() for s in cand])
        w = np.where(w >= np.median(w), w**2, 0.0)
        s = cand[_weighted_pick(rng, w)]
        subtype = str(rng.choice(["unit_x100", "unit_x1000", "default_fill", "sign_flip"]))
        world.source_fault = SourceFault(
            source=s,
            subtype=subtype,
            frac=float(rng.uniform(0.7, 1.0))
            if subtype != "default_fill"
            else float(rng.uniform(0.6, 0.95)),
            onset=anchor,
        )
        incident_feats = set(system.features_of_source(s))
    elif kind == "feature_coverage":
        single = [
            x for x in range(len(system.transforms)) if len(system.features_of_transform(x)) == 1
        ]
        if not single:  # pragma: no cover - build_system always makes some
            raise ValueError("no single-output transform to break")
        w = np.array([imp[system.features_of_transform(x)[0]] for x in single])
        w = np.where(w >= np.median(w), w**2, 0.0)
        x = single[_weighted_pick(rng, w)]
        f = system.features_of_transform(x)[0]
        world.coverage = CoverageFault(
            transform=x, feature=f, frac=float(rng.uniform(0.7, 0.97)), onset=anchor
        )
        incident_feats = {f}
    elif kind in SNAPSHOT_KINDS:
        m = int(rng.integers(n_models))
        e = int(rng.integers(2))
        d = anchor // 24
        p.culprit = (m, e, d)
        p.starts[(m, e, d)] = anchor % 24
        p.ramps[(m, e, d)] = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        frozen[(m, e)] = d + 1
        if kind == "bad_snapshot":
            p.snapshot_fault = {
                "subtype": str(
                    rng.choice(["scaled_weights", "nan_weights", "inf_weights", "blown_bias"])
                ),
                "layer": str(rng.choice(LAYERS)),
            }
        elif kind == "activation_blowup":
            j = int(rng.integers(len(system.models[m].features)))
            p.snapshot_fault = {"feature_pos": j, "quantile": float(rng.uniform(0.4, 0.7))}
            incident_feats = {system.models[m].features[j]}
        else:
            p.snapshot_fault = {"bad_day": d - 1, "factor": float(rng.uniform(4.0, 8.0))}
            frozen[(m, 1 - e)] = d  # the other arm did not retrain on the bad partition
    for (m, e), first in frozen.items():
        for d in range(first, days):
            p.starts.pop((m, e, d), None)
    # distractor: a harmless routine rollout near the onset
    d = anchor // 24
    if kind in ("upstream_data", "feature_coverage"):
        users = system.models_using(sorted(incident_feats))
        m = int(rng.choice(users)) if users else int(rng.integers(n_models))
        e = int(rng.integers(2))
        hod = int(np.clip(anchor % 24 - rng.integers(0, 4), FIRST_HOD, LAST_HOD))
    else:
        arms = [
            (m, e)
            for m in range(n_models)
            for e in range(2)
            if (m, e) not in frozen and (p.culprit is None or m != p.culprit[0])
        ]
        m, e = arms[int(rng.integers(len(arms)))]
        hod = int(np.clip(anchor % 24 + rng.integers(-3, 4), FIRST_HOD, LAST_HOD))
    p.starts[(m, e, d)] = hod
    p.ramps[(m, e, d)] = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    p.distractor_rollout = (m, e, d)
    # distractor: organic drift on features that barely matter
    weak = [f for f in range(len(system.features)) if imp[f] < 0.1 and f not in incident_feats]
    if not weak:
        weak = [int(np.argmin(imp))]
    n_drift = min(len(weak), int(rng.integers(2, 4)))
    for f in rng.choice(weak, size=n_drift, replace=False):
        world.drifts.append(
            Drift(
                feature=int(f),
                start=int(rng.integers(int(0.15 * H), int(0.85 * H))),
                ramp_hours=int(rng.integers(12, 73)),
                shift_sd=float(rng.uniform(1.0, 2.5) * rng.choice([-1.0, 1.0])),
            )
        )
    # distractor: an unrelated upstream change (partial volume in one table)
    root_src = world.source_fault.source if world.source_fault else -1
    tabs = [t for t, s in enumerate(system.table_source) if s != root_src]
    t = int(rng.choice(tabs))
    p.upstream_change = {
        "table": t,
        "drop": float(rng.uniform(0.3, 0.6)),
        "start": int(np.clip(anchor + rng.integers(-12, 13), 1, H - 1)),
    }
    return p

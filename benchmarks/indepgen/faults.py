"""Incident plans: which model breaks, how, when, and which rollouts happen around it.

A plan is data: rollout events, snapshots, per-feature breaks applied to served values after
the onset, lineage stat events, and the share of the target model's traffic that is damaged
(the top-line metric loses `drop` spread over exactly that share, so a canary at 5% of traffic
cannot be blamed for more than 5% of the metric).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import models as nets
from .knobs import Knobs
from .snapshots import Chain, Snap, train
from .world import Model, World, latent_block, observe

CAUSE = {
    "upstream_data": "upstream_data",
    "feature_coverage": "upstream_data",
    "bad_snapshot": "bad_snapshot",
    "activation_blowup": "bad_snapshot",
    "training_data": "training_data",
    "none": "none",
}


@dataclass
class Plan:
    kind: str
    target: Model
    onset_s: float
    rollouts: list[tuple[float, str, str, dict[str, float]]] = field(default_factory=list)
    snaps: dict[tuple[str, str], Snap] = field(default_factory=dict)
    breaks: dict[str, tuple[str, float]] = field(default_factory=dict)  # feature -> (mode, loss)
    root: str | None = None
    bad: Snap | None = None
    experiment: str | None = None
    trigger: str | None = None
    damaged_share: float = 1.0  # share of the target model's traffic that is damaged
    corrupt_days: dict[int, float] = field(default_factory=dict)
    benign: list[str] = field(default_factory=list)
    current: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, arm) -> snapshot

    def add(self, snap: Snap) -> Snap:
        self.snaps[(snap.model, snap.name)] = snap
        return snap

    def roll(self, t: float, model: str, arm: str, shares: dict[str, float]) -> None:
        self.rollouts.append((t, model, arm, shares))
        self.current[(model, arm)] = max(shares, key=lambda s: shares[s])


def history(world: World, plan: Plan, rng: np.random.Generator) -> dict[str, Chain]:
    """Base snapshots at the log start and one routine two-step rollout per model."""
    chains = {}
    days = world.slots * world.slot_s // 86400
    for m in world.models:
        chain = Chain(prefix=str(rng.choice(["r", "v", "m"])), build=int(rng.integers(100, 900)))
        chains[m.name] = chain
        s0 = plan.add(train(world, m, chain.next(-1, world.start), None, (-15, -1), -30000.0, rng))
        for arm in m.arms:
            plan.roll(0.0, m.name, arm, {s0.name: 1.0})
        mid = min(int(rng.integers(3, max(4, days - 5))), days - 3)
        pub = mid * 86400.0 - 20000.0
        s1 = plan.add(
            train(world, m, chain.next(mid, world.start), s0, (mid - 8, mid - 1), pub, rng)
        )
        arms = list(m.arms)
        first = arms[-1]
        t1 = mid * 86400.0 + float(rng.uniform(8, 14)) * 3600
        plan.roll(t1, m.name, first, {s0.name: 0.5, s1.name: 0.5})
        for arm in arms:
            plan.roll(t1 + 86400.0, m.name, arm, {s1.name: 1.0})
    return chains


def fine_tune(
    world: World,
    plan: Plan,
    chains: dict[str, Chain],
    model: Model,
    arm: str,
    rng: np.random.Generator,
    corrupt: dict[int, float] | None = None,
) -> Snap:
    """A new snapshot fine-tuned from the arm's current one on the last days before onset."""
    day = int(plan.onset_s // 86400)
    prev = plan.snaps[(model.name, plan.current[(model.name, arm)])]
    name = chains[model.name].next(day, world.start)
    pub = plan.onset_s - float(rng.uniform(1, 6)) * 3600
    lo = day - 5 if corrupt is None else min(corrupt) - 2
    return plan.add(train(world, model, name, prev, (lo, day), pub, rng, corrupt, arm))


def _treatment(model: Model) -> str:
    return next(a for a in model.arms if a != "ctl")


def plant(
    kind: str,
    world: World,
    plan: Plan,
    chains: dict[str, Chain],
    knobs: Knobs,
    rng: np.random.Generator,
) -> None:
    """Add the incident of `kind` to the plan (rollouts, breaks, bad snapshot, truth bits)."""
    m = plan.target
    if kind in ("bad_snapshot", "activation_blowup", "training_data"):
        _plant_snapshot(kind, world, plan, chains, knobs, rng)
    elif kind == "upstream_data":
        weights = _signal_by(world, m, lambda f: world.job_sources(world.features[f].job))
        plan.root = max(weights, key=lambda s: weights[s] * rng.uniform(0.7, 1.0))
        for f, ft in world.features.items():
            if plan.root in world.job_sources(ft.job):
                mode = "scale" if ft.ftype in ("count", "rate") else "default"
                plan.breaks[f] = (mode, knobs.break_loss * float(rng.uniform(0.8, 1.0)))
    elif kind == "feature_coverage":
        weights = _signal_by(world, m, lambda f: {world.features[f].job})
        plan.root = max(weights, key=lambda j: weights[j] * rng.uniform(0.8, 1.0))
        for f, ft in world.features.items():
            if ft.job == plan.root:
                plan.breaks[f] = ("default", knobs.coverage_loss)
    if knobs.benign_rollout:
        _benign(kind, world, plan, chains, rng)


def _signal_by(world: World, m: Model, nodes_of) -> dict[str, float]:
    out: dict[str, float] = {}
    for f, w in m.signal.items():
        for node in sorted(nodes_of(f)):
            out[node] = out.get(node, 0.0) + abs(w)
    return out


def _plant_snapshot(
    kind: str,
    world: World,
    plan: Plan,
    chains: dict[str, Chain],
    knobs: Knobs,
    rng: np.random.Generator,
) -> None:
    m = plan.target
    arm = _treatment(m)
    plan.experiment = arm
    t = plan.onset_s
    cur = plan.current[(m.name, arm)]
    if kind == "training_data":
        day = int(t // 86400)
        bad_days = list(range(day - int(rng.integers(2, 4)), day))
        plan.corrupt_days = {d: float(rng.uniform(0.25, 0.4)) for d in bad_days}
        bad = fine_tune(world, plan, chains, m, arm, rng, plan.corrupt_days)
        plan.roll(t, m.name, arm, {bad.name: 1.0})
        plan.damaged_share = m.arms[arm]
    elif kind == "bad_snapshot":
        bad = fine_tune(world, plan, chains, m, arm, rng)
        bad.bad_layer = nets.corrupt(bad.net, m.arch, rng)
        share = min(1.0, max(knobs.canary_share, knobs.drop / (0.8 * m.arms[arm])))
        plan.roll(
            t, m.name, arm, {cur: 1.0 - share, bad.name: share} if share < 1 else {bad.name: 1.0}
        )
        plan.damaged_share = share * m.arms[arm]
    else:  # activation_blowup: a full release whose bad unit fires on a few % of rows
        plan.experiment = None
        bad = fine_tune(world, plan, chains, m, arm, rng)
        frac = max(knobs.blowup_rows, knobs.drop / 0.8)
        cands = [f for f in m.features if world.features[f].ftype in ("count", "real")]
        plan.trigger = str(rng.choice(cands))
        col = m.features.index(plan.trigger)
        lat = latent_block(world, m.features, np.full(4000, t / 86400), rng)
        x = observe(world, m.features, lat)[:, col]
        thr = float(np.quantile(x, 1 - frac))
        bad.bad_layer = nets.plant_blowup(bad.net, m.arch, col, thr, float(x.std() + 1e-6), rng)
        for a in m.arms:
            plan.roll(t, m.name, a, {bad.name: 1.0})
        plan.damaged_share = frac
    plan.bad = bad


def _benign(
    kind: str, world: World, plan: Plan, chains: dict[str, Chain], rng: np.random.Generator
) -> None:
    """A healthy snapshot rolls out within the incident hour, on the arm or model next door."""
    m = plan.target
    others = [x for x in world.models if x.name != m.name]
    if kind == "activation_blowup" and others:
        model = others[int(rng.integers(len(others)))]
        arms = list(model.arms)
    else:
        model, arms = m, ["ctl"]
    t = plan.onset_s + float(rng.uniform(-25, 25)) * 60
    share = float(rng.choice([0.3, 0.5, 1.0]))
    for arm in arms:
        cur = plan.current[(model.name, arm)]
        if (model.name, arm) in {(x[1], x[2]) for x in plan.rollouts if x[0] == plan.onset_s}:
            continue
        good = fine_tune(world, plan, chains, model, arm, rng)
        shares = {cur: 1.0 - share, good.name: share} if share < 1 else {good.name: 1.0}
        plan.roll(t, model.name, arm, shares)
        plan.benign.append(f"{model.name}/{arm}/{good.name}")

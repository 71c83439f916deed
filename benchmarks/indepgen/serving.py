"""The sampled serving log: who was served which snapshot, on what inputs, predicting what.

Rows arrive at random seconds (not on a grid). A feature the feature store could not fill is
served as its default, 0.0, never as null (null means "this model does not read it"). Labels
come from the clean inputs, predictions from the served ones, so an upstream break hurts the
predictions' fit to the labels without changing the labels; a label is null until it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import models as nets
from .faults import Plan
from .knobs import Knobs
from .world import Model, World, latent_block, observe, true_logit


@dataclass
class Served:
    model: Model
    t: np.ndarray  # seconds after the log start
    arm: np.ndarray
    snapshot: np.ndarray
    x: np.ndarray  # served features
    clean: np.ndarray  # what they would have been without the incident
    filled: np.ndarray  # bool: served as the default value
    prediction: np.ndarray
    label: np.ndarray  # NaN until it arrives


def _assign_snapshots(plan: Plan, model: Model, t: np.ndarray, arm: np.ndarray, rng) -> np.ndarray:
    out = np.empty(len(t), dtype=object)
    for a in model.arms:
        events = sorted(
            (e for e in plan.rollouts if e[1] == model.name and e[2] == a), key=lambda e: e[0]
        )
        times = np.array([e[0] for e in events])
        rows = np.flatnonzero(arm == a)
        which = np.searchsorted(times, t[rows], side="right") - 1
        for k, ev in enumerate(events):
            sel = rows[which == k]
            names = list(ev[3])
            p = np.array([ev[3][s] for s in names])
            out[sel] = np.array(names, dtype=object)[rng.choice(len(names), size=len(sel), p=p)]
    return out


def _break(plan: Plan, model: Model, t: np.ndarray, x: np.ndarray, filled: np.ndarray, rng) -> None:
    after = t >= plan.onset_s
    for c, f in enumerate(model.features):
        if f not in plan.breaks:
            continue
        mode, loss = plan.breaks[f]
        rows = np.flatnonzero(after)
        if mode == "scale":
            x[rows, c] *= 1.0 - loss * rng.uniform(0.85, 1.0, len(rows))
        else:
            hit = rows[rng.random(len(rows)) < loss]
            x[hit, c] = 0.0
            filled[hit, c] = True


def serve(world: World, plan: Plan, knobs: Knobs, model: Model, rng) -> Served:
    """Sample one model's serving rows over the whole history."""
    counts = rng.poisson(knobs.rows_per_slot, world.slots)
    slot = np.repeat(np.arange(world.slots), counts)
    t = (slot + rng.random(len(slot))) * world.slot_s
    t.sort()
    arms = list(model.arms)
    arm = np.array(arms, dtype=object)[
        rng.choice(len(arms), size=len(t), p=[model.arms[a] for a in arms])
    ]
    snapshot = _assign_snapshots(plan, model, t, arm, rng)
    lat = latent_block(world, model.features, t / 86400, rng)
    clean = observe(world, model.features, lat)
    base_rate = rng.choice([0.0, 0.0, 0.003, 0.01, 0.03], size=len(model.features))
    filled = rng.random(clean.shape) < base_rate
    clean[filled] = 0.0
    x = clean.copy()
    _break(plan, model, t, x, filled, rng)
    pred = np.empty(len(t))
    for name in np.unique(snapshot):
        rows = snapshot == name
        pred[rows] = nets.predict(plan.snaps[(model.name, name)].net, x[rows])
    p = 1.0 / (1.0 + np.exp(-true_logit(model, model.features, lat)))
    label = (rng.random(len(t)) < p).astype(np.float64)
    delay = rng.gamma(3.0, max(knobs.label_delay_h, 0.01) / 3.0, len(t)) * 3600
    label[t + delay > world.slots * world.slot_s] = np.nan
    return Served(model, t, arm, snapshot, x, clean, filled, pred, label)


def effect(plan: Plan, served: Served) -> tuple[float, list[str]]:
    """Relative prediction shift the incident's breaks cause, and the broken features by effect.

    Replays the rows after the onset with clean inputs; each broken feature's share is the
    shift left when only that feature is restored.
    """
    rows = served.t >= plan.onset_s
    cols = [c for c, f in enumerate(served.model.features) if f in plan.breaks]
    if not cols or not rows.any():
        return 0.0, []
    snap = plan.snaps[(served.model.name, str(served.snapshot[rows][0]))]
    xb, xc = served.x[rows], served.clean[rows]
    pb, pc = nets.predict(snap.net, xb), nets.predict(snap.net, xc)
    base = float(np.abs(pb - pc).mean())
    rel = base / max(float(pc.mean()), 1e-9)
    gains = {}
    for c in cols:
        xr = xb.copy()
        xr[:, c] = xc[:, c]
        gains[served.model.features[c]] = base - float(
            np.abs(nets.predict(snap.net, xr) - pc).mean()
        )
    ranked = sorted(gains, key=lambda f: -gains[f])
    return rel, ranked

"""One scenario end to end: knobs -> world -> plan -> serving/metrics/lineage -> files + truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import faults, lineage, topline, writer
from .knobs import KINDS, Knobs, resolve
from .serving import effect, serve
from .snapshots import partitions
from .world import World, build_world

TRUTH_KEYS = (
    "cause",
    "model",
    "snapshot",
    "features",
    "upstream",
    "layer",
    "experiment",
    "onset",
    "affected_models",
    "downstream_features",
)


def _onset(world: World, knobs: Knobs, rng: np.random.Generator) -> float:
    """Onset a few hours before the log ends, at an odd minute (not on the cadence grid)."""
    total = world.slots * world.slot_s
    return float(
        total - knobs.hours_after_onset * 3600 + rng.integers(1, 59) * 60 + rng.integers(60)
    )


def _iso(world: World, seconds: float) -> str:
    ts = world.start.astype("datetime64[s]") + np.timedelta64(int(seconds), "s")
    return str(ts) + "+00:00"


def build(kind: str, seed: int, difficulty: str = "medium", **overrides: Any):
    """Plan and simulate a scenario in memory: (world, knobs, plan, served, truth)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    torch.set_num_threads(1)  # small nets: threads only add contention
    rng = np.random.default_rng([seed, KINDS.index(kind), 7919])
    knobs = resolve(difficulty, rng, overrides)
    world = build_world(knobs, rng)
    target = world.models[int(rng.integers(len(world.models)))]
    plan = faults.Plan(kind=kind, target=target, onset_s=_onset(world, knobs, rng))
    chains = faults.history(world, plan, rng)
    faults.plant(kind, world, plan, chains, knobs, rng)
    served = [serve(world, plan, knobs, m, rng) for m in world.models]
    truth = _truth(kind, world, knobs, plan, served)
    return world, knobs, plan, served, truth


def _truth(kind: str, world: World, knobs: Knobs, plan: faults.Plan, served: list) -> dict:
    m = plan.target
    truth: dict[str, Any] = {
        "cause": faults.CAUSE[kind],
        "model": m.name,
        "snapshot": None,
        "features": [],
        "upstream": [],
        "layer": None,
        "experiment": plan.experiment,
        "onset": _iso(world, plan.onset_s),
        "affected_models": [m.name],
        "downstream_features": [],
    }
    if plan.bad is not None:
        truth["snapshot"] = plan.bad.name
        truth["layer"] = plan.bad.bad_layer
    if plan.trigger:
        truth["features"] = [plan.trigger]
    if plan.breaks:
        truth["upstream"] = [plan.root]
        for s in served:
            rel, ranked = effect(plan, s)
            if s.model.name == m.name:
                truth["features"] = ranked
                truth["target_shift"] = rel
            elif rel > 0.05:
                truth["affected_models"].append(s.model.name)
        used = {f for s in served for f in s.model.features}
        truth["downstream_features"] = sorted(f for f in plan.breaks if f in used)
    truth["kind"] = kind
    truth["metric"] = m.metric
    truth["knobs"] = knobs.to_dict()
    truth["damaged_share"] = plan.damaged_share
    truth["benign_rollouts"] = plan.benign
    return truth


def generate(
    ws_dir: str | Path,
    truth_path: str | Path,
    kind: str,
    seed: int,
    difficulty: str = "medium",
    **overrides: Any,
) -> dict:
    """Write the workspace to `ws_dir` and the ground truth to `truth_path` (outside it)."""
    ws = Path(ws_dir)
    truth_path = Path(truth_path)
    if ws.exists() and any(ws.iterdir()):
        raise FileExistsError(f"{ws}: exists and is not empty; choose a new directory")
    if ws.resolve() in truth_path.resolve().parents:
        raise ValueError(f"{truth_path}: the truth must be written outside the workspace")
    world, knobs, plan, served, truth = build(kind, seed, difficulty, **overrides)
    rng = np.random.default_rng([seed, KINDS.index(kind), 104729])
    ws.mkdir(parents=True, exist_ok=True)
    prof = topline.profiles(world, knobs, rng)
    shifts = topline.distractors(world, knobs, prof, plan.target.metric, plan.onset_s, rng)
    # the incident metric loses `drop` in every kind; for `none` no model explains it
    series = topline.metrics(world, prof, plan.target.metric, plan.onset_s, knobs.drop, shifts, rng)
    writer.write_metrics(ws, world, series, knobs.tz)
    writer.write_serving(ws, world, served, knobs.tz)
    writer.write_rollouts(ws, world, plan, knobs.tz)
    writer.write_snapshots(ws, world, plan, knobs.tz)
    parts = []
    for m in world.models:
        corrupt = plan.corrupt_days if m.name == plan.target.name else {}
        parts += partitions(world, m, rng, corrupt)
    writer.write_training(ws, parts)
    used = {f for s in served for f in s.model.features}
    graph = lineage.graph(world, used)
    stats, decoy = lineage.node_stats(world, plan, knobs, graph, rng)
    stats += lineage.feature_stats(world, served)
    writer.write_lineage(ws, world, graph, stats, knobs.tz)
    truth["distractors"] = [
        {
            **s,
            "start": _iso(world, s["start_s"]),
            "end": _iso(world, s["end_s"]) if s["end_s"] else None,
        }
        for s in shifts
    ]
    truth["lineage_distractor"] = decoy
    truth["seed"] = seed
    truth["difficulty"] = difficulty
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=1, default=str))
    return truth

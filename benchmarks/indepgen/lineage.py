"""Lineage graph and its hourly statistics.

Sources, tables and jobs report `row_count` and `null_rate` from their own (simulated) jobs;
feature nodes report `mean` and `null_rate` measured on the served values, so a feature's stats
always agree with the serving log. An upstream break cuts the root source's rows and what flows
from it; a coverage break raises one job's null rate and its features'; an unrelated source
may also dip for a few hours on another day (a late batch that no feature noticed).
"""

from __future__ import annotations

import numpy as np

from .faults import Plan
from .knobs import Knobs
from .serving import Served
from .world import World


def graph(world: World, used: set[str]) -> dict:
    """lineage.json: sources -> tables -> jobs -> the features some model reads."""
    jobs = {world.features[f].job for f in used}
    tables = {t for j in jobs for t in world.jobs[j]}
    sources = {s for t in tables for s in world.tables[t]}
    nodes = [{"id": s, "kind": "source", "name": s.split(".", 1)[1]} for s in sorted(sources)]
    nodes += [{"id": t, "kind": "table", "name": t} for t in sorted(tables)]
    nodes += [{"id": j, "kind": "job", "name": j.split("/")[-1]} for j in sorted(jobs)]
    nodes += [{"id": f, "kind": "feature", "name": f} for f in sorted(used)]
    edges = [{"source": s, "target": t} for t in sorted(tables) for s in world.tables[t]]
    edges += [{"source": t, "target": j} for j in sorted(jobs) for t in world.jobs[j]]
    edges += [{"source": world.features[f].job, "target": f} for f in sorted(used)]
    return {"nodes": nodes, "edges": edges}


def _hours(world: World) -> np.ndarray:
    return np.arange(world.slots * world.slot_s // 3600) * 3600.0


def node_stats(
    world: World, plan: Plan, knobs: Knobs, lineage: dict, rng: np.random.Generator
) -> tuple[list[tuple[np.ndarray, str, str, np.ndarray]], dict | None]:
    """row_count / null_rate series of sources, tables and jobs; and the lineage distractor."""
    h = _hours(world)
    hit = np.clip((h + 3600 - plan.onset_s) / 3600.0, 0.0, 1.0)  # share of each hour after onset
    kinds = {n["id"]: n["kind"] for n in lineage["nodes"]}
    broken_tables = {t for t, srcs in world.tables.items() if plan.root in srcs}
    loss = max((v[1] for v in plan.breaks.values()), default=0.0)
    decoy = None
    cands = [s for s in kinds if kinds[s] == "source" and s != plan.root]
    if knobs.distractors and cands:
        start = float(rng.uniform(86400, max(86401, plan.onset_s - 86400)))
        decoy = {
            "node": str(rng.choice(cands)),
            "start_s": start,
            "end_s": start + float(rng.uniform(2, 6)) * 3600,
            "size": -float(rng.uniform(0.4, 0.7)),
        }
    out = []
    for node, kind in kinds.items():
        if kind == "feature":
            continue
        level = 10 ** rng.uniform(4, 7)
        rows = level * (1 + 0.3 * np.cos(2 * np.pi * (h / 3600 % 24 - rng.uniform(0, 24)) / 24))
        rows *= 1 + knobs.lineage_noise * rng.standard_normal(len(h))
        nulls = np.clip(rng.uniform(0.0, 0.03) + 0.002 * rng.standard_normal(len(h)), 0, 1)
        if plan.kind == "upstream_data":
            if node == plan.root or node in broken_tables:
                rows *= 1 - loss * hit
            elif kind == "job" and set(world.jobs[node]) & broken_tables:
                rows *= 1 - 0.8 * loss * hit
        if plan.kind == "feature_coverage" and node == plan.root:
            nulls = nulls + (knobs.coverage_loss - nulls) * hit
        if decoy and node == decoy["node"]:
            rows *= np.where((h >= decoy["start_s"]) & (h < decoy["end_s"]), 1 + decoy["size"], 1.0)
        out.append((h, node, "row_count", np.round(rows)))
        out.append((h, node, "null_rate", nulls))
    return out, decoy


def feature_stats(
    world: World, served: list[Served]
) -> list[tuple[np.ndarray, str, str, np.ndarray]]:
    """Hourly mean and default-fill rate of every served feature, across the models reading it."""
    n_hours = world.slots * world.slot_s // 3600
    sums: dict[str, np.ndarray] = {}
    fills: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for s in served:
        hour = np.minimum((s.t // 3600).astype(int), n_hours - 1)
        n = np.bincount(hour, minlength=n_hours).astype(float)
        for c, f in enumerate(s.model.features):
            sums[f] = sums.get(f, 0) + np.bincount(hour, s.x[:, c], minlength=n_hours)
            fills[f] = fills.get(f, 0) + np.bincount(hour, s.filled[:, c], minlength=n_hours)
            counts[f] = counts.get(f, 0) + n
    h = _hours(world)
    out = []
    for f in sorted(sums):
        ok = counts[f] > 0
        out.append((h[ok], f, "mean", sums[f][ok] / counts[f][ok]))
        out.append((h[ok], f, "null_rate", fills[f][ok] / counts[f][ok]))
    return out

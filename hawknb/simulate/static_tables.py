"""The workspace's small tables, written before the serving log: lineage, snapshot programs,
rollouts, snapshots, training partitions and training curves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from ..workspace import contract as c
from .draws import TRAIN_DAYS, HiddenModels, Partitions, Snap
from .incidents import Plan
from .models import Runner
from .system import System

CURVE_STEPS = 40
TS_TYPE = pl.Datetime("us", "UTC")

# (hour, {snapshot name: traffic share}) from that hour on
RolloutEvents = list[tuple[int, dict[str, float]]]


def rollout_events(p: Plan, snaps: dict, m: int, e: int, days: int) -> RolloutEvents:
    """Rollout events of one (model, experiment): a 10% / 50% / 100% ramp per new snapshot."""
    cur = snaps[(m, e, -1)].name
    events = [(0, {cur: 1.0})]
    for d in range(days):
        if (m, e, d) not in p.starts:
            continue
        new = snaps[(m, e, d)].name
        h0 = d * 24 + p.starts[(m, e, d)]
        r1, r2 = p.ramps[(m, e, d)]
        events += [
            (h0, {cur: 0.9, new: 0.1}),
            (h0 + r1, {cur: 0.5, new: 0.5}),
            (h0 + r1 + r2, {new: 1.0}),
        ]
        cur = new
    return events


def write_programs(out: Path, system: System, snaps: dict, runners: list[Runner]) -> None:
    """lineage.json, each model's feature list and every snapshot's exported program."""
    (out / c.LINEAGE_FILE).write_text(json.dumps(system.lineage_json(), indent=1))
    for m in system.models:
        d_ = out / c.SNAPSHOTS_DIR / m.name
        d_.mkdir(parents=True, exist_ok=True)
        (d_ / c.FEATURES_FILE).write_text(json.dumps([system.features[f].name for f in m.features]))
    for s in snaps.values():
        runners[s.model].export(
            s.served,
            out / c.SNAPSHOTS_DIR / system.models[s.model].name / f"{s.name}{c.PROGRAM_SUFFIX}",
        )


def write_rollouts(
    out: Path, system: System, p: Plan, snaps: dict, start: dt.datetime, days: int
) -> dict[tuple[int, int], RolloutEvents]:
    """rollouts.parquet; returns the events per (model, experiment) for the serving log."""
    exps = system.experiments
    rows = []
    events: dict[tuple[int, int], RolloutEvents] = {}
    for mi, m in enumerate(system.models):
        for e in range(2):
            ev = rollout_events(p, snaps, mi, e, days)
            events[(mi, e)] = ev
            for h, shares in ev:
                for sname, share in shares.items():
                    rows.append((start + dt.timedelta(hours=h), m.name, exps[e], sname, share))
    pl.DataFrame(
        rows, schema=[c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.TRAFFIC], orient="row"
    ).with_columns(pl.col(c.TS).cast(TS_TYPE)).sort(c.TS, c.MODEL, c.EXPERIMENT).write_parquet(
        out / "rollouts.parquet"
    )
    return events


def write_snapshot_table(out: Path, system: System, snaps: dict, start: dt.datetime) -> None:
    """snapshots.parquet: publish time, training window and experiment of every snapshot."""

    def midnight(d: int) -> dt.datetime:
        return start + dt.timedelta(days=d)

    pl.DataFrame(
        [
            (
                system.models[s.model].name,
                s.name,
                s.published,
                midnight(s.day - TRAIN_DAYS),
                midnight(s.day),
                system.experiments[s.exp],
            )
            for s in snaps.values()
        ],
        schema=[c.MODEL, c.SNAPSHOT, c.PUBLISHED_TS, c.TRAIN_START, c.TRAIN_END, c.EXPERIMENT],
        orient="row",
    ).with_columns(pl.col(c.PUBLISHED_TS, c.TRAIN_START, c.TRAIN_END).cast(TS_TYPE)).sort(
        c.PUBLISHED_TS
    ).write_parquet(out / "snapshots.parquet")


def write_training_tables(
    out: Path,
    system: System,
    snaps: dict[tuple[int, int, int], Snap],
    parts: Partitions,
    hidden: HiddenModels,
    start: dt.datetime,
    snap_rng: np.random.Generator,
) -> None:
    """training.parquet (partitions) and training_curves.parquet (a loss curve per snapshot
    whose floor follows the label mean it was trained on)."""
    pl.DataFrame(
        [
            (
                system.models[mi].name,
                (start + dt.timedelta(days=d)).date(),
                parts.part_rows[(mi, d)],
                parts.label_mean[(mi, d)],
            )
            for (mi, d) in sorted(parts.label_mean)
        ],
        schema={
            c.MODEL: pl.String,
            c.PARTITION: pl.Date,
            c.ROWS: pl.Int64,
            c.LABEL_MEAN: pl.Float64,
        },
        orient="row",
    ).write_parquet(out / "training.parquet")

    curve_rows = []
    for s in snaps.values():
        lm = np.mean([parts.label_mean[(s.model, k)] for k in range(s.day - TRAIN_DAYS, s.day)])
        if hidden.links[s.model] == "sigmoid":
            floor = float(-(lm * np.log(lm) + (1 - lm) * np.log(1 - lm))) * 0.9
        else:
            floor = float(hidden.spread[s.model] ** 2 * 0.5 + (lm - hidden.base[s.model]) ** 2)
        steps = np.arange(CURVE_STEPS) * 100
        tau = snap_rng.uniform(300, 900)
        loss = (
            floor * (1 + 1.5 * np.exp(-steps / tau)) * (1 + snap_rng.normal(0, 0.01, CURVE_STEPS))
        )
        curve_rows += [
            (system.models[s.model].name, s.name, int(st), float(v))
            for st, v in zip(steps, loss, strict=True)
        ]
    pl.DataFrame(
        curve_rows,
        schema={c.MODEL: pl.String, c.SNAPSHOT: pl.String, c.STEP: pl.Int64, c.LOSS: pl.Float64},
        orient="row",
    ).write_parquet(out / "training_curves.parquet")

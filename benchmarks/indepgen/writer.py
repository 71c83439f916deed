"""Write the tables of docs/workspace.md (own column order, own time zone) and the programs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from . import models as nets
from .faults import Plan
from .serving import Served
from .snapshots import curve_rows
from .world import World


def stamps(world: World, seconds: np.ndarray, tz: str) -> pl.Series:
    """Seconds after the log start as timezone-aware timestamps written in `tz`."""
    us = world.start.astype("datetime64[us]") + (np.asarray(seconds) * 1e6).astype(
        "timedelta64[us]"
    )
    s = pl.Series("ts", us).dt.replace_time_zone("UTC")
    return s.dt.convert_time_zone(tz) if tz != "UTC" else s


def write_metrics(ws: Path, world: World, series: list, tz: str) -> None:
    frames = [
        pl.DataFrame({"value": v, "metric": name, "segment": seg}).with_columns(
            stamps(world, t, tz)
        )
        for name, seg, t, v in series
    ]
    pl.concat(frames).write_parquet(ws / "metrics.parquet")


def write_serving(ws: Path, world: World, served: list[Served], tz: str) -> None:
    frames = []
    for s in served:
        cols = {
            f: pl.Series(f, s.x[:, c], dtype=pl.Float32) for c, f in enumerate(s.model.features)
        }
        df = pl.DataFrame(cols).with_columns(
            pl.Series("prediction", s.prediction),
            pl.Series("label", s.label, nan_to_null=True),
            pl.Series("snapshot", s.snapshot.astype(str)),
            pl.Series("experiment", s.arm.astype(str)),
            pl.lit(s.model.name).alias("model"),
            stamps(world, s.t, tz),
        )
        frames.append(df)
    df = pl.concat(frames, how="diagonal").sort("ts")
    feats = sorted(
        c
        for c in df.columns
        if c not in ("prediction", "label", "snapshot", "experiment", "model", "ts")
    )
    df.select(
        [*feats, "prediction", "label", "snapshot", "experiment", "model", "ts"]
    ).write_parquet(ws / "serving.parquet")


def write_rollouts(ws: Path, world: World, plan: Plan, tz: str) -> None:
    rows = [(t, m, a, s, share) for t, m, a, shares in plan.rollouts for s, share in shares.items()]
    df = pl.DataFrame(
        {
            "traffic": [r[4] for r in rows],
            "snapshot": [r[3] for r in rows],
            "experiment": [r[2] for r in rows],
            "model": [r[1] for r in rows],
        }
    ).with_columns(stamps(world, np.array([r[0] for r in rows]), tz))
    df.sort("ts", "model", "experiment").write_parquet(ws / "rollouts.parquet")


def _day(world: World, d: int) -> np.datetime64:
    return (world.start.astype("datetime64[D]") + np.timedelta64(d, "D")).astype("datetime64[us]")


def write_snapshots(ws: Path, world: World, plan: Plan, tz: str) -> None:
    snaps = list(plan.snaps.values())
    utc = lambda col: pl.col(col).dt.replace_time_zone("UTC")  # noqa: E731
    df = pl.DataFrame(
        {
            "model": [s.model for s in snaps],
            "snapshot": [s.name for s in snaps],
            "train_start": np.array([_day(world, s.train_days[0]) for s in snaps]),
            "train_end": np.array([_day(world, s.train_days[1]) for s in snaps]),
            "experiment": [s.experiment for s in snaps],
        },
        schema_overrides={"experiment": pl.String},
    ).with_columns(utc("train_start"), utc("train_end"))
    df = df.with_columns(
        stamps(world, np.array([s.published_s for s in snaps]), tz).alias("published_ts")
    )
    df.write_parquet(ws / "snapshots.parquet")
    curves = [r for s in snaps for r in curve_rows(s)]
    pl.DataFrame(curves).write_parquet(ws / "training_curves.parquet")
    for m in world.models:
        d = ws / "snapshots" / m.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "features.json").write_text(json.dumps(m.features))
    cache: dict = {}
    for s in snaps:
        m = next(x for x in world.models if x.name == s.model)
        nets.export(s.net, len(m.features), ws / "snapshots" / s.model / f"{s.name}.pt2", cache)


def write_training(ws: Path, parts: list[dict]) -> None:
    pl.DataFrame(parts).with_columns(pl.col("partition").cast(pl.Date)).write_parquet(
        ws / "training.parquet"
    )


def write_lineage(ws: Path, world: World, graph: dict, stats: list, tz: str) -> None:
    (ws / "lineage.json").write_text(json.dumps(graph, indent=1))
    frames = [
        pl.DataFrame({"value": v.astype(float), "stat": stat, "node": node}).with_columns(
            stamps(world, t, tz)
        )
        for t, node, stat, v in stats
        if len(t)
    ]
    pl.concat(frames).write_parquet(ws / "lineage_stats.parquet")

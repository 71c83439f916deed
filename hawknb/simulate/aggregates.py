"""Tables derived from the serving log's totals: the metrics and the lineage statistics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from ..workspace import contract as c
from . import metrics as mx
from .draws import HiddenModels, rng
from .incidents import Plan
from .serving_log import ServingTotals
from .static_tables import TS_TYPE
from .system import System


def write_metrics(
    out: Path,
    system: System,
    p: Plan,
    hidden: HiddenModels,
    tot: ServingTotals,
    seed: int,
    start: dt.datetime,
    H: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """metrics.parquet; returns the top-line series as served and as they would have been with
    clean weights and features (the truth measures the incident's strength against it).

    A model's contribution is its base rate times the share of the truth it "captured" (sum of
    truth * quality over sum of truth): the log is a small sample, and the ratio keeps its
    sampling noise out of metrics that stand for millions of requests.
    """
    contrib: dict[str, np.ndarray] = {}
    for mi, m in enumerate(system.models):
        shares = np.array([1 - p.test_share[mi], p.test_share[mi]])
        acc, cnt = tot.acc[:, mi], tot.cnt[mi]
        overall = acc.sum(3) / np.maximum(cnt.sum(2), 1e-12)[None]  # (2, 2, H)
        ratio = np.where(cnt[None] > 0, acc / np.maximum(cnt[None], 1e-12), overall[..., None])
        a = (ratio * shares[None, :, None, None]).sum(1) * m.share * hidden.base[mi]  # (2, H, S)
        contrib[m.role] = contrib.get(m.role, 0) + a
    served_m, clean_m, segmented = mx.assemble(
        rng(seed, 6), H, np.asarray(system.segment_p), contrib
    )
    rows = []
    ts_hours = [start + dt.timedelta(hours=h) for h in range(H)]
    tl = mx.top_line(served_m)
    for name, series in tl.items():
        rows += [(ts_hours[h], name, float(series[h]), c.TOP_LINE_SEGMENT) for h in range(H)]
        if segmented.get(name):
            for si, sname in enumerate(system.segments):
                rows += [(ts_hours[h], name, float(served_m[name][h, si]), sname) for h in range(H)]
    pl.DataFrame(rows, schema=[c.TS, c.METRIC, c.VALUE, c.SEGMENT], orient="row").with_columns(
        pl.col(c.TS).cast(TS_TYPE)
    ).write_parquet(out / "metrics.parquet")
    return tl, mx.top_line(clean_m)


def write_lineage_stats(
    out: Path,
    system: System,
    p: Plan,
    start: dt.datetime,
    H: int,
    tot: ServingTotals,
    rng: np.random.Generator,
) -> None:
    """lineage_stats.parquet: hourly row count, null rate, mean (and std for features) of every
    lineage node; sources and tables carry the upstream faults, features what the log saw."""
    fsum, fsq, fcnt, tsum, tcnt = tot.fsum, tot.fsq, tot.fcnt, tot.tsum, tot.tcnt
    h = np.arange(H)
    season = mx.seasonality(h, peak=18.0, amp=0.3)
    nodes: list[str] = []
    stats: dict[str, list[np.ndarray]] = {"row_count": [], "null_rate": [], "mean": []}
    T = len(system.tables)
    t_rows = (
        np.asarray(system.table_volume)[None, :]
        * season[:, None]
        * np.exp(rng.normal(0, 0.03, (H, T)))
    )
    uc = p.upstream_change
    t_rows[uc["start"] :, uc["table"]] *= 1 - uc["drop"]
    t_null = rng.uniform(0, 0.01, T)[None, :] * np.exp(rng.normal(0, 0.1, (H, T)))
    t_mean = np.where(tcnt > 0, tsum / np.maximum(tcnt, 1), np.nan)
    # tables no feature reads: a synthetic but stable column
    for t in range(T):
        if np.isnan(t_mean[:, t]).all():
            t_mean[:, t] = (
                rng.lognormal(0, 1)
                * (1 + 0.03 * np.sin(2 * np.pi * h / 24))
                * np.exp(rng.normal(0, 0.01, H))
            )
    sf = p.world.source_fault
    for s in range(len(system.sources)):
        tabs = [t for t, src in enumerate(system.table_source) if src == s]
        rows = t_rows[:, tabs].sum(1)
        null = (t_null[:, tabs] * t_rows[:, tabs]).sum(1) / rows
        if sf is not None and sf.source == s and sf.subtype == "default_fill":
            null = np.where(h >= sf.onset, np.minimum(1.0, null + sf.frac), null)
        w = np.nan_to_num(tcnt[:, tabs]) + 1e-9
        mean = (np.nan_to_num(t_mean[:, tabs]) * w).sum(1) / w.sum(1)
        nodes.append(system.source_id(s))
        stats["row_count"].append(rows)
        stats["null_rate"].append(null)
        stats["mean"].append(mean)
    for t in range(T):
        nodes.append(system.table_id(t))
        stats["row_count"].append(t_rows[:, t])
        stats["null_rate"].append(t_null[:, t])
        stats["mean"].append(t_mean[:, t])
    f_mean = fsum / np.maximum(fcnt, 1)
    for x in range(len(system.transforms)):
        fs = system.features_of_transform(x)
        nodes.append(system.transform_id(x))
        stats["row_count"].append(fcnt[:, fs].max(1))
        stats["null_rate"].append(np.zeros(H))
        stats["mean"].append(f_mean[:, fs].mean(1))
    std = np.sqrt(np.maximum(fsq / np.maximum(fcnt, 1) - f_mean**2, 0))
    stats["std"] = [np.full(H, np.nan)] * len(nodes)
    for i, f in enumerate(system.features):
        nodes.append(f.name)
        stats["row_count"].append(fcnt[:, i])
        stats["null_rate"].append(np.zeros(H))
        stats["mean"].append(f_mean[:, i])
        stats["std"].append(std[:, i])
    for r, t in enumerate(system.report_table):
        nodes.append(system.report_id(r))
        stats["row_count"].append(t_rows[:, t] * 0.01)
        stats["null_rate"].append(np.zeros(H))
        stats["mean"].append(t_mean[:, t] * 1.0)
        stats["std"].append(np.full(H, np.nan))
    _long_stats(nodes, stats, start, H).write_parquet(out / "lineage_stats.parquet")


def _long_stats(
    nodes: list[str], stats: dict[str, list[np.ndarray]], start: dt.datetime, H: int
) -> pl.DataFrame:
    """The (node x hour) series of every statistic as the contract's long table, finite
    values only, sorted."""
    ts = [start + dt.timedelta(hours=int(k)) for k in range(H)]
    frames = []
    for stat, series in stats.items():
        arr = np.stack(series)  # (nodes, H)
        frames.append(
            pl.DataFrame(
                {
                    c.TS: np.tile(
                        np.asarray([t.replace(tzinfo=None) for t in ts], dtype="datetime64[us]"),
                        len(nodes),
                    ),
                    c.NODE: np.repeat(nodes, H),
                    c.STAT: stat,
                    c.VALUE: arr.reshape(-1).astype(np.float64),
                }
            )
        )
    df = pl.concat(frames).filter(pl.col(c.VALUE).is_finite())
    df = df.with_columns(pl.col(c.TS).dt.replace_time_zone("UTC")).sort(c.TS, c.NODE, c.STAT)
    return df

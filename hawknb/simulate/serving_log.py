"""The serving log, streamed: rows drawn hour by hour and written in row groups, while the
aggregates the metrics, lineage statistics and truth need are summed on the way.

One random stream per (hour, model, experiment) keeps the log's contents independent of how it
is chunked, and a pyarrow ParquetWriter means a 100M-row log never has to fit in memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..workspace import contract as c
from . import metrics as mx
from .draws import HiddenModels, Snap, rng
from .incidents import Plan
from .models import Runner, forward_np
from .serving import FeatureGen
from .static_tables import RolloutEvents
from .system import System

KEEP_ROWS_PER_HOUR = 100  # post-onset rows kept per hour for the truth's feature ranking


@dataclass
class ServingTotals:
    """Sums over the whole log, kept while it streams to disk."""

    acc: np.ndarray  # (served/clean, model, exp, hour, segment): sums of truth * quality
    cnt: np.ndarray  # (model, exp, hour, segment): sums of truth (the denominator)
    fsum: np.ndarray  # (hour, feature): sums of served feature values
    fsq: np.ndarray  # (hour, feature): sums of their squares
    fcnt: np.ndarray  # (hour, feature): rows that carry the feature
    tsum: np.ndarray  # (hour, table): sums of the table's value column
    tcnt: np.ndarray  # (hour, table): rows read from the table
    deg: np.ndarray  # (2, model, hour): sum of (q_clean - q_served), rows
    keep: dict[int, list] = field(default_factory=dict)  # post-onset rows per model
    n_rows: int = 0

    @classmethod
    def empty(cls, system: System, hours: int) -> ServingTotals:
        M, S, F, T = (
            len(system.models),
            len(system.segments),
            len(system.features),
            len(system.tables),
        )
        return cls(
            acc=np.zeros((2, M, 2, hours, S)),
            cnt=np.zeros((M, 2, hours, S)),
            fsum=np.zeros((hours, F)),
            fsq=np.zeros((hours, F)),
            fcnt=np.zeros((hours, F)),
            tsum=np.zeros((hours, T)),
            tcnt=np.zeros((hours, T)),
            deg=np.zeros((2, M, hours)),
            keep={mi: [] for mi in range(M)},
        )


@dataclass
class LogInputs:
    """Everything drawn before the log that the log's rows depend on."""

    system: System
    plan: Plan
    hidden: HiddenModels
    snaps: dict[tuple[int, int, int], Snap]
    runners: list[Runner]
    events: dict[tuple[int, int], RolloutEvents]
    gens: list[FeatureGen]
    seed: int
    start: dt.datetime
    hours: int


def serving_schema(system: System) -> pa.Schema:
    """The log's columns: the contract's identity columns, then one float32 per feature."""
    fields = [
        pa.field(c.TS, pa.timestamp("us", tz="UTC")),
        pa.field(c.MODEL, pa.string()),
        pa.field(c.EXPERIMENT, pa.string()),
        pa.field(c.SNAPSHOT, pa.string()),
        pa.field(c.PREDICTION, pa.float64()),
        pa.field(c.LABEL, pa.float64()),
    ] + [pa.field(name, pa.float32()) for name in system.feature_names]
    return pa.schema(fields)


def stream_serving_log(
    out: Path, li: LogInputs, rows_per_hour: int, row_group_rows: int, progress: bool
) -> ServingTotals:
    """Write serving.parquet block by block (a block is up to a day of hours, sized to the row
    group) and return the totals summed on the way."""
    system = li.system
    H = li.hours
    tot = ServingTotals.empty(system, H)
    schema = serving_schema(system)
    writer = pq.ParquetWriter(out / "serving.parquet", schema)
    n_arms = 2 * len(system.models)
    block_hours = max(1, min(24, row_group_rows // max(1, rows_per_hour * n_arms)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=H, desc="simulate", unit="h", file=None)
    for h0 in range(0, H, block_hours):
        hrs = range(h0, min(H, h0 + block_hours))
        parts = []
        for mi in range(len(system.models)):
            for e in range(2):
                chunks = _draw_hours(li, tot, mi, e, hrs, rows_per_hour)
                parts.append(_score_rows(li, tot, mi, e, chunks))
        tot.n_rows += _write_block(writer, schema, parts, len(system.features), row_group_rows)
        if bar is not None:
            bar.update(len(hrs))
    writer.close()
    if bar is not None:
        bar.close()
    return tot


def _draw_hours(
    li: LogInputs, tot: ServingTotals, mi: int, e: int, hrs: range, rows_per_hour: int
) -> list[tuple]:
    """One (model, experiment)'s rows for these hours: features, segment, label draw, snapshot
    served, offset within the hour. Feature and table sums are added to the totals."""
    system, p = li.system, li.plan
    m = system.models[mi]
    seg_p = np.asarray(system.segment_p)
    S = len(system.segments)
    chunks = []
    for h in hrs:
        r = rng(li.seed, 10, h, mi, e)
        n = max(1, int(r.poisson(rows_per_hour)))
        fb = li.gens[mi].draw(r, n, h, p.world)
        seg = np.searchsorted(np.cumsum(seg_p), r.random(n) * seg_p.sum(), side="right").clip(
            0, S - 1
        )
        u_lab = r.random(n)
        u_snap = r.random(n)
        off = np.sort(r.integers(0, 3_600_000_000, n))
        ev = [x for x in li.events[(mi, e)] if x[0] <= h][-1][1]
        names = list(ev)
        cum = np.cumsum([ev[k] for k in names])
        pick = np.searchsorted(cum, u_snap * cum[-1], side="right").clip(0, len(names) - 1)
        snap_of_row = np.asarray(names, dtype=object)[pick]
        chunks.append((h, fb, seg, u_lab, snap_of_row, off))
        if p.onset is not None and p.onset <= h < p.onset + 24:
            k = KEEP_ROWS_PER_HOUR
            tot.keep[mi].append((h, e, fb.clean[:k], fb.served[:k], snap_of_row[:k]))
        tot.fsum[h, m.features] += fb.served.sum(0, dtype=np.float64)
        tot.fsq[h, m.features] += (fb.served.astype(np.float64) ** 2).sum(0)
        tot.fcnt[h, m.features] += n
        tot.tsum[h] += fb.table_sum
        tot.tcnt[h] += fb.table_cnt
    return chunks


def _score_rows(
    li: LogInputs, tot: ServingTotals, mi: int, e: int, chunks: list[tuple]
) -> dict[str, Any]:
    """Predictions (served and clean weights), labels (missing for the label lag's last
    hours) and quality sums for one (model, experiment)'s rows; returns the rows to write."""
    system, hidden = li.system, li.hidden
    H, S = li.hours, len(system.segments)
    m = system.models[mi]
    hour = np.concatenate([np.full(len(ch[2]), ch[0]) for ch in chunks])
    clean = np.concatenate([ch[1].clean for ch in chunks])
    served = np.concatenate([ch[1].served for ch in chunks])
    seg = np.concatenate([ch[2] for ch in chunks])
    u_lab = np.concatenate([ch[3] for ch in chunks])
    snap_names = np.concatenate([ch[4] for ch in chunks])
    off = np.concatenate([ch[5] for ch in chunks])
    pred = np.empty(len(hour), dtype=np.float32)
    pred_clean = np.empty(len(hour), dtype=np.float32)
    by_name = {s.name: s for s in li.snaps.values() if s.model == mi and s.exp == e}
    for sname in np.unique(snap_names):
        sel = snap_names == sname
        s = by_name[sname]
        pred[sel] = li.runners[mi].predict(s.served, served[sel])
        pred_clean[sel] = li.runners[mi].predict(s.clean, clean[sel])
    link, spread = hidden.links[mi], hidden.spread[mi]
    raw = forward_np(hidden.truths[mi], clean.astype(np.float64))
    if link == "sigmoid":
        t_val = 1 / (1 + np.exp(-raw))
        label = (u_lab < t_val).astype(np.float64)
    else:
        t_val = raw
        label = raw + 0.05 * (u_lab - 0.5)
    label = np.where(hour >= H - li.plan.label_lag, np.nan, label)
    q_s = mx.quality(pred, t_val, link, spread)
    q_c = mx.quality(pred_clean, t_val, link, spread)
    idx = hour * S + seg
    for wi, q in enumerate((q_s, q_c)):
        tot.acc[wi, mi, e] += np.bincount(idx, weights=t_val * q, minlength=H * S).reshape(H, S)
    tot.cnt[mi, e] += np.bincount(idx, weights=t_val, minlength=H * S).reshape(H, S)
    tot.deg[0, mi] += np.bincount(hour, weights=q_c - q_s, minlength=H)
    tot.deg[1, mi] += np.bincount(hour, minlength=H)
    start_us = int(li.start.timestamp() * 1_000_000)
    return {
        "ts": start_us + hour.astype(np.int64) * 3_600_000_000 + off,
        "model": m.name,
        "exp": system.experiments[e],
        "snap": snap_names,
        "pred": pred.astype(np.float64),
        "label": label,
        "feats": served,
        "cols": m.features,
    }


def _write_block(
    writer: pq.ParquetWriter, schema: pa.Schema, parts: list[dict], F: int, row_group_rows: int
) -> int:
    """Interleave the arms' rows by time and write them; a model's missing features are nulls."""
    n_block = sum(len(pt["ts"]) for pt in parts)
    ts_all = np.concatenate([pt["ts"] for pt in parts])
    order = np.argsort(ts_all, kind="stable")
    feat_mat = np.full((n_block, F), np.nan, dtype=np.float32)
    present = np.zeros((n_block, F), dtype=bool)
    pos = 0
    for pt in parts:
        k = len(pt["ts"])
        feat_mat[pos : pos + k][:, pt["cols"]] = pt["feats"]
        present[pos : pos + k][:, pt["cols"]] = True
        pos += k

    def repeated(key: str) -> np.ndarray:
        return np.concatenate([np.full(len(pt["ts"]), pt[key], dtype=object) for pt in parts])[
            order
        ]

    label_all = np.concatenate([pt["label"] for pt in parts])[order]
    arrays = [
        pa.array(ts_all[order], type=pa.timestamp("us", tz="UTC")),
        pa.array(repeated("model"), type=pa.string()),
        pa.array(repeated("exp"), type=pa.string()),
        pa.array(np.concatenate([pt["snap"] for pt in parts])[order], type=pa.string()),
        pa.array(np.concatenate([pt["pred"] for pt in parts])[order], type=pa.float64()),
        pa.array(label_all, mask=np.isnan(label_all), type=pa.float64()),
    ]
    feat_mat = feat_mat[order]
    present = present[order]
    for j in range(F):
        arrays.append(pa.array(feat_mat[:, j], mask=~present[:, j], type=pa.float32()))
    writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=row_group_rows)
    return n_block

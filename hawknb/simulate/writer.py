"""`simulate()`: draw a world, plant an incident, stream the workspace to disk, return the truth.

The serving log is generated hour by hour with one random stream per (hour, model,
experiment), so its contents do not depend on how it is chunked, and written in row groups
with a pyarrow ParquetWriter: a 100M-row log never has to fit in memory.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..workspace import WorkspaceError
from ..workspace import contract as c
from . import metrics as mx
from .incidents import Plan, plan
from .models import (
    Runner,
    Weights,
    calibrate,
    corrupt,
    forward_np,
    perturb,
    plant_blowup,
    true_model,
)
from .serving import FeatureGen, World
from .system import System, build_system
from .truth import CAUSE, INCIDENT_KINDS, Truth, default_truth_path

_ROLE = {
    "ctr": {"link": "sigmoid", "base": (0.02, 0.05), "spread": 1.0},
    "cvr": {"link": "sigmoid", "base": (0.06, 0.15), "spread": 0.9},
    "quality": {"link": "identity", "base": (0.4, 0.6), "spread": 0.15},
}
TRAIN_DAYS = 3
CURVE_STEPS = 40
_TABLE_FILES = [spec.file for spec in c.TABLES.values()]


@dataclass
class Snap:
    model: int
    exp: int
    day: int  # publish day (-1: serving before the window)
    name: str
    published: dt.datetime
    served: Weights
    clean: Weights
    shift: float


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _prepare_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise WorkspaceError(str(out), "exists and is not a directory", fix="pick another path")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise WorkspaceError(
                str(out),
                "is not empty",
                fix="pass --force (force=True) to replace the simulator's files, or pick a new directory",
            )
        for name in [*_TABLE_FILES, c.LINEAGE_FILE]:
            (out / name).unlink(missing_ok=True)
        snap = out / c.SNAPSHOTS_DIR
        if snap.is_dir():
            for d in snap.iterdir():
                if d.is_dir():
                    for f in [*d.glob(f"*{c.PROGRAM_SUFFIX}"), d / c.FEATURES_FILE]:
                        f.unlink(missing_ok=True)
                    if not any(d.iterdir()):
                        d.rmdir()
    out.mkdir(parents=True, exist_ok=True)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _shares(p: Plan, snaps: dict, m: int, e: int, days: int) -> list[tuple[int, dict[str, float]]]:
    """Rollout events of one (model, experiment): [(hour, {snapshot: share})]."""
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


def simulate(
    out_dir: str | Path,
    incident: str = "upstream_data",
    seed: int = 0,
    *,
    truth_path: str | Path | None = None,
    days: int = 10,
    rows_per_hour: int = 60,
    n_models: int = 3,
    features_per_model: int = 24,
    progress: bool = False,
    force: bool = False,
    row_group_rows: int = 250_000,
) -> Truth:
    """Write a complete simulated workspace with one planted incident; return its truth.

    `rows_per_hour` is per (model, experiment); the serving log has about
    ``days * 24 * n_models * 2 * rows_per_hour`` rows. The truth JSON goes to `truth_path`
    (default ``<out_dir>.truth.json``, outside the workspace).
    """
    if incident not in INCIDENT_KINDS:
        raise ValueError(f"incident={incident!r}: choose one of {list(INCIDENT_KINDS)}")
    if days < 3:
        raise ValueError(f"days={days}: the simulator needs at least 3 days of history")
    if rows_per_hour < 1:
        raise ValueError(f"rows_per_hour={rows_per_hour}: must be >= 1")
    out = Path(out_dir)
    tpath = Path(truth_path) if truth_path is not None else default_truth_path(out)
    if tpath.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"truth_path {tpath} is inside the workspace; put it outside {out}")
    _prepare_dir(out, force)

    system = build_system(_rng(seed, 1), n_models, features_per_model)
    H = 24 * days
    rng0 = _rng(seed, 2)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        days=int(rng0.integers(0, 330))
    )
    M = len(system.models)
    gens = [FeatureGen(system, m.features) for m in system.models]

    # -- hidden true models, fitted on a clean calibration sample ----------------------------
    cal_rng = _rng(seed, 3)
    x_cal, truths, base, spread, links = [], [], [], [], []
    for mi, m in enumerate(system.models):
        xs = [gens[mi].draw(cal_rng, 100, h, World()).clean for h in range(24)]
        x = np.concatenate(xs).astype(np.float64)
        role = _ROLE[m.role]
        b = float(cal_rng.uniform(*role["base"]))
        w = true_model(
            cal_rng, m.importance, m.hidden, x, link=role["link"], base=b, spread=role["spread"]
        )
        out_cal = forward_np(w, x)
        mean_truth = (
            float(np.mean(1 / (1 + np.exp(-out_cal))))
            if role["link"] == "sigmoid"
            else float(out_cal.mean())
        )
        x_cal.append(x)
        truths.append(w)
        base.append(mean_truth)
        spread.append(role["spread"])
        links.append(role["link"])

    p = plan(_rng(seed, 4), incident, system, days)

    # -- training partitions and snapshots ----------------------------------------------------
    snap_rng = _rng(seed, 5)
    first_part = -TRAIN_DAYS - 1
    label_mean: dict[tuple[int, int], float] = {}
    clean_label_mean: dict[tuple[int, int], float] = {}
    part_rows: dict[tuple[int, int], int] = {}
    for mi in range(M):
        for d in range(first_part, days):
            lm = base[mi] * (1 + snap_rng.normal(0, 0.01))
            clean_label_mean[(mi, d)] = lm
            if (
                p.kind == "training_data"
                and p.culprit
                and p.culprit[0] == mi
                and d == p.snapshot_fault["bad_day"]
            ):
                lm = lm * p.snapshot_fault["factor"]
                if links[mi] == "sigmoid":
                    lm = min(lm, 0.9)
            label_mean[(mi, d)] = lm
            part_rows[(mi, d)] = int(snap_rng.integers(200_000, 2_000_000))

    def shift_for(mi: int, d: int, means: dict) -> float:
        win = np.mean([means[(mi, k)] for k in range(d - TRAIN_DAYS, d)])
        if links[mi] == "sigmoid":
            return float(np.log(win / (1 - win)) - np.log(base[mi] / (1 - base[mi])))
        return float(win - base[mi])

    arm_truth = {}
    for mi in range(M):
        arm_truth[(mi, 0)] = perturb(snap_rng, truths[mi], 0.005)
        arm_truth[(mi, 1)] = perturb(snap_rng, truths[mi], 0.015)
    snaps: dict[tuple[int, int, int], Snap] = {}
    fault_detail: dict = {}
    blow_threshold = None
    for mi in range(M):
        for e in range(2):
            for d in [-1, *range(days)]:
                if d >= 0 and (mi, e, d) not in p.starts:
                    continue
                hod = p.starts.get((mi, e, d), int(snap_rng.integers(1, 19)))
                pub = (
                    start
                    + dt.timedelta(days=d, hours=hod)
                    - dt.timedelta(minutes=int(snap_rng.integers(30, 180)))
                )
                w = perturb(snap_rng, arm_truth[(mi, e)], 0.008)
                sh = shift_for(mi, d, clean_label_mean)
                clean_w = calibrate(w, sh)
                served_w = clean_w
                if p.culprit == (mi, e, d):
                    if p.kind == "bad_snapshot":
                        sf = p.snapshot_fault
                        served_w, fault_detail = corrupt(
                            snap_rng, clean_w, sf["subtype"], sf["layer"]
                        )
                    elif p.kind == "activation_blowup":
                        j = p.snapshot_fault["feature_pos"]
                        col = x_cal[mi][:, j]
                        blow_threshold = float(np.quantile(col, p.snapshot_fault["quantile"]))
                        served_w, fault_detail = plant_blowup(
                            snap_rng, clean_w, j, blow_threshold, float(col.std())
                        )
                        fault_detail.update(
                            threshold=blow_threshold, quantile=p.snapshot_fault["quantile"]
                        )
                    elif p.kind == "training_data":
                        sh = shift_for(mi, d, label_mean)
                        served_w = calibrate(w, sh)
                        fault_detail = {
                            "bad_partition": str(
                                (start + dt.timedelta(days=p.snapshot_fault["bad_day"])).date()
                            ),
                            "label_factor": p.snapshot_fault["factor"],
                            "calibration_shift": sh,
                        }
                day = start + dt.timedelta(days=d)
                name = f"{day:%m%d}-{int(snap_rng.integers(16**4)):04x}"
                snaps[(mi, e, d)] = Snap(mi, e, d, name, pub, served_w, clean_w, sh)

    # -- write the static parts ----------------------------------------------------------------
    (out / c.LINEAGE_FILE).write_text(json.dumps(system.lineage_json(), indent=1))
    runners = [Runner(len(m.features), m.hidden, links[i]) for i, m in enumerate(system.models)]
    for m in system.models:
        d_ = out / c.SNAPSHOTS_DIR / m.name
        d_.mkdir(parents=True, exist_ok=True)
        (d_ / c.FEATURES_FILE).write_text(json.dumps([system.features[f].name for f in m.features]))
    for s in snaps.values():
        runners[s.model].export(
            s.served,
            out / c.SNAPSHOTS_DIR / system.models[s.model].name / f"{s.name}{c.PROGRAM_SUFFIX}",
        )

    exps = system.experiments
    roll_rows = []
    events: dict[tuple[int, int], list[tuple[int, dict[str, float]]]] = {}
    for mi, m in enumerate(system.models):
        for e in range(2):
            ev = _shares(p, snaps, mi, e, days)
            events[(mi, e)] = ev
            for h, shares in ev:
                for sname, share in shares.items():
                    roll_rows.append((start + dt.timedelta(hours=h), m.name, exps[e], sname, share))
    ts_type = pl.Datetime("us", "UTC")
    pl.DataFrame(
        roll_rows, schema=[c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.TRAFFIC], orient="row"
    ).with_columns(pl.col(c.TS).cast(ts_type)).sort(c.TS, c.MODEL, c.EXPERIMENT).write_parquet(
        out / "rollouts.parquet"
    )

    midnight = lambda d: start + dt.timedelta(days=d)  # noqa: E731
    pl.DataFrame(
        [
            (
                system.models[s.model].name,
                s.name,
                s.published,
                midnight(s.day - TRAIN_DAYS),
                midnight(s.day),
                exps[s.exp],
            )
            for s in snaps.values()
        ],
        schema=[c.MODEL, c.SNAPSHOT, c.PUBLISHED_TS, c.TRAIN_START, c.TRAIN_END, c.EXPERIMENT],
        orient="row",
    ).with_columns(pl.col(c.PUBLISHED_TS, c.TRAIN_START, c.TRAIN_END).cast(ts_type)).sort(
        c.PUBLISHED_TS
    ).write_parquet(out / "snapshots.parquet")

    pl.DataFrame(
        [
            (
                system.models[mi].name,
                (start + dt.timedelta(days=d)).date(),
                part_rows[(mi, d)],
                label_mean[(mi, d)],
            )
            for (mi, d) in sorted(label_mean)
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
        lm = np.mean([label_mean[(s.model, k)] for k in range(s.day - TRAIN_DAYS, s.day)])
        if links[s.model] == "sigmoid":
            floor = float(-(lm * np.log(lm) + (1 - lm) * np.log(1 - lm))) * 0.9
        else:
            floor = float(spread[s.model] ** 2 * 0.5 + (lm - base[s.model]) ** 2)
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

    # -- the serving log, streamed -------------------------------------------------------------
    F = len(system.features)
    S = len(system.segments)
    seg_p = np.asarray(system.segment_p)
    fields = [
        pa.field(c.TS, pa.timestamp("us", tz="UTC")),
        pa.field(c.MODEL, pa.string()),
        pa.field(c.EXPERIMENT, pa.string()),
        pa.field(c.SNAPSHOT, pa.string()),
        pa.field(c.PREDICTION, pa.float64()),
        pa.field(c.LABEL, pa.float64()),
    ] + [pa.field(name, pa.float32()) for name in system.feature_names]
    schema = pa.schema(fields)
    writer = pq.ParquetWriter(out / "serving.parquet", schema)
    # accumulators
    acc = np.zeros((2, M, 2, H, S))  # (served/clean, model, exp, hour, segment) sums of truth*q
    cnt = np.zeros((M, 2, H, S))  # sums of truth (the denominator: see below)
    fsum = np.zeros((H, F))
    fsq = np.zeros((H, F))
    fcnt = np.zeros((H, F))
    tsum = np.zeros((H, len(system.tables)))
    tcnt = np.zeros((H, len(system.tables)))
    onset = p.onset
    deg = np.zeros((2, M, H))  # per hour: sum of (q_clean - q_served), rows
    keep: dict[int, list] = {mi: [] for mi in range(M)}  # post-onset rows for attribution
    label_cut = H - p.label_lag
    start_us = int(start.timestamp() * 1_000_000)
    block_hours = max(1, min(24, row_group_rows // max(1, rows_per_hour * 2 * M)))
    it = range(0, H, block_hours)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=H, desc="simulate", unit="h", file=None)
    n_rows = 0
    for h0 in it:
        hrs = range(h0, min(H, h0 + block_hours))
        parts = []
        for mi, m in enumerate(system.models):
            for e in range(2):
                chunks = []
                for h in hrs:
                    r = _rng(seed, 10, h, mi, e)
                    n = max(1, int(r.poisson(rows_per_hour)))
                    fb = gens[mi].draw(r, n, h, p.world)
                    seg = np.searchsorted(
                        np.cumsum(seg_p), r.random(n) * seg_p.sum(), side="right"
                    ).clip(0, S - 1)
                    u_lab = r.random(n)
                    u_snap = r.random(n)
                    off = np.sort(r.integers(0, 3_600_000_000, n))
                    ev = [x for x in events[(mi, e)] if x[0] <= h][-1][1]
                    names = list(ev)
                    cum = np.cumsum([ev[k] for k in names])
                    pick = np.searchsorted(cum, u_snap * cum[-1], side="right").clip(
                        0, len(names) - 1
                    )
                    snap_of_row = np.asarray(names, dtype=object)[pick]
                    chunks.append((h, fb, seg, u_lab, snap_of_row, off))
                    if onset is not None and onset <= h < onset + 24:
                        k = 100  # rows kept per hour for the truth's feature ranking
                        keep[mi].append((h, e, fb.clean[:k], fb.served[:k], snap_of_row[:k]))
                    fsum[h, m.features] += fb.served.sum(0, dtype=np.float64)
                    fsq[h, m.features] += (fb.served.astype(np.float64) ** 2).sum(0)
                    fcnt[h, m.features] += n
                    tsum[h] += fb.table_sum
                    tcnt[h] += fb.table_cnt
                hour = np.concatenate([np.full(len(ch[2]), ch[0]) for ch in chunks])
                clean = np.concatenate([ch[1].clean for ch in chunks])
                served = np.concatenate([ch[1].served for ch in chunks])
                seg = np.concatenate([ch[2] for ch in chunks])
                u_lab = np.concatenate([ch[3] for ch in chunks])
                snap_names = np.concatenate([ch[4] for ch in chunks])
                off = np.concatenate([ch[5] for ch in chunks])
                pred = np.empty(len(hour), dtype=np.float32)
                pred_clean = np.empty(len(hour), dtype=np.float32)
                by_name = {s.name: s for s in snaps.values() if s.model == mi and s.exp == e}
                for sname in np.unique(snap_names):
                    sel = snap_names == sname
                    s = by_name[sname]
                    pred[sel] = runners[mi].predict(s.served, served[sel])
                    pred_clean[sel] = runners[mi].predict(s.clean, clean[sel])
                raw = forward_np(truths[mi], clean.astype(np.float64))
                if links[mi] == "sigmoid":
                    t_val = 1 / (1 + np.exp(-raw))
                    label = (u_lab < t_val).astype(np.float64)
                else:
                    t_val = raw
                    label = raw + 0.05 * (u_lab - 0.5)
                label = np.where(hour >= label_cut, np.nan, label)
                q_s = mx.quality(pred, t_val, links[mi], spread[mi])
                q_c = mx.quality(pred_clean, t_val, links[mi], spread[mi])
                idx = (hour - 0) * S + seg
                for wi, q in enumerate((q_s, q_c)):
                    acc[wi, mi, e] += np.bincount(idx, weights=t_val * q, minlength=H * S).reshape(
                        H, S
                    )
                cnt[mi, e] += np.bincount(idx, weights=t_val, minlength=H * S).reshape(H, S)
                deg[0, mi] += np.bincount(hour, weights=q_c - q_s, minlength=H)
                deg[1, mi] += np.bincount(hour, minlength=H)
                parts.append(
                    {
                        "ts": start_us + hour.astype(np.int64) * 3_600_000_000 + off,
                        "model": m.name,
                        "exp": exps[e],
                        "snap": snap_names,
                        "pred": pred.astype(np.float64),
                        "label": label,
                        "feats": served,
                        "cols": m.features,
                    }
                )
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
        label_all = np.concatenate([pt["label"] for pt in parts])[order]
        arrays = [
            pa.array(ts_all[order], type=pa.timestamp("us", tz="UTC")),
            pa.array(
                np.concatenate([np.full(len(pt["ts"]), pt["model"], dtype=object) for pt in parts])[
                    order
                ],
                type=pa.string(),
            ),
            pa.array(
                np.concatenate([np.full(len(pt["ts"]), pt["exp"], dtype=object) for pt in parts])[
                    order
                ],
                type=pa.string(),
            ),
            pa.array(np.concatenate([pt["snap"] for pt in parts])[order], type=pa.string()),
            pa.array(np.concatenate([pt["pred"] for pt in parts])[order], type=pa.float64()),
            pa.array(label_all, mask=np.isnan(label_all), type=pa.float64()),
        ]
        feat_mat = feat_mat[order]
        present = present[order]
        for j in range(F):
            arrays.append(pa.array(feat_mat[:, j], mask=~present[:, j], type=pa.float32()))
        writer.write_table(
            pa.Table.from_arrays(arrays, schema=schema), row_group_size=row_group_rows
        )
        n_rows += n_block
        if bar is not None:
            bar.update(len(hrs))
    writer.close()
    if bar is not None:
        bar.close()

    # -- metrics -------------------------------------------------------------------------------
    # A model's contribution is its base rate times the share of the truth it "captured"
    # (sum of truth * q over sum of truth): the log is a small sample, and the ratio keeps its
    # sampling noise out of metrics that stand for millions of requests.
    contrib: dict[str, np.ndarray] = {}
    for mi, m in enumerate(system.models):
        shares = np.array([1 - p.test_share[mi], p.test_share[mi]])
        overall = acc[:, mi].sum(3) / np.maximum(cnt[mi].sum(2), 1e-12)[None]  # (2, 2, H)
        ratio = np.where(
            cnt[mi][None] > 0, acc[:, mi] / np.maximum(cnt[mi][None], 1e-12), overall[..., None]
        )
        a = (ratio * shares[None, :, None, None]).sum(1) * m.share * base[mi]  # (2, H, S)
        contrib[m.role] = contrib.get(m.role, 0) + a
    served_m, clean_m, segmented = mx.assemble(_rng(seed, 6), H, seg_p, contrib)
    met_rows = []
    ts_hours = [start + dt.timedelta(hours=h) for h in range(H)]
    tl = mx.top_line(served_m)
    for name, series in tl.items():
        met_rows += [(ts_hours[h], name, float(series[h]), c.TOP_LINE_SEGMENT) for h in range(H)]
        if segmented.get(name):
            for si, sname in enumerate(system.segments):
                met_rows += [
                    (ts_hours[h], name, float(served_m[name][h, si]), sname) for h in range(H)
                ]
    pl.DataFrame(met_rows, schema=[c.TS, c.METRIC, c.VALUE, c.SEGMENT], orient="row").with_columns(
        pl.col(c.TS).cast(ts_type)
    ).write_parquet(out / "metrics.parquet")

    # -- lineage stats -------------------------------------------------------------------------
    _write_lineage_stats(out, system, p, start, H, fsum, fsq, fcnt, tsum, tcnt, _rng(seed, 7))

    # -- the truth -----------------------------------------------------------------------------
    truth = _truth(
        p,
        system,
        seed,
        start,
        H,
        tl,
        mx.top_line(clean_m),
        deg,
        keep,
        runners,
        snaps,
        exps,
        fault_detail,
        n_rows,
    )
    truth.write(tpath)
    return truth


def _write_lineage_stats(
    out: Path, system: System, p: Plan, start: dt.datetime, H: int, fsum, fsq, fcnt, tsum, tcnt, rng
) -> None:
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
    ts = [start + dt.timedelta(hours=int(k)) for k in h]
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
    df.write_parquet(out / "lineage_stats.parquet")


def _truth(
    p,
    system,
    seed,
    start,
    H,
    tl_served,
    tl_clean,
    deg,
    keep,
    runners,
    snaps,
    exps,
    fault_detail,
    n_rows,
) -> Truth:
    kind = p.kind
    models = system.models
    distractors: list[dict] = []
    for d in p.world.drifts:
        distractors.append(
            {
                "kind": "organic_drift",
                "feature": system.features[d.feature].name,
                "start": _iso(start + dt.timedelta(hours=d.start)),
                "ramp_hours": d.ramp_hours,
                "shift_sd": d.shift_sd,
                "models": [models[m].name for m in system.models_using([d.feature])],
            }
        )
    m, e, d = p.distractor_rollout
    hod = p.starts[(m, e, d)]
    distractors.append(
        {
            "kind": "snapshot_rollout",
            "model": models[m].name,
            "experiment": exps[e],
            "snapshot": snaps[(m, e, d)].name,
            "ts": _iso(start + dt.timedelta(days=d, hours=hod)),
        }
    )
    uc = p.upstream_change
    distractors.append(
        {
            "kind": "upstream_change",
            "node": system.table_id(uc["table"]),
            "change": "row_count_drop",
            "drop": uc["drop"],
            "ts": _iso(start + dt.timedelta(hours=uc["start"])),
            "downstream_features": [],
        }
    )
    details: dict = {
        "start": _iso(start),
        "hours": H,
        "serving_rows": n_rows,
        "label_lag_hours": p.label_lag,
    }
    if kind == "none":
        return Truth(
            kind,
            seed,
            None,
            None,
            None,
            [],
            None,
            None,
            "none",
            [],
            [],
            [],
            None,
            distractors,
            details,
        )
    onset = p.onset
    strength = {k: mx.anomaly_strength(tl_served[k], tl_clean[k], onset, H) for k in tl_served}
    metric = max(strength, key=lambda k: strength[k])
    details["metric_strength"] = strength
    experiment = snapshot = layer = None
    features: list[str] = []
    downstream: list[str] = []
    upstream: list[str] = []
    post = slice(p.onset, None)
    degradation = deg[0, :, post].sum(1) / np.maximum(deg[1, :, post].sum(1), 1)
    details["prediction_degradation"] = {
        models[i].name: float(degradation[i]) for i in range(len(models))
    }
    if kind in ("upstream_data", "feature_coverage"):
        if kind == "upstream_data":
            sf = p.world.source_fault
            dfeat = system.features_of_source(sf.source)
            upstream = [system.source_id(sf.source)]
            details.update(subtype=sf.subtype, fraction=sf.frac)
        else:
            cv = p.world.coverage
            dfeat = system.features_of_transform(cv.transform)
            upstream = [system.transform_id(cv.transform)]
            details.update(
                subtype="default_fill", fraction=cv.frac, feature=system.features[cv.feature].name
            )
        downstream = [system.features[f].name for f in dfeat]
        users = system.models_using(dfeat)
        users = sorted(users, key=lambda i: -degradation[i])
        primary = users[0]
        affected = [i for i in users if degradation[i] > 0.01] or [primary]
        details["models_using_downstream"] = [models[i].name for i in users]
        # rank the primary model's downstream features by how much restoring each one
        # would move its predictions
        mspec = models[primary]
        cols = [j for j, f in enumerate(mspec.features) if f in set(dfeat)]
        impact = {}
        if keep[primary]:
            kept = sorted(keep[primary], key=lambda k: (k[0], k[1]))
            clean = np.concatenate([k[2] for k in kept])
            served = np.concatenate([k[3] for k in kept])
            names = np.concatenate([k[4] for k in kept])
            for j in cols:
                restored = served.copy()
                restored[:, j] = clean[:, j]
                diff = []
                for sname in np.unique(names):
                    sel = names == sname
                    s = next(s for s in snaps.values() if s.model == primary and s.name == sname)
                    a = runners[primary].predict(s.served, served[sel])
                    b = runners[primary].predict(s.served, restored[sel])
                    diff.append(
                        np.nan_to_num(np.abs(a.astype(np.float64) - b), nan=1e3, posinf=1e3)
                    )
                impact[system.features[mspec.features[j]].name] = float(np.concatenate(diff).mean())
        features = sorted(impact, key=lambda k: -impact[k])
        details["feature_impact"] = impact
        model = models[primary].name
        affected_names = [models[i].name for i in affected]
    else:
        cm, ce, cd = p.culprit
        model = models[cm].name
        affected_names = [model]
        experiment = exps[ce]
        snapshot = snaps[(cm, ce, cd)].name
        if kind == "bad_snapshot":
            layer = fault_detail["layer"]
        elif kind == "activation_blowup":
            layer = "net.2"
            features = [system.features[models[cm].features[p.snapshot_fault["feature_pos"]]].name]
        details.update(fault_detail)
    return Truth(
        kind=kind,
        seed=seed,
        metric=metric,
        onset=_iso(start + dt.timedelta(hours=onset)),
        model=model,
        affected_models=affected_names,
        experiment=experiment,
        snapshot=snapshot,
        cause=CAUSE[kind],
        features=features,
        downstream_features=downstream,
        upstream=upstream,
        layer=layer,
        distractors=distractors,
        details=details,
    )

"""Scale: profile a generated serving log of 1M / 10M / 100M rows, then triage the profile.

The log comes from a small generator here (not the simulator): 4 models x 2 experiments x 2
snapshots over 3 days, ``--features`` float32 features, written as Parquet in 1M-row files
ordered by time (as a warehouse partitions logs). One model's predictions and one feature
shift for the last 12 hours while the hourly top-line metric drops, so triage has something to
find. Each measured step runs in its own process; the table reports wall time and that
process's peak RSS (``ru_maxrss``):

    .venv/bin/python benchmarks/scale_profile.py --rows 1e6 1e7 [1e8] [--full-triage]

``--full-triage`` also triages the full log (no profile) for comparison. ``--replicate N``
builds each size from the kept log of size/N instead (``--keep`` it first): every file copied
N times with its timestamps shifted by 0..N-1 microseconds, so the log stays time-ordered,
covers the same 3 days and has N times the rows (a quicker way to 100M rows on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

FILE_ROWS = 1_000_000
HOURS = 72
ONSET_H = 60
T0 = np.datetime64("2026-03-01T00:00:00", "us")


def _chunk(i: int, n_files: int, rows: int, n_feat: int) -> pl.DataFrame:
    rng = np.random.default_rng(i)
    span = HOURS * 3600 * 10**6
    lo, hi = span * i // n_files, span * (i + 1) // n_files
    ts = np.sort(rng.integers(lo, hi, rows)) + T0.astype(np.int64)
    hour = (ts - T0.astype(np.int64)) // (3600 * 10**6)
    model = rng.integers(0, 4, rows)
    late = (hour >= ONSET_H) & (model == 0)
    x = rng.normal(size=(rows, n_feat)).astype(np.float32)
    x[late, 3] += 1.5  # the upstream break: one feature of model m0 moves
    logit = -2.0 + 0.4 * x[:, 0] + 0.3 * x[:, 3] + 0.2 * x[:, 5]
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(rows) < p).astype(np.float64)
    y[rng.random(rows) < 0.3] = np.nan  # labels not arrived yet
    frame = {
        "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "model": np.array(["m0", "m1", "m2", "m3"])[model],
        "experiment": np.array(["control", "test"])[rng.integers(0, 2, rows)],
        "snapshot": np.char.add(np.array(["m0", "m1", "m2", "m3"])[model], "_s")
        + (rng.random(rows) < 0.5).astype(int).astype(str),
        "prediction": p,
        "label": pl.Series(y).fill_nan(None),
    }
    frame.update({f"f{j}": x[:, j] for j in range(n_feat)})
    return pl.DataFrame(frame)


def generate(root: Path, rows: int, n_feat: int) -> Path:
    """serving log folder + metrics.parquet; returns the log folder."""
    log = root / "log"
    log.mkdir(parents=True)
    n_files = max(1, -(-rows // FILE_ROWS))
    for i in range(n_files):
        n = min(FILE_ROWS, rows - i * FILE_ROWS)
        _chunk(i, n_files, n, n_feat).write_parquet(log / f"part-{i:05d}.parquet")
    hours = np.arange(HOURS)
    rng = np.random.default_rng(1)
    value = 1000 * (1 + 0.2 * np.sin(2 * np.pi * hours / 24)) * (1 + 0.01 * rng.normal(size=HOURS))
    value[ONSET_H:] *= 0.85
    ws = root / "ws"
    ws.mkdir()
    pl.DataFrame(
        {
            "ts": pl.datetime_range(
                pl.datetime(2026, 3, 1, time_zone="UTC"),
                pl.datetime(2026, 3, 3, 23, time_zone="UTC"),
                "1h",
                eager=True,
            ),
            "metric": "revenue",
            "value": value,
        }
    ).write_parquet(ws / "metrics.parquet")
    return log


_MEASURE = """
import json, resource, sys, time
t = time.perf_counter()
from hawknb.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "s": time.perf_counter() - t,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measured(args: list[str], out: Path | None = None) -> dict:
    """Run ``hawknb ARGS`` in a fresh process; its time and peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if out is not None:
        out.write_text(proc.stdout)
    if proc.returncode or not lines:
        raise SystemExit(f"hawknb {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def merge_cost(path: Path) -> tuple[float, int]:
    """Seconds to merge the profile with itself (every sketch merged once) and its sketches."""
    from hawknb.profile import Profile

    prof = Profile.load(path)
    t = time.perf_counter()
    prof.merge(prof)
    return time.perf_counter() - t, prof.moments.height + prof.features.height


def replicate(root: Path, source: Path, times: int) -> Path:
    """``source``'s log copied ``times`` times (timestamps shifted by j us) + its metrics."""
    log = root / "log"
    log.mkdir(parents=True)
    for f in sorted((source / "log").iterdir()):
        for j in range(times):
            pl.scan_parquet(f).with_columns(
                pl.col("ts") + pl.duration(microseconds=j)
            ).sink_parquet(log / f"{f.stem}-{j:03d}.parquet")
    (root / "ws").mkdir()
    shutil.copy(source / "ws" / "metrics.parquet", root / "ws")
    return log


def run_size(
    root: Path, rows: int, n_feat: int, full: bool, replicate_n: int | None = None
) -> dict:
    if root.exists():
        shutil.rmtree(root)
    t = time.perf_counter()
    if replicate_n:
        log = replicate(root, root.parent / f"{rows // replicate_n}", replicate_n)
    else:
        log = generate(root, rows, n_feat)
    gen_s = time.perf_counter() - t
    ws = root / "ws"
    prof = measured(["profile", str(log), "--out", str(ws)])
    size = sum(f.stat().st_size for f in (ws / "profile").iterdir())
    tri = measured(["triage", str(ws), "--json"], root / "verdict_profile.json")
    merge_s, n_sketches = merge_cost(ws / "profile")
    res = {
        "rows": rows,
        "log_gib": sum(f.stat().st_size for f in log.iterdir()) / 2**30,
        "generate_s": gen_s,
        "profile_s": prof["s"],
        "profile_cpu_s": prof["cpu_s"],
        "profile_peak_gib": prof["peak_gib"],
        "profile_mib": size / 2**20,
        "sketches": n_sketches,
        "merge_self_s": merge_s,
        "triage_s": tri["s"],
        "triage_cpu_s": tri["cpu_s"],
        "triage_peak_gib": tri["peak_gib"],
    }
    if full:
        full_ws = root / "ws_full"
        full_ws.mkdir()
        shutil.copy(ws / "metrics.parquet", full_ws)
        (full_ws / "serving.parquet").symlink_to(log / "part-00000.parquet")
        if rows > FILE_ROWS:  # the contract's serving table is one file: concatenate lazily
            (full_ws / "serving.parquet").unlink()
            pl.scan_parquet(sorted(log.iterdir())).sink_parquet(full_ws / "serving.parquet")
        ft = measured(["triage", str(full_ws), "--json"], root / "verdict_full.json")
        res.update(
            {
                "full_triage_s": ft["s"],
                "full_triage_cpu_s": ft["cpu_s"],
                "full_triage_peak_gib": ft["peak_gib"],
            }
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--dir", default="/tmp/hawknb-scale")
    ap.add_argument("--full-triage", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--replicate", type=int, help="build each size from the kept size/N log")
    args = ap.parse_args()
    results = []
    for rows in args.rows:
        root = Path(args.dir) / f"{int(rows)}"
        r = run_size(root, int(rows), args.features, args.full_triage, args.replicate)
        results.append(r)
        print(json.dumps(r), flush=True)
        if not args.keep:
            shutil.rmtree(root / "log", ignore_errors=True)
            shutil.rmtree(root / "ws_full", ignore_errors=True)
    cols = [k for k in results[0] if k != "rows"]
    print("| rows | " + " | ".join(cols) + " |")
    print("|---:|" + "---:|" * len(cols))
    for r in results:
        cells = " | ".join(f"{r[k]:.2f}" if k in r else "-" for k in cols)
        print(f"| {r['rows']:,} | {cells} |")


if __name__ == "__main__":
    main()

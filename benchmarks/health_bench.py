"""Prediction health: hawknb's one-pass lazy polars kernel vs a straightforward pandas peer.

The peer is what an on-call engineer would write in a notebook: floor the timestamps, derive
the masked columns, one ``groupby().agg`` for the sums / means / quantiles. Both compute the same
table (checked before timing). Numbers are ratios pandas / polars on this machine; run with

    .venv/bin/python benchmarks/health_bench.py [--rows 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from hawknb.kernels.health import prediction_health


def make_serving(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    p = rng.beta(1, 12, n)
    p[rng.random(n) < 0.001] = np.nan
    y = (rng.random(n) < p).astype(float)
    y[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "ts": start + pd.to_timedelta(rng.integers(0, 14 * 86_400, n), "s"),
            "model": rng.choice([f"model_{i}" for i in range(6)], n),
            "experiment": rng.choice(["control", "test_a", "test_b"], n),
            "snapshot": rng.choice(["s1", "s2"], n),
            "prediction": p,
            "label": y,
            "f0": rng.normal(size=n).astype("float32"),
        }
    )


def pandas_health(df: pd.DataFrame) -> pd.DataFrame:
    """The peer: same definitions as hawknb (finite predictions, labeled rows, clipped NE)."""
    d = pd.DataFrame(
        {
            "model": df["model"],
            "experiment": df["experiment"],
            "ts": df["ts"].dt.floor("h"),
        }
    )
    p = df["prediction"]
    fin = np.isfinite(p)
    lab = fin & df["label"].notna()
    d["pf"] = p.where(fin)
    d["nonfin"] = ~fin
    d["lab"] = lab
    d["pl"] = p.where(lab)
    d["yl"] = df["label"].where(lab)
    pc = d["pl"].clip(1e-7, 1 - 1e-7)
    d["ll"] = -(d["yl"] * np.log(pc) + (1 - d["yl"]) * np.log(1 - pc))
    return _finish(d)


def _finish(d: pd.DataFrame) -> pd.DataFrame:
    g = d.groupby(["model", "experiment", "ts"], sort=True)
    out = g.agg(
        rows=("pf", "size"),
        labeled_rows=("lab", "sum"),
        mean_prediction=("pf", "mean"),
        median_prediction=("pf", "median"),
        nan_rate=("nonfin", "mean"),
        sum_p=("pl", "sum"),
        sum_y=("yl", "sum"),
        label_mean=("yl", "mean"),
        log_loss=("ll", "mean"),
    )
    out.insert(4, "p90_prediction", g["pf"].quantile(0.9))  # the fast built-in, not a lambda
    out = out.reset_index()
    out["calibration"] = (out["sum_p"] / out["sum_y"]).where(out["sum_y"] != 0)
    b = out["label_mean"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ne"] = out["log_loss"] / -(b * np.log(b) + (1 - b) * np.log(1 - b))
    out["traffic_share"] = out["rows"] / out.groupby(["model", "ts"])["rows"].transform("sum")
    return out.drop(columns=["sum_p", "sum_y"])


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = make_serving(args.rows)
    ours = prediction_health(df).sort("model", "experiment", "ts")
    peer = pandas_health(df)
    for col in ("rows", "mean_prediction", "p90_prediction", "nan_rate", "calibration", "ne"):
        a = ours[col].cast(pl.Float64).to_numpy()
        b = peer[col].to_numpy(dtype=float)
        assert np.allclose(a, b, equal_nan=True, rtol=1e-9), col
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "serving.parquet"
        df.to_parquet(path)
        t_pd_mem = _best(lambda: pandas_health(df), args.repeat)
        t_pl_mem = _best(lambda: prediction_health(df), args.repeat)
        pdf = pl.from_pandas(df, nan_to_null=False)
        t_pl_native = _best(lambda: prediction_health(pdf), args.repeat)
        t_pd_file = _best(lambda: pandas_health(pd.read_parquet(path)), args.repeat)
        t_pl_file = _best(lambda: prediction_health(pl.scan_parquet(path)), args.repeat)
    print(f"rows={args.rows:,} groups={ours.height:,} (identical results checked)")
    print(
        f"in-memory, each in its own frame type: pandas {t_pd_mem:.2f}s  hawknb on polars "
        f"{t_pl_native:.2f}s  ratio = {t_pd_mem / t_pl_native:.1f}x"
    )
    print(
        f"in-memory pandas frame (hawknb converts it): pandas {t_pd_mem:.2f}s  hawknb {t_pl_mem:.2f}s  "
        f"ratio pandas/hawknb = {t_pd_mem / t_pl_mem:.1f}x"
    )
    print(
        f"from parquet (scan):    pandas {t_pd_file:.2f}s  hawknb {t_pl_file:.2f}s  "
        f"ratio pandas/hawknb = {t_pd_file / t_pl_file:.1f}x"
    )


if __name__ == "__main__":
    main()

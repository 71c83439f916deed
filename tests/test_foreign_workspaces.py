"""The CLI on workspaces built by hand, the way someone who only read docs/workspace.md would.

Every other triage test starts from `hawknb.simulate`, whose conventions (hourly cadence, its
own names and magnitudes, its column order, a full set of tables) can hide assumptions the
contract does not make. Here each workspace is written with pandas/polars and `torch.export`
directly, deliberately unlike the simulator: minutely and 15-minute cadences, names with
spaces, dashes and non-ASCII letters, Float32 features, timestamps in a non-UTC zone, extra
and reordered columns, a module tree whose layers are not called `net.N`. The CLI is run as a
user runs it (`python -m hawknb ...` in a subprocess) and its answer is checked, not only its
exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from verdict_contract import CAUSES, VERDICT_KEYS

from hawknb.triage.calibration import NoneEvidence, none_confidence


# -- helpers ---------------------------------------------------------------------------------
def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `hawknb ARGS` the way a user does, in a fresh interpreter, so argument parsing,
    error printing and exit codes are tested along with the library."""
    return subprocess.run(
        [sys.executable, "-m", "hawknb", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _triage_json(ws: Path, *extra: str) -> dict:
    """`hawknb triage WS --json`, asserting it exits cleanly and prints one JSON document with
    every documented key; a traceback on stderr is a failure even when the exit code is 0."""
    proc = _cli("triage", str(ws), "--json", "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    missing = [k for k in VERDICT_KEYS if k not in data]
    assert not missing, f"verdict lacks {missing}: {data}"
    assert data["cause"] in CAUSES
    assert 0.0 <= data["confidence"] <= 1.0
    assert isinstance(data["features"], list)
    assert isinstance(data["upstream"], list)
    assert all({"step", "checked", "decision", "evidence"} <= set(f) for f in data["findings"])
    return data


def _check_ok(ws: Path) -> None:
    """`hawknb check WS` accepts the workspace: the contract says it is valid."""
    proc = _cli("check", str(ws))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("ok:"), proc.stdout


def _write(ws: Path, name: str, frame: pd.DataFrame | pl.DataFrame) -> None:
    """Write one contract table as Parquet with whichever library built it."""
    ws.mkdir(parents=True, exist_ok=True)
    path = ws / f"{name}.parquet"
    if isinstance(frame, pl.DataFrame):
        frame.write_parquet(path)
    else:
        frame.to_parquet(path, index=False)


class Tower(torch.nn.Module):
    """A small regression MLP whose module paths (`encoder`, `head`) are not the simulator's
    `net.N`, so a verdict's `layer` must come from the exported state_dict, not a naming habit."""

    def __init__(self, n_in: int, hidden: int = 8) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(n_in, hidden)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x))).squeeze(-1)


def _tower(n_in: int, seed: int) -> Tower:
    """A deterministic tower with a positive output bias, so predictions look like a rate."""
    torch.manual_seed(seed)
    m = Tower(n_in)
    with torch.no_grad():
        m.head.bias.fill_(5.0)
    return m.eval()


def _export(module: torch.nn.Module, n_in: int, path: Path) -> None:
    """`torch.export.save` a program with a dynamic batch, as the contract asks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1)
    prog = torch.export.export(
        module, (torch.zeros(4, n_in),), dynamic_shapes=({0: batch},), strict=False
    )
    torch.export.save(prog, str(path))


def _predict(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


def _lineage_stats(ts: pd.DatetimeIndex, values: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Long-format lineage_stats from {node: {stat: series over ts}}."""
    parts = [
        pd.DataFrame({"ts": ts, "node": node, "stat": stat, "value": series.astype(float)})
        for node, stats in values.items()
        for stat, series in stats.items()
    ]
    return pd.concat(parts, ignore_index=True)


# -- (a) an upstream break seen in a minutely metric ----------------------------------------
ETA = "eta-regressor"
FRAUD = "fraud score"
ETA_FEATURES = ["trip_km", "traffic_idx", "hour_frac"]
FRAUD_FEATURES = ["amount_eur", "n_cards"]
ONSET_A = pd.Timestamp("2026-05-12 16:00", tz="UTC")


def build_upstream_minutely(ws: Path) -> None:
    """Two days of minutely data. At ONSET_A the `gps-feed` source starts losing its values
    (null rate 1 % -> 92 %), so `trip_km` arrives as the default 0.0; the ETA model's
    predictions collapse and minutely orders drop by a quarter. The fraud model reads other
    sources and is untouched."""
    rng = np.random.default_rng(11)
    ts = pd.date_range("2026-05-11 00:00", "2026-05-12 23:59", freq="min", tz="UTC")
    n = len(ts)
    broken = np.asarray(ts >= ONSET_A)

    orders = 200.0 + rng.normal(0, 4.0, n)
    orders[broken] *= 0.75
    metrics = pd.DataFrame({"value": orders, "metric": "orders per minute", "ts": ts})
    _write(ws, "metrics", metrics)

    eta = _tower(len(ETA_FEATURES), seed=1)
    fraud = _tower(len(FRAUD_FEATURES), seed=2)
    rows = []
    for _ in range(2):  # two sampled requests per minute per model
        trip = rng.gamma(4.0, 2.5, n)
        traffic = rng.uniform(0.5, 1.5, n)
        hour = (ts.hour.to_numpy() + ts.minute.to_numpy() / 60) / 24
        clean = np.column_stack([trip, traffic, hour])
        lost = broken & (rng.random(n) < 0.92)
        served = clean.copy()
        served[lost, 0] = 0.0
        pred = _predict(eta, served)
        label = _predict(eta, clean) + rng.normal(0, 0.3, n)
        rows.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "model": ETA,
                    "experiment": "prod",
                    "snapshot": "eta@2026-05-01",
                    "prediction": pred,
                    "label": label,
                    "trip_km": served[:, 0],
                    "traffic_idx": traffic,
                    "hour_frac": hour,
                    "amount_eur": np.nan,
                    "n_cards": np.nan,
                }
            )
        )
        amount = rng.lognormal(3.0, 0.6, n)
        cards = rng.integers(1, 4, n).astype(float)
        fx = np.column_stack([amount, cards])
        rows.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "model": FRAUD,
                    "experiment": "prod",
                    "snapshot": "fraud-v9",
                    "prediction": _predict(fraud, fx),
                    "label": _predict(fraud, fx) + rng.normal(0, 0.3, n),
                    "trip_km": np.nan,
                    "traffic_idx": np.nan,
                    "hour_frac": np.nan,
                    "amount_eur": amount,
                    "n_cards": cards,
                }
            )
        )
    serving = pd.concat(rows, ignore_index=True).sort_values("ts", kind="stable")
    _write(ws, "serving", serving)

    for name, module, feats, snap in (
        (ETA, eta, ETA_FEATURES, "eta@2026-05-01"),
        (FRAUD, fraud, FRAUD_FEATURES, "fraud-v9"),
    ):
        (ws / "snapshots" / name).mkdir(parents=True, exist_ok=True)
        (ws / "snapshots" / name / "features.json").write_text(json.dumps(feats))
        _export(module, len(feats), ws / "snapshots" / name / f"{snap}.pt2")

    kinds = {"src:gps-feed": "source", "src:traffic-api": "source", "src:payments": "source"}
    kinds |= {"tbl:trips_enriched": "table", "tbl:traffic_5m": "table", "tbl:txn": "table"}
    edges = [
        ("src:gps-feed", "tbl:trips_enriched"),
        ("tbl:trips_enriched", "trip_km"),
        ("tbl:trips_enriched", "hour_frac"),
        ("src:traffic-api", "tbl:traffic_5m"),
        ("tbl:traffic_5m", "traffic_idx"),
        ("src:payments", "tbl:txn"),
        ("tbl:txn", "amount_eur"),
        ("tbl:txn", "n_cards"),
    ]
    nodes = list(dict.fromkeys(n for e in edges for n in e))
    lineage = {
        "nodes": [
            {"id": n, "kind": kinds.get(n, "feature"), "name": n.split(":")[-1]} for n in nodes
        ],
        "edges": [{"source": u, "target": v} for u, v in edges],
    }
    (ws / "lineage.json").write_text(json.dumps(lineage, ensure_ascii=False))

    # statistics every 10 minutes: only the gps-feed chain moves at the onset
    sts = pd.date_range(ts[0], ts[-1], freq="10min")
    m = len(sts)
    after = np.asarray(sts >= ONSET_A)

    def noisy(base: float, scale: float) -> np.ndarray:
        return base + rng.normal(0, scale, m)

    null_gps = np.where(after, 0.92, 0.01) + rng.normal(0, 0.003, m).clip(-0.005, 0.005)
    stats = {
        "src:gps-feed": {"row_count": noisy(6000, 60), "null_rate": null_gps},
        "tbl:trips_enriched": {"row_count": noisy(5900, 60), "null_rate": null_gps},
        "trip_km": {"null_rate": null_gps, "mean": np.where(after, 0.8, 10.0) + noisy(0, 0.2)},
        "hour_frac": {"null_rate": noisy(0.0, 0.0), "mean": noisy(0.5, 0.01)},
        "src:traffic-api": {"row_count": noisy(300, 5), "null_rate": noisy(0.02, 0.002)},
        "tbl:traffic_5m": {"row_count": noisy(300, 5), "null_rate": noisy(0.02, 0.002)},
        "traffic_idx": {"null_rate": noisy(0.0, 0.0), "mean": noisy(1.0, 0.01)},
        "src:payments": {"row_count": noisy(9000, 90), "null_rate": noisy(0.0, 0.0)},
        "tbl:txn": {"row_count": noisy(9000, 90), "null_rate": noisy(0.0, 0.0)},
        "amount_eur": {"null_rate": noisy(0.0, 0.0), "mean": noisy(24.0, 0.5)},
        "n_cards": {"null_rate": noisy(0.0, 0.0), "mean": noisy(2.0, 0.02)},
    }
    _write(ws, "lineage_stats", _lineage_stats(sts, stats))


# -- (b) a healthy workspace -----------------------------------------------------------------
def build_healthy(ws: Path) -> None:
    """Three days at a 5-minute cadence with a daily cycle and noise, two models whose
    predictions follow their labels, a routine snapshot rollout: nothing to explain."""
    rng = np.random.default_rng(5)
    ts = pd.date_range("2026-02-02", periods=3 * 288, freq="5min", tz="UTC")
    n = len(ts)
    day = np.sin(2 * np.pi * (ts.hour.to_numpy() * 60 + ts.minute.to_numpy()) / 1440)
    _write(
        ws,
        "metrics",
        pd.DataFrame(
            {
                "ts": np.concatenate([ts, ts]),
                "metric": ["sessions"] * n + ["bookings"] * n,
                "value": np.concatenate(
                    [1000 + 150 * day + rng.normal(0, 15, n), 80 + 10 * day + rng.normal(0, 2, n)]
                ),
            }
        ),
    )
    frames = []
    for model, feats, seed in (("price-model", ["a", "b"], 3), ("rank-model", ["c", "d"], 4)):
        tower = _tower(2, seed)
        for exp in ("control", "treatment"):
            x = rng.normal(0, 1, (n, 2)) + day[:, None] * 0.3
            pred = _predict(tower, x)
            f = {name: np.nan for name in ("a", "b", "c", "d")}
            f.update({feats[0]: x[:, 0], feats[1]: x[:, 1]})
            frames.append(
                pd.DataFrame(
                    {
                        "ts": ts,
                        "model": model,
                        "experiment": exp,
                        "snapshot": "s1",
                        "prediction": pred,
                        "label": pred + rng.normal(0, 0.2, n),
                        **f,
                    }
                )
            )
    _write(ws, "serving", pd.concat(frames, ignore_index=True))


# -- (c) a bad snapshot rollout --------------------------------------------------------------
RANKER = "ranker v2"
GOOD, NEXT, BAD = "r-2026-03-01", "r-2026-03-02", "r-2026-03-04-hotfix"
RANKER_FEATURES = ["dwell_s", "ctr_7d", "price_rel", "age_days"]
ROLLOUT_C = pd.Timestamp("2026-03-04 09:00", tz="UTC")


def build_bad_snapshot(ws: Path, seed: int = 23) -> None:
    """Four days at a 15-minute cadence; one model, two experiments. A routine snapshot NEXT
    replaces GOOD on day 2; BAD (NEXT with its `head` weights scaled by 1e4) ramps onto the
    `exp-α` arm at ROLLOUT_C (25 % then 100 % an hour later) and its predictions blow up,
    dragging revenue down."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-01", periods=4 * 96, freq="15min", tz="UTC")
    n_feat = len(RANKER_FEATURES)
    good = _tower(n_feat, seed=7)
    nxt = _tower(n_feat, seed=7)
    bad = _tower(n_feat, seed=7)
    with torch.no_grad():
        for p in nxt.parameters():
            p.mul_(1.0 + 1e-4 * torch.randn_like(p))
        bad.load_state_dict(nxt.state_dict())
        bad.head.weight.mul_(1e4)
    modules = {GOOD: good, NEXT: nxt, BAD: bad}
    switch = pd.Timestamp("2026-03-02 06:00", tz="UTC")
    ramp_full = ROLLOUT_C + pd.Timedelta(hours=1)

    rollouts = [
        ("2026-03-01 00:00", "ctl", GOOD, 1.0),
        ("2026-03-01 00:00", "exp-α", GOOD, 1.0),
        ("2026-03-02 06:00", "ctl", NEXT, 1.0),
        ("2026-03-02 06:00", "exp-α", NEXT, 1.0),
        (f"{ROLLOUT_C:%Y-%m-%d %H:%M}", "exp-α", NEXT, 0.75),
        (f"{ROLLOUT_C:%Y-%m-%d %H:%M}", "exp-α", BAD, 0.25),
        (f"{ramp_full:%Y-%m-%d %H:%M}", "exp-α", BAD, 1.0),
    ]
    _write(
        ws,
        "rollouts",
        pd.DataFrame(
            {
                # column order unlike the contract table's
                "traffic": [r[3] for r in rollouts],
                "snapshot": [r[2] for r in rollouts],
                "experiment": [r[1] for r in rollouts],
                "model": RANKER,
                "ts": pd.to_datetime([r[0] for r in rollouts], utc=True),
            }
        ),
    )
    frames = []
    per_slot = 6
    bad_share = np.zeros(len(ts))
    for i, t in enumerate(ts):
        for exp in ("ctl", "exp-α"):
            x = np.column_stack(
                [
                    rng.gamma(2.0, 20.0, per_slot),
                    rng.beta(2, 50, per_slot),
                    rng.normal(1.0, 0.2, per_slot),
                    rng.integers(0, 400, per_slot),
                ]
            )
            base = GOOD if t < switch else NEXT
            snaps = np.array([base] * per_slot, dtype=object)
            if exp == "exp-α" and t >= ROLLOUT_C:
                share = 1.0 if t >= ramp_full else 0.25
                snaps[rng.random(per_slot) < share] = BAD
            pred = np.empty(per_slot)
            for s in set(snaps):
                sel = snaps == s
                pred[sel] = _predict(modules[s], x[sel])
            label = _predict(good, x) + rng.normal(0, 0.3, per_slot)
            if exp == "exp-α":
                bad_share[i] = float(np.mean(snaps == BAD))
            frames.append(
                pd.DataFrame(
                    {
                        "ts": t,
                        "model": RANKER,
                        "experiment": exp,
                        "snapshot": snaps,
                        "prediction": pred,
                        "label": label,
                        **{f: x[:, j] for j, f in enumerate(RANKER_FEATURES)},
                    }
                )
            )
    _write(ws, "serving", pd.concat(frames, ignore_index=True))
    revenue = 5000 + rng.normal(0, 40, len(ts)) - 1500 * bad_share
    _write(ws, "metrics", pd.DataFrame({"ts": ts, "metric": "revenue €", "value": revenue}))
    _write(
        ws,
        "snapshots",
        pd.DataFrame(
            {
                "model": RANKER,
                "snapshot": [GOOD, NEXT, BAD],
                "published_ts": pd.to_datetime(
                    ["2026-02-28 20:00", "2026-03-02 04:00", "2026-03-04 08:00"], utc=True
                ),
                "train_start": pd.to_datetime(["2026-02-25", "2026-02-26", "2026-02-27"], utc=True),
                "train_end": pd.to_datetime(["2026-02-28", "2026-03-01", "2026-03-02"], utc=True),
            }
        ),
    )
    folder = ws / "snapshots" / RANKER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "features.json").write_text(json.dumps(RANKER_FEATURES))
    for snap, module in modules.items():
        _export(module, n_feat, folder / f"{snap}.pt2")


# -- (d) odd but valid shapes ----------------------------------------------------------------
def build_unicode_berlin(ws: Path) -> None:
    """Names with spaces, dashes and non-ASCII letters, Float32 features, timestamps stored in
    Europe/Berlin across a DST change, features.json with the same odd names, a metric that
    dips so that the walk goes past the first step."""
    rng = np.random.default_rng(31)
    ts = pd.date_range("2026-03-27 00:00", periods=96, freq="h", tz="Europe/Berlin")
    n = len(ts)
    value = 50 + rng.normal(0, 1, n)
    value[70:80] -= 12
    _write(ws, "metrics", pd.DataFrame({"ts": ts, "metric": "Umsatz (€) – gesamt", "value": value}))
    model, feats = "模型 α-1", ["längd (m)", "prix-€", "naïve score"]
    tower = _tower(3, seed=9)
    frames = []
    for exp in ("kontroll grupp", "exp—β"):
        x = rng.normal(0, 1, (n * 4, 3)).astype(np.float32)
        if exp == "exp—β":
            x[70 * 4 : 80 * 4, 1] += 6.0
        frames.append(
            pd.DataFrame(
                {
                    "ts": np.repeat(ts, 4),
                    "model": model,
                    "experiment": exp,
                    "snapshot": "snap — 1",
                    "prediction": _predict(tower, x),
                    "label": _predict(tower, x) + rng.normal(0, 0.2, n * 4),
                    **{f: x[:, j] for j, f in enumerate(feats)},
                }
            )
        )
    serving = pd.concat(frames, ignore_index=True)
    assert all(serving[f].dtype == np.float32 for f in feats)
    _write(ws, "serving", serving)
    folder = ws / "snapshots" / model
    folder.mkdir(parents=True)
    (folder / "features.json").write_text(json.dumps(feats, ensure_ascii=False))
    _export(tower, 3, folder / "snap — 1.pt2")


def build_minimal_reordered(ws: Path) -> None:
    """Only the two required tables, built with polars, columns in an unusual order, extra
    string and numeric columns, a `segment` column whose top line is null, unlabelled serving."""
    rng = np.random.default_rng(41)
    ts = pl.datetime_range(
        pl.datetime(2026, 7, 1, time_zone="UTC"),
        pl.datetime(2026, 7, 3, 23, time_zone="UTC"),
        interval="1h",
        eager=True,
    )
    n = ts.len()
    top = 300 + rng.normal(0, 5, n)
    top[55:62] += 60
    metrics = pl.DataFrame(
        {
            "source_system": ["bi-export"] * (2 * n),
            "value": np.concatenate([top, top / 3]),
            "segment": [None] * n + ["mobile"] * n,
            "metric": ["sign-ups"] * (2 * n),
            "ts": pl.concat([ts, ts]),
        }
    )
    _write(ws, "metrics", metrics)
    m = n * 5
    serving = pl.DataFrame(
        {
            "request_id": [f"req-{i}" for i in range(m)],
            "x_2": rng.normal(0, 1, m),
            "label": pl.Series([None] * m, dtype=pl.Float64),
            "prediction": rng.normal(0.3, 0.05, m),
            "snapshot": ["only"] * m,
            "x_1": rng.normal(0, 1, m),
            "experiment": ["default"] * m,
            "model": ["solo"] * m,
            "ts": ts.to_numpy().repeat(5),
            "latency_ms": rng.gamma(2.0, 10.0, m),
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    _write(ws, "serving", serving)


def build_short_single(ws: Path) -> None:
    """Thirty hours, one model, one experiment, all labels NaN (pandas' way of writing
    "not arrived"), timestamps in America/New_York, a spike near the end."""
    rng = np.random.default_rng(51)
    ts = pd.date_range("2026-11-01 00:00", periods=30, freq="h", tz="America/New_York")
    value = 10 + rng.normal(0, 0.2, 30)
    value[24:27] += 5
    _write(ws, "metrics", pd.DataFrame({"metric": "clicks", "ts": ts, "value": value}))
    x = rng.normal(0, 1, (30 * 3, 2))
    pred = 0.1 + 0.01 * x[:, 0]
    pred[24 * 3 : 27 * 3] += 0.2
    _write(
        ws,
        "serving",
        pd.DataFrame(
            {
                "ts": np.repeat(ts, 3),
                "model": "m",
                "experiment": "e",
                "snapshot": "s",
                "prediction": pred,
                "label": np.nan,
                "f-1": x[:, 0],
                "f-2": x[:, 1],
            }
        ),
    )


def build_flat(ws: Path) -> None:
    """A constant metric (nothing can be anomalous) with a serving log of a single row per
    hour: the walk must stop at the first step and say `none`."""
    ts = pd.date_range("2026-01-10", periods=48, freq="h", tz="UTC")
    _write(ws, "metrics", pd.DataFrame({"ts": ts, "metric": "revenue", "value": 100.0}))
    _write(
        ws,
        "serving",
        pd.DataFrame(
            {
                "ts": ts,
                "model": "ctr",
                "experiment": "control",
                "snapshot": "s1",
                "prediction": 0.02,
                "label": None,
                "age_days": 3.0,
            }
        ),
    )


ODD: dict[str, Callable[[Path], None]] = {
    "unicode_berlin": build_unicode_berlin,
    "minimal_reordered": build_minimal_reordered,
    "short_single": build_short_single,
    "flat": build_flat,
}


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def upstream_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("foreign") / "upstream minutely"
    build_upstream_minutely(ws)
    return ws


@pytest.fixture(scope="module")
def healthy_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("foreign") / "healthy"
    build_healthy(ws)
    return ws


#: seeds of the bad-snapshot workspace: two of the first four, the two that snapshot isolation
#: answered `upstream_data` before it could test a one-hour canary's label-based health
BAD_SNAPSHOT_SEEDS = (1, 3)


class _BadSnapshotWorkspaces(dict[int, Path]):
    """seed -> bad-snapshot workspace, built on first use, so that a test selected alone
    (`-k validate`) builds only the one it reads."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, seed: int) -> Path:
        ws = self.root / f"bad snapshot {seed}"
        build_bad_snapshot(ws, seed)
        self[seed] = ws
        return ws


@pytest.fixture(scope="module")
def bad_snapshot_workspaces(tmp_path_factory: pytest.TempPathFactory) -> _BadSnapshotWorkspaces:
    return _BadSnapshotWorkspaces(tmp_path_factory.mktemp("foreign"))


# -- tests -----------------------------------------------------------------------------------
def test_upstream_break_in_minutely_metric(upstream_ws: Path) -> None:
    """(a) The verdict names the broken model, the feature and the source, root first."""
    _check_ok(upstream_ws)
    v = _triage_json(upstream_ws)
    assert v["cause"] == "upstream_data", v
    assert v["model"] == ETA, v
    assert v["snapshot"] is None
    assert "trip_km" in v["features"][:3], v["features"]
    assert v["upstream"][:1] == ["src:gps-feed"], v["upstream"]
    onset = pd.Timestamp(v["onset"])
    assert abs(onset - ONSET_A) <= pd.Timedelta(minutes=30), v["onset"]


def test_healthy_workspace_is_none(healthy_ws: Path) -> None:
    """(b) Noise only: no cause, or one stated with little confidence."""
    _check_ok(healthy_ws)
    v = _triage_json(healthy_ws)
    assert v["cause"] == "none" or v["confidence"] < 0.3, v


@pytest.mark.parametrize("seed", BAD_SNAPSHOT_SEEDS)
def test_bad_snapshot_rollout(seed: int, bad_snapshot_workspaces: dict[int, Path]) -> None:
    """(c) The blown-up snapshot is convicted, on its model and experiment, with the layer
    named by its own module path."""
    bad_snapshot_ws = bad_snapshot_workspaces[seed]
    _check_ok(bad_snapshot_ws)
    v = _triage_json(bad_snapshot_ws)
    assert v["cause"] == "bad_snapshot", v
    assert v["model"] == RANKER
    assert v["snapshot"] == BAD
    assert v["experiment"] in (None, "exp-α")
    assert v["layer"] == "head", v["layer"]


def test_validate_cli_on_hand_built_snapshots(bad_snapshot_workspaces: dict[int, Path]) -> None:
    """`hawknb validate` fails the blown-up snapshot against its predecessor (found through
    snapshots.parquet) and passes the routine one."""
    bad_snapshot_ws = bad_snapshot_workspaces[BAD_SNAPSHOT_SEEDS[0]]
    bad = _cli("validate", str(bad_snapshot_ws), "--model", RANKER, "--snapshot", BAD, "--json")
    assert bad.returncode == 1, bad.stderr
    report = json.loads(bad.stdout)
    assert report["baseline_snapshot"] == NEXT
    assert report["passed"] is False
    ok = _cli("validate", str(bad_snapshot_ws), "--model", RANKER, "--snapshot", NEXT, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["baseline_snapshot"] == GOOD


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_shapes(name: str, tmp_path: Path) -> None:
    """(d) Valid by the contract, unlike the simulator: check accepts it and triage answers
    with a complete verdict instead of a traceback."""
    ws = tmp_path / name
    ODD[name](ws)
    _check_ok(ws)
    v = _triage_json(ws)
    quiet = none_confidence(NoneEvidence())
    if name == "flat":
        # nothing moved: "nothing wrong" is as sure as a `none` verdict gets
        assert v["cause"] == "none"
        assert v["model"] is None
        assert v["confidence"] == pytest.approx(quiet, abs=1e-3), v
    if v["cause"] == "none":
        # an unexplained move names no culprit features, and "nothing wrong" is no surer
        # than on a workspace where nothing moved
        assert v["features"] == [] and v["upstream"] == [] and v["snapshot"] is None, v
        assert v["confidence"] <= quiet + 1e-3, v
    if name == "unicode_berlin":
        # the drifted feature of the one drifted arm, names intact through Parquet and JSON
        assert v["cause"] == "upstream_data", v
        assert v["model"] == "模型 α-1"
        assert v["experiment"] == "exp—β"
        assert v["features"][:1] == ["prix-€"], v["features"]
        assert pd.Timestamp(v["onset"]) == pd.Timestamp("2026-03-29 21:00", tz="UTC")


def test_anomalies_cli_on_a_minutely_csv(tmp_path: Path) -> None:
    """`hawknb anomalies` on a minutely CSV with offset timestamps: the rows after a clear
    level drop score higher than the quiet ones before it."""
    rng = np.random.default_rng(61)
    ts = pd.date_range("2026-05-11 00:00", periods=3000, freq="min", tz="Asia/Kolkata")
    value = 200 + rng.normal(0, 4, 3000)
    value[2500:] -= 60
    src = tmp_path / "in" / "orders.csv"
    src.parent.mkdir()
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value}).to_csv(
        src, index=False
    )
    proc = _cli("anomalies", str(src.parent), "--causal", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(tmp_path / "out" / "orders.csv")
    assert len(scores) == 3000
    assert scores["anomaly_score"].between(0, 1).all()
    assert scores["anomaly_score"].iloc[2500:2530].max() > scores["anomaly_score"].iloc[
        1500:2400
    ].quantile(0.99)

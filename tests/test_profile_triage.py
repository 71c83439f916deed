"""Triage on a profile: the same verdicts as on the full serving log (held-out seeds), drift
numbers within the sketches' stated error, and health from moments equal to health from rows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import hawknb
from hawknb.kernels.health import prediction_health
from hawknb.profile import profile
from hawknb.simulate import simulate

#: held-out seeds (never tuned on), one kind each
CASES = [
    ("upstream_data", 3000),
    ("bad_snapshot", 3001),
    ("activation_blowup", 3002),
    ("training_data", 3003),
    ("feature_coverage", 3004),
]
VERDICT = ("metric", "onset", "model", "experiment", "snapshot", "cause", "features", "upstream")


def _profiled_copy(ws: Path, out: Path) -> Path:
    """``ws`` with its serving log replaced by the log's profile."""
    out.mkdir()
    for item in ws.iterdir():
        if item.name != "serving.parquet":
            (out / item.name).symlink_to(item)
    profile(ws / "serving.parquet", bucket="1h").save(out / "profile")
    return out


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple[hawknb.Workspace, hawknb.Workspace]]:
    root = tmp_path_factory.mktemp("profile_triage")
    out = {}
    for kind, seed in CASES:
        ws = root / kind
        simulate(ws, incident=kind, seed=seed, truth_path=root / f"{kind}.truth.json")
        prof = _profiled_copy(ws, root / f"{kind}_profiled")
        out[kind] = (hawknb.Workspace.open(ws), hawknb.Workspace.open(prof))
    return out


@pytest.mark.parametrize("kind", [k for k, _ in CASES])
def test_same_verdict_from_the_profile(kind, pairs) -> None:
    full, prof = pairs[kind]
    assert prof.profile is not None and "profile of" in prof.serving_source
    assert full.profile is None and "serving log" in full.serving_source
    a = hawknb.triage(full, progress=False).verdict.to_dict()
    b = hawknb.triage(prof, progress=False).verdict.to_dict()
    assert {k: a[k] for k in VERDICT if k in a} == {k: b[k] for k in VERDICT if k in b}
    assert a["layer"] == b["layer"]
    assert b["confidence"] == pytest.approx(a["confidence"], abs=1e-9)


def test_health_from_moments_equals_health_from_rows(pairs) -> None:
    full, prof = pairs["bad_snapshot"]
    for every, by_snap in (("1h", True), ("1d", False)):
        a = prediction_health(full.serving, every=every, by_snapshot=by_snap)
        b = prediction_health(prof.serving, every=every, by_snapshot=by_snap)
        assert a.select(a.columns[:5]).equals(b.select(a.columns[:5]))  # keys, ts, rows
        for col in ("mean_prediction", "std_prediction", "nan_rate", "calibration", "ne", "nmse"):
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-12)
    pooled = prof.serving.with_columns(pl.lit("all").alias("experiment"))
    assert prediction_health(pooled)["rows"].sum() == full.serving.select(pl.len()).collect()[0, 0]
    model = full.models()[0]
    assert prof.label_mean(model) == pytest.approx(full.label_mean(model), rel=1e-12)
    assert prof.snapshot_rows(model).equals(full.snapshot_rows(model))


def test_drift_from_sketches_within_stated_error(pairs) -> None:
    full, prof = pairs["upstream_data"]
    model = full.models()[0]
    feats = full.features(model)
    last = full.serving.select(pl.col("ts").max()).collect()[0, 0]
    end = last.replace(minute=0, second=0, microsecond=0)
    cur = (end - timedelta(days=1), end)
    ref = (end - timedelta(days=4), end - timedelta(days=2))
    exact = full.feature_drift(model, feats, ref, cur)
    approx = prof.feature_drift(model, feats, ref, cur)
    assert exact["n_current"].to_list() == approx["n_current"].to_list()
    assert exact["null_rate_current"].to_list() == pytest.approx(approx["null_rate_current"])
    ks_gap = (exact["ks"] - approx["ks"]).abs()
    assert (ks_gap <= approx["ks_error"]).all(), ks_gap.max()
    psi_gap = (exact["psi"] - approx["psi"]).abs()
    assert (psi_gap <= approx["psi_error"] + 1e-3).all(), (psi_gap - approx["psi_error"]).max()
    assert approx["source"][0] == prof.serving_source


def test_health_windows_the_buckets_do_not_tile_are_refused(pairs) -> None:
    _, prof = pairs["training_data"]
    with pytest.raises(hawknb.WorkspaceError, match="do not tile 15m"):
        prediction_health(prof.serving, every="15m")
    assert json.loads((prof.root / "profile" / "profile.json").read_text())["bucket"] == "1h"

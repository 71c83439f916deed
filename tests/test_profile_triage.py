"""Triage on a profile: the same verdicts as on the full serving log, the features step's
window drift read from the sketches (within their stated error of the log's exact drift), and
health from moments equal to health from rows.

CI runs small simulated workspaces (tuning seeds); the default-size cases of every incident
kind run with ``HAWKNB_SCALE=1`` (marker ``scale``), and the 25 tuning seeds of every kind in
``benchmarks/profile_verdicts.py``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import hawknb
from hawknb.kernels.health import prediction_health
from hawknb.profile import profile
from hawknb.simulate import simulate
from hawknb.triage import features as features_step
from hawknb.triage.topline import Anomaly

#: small workspaces for CI (tuning seeds: held-out seeds are scored once, elsewhere)
SMALL = {"days": 4, "n_models": 2, "features_per_model": 10}
CASES = [("upstream_data", 1), ("bad_snapshot", 2)]
#: default-size workspaces, one per incident kind (HAWKNB_SCALE=1)
SCALE_CASES = [
    ("upstream_data", 5),
    ("bad_snapshot", 6),
    ("activation_blowup", 7),
    ("training_data", 8),
    ("feature_coverage", 9),
]
VERDICT = ("metric", "onset", "model", "experiment", "snapshot", "cause", "features", "upstream")


def _profiled_copy(ws: Path, out: Path, bucket: str = "1h", **kw: object) -> Path:
    """``ws`` with its serving log replaced by the log's profile."""
    out.mkdir()
    for item in ws.iterdir():
        if item.name != "serving.parquet":
            (out / item.name).symlink_to(item)
    profile(ws / "serving.parquet", bucket=bucket, **kw).save(out / "profile")  # type: ignore[arg-type]
    return out


def _pair(root: Path, kind: str, seed: int, **sim: int) -> tuple[hawknb.Workspace, ...]:
    ws = root / kind
    simulate(ws, incident=kind, seed=seed, truth_path=root / f"{kind}.truth.json", **sim)
    prof = _profiled_copy(ws, root / f"{kind}_profiled")
    return hawknb.Workspace.open(ws), hawknb.Workspace.open(prof)


def _assert_same_verdict(full: hawknb.Workspace, prof: hawknb.Workspace) -> tuple:
    assert prof.profile is not None and "profile of" in prof.serving_source
    assert full.profile is None and "serving log" in full.serving_source
    a, b = hawknb.triage(full, progress=False), hawknb.triage(prof, progress=False)
    va, vb = a.verdict.to_dict(), b.verdict.to_dict()
    assert {k: va[k] for k in VERDICT if k in va} == {k: vb[k] for k in VERDICT if k in vb}
    assert va["layer"] == vb["layer"]
    assert vb["confidence"] == pytest.approx(va["confidence"], abs=1e-9)
    return a, b


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple]:
    """kind -> (full workspace, profiled workspace, full triage, profile triage)."""
    root = tmp_path_factory.mktemp("profile_triage")
    out = {}
    for kind, seed in CASES:
        full, prof = _pair(root, kind, seed, **SMALL)
        out[kind] = (full, prof, *_assert_same_verdict(full, prof))
    return out


@pytest.mark.parametrize("kind", [k for k, _ in CASES])
def test_same_verdict_from_the_profile(kind, pairs) -> None:
    # the fixture asserted the verdicts equal; here: every serving step says what it read
    full, prof, a, b = pairs[kind]
    for inv, ws in ((a, full), (b, prof)):
        read = [f for f in inv.findings if f.status != "skipped" and "serving" in f.evidence]
        assert read and all(ws.serving_source in f.evidence["serving"] for f in read)


@pytest.mark.scale
@pytest.mark.skipif(not os.environ.get("HAWKNB_SCALE"), reason="set HAWKNB_SCALE=1 (minutes)")
@pytest.mark.parametrize(("kind", "seed"), SCALE_CASES)
def test_same_verdict_from_the_profile_default_size(kind, seed, tmp_path) -> None:
    _assert_same_verdict(*_pair(tmp_path, kind, seed))


def test_features_step_reads_window_drift_from_the_sketches(pairs) -> None:
    _, prof, a, b = pairs["upstream_data"]
    fa, fb = a.finding("features"), b.finding("features")
    assert fa.result.drift_source == "rows" and "sketches" not in fa.evidence["serving"]
    assert fb.result.drift_source == prof.serving_source
    assert "from the KLL sketches of the profile of" in fb.evidence["serving"]
    # every 1 h bucket holds under k=200 values of a model/experiment/snapshot: its sketch
    # kept them all, so the window's numbers are the rows' own, with no error
    assert fb.evidence["drift_error"] == {"ks": 0.0, "psi": 0.0, "wasserstein": 0.0}


def _thin(full: hawknb.Workspace, tmp: Path) -> hawknb.Workspace:
    """The log's profile with a 4-row sample per bucket: the sketches see every row, the
    sample few of them."""
    return hawknb.Workspace.open(_profiled_copy(full.root, tmp / "thin", sample_rows=4))


def test_on_a_thin_sample_the_ranking_drift_is_the_sketches_within_their_error(
    pairs, tmp_path
) -> None:
    full, _, a, _ = pairs["upstream_data"]
    thin = _thin(full, tmp_path)
    done = a.finding("features").result
    ref, anom = done.reference, done.anomaly
    anomaly = Anomaly("m", anom[0], anom[1], -1, 1.0, 1.0, timedelta(hours=1))
    ranking, finding = features_step.rank(thin, done.model, anomaly)
    assert ranking is not None and ranking.drift_source == thin.serving_source
    assert ranking.n_reference_rows < done.n_reference_rows / 2  # rows: the sample's
    feats = ranking.table["feature"].to_list()
    exact = full.feature_drift(done.model, feats, ref, anom)
    approx = thin.feature_drift(done.model, feats, ref, anom)
    assert approx["n_reference"].to_list() == exact["n_reference"].to_list()  # every row
    table = ranking.table.join(approx, on="feature")
    np.testing.assert_array_equal(table["drift_psi"], table["psi"])
    np.testing.assert_array_equal(table["drift_ks"], table["ks"])
    by = exact.join(approx, on="feature", suffix="_sk")
    for k, slack in (("ks", 0.0), ("psi", 1e-3), ("wasserstein", 0.0)):
        gap = (by[k] - by[f"{k}_sk"]).abs()
        assert (gap <= by[f"{k}_error_sk"] + slack).all(), (k, gap.max())
    assert "sketches" in finding.evidence["serving"]


def test_drift_from_sketches_within_stated_error(pairs, tmp_path) -> None:
    """Daily buckets hold ~1,400 values each: the sketches compact, the numbers carry error."""
    full, *_ = pairs["upstream_data"]
    prof = hawknb.Workspace.open(_profiled_copy(full.root, tmp_path / "daily", bucket="1d"))
    model = full.models()[0]
    feats = full.features(model)
    last = full.serving.select(pl.col("ts").max()).collect()[0, 0]
    end = last.replace(hour=0, minute=0, second=0, microsecond=0)
    cur = (end - timedelta(days=1), end)
    ref = (end - timedelta(days=3), end - timedelta(days=2))
    exact = full.feature_drift(model, feats, ref, cur)
    approx = prof.feature_drift(model, feats, ref, cur)
    assert (approx["ks_error"] > 0.01).all()  # from the sketches' stated rank error
    assert exact.columns == approx.columns
    assert exact["n_current"].to_list() == approx["n_current"].to_list()
    for col in ("null_rate_current", "nonfinite_rate_current", "nonfinite_rate_reference"):
        assert exact[col].to_list() == pytest.approx(approx[col].to_list(), abs=1e-12)
    for k, slack in (("ks", 0.0), ("psi", 1e-3), ("wasserstein", 0.0)):
        gap = (exact[k] - approx[k]).abs()
        assert (gap <= approx[f"{k}_error"] + slack).all(), (k, gap.max())
    # means are exact; the robust scale is read off the sketch
    np.testing.assert_allclose(approx["mean_shift"], exact["mean_shift"], rtol=0.1, atol=0.02)
    assert approx["source"][0] == prof.serving_source


def test_health_from_moments_equals_health_from_rows(pairs) -> None:
    full, prof, *_ = pairs["bad_snapshot"]
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


def test_snapshot_rows_in_a_window_count_the_buckets_it_starts(pairs) -> None:
    """A window ending on a bucket boundary: the log counts rows up to that instant, the
    profile the buckets that start before it (not the whole bucket starting at the end)."""
    full, prof, *_ = pairs["bad_snapshot"]
    model = full.models()[0]
    first = full.serving.select(pl.col("ts").min()).collect()[0, 0]
    start = first.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    end = start + timedelta(hours=7)
    a, b = full.snapshot_rows(model, start, end), prof.snapshot_rows(model, start, end)
    at_end = full.serving.filter((pl.col("model") == model) & (pl.col("ts") == end))
    assert at_end.select(pl.len()).collect()[0, 0] == 0  # else the log would count them
    assert a.equals(b)


def test_health_windows_the_buckets_do_not_tile_are_refused(pairs) -> None:
    _, prof, *_ = pairs["bad_snapshot"]
    with pytest.raises(hawknb.WorkspaceError, match="do not tile 15m"):
        prediction_health(prof.serving, every="15m")
    assert json.loads((prof.root / "profile" / "profile.json").read_text())["bucket"] == "1h"

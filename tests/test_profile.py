"""Profiles: known moments, merge == profile of the union (within sketch error), sealed bytes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from hawknb.cli import main
from hawknb.kernels import kll
from hawknb.profile import Profile, merge_profiles, profile
from hawknb.workspace import WorkspaceError

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def _log(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    model = rng.choice(["ctr", "cvr"], n)
    f1 = rng.lognormal(size=n)
    f2 = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    f2 = np.where(rng.random(n) < 0.01, np.inf, f2)
    label = np.where(rng.random(n) < 0.3, np.nan, (rng.random(n) < 0.2).astype(float))
    return pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 4 * 3600, n)],
            "model": model,
            "experiment": rng.choice(["control", "treat"], n),
            "snapshot": np.where(model == "ctr", "s1", "s2"),
            "prediction": rng.beta(2, 8, n),
            "label": label,
            "f1": f1,
            "f2": f2,
        }
    ).with_columns(
        pl.col("f2").fill_nan(None).fill_null(pl.when(pl.col("f1") > 5).then(np.nan)),
        pl.col("label").fill_nan(None),
    )


def test_moments_match_the_rows() -> None:
    log = _log(20_000)
    prof = profile(log, bucket="1h", sample_rows=64)
    assert prof.rows == log.height
    want = (
        log.with_columns(pl.col("ts").dt.truncate("1h"))
        .group_by("model", "experiment", "snapshot", "ts")
        .agg(
            pl.len().alias("rows_want"),
            pl.col("prediction").mean().alias("mean_want"),
            pl.col("prediction").var().alias("var_want"),
            pl.col("label").sum().alias("sum_y_want"),
        )
    )
    got = prof.moments.join(want, on=["model", "experiment", "snapshot", "ts"])
    assert got.height == want.height == prof.moments.height
    np.testing.assert_array_equal(got["rows"], got["rows_want"])
    np.testing.assert_allclose(got["mean_p"], got["mean_want"], rtol=1e-12)
    np.testing.assert_allclose(got["m2_p"] / (got["n_fin"] - 1), got["var_want"], rtol=1e-9)
    np.testing.assert_allclose(got["sum_y"], got["sum_y_want"], rtol=1e-12)
    f2 = prof.features.filter(pl.col("feature") == "f2")
    assert int(f2["n"].sum()) == log["f2"].is_not_null().sum()
    assert int(f2["n_fin"].sum()) == log["f2"].is_finite().sum()
    # at most sample_rows per stratum and bucket, and rows of every stratum
    per = prof.sample.group_by("model", "experiment", "snapshot", pl.col("ts").dt.truncate("1h"))
    assert per.len()["len"].max() == 64 and per.len().height == prof.moments.height


def _assert_same(a: Profile, b: Profile) -> None:
    keys = ["model", "experiment", "snapshot", "ts"]
    ma, mb = a.moments.sort(keys), b.moments.sort(keys)
    assert ma.select(keys).equals(mb.select(keys))
    for col in ("rows", "labeled_rows", "n_fin", "n_unit", "n_y_bad"):
        np.testing.assert_array_equal(ma[col], mb[col])
    for col in ("mean_p", "m2_p", "sum_p_lab", "sum_y", "sum_ll", "sum_se"):
        np.testing.assert_allclose(ma[col], mb[col], rtol=1e-9, atol=1e-9)
    fa, fb = a.features.sort([*keys, "feature"]), b.features.sort([*keys, "feature"])
    for col in ("n", "n_fin", "min", "max"):
        np.testing.assert_array_equal(fa[col], fb[col])
    np.testing.assert_allclose(fa["m2"], fb["m2"], rtol=1e-9, atol=1e-9)
    # sketches: the same quantiles within both sketches' stated rank error
    qs = np.linspace(0.05, 0.95, 19)
    for x, y in zip(fa["sketch"].to_list(), fb["sketch"].to_list(), strict=True):
        sx, sy = kll.unseal(x), kll.unseal(y)
        assert sx.n == sy.n
        ranks = np.array(sy.get_cdf(list(sx.get_quantiles(qs))))[:-1]
        assert np.max(np.abs(ranks - qs)) <= kll.rank_error(sx) + kll.rank_error(sy) + 1e-9
    assert a.sample.sort([*keys, "_h"]).equals(b.sample.sort([*keys, "_h"]))


def test_merge_equals_profile_of_the_union_and_is_associative() -> None:
    log = _log(30_000, seed=1)
    parts = [log[i::3] for i in range(3)]  # interleaved: every bucket is split
    kw = {"bucket": "15m", "sample_rows": 16, "k": 64}
    whole = profile(log, **kw)
    a, b, c = (profile(p, **kw) for p in parts)
    _assert_same(merge_profiles([a, b, c]), whole)
    _assert_same(a.merge(b).merge(c), a.merge(b.merge(c)))
    # batching inside one job is the same fold
    _assert_same(profile(log, batch_rows=1_000, **kw), whole)


def test_save_load_and_a_flipped_byte_is_refused(tmp_path) -> None:
    prof = profile(_log(5_000, seed=2), bucket="1h", sample_rows=8)
    back = Profile.load(prof.save(tmp_path / "p"))
    _assert_same(back, prof)
    feats = back.features
    blob = bytearray(feats["sketch"][3])
    blob[len(blob) // 2] ^= 0x10
    feats = feats.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit(bytes(blob)))
        .otherwise(pl.col("sketch"))
        .alias("sketch")
    )
    feats.write_parquet(tmp_path / "p" / "features.parquet")
    with pytest.raises(WorkspaceError, match="row 3: sketch: corrupt"):
        Profile.load(tmp_path / "p")


def test_bad_input(tmp_path) -> None:
    log = _log(100)
    with pytest.raises(WorkspaceError, match="missing columns"):
        profile(log.drop("snapshot"))
    with pytest.raises(WorkspaceError, match="UTC"):
        profile(log.with_columns(pl.col("ts").dt.replace_time_zone(None)))
    with pytest.raises(WorkspaceError, match="no rows"):
        profile(log.head(0))
    with pytest.raises(ValueError, match="bucket"):
        profile(log, bucket="soon")
    with pytest.raises(WorkspaceError, match="does not exist"):
        profile(tmp_path / "nope.parquet")
    with pytest.raises(ValueError, match="merge: profiles differ in bucket"):
        profile(log, bucket="1h").merge(profile(log, bucket="15m"))


def test_cli_writes_and_refuses_to_replace(tmp_path, capsys) -> None:
    _log(3_000).write_parquet(tmp_path / "serving.parquet")
    out = tmp_path / "ws"
    assert main(["profile", str(tmp_path / "serving.parquet"), "--out", str(out)]) == 0
    assert "profiled 3,000 rows" in capsys.readouterr().out
    assert Profile.load(out / "profile").rows == 3_000
    assert main(["profile", str(tmp_path / "serving.parquet"), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    logs = tmp_path / "logs" / "day=1"
    logs.mkdir(parents=True)
    _log(1_000, seed=1).write_parquet(logs / "a.parquet")
    _log(500, seed=2).write_parquet(logs / "b.parquet")
    assert main(["profile", str(tmp_path / "logs"), "--out", str(out), "--force"]) == 0
    assert Profile.load(out / "profile").rows == 1_500


def test_health_quantiles_from_sketches_within_rank_error() -> None:
    """Above EXACT_QUANTILE_ROWS, health's median/p90 come from streamed KLL sketches: within
    the stated rank error of the exact ones, and every other column unchanged."""
    from hawknb.kernels.health import prediction_health

    log = _log(40_000, seed=3)
    exact = prediction_health(log.lazy(), exact_quantiles=True)
    approx = prediction_health(log.lazy(), exact_quantiles=False)
    for col in exact.columns:
        if col in ("median_prediction", "p90_prediction"):
            continue
        if exact[col].dtype.is_float():  # parallel sums: equal up to summation order
            np.testing.assert_allclose(exact[col], approx[col], rtol=1e-12)
        else:
            assert exact[col].equals(approx[col])
    eps = kll.rank_error(kll.kll(np.zeros(1000)))
    windows = log.with_columns(pl.col("ts").dt.truncate("1h")).partition_by(
        "model", "experiment", "ts", as_dict=True
    )
    errors = []
    for row in approx.iter_rows(named=True):
        p = windows[(row["model"], row["experiment"], row["ts"])]["prediction"].to_numpy()
        p = np.sort(p[np.isfinite(p)])
        for q, col in ((0.5, "median_prediction"), (0.9, "p90_prediction")):
            rank = np.searchsorted(p, row[col], side="right") / p.size
            errors.append((abs(rank - q) - 1 / p.size) / eps)
    # the stated error is a 99% bound per query: over many queries a few may pass it
    errors = np.array(errors)
    assert errors.size >= 30 and (errors > 1).mean() <= 0.1 and errors.max() <= 2


def test_union_of_sketches_is_deterministic_and_exact_where_they_are() -> None:
    from hawknb.profile.union import Union

    rng = np.random.default_rng(4)
    small = [rng.normal(i, 1 + i, 150) for i in range(6)]  # each under k: kept whole
    u = Union(kll.kll(v) for v in small)
    allv = np.sort(np.concatenate(small))
    n = allv.size
    assert u.n == n and u.normalized_rank_error() == 0.0 and u.exact
    np.testing.assert_array_equal(u.values(), allv)
    ranks = np.array([0.0, 0.01, 0.25, 0.5, 0.9, 1.0])
    # the smallest value whose inclusive rank reaches u (KLL's definition)
    want = allv[np.clip(np.ceil(ranks * n).astype(int) - 1, 0, n - 1)]
    np.testing.assert_array_equal(u.get_quantiles(ranks), want)
    pts = np.array([-3.0, 0.0, allv[100], 7.5])
    np.testing.assert_allclose(u.get_cdf(pts)[:-1], np.searchsorted(allv, pts, "right") / n)
    np.testing.assert_allclose(u.get_cdf(pts, False)[:-1], np.searchsorted(allv, pts, "left") / n)
    assert (u.get_min_value(), u.get_max_value()) == (allv[0], allv[-1])

    big = [rng.lognormal(size=20_000) for _ in range(5)]  # estimation mode
    sks = [kll.kll(v) for v in big]
    first = Union(sks).get_quantiles(np.linspace(0, 1, 101))
    again = Union(sks).get_quantiles(np.linspace(0, 1, 101))
    np.testing.assert_array_equal(first, again)  # a DataSketches merge would differ
    truth = np.sort(np.concatenate(big))
    union = Union(sks)
    err = union.normalized_rank_error()
    assert not union.exact
    assert err == pytest.approx(kll.rank_error(sks[0]))
    gap = np.abs(
        union.get_cdf(truth[::97])[:-1] - np.searchsorted(truth, truth[::97], "right") / truth.size
    )
    assert gap.max() <= err
    assert Union([]).is_empty() and np.isnan(Union([]).get_quantiles([0.5])[0])


def test_profile_health_windows_start_at_the_offset_floored_to_a_bucket() -> None:
    """A profile summed its rows per bucket, so a health window can only start on a bucket:
    an offset of 20 minutes on 15-minute buckets starts the windows 15 minutes after the hour,
    and their rows are the log's rows in those windows."""
    from hawknb.kernels.health import prediction_health
    from hawknb.profile.view import serving_view

    log = _log(20_000)
    view = serving_view(profile(log, bucket="15m", sample_rows=32))
    got = prediction_health(view, every="1h", offset=dt.timedelta(minutes=20)).sort(
        "model", "experiment", "ts"
    )
    assert {t.minute for t in got["ts"]} == {15}
    want = prediction_health(log, every="1h", offset=dt.timedelta(minutes=15)).sort(
        "model", "experiment", "ts"
    )
    assert got["rows"].to_list() == want["rows"].to_list()
    np.testing.assert_allclose(got["mean_prediction"], want["mean_prediction"], rtol=1e-9)

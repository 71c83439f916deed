"""Spark engine: the profile of a Spark DataFrame equals the polars profile of the same rows
(counts, moments and sample exactly; quantiles within the sketches' rank error), local[2]."""

from __future__ import annotations

import pytest

pytest.importorskip("pyspark")

from test_profile import _assert_same, _log

from hawknb import spark
from hawknb.cli import main
from hawknb.profile import Profile, profile
from hawknb.workspace import WorkspaceError

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def session():
    s = spark.session("local[2]")
    # small Arrow batches and several partitions: partials really are merged
    s.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
    yield s
    s.stop()


def test_spark_profile_equals_polars_profile(session, tmp_path) -> None:
    log = _log(20_000, seed=4)
    log.write_parquet(tmp_path / "serving.parquet")
    df = session.read.parquet(str(tmp_path / "serving.parquet")).repartition(4)
    kw = {"bucket": "15m", "sample_rows": 16, "k": 64}
    got = spark.profile(df, **kw)
    assert got.meta["engine"] == "spark" and got.rows == log.height
    _assert_same(got, profile(log, **kw))
    assert spark.from_bytes(spark.to_bytes(got)).moments.equals(got.moments)


def test_spark_bad_input(session) -> None:
    df = session.createDataFrame([(1.0,)], "prediction double")
    with pytest.raises(WorkspaceError, match="missing columns"):
        spark.profile(df)


def test_cli_engine_spark(session, tmp_path) -> None:
    _log(3_000, seed=5).write_parquet(tmp_path / "serving.parquet")
    out = tmp_path / "ws"
    args = ["profile", str(tmp_path / "serving.parquet"), "--out", str(out), "--engine", "spark"]
    assert main([*args, "--master", "local[2]"]) == 0
    assert Profile.load(out / "profile").rows == 3_000

"""Apache Spark as the profile engine past one machine: ``hawknb.spark.profile(df)``.

The serving log stays where it is; each Spark task turns its partition's Arrow batches into
one partial profile with the very function the polars engine uses
(:func:`hawknb.profile.partial.profile_batch`: per-batch moments, one KLL per stratum, bucket
and feature, the bottom-k-by-hash sample), folds them, and ships it to the driver as one
binary cell (``mapInArrow``). The driver merges the partials (:func:`merge_profiles`), so the
Spark profile equals the polars profile of the same rows up to sketch error: counts, moments
and the sample are the same; quantiles agree within the sketches' rank error.

Nothing here pretends to be a cluster: ``session()`` is a convenience for local mode (tests,
``hawknb profile --engine spark``); on a cluster, pass your own DataFrame.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from collections.abc import Iterator
from typing import Any

import polars as pl

from .kernels import kll
from .profile.partial import normalize, profile_batch
from .profile.polars_engine import BUCKET, SAMPLE_ROWS
from .profile.schema import FILES, Profile, merge_profiles
from .workspace import contract as c
from .workspace.errors import WorkspaceError

_LEN = struct.Struct("<Q")
#: rows folded into one partial profile inside a task before it is shipped
TASK_FOLD_ROWS = 500_000


def session(master: str = "local[2]", app: str = "hawknb-profile") -> Any:
    """A local SparkSession kept on loopback, without a web UI, whose Python workers run this
    interpreter (so they have hawknb's dependencies) and whose time zone is UTC."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def to_bytes(prof: Profile) -> bytes:
    """A profile as bytes for the trip from a task to the driver (Arrow IPC tables + JSON)."""
    parts = [json.dumps(prof.meta).encode()]
    for name in FILES:
        buf = io.BytesIO()
        getattr(prof, name).write_ipc(buf)
        parts.append(buf.getvalue())
    return b"".join(_LEN.pack(len(p)) + p for p in parts)


def from_bytes(blob: bytes) -> Profile:
    """Inverse of :func:`to_bytes` (Arrow IPC and JSON only: nothing is unpickled)."""
    parts, off = [], 0
    while off < len(blob):
        (n,) = _LEN.unpack_from(blob, off)
        parts.append(blob[off + _LEN.size : off + _LEN.size + n])
        off += _LEN.size + n
    if len(parts) != 1 + len(FILES):
        raise WorkspaceError("a Spark partial profile", "is truncated or corrupt")
    tables = [pl.read_ipc(io.BytesIO(p)) for p in parts[1:]]
    return Profile(*tables, meta=json.loads(parts[0]))


def _task(bucket: str, sample_rows: int, k: int) -> Any:
    """The mapInArrow function: Arrow batches of one partition -> partial profiles."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        pending: list[Profile] = []
        rows = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            df = normalize(pl.from_arrow(batch).lazy()).collect()  # type: ignore[union-attr]
            pending.append(profile_batch(df, bucket=bucket, sample_rows=sample_rows, k=k))
            rows += batch.num_rows
            if rows >= TASK_FOLD_ROWS:
                yield pa.RecordBatch.from_pydict({"p": [to_bytes(merge_profiles(pending))]})
                pending, rows = [], 0
        if pending:
            yield pa.RecordBatch.from_pydict({"p": [to_bytes(merge_profiles(pending))]})

    return run


def profile(
    df: Any, *, bucket: str = BUCKET, sample_rows: int = SAMPLE_ROWS, k: int = kll.K
) -> Profile:
    """The profile of a Spark DataFrame that follows the serving contract (docs/workspace.md);
    equal to ``hawknb.profile.profile`` of the same rows up to sketch error."""
    cols = set(df.columns)
    need = [c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.PREDICTION]
    missing = [n for n in need if n not in cols]
    if missing:
        raise WorkspaceError("the Spark DataFrame", f"is missing columns {missing}")
    blobs = df.mapInArrow(_task(bucket, sample_rows, k), "p binary").collect()
    if not blobs:
        raise WorkspaceError("the Spark DataFrame", "has no rows", fix="profile a non-empty log")
    out = merge_profiles([from_bytes(bytes(r["p"])) for r in blobs])
    out.meta["engine"] = "spark"
    return out


def profile_path(
    path: str, *, bucket: str = BUCKET, sample_rows: int = SAMPLE_ROWS, master: str = "local[*]"
) -> Profile:
    """``hawknb profile --engine spark``: read Parquet at ``path`` with a local session."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()  # a caller's session is used, never stopped
    spark = active or session(master)
    try:
        prof = profile(spark.read.parquet(str(path)), bucket=bucket, sample_rows=sample_rows)
    finally:
        if active is None:
            spark.stop()
    prof.meta["source"] = str(path)
    return prof

"""Build a profile with polars' streaming engine: the embedded default, any log size.

The log is read in batches of ``batch_rows`` rows (never whole), each batch becomes a partial
profile (:func:`hawknb.profile.partial.profile_batch`) and partials are folded every
``FOLD`` batches, so memory is bounded by one batch plus the profile itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ..engine import as_lazy, batches
from ..kernels import kll
from ..workspace.errors import WorkspaceError
from .partial import normalize, profile_batch
from .schema import Profile, merge_profiles

#: fold the partial profiles every this many batches (bounds the list of partials)
FOLD = 4
#: default width of a time bucket: the finest window triage's health uses
BUCKET = "15m"
#: default rows kept per (model, experiment, snapshot, bucket)
SAMPLE_ROWS = 128
BATCH_ROWS = 500_000


def scan_log(source: Any) -> tuple[pl.LazyFrame, str]:
    """A lazy frame over a serving log: a Parquet file, a folder of Parquet files (searched
    recursively), or a pandas/polars frame."""
    if not isinstance(source, (str, Path)):
        return as_lazy(source), "the serving frame"
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise WorkspaceError(str(path), "holds no Parquet files", fix="pass a serving log")
        return pl.scan_parquet(files), str(path)
    if not path.is_file():
        raise WorkspaceError(str(path), "does not exist", fix="pass a serving log (Parquet)")
    return pl.scan_parquet(path), str(path)


def profile(
    source: Any,
    *,
    bucket: str = BUCKET,
    sample_rows: int = SAMPLE_ROWS,
    k: int = kll.K,
    batch_rows: int = BATCH_ROWS,
) -> Profile:
    """The profile of a serving log (see :mod:`hawknb.profile.schema`)."""
    if sample_rows < 1 or batch_rows < 1:
        raise ValueError("sample_rows and batch_rows: must be >= 1")
    try:
        pl.select(pl.lit(0).cast(pl.Datetime("us", "UTC")).dt.truncate(bucket))
    except Exception:
        raise ValueError(f"bucket={bucket!r} is not a polars duration; use e.g. '15m'") from None
    lf, where = scan_log(source)
    try:
        norm = normalize(lf, where)
    except pl.exceptions.PolarsError as exc:
        raise WorkspaceError(where, "cannot be read", found=type(exc).__name__) from None
    return _fold(norm, where, bucket=bucket, sample_rows=sample_rows, k=k, batch_rows=batch_rows)


def _fold(
    norm: pl.LazyFrame, where: str, *, bucket: str, sample_rows: int, k: int, batch_rows: int
) -> Profile:
    parts: list[Profile] = []
    try:
        for batch in batches(norm, batch_rows):
            if batch.height:
                parts.append(profile_batch(batch, bucket=bucket, sample_rows=sample_rows, k=k))
            if len(parts) >= FOLD:
                parts = [merge_profiles(parts)]
    except pl.exceptions.PolarsError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WorkspaceError(
            where, "cannot be read", found=f"{type(exc).__name__}: {first}"
        ) from None
    if not parts:
        raise WorkspaceError(where, "has no rows", fix="profile a non-empty serving log")
    out = merge_profiles(parts)
    out.meta["source"] = where
    out.meta["engine"] = "polars"
    return out

"""The engine-neutral profile: three small tables that any engine (polars, Spark) produces and
that merge associatively.

Why a profile: serving logs of billions of rows never leave the warehouse; what triage needs
from them is, per (model, experiment, snapshot, time bucket), sums that add up (counts, moments,
calibration and log-loss sums), a quantile sketch per feature, and a bounded row sample. Every
column below merges by a sum, a min/max, Chan's formula for (mean, M2), a KLL merge or a
bottom-k-by-hash union, so profiles of days, shards or Spark partitions combine in any order.

Tables (keys: ``model, experiment, snapshot, ts`` where ``ts`` is the bucket start, UTC):

- ``moments``: ``rows``, ``labeled_rows`` (finite prediction and a label), ``n_fin`` (finite
  predictions), ``n_unit`` (finite predictions in [0, 1]), ``n_y_bad`` (labels outside [0, 1]),
  ``mean_p``/``m2_p`` (mean and sum of squared deviations of finite predictions), ``sum_p_lab``,
  ``sum_y``, ``sum_y2``, ``sum_ll`` (clipped log-loss terms), ``sum_se`` (squared errors) over
  labeled rows, ``n_y``/``sum_y_all`` (every non-null label), ``p_sketch`` (sealed KLL of
  finite predictions).
- ``features``: keys + ``feature``, ``n`` (non-null values), ``n_fin``, ``mean``, ``m2``,
  ``min``, ``max`` (finite values), ``sketch`` (sealed KLL); only where ``n > 0``.
- ``sample``: serving rows, at most ``sample_rows`` per key (the smallest ``_h`` row hashes: a
  uniform sample per stratum that merges exactly), plus ``_h``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..kernels import kll
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError

KEYS: tuple[str, ...] = (c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.TS)
HASH = "_h"
FORMAT = "hawknb-profile"
VERSION = 1
#: the folder a workspace keeps its profile in (in place of serving.parquet)
PROFILE_DIR = "profile"
FILES = {"moments": "moments.parquet", "features": "features.parquet", "sample": "sample.parquet"}
META_FILE = "profile.json"

_SUMS = ("rows", "labeled_rows", "n_fin", "n_unit", "n_y_bad", "n_y")
_FSUMS = ("sum_p_lab", "sum_y", "sum_y2", "sum_ll", "sum_se", "sum_y_all")


@dataclass
class Profile:
    """A serving log's profile (see the module docstring); ``meta`` holds ``bucket``,
    ``sample_rows``, ``k``, ``features`` (name -> dtype) and ``rows``."""

    moments: pl.DataFrame
    features: pl.DataFrame
    sample: pl.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.moments["rows"].sum()) if self.moments.height else 0

    def merge(self, *others: Profile) -> Profile:
        """One profile of everything these profiles saw (associative; inputs not modified)."""
        return merge_profiles([self, *others])

    def save(self, path: str | Path) -> Path:
        """Write the profile folder (the caller decides whether replacing is allowed)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        for name, file in FILES.items():
            getattr(self, name).write_parquet(out / file)
        meta = {**self.meta, "format": FORMAT, "version": VERSION, "rows": self.rows}
        (out / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        return out

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile folder, checking its format and every sketch's seal."""
        root = Path(path)
        meta = _read_meta(root / META_FILE)
        tables = {}
        for name, file in FILES.items():
            f = root / file
            try:
                tables[name] = pl.read_parquet(f)
            except Exception as exc:
                raise WorkspaceError(
                    str(f), "cannot be read as Parquet", found=type(exc).__name__
                ) from None
        prof = cls(tables["moments"], tables["features"], tables["sample"], meta)
        _check_sketches(prof, root)
        return prof


def _read_meta(f: Path) -> dict[str, Any]:
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise WorkspaceError(str(f), "cannot be read", found=type(exc).__name__) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WorkspaceError(str(f), "is not a hawknb profile", expected=f"format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise WorkspaceError(
            str(f), f"has profile version {meta.get('version')!r}", expected=f"{VERSION}"
        )
    return meta


def _check_sketches(prof: Profile, root: Path) -> None:
    for table, col in (("moments", "p_sketch"), ("features", "sketch")):
        frame = getattr(prof, table)
        for i, blob in enumerate(frame[col].to_list()):
            if blob is None:
                continue
            try:
                kll.unseal(blob)
            except kll.SketchError as exc:
                raise WorkspaceError(str(root / FILES[table]), f"row {i}: {exc}") from None


def _merge_sketch_lists(lists: list[list[bytes | None]]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for blobs in lists:
        real = [b for b in blobs if b is not None]
        if len(real) == 1:
            out.append(real[0])
        elif not real:
            out.append(None)
        else:
            out.append(kll.seal(kll.merge(kll.unseal(b, check=False) for b in real)))
    return out


def _chan(
    frame: pl.DataFrame, keys: list[str], n: str, mean: str, m2: str
) -> tuple[pl.DataFrame, list[pl.Expr]]:
    """Columns and aggregations that combine (n, mean, M2) parts exactly (Chan et al.)."""
    grand = (pl.col(n) * pl.col(mean).fill_null(0.0)).sum().over(keys) / pl.col(n).sum().over(keys)
    frame = frame.with_columns(grand.alias("_grand"))
    dev = pl.col(n) * (pl.col(mean).fill_null(0.0) - pl.col("_grand")).pow(2)
    aggs = [
        pl.when(pl.col(n).sum() > 0).then(pl.col("_grand").first()).alias(mean),
        (pl.col(m2).fill_null(0.0) + dev.fill_nan(0.0)).sum().alias(m2),
    ]
    return frame, aggs


def merge_moments(frame: pl.DataFrame, keys: list[str] | None = None) -> pl.DataFrame:
    """Merge moment rows that share ``keys`` (default: the profile keys)."""
    keys = list(keys or KEYS)
    frame, chan = _chan(frame, keys, "n_fin", "mean_p", "m2_p")
    out = frame.group_by(keys, maintain_order=True).agg(
        *[pl.col(s).sum() for s in _SUMS],
        *chan,
        *[pl.col(s).sum() for s in _FSUMS],
        pl.col("p_sketch"),
    )
    return out.with_columns(
        pl.Series("p_sketch", _merge_sketch_lists(out["p_sketch"].to_list()), pl.Binary)
    )


def merge_features(frame: pl.DataFrame, keys: list[str] | None = None) -> pl.DataFrame:
    """Merge feature rows that share ``keys`` + feature."""
    keys = [*(keys or KEYS), "feature"]
    frame, chan = _chan(frame, keys, "n_fin", "mean", "m2")
    out = frame.group_by(keys, maintain_order=True).agg(
        pl.col("n").sum(),
        pl.col("n_fin").sum(),
        *chan,
        pl.col("min").min(),
        pl.col("max").max(),
        pl.col("sketch"),
    )
    return out.with_columns(
        pl.Series("sketch", _merge_sketch_lists(out["sketch"].to_list()), pl.Binary)
    )


def merge_sample(frame: pl.DataFrame, sample_rows: int, bucket: str) -> pl.DataFrame:
    """Keep the ``sample_rows`` smallest row hashes per (model, experiment, snapshot, bucket):
    exactly the sample a single pass over all the rows would keep. Rows keep their own ``ts``."""
    if frame.height == 0:
        return frame
    stratum = [*KEYS[:3], "_bucket"]
    frame = frame.with_columns(pl.col(c.TS).dt.truncate(bucket).alias("_bucket"))
    # the k-th smallest hash per stratum first (a partial selection), so only the few rows
    # that can be kept are sorted
    threshold = frame.group_by(stratum).agg(pl.col(HASH).bottom_k(sample_rows).max().alias("_t"))
    return (
        frame.join(threshold, on=stratum, nulls_equal=True)
        .filter(pl.col(HASH) <= pl.col("_t"))
        .sort([*stratum, HASH])
        .group_by(stratum, maintain_order=True)
        .head(sample_rows)
        .drop("_bucket", "_t")
        .sort([c.TS, *KEYS[:3], HASH])
    )


def merge_profiles(profiles: list[Profile]) -> Profile:
    """Merge any number of profiles built with the same bucket and sample size."""
    if not profiles:
        raise ValueError("merge: no profiles")
    first = profiles[0].meta
    for p in profiles[1:]:
        for key in ("bucket", "sample_rows"):
            if p.meta.get(key) != first.get(key):
                raise ValueError(
                    f"merge: profiles differ in {key} ({first.get(key)!r} vs {p.meta.get(key)!r})"
                )
    feats: dict[str, str] = {}
    for p in profiles:
        feats.update(p.meta.get("features", {}))
    moments = merge_moments(pl.concat([p.moments for p in profiles], how="vertical_relaxed"))
    features = merge_features(pl.concat([p.features for p in profiles], how="vertical_relaxed"))
    sample = merge_sample(
        pl.concat([p.sample for p in profiles], how="diagonal_relaxed"),
        first["sample_rows"],
        first["bucket"],
    )
    order = list(KEYS)
    meta = {**first, "features": feats}
    return Profile(moments.sort(order), features.sort([*order, "feature"]), sample, meta)

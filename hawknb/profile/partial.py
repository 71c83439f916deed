"""The profile of one batch of serving rows: the unit every engine computes and then merges.

polars streams the log in batches and folds these; Spark computes one per Arrow batch inside
``mapInArrow`` and merges them on the driver. Keeping the per-batch work in one function is
what makes the two engines' profiles equal (up to sketch error).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..kernels import kll
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError
from .schema import HASH, KEYS, Profile, merge_sample

#: clip probabilities away from 0 and 1 (the same clip as kernels.health)
EPS = 1e-7
#: the seed of the row hash that picks the sample (fixed: samples of shards must agree)
HASH_SEED = 0x6861776B


def normalize(lf: pl.LazyFrame, where: str = "the serving log") -> pl.LazyFrame:
    """The contract's serving columns in canonical dtypes (UTC us ``ts``, String names,
    Float64 prediction/label/features, NaN labels as null); naive timestamps are refused."""
    schema = lf.collect_schema()
    need = [c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.PREDICTION]
    missing = [n for n in need if n not in schema]
    if missing:
        raise WorkspaceError(where, f"is missing columns {missing}", expected=f"columns {need}")
    ts = schema[c.TS]
    if not isinstance(ts, pl.Datetime) or ts.time_zone is None:
        raise WorkspaceError(
            f"{where}, column '{c.TS}'", "is not a UTC timestamp", found=str(ts), expected="UTC"
        )
    feats = feature_columns(schema)
    label = (
        pl.col(c.LABEL).cast(pl.Float64).fill_nan(None)
        if c.LABEL in schema and schema[c.LABEL] != pl.Null
        else pl.lit(None, dtype=pl.Float64)
    )
    return lf.select(
        pl.col(c.TS).dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        *[pl.col(k).cast(pl.String) for k in (c.MODEL, c.EXPERIMENT, c.SNAPSHOT)],
        pl.col(c.PREDICTION).cast(pl.Float64),
        label.alias(c.LABEL),
        *[pl.col(f).cast(pl.Float64) for f in feats],
    )


def feature_columns(schema: pl.Schema) -> list[str]:
    """Numeric non-reserved columns: the contract's features."""
    return [
        n
        for n, t in schema.items()
        if n not in c.SERVING_RESERVED and (t.is_numeric() or t == pl.Boolean)
    ]


def _moments(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    p, y = pl.col(c.PREDICTION), pl.col(c.LABEL)
    fin = p.is_finite().fill_null(False)
    lab = fin & y.is_not_null()
    pf, pl_, yl = pl.when(fin).then(p), pl.when(lab).then(p), pl.when(lab).then(y)
    pc = pl_.clip(EPS, 1.0 - EPS)
    ll = -(yl * pc.log() + (1.0 - yl) * (1.0 - pc).log())
    return df.group_by(keys, maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("rows"),
        lab.sum().cast(pl.Int64).alias("labeled_rows"),
        fin.sum().cast(pl.Int64).alias("n_fin"),
        (fin & p.is_between(0.0, 1.0)).sum().cast(pl.Int64).alias("n_unit"),
        (y.is_not_null() & ~y.is_between(0.0, 1.0)).sum().cast(pl.Int64).alias("n_y_bad"),
        y.count().cast(pl.Int64).alias("n_y"),
        pf.mean().alias("mean_p"),
        ((pf - pf.mean()).pow(2).sum()).alias("m2_p"),
        pl_.sum().alias("sum_p_lab"),
        yl.sum().alias("sum_y"),
        yl.pow(2).sum().alias("sum_y2"),
        ll.sum().alias("sum_ll"),
        (pl_ - yl).pow(2).sum().alias("sum_se"),
        y.sum().alias("sum_y_all"),
    )


def _feature_moments(df: pl.DataFrame, keys: list[str], feats: list[str]) -> pl.DataFrame:
    """Per key and feature: counts, finite mean/M2, min/max; wide aggregation (one pass, no
    unpivot of the batch), reshaped to one row per (key, feature) with values."""
    if not feats:
        return empty_features().drop("sketch")
    aggs = []
    for i, f in enumerate(feats):
        v = pl.col(f)
        fv = pl.when(v.is_finite()).then(v)
        aggs += [
            v.count().cast(pl.Int64).alias(f"n{i}"),
            v.is_finite().sum().cast(pl.Int64).alias(f"f{i}"),
            fv.mean().alias(f"a{i}"),
            (fv - fv.mean()).pow(2).sum().alias(f"m{i}"),
            fv.min().alias(f"lo{i}"),
            fv.max().alias(f"hi{i}"),
        ]
    wide = df.group_by(keys, maintain_order=True).agg(aggs)
    parts = [
        wide.select(
            *keys,
            pl.lit(f).alias("feature"),
            pl.col(f"n{i}").alias("n"),
            pl.col(f"f{i}").alias("n_fin"),
            pl.col(f"a{i}").alias("mean"),
            pl.col(f"m{i}").alias("m2"),
            pl.col(f"lo{i}").alias("min"),
            pl.col(f"hi{i}").alias("max"),
        )
        for i, f in enumerate(feats)
    ]
    return pl.concat(parts).filter(pl.col("n") > 0)


def _sketches(df: pl.DataFrame, keys: list[str], cols: list[str], k: int) -> dict[Any, bytes]:
    """Sealed KLL per (key tuple, column)."""
    return {key: kll.seal(sk) for key, sk in kll.group_sketches(df, keys, cols, k).items()}


def profile_batch(df: pl.DataFrame, *, bucket: str, sample_rows: int, k: int = kll.K) -> Profile:
    """The profile of one normalized batch (see :func:`normalize`) with ``bucket``-wide
    time buckets (a polars duration, e.g. ``"15m"``)."""
    keys = list(KEYS)
    feats = feature_columns(df.schema)
    sample = sample_of(df, sample_rows, bucket)
    df = df.with_columns(pl.col(c.TS).dt.truncate(bucket))
    moments = _moments(df, keys)
    sk = _sketches(df, keys, [c.PREDICTION, *feats], k)
    moments = moments.with_columns(
        pl.Series(
            "p_sketch",
            [sk.get((*r, c.PREDICTION)) for r in moments.select(keys).iter_rows()],
            pl.Binary,
        )
    )
    fm = _feature_moments(df, keys, feats)
    if fm.height:
        fm = fm.with_columns(
            pl.Series(
                "sketch",
                [sk.get(r) for r in fm.select(*keys, "feature").iter_rows()],
                pl.Binary,
            )
        )
    else:
        fm = empty_features()
    return Profile(moments, fm, sample, meta_for(df, bucket, sample_rows, k))


def sample_of(df: pl.DataFrame, sample_rows: int, bucket: str) -> pl.DataFrame:
    """Bottom-``sample_rows`` rows by row hash per stratum and bucket (rows keep their ``ts``)."""
    hashed = df.with_columns(pl.struct(pl.all()).hash(HASH_SEED).alias(HASH))
    return merge_sample(hashed, sample_rows, bucket)


def meta_for(df: pl.DataFrame, bucket: str, sample_rows: int, k: int) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "sample_rows": sample_rows,
        "k": k,
        "features": {f: "Float64" for f in feature_columns(df.schema)},
    }


def empty_features() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            c.MODEL: pl.String,
            c.EXPERIMENT: pl.String,
            c.SNAPSHOT: pl.String,
            c.TS: pl.Datetime("us", "UTC"),
            "feature": pl.String,
            "n": pl.Int64,
            "n_fin": pl.Int64,
            "mean": pl.Float64,
            "m2": pl.Float64,
            "min": pl.Float64,
            "max": pl.Float64,
            "sketch": pl.Binary,
        }
    )

"""The one place heavy aggregation runs.

Kernels express their aggregations as polars lazy queries and collect them here, so that the
execution strategy (streaming, a future distributed backend) is chosen in one place.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl


def collect(lf: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Run a lazy query with the streaming engine (bounded memory on large serving logs)."""
    if isinstance(lf, pl.DataFrame):
        return lf
    return lf.collect(engine="streaming")


def as_lazy(frame: object) -> pl.LazyFrame:
    """Accept a pandas or polars frame (eager or lazy) without copying or mutating it."""
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return pl.from_pandas(frame, nan_to_null=False).lazy()
    raise TypeError(f"expected a pandas or polars DataFrame, got {type(frame).__name__}")


def batches(lf: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """Stream a lazy query as DataFrames of about ``rows`` rows (bounded memory: the
    profile job folds each batch before the next is read)."""
    yield from lf.collect_batches(chunk_size=rows, engine="streaming")

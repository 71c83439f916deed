"""The serving table of a profile-backed workspace: the sample's rows, aggregates from moments.

Triage reads the serving log through ``ws.serving`` (a polars LazyFrame) and hands it, filtered
or relabelled, to kernels. On a profile the rows are the stratified sample, which is right for
the steps that need rows (ablation, correlation with the prediction shift, activation replay)
but wrong for counts and sums. So ``ws.serving`` is a :class:`ProfiledServing`: a LazyFrame over
the sample that also remembers the ``filter``/``with_columns`` calls applied to it. An aggregate
kernel (``kernels.health.prediction_health``) asks it for ``hawknb_window_sums``: the same
calls are replayed on the profile's moments table (whose key columns have the serving names)
and the per-window sums come from moments and the union of the buckets' sketches -- exact
counts and moments, median/p90 within the sketches' rank error. Any other operation makes a
frame whose provenance is unknown, and the kernel falls back to the sample's rows (with a
warning).
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import polars as pl

from ..engine import collect
from ..kernels import kll
from ..kernels.health import quantile_columns, window_start
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError, WorkspaceWarning
from .schema import Profile, merge_moments
from .union import Union


class ProfiledServing(pl.LazyFrame):
    """A LazyFrame over a profile's sample that can answer per-window sums from the profile
    (see the module docstring). Build one with :func:`serving_view`."""

    #: set on the per-profile subclass made by serving_view
    hawknb_profile: Profile | None = None
    #: the replayable calls applied since serving_view; None once an unreplayable one was
    _hawknb_ops: tuple[tuple[str, tuple, dict], ...] | None = None

    def _derive(self, out: ProfiledServing, op: tuple[str, tuple, dict]) -> ProfiledServing:
        out._hawknb_ops = None if self._hawknb_ops is None else (*self._hawknb_ops, op)
        return out

    def filter(self, *args: Any, **kwargs: Any) -> ProfiledServing:  # type: ignore[override]
        return self._derive(super().filter(*args, **kwargs), ("filter", args, kwargs))  # type: ignore[arg-type]

    def with_columns(self, *args: Any, **kwargs: Any) -> ProfiledServing:  # type: ignore[override]
        out = super().with_columns(*args, **kwargs)
        return self._derive(out, ("with_columns", args, kwargs))  # type: ignore[arg-type]

    def hawknb_window_sums(
        self, every: str, keys: list[str], offset: timedelta | None = None
    ) -> pl.LazyFrame | None:
        """Per (keys, window) sums in the columns ``kernels.health.finish`` reads, from the
        profile; None when this frame's rows cannot be mapped onto the profile's moments.
        Windows start ``offset`` after the grid, floored to the profile's bucket (its rows
        were summed per bucket, so no window can start inside one)."""
        prof = self.hawknb_profile
        if prof is None or self._hawknb_ops is None:
            warnings.warn(
                "prediction health from the profile's sample rows (an operation on the serving "
                "table could not be mapped onto the profile): counts are the sample's",
                WorkspaceWarning,
                stacklevel=3,
            )
            return None
        _check_every(every, prof.meta["bucket"])
        moments = prof.moments.lazy()
        try:
            for name, args, kwargs in self._hawknb_ops:
                moments = getattr(moments, name)(*args, **kwargs)
            picked = collect(moments)
        except pl.exceptions.ColumnNotFoundError:
            self._hawknb_ops = None
            return self.hawknb_window_sums(every, keys, offset)
        return window_sums(picked, every, keys, _floor(offset, prof.meta["bucket"]))


def _us(duration: str) -> int:
    t0 = pl.lit(0).cast(pl.Datetime("us", "UTC"))
    return int(pl.select(t0.dt.offset_by(duration).dt.epoch("us")).item())


def _floor(offset: timedelta | None, bucket: str) -> timedelta | None:
    if not offset:
        return None
    step = timedelta(microseconds=_us(bucket))
    return offset - offset % step


def _check_every(every: str, bucket: str) -> None:
    if _us(every) % _us(bucket):
        raise WorkspaceError(
            "the workspace's profile",
            f"has {bucket} buckets, which do not tile {every} health windows",
            fix=f"re-run 'hawknb profile' with --bucket dividing {every}",
        )


def window_sums(
    moments: pl.DataFrame, every: str, keys: list[str], offset: timedelta | None = None
) -> pl.LazyFrame:
    """Moments rows rolled up to ``every`` windows per ``keys`` (starting ``offset`` after the
    grid, a multiple of the bucket), as health's window sums."""
    group = [*keys, c.TS]
    start = window_start(pl.col(c.TS), every, offset)
    windowed = moments.with_columns(start, *[pl.col(k) for k in keys])
    # the sums merge; the quantiles come from the union of each window's bucket sketches
    # (a DataSketches merge flips coins: two calls would answer different medians)
    rolled = merge_moments(windowed.with_columns(pl.lit(None, pl.Binary).alias("p_sketch")), group)
    blobs = windowed.group_by(group, maintain_order=True).agg(pl.col("p_sketch").drop_nulls())
    sketches = {
        row[:-1]: Union(kll.unseal(b, check=False) for b in row[-1])
        for row in blobs.select(*group, "p_sketch").iter_rows()
        if row[-1]
    }
    labeled = pl.col("labeled_rows")
    sums = rolled.select(
        *group,
        "rows",
        "labeled_rows",
        pl.col("n_fin").alias("_n_fin"),
        pl.col("n_unit").alias("_n_unit"),
        (pl.col("n_y_bad") == 0).alias("_y_ok"),
        pl.col("mean_p").alias("mean_prediction"),
        pl.when(pl.col("n_fin") > 1)
        .then((pl.col("m2_p") / (pl.col("n_fin") - 1)).sqrt())
        .alias("std_prediction"),
        pl.col("sum_p_lab").alias("_sum_p"),
        pl.col("sum_y").alias("_sum_y"),
        pl.when(labeled > 0).then(pl.col("sum_y") / labeled).alias("label_mean"),
        pl.when(labeled > 0).then(pl.col("sum_ll") / labeled).alias("_ll"),
        pl.col("sum_se").alias("_se"),
        pl.col("sum_y2").alias("_sy2"),
    )
    quantiles = quantile_columns(group, sketches)
    return sums.join(quantiles, on=group, how="left", nulls_equal=True).lazy()


def serving_view(prof: Profile, rows: pl.LazyFrame | None = None) -> ProfiledServing:
    """``ws.serving`` of a workspace that holds ``prof`` in place of its serving log: ``rows``
    (default: the profile's sample) that answer aggregates from ``prof``."""
    cls = type("ProfiledServing", (ProfiledServing,), {"hawknb_profile": prof})
    if rows is None:
        rows = prof.sample.drop("_h", strict=False).lazy()
    view = cls._from_pyldf(rows._ldf)
    view._hawknb_ops = ()
    return view

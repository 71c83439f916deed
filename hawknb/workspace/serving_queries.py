"""The serving-log questions triage asks, answered from the log or from its profile.

A workspace may hold a profile (``WS/profile/``, written by ``hawknb profile``) in place of
``serving.parquet``. Then ``ws.serving`` is the profile's stratified sample (rows for ablation,
correlation and replay) and these accessors answer from the profile's moments and sketches:
exact counts, sums and moments; quantile-based numbers within the sketch's stated rank error.
``ws.serving_source`` names which one answered, so a finding can cite it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..engine import collect
from . import contract as c

#: points per sketch at which the sketch KS statistic compares the two CDFs
_KS_GRID = 1001


class ServingQueries:
    """Mixin of :class:`hawknb.Workspace`: aggregate queries on the serving data."""

    profile: Any  # hawknb.profile.Profile | None, set by Workspace.__init__

    @property
    def serving(self) -> pl.LazyFrame:  # pragma: no cover - defined by Workspace
        raise NotImplementedError

    @property
    def serving_source(self) -> str:
        """What serving questions are answered from: the log, or a profile (and how big)."""
        prof = self.profile
        if prof is None:
            return f"the serving log ({self.where('serving')})"  # type: ignore[attr-defined]
        m = prof.meta
        return (
            f"the profile of {prof.rows:,} serving rows ({m.get('bucket')} buckets, sample of "
            f"<= {m.get('sample_rows')} rows per model/experiment/snapshot/bucket)"
        )

    def health(
        self, every: str = "1h", *, by_snapshot: bool = False, model: str | None = None
    ) -> pl.DataFrame:
        """``kernels.health.prediction_health`` of the serving data (from the profile's moments
        when there is one), optionally of one model."""
        from ..kernels.health import prediction_health

        lf = self.serving
        if model is not None:
            lf = lf.filter(pl.col(c.MODEL) == model)
        return prediction_health(lf, every=every, by_snapshot=by_snapshot)

    def snapshot_rows(
        self, model: str, start: datetime | None = None, end: datetime | None = None
    ) -> pl.DataFrame:
        """Rows per snapshot of ``model`` with ts in [start, end] (columns snapshot, rows;
        most rows first). On a profile, whole buckets are counted: those starting in
        [start rounded down to a bucket, end) -- so the bucket that starts at ``end``, of
        which the log would count only the rows at exactly ``end``, is left out."""
        cond = pl.col(c.MODEL) == model
        if self.profile is not None:
            lf = self.profile.moments.lazy().select(c.MODEL, c.SNAPSHOT, c.TS, "rows")
            rows = pl.col("rows").sum()
            bucket = self.profile.meta.get("bucket")
            if start is not None:
                cond &= pl.col(c.TS) >= (pl.lit(start).dt.truncate(bucket) if bucket else start)
            if end is not None:
                cond &= pl.col(c.TS) < end
        else:
            lf = self.serving
            rows = pl.len()
            if start is not None:
                cond &= pl.col(c.TS) >= start
            if end is not None:
                cond &= pl.col(c.TS) <= end
        out = lf.filter(cond).group_by(c.SNAPSHOT).agg(rows.cast(pl.Int64).alias("rows"))
        return collect(out.sort(["rows", c.SNAPSHOT], descending=[True, False]))

    def label_mean(self, model: str, before: datetime | None = None) -> float | None:
        """Mean label of ``model``'s labeled rows (before ``before``), None without labels."""
        cond = pl.col(c.MODEL) == model
        if before is not None:
            cond &= pl.col(c.TS) < before
        if self.profile is None:
            if c.LABEL not in self.serving.collect_schema():  # labels are optional
                return None
            out = collect(self.serving.filter(cond).select(pl.col(c.LABEL).mean()))
            return out[0, 0]
        m = collect(
            self.profile.moments.lazy()
            .filter(cond)
            .select(pl.col("sum_y_all").sum(), pl.col("n_y").sum())
        )
        n = int(m[0, 1] or 0)
        return float(m[0, 0]) / n if n else None

    def feature_drift(
        self,
        model: str,
        features: list[str],
        reference: tuple[datetime, datetime],
        current: tuple[datetime, datetime],
    ) -> pl.DataFrame:
        """KS and PSI of each feature between two windows [start, end), with the error the
        numbers carry (0 from the log; from the sketches' stated rank errors on a profile).

        Columns: feature, n_reference, n_current (finite values), ks, ks_error, psi, psi_error,
        wasserstein, wasserstein_error (reference-IQR units), mean_shift (over the reference's
        robust scale), null_rate_reference, null_rate_current, nonfinite_rate_reference,
        nonfinite_rate_current, source. On a profile, windows are rounded down to its buckets.
        """
        if self.profile is not None:
            from ..profile.drift import sketch_drift

            out = sketch_drift(self.profile, model, features, reference, current)
        else:
            out = _rows_drift(self.serving, model, features, reference, current)
        return out.with_columns(pl.lit(self.serving_source).alias("source"))


def _window(lf: pl.LazyFrame, model: str, w: tuple[datetime, datetime]) -> pl.LazyFrame:
    return lf.filter((pl.col(c.MODEL) == model) & (pl.col(c.TS) >= w[0]) & (pl.col(c.TS) < w[1]))


def _rows_drift(
    serving: pl.LazyFrame,
    model: str,
    features: list[str],
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
) -> pl.DataFrame:
    from ..kernels.drift import distances, ks_statistic
    from ..profile.drift import DRIFT_SCHEMA

    ref = collect(_window(serving, model, reference).select(features))
    cur = collect(_window(serving, model, current).select(features))
    recs = []
    for f in features:
        r = ref[f].cast(pl.Float64).to_numpy()
        x = cur[f].cast(pl.Float64).to_numpy()
        rf, xf = r[np.isfinite(r)], x[np.isfinite(x)]
        both = rf.size and xf.size
        psi, w1, _, shift = distances(rf, xf) if both else (math.nan,) * 4
        recs.append(
            {
                "feature": f,
                "n_reference": int(rf.size),
                "n_current": int(xf.size),
                "ks": ks_statistic(rf, xf) if both else math.nan,
                "ks_error": 0.0,
                "psi": psi,
                "psi_error": 0.0,
                "wasserstein": w1,
                "wasserstein_error": 0.0,
                "mean_shift": shift,
                **_rates(ref[f], "reference"),
                **_rates(cur[f], "current"),
            }
        )
    return pl.DataFrame(recs, schema=DRIFT_SCHEMA)


def _rates(col: pl.Series, window: str) -> dict[str, float | None]:
    """Null and non-finite (NaN, +-inf) shares of one window's values of a feature."""
    if not col.len():
        return {f"null_rate_{window}": None, f"nonfinite_rate_{window}": None}
    n_null = col.null_count()
    finite = int(col.cast(pl.Float64).is_finite().sum())
    return {
        f"null_rate_{window}": n_null / col.len(),
        f"nonfinite_rate_{window}": (col.len() - n_null - finite) / col.len(),
    }

"""Prediction health: how each model-experiment's predictions look, window by window.

Model isolation needs one comparable time series per (model, experiment): is the output level
moving (mean / median / p90), are predictions breaking (NaN/inf rate), are they still calibrated
against the labels that have arrived (sum pred / sum label) and, for probability models, is the
normalized entropy getting worse. All of it is computed in ONE lazy polars aggregation over the
serving log so that it runs in the streaming engine on logs larger than memory.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from ..engine import as_lazy, batches, collect
from ..workspace.contract import EXPERIMENT, LABEL, MODEL, PREDICTION, SNAPSHOT, TS
from ..workspace.errors import WorkspaceError

#: health series that model isolation looks at, in order of interpretability
HEALTH_SERIES: tuple[str, ...] = ("mean_prediction", "calibration", "ne", "nmse", "nan_rate")
#: health series whose increase is a degradation (the others can degrade in either direction)
WORSE_WHEN_HIGHER: frozenset[str] = frozenset({"ne", "log_loss", "nmse", "nan_rate"})

#: clip probabilities away from 0 and 1 so one confident miss does not make log loss infinite
_EPS = 1e-7
#: share of finite predictions inside [0, 1] above which a model counts as a probability model
_PROB_SHARE = 0.5
#: above this many serving rows, median/p90 come from sketches (exact ones need every value)
EXACT_QUANTILE_ROWS = 2_000_000
QUANTILE_BATCH_ROWS = 1_000_000


def _check_columns(schema: pl.Schema, ts: str, by_snapshot: bool) -> None:
    need = [ts, MODEL, EXPERIMENT, PREDICTION] + ([SNAPSHOT] if by_snapshot else [])
    missing = [col for col in need if col not in schema]
    if missing:
        raise WorkspaceError(
            "the serving table",
            f"is missing columns {missing}",
            expected=f"columns {need}",
            found=f"columns {list(schema.names())}",
            fix="pass the serving log (ws.table('serving')) or rename the columns",
        )
    if not isinstance(schema[ts], pl.Datetime):
        raise WorkspaceError(
            f"the serving table, column '{ts}'",
            "is not a timestamp",
            expected="a UTC datetime",
            found=str(schema[ts]),
            fix="pass a datetime column as ts=...",
        )
    if not schema[PREDICTION].is_numeric():
        raise WorkspaceError(
            f"the serving table, column '{PREDICTION}'",
            "is not numeric",
            expected="a float",
            found=str(schema[PREDICTION]),
        )


def window_start(col: pl.Expr, every: str, offset: timedelta | None = None) -> pl.Expr:
    """The start of the ``every`` window holding each timestamp, windows starting ``offset``
    after the epoch's grid (``offset`` 0: the plain ``dt.truncate``).

    Why an offset: a grid fixed to the clock splits an incident that starts at 14:17 into a
    quarter-hour window and a full one, while the same incident at 14:00 fills one window; the
    triage puts its windows on the phase of the workspace's metric stamps, so moving every
    timestamp by the same amount moves the windows with them and changes no verdict."""
    if not offset:
        return col.dt.truncate(every)
    return (col - offset).dt.truncate(every) + offset


def prediction_health(
    serving: object,
    *,
    every: str = "1h",
    ts: str = TS,
    by_snapshot: bool = False,
    exact_quantiles: bool | None = None,
    offset: timedelta | None = None,
) -> pl.DataFrame:
    """Per (model, experiment[, snapshot], window) prediction health, in one streaming pass.

    ``serving`` is a pandas or polars (lazy) frame following the serving contract; ``every`` is
    a polars duration string (``"1h"``, ``"15m"``, ``"1d"``); windows start at the truncated
    timestamp (moved by ``offset``, see :func:`window_start`; a profile floors it to its
    bucket), which is returned in the column ``ts``.

    Columns: model, experiment, [snapshot], ts, rows, labeled_rows, mean_prediction,
    std_prediction (row-level spread, so a comparison of two windows' means can be tested),
    median_prediction, p90_prediction (over finite predictions), nan_rate (share of NaN/inf/null
    predictions), label_mean, calibration (sum pred / sum label over rows with a label and a
    finite prediction; null without labels or when the labels sum to 0), log_loss and ne
    (normalized entropy = log loss / entropy of the window's base rate; only for models whose
    predictions are probabilities and whose labels are in [0, 1], else null), nmse (squared
    error over the labels' sum of squares around their window mean, for every model with
    labels: the regression analogue of NE), traffic_share (the
    group's share of the model's rows in the window) and, with ``by_snapshot``, snapshot_share
    (the snapshot's share of the (model, experiment) rows in the window).

    median/p90 are exact up to ``EXACT_QUANTILE_ROWS`` input rows and KLL estimates above
    (``exact_quantiles`` forces either). A workspace's profile-backed serving view
    (``hawknb.profile.view``) is answered from its moments and sketches instead of rows.

    Why NE per window: log loss alone moves with the base rate (a quieter hour has fewer
    positives); dividing by the base rate's entropy makes windows comparable.
    """
    lf = as_lazy(serving)
    schema = lf.collect_schema()
    _check_columns(schema, ts, by_snapshot)
    try:
        pl.select(pl.lit(0).cast(pl.Datetime("us", "UTC")).dt.truncate(every))
    except Exception as exc:
        raise ValueError(
            f"every={every!r} is not a polars duration; use e.g. '1h', '15m' or '1d'"
        ) from exc

    keys = [MODEL, EXPERIMENT] + ([SNAPSHOT] if by_snapshot else [])
    from_profile = getattr(lf, "hawknb_window_sums", None)
    agg = from_profile(every, keys, offset) if from_profile is not None else None
    if agg is None:
        agg = _aggregate_rows(lf, schema, keys, ts, every, exact_quantiles, offset)
    return finish(agg, keys, by_snapshot)


def _row_terms(
    lf: pl.LazyFrame,
    schema: pl.Schema,
    keys: list[str],
    ts: str,
    every: str,
    offset: timedelta | None = None,
) -> pl.LazyFrame:
    p = pl.col(PREDICTION).cast(pl.Float64)
    if LABEL in schema and schema[LABEL] != pl.Null:
        y = pl.col(LABEL).cast(pl.Float64).fill_nan(None)
    else:
        y = pl.lit(None, dtype=pl.Float64)
    finite = p.is_finite().fill_null(False)
    labeled = finite & y.is_not_null()
    p_lab = pl.when(labeled).then(p)
    y_lab = pl.when(labeled).then(y)
    p_clip = p_lab.clip(_EPS, 1.0 - _EPS)
    ll_term = -(y_lab * p_clip.log() + (1.0 - y_lab) * (1.0 - p_clip).log())
    return lf.select(
        window_start(pl.col(ts), every, offset).alias(TS),
        *[pl.col(k).cast(pl.String) for k in keys],
        finite.alias("_fin"),
        labeled.alias("_lab"),
        pl.when(finite).then(p).alias("_pf"),
        p_lab.alias("_pl"),
        y_lab.alias("_yl"),
        ll_term.alias("_ll"),
        (p_lab - y_lab).pow(2).alias("_se"),
        (finite & p.is_between(0.0, 1.0)).alias("_unit"),
        (y.is_between(0.0, 1.0) | y.is_null()).alias("_yok"),
    )


def _aggregate_rows(
    lf: pl.LazyFrame,
    schema: pl.Schema,
    keys: list[str],
    ts: str,
    every: str,
    exact_quantiles: bool | None,
    offset: timedelta | None = None,
) -> pl.LazyFrame:
    """Per-window sums and moments in one streaming pass (sums, counts, means: memory bounded
    by the number of windows), joined with the windows' median and p90."""
    rows = _row_terms(lf, schema, keys, ts, every, offset)
    agg = collect(
        rows.group_by([*keys, TS]).agg(
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("_lab").sum().cast(pl.Int64).alias("labeled_rows"),
            pl.col("_fin").sum().cast(pl.Int64).alias("_n_fin"),
            pl.col("_unit").sum().cast(pl.Int64).alias("_n_unit"),
            pl.col("_yok").all().alias("_y_ok"),
            pl.col("_pf").mean().alias("mean_prediction"),
            pl.col("_pf").std().alias("std_prediction"),
            pl.col("_pl").sum().alias("_sum_p"),
            pl.col("_yl").sum().alias("_sum_y"),
            pl.col("_yl").mean().alias("label_mean"),
            pl.col("_ll").mean().alias("_ll"),
            pl.col("_se").sum().alias("_se"),
            pl.col("_yl").pow(2).sum().alias("_sy2"),
        )
    )
    quantiles = _window_quantiles(rows, [*keys, TS], exact_quantiles)
    return agg.join(quantiles, on=[*keys, TS], how="left", nulls_equal=True).lazy()


def _window_quantiles(rows: pl.LazyFrame, keys: list[str], exact: bool | None) -> pl.DataFrame:
    """median and p90 of the finite predictions per window. Exact quantiles hold every value
    in memory (they were most of the +6 GB of a 35M-row triage), so above EXACT_QUANTILE_ROWS
    rows they come from one KLL sketch per window, streamed in batches (rank error ~1.3%)."""
    cols = [*keys, "_pf"]
    if exact is None:
        exact = collect(rows.select(pl.len()))[0, 0] <= EXACT_QUANTILE_ROWS
    if exact:
        return collect(
            rows.select(cols)
            .group_by(keys)
            .agg(
                pl.col("_pf").median().alias("median_prediction"),
                pl.col("_pf").quantile(0.9, interpolation="linear").alias("p90_prediction"),
            )
        )
    from . import kll

    sketches: dict[tuple, Any] = {}
    for batch in batches(rows.select(cols), QUANTILE_BATCH_ROWS):
        for key, sk in kll.group_sketches(batch, keys, ["_pf"]).items():
            if key in sketches:
                sketches[key].merge(sk)
            else:
                sketches[key] = sk
    return quantile_columns(keys, {key[:-1]: sk for key, sk in sketches.items()})


def quantile_columns(keys: list[str], sketches: dict[tuple, Any]) -> pl.DataFrame:
    """``keys`` + median_prediction/p90_prediction from ``{key values: KLL sketch}``."""
    schema = {k: (pl.Datetime("us", "UTC") if k == TS else pl.String) for k in keys}
    recs = [(*key, *sk.get_quantiles([0.5, 0.9])) for key, sk in sketches.items()]
    return pl.DataFrame(
        recs,
        schema={**schema, "median_prediction": pl.Float64, "p90_prediction": pl.Float64},
        orient="row",
    )


def finish(agg: pl.LazyFrame, keys: list[str], by_snapshot: bool) -> pl.DataFrame:
    """The health columns from per-window sums: rows, labeled_rows, _n_fin, _n_unit, _y_ok,
    mean/std/median/p90_prediction, _sum_p, _sum_y, label_mean, _ll (mean log-loss term),
    _se, _sy2 (shared by the rows path and the profile path)."""
    b = pl.col("label_mean")
    base_entropy = -(b * b.log() + (1.0 - b) * (1.0 - b).log())
    is_prob = (
        (pl.col("_n_unit").sum().over(MODEL) >= _PROB_SHARE * pl.col("_n_fin").sum().over(MODEL))
        & (pl.col("_n_fin").sum().over(MODEL) > 0)
        & pl.col("_y_ok").all().over(MODEL)
    )
    has_ll = is_prob & (pl.col("labeled_rows") > 0)
    # sum of squares of the labels around the window's mean: nmse = squared error / it, the
    # regression analogue of NE (1 = no better than predicting the mean label)
    _label_ss = pl.col("_sy2") - pl.col("labeled_rows") * b.pow(2)
    out = agg.with_columns(
        (1.0 - pl.col("_n_fin") / pl.col("rows")).alias("nan_rate"),
        pl.when((pl.col("labeled_rows") > 0) & (pl.col("_sum_y") != 0))
        .then(pl.col("_sum_p") / pl.col("_sum_y"))
        .alias("calibration"),
        pl.when(has_ll).then(pl.col("_ll")).alias("log_loss"),
        pl.when(has_ll & (b > 0) & (b < 1)).then(pl.col("_ll") / base_entropy).alias("ne"),
        (pl.col("rows") / pl.col("rows").sum().over([MODEL, TS])).alias("traffic_share"),
        pl.when(_label_ss > 0).then(pl.col("_se") / _label_ss).alias("nmse"),
    )
    cols = [
        *keys[:2],
        *keys[2:],
        TS,
        "rows",
        "labeled_rows",
        "mean_prediction",
        "std_prediction",
        "median_prediction",
        "p90_prediction",
        "nan_rate",
        "label_mean",
        "calibration",
        "log_loss",
        "ne",
        "nmse",
        "traffic_share",
    ]
    if by_snapshot:
        out = out.with_columns(
            (pl.col("rows") / pl.col("rows").sum().over([MODEL, EXPERIMENT, TS])).alias(
                "snapshot_share"
            )
        )
        cols.append("snapshot_share")
    return collect(out.select(cols).sort([*keys, TS]))


def label_coverage(serving: Any, model: str | None, start: Any, end: Any) -> float | None:
    """The share of ``model``'s serving rows in [start, end) whose label has arrived (all
    models' rows when ``model`` is None); None when there are no such rows or no label column.

    Why: labels that arrive hours late leave calibration and NE blind to the first hours of an
    incident, so the evidence a verdict can gather there is weaker by construction; the
    verdict's confidence is read with that in mind (`triage.calibration.calibrated`)."""
    lf = as_lazy(serving)
    schema = lf.collect_schema()
    if LABEL not in schema or TS not in schema:
        return None
    ts = pl.col(TS)
    if getattr(schema[TS], "time_zone", None) is not None:
        ts = ts.dt.convert_time_zone("UTC")
    mask = (ts >= start) & (ts < end)
    if model is not None:
        mask = mask & (pl.col(MODEL) == model)
    got = collect(
        lf.filter(mask).select(
            pl.len().alias("rows"), pl.col(LABEL).is_not_null().sum().alias("labeled")
        )
    )
    rows = int(got["rows"][0])
    return float(got["labeled"][0]) / rows if rows else None

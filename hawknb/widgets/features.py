"""FeatureTable: the ranked responsible features as an interactive table.

(Named FeatureTable, not FeatureRanking, which is the kernel's result type in
``hawknb.kernels.features``; ``FeatureRanking`` here is a deprecated alias.)

The on-call engineer needs to scan hundreds to thousands of candidate features, re-sort them by
whichever evidence column they trust (drift, attribution shift, correlation with the bad
predictions) and jump to one; the table therefore crosses to the browser once as Arrow IPC and
the browser keeps only the visible rows in the DOM. Sparklines (e.g. hourly drift) and small
before-vs-after histograms are optional extras keyed by feature name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import traitlets

from hawknb.widgets._base import HawknbWidget, static_esm
from hawknb.widgets._serialization import frame_trait, to_polars

__all__ = ["FeatureTable", "prepare_distributions", "prepare_sparklines", "prepare_table"]

FEATURE = "feature"

#: the columns shown by default, in order: what a reader decides on (the rest behind a toggle)
COMPACT_COLUMNS = (
    "rank",
    FEATURE,
    "drift_psi",
    "corr_with_prediction",
    "importance_shift",
    "explained_share",
    "evidence",
)

#: short headers (and their tooltips) for the ranking's columns; others show their own name
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    "rank": ("#", "rank by responsibility for the prediction shift"),
    "drift_psi": ("drift (PSI)", "population stability index, reference vs anomaly window"),
    "corr_with_prediction": (
        "corr. w/ pred. shift",
        "correlation in time between the feature's drift and the prediction's drift",
    ),
    "importance_shift": (
        "Δ importance",
        "change of ablation importance (mean |prediction change| when the feature is ablated)",
    ),
    "explained_share": ("share of shift", "share of the prediction shift the feature carries"),
    "confidence": (
        "top-k confidence",
        "how often the feature is among the top-k across bootstrap resamples (blank: never)",
    ),
    "evidence": ("evidence", "the numbers behind the rank, in words"),
}
_MAX_SPARK_POINTS = 240
_DEFAULT_BINS = 20


def prepare_table(table: object) -> pl.DataFrame:
    """The ranking as the browser gets it: ``feature`` as string, numeric and string columns.

    Columns of other types (lists, structs, objects) are rendered as their text: the table must
    render *whatever* evidence the ranking step produced without knowing its columns in advance.
    """
    df = to_polars(table, "FeatureTable(table)")
    if FEATURE not in df.columns:
        raise ValueError(
            f"FeatureTable(table): the frame has no {FEATURE!r} column (it has {df.columns}). "
            f"Fix: name the column holding feature names {FEATURE!r}."
        )
    keep: list[pl.Series] = []
    for name, dtype in df.schema.items():
        col = df.get_column(name)
        if name == FEATURE:
            keep.append(col.cast(pl.String))
        elif (
            dtype.is_numeric()
            or dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Date)
            or isinstance(dtype, (pl.Datetime, pl.Enum, pl.Categorical))
        ):
            keep.append(col)
        else:
            try:
                keep.append(col.cast(pl.String))
            except Exception:  # lists/structs: show their Python text, one value per row
                text = [None if v is None else str(v) for v in col.to_list()]
                keep.append(pl.Series(name, text, dtype=pl.String))
    return pl.DataFrame(keep)


def _finite_list(values: Any) -> list[float | None]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size > _MAX_SPARK_POINTS:
        idx = np.linspace(0, arr.size - 1, _MAX_SPARK_POINTS).round().astype(np.int64)
        arr = arr[idx]
    return [float(v) if math.isfinite(v) else None for v in arr.tolist()]


def prepare_sparklines(
    sparklines: object | None, features: Sequence[str] | None = None
) -> dict[str, list[float | None]]:
    """Per-feature series for the inline trend column, as ``{feature: [value, ...]}``.

    Accepts a mapping feature -> sequence/array, or a long frame with ``feature`` and ``value``
    columns (ordered by ``ts`` when present). Non-finite values become gaps; long series are
    thinned to a few hundred points (a 90-pixel sparkline cannot show more). Features absent
    from ``features`` (when given) are dropped.
    """
    if sparklines is None:
        return {}
    out: dict[str, list[float | None]] = {}
    if isinstance(sparklines, Mapping):
        items = [(str(k), v) for k, v in sparklines.items()]
    else:
        df = to_polars(sparklines, "FeatureTable(sparklines)")
        missing = [c for c in (FEATURE, "value") if c not in df.columns]
        if missing:
            raise ValueError(
                f"FeatureTable(sparklines): the frame lacks columns {missing} (it has "
                f"{df.columns}). Fix: pass a long frame with 'feature' and 'value' (and 'ts'), "
                "or a dict feature -> list of values."
            )
        if "ts" in df.columns:
            df = df.sort([FEATURE, "ts"])
        grouped = df.group_by(FEATURE, maintain_order=True).agg(pl.col("value"))
        items = [
            (str(f), v)
            for f, v in zip(grouped[FEATURE].to_list(), grouped["value"].to_list(), strict=True)
        ]
    wanted = set(features) if features is not None else None
    for name, values in items:
        if wanted is not None and name not in wanted:
            continue
        try:
            out[name] = _finite_list([np.nan if v is None else v for v in values])
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"FeatureTable(sparklines[{name!r}]): values must be numbers ({exc}). "
                "Fix: pass a list/array of floats per feature."
            ) from exc
    return out


def _hist_pair(before: Any, after: Any, bins: int) -> dict[str, list[float]]:
    b = np.asarray(before, dtype=np.float64).ravel()
    a = np.asarray(after, dtype=np.float64).ravel()
    b = b[np.isfinite(b)]
    a = a[np.isfinite(a)]
    both = np.concatenate([b, a])
    if both.size == 0:
        return {"edges": [], "before": [], "after": []}
    lo, hi = float(both.min()), float(both.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
        # one value: a unit-wide (or relatively wide, for huge values) bin around it
        pad = max(0.5, abs(lo) * 1e-6)
        lo, hi = lo - pad, hi + pad
    if math.isfinite(hi - lo):
        edges = np.linspace(lo, hi, bins + 1)
    else:  # the span overflows float64 (values near +-1.8e308): interpolate halves
        edges = np.linspace(lo / 2, hi / 2, bins + 1) * 2
    cb, _ = np.histogram(b, bins=edges)
    ca, _ = np.histogram(a, bins=edges)
    return {
        "edges": edges.tolist(),
        "before": cb.astype(float).tolist(),
        "after": ca.astype(float).tolist(),
    }


def prepare_distributions(
    distributions: Mapping[str, Any] | None,
    features: Sequence[str] | None = None,
    bins: int = _DEFAULT_BINS,
) -> dict[str, dict[str, list[float]]]:
    """Before/after histograms on shared bins, as ``{feature: {edges, before, after}}``.

    Each value is either raw samples ``{"before": values, "after": values}`` (or a 2-tuple),
    binned here on the joint range so the two shapes are comparable, or precomputed
    ``{"edges": [...], "before": counts, "after": counts}`` with ``len(edges) == len(counts)+1``.
    """
    if distributions is None:
        return {}
    if not isinstance(distributions, Mapping):
        raise ValueError(
            "FeatureTable(distributions): expected a dict feature -> {'before', 'after'}, got "
            f"{type(distributions).__name__}"
        )
    wanted = set(features) if features is not None else None
    out: dict[str, dict[str, list[float]]] = {}
    for key, spec in distributions.items():
        name = str(key)
        if wanted is not None and name not in wanted:
            continue
        where = f"FeatureTable(distributions[{name!r}])"
        if isinstance(spec, Mapping):
            if "before" not in spec or "after" not in spec:
                raise ValueError(
                    f"{where}: needs 'before' and 'after' (found keys {sorted(spec)}). Fix: pass "
                    "{'before': samples, 'after': samples} or add 'edges' for precomputed counts."
                )
            before, after = spec["before"], spec["after"]
            edges = spec.get("edges")
        elif isinstance(spec, (tuple, list)) and len(spec) == 2:
            (before, after), edges = spec, None
        else:
            raise ValueError(f"{where}: expected a dict with 'before'/'after' or a 2-tuple")
        if edges is None:
            out[name] = _hist_pair(before, after, bins)
            continue
        e = np.asarray(edges, dtype=np.float64).ravel()
        cb = np.asarray(before, dtype=np.float64).ravel()
        ca = np.asarray(after, dtype=np.float64).ravel()
        if not (len(cb) == len(ca) == len(e) - 1):
            raise ValueError(
                f"{where}: precomputed histograms need len(edges) == len(before)+1 == "
                f"len(after)+1; got {len(e)}, {len(cb)}, {len(ca)}"
            )
        out[name] = {
            "edges": e.tolist(),
            "before": np.nan_to_num(cb, nan=0.0).tolist(),
            "after": np.nan_to_num(ca, nan=0.0).tolist(),
        }
    return out


class FeatureTable(HawknbWidget):
    """Sortable, filterable ranking of responsible features; click a row to select it.

    ``selected_feature`` (synced) holds the clicked feature's name ("" when none); observe it
    to drive the next step (lineage of that feature).
    """

    _esm = static_esm("features")
    _table = frame_trait("the ranking as shown")
    _sparklines = traitlets.Dict().tag(sync=True)
    _distributions = traitlets.Dict().tag(sync=True)
    #: columns shown before the reader asks for all of them (absent ones are skipped)
    compact_columns = traitlets.List(traitlets.Unicode(), list(COMPACT_COLUMNS)).tag(sync=True)
    _labels = traitlets.Dict().tag(sync=True)
    selected_feature = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        table: object,
        *,
        sparklines: object | None = None,
        distributions: Mapping[str, Any] | None = None,
        title: str = "",
        **kwargs: Any,
    ) -> None:
        df = prepare_table(table)
        names = df[FEATURE].to_list()
        reason = ""
        if df.height == 0:
            reason = "the ranking has no features (no feature passed the evidence thresholds)"
        self._frame = df  # before super().__init__: the selection validator reads it
        super().__init__(
            _table=df,
            _sparklines=prepare_sparklines(sparklines, names),
            _distributions=prepare_distributions(distributions, names),
            _labels={k: list(v) for k, v in COLUMN_LABELS.items() if k in df.columns},
            title=title,
            empty_reason=reason,
            **kwargs,
        )

    @property
    def frame(self) -> pl.DataFrame:
        """The table as shown (after type normalisation), for tests and for notebooks."""
        return self._frame

    @traitlets.validate("selected_feature")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"] or "")
        if value and value not in set(self._frame[FEATURE].to_list()):
            raise traitlets.TraitError(
                f"selected_feature {value!r} is not in the ranking. Fix: pick one of the table's "
                "'feature' values."
            )
        return value


def __getattr__(name: str) -> Any:
    """``FeatureRanking``: the old name of :class:`FeatureTable`, kept with a warning (it is
    also the name of the kernel's result, ``hawknb.kernels.features.FeatureRanking``)."""
    if name == "FeatureRanking":
        import warnings

        warnings.warn(
            "hawknb.widgets.FeatureRanking is now FeatureTable (FeatureRanking is the kernel's "
            "result type); the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return FeatureTable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""AnomalyTimeline: a top-line metric over time with its anomaly windows and rollout markers.

The on-call engineer's first question is "when did it start, and what shipped around then?",
so the view overlays the anomaly windows (shaded bands) and the rollout events (vertical marks)
on the metric, and brushing a window hands its range back to the kernel (``selection``).

Scale: a year of minutely data (500k+ points) never crosses whole. The overview is min-max
downsampled to ``max_points`` (spikes survive), sent as one Arrow IPC buffer; on zoom the
browser asks (custom message ``range`` with ``{lo, hi, width}``) and the kernel answers with the
detail of the visible range, again downsampled to the pixel width.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl
import traitlets

from ..workspace.contract import EXPERIMENT, MODEL, SNAPSHOT, TRAFFIC, TS, VALUE
from ._base import HawknbWidget, static_esm
from ._downsample import minmax_indices, range_slice
from ._serialization import (
    frame_trait,
    iso_to_datetime,
    jsonable,
    ms_to_iso,
    records,
    table_to_ipc,
    to_ms,
    to_polars,
)

#: optional band columns of the series frame, drawn when present
BAND_COLUMNS = ("baseline", "lower", "upper")
MAX_MARKERS = 2000


def _ts_ms(ts_dtype: pl.DataType, where: str) -> pl.Expr:
    """Expression: the ``ts`` column as float epoch milliseconds (UTC)."""
    if isinstance(ts_dtype, pl.Datetime):
        ts = pl.col(TS)
        if ts_dtype.time_zone is not None:
            ts = ts.dt.convert_time_zone("UTC")
        return ts.dt.epoch("us").cast(pl.Float64) / 1000.0
    if ts_dtype == pl.Date:
        return pl.col(TS).cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Float64)
    if ts_dtype.is_numeric():
        return pl.col(TS).cast(pl.Float64)
    raise ValueError(
        f"{where}: column '{TS}' has type {ts_dtype}; expected a timestamp "
        "(or epoch milliseconds). Fix: parse it, e.g. pl.col('ts').str.to_datetime()."
    )


def _series_arrays(series: object) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sorted epoch-ms x and float64 columns (value + optional bands) of a series frame."""
    df = to_polars(series, "AnomalyTimeline(series)")
    missing = [c for c in (TS, VALUE) if c not in df.columns]
    if missing:
        raise ValueError(
            f"AnomalyTimeline(series): missing column(s) {missing}; it has {df.columns}. "
            f"Fix: pass a frame with '{TS}' (timestamp) and '{VALUE}' (number) columns."
        )
    cols = [c for c in (VALUE, *BAND_COLUMNS) if c in df.columns]
    ts_expr = _ts_ms(df.schema[TS], "AnomalyTimeline(series)")
    for c in cols:
        if not (df.schema[c].is_numeric() or df.schema[c] == pl.Null):
            raise ValueError(
                f"AnomalyTimeline(series): column '{c}' has type {df.schema[c]}; expected numbers"
            )
    out = (
        df.select(ts_expr.alias(TS), *[pl.col(c).cast(pl.Float64) for c in cols])
        .filter(pl.col(TS).is_not_null())
        .sort(TS)
    )
    x = out[TS].to_numpy()
    return x, {c: out[c].fill_null(np.nan).to_numpy() for c in cols}


def _window_dicts(windows: Iterable[Any] | None, x_last: float | None) -> list[dict[str, Any]]:
    out = []
    for i, w in enumerate(records(list(windows or ()), "AnomalyTimeline(windows)")):
        onset = to_ms(w.get("onset", w.get("start")))
        if onset is None:
            raise ValueError(
                f"AnomalyTimeline(windows)[{i}]: no 'onset'. Fix: give each window an onset "
                "timestamp (and optionally end, direction, severity)."
            )
        end = to_ms(w.get("end"))
        if end is None:
            end = x_last if x_last is not None and x_last >= onset else onset
        if end < onset:
            raise ValueError(f"AnomalyTimeline(windows)[{i}]: end is before onset")
        severity = w.get("severity")
        try:
            severity = None if severity is None else float(severity)
        except (TypeError, ValueError):
            severity = None
        out.append(
            {
                "onset": onset,
                "end": end,
                "direction": str(w.get("direction") or ""),
                "severity": jsonable(severity),
                "label": str(w.get("label") or w.get("metric") or ""),
            }
        )
    return out


def _rollout_markers(rollouts: object) -> list[dict[str, Any]]:
    """One marker per (ts, model, experiment) where the snapshot traffic mix changed."""
    if rollouts is None:
        return []
    df = to_polars(rollouts, "AnomalyTimeline(rollouts)")
    need = [TS, MODEL, EXPERIMENT, SNAPSHOT, TRAFFIC]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"AnomalyTimeline(rollouts): missing column(s) {missing}; expected {need}")
    if df.height == 0:
        return []
    mix = (
        df.filter((pl.col(TRAFFIC) > 0) & pl.col(TS).is_not_null())
        .with_columns(_ts_ms(df.schema[TS], "AnomalyTimeline(rollouts)").alias(TS))
        .with_columns(pl.col(SNAPSHOT).cast(pl.String), pl.col(TRAFFIC).cast(pl.Float64))
        .sort(SNAPSHOT)
        .group_by(TS, MODEL, EXPERIMENT, maintain_order=True)
        .agg(
            pl.format("{} {}%", pl.col(SNAPSHOT), (pl.col(TRAFFIC) * 100).round(1))
            .str.join(", ")
            .alias("mix")
        )
        .sort(MODEL, EXPERIMENT, TS)
        .with_columns(
            pl.col("mix").shift(1).over(MODEL, EXPERIMENT).alias("_prev"),
        )
        .filter(pl.col("_prev").is_null() | (pl.col("_prev") != pl.col("mix")))
        .sort(TS)
    )
    if mix.height > MAX_MARKERS:
        mix = mix.tail(MAX_MARKERS)
    ts_ms = mix[TS].to_list()
    return [
        {
            "ts": float(t),
            "model": str(m),
            "experiment": str(e),
            "label": f"{m}/{e}: {mix_s}",
        }
        for t, m, e, mix_s in zip(
            ts_ms,
            mix[MODEL].to_list(),
            mix[EXPERIMENT].to_list(),
            mix["mix"].to_list(),
            strict=True,
        )
    ]


#: a rollout from this long before an anomaly's onset to NEAR_AFTER_MS after it is "near" it:
#: the one a reader should line up with the onset (a rollout a day into an incident is not)
NEAR_BEFORE_MS = 12 * 3600e3
NEAR_AFTER_MS = 6 * 3600e3


def is_near(ts_ms: float, onset_ms: float) -> bool:
    """Whether a rollout at ``ts_ms`` lines up with an onset at ``onset_ms``."""
    return onset_ms - NEAR_BEFORE_MS <= ts_ms <= onset_ms + NEAR_AFTER_MS


def _mark_near(
    markers: list[dict[str, Any]], windows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Flag the rollouts near an anomaly (``near``): the view draws only those by default.

    Dozens of dashed lines across the whole chart hide the one that matters; without any
    anomaly window every rollout is near (nothing to be near to)."""
    if not windows:
        return [{**m, "near": True} for m in markers]
    return [
        {
            **m,
            "near": any(is_near(m["ts"], w["onset"]) for w in windows),
        }
        for m in markers
    ]


def _renamed(old: str, new: str) -> None:
    import warnings

    warnings.warn(f"{old} is now {new}", DeprecationWarning, stacklevel=3)


class AnomalyTimeline(HawknbWidget):
    """A metric over time with anomaly bands and rollout markers; brush to select a window.

    ``series``: frame with ``ts``, ``value`` and optionally ``baseline``, ``lower``, ``upper``.
    ``windows``: dicts/objects with ``onset``, ``end``, ``direction``, ``severity`` (``label``).
    ``rollouts``: frame ``ts, model, experiment, snapshot, traffic`` (markers where mixes change;
    only those near an anomaly window are drawn until the reader asks for all).
    ``baseline``: a number (a flat reference line) when the series has no baseline column.
    Trait ``selected_window`` is ``{"start": iso, "end": iso}`` (or ``{}``) after a brush or a
    click on a band; ``selection_range`` gives it as UTC datetimes.
    """

    _esm = static_esm("timeline")

    #: the overview: ts (epoch ms), value[, baseline, lower, upper]; Arrow IPC on the wire
    data = frame_trait("the downsampled overview")
    windows = traitlets.List(traitlets.Dict()).tag(sync=True)
    markers = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: ``{"start": iso, "end": iso}`` or ``{}``; every view names its selection ``selected_*``
    selected_window = traitlets.Dict().tag(sync=True)
    total_points = traitlets.Int(0).tag(sync=True)
    sent_points = traitlets.Int(0).tag(sync=True)
    x_range = traitlets.List(traitlets.Float()).tag(sync=True)
    baseline_value = traitlets.Float(None, allow_none=True).tag(sync=True)
    max_points = traitlets.Int(3000).tag(sync=True)
    height = traitlets.Int(320).tag(sync=True)

    def __init__(
        self,
        series: object,
        *,
        windows: Iterable[Any] = (),
        rollouts: object = None,
        baseline: float | None = None,
        title: str = "",
        max_points: int = 3000,
        height: int = 320,
    ) -> None:
        if max_points < 4:
            raise ValueError(f"AnomalyTimeline: max_points must be >= 4, got {max_points}")
        x, cols = _series_arrays(series)
        self._x = x
        self._cols = cols
        x_last = float(x[-1]) if len(x) else None
        super().__init__(title=title, max_points=max_points, height=height)
        self.windows = _window_dicts(windows, x_last)
        self.markers = _mark_near(_rollout_markers(rollouts), self.windows)
        self.baseline_value = None if baseline is None else float(baseline)
        self.total_points = len(x)
        if len(x) == 0:
            self.empty_reason = "the series has no rows"
        elif not np.isfinite(cols[VALUE]).any():
            self.empty_reason = f"every '{VALUE}' of the series is NaN, infinite or null"
        if len(x):
            lo = float(x[0])
            hi = float(x[-1])
            for w in self.windows:  # a window beyond the series still shows
                lo, hi = min(lo, w["onset"]), max(hi, w["end"])
            self.x_range = [lo, hi]
        self.data = self._sample(0, len(x), max_points)

    # -- data -----------------------------------------------------------------------------------
    def _sample(self, i0: int, i1: int, max_points: int) -> pl.DataFrame:
        x = self._x[i0:i1]
        y = self._cols[VALUE][i0:i1]
        idx = minmax_indices(x, y, max(1, max_points // 4))
        # band columns are sampled at the same instants so they stay aligned with the value
        frame = {TS: x[idx], **{c: v[i0:i1][idx] for c, v in self._cols.items()}}
        if i0 == 0 and i1 == len(self._x):
            self.sent_points = len(idx)
        return pl.DataFrame(frame)

    def detail(self, lo: float, hi: float, width: int = 1000) -> bytes:
        """Arrow IPC of the points within ``[lo, hi]`` (epoch ms), downsampled to ``width`` px."""
        if hi < lo:
            lo, hi = hi, lo
        i0, i1 = range_slice(self._x, lo, hi)
        # one point on each side so lines reach the edges of the visible range
        i0, i1 = max(0, i0 - 1), min(len(self._x), i1 + 1)
        n = int(min(max(2 * int(width), 64), 4 * self.max_points))
        return table_to_ipc(self._sample(i0, i1, n))

    def _request_range(
        self, payload: dict[str, Any], _buffers: list[bytes]
    ) -> tuple[dict[str, Any], list[bytes]]:
        lo = float(payload["lo"])
        hi = float(payload["hi"])
        width = int(payload.get("width", 1000))
        buf = self.detail(lo, hi, width)
        i0, i1 = range_slice(self._x, min(lo, hi), max(lo, hi))
        return {"lo": lo, "hi": hi, "n_raw": i1 - i0}, [buf]

    # -- selection ------------------------------------------------------------------------------
    @property
    def selection_range(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The brushed window as UTC datetimes, or None when nothing is selected."""
        sel = self.selected_window
        if not sel.get("start") or not sel.get("end"):
            return None
        return iso_to_datetime(sel["start"]), iso_to_datetime(sel["end"])

    def select(self, start: Any, end: Any) -> None:
        """Select a window from Python (the view draws it); ``select(None, None)`` clears."""
        a, b = to_ms(start), to_ms(end)
        if a is None or b is None:
            self.selected_window = {}
            return
        a, b = min(a, b), max(a, b)
        self.selected_window = {"start": ms_to_iso(a), "end": ms_to_iso(b)}

    @property
    def selection(self) -> dict[str, Any]:
        """Deprecated: the old name of ``selected_window``."""
        _renamed("AnomalyTimeline.selection", "selected_window")
        return self.selected_window

    @selection.setter
    def selection(self, value: dict[str, Any]) -> None:
        _renamed("AnomalyTimeline.selection", "selected_window")
        self.selected_window = value

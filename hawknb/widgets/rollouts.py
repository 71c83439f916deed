"""RolloutCorrelator: per-(model, experiment) prediction health next to snapshot rollouts.

"Did the regression start when a snapshot ramped up?" is answered by eye when the health of
every model/experiment sits on one time axis with the traffic ramp of its snapshots beside it:
the panel whose health turns at the ramp is the suspect. Small multiples (one row per
model/experiment, one column per health series) keep the comparison honest -- same x axis,
every candidate shown, not only the one triage picked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
import traitlets

from ..workspace.contract import EXPERIMENT, MODEL, SNAPSHOT, TRAFFIC, TS
from ._base import HawknbWidget, static_esm
from ._serialization import jsonable, table_to_ipc, to_polars
from .timeline import _ts_ms

DEFAULT_SERIES = ("mean_prediction", "calibration", "ne", "traffic")
MAX_POINTS_PER_PANEL = 600
PANEL = "panel"


def _ramps(
    rollouts: pl.DataFrame, panels: list[tuple[str, str]], suspect: Mapping[str, Any]
) -> dict[int, dict[str, Any]]:
    """Per panel: the traffic share over time of the snapshot being ramped, and rollout starts.

    The ramped snapshot is the suspect's snapshot on the suspect panel, else the snapshot that
    first got traffic last (the newest arrival) -- the one a regression would follow.
    """
    out: dict[int, dict[str, Any]] = {}
    if rollouts.height == 0:
        return out
    r = rollouts.select(
        _ts_ms(rollouts.schema[TS], "RolloutCorrelator(rollouts)").alias(TS),
        pl.col(MODEL).cast(pl.String),
        pl.col(EXPERIMENT).cast(pl.String),
        pl.col(SNAPSHOT).cast(pl.String),
        pl.col(TRAFFIC).cast(pl.Float64),
    ).sort(TS)
    for pid, (m, e) in enumerate(panels):
        sub = r.filter((pl.col(MODEL) == m) & (pl.col(EXPERIMENT) == e))
        if sub.height == 0:
            continue
        first = sub.filter(pl.col(TRAFFIC) > 0).group_by(SNAPSHOT).agg(pl.col(TS).min()).sort(TS)
        if (
            suspect.get(MODEL) == m
            and suspect.get(EXPERIMENT) == e
            and suspect.get(SNAPSHOT) is not None
        ):
            snap = str(suspect[SNAPSHOT])
        elif first.height:
            snap = str(first[SNAPSHOT][-1])
        else:
            continue
        times = sub[TS].unique().sort()
        share = (
            pl.DataFrame({TS: times})
            .join(sub.filter(pl.col(SNAPSHOT) == snap).select(TS, TRAFFIC), on=TS, how="left")
            .with_columns(pl.col(TRAFFIC).fill_null(0.0))
            .sort(TS)
        )
        out[pid] = {
            "snapshot": snap,
            "ramp": [[float(t), float(s)] for t, s in share.iter_rows()],
            "starts": [
                {"ts": float(t), "snapshot": str(s)}
                for s, t in first.select(SNAPSHOT, TS).iter_rows()
            ],
        }
    return out


class RolloutCorrelator(HawknbWidget):
    """Small multiples of prediction health per model/experiment, aligned with rollouts.

    ``health``: frame with ``ts``, ``model``, ``experiment`` and numeric health columns.
    ``rollouts``: frame ``ts, model, experiment, snapshot, traffic`` (optional).
    ``suspect``: ``{"model", "experiment", "snapshot"}`` to highlight (optional).
    ``series``: health columns to show, in order; ``"traffic"`` (when not a health column) is
    the rollout ramp of the snapshot under suspicion. Missing columns are skipped.
    Trait ``selected`` becomes ``{"model", "experiment"}`` when a panel is clicked.
    """

    _esm = static_esm("rollouts")

    #: Arrow IPC, long: panel (int), ts (epoch ms), one float column per health series
    data = traitlets.Bytes(b"").tag(sync=True)
    panels = traitlets.List(traitlets.Dict()).tag(sync=True)
    series = traitlets.List(traitlets.Unicode()).tag(sync=True)
    suspect = traitlets.Dict().tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)
    x_range = traitlets.List(traitlets.Float()).tag(sync=True)

    def __init__(
        self,
        health: object,
        *,
        rollouts: object = None,
        suspect: Mapping[str, Any] | None = None,
        series: Iterable[str] = DEFAULT_SERIES,
        title: str = "",
    ) -> None:
        df = to_polars(health, "RolloutCorrelator(health)")
        missing = [c for c in (TS, MODEL, EXPERIMENT) if c not in df.columns]
        if missing:
            raise ValueError(
                f"RolloutCorrelator(health): missing column(s) {missing}; it has {df.columns}. "
                f"Fix: pass a frame with '{TS}', '{MODEL}', '{EXPERIMENT}' and health columns."
            )
        if isinstance(series, str):
            series = [series]
        series = [str(s) for s in series]
        if not series:
            raise ValueError("RolloutCorrelator(series): give a non-empty list of column names")
        suspect = dict(suspect or {})
        if suspect and not {MODEL, EXPERIMENT} <= set(suspect):
            raise ValueError(
                "RolloutCorrelator(suspect): expected a dict with 'model' and 'experiment' "
                f"(and optionally 'snapshot'), got keys {sorted(suspect)}"
            )
        roll = None
        if rollouts is not None:
            roll = to_polars(rollouts, "RolloutCorrelator(rollouts)")
            need = [TS, MODEL, EXPERIMENT, SNAPSHOT, TRAFFIC]
            miss = [c for c in need if c not in roll.columns]
            if miss:
                raise ValueError(f"RolloutCorrelator(rollouts): missing column(s) {miss}")

        health_cols = [
            s
            for s in series
            if s in df.columns and (df.schema[s].is_numeric() or df.schema[s] == pl.Null)
        ]
        shown = [s for s in series if s in health_cols or (s == TRAFFIC and roll is not None)]
        h = df.select(
            _ts_ms(df.schema[TS], "RolloutCorrelator(health)").alias(TS),
            pl.col(MODEL).cast(pl.String),
            pl.col(EXPERIMENT).cast(pl.String),
            *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in health_cols],
        ).filter(pl.col(TS).is_not_null())
        keys = h.select(MODEL, EXPERIMENT).unique().sort(MODEL, EXPERIMENT).rows()
        # the suspect first: it is the row the reader should look at
        keys.sort(key=lambda k: (k != (suspect.get(MODEL), suspect.get(EXPERIMENT)), k))
        panels = [(str(m), str(e)) for m, e in keys]
        pid = pl.DataFrame(
            {MODEL: [p[0] for p in panels], EXPERIMENT: [p[1] for p in panels]},
            schema={MODEL: pl.String, EXPERIMENT: pl.String},
        ).with_row_index(PANEL)
        long = h.join(pid, on=[MODEL, EXPERIMENT], how="inner").sort(PANEL, TS)
        long = self._thin(long, health_cols)
        ramps = _ramps(roll, panels, suspect) if roll is not None else {}

        super().__init__(title=title)
        self.series = shown
        self.suspect = jsonable(suspect)
        self.panels = [
            {
                "id": i,
                "model": m,
                "experiment": e,
                "suspect": (m, e) == (suspect.get(MODEL), suspect.get(EXPERIMENT)),
                **ramps.get(i, {"snapshot": None, "ramp": [], "starts": []}),
            }
            for i, (m, e) in enumerate(panels)
        ]
        xs = [long[TS].min(), long[TS].max()] if long.height else []
        for r in ramps.values():
            for t, _ in r["ramp"]:
                xs.append(t)
        xs = [float(x) for x in xs if x is not None]
        self.x_range = [min(xs), max(xs)] if xs else []
        self.data = table_to_ipc(long.select(pl.col(PANEL).cast(pl.Int32), TS, *health_cols))
        if not panels:
            self.empty_reason = "the health frame has no rows"
        elif not shown:
            self.empty_reason = (
                f"none of the series {series} is a numeric column of the health frame "
                f"(it has {df.columns})"
            )
        elif (
            health_cols
            and not ramps
            and all(long[c].null_count() == long.height for c in health_cols)
        ):
            self.empty_reason = "every health value is NaN or null"

    @staticmethod
    def _thin(long: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        """Bucket-average panels longer than MAX_POINTS_PER_PANEL (small multiples are small)."""
        if long.height == 0:
            return long
        counts = long.group_by(PANEL).len()
        if counts["len"].max() <= MAX_POINTS_PER_PANEL:  # type: ignore[operator]
            return long
        lo, hi = long[TS].min(), long[TS].max()
        width = max((float(hi) - float(lo)) / MAX_POINTS_PER_PANEL, 1.0)  # type: ignore[arg-type]
        return (
            long.with_columns(((pl.col(TS) - lo) / width).floor().alias("_b"))
            .group_by(PANEL, MODEL, EXPERIMENT, "_b")
            .agg(pl.col(TS).mean(), *[pl.col(c).mean() for c in cols])
            .sort(PANEL, TS)
            .drop("_b")
        )

    def select(self, model: str | None, experiment: str | None = None) -> None:
        """Select a panel from Python; ``select(None)`` clears."""
        if model is None:
            self.selected = {}
            return
        if not any(p["model"] == model and p["experiment"] == experiment for p in self.panels):
            raise ValueError(f"RolloutCorrelator.select: no panel {model}/{experiment}")
        self.selected = {MODEL: model, EXPERIMENT: experiment}

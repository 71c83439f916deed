"""RolloutCorrelator: the top-line metric, each model/arm's prediction health and every
snapshot's traffic share on one time axis.

"Did the regression start when a snapshot ramped up?" is answered by eye when the top line,
the health of every model/experiment and the rollouts share one x axis: each row draws its
health line over a stack of bands, one per snapshot, whose height is that snapshot's traffic
share, so the band that grows at the onset is the rollout to suspect. Every row is shown, not
only the one triage picked; the suspect row comes first. Only the snapshots that started near
the anomaly are labelled (the rest on demand), and the snapshot under suspicion can be put
side by side with its predecessor in the same hours (``compare``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
import traitlets

from ..workspace.contract import EXPERIMENT, MODEL, SNAPSHOT, TRAFFIC, TS
from ._base import HawknbWidget, static_esm
from ._downsample import minmax_indices
from ._serialization import frame_trait, jsonable, to_polars
from .timeline import _renamed, _ts_ms, is_near

DEFAULT_SERIES = ("mean_prediction", "calibration", "ne", "traffic")
MAX_POINTS_PER_PANEL = 600
MAX_TOPLINE_BUCKETS = 400
PANEL = "panel"
SNAP = "snap"
SHARE = "share"


def _ramps(
    rollouts: pl.DataFrame,
    panels: list[tuple[str, str]],
    suspect: Mapping[str, Any],
    named: tuple[str, ...] = (),
) -> dict[int, dict[str, Any]]:
    """Per panel: the traffic share over time of the snapshot being ramped, and rollout starts.

    The ramped snapshot is the suspect's snapshot on the suspect panel, else the newest of the
    ``named`` snapshots (those a finding names) the panel serves, else the snapshot that first
    got traffic last (the newest arrival) -- the one a regression would follow.
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
        elif named and first.filter(pl.col(SNAPSHOT).is_in(list(named))).height:
            snap = str(first.filter(pl.col(SNAPSHOT).is_in(list(named)))[SNAPSHOT][-1])
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


def _bands(
    rollouts: pl.DataFrame,
    panels: list[tuple[str, str]],
    window: tuple[float, float] | None,
    roles: Mapping[str, str],
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Every snapshot's traffic share per panel and time (shares of a panel's hour sum to 1),
    and the snapshots themselves: name, model, first time with traffic, whether that start is
    near the anomaly window, and its role ("suspect", "predecessor" or "")."""
    r = rollouts.select(
        _ts_ms(rollouts.schema[TS], "RolloutCorrelator(rollouts)").alias(TS),
        pl.col(MODEL).cast(pl.String),
        pl.col(EXPERIMENT).cast(pl.String),
        pl.col(SNAPSHOT).cast(pl.String),
        pl.col(TRAFFIC).cast(pl.Float64).fill_nan(0.0).fill_null(0.0).clip(0.0),
    )
    pid = pl.DataFrame(
        {MODEL: [p[0] for p in panels], EXPERIMENT: [p[1] for p in panels]},
        schema={MODEL: pl.String, EXPERIMENT: pl.String},
    ).with_row_index(PANEL)
    r = r.join(pid, on=[MODEL, EXPERIMENT], how="inner").filter(pl.col(TRAFFIC) > 0)
    if r.height == 0:
        return pl.DataFrame(), []
    starts = r.group_by(MODEL, SNAPSHOT).agg(pl.col(TS).min().alias("start")).sort("start")
    snaps = []
    for i, (model, name, start) in enumerate(starts.iter_rows()):
        near = window is not None and is_near(float(start), window[0])
        snaps.append(
            {
                "id": i,
                "name": name,
                "model": model,
                "start": float(start),
                "near": bool(near),
                "role": roles.get(name, ""),
            }
        )
    ids = starts.with_row_index(SNAP).select(pl.col(SNAP).cast(pl.Int32), MODEL, SNAPSHOT)
    bands = (
        r.join(ids, on=[MODEL, SNAPSHOT], how="inner")
        .with_columns(
            (pl.col(TRAFFIC) / pl.col(TRAFFIC).sum().over(PANEL, TS)).alias(SHARE),
            pl.col(PANEL).cast(pl.Int32),
        )
        .select(PANEL, TS, SNAP, SHARE)
        .sort(PANEL, TS, SNAP)
    )
    return bands, snaps


def _topline(frame: object, where: str) -> pl.DataFrame:
    """The top-line metric (``ts``, ``value``) thinned to a few hundred min/max buckets."""
    df = to_polars(frame, where)
    if TS not in df.columns or "value" not in df.columns:
        raise ValueError(f"{where}: expected columns 'ts' and 'value', it has {df.columns}")
    df = (
        df.select(_ts_ms(df.schema[TS], where).alias(TS), pl.col("value").cast(pl.Float64))
        .drop_nulls(TS)
        .sort(TS)
    )
    keep = minmax_indices(df[TS].to_numpy(), df["value"].to_numpy(), MAX_TOPLINE_BUCKETS)
    return df[keep]


def _compare(frame: object, pair: tuple[str, str], series: list[str]) -> pl.DataFrame:
    """The suspect snapshot and its predecessor in the same hours, long: ts, which (0 the
    suspect, 1 the predecessor) and the health columns both have."""
    df = to_polars(frame, "RolloutCorrelator(compare)")
    need = [TS, SNAPSHOT]
    if any(c not in df.columns for c in need):
        raise ValueError(f"RolloutCorrelator(compare): needs {need}, it has {df.columns}")
    cols = [s for s in series if s in df.columns and df.schema[s].is_numeric()]
    out = (
        df.filter(pl.col(SNAPSHOT).cast(pl.String).is_in(list(pair)))
        .select(
            _ts_ms(df.schema[TS], "RolloutCorrelator(compare)").alias(TS),
            (pl.col(SNAPSHOT).cast(pl.String) != pair[0]).cast(pl.Int32).alias("which"),
            *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in cols],
        )
        .group_by(TS, "which")
        .agg(*[pl.col(c).mean() for c in cols])
        .sort("which", TS)
    )
    return out


def predecessor_pair(
    by_snapshot: pl.DataFrame, model: str | None, experiment: str | None, snapshot: str
) -> tuple[str, str] | None:
    """``(snapshot, predecessor)``: the predecessor is the snapshot of the same model (and arm,
    when given) that served the most traffic in the last hour before ``snapshot`` first did.
    None when ``snapshot`` has no predecessor in the frame."""
    df = by_snapshot
    if model is not None and MODEL in df.columns:
        df = df.filter(pl.col(MODEL) == model)
    if experiment is not None and EXPERIMENT in df.columns:
        df = df.filter(pl.col(EXPERIMENT) == experiment)
    share = "snapshot_share" if "snapshot_share" in df.columns else None
    served = df.filter(pl.col(share) > 0) if share else df
    mine = served.filter(pl.col(SNAPSHOT) == snapshot)
    if mine.height == 0:
        return None
    first = mine[TS].min()
    before = served.filter((pl.col(TS) < first) & (pl.col(SNAPSHOT) != snapshot))
    if before.height == 0:
        return None
    last = before.filter(pl.col(TS) == before[TS].max())
    order = last.sort(share, descending=True) if share else last
    return snapshot, str(order[SNAPSHOT][0])


def _window_ms(window: tuple[Any, Any] | None) -> tuple[float, float] | None:
    if not window:
        return None
    from ._serialization import to_ms

    lo, hi = to_ms(window[0]), to_ms(window[1])
    if lo is None or hi is None:
        raise ValueError(f"RolloutCorrelator(window): expected two timestamps, got {window!r}")
    return (lo, hi) if lo <= hi else (hi, lo)


class RolloutCorrelator(HawknbWidget):
    """Small multiples of prediction health per model/experiment, aligned with rollouts.

    ``health``: frame with ``ts``, ``model``, ``experiment`` and numeric health columns.
    ``rollouts``: frame ``ts, model, experiment, snapshot, traffic`` (optional).
    ``suspect``: ``{"model", "experiment", "snapshot"}`` to highlight (optional).
    ``series``: health columns to show, in order; ``"traffic"`` (when not a health column) is
    the rollout ramp of the snapshot under suspicion. Missing columns are skipped.
    ``topline``: the top-line metric (``ts``, ``value``), drawn above the rows (optional).
    ``window``: the anomaly ``(start, end)``, shaded on every row (optional).
    ``named``: snapshots a finding names; the per-row ramp follows them (optional).
    ``compare``: health per snapshot (``ts``, ``snapshot`` and health columns) with
    ``compare_pair=(suspect, predecessor)``: the two drawn side by side in the same hours
    (``compare_roles`` names them on the axis, e.g. ``("examined", "predecessor")`` for a
    snapshot the snapshot step cleared).
    Trait ``selected_panel`` becomes ``{"model", "experiment"}`` when a row is clicked.
    """

    _esm = static_esm("rollouts")

    #: long: panel (int), ts (epoch ms), one float column per health series (Arrow IPC on the wire)
    data = frame_trait("prediction health per panel")
    panels = traitlets.List(traitlets.Dict()).tag(sync=True)
    series = traitlets.List(traitlets.Unicode()).tag(sync=True)
    suspect = traitlets.Dict().tag(sync=True)
    #: ``{"model", "experiment"}`` of the clicked row (every view names it ``selected_*``)
    selected_panel = traitlets.Dict().tag(sync=True)
    x_range = traitlets.List(traitlets.Float()).tag(sync=True)
    #: Arrow IPC via the trait's serializer: panel, ts, snap (index into ``snapshots``), share
    bands = frame_trait("every snapshot's traffic share per panel and time")
    snapshots = traitlets.List(traitlets.Dict()).tag(sync=True)
    topline = frame_trait("the top-line metric: ts, value")
    topline_name = traitlets.Unicode("").tag(sync=True)
    window = traitlets.List(traitlets.Float()).tag(sync=True)
    #: ts, which (0 suspect, 1 predecessor), health columns
    compare = frame_trait("the suspect snapshot and its predecessor in the same hours")
    compare_pair = traitlets.List(traitlets.Unicode()).tag(sync=True)
    compare_title = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        health: object,
        *,
        rollouts: object = None,
        suspect: Mapping[str, Any] | None = None,
        series: Iterable[str] = DEFAULT_SERIES,
        title: str = "",
        topline: object = None,
        topline_name: str = "",
        window: tuple[Any, Any] | None = None,
        named: Iterable[str] = (),
        compare: object = None,
        compare_pair: tuple[str, str] | None = None,
        compare_title: str = "",
        compare_roles: tuple[str, str] = ("suspect", "predecessor"),
    ) -> None:
        df, series, suspect, roll = _check_inputs(health, series, suspect, rollouts)
        health_cols = [
            s
            for s in series
            if s in df.columns and (df.schema[s].is_numeric() or df.schema[s] == pl.Null)
        ]
        shown = [s for s in series if s in health_cols or (s == TRAFFIC and roll is not None)]
        long, panels = _panel_rows(df, health_cols, suspect)
        long = self._thin(long, health_cols)
        named = tuple(str(n) for n in named)
        ramps = _ramps(roll, panels, suspect, named) if roll is not None else {}
        win = _window_ms(window)
        roles = _snapshot_roles(suspect, named, compare_pair, compare_roles)
        bands, snaps = _bands(roll, panels, win, roles) if roll is not None else (None, [])

        super().__init__(title=title)
        if bands is not None and bands.height:
            self.bands = bands
        self.snapshots = snaps
        self.window = list(win) if win else []
        if topline is not None:
            self.topline = _topline(topline, "RolloutCorrelator(topline)")
            self.topline_name = topline_name
        if compare is not None and compare_pair:
            pair = (str(compare_pair[0]), str(compare_pair[1]))
            self.compare = _compare(compare, pair, [s for s in series if s != TRAFFIC])
            self.compare_pair = list(pair)
            self.compare_title = compare_title or (
                f"{pair[0]} (under suspicion) vs {pair[1]} (its predecessor), same hours"
            )
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
        self.x_range = self._x_range(long, ramps)
        self.data = long.select(pl.col(PANEL).cast(pl.Int32), TS, *health_cols)
        self.empty_reason = _empty_reason(df, series, shown, panels, health_cols, ramps, long)

    def _x_range(self, long: pl.DataFrame, ramps: dict) -> list[float]:
        """One time axis for every panel: the health rows, the ramps and the top line."""
        xs = [long[TS].min(), long[TS].max()] if long.height else []
        for r in ramps.values():
            for t, _ in r["ramp"]:
                xs.append(t)
        if self.topline is not None and self.topline.height:
            xs += [self.topline[TS].min(), self.topline[TS].max()]
        xs = [float(x) for x in xs if x is not None]
        return [min(xs), max(xs)] if xs else []

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
            self.selected_panel = {}
            return
        if not any(p["model"] == model and p["experiment"] == experiment for p in self.panels):
            raise ValueError(f"RolloutCorrelator.select: no panel {model}/{experiment}")
        self.selected_panel = {MODEL: model, EXPERIMENT: experiment}

    @property
    def selected(self) -> dict[str, Any]:
        """Deprecated: the old name of ``selected_panel``."""
        _renamed("RolloutCorrelator.selected", "selected_panel")
        return self.selected_panel

    @selected.setter
    def selected(self, value: dict[str, Any]) -> None:
        _renamed("RolloutCorrelator.selected", "selected_panel")
        self.selected_panel = value


def _check_inputs(
    health: object, series: Iterable[str], suspect: Mapping[str, Any] | None, rollouts: object
) -> tuple[pl.DataFrame, list[str], dict[str, Any], pl.DataFrame | None]:
    """The health and rollouts frames, the series and the suspect, checked with errors that
    say which argument is wrong and how to fix it."""
    df = to_polars(health, "RolloutCorrelator(health)")
    missing = [c for c in (TS, MODEL, EXPERIMENT) if c not in df.columns]
    if missing:
        raise ValueError(
            f"RolloutCorrelator(health): missing column(s) {missing}; it has {df.columns}. "
            f"Fix: pass a frame with '{TS}', '{MODEL}', '{EXPERIMENT}' and health columns."
        )
    series = [series] if isinstance(series, str) else [str(s) for s in series]
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
    return df, series, suspect, roll


def _panel_rows(
    df: pl.DataFrame, health_cols: list[str], suspect: dict[str, Any]
) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    """Health rows tagged with their panel (one per model x experiment, the suspect first:
    it is the row the reader should look at), and the panels' keys."""
    h = df.select(
        _ts_ms(df.schema[TS], "RolloutCorrelator(health)").alias(TS),
        pl.col(MODEL).cast(pl.String),
        pl.col(EXPERIMENT).cast(pl.String),
        *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in health_cols],
    ).filter(pl.col(TS).is_not_null())
    keys = h.select(MODEL, EXPERIMENT).unique().sort(MODEL, EXPERIMENT).rows()
    keys.sort(key=lambda k: (k != (suspect.get(MODEL), suspect.get(EXPERIMENT)), k))
    panels = [(str(m), str(e)) for m, e in keys]
    pid = pl.DataFrame(
        {MODEL: [p[0] for p in panels], EXPERIMENT: [p[1] for p in panels]},
        schema={MODEL: pl.String, EXPERIMENT: pl.String},
    ).with_row_index(PANEL)
    return h.join(pid, on=[MODEL, EXPERIMENT], how="inner").sort(PANEL, TS), panels


def _snapshot_roles(
    suspect: dict[str, Any],
    named: tuple[str, ...],
    compare_pair: tuple[str, str] | None,
    compare_roles: tuple[str, str],
) -> dict[str, str]:
    """How each snapshot band is labelled: the compared pair's roles ("examined" instead of
    "suspect" when the snapshot step cleared it), else the suspect, then the named ones."""
    roles: dict[str, str] = {}
    if compare_pair:
        roles = {str(compare_pair[1]): compare_roles[1], str(compare_pair[0]): compare_roles[0]}
    elif suspect.get(SNAPSHOT):
        roles = {str(suspect[SNAPSHOT]): "suspect"}
    for n in named:
        roles.setdefault(n, "named")
    return roles


def _empty_reason(
    df: pl.DataFrame,
    series: list[str],
    shown: list[str],
    panels: list[tuple[str, str]],
    health_cols: list[str],
    ramps: dict,
    long: pl.DataFrame,
) -> str:
    """Why the view draws nothing ("" when it draws something)."""
    if not panels:
        return "the health frame has no rows"
    if not shown:
        return (
            f"none of the series {series} is a numeric column of the health frame "
            f"(it has {df.columns})"
        )
    if health_cols and not ramps and all(long[c].null_count() == long.height for c in health_cols):
        return "every health value is NaN or null"
    return ""

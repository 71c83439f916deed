"""Row-level evidence of a bad snapshot: what window means dilute.

A canary on a few percent of one experiment arm moves its arm's hourly mean by a few percent
of its own effect, and a blow-up on 5% of rows moves the mean inside hour-to-hour noise; the
model-isolation step then sees no model move and the snapshot step no snapshot worse than
its neighbours. Compared row by row with the rows its neighbours served in the same hours
(:func:`hawknb.kernels.snapshot_rows.compare_snapshot_rows`), such a snapshot stands out on
the rows it served, whatever its share of traffic. The models step asks this module when no
model's health explains a window; the snapshot step uses it to pick, among snapshots rolled
out in the same hour, the one whose served rows differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from ..engine import collect
from ..kernels.coverage import span_groups
from ..kernels.snapshot_rows import compare_snapshot_rows
from ..workspace import Workspace
from ..workspace import contract as c
from .findings import Finding
from .topline import Anomaly
from .walk_cache import memo

# -- row-level evidence -------------------------------------------------------------------------
#: row-level worse-direction z from which a newly served snapshot is a suspect on its own (a
#: few dozen candidate snapshots are tested per window, so a plain 2-3 sigma would convict
#: benign rollouts by chance)
ROW_Z = 7.0
#: the z at which the row-level confidence reaches its cap
ROW_Z_FULL = 20.0
#: how long before the onset a newly served snapshot is still a suspect, in metric samples
#: (late labels delay a label-based metric behind the rollout that broke it)
ROW_LOOKBACK_SAMPLES = 12
#: ... and, once a window is chosen and its causes are sought (``wide``), at least this long
#: whatever the cadence: a blow-up that only some inputs trigger grows with the hours those
#: inputs peak, and labels arrive hours late, so the window a model's health leads to can
#: open many samples after the rollout that broke it
ROW_LOOKBACK_MIN = timedelta(hours=12)
#: how far back a full cut-over's reference rows reach
ROW_BEFORE = timedelta(days=1)
#: a snapshot whose predictions spread, in rank space, over at most this share of the
#: variance its neighbours' do has collapsed into a narrow band of their range: a broken
#: layer that saturates or zeroes a hidden unit squeezes every output together. Such rows
#: stay inside the neighbours' central 98%, so the tail share cannot see them, and with a few
#: dozen rows of a canary their spread z stays small; it has its own bar (COLLAPSE_Z), met
#: only below this ratio. Tuning seeds of both generators: the missed collapsed canaries read
#: 0.11-0.20, snapshots fine-tuned on other data 0.35 and up, benign retrains 0.42 and up
#: (one at 0.27, with a spread z of 1.9)
COLLAPSE_RATIO = 0.3
#: the collapse's own bar, in standard errors of the rank-variance ratio: a collapse z of
#: COLLAPSE_Z counts as a row z of ROW_Z
COLLAPSE_Z = 3.0
#: fewest rows for a collapse to count (eight uniform ranks fall in a narrow band by chance
#: once in a few hundred snapshots; sixteen almost never)
COLLAPSE_MIN_ROWS = 16


#: the bar of rows beyond the reference's whole range (`compare_snapshot_rows`' range_z, an
#: exact z under "drawn like the reference"): a range z of RANGE_Z counts as a row z of ROW_Z.
#: Why a bar of its own: the tail z counts a row just outside the central 98% like one at a
#: value never served before, so a blow-up saturating 5-10% of rows read tail z 2.9-11 while
#: other new snapshots reached 8.3. Far beyond the range (benchmarks/rollout_row_stats.py),
#: the clearer arm of 13 of the independent generator's 14 tuning blow-ups (hard 0-13) reads
#: 4.7-7.5, and no other new snapshot reached 1 there (434 comparisons) or 1.8 on the
#: simulator's seeds 0-9 (2,830). 4 is the null's bar (p 3e-5 a comparison, a few dozen
#: comparisons a walk), not a gap fitted between the two groups
RANGE_Z = 4.0


def _compare_rows(rows: pl.DataFrame, **kwargs: object) -> pl.DataFrame:
    """`compare_snapshot_rows`, its z raised to the collapse's (on the row z's scale, see
    COLLAPSE_RATIO) where the snapshot's predictions collapsed (``collapse`` says where), then
    to its range z's (see RANGE_Z) where rows fell beyond the reference's range
    (``beyond_range``)."""
    shifts = compare_snapshot_rows(rows, **kwargs)  # type: ignore[arg-type]
    applies = (pl.col("spread_ratio") <= COLLAPSE_RATIO) & (pl.col("rows") >= COLLAPSE_MIN_ROWS)
    shifts = _raise_z(shifts, pl.col("spread_z") * (ROW_Z / COLLAPSE_Z), applies, "collapse")
    beyond = pl.col("range_z") >= RANGE_Z
    return _raise_z(shifts, pl.col("range_z") * (ROW_Z / RANGE_Z), beyond, "beyond_range")


def _raise_z(shifts: pl.DataFrame, other: pl.Expr, applies: pl.Expr, flag: str) -> pl.DataFrame:
    """``shifts`` with z raised to ``other`` (a z on the row z's scale) where ``applies`` and
    it is larger, and a ``flag`` column saying where (a null in either reads as no)."""
    raised = (applies & (other > pl.col("z"))).fill_null(False)
    return shifts.with_columns(
        pl.when(raised).then(other).otherwise("z").alias("z"), raised.alias(flag)
    )


def rows_differ(row: dict, *, among: str = "") -> str:
    """What a compared snapshot's rows show, in words: how many fell far beyond the whole range
    of ``among`` (default: the row's reference), how many collapsed into a narrow band, or how
    many fell outside its central 98%: whichever set the row's z."""
    among = among or f"the {row['reference']} rows"
    if row.get("beyond_range"):
        return (
            f"{row[c.SNAPSHOT]} serves {row['range_share']:.0%} of its {row['rows']} rows "
            f"far beyond the whole range of {among} ({row['range_expected']:.1%} expected at "
            f"most; z {row['z']:.1f})"
        )
    if row.get("collapse"):
        return (
            f"{row[c.SNAPSHOT]} serves its {row['rows']} rows in a narrow band of {among} "
            f"(rank spread {row['spread_ratio']:.0%} of theirs; z {row['z']:.1f})"
        )
    return (
        f"{row[c.SNAPSHOT]} serves {row['tail_share']:.0%} of its {row['rows']} rows outside "
        f"the central 98% of {among} ({row['tail_expected']:.0%} expected; z {row['z']:.1f})"
    )


def row_shifts(
    ws: Workspace, anomaly: Anomaly, cache: dict | None = None, wide: bool = False
) -> pl.DataFrame:
    """:func:`compare_snapshot_rows` of every snapshot first served around the anomaly.

    Window means dilute a canary by its traffic share and a partial blow-up by its row share;
    the row-level comparison (tails, matured-label loss) does not. ``cache`` (keyed by the
    window) lets the walk weigh several windows with one read per window, or one read for
    all of them (`prefetch_row_shifts`). ``wide``: the look-back of a chosen window's causes
    (`lookback`).
    """
    cache = {} if cache is None else cache
    key = _shift_key(anomaly, wide)
    if key not in cache:
        prefetch_row_shifts(ws, [anomaly], cache, wide)
    return cache[key]


def lookback(anomaly: Anomaly, wide: bool = False) -> timedelta:
    """How long before the onset a newly served snapshot is still a suspect of the window.

    Two answers, for two questions. Which window is the incident (``wide`` False): a rollout
    many hours before a window is weak evidence that this window is its doing, and a later
    window of the same incident, its comparison grown over more of the snapshot's rows, would
    take the choice from the window at its onset. What caused the chosen window (``wide``):
    every snapshot that could have, including one rolled out ROW_LOOKBACK_MIN before it."""
    samples = ROW_LOOKBACK_SAMPLES * anomaly.cadence
    return max(samples, ROW_LOOKBACK_MIN) if wide else samples


def _shift_key(anomaly: Anomaly, wide: bool) -> tuple:
    """The comparison depends on the onset, the end and the look-back, nothing else: two
    metrics' windows with the same onset and end but different cadences differ, while a wide
    look-back as long as the narrow one (hourly metrics) reuses its comparison."""
    end = max(anomaly.end, anomaly.onset + timedelta(hours=3))
    return ("row-shifts", anomaly.onset, end, lookback(anomaly, wide))


def _row_span(anomaly: Anomaly, wide: bool) -> tuple[datetime, datetime]:
    """The serving rows `row_shifts` compares: from a day (and the look-back) before the
    onset to the window's end."""
    end = max(anomaly.end, anomaly.onset + timedelta(hours=3))
    return anomaly.onset - lookback(anomaly, wide) - ROW_BEFORE - timedelta(hours=1), end


def _read_span(anomaly: Anomaly, wide: bool) -> tuple[datetime, datetime]:
    """The rows `_shifts` reads: `_row_span`, and the CANARY_SPAN after the onset."""
    since, end = _row_span(anomaly, wide)
    return since, max(end, anomaly.onset + CANARY_SPAN)


def _row_span_rows(ws: Workspace, since: datetime, end: datetime) -> pl.DataFrame:
    cols = [c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.PREDICTION]
    if c.LABEL in ws.serving.collect_schema():
        cols.append(c.LABEL)
    return collect(
        ws.serving.select(cols).filter(
            pl.col(c.TS).cast(pl.Datetime("us", "UTC")).is_between(since, end)
        )
    )


def _shifts(anomaly: Anomaly, rows: pl.DataFrame, wide: bool) -> pl.DataFrame:
    """`compare_snapshot_rows` of the window, on rows covering at least its `_read_span`.

    A snapshot that served fewer than LEAD_ROWS rows in the window (a canary on a few % of
    one arm) is compared over the CANARY_SPAN after the onset instead, as its lead is
    (`rollout_rows`): a window a few samples long holds a handful of its rows, too few for
    any tail share to count, however bad they are."""
    since, end = _row_span(anomaly, wide)
    ts = pl.col(c.TS).cast(pl.Datetime("us", "UTC"))

    def compare(some: pl.DataFrame, until: datetime) -> pl.DataFrame:
        return _compare_rows(
            some.filter(ts.is_between(since, until)),
            onset=anomaly.onset,
            end=until,
            lookback=lookback(anomaly, wide),
            before=ROW_BEFORE,
        )

    shifts = compare(rows, end)
    longer_end = anomaly.onset + CANARY_SPAN
    if longer_end <= end:
        return shifts
    new = _first_served(rows, since, anomaly.onset - lookback(anomaly, wide), end)
    return _canaries_compared_longer(shifts, rows, lambda arms: compare(arms, longer_end), new)


def _first_served(rows: pl.DataFrame, since: datetime, lo: datetime, hi: datetime) -> pl.DataFrame:
    """(model, experiment, snapshot) first served in [lo, hi] among ``rows`` from ``since``:
    the snapshots a comparison of that span is asked about (`compare_snapshot_rows`' "new")."""
    ts = pl.col(c.TS).cast(pl.Datetime("us", "UTC"))
    key = [pl.col(k).cast(pl.String) for k in (c.MODEL, c.EXPERIMENT, c.SNAPSHOT)]
    return (
        rows.filter(ts.is_between(since, hi))
        .group_by(key)
        .agg(ts.min().alias("_first"))
        .filter(pl.col("_first") >= lo)
        .drop("_first")
    )


def _canaries_compared_longer(
    shifts: pl.DataFrame,
    rows: pl.DataFrame,
    compare_longer: Callable[[pl.DataFrame], pl.DataFrame],
    new: pl.DataFrame,
) -> pl.DataFrame:
    """``shifts`` with the snapshots that served fewer than LEAD_ROWS rows replaced by their
    comparison over the longer span (``compare_longer`` of the rows), and the snapshots of
    ``new`` (first served in the short span) that it could not compare at all added from it:
    a canary with fewer rows than any comparison needs in the short span is the canary the
    longer span is for (a 1% canary of a sampled log served 5 rows in a 3-hour window and
    was dropped without a word). Only the arms holding such a canary are compared again: each
    (model, experiment) is compared on its own rows."""
    key = [c.MODEL, c.EXPERIMENT, c.SNAPSHOT]
    unseen = new.select(key).join(shifts.select(key), on=key, how="anti")
    thin = pl.concat([shifts.filter(pl.col("rows") < LEAD_ROWS).select(key), unseen])
    if thin.is_empty():
        return shifts
    arms = rows.filter(
        pl.col(c.MODEL).cast(pl.String).is_in(thin[c.MODEL].unique().implode())
        & pl.col(c.EXPERIMENT).cast(pl.String).is_in(thin[c.EXPERIMENT].unique().implode())
    )
    longer = compare_longer(arms).join(thin, on=key, how="semi")
    kept = shifts.join(longer, on=key, how="anti")
    return pl.concat([kept, longer]).sort("first_ts", *key)


def prefetch_row_shifts(
    ws: Workspace, anomalies: list[Anomaly], cache: dict, wide: bool = False
) -> None:
    """`row_shifts` of every anomaly into ``cache``, reading the log's prediction columns
    once per group of overlapping windows (`coverage.span_groups`, bounded in span) instead
    of once per window: the dozen windows a walk weighs mostly share their day before.
    Each window is compared on exactly the rows a read of its own would return."""
    todo: dict[tuple, Anomaly] = {}
    for a in anomalies:  # the first window of a key answers for it, as one read at a time did
        if _shift_key(a, wide) not in cache:
            todo.setdefault(_shift_key(a, wide), a)
    pending = list(todo.values())
    spans = [_read_span(a, wide) for a in pending]
    for group in span_groups(spans):
        lo = min(spans[i][0] for i in group)
        hi = max(spans[i][1] for i in group)
        rows = _row_span_rows(ws, lo, hi)
        for i in group:
            cache[_shift_key(pending[i], wide)] = _shifts(pending[i], rows, wide)


#: a before/after comparison (a full cut-over: nothing served beside it) is weighed this much:
#: a data break at the same hour moves its rows too
BEFORE_WEIGHT = 0.6


def row_confidence(
    z: float, first_ts: datetime, anomaly: Anomaly, reference: str, wide: bool = False
) -> float:
    """A row-level z as a confidence that the snapshot broke the window: 0 below ROW_Z, 0.5 at
    it, growing to 0.95 at ROW_Z_FULL, and lower the further its first serve is from the
    onset (within the look-back) and when it was compared with the rows before it."""
    if not z >= ROW_Z:
        return 0.0
    base = 0.5 + 0.45 * min(1.0, (z - ROW_Z) / (ROW_Z_FULL - ROW_Z))
    if reference != "same hours":
        base *= BEFORE_WEIGHT
    gap = abs((first_ts - anomaly.onset).total_seconds())
    horizon = lookback(anomaly, wide).total_seconds() or 1.0
    return base * (0.7 + 0.3 * max(0.0, 1.0 - gap / horizon))


def row_suspects(shifts: pl.DataFrame, anomaly: Anomaly, wide: bool = False) -> pl.DataFrame:
    """The (model, experiment, snapshot) rows of ``shifts`` (`row_shifts` with the same
    ``wide``) whose row-level evidence makes them suspects, with a ``confidence`` column, most
    confident first."""
    if shifts.is_empty():
        return shifts.with_columns(pl.lit(0.0).alias("confidence"))
    # a release cut over in several arms at once is compared arm by arm with the rows before
    # it; the arms' rows are independent, so their z add up (Stouffer) for the snapshot
    key = [c.MODEL, c.SNAPSHOT, "reference"]
    combined = (pl.col("z").sum() / pl.col("z").count().sqrt()).over(key)
    shifts = shifts.with_columns(
        pl.when(pl.col("reference") != "same hours")
        .then(pl.max_horizontal("z", combined))
        .otherwise(pl.col("z"))
        .alias("_z")
    )
    conf = [
        row_confidence(float(z), ts, anomaly, ref, wide)
        for z, ts, ref in zip(
            shifts["_z"].to_list(),
            shifts["first_ts"].to_list(),
            shifts["reference"].to_list(),
            strict=True,
        )
    ]
    return (
        shifts.with_columns(pl.Series("confidence", conf, dtype=pl.Float64))
        .drop("_z")
        .filter(pl.col("confidence") > 0)
        .sort(["confidence", "z"], descending=True)
    )


def model_arms(ws: Workspace, model: str, cache: dict | None = None) -> set[str]:
    """The experiments the model served anywhere in the log (a scan; once per walk)."""

    def read() -> set[str]:
        served = ws.serving.filter(pl.col(c.MODEL) == model).select(pl.col(c.EXPERIMENT).unique())
        return set(collect(served)[c.EXPERIMENT].to_list())

    return memo(cache, ("arms", model), read)


@dataclass(frozen=True)
class RowSuspect:
    """The snapshot whose served rows differ most from its neighbours', as a model suspect."""

    model: str
    experiment: str
    snapshot: str
    #: the arms where the snapshot's rows differ (all the arms it served, when it differs)
    degraded: tuple[str, ...]
    #: whether it serves only some of the model's arms
    experiment_specific: bool
    confidence: float
    finding: Finding


def row_suspect(ws: Workspace, anomaly: Anomaly, cache: dict | None = None) -> RowSuspect | None:
    """The most confident row-level suspect of the window, with the models step's finding."""
    shifts = row_shifts(ws, anomaly, cache)
    sus = row_suspects(shifts, anomaly)
    if sus.is_empty():
        return None
    top = sus.row(0, named=True)
    model, snap = top[c.MODEL], top[c.SNAPSHOT]
    mine = sus.filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snap))
    degraded = tuple(sorted(mine[c.EXPERIMENT].to_list()))
    arms = model_arms(ws, model, cache)
    served = set(shifts.filter(pl.col(c.SNAPSHOT) == snap)[c.EXPERIMENT].to_list())
    specific = bool(served) and served < arms
    where = f"in {', '.join(degraded)}" if specific else "in every experiment it served"
    finding = Finding(
        "models",
        checked=f"serving rows of {shifts.height} snapshot(s) first served around the onset, "
        "row by row against the rows their neighbours served in the same hours (or before)",
        decision=f"{model}'s predictions changed {where}: snapshot {rows_differ(top)}; "
        "check its snapshots",
        confidence=float(top["confidence"]),
        evidence={
            "row_suspects": sus.head(5)
            .select(
                c.MODEL,
                c.EXPERIMENT,
                c.SNAPSHOT,
                "rows",
                "reference",
                "tail_share",
                "tail_expected",
                "tail_z",
                "loss_z",
                "spread_ratio",
                "collapse",
                "range_share",
                "range_z",
                "beyond_range",
                "confidence",
            )
            .to_dicts(),
            "model": model,
            "experiment": top[c.EXPERIMENT],
            "degraded": degraded,
        },
        next_step="snapshot",
    )
    return RowSuspect(
        model, top[c.EXPERIMENT], snap, degraded, specific, float(top["confidence"]), finding
    )


# -- rollouts as leads --------------------------------------------------------------------------
#: a newly served snapshot leads a candidate window when its first hours' rows differ from its
#: neighbours' this clearly (the bar at which it is a suspect on its own: every rollout of the
#: history is tested, so a plain 2-3 sigma would lead to benign ones by chance)
LEAD_Z = ROW_Z
#: the hours after its first serve in which a snapshot's rows are compared for a lead
LEAD_SPAN = timedelta(hours=6)
#: a snapshot that served fewer rows than this in LEAD_SPAN (a canary on a few % of one arm)
#: is compared over up to CANARY_SPAN instead: its evidence is its rows, not its hours, and a
#: tail share of a few rows cannot reach LEAD_Z however bad they are
LEAD_ROWS = 50
CANARY_SPAN = 2 * LEAD_SPAN
#: leads are capped at this z (a saturated blow-up's tail z is astronomic; the order of leads
#: only needs "very clear")
LEAD_Z_CAP = 40.0


def rollout_rows(
    ws: Workspace, cache: dict | None = None, only: frozenset[tuple[str, str]] | None = None
) -> pl.DataFrame:
    """(model, snapshot, first_ts, z, what) of every snapshot first served after the log's
    first day: how clearly its rows in its first LEAD_SPAN differ from its neighbours' (tails,
    matured loss, a collapse, or a moved distribution: `_lead_z`; its
    clearest arm's z, or the arms' z combined, Stouffer, when it went out in several arms at
    once: their rows are independent). Whether the rows were compared with the same hours' or
    with the rows before does not matter here: this says only whether what it served changed,
    not what caused a window. ``only``: just these (model, snapshot) pairs (a walk on a window
    the person asked for needs the rollouts at its onset, not every one of the history)."""
    return memo(cache, ("rollout-rows", only), lambda: _rollout_rows(ws, cache, only))


def _rollout_rows(
    ws: Workspace, cache: dict | None, only: frozenset[tuple[str, str]] | None
) -> pl.DataFrame:
    firsts = _snapshot_firsts(ws, cache)
    new = (
        firsts.filter(pl.col("first") >= firsts["first"].min() + ROW_BEFORE)
        if firsts.height
        else firsts
    )
    wanted = None
    if only is not None:
        wanted = pl.DataFrame(
            list(only), schema={c.MODEL: pl.String, c.SNAPSHOT: pl.String}, orient="row"
        )
        new = _slices_reaching(new, wanted)
    # each slice's comparison is the walk's (``cache``): weighing every rollout and then
    # those at one onset (windows.rollout_suspect) compares each slice once
    slices = cache.setdefault("rollout-slices", {}) if cache is not None else {}
    found: dict[tuple[str, str], dict] = {}
    for (model,), snaps in new.group_by([c.MODEL], maintain_order=True):
        read = _ModelRows(ws, model, snaps)
        for snap, first in snaps.select(c.SNAPSHOT, "first").iter_rows():
            if (model, snap) in found:
                continue
            if (model, snap, first) not in slices:
                slices[(model, snap, first)] = _slice_leads(read.rows(), model, first)
            for lead in slices[(model, snap, first)]:
                k = (model, lead["snapshot"])
                if k not in found or found[k]["z"] < lead["z"]:
                    found[k] = lead
    out = pl.DataFrame(
        list(found.values()),
        schema={
            c.MODEL: pl.String,
            c.SNAPSHOT: pl.String,
            "first_ts": pl.Datetime("us", "UTC"),
            "z": pl.Float64,
            "what": pl.String,
        },
    ).sort("first_ts", c.MODEL, c.SNAPSHOT)
    if wanted is not None:  # the other snapshots of the slices were compared, not asked for
        out = out.join(wanted, on=[c.MODEL, c.SNAPSHOT], how="semi", maintain_order="left")
    return out


#: how far before a snapshot's first serve its slice's reference rows reach
_REACH = ROW_BEFORE + timedelta(hours=1)


def _snapshot_firsts(ws: Workspace, cache: dict | None) -> pl.DataFrame:
    """(model, snapshot, first) of every snapshot in the log, by first serve (a scan of the
    whole log; once per walk with ``cache``)."""

    def read() -> pl.DataFrame:
        ts = pl.col(c.TS).cast(pl.Datetime("us", "UTC"))
        by = (pl.col(c.MODEL).cast(pl.String), pl.col(c.SNAPSHOT).cast(pl.String))
        firsts = ws.serving.group_by(*by).agg(ts.min().alias("first"))
        return collect(firsts.sort("first", c.MODEL, c.SNAPSHOT))

    return memo(cache, "snapshot-firsts", read)


class _ModelRows:
    """One model's rows around all its new snapshots, read on first use: one read for all its
    slices (a read per snapshot rescans the log every time), none when all are known."""

    def __init__(self, ws: Workspace, model: str, snaps: pl.DataFrame) -> None:
        self.ws, self.model = ws, model
        self.lo, self.hi = snaps["first"].min() - _REACH, snaps["first"].max() + CANARY_SPAN
        self._rows: pl.DataFrame | None = None

    def rows(self) -> pl.DataFrame:
        if self._rows is None:
            cols = [c.TS, c.MODEL, c.EXPERIMENT, c.SNAPSHOT, c.PREDICTION]
            if c.LABEL in self.ws.serving.collect_schema():
                cols.append(c.LABEL)
            ts = pl.col(c.TS).cast(pl.Datetime("us", "UTC"))
            self._rows = collect(
                self.ws.serving.select(cols)
                .with_columns(ts.alias(c.TS), pl.col(c.MODEL).cast(pl.String))
                .filter((pl.col(c.MODEL) == self.model) & pl.col(c.TS).is_between(self.lo, self.hi))
            )
        return self._rows


def _slice_leads(rows: pl.DataFrame, model: str, first: datetime) -> list[dict]:
    """The leads (`_leads`) of the snapshots first served in the LEAD_SPAN after ``first``,
    compared on the model's rows of that slice; those that served fewer than LEAD_ROWS rows
    in it (canaries) compared over CANARY_SPAN instead."""
    shifts = _compare_slice(rows, first, LEAD_SPAN)
    new = _first_served(rows, first - _REACH, first, first + LEAD_SPAN)
    shifts = _canaries_compared_longer(
        shifts, rows, lambda arms: _compare_slice(arms, first, CANARY_SPAN), new
    )
    return _leads(shifts, model)


def _compare_slice(rows: pl.DataFrame, first: datetime, span: timedelta) -> pl.DataFrame:
    """`_compare_rows` of the snapshots first served in ``span`` after ``first``."""
    return _compare_rows(
        rows.filter(pl.col(c.TS).is_between(first - _REACH, first + span)),
        onset=first,
        end=first + span,
        lookback=timedelta(0),
        before=ROW_BEFORE,
    )


def _slices_reaching(new: pl.DataFrame, wanted: pl.DataFrame) -> pl.DataFrame:
    """The new snapshots whose first LEAD_SPAN holds the first serve of one in ``wanted``
    (model, snapshot pairs: a snapshot is compared in each of those slices and keeps its
    clearest z, so these are the comparisons its z can come from)."""
    firsts = new.join(wanted, on=[c.MODEL, c.SNAPSHOT], how="semi").select(
        c.MODEL, pl.col("first").alias("_w")
    )
    return (
        new.join(firsts, on=c.MODEL, how="inner")
        .filter(pl.col("first").is_between(pl.col("_w") - LEAD_SPAN, pl.col("_w")))
        .select(new.columns)
        .unique()
        .sort("first", c.MODEL, c.SNAPSHOT)
    )


#: a new snapshot whose predictions' distribution moved this far from its neighbours' (two-sample
#: KS distance), over at least LEAD_ROWS rows, leads on that alone: a model fine-tuned on other
#: data can shift every prediction while none reaches the tails. Only a lead (a time worth
#: looking at), never a suspect: a data break that starts with a cut-over moves its rows too.
#: Tuning seeds of both generators (benchmarks/rollout_row_stats.py): the independent one's
#: retrains away from a data break read <= 0.28 and its leaked-label snapshots 0.33-0.68; the
#: snapshots of either above 0.4 that are not the incident's took over within 4 hours of its
#: data break (so their lead still points at the incident's time)
SHIFT_KS = 0.4


def _lead_z(shifts: pl.DataFrame) -> pl.DataFrame:
    """``shifts`` with z raised to a shift's (KS at SHIFT_KS counts as ROW_Z) where the
    predictions' distribution moved (``shifted`` says where)."""
    applies = (pl.col("ks") >= SHIFT_KS) & (pl.col("rows") >= LEAD_ROWS)
    return _raise_z(shifts, pl.col("ks") * (ROW_Z / SHIFT_KS), applies, "shifted")


def _leads(shifts: pl.DataFrame, model: str) -> list[dict]:
    """Each snapshot of ``shifts`` with its z (see `rollout_rows`) and what it served."""
    out = []
    for (snap,), part in _lead_z(shifts).group_by([c.SNAPSHOT], maintain_order=True):
        zs = [z for z in part["z"].to_list() if z is not None and math.isfinite(z)]
        if not zs:
            continue
        top = part.sort("z", descending=True, nulls_last=True).row(0, named=True)
        what = (
            f"{model}'s snapshot {snap} served {top['rows']} rows whose distribution moved from "
            f"its neighbours' (KS {top['ks']:.2f}) in its first hours"
            if top["shifted"]
            else f"{model}'s snapshot {rows_differ(top, among='its neighbours')} in its first hours"
        )
        z = max(max(zs), sum(zs) / math.sqrt(len(zs)))
        out.append(
            {c.MODEL: model, c.SNAPSHOT: snap, "first_ts": top["first_ts"], "z": z, "what": what}
        )
    return out


def rollout_peaks(ws: Workspace, cache: dict | None = None) -> list[tuple[float, object, str, str]]:
    """(z, first serve, model, what) of the snapshots of `rollout_rows` whose rows differ by
    LEAD_Z or more, the clearest first.

    Why: a bad snapshot on a canary of one arm, with labels that arrive hours after the
    serve, leaves the pooled prediction health flat and moves the top line by a few percent,
    inside a noisy metric's weekly swings: neither the metric nor the health series find the
    time. The snapshot's own rows show it at once, whatever its traffic share, so a rollout
    whose rows differ is independent evidence that something happened then, exactly as a
    health step is; led.py makes a candidate window of it when a metric stepped with it.
    """
    rows = rollout_rows(ws, cache).filter(pl.col("z") >= LEAD_Z).sort("z", descending=True)
    return [
        (min(float(z), LEAD_Z_CAP), t, m, what)
        for m, t, z, what in rows.select(c.MODEL, "first_ts", "z", "what").iter_rows()
    ]

"""Training-data diagnosis for a suspect snapshot: its partitions, its labels, its loss curve.

A snapshot that went bad without any feature or code change was usually trained on bad data
(a partition with inflated or collapsed labels, a half-empty day) or trained badly (the loss
exploded or diverged). HawkEye lets the on-call go from the snapshot to the partitions it was
trained on and to its training-time metrics; this kernel does the statistics: each partition
against the model's earlier partitions (robust z of label mean and log row count), the
training window's label mean against earlier data and against serving labels, and the loss
curve against itself (NaN/inf, jumps) and against other snapshots' curves.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..engine import as_lazy, collect
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError

__all__ = [
    "CurveCheck",
    "LabelShift",
    "PartitionCheck",
    "TrainingDiagnosis",
    "diagnose_training",
]

#: |robust z| above which a partition's label mean or log row count is anomalous
PARTITION_Z = 4.0
#: a label mean this close to 0 or 1, when earlier partitions were not, is class imbalance
IMBALANCE_EDGE = 0.01
#: the training window's label mean differs from serving labels by more than this (relative)
SERVING_REL_DIFF = 0.25
#: one step multiplying the loss by more than this is a jump ...
JUMP_RATIO = 2.0
#: ... when it is also this many robust sd above the curve's usual step-to-step change
JUMP_Z = 6.0
#: the final loss is diverged when this many robust sd above other snapshots' final losses
FINAL_Z = 4.0
_MAD = 1.4826
#: fewer earlier partitions than this: compare the window's partitions with each other
MIN_REFERENCE = 3


@dataclass(frozen=True)
class PartitionCheck:
    partition: dt.date
    rows: int
    label_mean: float
    label_z: float
    rows_z: float
    anomalous: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class LabelShift:
    """The training window's (row-weighted) label mean against earlier data and serving."""

    train_mean: float
    reference_mean: float
    robust_z: float
    serving_mean: float | None
    serving_rel_diff: float | None
    suspect: bool


@dataclass(frozen=True)
class CurveCheck:
    snapshot: str
    n_steps: int
    nonfinite_steps: int
    first_nonfinite_step: int | None
    max_jump_ratio: float
    jump_step: int | None
    final_loss: float
    reference_final: float | None
    final_z: float | None
    exploded: bool
    diverged: bool


@dataclass(frozen=True)
class TrainingDiagnosis:
    model: str
    snapshot: str
    partitions: tuple[PartitionCheck, ...]
    anomalous_partitions: tuple[dt.date, ...]
    label_shift: LabelShift | None
    curve: CurveCheck | None
    #: True when the training data or the training run is a suspect cause
    verdict: bool
    confidence: float
    reasons: tuple[str, ...]
    #: True when partition row counts are the only evidence. Fewer (or more) rows of the same
    #: data make a noisier model, not a differently behaving one: this alone does not explain
    #: a snapshot whose weights changed far more than usual, while shifted labels or a loss
    #: that exploded do
    volume_only: bool = False
    #: True when a final loss above the other snapshots' (not exploded) is the only evidence:
    #: it says the run ended worse, not that its data was different, and a snapshot broken
    #: some other way (one corrupted layer) ends there too, so it explains a snapshot only
    #: when nothing inside the snapshot does; shifted labels or an exploded loss still do
    loss_only: bool = False

    @property
    def suspect(self) -> bool:
        return self.verdict

    def frame(self) -> pl.DataFrame:
        """One row per training partition of the snapshot, for display."""
        return pl.DataFrame(
            [
                {
                    "partition": p.partition,
                    "rows": p.rows,
                    "label_mean": p.label_mean,
                    "label_z": p.label_z,
                    "rows_z": p.rows_z,
                    "anomalous": p.anomalous,
                    "reasons": "; ".join(p.reasons),
                }
                for p in self.partitions
            ],
            schema={
                "partition": pl.Date,
                "rows": pl.Int64,
                "label_mean": pl.Float64,
                "label_z": pl.Float64,
                "rows_z": pl.Float64,
                "anomalous": pl.Boolean,
                "reasons": pl.String,
            },
        )


def _to_datetime(value: Any, name: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            out = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{name} {value!r} is not an ISO date/time") from exc
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp
        out = value.to_pydatetime()
    else:
        raise TypeError(f"{name} must be a datetime or date, got {type(value).__name__}")
    if out.tzinfo is not None:
        out = out.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return out


def _robust(ref: np.ndarray, floor: float) -> tuple[float, float]:
    """Median and robust sd (MAD), the sd floored so near-identical references don't make
    every small wobble infinitely significant."""
    med = float(np.median(ref))
    spread = _MAD * float(np.median(np.abs(ref - med)))
    return med, max(spread, floor)


def _need(frame: Any, cols: dict[str, str], where: str) -> pl.DataFrame:
    lf = as_lazy(frame)
    names = lf.collect_schema().names()
    missing = [k for k in cols if k not in names]
    if missing:
        raise WorkspaceError(
            where,
            f"missing required column(s) {missing}",
            expected=f"columns {list(cols)}",
            found=f"columns {names}",
            fix="see docs/workspace.md for the table's contract",
        )
    return collect(lf)


@dataclass
class _Evidence:
    """What the checks found so far: reasons for the person, per-signal probabilities that
    training is the problem, and whether any signal is about content (labels, loss) rather
    than only row counts."""

    reasons: list[str] = field(default_factory=list)
    signals: list[float] = field(default_factory=list)
    content: bool = False

    def add(self, reason: str, signal: float, *, content: bool = True) -> None:
        self.reasons.append(reason)
        self.signals.append(signal)
        self.content |= content


@dataclass(frozen=True)
class _Reference:
    """Robust centre and spread of the reference partitions' label means and log row counts."""

    lm_med: float
    lm_sd: float
    lr_med: float
    lr_sd: float
    balanced: bool  # labels in [0, 1] and away from both edges: imbalance can be judged


def diagnose_training(
    training: Any,
    curves: Any | None,
    *,
    model: str,
    snapshot: str,
    train_start: Any,
    train_end: Any,
    serving_label_mean: float | None = None,
) -> TrainingDiagnosis:
    """Diagnose a snapshot's training data (partitions in ``[train_start, train_end)``) and,
    when ``curves`` is given, its loss curve. See module docstring for the tests applied and
    ``docs/snapshot-diagnosis.md`` for the thresholds."""
    start = _to_datetime(train_start, "train_start")
    end = _to_datetime(train_end, "train_end")
    if end <= start:
        raise ValueError(
            f"train_end ({end}) must be after train_start ({start}); check snapshots.parquet"
        )
    tr = _model_partitions(training, model)
    ev = _Evidence()
    # a partition [d, d+1) belongs to the window when it overlaps [start, end)
    lo_day = start.date()
    hi_day = end.date() if end.time() == dt.time(0) else end.date() + dt.timedelta(days=1)
    part_col = pl.col(c.PARTITION)
    window = tr.filter((part_col >= lo_day) & (part_col < hi_day))
    earlier = tr.filter(part_col < lo_day)

    checks: list[PartitionCheck] = []
    label_shift: LabelShift | None = None
    if tr.is_empty():
        ev.reasons.append(f"no training partitions for model {model!r}")
    elif window.is_empty():
        ev.reasons.append(
            f"no training partitions of {model!r} in [{start.date()}, {end.date()}); "
            "the snapshot's training data cannot be checked"
        )
    else:
        ref = _reference(earlier if earlier.height >= MIN_REFERENCE else tr)
        checks = _check_partitions(window, ref, ev)
        label_shift = _window_label_shift(window, earlier, ref, serving_label_mean, ev)

    curve = None
    if curves is not None:
        curve = _check_curve(curves, model, snapshot)
        _curve_evidence(curve, model, snapshot, ev)
    return _diagnosis(model, snapshot, checks, label_shift, curve, ev)


def _model_partitions(training: Any, model: str) -> pl.DataFrame:
    """The model's partitions (date, rows, label mean), sorted by date."""
    tr = _need(
        training,
        {c.MODEL: "str", c.PARTITION: "date", c.ROWS: "int", c.LABEL_MEAN: "float"},
        "the 'training' table",
    )
    part = pl.col(c.PARTITION)
    if tr.schema[c.PARTITION] != pl.Date:
        part = part.cast(pl.Date)
    return (
        tr.filter(pl.col(c.MODEL) == model)
        .select(
            part.alias(c.PARTITION),
            pl.col(c.ROWS).cast(pl.Int64),
            pl.col(c.LABEL_MEAN).cast(pl.Float64),
        )
        .sort(c.PARTITION)
    )


def _reference(ref: pl.DataFrame) -> _Reference:
    ref_lm = ref[c.LABEL_MEAN].drop_nans().drop_nulls().to_numpy()
    ref_rows = ref[c.ROWS].to_numpy().astype(np.float64)
    ref_rows = ref_rows[ref_rows > 0]
    if ref_lm.size:
        lm_med, lm_sd = _robust(ref_lm, floor=max(1e-3, 0.02 * abs(float(np.median(ref_lm)))))
    else:
        lm_med, lm_sd = math.nan, math.nan
    if ref_rows.size:
        lr_med, lr_sd = _robust(np.log(ref_rows), floor=0.05)
    else:
        lr_med, lr_sd = math.nan, math.nan
    binary_like = ref_lm.size > 0 and bool(np.all((ref_lm >= 0) & (ref_lm <= 1)))
    balanced = binary_like and IMBALANCE_EDGE < lm_med < 1 - IMBALANCE_EDGE
    return _Reference(lm_med, lm_sd, lr_med, lr_sd, balanced)


def _check_partitions(window: pl.DataFrame, ref: _Reference, ev: _Evidence) -> list[PartitionCheck]:
    """Each window partition's label mean and log row count against the reference."""
    checks: list[PartitionCheck] = []
    for p, rows, lm in window.iter_rows():
        why: list[str] = []
        lz = (lm - ref.lm_med) / ref.lm_sd if lm is not None and math.isfinite(lm) else math.nan
        rz = (math.log(rows) - ref.lr_med) / ref.lr_sd if rows and rows > 0 else -math.inf
        if lm is None or not math.isfinite(lm):
            why.append("label mean is missing or not finite")
        elif abs(lz) > PARTITION_Z:
            why.append(f"label mean {lm:.4g} vs usual {ref.lm_med:.4g} (robust z {lz:+.1f})")
        if ref.balanced and lm is not None and (lm <= IMBALANCE_EDGE or lm >= 1 - IMBALANCE_EDGE):
            why.append(f"class imbalance: label mean {lm:.4g} at the edge of [0, 1]")
        ev.content |= bool(why)  # label reasons come before the row-count ones
        if not rows or rows <= 0:
            why.append("no rows")
        elif math.isfinite(rz) and abs(rz) > PARTITION_Z:
            why.append(
                f"{rows} rows vs usual {math.exp(ref.lr_med):.0f} (robust z of log {rz:+.1f})"
            )
        checks.append(
            PartitionCheck(
                p,
                int(rows or 0),
                float(lm) if lm is not None else math.nan,
                float(lz),
                float(rz),
                bool(why),
                tuple(why),
            )
        )
    bad = [ch for ch in checks if ch.anomalous]
    if bad:
        worst = max(abs(ch.label_z) if math.isfinite(ch.label_z) else 99.0 for ch in bad)
        worst = max(worst, *(abs(ch.rows_z) if math.isfinite(ch.rows_z) else 99.0 for ch in bad))
        share = len(bad) / len(checks)
        ev.reasons.append(
            f"{len(bad)} of {len(checks)} training partitions anomalous: "
            + "; ".join(f"{ch.partition}: {', '.join(ch.reasons)}" for ch in bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
        ev.signals.append(min(0.95, 0.55 + 0.2 * min(1.0, worst / (3 * PARTITION_Z)) + 0.2 * share))
    return checks


def _window_label_shift(
    window: pl.DataFrame,
    earlier: pl.DataFrame,
    ref: _Reference,
    serving_label_mean: float | None,
    ev: _Evidence,
) -> LabelShift | None:
    """The window's row-weighted label mean against earlier data and against serving labels."""
    w = window.filter(pl.col(c.LABEL_MEAN).is_finite() & (pl.col(c.ROWS) > 0))
    if not w.height or not math.isfinite(ref.lm_med):
        return None
    rows_w = w[c.ROWS].to_numpy().astype(np.float64)
    train_mean = float(np.average(w[c.LABEL_MEAN].to_numpy(), weights=rows_w))
    if earlier.height >= MIN_REFERENCE:
        e = earlier.filter(pl.col(c.LABEL_MEAN).is_finite() & (pl.col(c.ROWS) > 0))
        ref_mean = float(np.average(e[c.LABEL_MEAN].to_numpy(), weights=e[c.ROWS].to_numpy()))
    else:
        ref_mean = ref.lm_med
    z = (train_mean - ref_mean) / ref.lm_sd
    s_mean = s_rel = None
    suspect = abs(z) > PARTITION_Z
    if serving_label_mean is not None and math.isfinite(serving_label_mean):
        s_mean = float(serving_label_mean)
        s_rel = (train_mean - s_mean) / max(abs(s_mean), 1e-12)
        if abs(s_rel) > SERVING_REL_DIFF and abs(train_mean - s_mean) > PARTITION_Z * ref.lm_sd:
            suspect = True
            ev.add(
                f"training label mean {train_mean:.4g} differs from serving labels "
                f"{s_mean:.4g} by {s_rel:+.0%}",
                min(0.9, 0.5 + 0.4 * min(1.0, abs(s_rel))),
            )
    if abs(z) > PARTITION_Z:
        ev.add(
            f"training window label mean {train_mean:.4g} vs earlier {ref_mean:.4g} "
            f"(robust z {z:+.1f})",
            min(0.9, 0.5 + 0.4 * min(1.0, abs(z) / (3 * PARTITION_Z))),
        )
    return LabelShift(train_mean, ref_mean, float(z), s_mean, s_rel, suspect)


def _curve_evidence(curve: CurveCheck | None, model: str, snapshot: str, ev: _Evidence) -> None:
    if curve is None:
        ev.reasons.append(f"no training curve for {model}/{snapshot}")
        return
    if curve.exploded:
        what = (
            f"loss is NaN/inf from step {curve.first_nonfinite_step} "
            f"({curve.nonfinite_steps} steps)"
            if curve.nonfinite_steps
            else f"loss jumped x{curve.max_jump_ratio:.3g} at step {curve.jump_step}"
        )
        ev.add(f"loss explosion: {what}", 0.95 if curve.nonfinite_steps else 0.85)
    if curve.diverged:
        ev.add(
            f"final loss {curve.final_loss:.4g} vs other snapshots' "
            f"{curve.reference_final:.4g} (robust z {curve.final_z:+.1f})"
            if curve.final_z is not None
            else f"loss ended at {curve.final_loss:.4g}, well above its minimum",
            0.8,
        )


def _diagnosis(
    model: str,
    snapshot: str,
    checks: list[PartitionCheck],
    label_shift: LabelShift | None,
    curve: CurveCheck | None,
    ev: _Evidence,
) -> TrainingDiagnosis:
    """Combine the signals as independent evidence (noisy-or); with none, the confidence that
    training is *not* the cause grows with what could be checked."""
    verdict = bool(ev.signals)
    if verdict:
        confidence = 1.0 - float(np.prod([1.0 - s for s in ev.signals]))
    else:
        confidence = 0.2 + 0.4 * bool(checks) + 0.3 * (curve is not None)
        if not ev.reasons:
            ev.reasons.append("training partitions and loss curve look like earlier ones")
    return TrainingDiagnosis(
        model=model,
        snapshot=snapshot,
        partitions=tuple(checks),
        anomalous_partitions=tuple(ch.partition for ch in checks if ch.anomalous),
        label_shift=label_shift,
        curve=curve,
        verdict=verdict,
        confidence=float(min(max(confidence, 0.0), 1.0)),
        reasons=tuple(ev.reasons),
        volume_only=verdict and not ev.content,
        loss_only=verdict
        and not any(ch.anomalous for ch in checks)
        and not (label_shift is not None and label_shift.suspect)
        and curve is not None
        and curve.diverged
        and not curve.exploded,
    )


def _final(loss: np.ndarray) -> float:
    """Final loss as the mean of the last 10% of finite steps (robust to one noisy step)."""
    fin = loss[np.isfinite(loss)]
    if not fin.size:
        return math.nan
    k = max(1, fin.size // 10)
    return float(np.mean(fin[-k:]))


def _check_curve(curves: Any, model: str, snapshot: str) -> CurveCheck | None:
    cv = _need(
        curves,
        {c.MODEL: "str", c.SNAPSHOT: "str", c.STEP: "int", c.LOSS: "float"},
        "the 'training_curves' table",
    )
    cv = cv.filter(pl.col(c.MODEL) == model).select(
        c.SNAPSHOT, c.STEP, pl.col(c.LOSS).cast(pl.Float64)
    )
    mine = cv.filter(pl.col(c.SNAPSHOT) == snapshot).sort(c.STEP)
    if mine.is_empty():
        return None
    steps = mine[c.STEP].to_numpy()
    loss = mine[c.LOSS].fill_null(float("nan")).to_numpy()
    nonfinite = ~np.isfinite(loss)
    first_bad = int(steps[np.argmax(nonfinite)]) if nonfinite.any() else None

    # jumps: ratio of consecutive finite losses, judged against the curve's own wobble
    fin_idx = np.flatnonzero(~nonfinite)
    max_ratio, jump_step, exploded_jump = 1.0, None, False
    if fin_idx.size >= 3:
        lf = loss[fin_idx]
        pos = np.all(lf > 0)
        if pos:
            d = np.diff(np.log(lf))
            med, sd = _robust(d, floor=0.02)
            zs = (d - med) / sd
            ratios = np.exp(d)
            i = int(np.argmax(ratios))
            max_ratio, jump_step = float(ratios[i]), int(steps[fin_idx[i + 1]])
            exploded_jump = bool(ratios[i] > JUMP_RATIO and zs[i] > JUMP_Z)
        else:
            d = np.diff(lf)
            med, sd = _robust(d, floor=1e-3 * max(float(np.abs(lf).max()), 1e-12))
            zs = (d - med) / sd
            i = int(np.argmax(zs))
            jump_step = int(steps[fin_idx[i + 1]])
            exploded_jump = bool(zs[i] > 3 * JUMP_Z)

    final = _final(loss)
    others = []
    for _snap, grp in cv.filter(pl.col(c.SNAPSHOT) != snapshot).group_by([c.SNAPSHOT]):
        f = _final(grp.sort(c.STEP)[c.LOSS].fill_null(float("nan")).to_numpy())
        if math.isfinite(f):
            others.append(f)
    ref_final = final_z = None
    diverged = False
    if len(others) >= 2 and math.isfinite(final):
        med, sd = _robust(np.asarray(others), floor=max(0.02 * abs(float(np.median(others))), 1e-9))
        ref_final, final_z = med, (final - med) / sd
        diverged = final_z > FINAL_Z
    elif fin_idx.size >= 5 and math.isfinite(final):
        best = float(np.min(loss[fin_idx]))
        diverged = best > 0 and final > 2.0 * best
    return CurveCheck(
        snapshot=snapshot,
        n_steps=int(steps.size),
        nonfinite_steps=int(nonfinite.sum()),
        first_nonfinite_step=first_bad,
        max_jump_ratio=max_ratio,
        jump_step=jump_step,
        final_loss=final,
        reference_final=ref_final,
        final_z=final_z,
        exploded=bool(nonfinite.any() or exploded_jump),
        diverged=bool(diverged),
    )

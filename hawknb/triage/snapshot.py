"""Step 3: does a snapshot rollout coincide with the onset and explain it?"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from ..engine import collect
from ..kernels.health import prediction_health
from ..kernels.rollout import SnapshotIsolation, isolate_snapshot
from ..workspace import Workspace
from ..workspace import contract as c
from . import row_evidence
from .findings import Finding
from .models import Suspect, health_every, health_phase
from .topline import Anomaly


def isolate(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect, cache: dict | None = None
) -> tuple[SnapshotIsolation | None, Finding, pl.DataFrame]:
    """Run snapshot isolation for each degraded experiment of the model; keep the strongest.
    ``cache`` keeps the window's row-level comparison for the snapshot hypotheses."""
    every = health_every(anomaly)
    by_snap = prediction_health(
        ws.serving.filter(pl.col(c.MODEL) == suspect.model),
        every=every,
        by_snapshot=True,
        offset=health_phase(ws, every, cache),
    )
    rollouts = ws.table("rollouts") if ws.has("rollouts") else None
    end = max(anomaly.end, anomaly.onset + timedelta(hours=3))
    experiments = list(dict.fromkeys([suspect.experiment, *suspect.degraded]))
    results: list[SnapshotIsolation] = []
    for exp in experiments:
        results.append(
            isolate_snapshot(
                rollouts,
                by_snap,
                model=suspect.model,
                experiment=exp,
                onset=anomaly.onset,
                end=end,
            )
        )
    results = _veto_without_control(ws, anomaly, suspect, results)
    # one row-level comparison serves both the convictions and the "not convicted" wording
    # the chosen window's causes: every snapshot that could have broken it (the wide look-back)
    shifts = row_evidence.row_shifts(ws, anomaly, cache, wide=True)
    sus = row_evidence.row_suspects(shifts, anomaly, wide=True)
    results = _row_convictions(sus, suspect.model, results)
    convicted = [r for r in results if r.is_snapshot_cause]
    best = max(convicted or results, key=lambda r: r.confidence)
    control = None
    if not convicted:
        control = _experiment_control(ws, anomaly, suspect, results)
        if control is not None:
            best = control
    source = "rollouts.parquet" if rollouts is not None else "the serving log's snapshot column"
    checked = (
        f"the rollout timeline ({source}) of {suspect.model} in "
        f"{', '.join(experiments)} and a same-hours A/B of its snapshots"
    )
    evidence = {
        "experiments": {
            r.experiment: {
                "suspect": r.suspect,
                "rolled_out": r.rolled_out,
                "confidence": round(r.confidence, 3),
                "notes": list(r.notes)[:4],
            }
            for r in results
        }
    }
    if best.is_snapshot_cause and best.suspect:
        why = (
            "rolled out at the onset in the only experiment that degraded, while the "
            "experiments without it kept their health (the other experiments are the control)"
            if best is control
            else "is worse than the snapshot it replaced in the same hours"
        )
        finding = Finding(
            "snapshot",
            checked=checked,
            decision=f"snapshot {best.suspect} ({suspect.model}/{best.experiment}) {why}: "
            "diagnose it",
            confidence=best.confidence,
            evidence={**evidence, "suspect": best.suspect, "experiment": best.experiment},
            next_step="weights",
            result=best,
        )
    else:
        finding = _not_convicted(sus, suspect.model, results, best, checked, evidence)
    return best, finding, by_snap


def _veto_without_control(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect, results: list[SnapshotIsolation]
) -> list[SnapshotIsolation]:
    """The model degraded in experiments the snapshot never served: those arms are a control
    group that degraded without it, so only a strong same-hours A/B convicts."""
    convicted = [r for r in results if r.is_snapshot_cause]
    if not (convicted and not suspect.experiment_specific and len(suspect.degraded) > 1):
        return results
    vetoed: list[int] = []
    for r in convicted:
        served = set(served_experiments(ws, suspect.model, snapshot=r.suspect, since=anomaly.onset))
        if r.confidence < _STRONG and not set(suspect.degraded) <= served:
            vetoed.append(id(r))
    return [
        replace(
            r,
            suspect=None,
            is_snapshot_cause=False,
            notes=(
                *r.notes,
                f"{', '.join(sorted(set(suspect.degraded) - {r.experiment}))} degraded "
                "too without it: not the snapshot",
            ),
        )
        if id(r) in vetoed
        else r
        for r in results
    ]


def _not_convicted(
    sus: pl.DataFrame,
    model: str,
    results: list[SnapshotIsolation],
    best: SnapshotIsolation,
    checked: str,
    evidence: dict,
) -> Finding:
    """The snapshot step's finding when no A/B convicts: "not the snapshot" only as sure as
    the A/B was, and undecided when a cut-over's rows differ from the rows before it (no
    same-hours rows to compare with, so only the snapshot's own diagnosis can tell)."""
    rolled = list(dict.fromkeys(r.rolled_out for r in results if r.rolled_out))
    sus = sus.filter(pl.col(c.MODEL) == model)
    if not sus.is_empty():
        top = sus.row(0, named=True)
        return Finding(
            "snapshot",
            checked=checked,
            decision=f"undecided: {top[c.SNAPSHOT]} took over with no same-hours overlap, and "
            f"{row_evidence.rows_differ(top, among='the rows before it')}, which a data break "
            "at the same hour would do too; diagnose it",
            confidence=0.5,
            evidence={**evidence, "suspect": top[c.SNAPSHOT], "row_z": round(top["z"], 2)},
            next_step="weights",
            result=best,
        )
    why = (
        f"{', '.join(rolled)} rolled out near the onset but serves as well as its "
        "predecessor in the same hours"
        if rolled
        else "no snapshot rollout coincides with the onset"
    )
    return Finding(
        "snapshot",
        checked=checked,
        decision=f"not the snapshot: {why}; look at the features",
        confidence=best.confidence,
        evidence=evidence,
        next_step="features",
        result=best,
    )


def _row_convictions(
    sus: pl.DataFrame, model: str, results: list[SnapshotIsolation]
) -> list[SnapshotIsolation]:
    """Convict, per experiment, the snapshot whose served rows differ from its neighbours'
    when that evidence is stronger than the window A/B's verdict.

    The window A/B weighs a canary's hours by its few rows and cannot test a cut-over at all;
    the row-level comparison (:mod:`.row_evidence`) sees the canary's rows themselves. Where
    two snapshots rolled out in the same hour, the one whose rows differ wins over one whose
    window means merely moved.
    """
    # only a same-hours comparison convicts: a cut-over's before/after rows cannot tell the
    # snapshot from a data break that began with it (the diagnosis's mechanism must)
    sus = sus.filter((pl.col(c.MODEL) == model) & (pl.col("reference") == "same hours"))
    out = []
    for r in results:
        mine = sus.filter(pl.col(c.EXPERIMENT) == r.experiment)
        held = r.confidence if r.is_snapshot_cause else 0.0
        if mine.is_empty() or float(mine["confidence"][0]) <= held:
            out.append(r)
            continue
        top = mine.row(0, named=True)
        note = row_evidence.rows_differ(
            top, among=f"the {top['reference']} rows of the other snapshots"
        )
        out.append(
            replace(
                r,
                suspect=top[c.SNAPSHOT],
                is_snapshot_cause=True,
                confidence=float(top["confidence"]),
                notes=(note, *r.notes),
            )
        )
    return out


def served_experiments(
    ws: Workspace, model: str, *, snapshot: str | None = None, since: datetime | None = None
) -> list[str]:
    """The experiments the serving log shows ``model`` in, sorted; only those that ``snapshot``
    served, and only from ``since`` on, when given.

    One query for every "which arms" question of the snapshot branch (the control arms of
    :func:`_experiment_control`, the veto of a snapshot that did not serve every degraded arm,
    the experiment a verdict names), so they all read the serving log the same way.
    """
    cond = pl.col(c.MODEL) == model
    if snapshot is not None:
        cond &= pl.col(c.SNAPSHOT) == snapshot
    if since is not None:
        cond &= pl.col(c.TS) >= since
    arms = collect(ws.serving.filter(cond).select(pl.col(c.EXPERIMENT).unique().sort()))
    return arms[c.EXPERIMENT].to_list()


#: a ramp this close to the onset (timing score, 1 = at the onset) counts as coinciding
_ON_TIME = 0.5
#: below this confidence of "not the snapshot" the same-hours A/B is undecided
_UNDECIDED = 0.55
#: a snapshot-isolation confidence from which the same-hours A/B convicts on its own
_STRONG = 0.5
#: paired z (worse direction) from which the same-hours A/B leans towards the new snapshot
_LEANS_Z = 1.5


def _experiment_control(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect, results: list[SnapshotIsolation]
) -> SnapshotIsolation | None:
    """Convict a snapshot by its experiment arms when the same-hours A/B has too few rows.

    Features are shared by every experiment of a model, so a data problem degrades them all;
    when only the experiment(s) that received a new snapshot at the onset degraded, and the
    snapshot serves none of the healthy experiments, the healthy ones are the control group
    (a difference in differences).
    """
    if not suspect.experiment_specific:
        return None
    healthy = [e for e in served_experiments(ws, suspect.model) if e not in suspect.degraded]
    if not healthy:
        return None
    for r in sorted(results, key=lambda r: -r.confidence):
        if r.rolled_out is None or r.experiment not in suspect.degraded:
            continue
        if r.confidence >= _UNDECIDED:
            continue  # the same-hours A/B clearly exonerated it
        row = r.snapshots.filter(pl.col(c.SNAPSHOT) == r.rolled_out)
        if row.is_empty() or float(row["timing"][0] or 0.0) < _ON_TIME:
            continue
        served = served_experiments(ws, suspect.model, snapshot=r.rolled_out, since=anomaly.onset)
        if set(served) & set(healthy):
            continue  # it serves a healthy arm too: the arms are no control group
        # the arms only break a tie: the same-hours A/B must lean towards the snapshot (a
        # benign rollout's paired difference is ~0 and exonerates it)
        ev = r.evidence.filter(
            (pl.col(c.SNAPSHOT) == r.rolled_out) & (pl.col("shared_windows") >= 2)
        )
        # ... by more than earlier snapshots of the model differed from each other, where the
        # history tells (a retrain always differs a little: that is no lean)
        beyond_chance = pl.col("chance_z").is_null() | (pl.col("chance_z") >= _LEANS_Z)
        leans = ev.filter(
            beyond_chance
            & (
                (pl.col("z").fill_null(0.0) >= _LEANS_Z)
                | (pl.col("explained").fill_null(0.0) >= 0.3)
            )
        )
        if leans.is_empty():
            continue
        conf = float(row["timing"][0]) * min(1.0, 0.4 + suspect.confidence)
        return replace(
            r,
            suspect=r.rolled_out,
            is_snapshot_cause=True,
            confidence=conf,
            notes=(
                *r.notes,
                f"only {', '.join(suspect.degraded)} degraded and only it received "
                f"{r.rolled_out}; {', '.join(healthy)} kept their health without it",
            ),
        )
    return None

"""Step 3: does a snapshot rollout coincide with the onset and explain it?"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from ..kernels.health import prediction_health
from ..kernels.rollout import SnapshotIsolation, isolate_snapshot
from ..workspace import Workspace
from ..workspace import contract as c
from .findings import Finding
from .models import Suspect, health_every
from .topline import Anomaly


def isolate(
    ws: Workspace, anomaly: Anomaly, suspect: Suspect
) -> tuple[SnapshotIsolation | None, Finding, pl.DataFrame]:
    """Run snapshot isolation for each degraded experiment of the model; keep the strongest."""
    every = health_every(anomaly)
    by_snap = prediction_health(
        ws.serving.filter(pl.col(c.MODEL) == suspect.model), every=every, by_snapshot=True
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
    convicted = [r for r in results if r.is_snapshot_cause]
    best = max(convicted or results, key=lambda r: r.confidence)
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
        finding = Finding(
            "snapshot",
            checked=checked,
            decision=f"snapshot {best.suspect} ({suspect.model}/{best.experiment}) is worse "
            "than the snapshot it replaced in the same hours: diagnose it",
            confidence=best.confidence,
            evidence={**evidence, "suspect": best.suspect, "experiment": best.experiment},
            next_step="weights",
            result=best,
        )
    else:
        rolled = [r.rolled_out for r in results if r.rolled_out]
        why = (
            f"{', '.join(rolled)} rolled out near the onset but serves as well as its "
            "predecessor in the same hours"
            if rolled
            else "no snapshot rollout coincides with the onset"
        )
        finding = Finding(
            "snapshot",
            checked=checked,
            decision=f"not the snapshot: {why}; look at the features",
            confidence=1.0 - best.confidence if best.suspect else 0.8,
            evidence=evidence,
            next_step="features",
            result=best,
        )
    return best, finding, by_snap

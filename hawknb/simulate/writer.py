"""`simulate()`: draw a world, plant an incident, stream the workspace to disk, return the truth.

The phases live in their own modules: `draws` (hidden models, partitions, snapshots),
`static_tables` (lineage, programs, rollouts, training), `serving_log` (the streamed log and
its totals), `aggregates` (metrics and lineage statistics from those totals) and
`ground_truth`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..workspace import WorkspaceError
from ..workspace import contract as c
from . import static_tables as st
from .aggregates import write_lineage_stats, write_metrics
from .draws import draw_partitions, draw_snapshots, fit_hidden_models
from .draws import rng as _rng  # one stream per phase
from .ground_truth import TruthInputs, build_truth
from .incidents import plan
from .models import Runner
from .serving import FeatureGen
from .serving_log import LogInputs, stream_serving_log
from .system import build_system
from .truth import INCIDENT_KINDS, Truth, default_truth_path

_TABLE_FILES = [spec.file for spec in c.TABLES.values()]


def _prepare_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise WorkspaceError(str(out), "exists and is not a directory", fix="pick another path")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise WorkspaceError(
                str(out),
                "is not empty",
                fix="pass --force (force=True) to replace the simulator's files, or pick a new directory",
            )
        for name in [*_TABLE_FILES, c.LINEAGE_FILE]:
            (out / name).unlink(missing_ok=True)
        snap = out / c.SNAPSHOTS_DIR
        if snap.is_dir():
            for d in snap.iterdir():
                if d.is_dir():
                    for f in [*d.glob(f"*{c.PROGRAM_SUFFIX}"), d / c.FEATURES_FILE]:
                        f.unlink(missing_ok=True)
                    if not any(d.iterdir()):
                        d.rmdir()
    out.mkdir(parents=True, exist_ok=True)


def simulate(
    out_dir: str | Path,
    incident: str = "upstream_data",
    seed: int = 0,
    *,
    truth_path: str | Path | None = None,
    days: int = 10,
    rows_per_hour: int = 60,
    n_models: int = 3,
    features_per_model: int = 24,
    progress: bool = False,
    force: bool = False,
    row_group_rows: int = 250_000,
) -> Truth:
    """Write a complete simulated workspace with one planted incident; return its truth.

    `rows_per_hour` is per (model, experiment); the serving log has about
    ``days * 24 * n_models * 2 * rows_per_hour`` rows. The truth JSON goes to `truth_path`
    (default ``<out_dir>.truth.json``, outside the workspace).
    """
    if incident not in INCIDENT_KINDS:
        raise ValueError(f"incident={incident!r}: choose one of {list(INCIDENT_KINDS)}")
    if days < 3:
        raise ValueError(f"days={days}: the simulator needs at least 3 days of history")
    if rows_per_hour < 1:
        raise ValueError(f"rows_per_hour={rows_per_hour}: must be >= 1")
    out = Path(out_dir)
    tpath = Path(truth_path) if truth_path is not None else default_truth_path(out)
    if tpath.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"truth_path {tpath} is inside the workspace; put it outside {out}")
    _prepare_dir(out, force)

    system = build_system(_rng(seed, 1), n_models, features_per_model)
    H = 24 * days
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        days=int(_rng(seed, 2).integers(0, 330))
    )
    gens = [FeatureGen(system, m.features) for m in system.models]
    hidden = fit_hidden_models(system, gens, _rng(seed, 3))
    p = plan(_rng(seed, 4), incident, system, days)
    snap_rng = _rng(seed, 5)  # partitions, snapshots, then training curves: keep this order
    parts = draw_partitions(snap_rng, p, hidden, days)
    snaps, fault_detail = draw_snapshots(snap_rng, p, hidden, parts, start, days)

    runners = [
        Runner(len(m.features), m.hidden, hidden.links[i]) for i, m in enumerate(system.models)
    ]
    st.write_programs(out, system, snaps, runners)
    events = st.write_rollouts(out, system, p, snaps, start, days)
    st.write_snapshot_table(out, system, snaps, start)
    st.write_training_tables(out, system, snaps, parts, hidden, start, snap_rng)

    li = LogInputs(system, p, hidden, snaps, runners, events, gens, seed, start, H)
    totals = stream_serving_log(out, li, rows_per_hour, row_group_rows, progress)
    tl_served, tl_clean = write_metrics(out, system, p, hidden, totals, seed, start, H)
    write_lineage_stats(out, system, p, start, H, totals, _rng(seed, 7))

    truth = build_truth(
        TruthInputs(
            p, system, seed, start, H, tl_served, tl_clean, totals, runners, snaps, fault_detail
        )
    )
    truth.write(tpath)
    return truth

"""`hawknb simulate DIR --incident KIND --seed N`: write a simulated workspace + its truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import check_target, replacing_dir, replacing_file
from ..simulate.truth import INCIDENT_KINDS, default_truth_path
from ..workspace.errors import HawknbError

if TYPE_CHECKING:
    from ..simulate import Truth


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated workspace with a planted incident (truth JSON beside it)",
    )
    p.add_argument("workspace", metavar="DIR", help="workspace directory to write")
    p.add_argument("--incident", default="upstream_data", choices=INCIDENT_KINDS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truth", default=None, help="truth JSON path (default: DIR.truth.json)")
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--rows-per-hour", type=int, default=60, help="per model and experiment")
    p.add_argument("--models", type=int, default=3)
    p.add_argument("--features-per-model", type=int, default=24)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace DIR (and the truth file) even if hawknb did not write them",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    truth_path = args.truth or default_truth_path(args.workspace)
    if Path(truth_path).resolve().is_relative_to(Path(args.workspace).resolve()):
        raise HawknbError(f"--truth {truth_path} is inside the workspace; put it outside it")
    # both checked before the minutes of simulation
    check_target(args.workspace, force=args.force, folder=True)
    check_target(truth_path, force=args.force)
    try:
        # built in temporaries renamed into place at the end, the workspace first (hawknb._io)
        with (
            replacing_file(truth_path, force=args.force, record=True) as truth_tmp,
            replacing_dir(args.workspace, force=args.force) as ws_tmp,
        ):
            truth = _simulate(args, ws_tmp, truth_tmp)
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        print(f"hawknb: error: {exc}", file=sys.stderr)
        return 2
    rows = truth.details.get("serving_rows")
    print(f"wrote {args.workspace} ({rows} serving rows); truth: {truth_path}")
    return 0


def _simulate(args: argparse.Namespace, ws: Path, truth_path: Path) -> Truth:
    from ..simulate import simulate  # polars + torch: only when a workspace is written

    return simulate(
        ws,
        args.incident,
        args.seed,
        truth_path=truth_path,
        days=args.days,
        rows_per_hour=args.rows_per_hour,
        n_models=args.models,
        features_per_model=args.features_per_model,
        progress=not args.quiet,
    )

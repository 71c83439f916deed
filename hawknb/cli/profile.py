"""`hawknb profile LOG --out WS`: turn a serving log of any size into a mergeable profile.

The profile goes to ``WS/profile/``; a workspace with that folder in place of
``serving.parquet`` is triaged from it (docs/scale.md).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from ..workspace.errors import WorkspaceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="profile a serving log (counts, moments, sketches, sample)")
    p.add_argument("log", help="serving log: a Parquet file or a folder of Parquet files")
    p.add_argument("--out", required=True, help="workspace directory; writes OUT/profile/")
    p.add_argument("--engine", choices=("polars", "spark"), default="polars")
    # literals, not hawknb.profile's constants: importing it here would slow every command
    p.add_argument("--bucket", default="15m", help="time bucket width (polars duration)")
    p.add_argument("--sample-rows", type=int, default=128, help="rows kept per stratum+bucket")
    p.add_argument("--master", default="local[*]", help="Spark master (with --engine spark)")
    p.add_argument("--force", action="store_true", help="replace an existing OUT/profile/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..profile import PROFILE_DIR

    target = Path(args.out) / PROFILE_DIR
    if target.exists() and not args.force:
        raise WorkspaceError(str(target), "already exists", fix="pass --force to replace it")
    start = time.perf_counter()
    if args.engine == "spark":
        from .. import spark

        prof = spark.profile_path(
            args.log, bucket=args.bucket, sample_rows=args.sample_rows, master=args.master
        )
    else:
        from ..profile import profile

        prof = profile(args.log, bucket=args.bucket, sample_rows=args.sample_rows)
    tmp = target.with_name(f".{PROFILE_DIR}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    prof.save(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    print(
        f"profiled {prof.rows:,} rows into {target} ({prof.moments.height:,} buckets, "
        f"{prof.features.height:,} feature sketches, {prof.sample.height:,} sample rows) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0

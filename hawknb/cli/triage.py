"""`hawknb triage WS`: walk the decision tree and print the verdict."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from ..workspace.errors import HawknbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("triage", help="find the root cause of a top-line metric anomaly")
    p.add_argument("workspace", help="workspace directory")
    p.add_argument("--metric", help="metric to investigate (default: the most severe anomaly)")
    p.add_argument("--start", help="an ISO time inside the anomaly to investigate")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the verdict and findings as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown report")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def parse_time(text: str | None) -> datetime | None:
    """An ISO time; naive means UTC."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HawknbError(
            f"--start {text!r} is not an ISO time (e.g. 2026-03-05T14:00:00Z)"
        ) from exc
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace) -> int:
    from ..triage import triage
    from ..workspace import Workspace  # polars + torch: only when a triage runs

    ws = Workspace.open(args.workspace)
    inv = triage(ws, metric=args.metric, start=parse_time(args.start), progress=not args.quiet)
    if args.json:
        print(inv.to_json())
    elif args.markdown:
        print(inv.to_markdown())
    else:
        print(inv.summary_text())
    sys.stdout.flush()
    return 0

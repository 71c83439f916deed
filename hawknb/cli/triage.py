"""`hawknb triage WS`: walk the decision tree and print the verdict."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from typing import Any

from ..workspace.errors import HawknbError, reading_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("triage", help="find the root cause of a top-line metric anomaly")
    p.add_argument("workspace", help="workspace directory")
    p.add_argument("--metric", help="metric to investigate (default: the most severe anomaly)")
    p.add_argument("--start", help="an ISO time inside the anomaly to investigate")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the verdict and findings as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown report")
    p.add_argument(
        "--timings",
        action="store_true",
        help="add each step's run time ('seconds') to the JSON (off by default, so two runs "
        "on the same workspace print the same bytes)",
    )
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


def verdict_json(inv: Any, timings: bool = False) -> str:
    """The investigation as JSON; step timings only when asked for, since they differ
    between identical runs."""
    out = inv.to_dict()
    for finding, data in zip(inv.findings, out.get("findings", []), strict=False):
        if timings:
            data["seconds"] = round(float(getattr(finding, "seconds", 0.0)), 3)
        else:
            data.pop("seconds", None)
    return json.dumps(stable_floats(out), indent=2)


def stable_floats(obj: Any, digits: int = 12) -> Any:
    """Floats rounded to `digits` significant digits, recursively.

    Multi-threaded aggregations (polars sums over row groups) may add in a different order
    from run to run, which moves the last bit of a statistic; without rounding, two runs on the
    same workspace printed different bytes ("0.2927828184300567" vs "...5677")."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: stable_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [stable_floats(v, digits) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from ..triage import triage
    from ..workspace import Workspace  # polars + torch: only when a triage runs

    with reading_errors(args.workspace):
        ws = Workspace.open(args.workspace)
        inv = triage(ws, metric=args.metric, start=parse_time(args.start), progress=not args.quiet)
        if args.json:
            text = verdict_json(inv, timings=args.timings)
        elif args.markdown:
            text = inv.to_markdown()
        else:
            text = inv.summary_text()
    for note in _warnings(inv):
        print(f"hawknb: warning: {note}", file=sys.stderr)
    print(text)
    sys.stdout.flush()
    return 0


def _warnings(inv: Any) -> list[str]:
    """The workspace warnings triage collected (e.g. a model whose features.json is empty),
    printed on stderr so they never change the JSON on stdout."""
    from ..triage.results import WarningsResult

    got = inv.get(WarningsResult)
    return [str(n) for n in got.messages] if got is not None else []

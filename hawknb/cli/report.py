"""`hawknb report WS`: a self-contained HTML report of a triage that opens offline."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a triage (opens with no network)",
    )
    p.add_argument("workspace", help="workspace directory")
    p.add_argument("-o", "--output", default="report.html", help="HTML file (default: %(default)s)")
    p.add_argument("--metric", help="metric to investigate (default: the most severe anomaly)")
    p.add_argument("--start", help="an ISO time inside the anomaly to investigate")
    p.add_argument("--end", help="end of the window to look at (ISO time)")
    p.add_argument("--notebook", help="also keep the executed notebook at this path")
    p.add_argument("--show-code", action="store_true", help="keep the code cells in the report")
    p.add_argument("--timeout", type=float, default=900, help="seconds per notebook cell")
    p.add_argument(
        "--force", action="store_true", help="replace -o / --notebook files hawknb did not write"
    )
    p.add_argument(
        "--from-notebook",
        action="store_true",
        help="WORKSPACE is an executed notebook: export it instead of running a triage "
        "(implied when WORKSPACE is an existing .ipynb file)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import notebook_to_report, write_report

    src = Path(args.workspace)
    if args.from_notebook or (src.suffix == ".ipynb" and src.is_file()):
        out = notebook_to_report(
            args.workspace, args.output, hide_code=not args.show_code, force=args.force
        )
        print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)")
        return 0
    rep = write_report(
        args.workspace,
        args.output,
        metric=args.metric,
        start=args.start,
        end=args.end,
        keep_notebook=args.notebook,
        hide_code=not args.show_code,
        timeout=args.timeout,
        force=args.force,
        progress=True,
    )
    v = rep.verdict
    cause = v.get("cause", "unknown")
    who = f", model {v['model']}" if v.get("model") else ""
    print(
        f"wrote {rep.path} ({rep.size_bytes / 1e6:.1f} MB, {rep.seconds:.0f} s; "
        f"verdict: {cause}{who})"
    )
    return 0

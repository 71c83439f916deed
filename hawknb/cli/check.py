"""`hawknb check WS`: validate a workspace against the contract."""

from __future__ import annotations

import argparse
import warnings

from ..workspace.errors import WorkspaceWarning


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a workspace directory against the contract")
    p.add_argument("workspace", help="workspace directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workspace import Workspace  # polars: only when a workspace is read

    ws = Workspace.open(args.workspace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WorkspaceWarning)
        notes = ws.validate()
    for note in notes:
        print(f"warning: {note}")
    print(f"ok: {ws}")
    return 0

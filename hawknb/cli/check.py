"""`hawknb check WS`: validate a workspace against the contract."""

from __future__ import annotations

import argparse
import warnings

from ..workspace.errors import WorkspaceWarning, reading_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a workspace directory against the contract")
    p.add_argument("workspace", help="workspace directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..workspace import Workspace  # polars: only when a workspace is read

    with reading_errors(args.workspace):
        ws = Workspace.open(args.workspace)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WorkspaceWarning)
            notes = ws.validate()
        refused = ws.program_problems()
    for note in notes:
        print(f"warning: {note}")
    if refused:
        # a program that loading would refuse (it could run code, or is not one): the
        # workspace is not fine, whatever else is
        raise next(iter(sorted(refused.items())))[1]
    print(f"ok: {ws}")
    return 0

"""The `hawknb` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``, adding its parser with ``set_defaults(func=run)`` where
``run(args) -> int``. Errors that are the user's to fix (HawknbError) print as one line on
stderr, without a traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from ..workspace.errors import HawknbError

#: sub-command modules, in the order `hawknb --help` lists them
COMMANDS = (
    "demo",
    "triage",
    "simulate",
    "check",
    "anomalies",
    "validate",
    "new",
    "report",
    "profile",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hawknb",
        description="Find out why a production model's predictions went wrong.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return f"hawknb {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not args.debug:
        # libraries (torch.export among them) log tracebacks of their own; keep the CLI to
        # our one-line messages unless the user asks for more
        logging.disable(logging.WARNING)
        warnings.filterwarnings("ignore")
    try:
        return int(args.func(args) or 0)
    except HawknbError as exc:
        if args.debug:
            raise
        print(f"hawknb: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hawknb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `hawknb triage ws | head`): not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

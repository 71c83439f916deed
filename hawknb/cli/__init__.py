"""The `hawknb` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``, adding its parser with ``set_defaults(func=run)`` where
``run(args) -> int``. Errors that are the user's to fix (HawknbError) print as one line on
stderr, without a traceback unless ``--debug``.

Start-up is kept short by importing only the sub-command that runs: the others are listed in
``--help`` from SUMMARY without importing them (a command missing from SUMMARY is imported to
list it, so forgetting an entry costs time, never correctness).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from ..workspace.errors import HawknbError, engine_failure_message, is_engine_failure

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
    "ingest",
    "profile",
)

#: one-line help of each sub-command, so `hawknb --help` need not import them all
SUMMARY = {
    "demo": "generate a demo workspace with a planted incident and open the investigation",
    "triage": "find the root cause of a top-line metric anomaly",
    "simulate": "write a simulated workspace with a planted incident (truth JSON beside it)",
    "check": "validate a workspace directory against the contract",
    "anomalies": "score NAB-style timestamp,value CSV files for anomalies",
    "validate": "check a snapshot against its predecessor on recent labelled serving rows",
    "new": "write an investigation notebook from a template (papermill parameters)",
    "report": "write a self-contained HTML report of a triage (opens with no network)",
    "ingest": "write a workspace from OpenLineage events, an MLflow registry or your own logs",
    "profile": "profile a serving log (counts, moments, sketches, sample)",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `hawknb` parser; given ``argv``, only the sub-command it names is fully built.

    Without ``argv`` every sub-command module is imported (the complete parser, for docs and
    tests).
    """
    chosen = _chosen_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="hawknb",
        description="Find out why a production model's predictions went wrong.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if argv is not None and name != chosen and name in SUMMARY:
            sub.add_parser(name, help=SUMMARY[name])  # listed in --help, never parsed
            continue
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` runs: its first word that is not an option.

    The top-level options (--debug, --version, --help) take no value, so the first bare word
    is the command.
    """
    return next((a for a in argv if not a.startswith("-")), None)


def _version() -> str:
    from .. import __version__

    return f"hawknb {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
    except BaseException as exc:
        # polars errors and panics (a file changed mid-run) in any command: one line too
        if args.debug or not is_engine_failure(exc):
            raise
        print(f"hawknb: error: {engine_failure_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

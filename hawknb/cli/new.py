"""`hawknb new TEMPLATE --workspace WS`: start an investigation notebook from a template."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..workspace.errors import HawknbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new",
        help="write an investigation notebook from a template (papermill parameters)",
        description="Instantiate a templated investigation notebook. `hawknb new --list` "
        "shows the templates.",
    )
    p.add_argument("template", nargs="?", help="template name, e.g. triage (see --list)")
    p.add_argument("--list", action="store_true", help="list the templates and exit")
    p.add_argument("--workspace", "-w", help="workspace directory the notebook investigates")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="set a notebook parameter (metric, start, end, model, snapshot); repeatable",
    )
    p.add_argument("-o", "--output", help="notebook to write (default: ./TEMPLATE.ipynb)")
    p.add_argument(
        "--execute",
        action="store_true",
        help="run the notebook now, saving widget state so the views render when reopened",
    )
    p.add_argument("--kernel", help="Jupyter kernel name (default: the template's, python3)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per cell when executing")
    p.add_argument("--force", action="store_true", help="replace an -o file hawknb did not write")
    p.set_defaults(func=run)


def _print_list() -> None:
    from ..notebooks import list_templates

    templates = list_templates()
    width = max(len(t.name) for t in templates)
    for t in templates:
        print(f"{t.name:<{width}}  {t.description}")


def run(args: argparse.Namespace) -> int:
    from ..notebooks import instantiate

    if args.list:
        _print_list()
        return 0
    if not args.template:
        raise HawknbError(
            "which template? Fix: pass a template name; `hawknb new --list` lists them"
        )
    params = {k: v for k, v in args.parameter}
    if "workspace" in params and args.workspace:
        raise HawknbError("workspace given twice; Fix: pass either --workspace or -p workspace")
    ws = args.workspace or params.pop("workspace", None)
    if not ws:
        raise HawknbError("no workspace; Fix: pass --workspace DIR (see `hawknb simulate`)")
    if not Path(ws).is_dir():
        raise HawknbError(f"{ws}: is not a workspace directory; Fix: pass an existing directory")
    name = args.template[:-6] if args.template.endswith(".ipynb") else args.template
    out = Path(args.output or f"{name}.ipynb")
    # relative to the notebook, so notebook and workspace can move together
    rel = os.path.relpath(Path(ws).resolve(), out.resolve().parent)
    done = instantiate(
        args.template,
        out,
        params,
        workspace=rel,
        execute=args.execute,
        kernel_name=args.kernel,
        timeout=args.timeout,
        force=args.force,
        progress=args.execute,
    )
    if done.executed:
        state = "with widget state" if done.widget_state_saved else "without widget state"
        print(f"wrote {done.path} (executed in {done.seconds:.1f} s, {state})")
    else:
        print(f"wrote {done.path}")
    return 0

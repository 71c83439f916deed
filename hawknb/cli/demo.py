"""`hawknb demo`: the main job. Simulate a workspace with a planted incident, write the
investigation notebook next to it and open JupyterLab on it."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from .._io import check_target, replacing_dir
from ..simulate.truth import INCIDENT_KINDS
from ..workspace.errors import HawknbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a demo workspace with a planted incident and open the investigation",
    )
    p.add_argument(
        "dir", nargs="?", default="hawknb-demo", help="where to write (default: %(default)s)"
    )
    p.add_argument("--incident", default="upstream_data", choices=INCIDENT_KINDS)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--port", type=int, default=0, help="JupyterLab port (default: a free one)")
    p.add_argument(
        "--no-lab", action="store_true", help="only write the workspace and notebook, print paths"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace DIR/workspace, DIR/investigation.ipynb and DIR/.truth even if they are "
        "not an earlier demo's (unchanged) output",
    )
    p.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(out: Path, incident: str, seed: int, force: bool = False) -> tuple[Path, Path]:
    """Write `out/workspace` and `out/investigation.ipynb`.

    The ground truth goes to `out/.truth/` (outside the workspace, as the contract requires,
    and hidden from JupyterLab's file browser so the demo does not give its answer away).
    Each is written atomically and replaces an earlier demo's output only while hawknb's
    marker says it wrote it (an edited notebook is the user's): otherwise ``force`` is needed.
    All three are checked before the simulation starts, so a refusal costs nothing.
    """
    from ..notebooks import instantiate
    from ..simulate import simulate

    ws_dir, notebook, truth_dir = out / "workspace", out / "investigation.ipynb", out / ".truth"
    check_target(out, force=True, folder=True)  # only refuses a file where DIR should be
    check_target(ws_dir, force=force, folder=True)
    check_target(notebook, force=force)
    check_target(truth_dir, force=force, folder=True)
    print(f"simulating a '{incident}' incident (seed {seed}) into {ws_dir} ...", file=sys.stderr)
    truth = truth_dir / "workspace.truth.json"
    made_out = not out.exists()
    try:
        with (
            replacing_dir(truth_dir, force=force) as tdir,
            replacing_dir(ws_dir, force=force) as wtmp,
        ):
            simulate(
                wtmp, incident=incident, seed=seed, truth_path=tdir / truth.name, progress=True
            )
    except BaseException:
        if made_out:  # leave no empty DIR behind a failed first run
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    print(f"the answer (ground truth) is in {truth}; look after you investigate", file=sys.stderr)
    instantiate("triage", notebook, parameters={"workspace": "workspace"}, force=force, record=True)
    return ws_dir, notebook


def lab_command(out: Path, notebook: Path, port: int, no_browser: bool) -> list[str]:
    """The `jupyter lab` command line. The token is not on it (it would show in `ps`): it goes
    in the JUPYTER_TOKEN environment variable, see :func:`run`."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    if not Path(jupyter).exists():
        jupyter = "jupyter"
    cmd = [
        jupyter,
        "lab",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={out}",
        f"--LabApp.default_url=/lab/tree/{notebook.name}",
    ]
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def run(args: argparse.Namespace) -> int:
    out = Path(args.dir).resolve()
    ws_dir, notebook = prepare(out, args.incident, args.seed, force=args.force)
    print(f"workspace: {ws_dir}")
    print(f"notebook:  {notebook}")
    if args.no_lab:
        return 0
    if shutil.which("jupyter") is None and not (Path(sys.executable).parent / "jupyter").exists():
        raise HawknbError("JupyterLab is not installed; run `make demo` or pip install jupyterlab")
    port = args.port or free_port()
    # a server with no token lets any local process (or a web page, via DNS rebinding) run code
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_urlsafe(32)
    url = f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}"
    print(f"opening JupyterLab at {url}  (Ctrl-C to stop)", flush=True)
    cmd = lab_command(out, notebook, port, args.no_browser)
    try:
        return subprocess.call(cmd, cwd=out, env={**os.environ, "JUPYTER_TOKEN": token})
    except KeyboardInterrupt:
        return 0

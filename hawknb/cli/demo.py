"""`hawknb demo`: the main job. Simulate a workspace with a planted incident, write the
investigation notebook next to it and open JupyterLab on it."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

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
    p.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(out: Path, incident: str, seed: int) -> tuple[Path, Path]:
    """Write `out/workspace` and `out/investigation.ipynb`.

    The ground truth goes to `out/.truth/` (outside the workspace, as the contract requires,
    and hidden from JupyterLab's file browser so the demo does not give its answer away).
    """
    from ..simulate import simulate

    out.mkdir(parents=True, exist_ok=True)
    ws_dir = out / "workspace"
    if ws_dir.exists():
        shutil.rmtree(ws_dir)
    print(f"simulating a '{incident}' incident (seed {seed}) into {ws_dir} ...", file=sys.stderr)
    truth = out / ".truth" / "workspace.truth.json"
    truth.parent.mkdir(exist_ok=True)
    simulate(ws_dir, incident=incident, seed=seed, truth_path=truth, progress=True)
    print(f"the answer (ground truth) is in {truth}; look after you investigate", file=sys.stderr)
    notebook = out / "investigation.ipynb"
    from ..notebooks import instantiate

    instantiate("triage", notebook, parameters={"workspace": "workspace"})
    return ws_dir, notebook


def run(args: argparse.Namespace) -> int:
    out = Path(args.dir).resolve()
    ws_dir, notebook = prepare(out, args.incident, args.seed)
    print(f"workspace: {ws_dir}")
    print(f"notebook:  {notebook}")
    if args.no_lab:
        return 0
    if shutil.which("jupyter") is None and not (Path(sys.executable).parent / "jupyter").exists():
        raise HawknbError("JupyterLab is not installed; run `make demo` or pip install jupyterlab")
    port = args.port or free_port()
    jupyter = str(Path(sys.executable).parent / "jupyter")
    if not Path(jupyter).exists():
        jupyter = "jupyter"
    cmd = [
        jupyter,
        "lab",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={out}",
        "--ServerApp.token=",
        "--ServerApp.password=",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    url = f"http://127.0.0.1:{port}/lab/tree/{notebook.name}"
    print(f"opening JupyterLab at {url}  (Ctrl-C to stop)", flush=True)
    cmd.append(f"--LabApp.default_url=/lab/tree/{notebook.name}")
    try:
        return subprocess.call(cmd, cwd=out)
    except KeyboardInterrupt:
        return 0

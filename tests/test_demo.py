"""`hawknb demo`: the README's main job writes a workspace and notebook and serves JupyterLab."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def test_demo_serves_the_investigation_notebook(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hawknb", "demo", str(out), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    url, token = None, ""
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 240
        assert proc.stdout is not None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(
                r"(http://127\.0\.0\.1:\d+)(/lab/tree/investigation\.ipynb)\?token=(\S+)", line
            )
            if m:
                url, token = m.group(1), m.group(3)
        assert url, "no URL with a token printed:\n" + "".join(seen[-20:])
        assert len(token) >= 32
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200
        # the server keeps Jupyter's token: without it the API (which starts kernels) refuses
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(f"{url}/api/kernels", timeout=5)
        assert no_token.value.code == 403
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as r:
            assert r.status == 200
        nb = json.loads((out / "investigation.ipynb").read_text())
        assert nb["metadata"]["kernelspec"]["name"]
        src = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "workspace" in src
        assert (out / "workspace" / "serving.parquet").exists()
        assert not (out / "workspace" / "workspace.truth.json").exists()  # truth stays outside
        assert not (out / "workspace.truth.json").exists()  # ... and out of the file browser
        assert json.loads((out / ".truth" / "workspace.truth.json").read_text())["cause"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_demo_rejects_an_unknown_incident(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hawknb", "demo", str(tmp_path), "--incident", "meteor"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], []])
def test_cli_lists_its_commands(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hawknb", *args], capture_output=True, text=True, check=False
    )
    for cmd in ("demo", "triage", "simulate", "check", "anomalies", "validate", "new", "report"):
        assert cmd in proc.stdout

"""Real-browser harness: a real JupyterLab server + Debian's headless Chromium via Playwright.

Stable API for every tests/ui/test_*.py (other engineers build on it; keep it):

Fixtures
- ``lab_server`` (session): a ``LabServer`` -- JupyterLab on 127.0.0.1 with its own config,
  runtime, settings and workspaces dirs (news pop-up off, ``window.jupyterapp`` exposed).
  ``.url`` (ends with "/"), ``.root`` (the server's notebook dir, a Path).
- ``browser`` (session): a Playwright Chromium launched from /usr/bin/chromium, headless.
- ``page`` (function): a fresh page (1400x1000) in a fresh context.
- ``lab`` (function): a ``Lab`` bound to ``page`` and ``lab_server`` -- the helper below.
- ``ui_out`` (function): a folder for this test's screenshots, ``test-results/ui/<test name>/``.

``Lab`` helpers (all wait with timeouts, never sleep-and-hope):
- ``lab.run_notebook(name, cells, wait_for=None, timeout=60_000)``: write a notebook (with
  kernelspec metadata) into the server root, open it with ``?reset``, wait for the kernel, run
  all cells via ``window.jupyterapp.commands.execute('notebook:run-all-cells')``, then wait
  until the kernel is idle again and (optionally) for a CSS selector. Returns the page.
- ``lab.write_notebook(name, cells) -> Path`` and ``lab.open(name)`` / ``lab.run_all()``.
- ``lab.wait_for(selector, timeout=30_000, state="visible") -> Locator``.
- ``lab.kernel_eval(code, timeout=30_000) -> str``: run ``code`` in the notebook's kernel
  (no new cell) and return what it printed to stdout (stripped); raises on an error reply.
- ``lab.kernel_json(expr) -> Any``: ``json.loads`` of ``print(json.dumps(expr))``.
- ``lab.wait_kernel(predicate_code, timeout=15_000)``: poll ``kernel_eval`` until the printed
  value is ``True`` (for traits that change asynchronously after a click).
- ``lab.screenshot(path, selector=None)``: save a PNG of the page or of one element.

Browser tests are marked ``@pytest.mark.ui``; every test in this folder is skipped with a clear
reason when /usr/bin/chromium or playwright is absent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "test-results" / "ui"


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is absent (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.ui)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabServer:
    """A JupyterLab server process with isolated dirs (see module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = base / "jupyter.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        dirs = {
            "JUPYTER_CONFIG_DIR": self.base / "config",
            "JUPYTER_RUNTIME_DIR": self.base / "runtime",
            "JUPYTERLAB_SETTINGS_DIR": self.base / "settings",
            "JUPYTERLAB_WORKSPACES_DIR": self.base / "workspaces",
        }
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        notif = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        env = {**os.environ, **{k: str(v) for k, v in dirs.items()}}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env.pop("ANYWIDGET_HMR", None)
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--allow-root",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
        ]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "api/status", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer in {timeout}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        # shut the kernels down through the API so no orphan kernel outlives the test session
        try:
            req = urllib.request.Request(self.url + "api/shutdown", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def notebook_json(cells: list[str]) -> dict[str, Any]:
    """A minimal nbformat-4 notebook with kernelspec metadata (no "Select Kernel" dialog)."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


_KERNEL_JS = """
async ([code, timeout]) => {
  const app = window.jupyterapp;
  const w = app.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!kernel) throw new Error('no kernel attached to the current widget');
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let out = '';
  let err = null;
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === 'stream' && msg.content.name === 'stdout') out += msg.content.text;
    if (t === 'error') err = msg.content.ename + ': ' + msg.content.evalue;
  };
  const reply = await Promise.race([
    future.done,
    new Promise((_, rej) => setTimeout(() => rej(new Error('kernel_eval timed out')), timeout)),
  ]);
  if (err) throw new Error(err);
  return out;
}
"""


class Lab:
    """Drive one notebook in the real JupyterLab (see module docstring)."""

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        path = self.server.root / name
        path.write_text(json.dumps(notebook_json(cells)))
        return path

    def open(self, name: str, timeout: float = 60_000) -> None:
        self.page.goto(f"{self.server.url}lab/tree/{name}?reset", timeout=timeout)
        self.page.wait_for_function(
            """(name) => {
              const app = window.jupyterapp;
              if (!app || !app.shell) return false;
              const w = app.shell.currentWidget;
              const ctx = w && w.sessionContext;
              return !!(ctx && ctx.path && ctx.path.endsWith(name) && ctx.session
                        && ctx.session.kernel && ctx.session.kernel.connectionStatus === 'connected'
                        && ctx.session.kernel.status === 'idle');
            }""",
            arg=name,
            timeout=timeout,
            polling=200,
        )

    def run_all(self, timeout: float = 60_000) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # every code cell gets an execution count once it has run
        self.page.wait_for_function(
            """() => {
              const w = window.jupyterapp.shell.currentWidget;
              if (!w || !w.content || !w.content.widgets) return false;
              const cells = w.content.widgets.filter((c) => c.model.type === 'code');
              const k = w.sessionContext.session && w.sessionContext.session.kernel;
              return cells.every((c) => c.model.executionCount != null)
                     && k && k.status === 'idle';
            }""",
            timeout=timeout,
            polling=200,
        )

    def run_notebook(
        self,
        name: str,
        cells: list[str],
        wait_for: str | None = None,
        timeout: float = 60_000,
    ) -> Any:
        self.write_notebook(name, cells)
        self.open(name, timeout=timeout)
        self.run_all(timeout=timeout)
        errors = self.page.locator(".jp-OutputArea-output[data-mime-type*='error']")
        if errors.count():
            raise AssertionError(f"a cell raised: {errors.first.inner_text()[:2000]}")
        if wait_for:
            self.wait_for(wait_for, timeout=timeout)
        return self.page

    def wait_for(self, selector: str, timeout: float = 30_000, state: str = "visible") -> Any:
        loc = self.page.locator(selector).first
        loc.wait_for(state=state, timeout=timeout)
        return loc

    def kernel_eval(self, code: str, timeout: float = 30_000) -> str:
        return str(self.page.evaluate(_KERNEL_JS, [code, timeout])).strip()

    def kernel_json(self, expr: str) -> Any:
        out = self.kernel_eval(f"import json as _j\nprint(_j.dumps({expr}, default=str))")
        return json.loads(out.splitlines()[-1])

    def wait_kernel(self, predicate: str, timeout: float = 15_000) -> None:
        deadline = time.monotonic() + timeout / 1000
        last = ""
        while time.monotonic() < deadline:
            last = self.kernel_eval(f"print(bool({predicate}))")
            if last.endswith("True"):
                return
            self.page.wait_for_timeout(200)
        raise AssertionError(f"kernel predicate stayed false: {predicate!r} (last: {last!r})")

    def screenshot(self, path: Path, selector: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if selector:
            self.page.locator(selector).first.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    try:
        yield pg
    finally:
        ctx.close()


@pytest.fixture
def lab(page: Any, lab_server: LabServer) -> Lab:
    return Lab(page, lab_server)


@pytest.fixture
def ui_out(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    out = RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    return out

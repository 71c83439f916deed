"""Every command that writes: no user file replaced without --force, nothing half-written, and
a failed write is one line and a non-zero exit.

Commands: demo (--no-lab), report (-o, --notebook; and NOTEBOOK --from-notebook), new -o,
anomalies --out, simulate. For each: an existing target hawknb did not write is refused
without --force and left as it was; with --force it is replaced, with no temporary left
behind; a read-only folder, /dev/full and a folder where a file belongs fail with one
``hawknb: error:`` line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import numpy as np
import polars as pl
import pytest

from hawknb import _io
from hawknb.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of ``hawknb ARGS`` (in-process)."""
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hawknb: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporaries a write left behind (anything named *.hawknb-tmp*)."""
    return sorted(p.name for p in folder.rglob("*") if _io._TMP in p.name)


def _mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a small tmpfs at ``where`` (root in a container that allows it); False if not."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write: a read-only tmpfs (root), else chmod 0o500 (root
    ignores permission bits), else /sys (sysfs refuses root too)."""
    d = tmp_path / "ro"
    if os.geteuid() == 0 and _mount_tmpfs(d, "ro,size=64k"):
        yield d
        subprocess.run(["umount", str(d)], check=False)
        return
    if os.geteuid() != 0:
        d.mkdir()
        d.chmod(0o500)
        yield d
        d.chmod(0o700)
        return
    if not os.access("/sys", os.W_OK) or not _writable("/sys"):
        yield Path("/sys")
        return
    pytest.skip("no read-only folder available here")


def _writable(folder: str) -> bool:
    try:
        Path(folder, "hawknb-probe").write_text("x")
    except OSError:
        return False
    Path(folder, "hawknb-probe").unlink()
    return True


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 KiB tmpfs that is already full: every write there hits ENOSPC."""
    d = tmp_path / "full"
    if not _mount_tmpfs(d, "size=64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        filler = d / "filler"
        with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while fh.write(b"\0" * 4096):
                pass
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


# -- fixtures: small inputs for each command ----------------------------------------------------
@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    d = tmp_path / "csvs"
    d.mkdir()
    t = pl.datetime_range(
        pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 3), "1h", eager=True
    ).dt.strftime("%Y-%m-%d %H:%M:%S")
    rng = np.random.default_rng(0)
    for name in ("a.csv", "b.csv"):
        pl.DataFrame({"timestamp": t, "value": rng.normal(size=len(t))}).write_csv(d / name)
    return d


@pytest.fixture
def executed_nb(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# probe")]
    path = tmp_path / "done.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def ws_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ws"  # `new` only needs the folder to exist when not executing
    d.mkdir()
    return d


def theirs(path: Path, text: str = "the user's own work") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- refuse without --force, replace with it ------------------------------------------------------
FileCommand = Callable[[Path], list[str]]


def file_commands(executed_nb: Path, ws_dir: Path) -> dict[str, FileCommand]:
    return {
        "report --from-notebook": lambda out: ["report", executed_nb, "-o", out],
        "new": lambda out: ["new", "triage", "-w", ws_dir, "-o", out],
    }


@pytest.mark.parametrize("command", ["report --from-notebook", "new"])
def test_file_outputs_refuse_then_force(
    command: str, executed_nb: Path, ws_dir: Path, tmp_path: Path, capsys
) -> None:
    make = file_commands(executed_nb, ws_dir)[command]
    suffix = ".html" if command.startswith("report") else ".ipynb"
    out = theirs(tmp_path / "out" / f"mine{suffix}")
    rc, err = run_cli(make(out), capsys)
    assert rc == 1 and "--force" in one_error_line(err)
    assert out.read_text() == "the user's own work"
    rc, err = run_cli([*make(out), "--force"], capsys)
    assert rc == 0, err
    assert out.read_text() != "the user's own work" and out.stat().st_size > 100
    assert leftovers(out.parent) == []


def test_report_checks_both_targets_before_running(ws_dir: Path, tmp_path: Path, capsys) -> None:
    """A refusal comes before the triage runs (it would take a minute): a bare folder as the
    workspace would otherwise fail in the notebook, not with the refusal."""
    html = theirs(tmp_path / "r.html")
    nb = theirs(tmp_path / "r.ipynb")
    rc, err = run_cli(["report", ws_dir, "-o", html], capsys)
    assert rc == 1 and str(html) in one_error_line(err) and "--force" in err
    rc, err = run_cli(["report", ws_dir, "-o", tmp_path / "new.html", "--notebook", nb], capsys)
    assert rc == 1 and str(nb) in one_error_line(err) and "--force" in err
    assert not (tmp_path / "new.html").exists()
    assert html.read_text() == nb.read_text() == "the user's own work"


def test_anomalies_out_refuse_force_and_rerun(csv_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scores"
    theirs(out / "notes.txt")
    rc, err = run_cli(["anomalies", csv_dir, "--out", out], capsys)
    assert rc == 1 and "--force" in one_error_line(err)
    assert (out / "notes.txt").exists()
    assert run_cli(["anomalies", csv_dir, "--out", out, "--force"], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [_io.MARKER, "a.csv", "b.csv"]
    # hawknb's own output folder is replaced by a rerun without --force
    assert run_cli(["anomalies", csv_dir, "--out", out], capsys)[0] == 0
    assert pl.read_csv(out / "a.csv").columns == ["timestamp", "value", "anomaly_score"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_anomalies_never_writes_over_its_inputs(
    where: str, csv_dir: Path, tmp_path: Path, capsys
) -> None:
    before = {p.name: p.read_bytes() for p in csv_dir.iterdir()}
    out = {"same": csv_dir, "inside": csv_dir / "sub", "around": tmp_path}[where]
    rc, err = run_cli(["anomalies", csv_dir, "--out", out, "--force"], capsys)
    assert rc == 1 and "input" in one_error_line(err)
    assert {p.name: p.read_bytes() for p in csv_dir.iterdir()} == before


def test_anomalies_failure_half_way_leaves_the_old_output(
    csv_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "scores"
    assert run_cli(["anomalies", csv_dir, "--out", out], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (csv_dir / "z.csv").write_text("timestamp,value\n2024-01-01,abc\n")  # scored last, fails
    rc, err = run_cli(["anomalies", csv_dir, "--out", out], capsys)
    assert rc == 1 and "z.csv" in one_error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []


SIM = ["--days", "3", "--rows-per-hour", "2", "--models", "2", "--features-per-model", "4"]


def test_simulate_refuse_then_force(tmp_path: Path, capsys) -> None:
    ws = tmp_path / "ws"
    theirs(ws / "notes.txt")
    rc, err = run_cli(["simulate", ws, *SIM, "--quiet"], capsys)
    assert rc == 1 and "--force" in one_error_line(err)
    assert (ws / "notes.txt").exists() and not (ws / "serving.parquet").exists()
    assert run_cli(["simulate", ws, *SIM, "--quiet", "--force"], capsys)[0] == 0
    assert (ws / "serving.parquet").exists() and not (ws / "notes.txt").exists()
    truth = Path(f"{ws}.truth.json")
    assert truth.exists()
    # a rerun replaces hawknb's own workspace and truth without --force
    assert run_cli(["simulate", ws, *SIM, "--quiet", "--seed", "1"], capsys)[0] == 0
    assert leftovers(tmp_path) == []
    # a truth file that is not hawknb's is refused before any simulation
    theirs(truth)
    rc, err = run_cli(["simulate", tmp_path / "ws2", *SIM, "--truth", truth], capsys)
    assert rc == 1 and str(truth) in one_error_line(err)
    assert not (tmp_path / "ws2").exists()


def test_demo_refuses_then_forces(tmp_path: Path, capsys) -> None:
    """`hawknb demo DIR --no-lab` used to delete DIR/workspace and overwrite the notebook."""
    d = tmp_path / "demo"
    theirs(d / "workspace" / "my_table.parquet")
    nb = theirs(d / "investigation.ipynb", "{}")
    rc, err = run_cli(["demo", d, "--no-lab"], capsys)
    assert rc == 1 and "--force" in one_error_line(err)
    assert (d / "workspace" / "my_table.parquet").exists() and nb.read_text() == "{}"
    (d / "workspace" / "my_table.parquet").unlink()
    (d / "workspace").rmdir()  # only the notebook is in the way now
    rc, err = run_cli(["demo", d, "--no-lab"], capsys)
    assert rc == 1 and str(nb) in one_error_line(err) and not (d / "workspace").exists()
    assert run_cli(["demo", d, "--no-lab", "--force"], capsys)[0] == 0
    assert nbformat.read(nb, as_version=4).cells
    assert (d / "workspace" / "serving.parquet").exists()
    assert _io.created_by_hawknb(d / "workspace") and _io.created_by_hawknb(nb)
    assert leftovers(tmp_path) == []
    # the user edits the notebook: it is theirs now, and a rerun refuses to replace it
    nb.write_text(nb.read_text().replace("Top-line", "My notes on the top-line"))
    rc, err = run_cli(["demo", d, "--no-lab"], capsys)
    assert rc == 1 and str(nb) in one_error_line(err)
    assert "My notes" in nb.read_text()


# -- failed writes: one line, non-zero, nothing half-written ------------------------------------
def _write_commands(executed_nb: Path, ws_dir: Path, csv_dir: Path) -> dict[str, Callable]:
    return {
        "report": lambda out: ["report", executed_nb, "-o", out / "r.html"],
        "new": lambda out: ["new", "triage", "-w", ws_dir, "-o", out / "n.ipynb"],
        "anomalies": lambda out: ["anomalies", csv_dir, "--out", out / "scores"],
        "simulate": lambda out: ["simulate", out / "ws", *SIM, "--quiet"],
        "demo": lambda out: ["demo", out / "demo", "--no-lab"],
    }


@pytest.mark.parametrize("command", ["report", "new", "anomalies", "simulate", "demo"])
def test_read_only_target_folder(
    command: str, executed_nb: Path, ws_dir: Path, csv_dir: Path, read_only_dir: Path, capsys
) -> None:
    ro = read_only_dir
    before = sorted(os.listdir(ro))
    args = _write_commands(executed_nb, ws_dir, csv_dir)[command](ro)
    rc, err = run_cli(args, capsys)
    assert rc == 1
    assert str(ro) in one_error_line(err)
    assert sorted(os.listdir(ro)) == before


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("report", lambda nb, ws, csv: ["report", nb, "-o", "/dev/full"]),
        ("new", lambda nb, ws, csv: ["new", "triage", "-w", ws, "-o", "/dev/full"]),
        ("anomalies", lambda nb, ws, csv: ["anomalies", csv, "--out", "/dev/full", "--force"]),
        ("simulate", lambda nb, ws, csv: ["simulate", "/dev/full", *SIM, "--force"]),
        ("demo", lambda nb, ws, csv: ["demo", "/dev/full", "--no-lab", "--force"]),
    ],
)
def test_dev_full(command: str, args, executed_nb, ws_dir, csv_dir, capsys) -> None:
    """Files go to /dev/full and fail as a full disk does; folders there are refused."""
    before = sorted(os.listdir("/dev"))
    rc, err = run_cli(args(executed_nb, ws_dir, csv_dir), capsys)
    assert rc == 1
    line = one_error_line(err)
    assert "/dev/full" in line
    if command in ("report", "new"):
        assert "No space left on device" in line
    assert sorted(os.listdir("/dev")) == before  # no temporary left beside the device


@pytest.mark.parametrize("command", ["report --from-notebook", "new"])
def test_a_folder_where_the_file_goes(
    command: str, executed_nb: Path, ws_dir: Path, tmp_path: Path, capsys
) -> None:
    target = tmp_path / "a_folder.html"
    (target / "keep").mkdir(parents=True)
    args = file_commands(executed_nb, ws_dir)[command](target)
    rc, err = run_cli([*args, "--force"], capsys)
    assert rc == 1 and "is a folder" in one_error_line(err)
    assert (target / "keep").is_dir()


@pytest.mark.parametrize("command", ["report", "new", "anomalies", "simulate", "demo"])
def test_disk_full(
    command: str, executed_nb: Path, ws_dir: Path, csv_dir: Path, full_disk: Path, capsys
) -> None:
    """A real full disk (a small tmpfs): one line naming the target, exit 1, and the folder
    holds exactly what it held before (no partial output, no temporary)."""
    before = sorted(os.listdir(full_disk))
    rc, err = run_cli(_write_commands(executed_nb, ws_dir, csv_dir)[command](full_disk), capsys)
    assert rc == 1
    line = one_error_line(err)
    assert str(full_disk) in line and "No space left on device" in line
    assert sorted(os.listdir(full_disk)) == before


def test_disk_full_while_writing_keeps_the_old_file(
    executed_nb: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data is complete on disk before the rename: a write that fails at the fsync (a
    full disk reports there on many filesystems) leaves the previous report, no temporary."""
    out = tmp_path / "r.html"
    assert run_cli(["report", executed_nb, "-o", out], capsys)[0] == 0
    before = out.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_io.os, "fsync", full)
    rc, err = run_cli(["report", executed_nb, "-o", out, "--force"], capsys)
    assert rc == 1 and "No space left on device" in one_error_line(err)
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == []

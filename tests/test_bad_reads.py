"""Bad input on the read side: blocking or endless files, oversized or malformed JSON, and
files that say nothing useful, each get a one-line WorkspaceError (or a warning that says what
is missing), never a hang, a traceback or a silently wrong answer."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import polars as pl
import pytest
from hawknb_cli import run_hawknb, simulate_small

from hawknb.workspace import Workspace, WorkspaceError, WorkspaceWarning
from hawknb.workspace.errors import reading_errors
from hawknb.workspace.reading import read_json


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate_small(tmp_path_factory.mktemp("reads") / "ws", "upstream_data")


@pytest.fixture
def ws(base_ws: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ws"
    shutil.copytree(base_ws, out, ignore=shutil.ignore_patterns("*.pt2"))
    return out


def _model(ws: Path) -> str:
    return sorted(p.name for p in (ws / "snapshots").iterdir() if p.is_dir())[0]


def _open_error(ws: Path) -> str:
    """Open (and validate) the workspace in a thread, so a blocking read fails the test
    instead of hanging it, and return the one-line error."""
    result: dict[str, object] = {}

    def go() -> None:
        try:
            Workspace.open(ws).validate()
        except BaseException as exc:  # reported to the test below
            result["exc"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "opening the workspace blocked"
    exc = result.get("exc")
    assert isinstance(exc, WorkspaceError), repr(exc)
    assert "\n" not in str(exc)
    return str(exc)


# -- files that are not regular files ---------------------------------------------------------
@pytest.mark.parametrize("name", ["lineage.json", "metrics.parquet", "features.json"])
def test_a_named_pipe_is_refused_not_read(ws: Path, name: str):
    path = ws / "snapshots" / _model(ws) / name if name == "features.json" else ws / name
    path.unlink()
    os.mkfifo(path)
    msg = _open_error(ws)
    assert "named pipe" in msg and name in msg


@pytest.mark.parametrize("name", ["lineage.json", "features.json", "serving.parquet"])
def test_a_folder_in_place_of_a_file(ws: Path, name: str):
    path = ws / "snapshots" / _model(ws) / name if name == "features.json" else ws / name
    path.unlink()
    path.mkdir()
    msg = _open_error(ws)
    assert "is a folder" in msg and name in msg


def test_a_device_in_place_of_lineage_json(ws: Path):
    (ws / "lineage.json").unlink()
    (ws / "lineage.json").symlink_to("/dev/zero")
    assert "is a device" in _open_error(ws)


# -- size cap ------------------------------------------------------------------------------
def test_json_over_the_cap_names_the_limit(ws: Path, monkeypatch: pytest.MonkeyPatch):
    size = (ws / "lineage.json").stat().st_size
    monkeypatch.setenv("HAWKNB_MAX_JSON_BYTES", str(size - 1))
    msg = _open_error(ws)
    assert f"{size - 1}-byte limit" in msg and "HAWKNB_MAX_JSON_BYTES" in msg
    monkeypatch.setenv("HAWKNB_MAX_JSON_BYTES", str(size))
    Workspace.open(ws)  # exactly at the cap is fine


def test_json_cap_reads_no_more_than_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file that claims a small size but keeps growing (here: a sparse 2 GB file) is
    refused from its size, without reading it."""
    big = tmp_path / "lineage.json"
    with open(big, "wb") as fh:
        fh.truncate(2 * 1024**3)
    monkeypatch.setenv("HAWKNB_MAX_JSON_BYTES", "1000")
    with pytest.raises(WorkspaceError, match="1000-byte limit"):
        read_json(big)


def test_a_bad_cap_setting_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "a.json").write_text("[]")
    monkeypatch.setenv("HAWKNB_MAX_JSON_BYTES", "lots")
    with pytest.raises(WorkspaceError, match="HAWKNB_MAX_JSON_BYTES"):
        read_json(tmp_path / "a.json")


# -- malformed JSON ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"nodes": [], "edges": [' + "9" * 5000 + "]}", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('{"nodes": null, "edges": []}', "'nodes' is not a list"),
        ('{"nodes": [], "edges": {"a": 1}}', "'edges' is not a list"),
        ('{"nodes": [{"id": null, "kind": "table"}], "edges": []}', "node #0's 'id'"),
        ('{"nodes": [{"id": "a"}, {"id": ["b"]}], "edges": []}', "node #1's 'id'"),
        ('{"nodes": [{"id": true}], "edges": []}', "node #0's 'id'"),
        ('{"nodes": [{"id": "a", "name": {"x": 1}}], "edges": []}', "node #0 has a 'name'"),
        ('{"nodes": [{"id": "a"}], "edges": [{"source": null, "target": "a"}]}', "edge #0"),
    ],
)
def test_malformed_lineage_is_one_line(ws: Path, text: str | bytes, expect: str):
    path = ws / "lineage.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    msg = _open_error(ws)
    assert expect in msg and "lineage.json" in msg


def test_integer_ids_are_read_as_their_decimal_string(tmp_path: Path):
    lineage = {"nodes": [{"id": 1, "kind": "table"}, {"id": "2"}],
               "edges": [{"source": 1, "target": 2}]}  # fmt: skip
    from hawknb.workspace.workspace import _build_lineage

    graph = _build_lineage(lineage, "lineage")
    assert set(graph.nodes) == {"1", "2"} and list(graph.edges) == [("1", "2")]
    assert "None" not in graph


def test_null_id_via_cli_is_one_line_and_names_the_node(ws: Path):
    (ws / "lineage.json").write_text('{"nodes": [{"id": "a"}, {"id": null}], "edges": []}')
    proc = run_hawknb("check", str(ws))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("hawknb: error:")
    assert "node #1's 'id'" in proc.stderr


# -- empty features.json -------------------------------------------------------------------
def test_empty_features_json_says_the_model_has_no_features(ws: Path):
    model = _model(ws)
    (ws / "snapshots" / model / "features.json").write_text("[]")
    with pytest.warns(WorkspaceWarning, match=f"model '{model}' has no inputs") as caught:
        notes = Workspace.open(ws).validate()
    assert any("lists no features" in n for n in notes)
    # the warning points at the user's call, not at a line inside hawknb
    assert all(w.filename == __file__ for w in caught if issubclass(w.category, WorkspaceWarning))
    proc = run_hawknb("check", str(ws))
    assert proc.returncode == 0 and "lists no features" in proc.stdout
    proc = run_hawknb("triage", str(ws), "--json", "--quiet")
    assert proc.returncode == 0
    assert "lists no features" in proc.stderr


# -- engine failures while reading -----------------------------------------------------------
def test_polars_errors_and_panics_become_one_line():
    changed = "did a file change while hawknb was reading"
    with pytest.raises(WorkspaceError, match=changed) as err, reading_errors("ws"):
        raise pl.exceptions.ComputeError("parquet: out of spec\nmore detail")
    assert "\n" not in str(err.value)
    panic = pl.exceptions.PanicException
    with pytest.raises(WorkspaceError, match="PanicException"), reading_errors("ws"):
        raise panic("index out of bounds")
    # a bug of ours still surfaces as itself
    with pytest.raises(ZeroDivisionError), reading_errors("ws"):
        raise ZeroDivisionError


def test_a_parquet_truncated_after_open_is_one_line(ws: Path):
    """The file changes between opening the workspace (footer read) and reading the rows."""
    w = Workspace.open(ws)
    data = (ws / "serving.parquet").read_bytes()
    (ws / "serving.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkspaceError) as err, reading_errors(str(ws)):
        w.validate()
    assert "\n" not in str(err.value)


def test_any_command_reports_an_engine_panic_in_one_line(monkeypatch, capsys):
    """Outside the commands that wrap their reads, the CLI still turns a polars panic into
    one `hawknb: error:` line and exit 1 (a bug of ours would still show its traceback)."""
    import hawknb.cli.check as check
    from hawknb.cli import main

    def panics(args):
        raise pl.exceptions.PanicException("called `Option::unwrap()` on a `None` value\nat ...")

    monkeypatch.setattr(check, "run", panics)
    assert main(["check", "ws"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hawknb: error: the data engine failed")

    def bug(args):
        raise ZeroDivisionError

    monkeypatch.setattr(check, "run", bug)
    with pytest.raises(ZeroDivisionError):
        main(["check", "ws"])

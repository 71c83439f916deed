"""Nothing read from a workspace runs code.

Malicious pickles (each creates a marker file when unpickled) and other code-carrying payloads
are planted in every door of a `.pt2` that torch.export.load or `.module()` opens, and under
every other file name hawknb reads or could be pointed at; every command and the Python API
are run on them, and the marker must never appear. Errors must be one line.

One simulated workspace is shared by the whole module (``python -m hawknb simulate``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pt2_attacks as attacks
import pytest
from hawknb_cli import run_hawknb, simulate_small

from hawknb.workspace import Workspace, WorkspaceError, load_exported_program

WHOLE_FILE = ["plain_pickle", "torch_save"]
KINDS = [*attacks.ATTACKS, *WHOLE_FILE, "duplicate"]
#: the entry each archive attack must be refused at (None: the file as a whole)
REFUSED_AT = {
    "sample_inputs": "data/sample_inputs/model.pt",
    "pickled_weight": "data/weights/weight_",
    "pickled_constant": "data/constants/tensor_0",
    "opaque_constant": "data/constants/opaque_obj_0",
    "custom_object": "data/constants/custom_obj_0",
    "legacy_weights": "data/weights/model.pt",
    "legacy_constants": "data/constants/model.pt",
    "raw_pickle_weights": "data/weights/model.pt",
    "shape_expression": "models/model.json",
    "node_name": "models/model.json",
    "parameter_name": "_config.json",
    "call_target": "models/model.json",
    "compiled_code": "data/aotinductor/",
    "absolute_weight_path": "/w",
    "program_without_json_suffix": "models/evil_json",
    "duplicate": "data/sample_inputs/model.pt",
    "guard_code": None,  # loads: the guard code is dropped, never run
    "plain_pickle": None,
    "torch_save": None,
}
#: other names a pipeline could leave in a workspace; hawknb must never unpickle them
STRAY_NAMES = ["data.pkl", "model.pt", "model.pth", "arr.npy", "arrs.npz", "model.onnx",
               "model.joblib", "state.pickle"]  # fmt: skip


def _assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    """A failed command says why in one `hawknb: error:` line, never with a traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("hawknb: error:")]
        assert len(errors) == 1, proc.stderr[-2000:]


def _no_markers(markers: Path) -> None:
    assert sorted(p.name for p in markers.iterdir()) == []


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate_small(tmp_path_factory.mktemp("sec") / "ws", "bad_snapshot")


@pytest.fixture(scope="module")
def good_pt2(base_ws: Path) -> Path:
    return sorted(base_ws.glob("snapshots/*/*.pt2"))[0]


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


def _plant(kind: str, good: Path, out: Path, marker: Path) -> Path:
    if kind in WHOLE_FILE:
        return attacks.craft_whole_file(out, kind, marker)
    if kind == "duplicate":
        return attacks.craft_duplicate(good, out, marker)
    return attacks.craft(good, out, kind, marker)


@pytest.fixture(scope="module")
def hostile(base_ws: Path, good_pt2: Path, markers: Path, tmp_path_factory) -> Path:
    """The workspace with every `.pt2` replaced by an attack (every kind at least once) and
    malicious pickles under every other name a pipeline might leave in it."""
    ws = tmp_path_factory.mktemp("hostile") / "ws"
    shutil.copytree(base_ws, ws)
    programs = sorted(ws.glob("snapshots/*/*.pt2"))
    model_dirs = sorted({p.parent for p in programs})
    for i in range(len(programs), len(KINDS)):  # more kinds than snapshots: add programs
        programs.append(model_dirs[i % len(model_dirs)] / f"9999-{i:04d}.pt2")
    for i, path in enumerate(programs):
        kind = KINDS[i % len(KINDS)]
        _plant(kind, good_pt2, path, markers / f"{kind}-{i}")
    for folder in [ws, *model_dirs]:
        for name in STRAY_NAMES:
            (folder / name).write_bytes(attacks.evil_pickle(markers / f"stray-{name}"))
    return ws


# -- the loader --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_loader_refuses_each_attack(kind: str, good_pt2: Path, markers: Path, tmp_path: Path):
    path = _plant(kind, good_pt2, tmp_path / f"{kind}.pt2", markers / kind)
    if REFUSED_AT[kind] is None and kind == "guard_code":
        program = load_exported_program(path)
        assert program._guards_code == [] and program.example_inputs is None
        import torch

        program.module()(torch.zeros(2, 4))  # the guard would have run here
    else:
        with pytest.raises(WorkspaceError) as err:
            load_exported_program(path)
        msg = str(err.value)
        assert "\n" not in msg
        assert str(path) in msg
        if REFUSED_AT[kind] is not None:
            assert f"(entry '{REFUSED_AT[kind]}" in msg or REFUSED_AT[kind] in msg, msg
    _no_markers(markers)


def test_loader_still_loads_a_good_program(good_pt2: Path):
    import torch

    program = load_exported_program(good_pt2)
    out = program.module()(torch.zeros(3, 4))
    assert out.shape == (3,)


def test_loader_refuses_a_fifo(tmp_path: Path):
    fifo = tmp_path / "model.pt2"
    os.mkfifo(fifo)
    with pytest.raises(WorkspaceError, match="named pipe"):
        load_exported_program(fifo)


# -- the Python API on the hostile workspace -------------------------------------------------
@pytest.mark.filterwarnings("ignore::hawknb.workspace.WorkspaceWarning")
def test_api_never_runs_workspace_code(hostile: Path, markers: Path):
    from hawknb.triage import triage

    ws = Workspace.open(hostile)
    refused = ws.program_problems()
    assert len(refused) >= len(KINDS) - 1  # all but guard_code, which loads without its guards
    for key in ws.programs():
        if key in refused:
            with pytest.raises(WorkspaceError) as err:
                ws.load_program(*key)
            assert "\n" not in str(err.value)
        else:
            ws.load_program(*key)
    notes = ws.validate()
    assert sum("refused" in n for n in notes) == len(refused)
    inv = triage(ws, progress=False)
    assert inv.verdict.cause is not None
    _no_markers(markers)


# -- every command -----------------------------------------------------------------------------
def test_check_refuses_the_hostile_workspace(hostile: Path, markers: Path):
    proc = run_hawknb("check", str(hostile))
    assert proc.returncode == 1
    _assert_one_line_error(proc)
    assert "refused" in proc.stderr
    _no_markers(markers)


def test_triage_and_validate_never_run_workspace_code(hostile: Path, markers: Path):
    proc = run_hawknb("triage", str(hostile), "--json", "--quiet")
    _assert_one_line_error(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ws = Workspace.open(hostile)
    (model, snapshot), *_ = sorted(ws.program_problems())
    proc = run_hawknb("validate", str(hostile), "--model", model, "--snapshot", snapshot)
    assert proc.returncode != 0
    _assert_one_line_error(proc)
    _no_markers(markers)


@pytest.mark.slow
def test_report_and_notebook_never_run_workspace_code(hostile: Path, markers: Path, tmp_path: Path):
    proc = run_hawknb("report", str(hostile), "-o", str(tmp_path / "report.html"))
    _assert_one_line_error(proc)
    proc = run_hawknb("new", "triage", "-w", str(hostile), "-o", str(tmp_path / "nb.ipynb"),
                   "--execute")  # fmt: skip
    _assert_one_line_error(proc)
    _no_markers(markers)


# -- pickles in place of the other files hawknb reads ---------------------------------------
READ_FILES = ["metrics.parquet", "serving.parquet", "lineage_stats.parquet", "lineage.json",
              "snapshots/{model}/features.json"]  # fmt: skip


@pytest.mark.parametrize("name", READ_FILES)
def test_pickle_in_place_of_a_workspace_file(
    name: str, base_ws: Path, markers: Path, tmp_path: Path
):
    ws = tmp_path / "ws"
    shutil.copytree(base_ws, ws, ignore=shutil.ignore_patterns("*.pt2"))
    model = sorted(p.name for p in (ws / "snapshots").iterdir())[0]
    target = ws / name.format(model=model)
    target.write_bytes(attacks.evil_pickle(markers / f"file-{target.name}"))
    with pytest.raises(WorkspaceError) as err:
        Workspace.open(ws).validate()
    assert "\n" not in str(err.value) and target.name in str(err.value)
    proc = run_hawknb("check", str(ws))
    assert proc.returncode == 1
    _assert_one_line_error(proc)
    _no_markers(markers)


def test_a_program_that_fails_at_run_time_is_one_line(base_ws: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    shutil.copytree(base_ws, ws)
    model = sorted(p.name for p in (ws / "snapshots").iterdir())[0]
    programs = sorted((ws / "snapshots" / model).glob("*.pt2"))
    for path in programs:
        attacks.fails_at_run_time(path, path)
    proc = run_hawknb("validate", str(ws), "--model", model, "--snapshot", programs[-1].stem)
    assert proc.returncode == 1
    _assert_one_line_error(proc)
    assert "While executing" not in proc.stderr and "Original traceback" not in proc.stderr
    proc = run_hawknb("triage", str(ws), "--quiet")
    _assert_one_line_error(proc)


def _exportable(kind: str) -> object:
    import torch

    class Norms(torch.nn.Module):  # buffers (running stats), layer norm
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.bn = torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8)
            self.ln, self.out = torch.nn.LayerNorm(8), torch.nn.Linear(8, 1)

        def forward(self, x):
            return self.out(self.ln(self.bn(self.lin(x)))).squeeze(-1)

    class Constants(torch.nn.Module):  # a buffer and a lifted tensor constant
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.tensor([2.0, 1.0, 1.0, 1.0]))
            self.k = torch.tensor(3.0)

        def forward(self, x):
            return (x * self.scale * self.k).sum(-1)

    class SymShapes(torch.nn.Module):  # symbolic-shape arithmetic in the graph
        def forward(self, x):
            n = x.shape[0]
            return torch.cat([x.mean(-1), x.mean(-1)]).reshape(2, n).sum(0) / (n // 2 + 1)

    class Cond(torch.nn.Module):  # a higher-order op with subgraphs
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda x: x.sum(-1), lambda x: -x.sum(-1), (x,))

    return {"norms": Norms, "constants": Constants, "sym": SymShapes, "cond": Cond}[kind]()


@pytest.mark.parametrize("kind", ["norms", "constants", "sym", "cond"])
def test_loader_admits_ordinary_exports(kind: str, tmp_path: Path):
    """The checks refuse code, not ordinary programs: buffers, constants, dynamic batch,
    symbolic shapes and higher-order ops all load and run."""
    import torch

    batch = torch.export.Dim("batch", min=2, max=100_000)
    program = torch.export.export(
        _exportable(kind).eval(), (torch.randn(8, 4),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, tmp_path / "p.pt2")
    x = torch.randn(16, 4)
    loaded = load_exported_program(tmp_path / "p.pt2")
    assert torch.allclose(loaded.module()(x), program.module()(x))

"""The workspace contract: every kind of bad input gets a WorkspaceError naming the place."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from hawknb import Workspace, WorkspaceError, WorkspaceWarning
from hawknb.workspace import contract as c


def _frames(n_hours: int = 24) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-03-01", periods=n_hours, freq="h", tz="UTC")
    metrics = pd.DataFrame({"ts": ts, "metric": "revenue", "value": rng.normal(100, 1, n_hours)})
    rows = []
    for t in ts:
        for exp in ("control", "test"):
            rows.append((t, "m1", exp, "s1", rng.random(), float(rng.random() < 0.3)))
    serving = pd.DataFrame(
        rows, columns=["ts", "model", "experiment", "snapshot", "prediction", "label"]
    )
    serving["f_a"] = rng.normal(size=len(serving)).astype("float32")
    serving["f_b"] = rng.normal(size=len(serving))
    rollouts = pd.DataFrame(
        {
            "ts": [ts[0], ts[0]],
            "model": "m1",
            "experiment": ["control", "test"],
            "snapshot": "s1",
            "traffic": 1.0,
        }
    )
    return {"metrics": metrics, "serving": serving, "rollouts": rollouts}


def _write(root: Path, frames: dict[str, pd.DataFrame], *, lineage: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.to_parquet(root / f"{name}.parquet")
    (root / "snapshots" / "m1").mkdir(parents=True, exist_ok=True)
    (root / "snapshots" / "m1" / "features.json").write_text(json.dumps(["f_a", "f_b"]))
    if lineage is not None:
        (root / "lineage.json").write_text(json.dumps(lineage))
    return root


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


LINEAGE = {
    "nodes": [
        {"id": "src", "kind": "source", "name": "events"},
        {"id": "t1", "kind": "transform", "name": "agg"},
        {"id": "f_a", "kind": "feature", "name": "f_a"},
        {"id": "f_b", "kind": "feature", "name": "f_b"},
    ],
    "edges": [
        {"source": "src", "target": "t1"},
        {"source": "t1", "target": "f_a"},
        {"source": "t1", "target": "f_b"},
    ],
}


def test_open_valid_directory_is_lazy_and_leaves_files_alone(tmp_path):
    root = _write(tmp_path / "ws", _frames(), lineage=LINEAGE)
    before = _digest(root)
    ws = Workspace.open(root)
    assert isinstance(ws.serving, pl.LazyFrame)
    assert ws.validate() == []
    assert ws.models() == ["m1"]
    assert ws.features("m1") == ["f_a", "f_b"]
    assert ws.has("rollouts") and not ws.has("training")
    assert set(ws.lineage().successors("t1")) == {"f_a", "f_b"}
    schema = ws.serving.collect_schema()
    assert schema[c.TS] == pl.Datetime("us", "UTC")
    assert schema[c.PREDICTION] == pl.Float64
    assert _digest(root) == before  # nothing written, nothing changed


def test_frames_are_not_mutated():
    frames = _frames()
    copies = {k: v.copy(deep=True) for k, v in frames.items()}
    ws = Workspace(**frames)
    ws.validate()
    for k, v in frames.items():
        pd.testing.assert_frame_equal(v, copies[k])
        assert v["ts"].dt.tz is not None


def test_polars_frames_and_non_utc_zone_are_accepted():
    frames = _frames()
    m = pl.from_pandas(frames["metrics"]).with_columns(
        pl.col("ts").dt.convert_time_zone("Europe/Paris")
    )
    ws = Workspace(metrics=m, serving=pl.from_pandas(frames["serving"]))
    got = ws.metrics.collect()
    assert got.schema["ts"] == pl.Datetime("us", "UTC")
    assert got["ts"][0] == frames["metrics"]["ts"][0].to_pydatetime()


@pytest.mark.parametrize("name", ["metrics.parquet", "serving.parquet"])
def test_missing_mandatory_file_names_it(tmp_path, name):
    root = _write(tmp_path / "ws", _frames())
    (root / name).unlink()
    with pytest.raises(WorkspaceError, match=name):
        Workspace.open(root)


def test_missing_directory(tmp_path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace.open(tmp_path / "nope")


def test_missing_column_names_file_and_column(tmp_path):
    frames = _frames()
    frames["serving"] = frames["serving"].drop(columns=["prediction"])
    root = _write(tmp_path / "ws", frames)
    with pytest.raises(WorkspaceError) as err:
        Workspace.open(root)
    assert "serving.parquet" in str(err.value) and "'prediction'" in str(err.value)


def test_wrong_dtype(tmp_path):
    frames = _frames()
    frames["metrics"]["value"] = frames["metrics"]["value"].astype(str)
    root = _write(tmp_path / "ws", frames)
    with pytest.raises(WorkspaceError, match=r"metrics.parquet, column 'value'.*not numeric"):
        Workspace.open(root)


def test_naive_timestamps(tmp_path):
    frames = _frames()
    frames["serving"]["ts"] = frames["serving"]["ts"].dt.tz_localize(None)
    root = _write(tmp_path / "ws", frames)
    with pytest.raises(WorkspaceError, match=r"serving.parquet, column 'ts'.*naive.*Fix"):
        Workspace.open(root)


def test_duplicate_metric_rows(tmp_path):
    frames = _frames()
    frames["metrics"] = pd.concat([frames["metrics"], frames["metrics"].iloc[:3]])
    ws = Workspace.open(_write(tmp_path / "ws", frames))
    with pytest.raises(WorkspaceError, match=r"metrics.parquet.*duplicate"):
        ws.validate()


def test_exact_duplicate_serving_rows_counted_exactly(tmp_path):
    # rows 0-2 repeated exactly; rows 4 and 5 share ts/model/experiment/snapshot/prediction (the
    # columns hashed first) but differ in a feature: candidates, not duplicates; NaN predictions
    # repeated exactly still count
    frames = _frames()
    s = frames["serving"]
    s.loc[3, "prediction"] = np.nan
    s.loc[5, ["ts", "experiment", "prediction"]] = s.loc[4, ["ts", "experiment", "prediction"]]
    frames["serving"] = pd.concat([s, s.iloc[[0, 1, 2, 3]]], ignore_index=True)
    ws = Workspace.open(_write(tmp_path / "ws", frames))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WorkspaceWarning)
        ws.validate()
    dup = [str(w.message) for w in caught if "exact duplicates" in str(w.message)]
    expected = pl.from_pandas(frames["serving"]).select(pl.struct(pl.all()).is_duplicated().sum())
    assert expected.item() == 8
    assert dup and "8 rows are exact duplicates" in dup[0]


def test_no_duplicate_warning_for_distinct_serving_rows(tmp_path):
    ws = Workspace.open(_write(tmp_path / "ws", _frames()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WorkspaceWarning)
        ws.validate()
    assert not [w for w in caught if "duplicates" in str(w.message)]


def test_empty_serving(tmp_path):
    frames = _frames()
    frames["serving"] = frames["serving"].iloc[:0]
    ws = Workspace.open(_write(tmp_path / "ws", frames))
    with pytest.raises(WorkspaceError, match=r"serving.parquet.*empty"):
        ws.validate()


def test_nan_and_inf_in_features_is_a_warning_not_an_error():
    frames = _frames()
    frames["serving"].loc[0, "f_b"] = np.nan
    frames["serving"].loc[1, "f_b"] = np.inf
    frames["serving"].loc[2, "prediction"] = np.nan
    ws = Workspace(**frames)
    with pytest.warns(WorkspaceWarning) as caught:
        notes = ws.validate()
    said = [str(w.message) for w in caught]
    assert any("f_b" in m for m in said) and any("'prediction'" in m for m in said), said
    assert any("1 NaN and 1 inf" in n for n in notes)


def test_corrupt_parquet(tmp_path):
    root = _write(tmp_path / "ws", _frames())
    (root / "rollouts.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(WorkspaceError, match=r"rollouts.parquet.*cannot be read"):
        Workspace.open(root).validate()


def test_lineage_cycle_is_named(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["edges"].append({"source": "f_a", "target": "src"})
    ws = Workspace.open(_write(tmp_path / "ws", _frames(), lineage=lineage))
    with pytest.raises(WorkspaceError, match=r"lineage.json.*cycle.*src"):
        ws.lineage()


def test_lineage_unknown_node(tmp_path):
    lineage = json.loads(json.dumps(LINEAGE))
    lineage["edges"].append({"source": "ghost", "target": "f_a"})
    ws = Workspace.open(_write(tmp_path / "ws", _frames(), lineage=lineage))
    with pytest.raises(WorkspaceError, match="unknown node 'ghost'"):
        ws.lineage()


def test_features_json_must_match_serving_columns(tmp_path):
    root = _write(tmp_path / "ws", _frames())
    (root / "snapshots" / "m1" / "features.json").write_text(json.dumps(["f_a", "f_zzz"]))
    with pytest.raises(WorkspaceError, match=r"features.json.*f_zzz"):
        Workspace.open(root)


def test_serving_snapshot_must_exist_in_rollouts():
    frames = _frames()
    frames["serving"].loc[0, "snapshot"] = "s_unknown"
    with pytest.raises(WorkspaceError, match="m1/s_unknown"):
        Workspace(**frames).validate()


def test_rollout_shares_must_sum_to_one():
    frames = _frames()
    frames["rollouts"].loc[0, "traffic"] = 0.5
    with pytest.raises(WorkspaceError, match="do not sum to 1"):
        Workspace(**frames).validate()


def test_non_program_file_is_never_unpickled(tmp_path):
    root = _write(tmp_path / "ws", _frames())
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (root / "snapshots" / "m1" / "s1.pt2").write_bytes(pickle.dumps(Evil()))
    torch.save({"x": Evil()}, root / "snapshots" / "m1" / "s2.pt2")
    ws = Workspace.open(root)
    for snap in ("s1", "s2"):
        with pytest.raises(WorkspaceError, match=r"s\d.pt2.*not a torch.export program"):
            ws.load_program("m1", snap)
    assert not marker.exists()


def test_exported_program_round_trip(tmp_path):
    root = _write(tmp_path / "ws", _frames())
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    ep = torch.export.export(net, (torch.randn(4, 2),))
    torch.export.save(ep, root / "snapshots" / "m1" / "s1.pt2")
    ws = Workspace.open(root)
    assert ws.programs("m1") == [("m1", "s1")]
    loaded = ws.load_program("m1", "s1")
    x = torch.randn(4, 2)
    torch.testing.assert_close(loaded.module()(x), net(x))


def test_truncated_program_is_one_line_on_the_cli(tmp_path):
    root = _write(tmp_path / "ws", _frames())
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    path = root / "snapshots" / "m1" / "s1.pt2"
    torch.export.save(torch.export.export(net, (torch.randn(4, 2),)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkspaceError, match="s1.pt2"):
        Workspace.open(root).load_program("m1", "s1")


def test_cli_prints_one_line_without_traceback(tmp_path):
    frames = _frames()
    frames["metrics"]["ts"] = frames["metrics"]["ts"].dt.tz_localize(None)
    root = _write(tmp_path / "ws", frames)
    before = _digest(root)
    proc = subprocess.run(
        [sys.executable, "-m", "hawknb", "check", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "metrics.parquet" in lines[0] and "naive" in lines[0]
    assert "Traceback" not in proc.stderr
    assert _digest(root) == before


def test_cli_check_ok(tmp_path):
    root = _write(tmp_path / "ws", _frames(), lineage=LINEAGE)
    proc = subprocess.run(
        [sys.executable, "-m", "hawknb", "check", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:")


def test_in_memory_program_objects():
    frames = _frames()
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    ep = torch.export.export(net, (torch.randn(3, 2),))
    ws = Workspace(**frames, programs={("m1", "s1"): ep}, features={"m1": ["f_a", "f_b"]})
    assert ws.load_program("m1", "s1") is ep
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ws.validate()


def test_loaded_programs_are_reused_within_bounds(tmp_path, monkeypatch):
    """A triage asks for the same snapshot from several steps: each file is loaded once while
    it fits the cache, and the cache forgets the oldest program past its count or byte bound."""
    import hawknb.workspace.workspace as wsmod

    root = _write(tmp_path / "ws", _frames())
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    ep = torch.export.export(net, (torch.randn(4, 2),))
    for snap in ("s1", "s2", "s3"):
        torch.export.save(ep, root / "snapshots" / "m1" / f"{snap}.pt2")
    loads: list[str] = []
    real = wsmod.load_exported_program
    monkeypatch.setattr(
        wsmod, "load_exported_program", lambda p: loads.append(Path(p).stem) or real(p)
    )
    ws = Workspace.open(root)
    first = ws.load_program("m1", "s1")
    assert ws.load_program("m1", "s1") is first
    assert loads == ["s1"]
    monkeypatch.setattr(wsmod, "LOADED_PROGRAMS", 2)
    ws.load_program("m1", "s2")
    ws.load_program("m1", "s3")  # evicts s1, the least recently used
    ws.load_program("m1", "s3")
    ws.load_program("m1", "s1")
    assert loads == ["s1", "s2", "s3", "s1"]
    monkeypatch.setattr(wsmod, "LOADED_BYTES", 1)  # every program is over: keep the last only
    ws.load_program("m1", "s2")
    ws.load_program("m1", "s1")
    assert loads == ["s1", "s2", "s3", "s1", "s2", "s1"]

"""The simulator writes valid, deterministic, streamable workspaces for every incident kind."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from polars.testing import assert_frame_equal

from hawknb.cli import main
from hawknb.simulate import INCIDENT_KINDS, Truth, default_truth_path, simulate
from hawknb.simulate.draws import rng as _rng
from hawknb.simulate.incidents import plan
from hawknb.simulate.system import build_system
from hawknb.workspace import Workspace, WorkspaceError
from hawknb.workspace import contract as c

SMALL = {"days": 4, "rows_per_hour": 12, "features_per_model": 8}
TRUTH_KEYS = {
    "kind", "seed", "metric", "onset", "model", "affected_models", "experiment", "snapshot",
    "cause", "features", "downstream_features", "upstream", "layer", "distractors", "details",
}  # fmt: skip


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Truth]]:
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for kind in INCIDENT_KINDS:
        d = root / kind
        out[kind] = (d, simulate(d, kind, seed=7, **SMALL))
    return out


@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_every_kind_writes_a_valid_complete_workspace(worlds, kind: str) -> None:
    d, _ = worlds[kind]
    ws = Workspace.open(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ws.validate()
    for name in c.TABLES:
        assert ws.has(name), name
    assert ws.has("lineage") and ws.has("programs")
    tpath = default_truth_path(d)
    assert tpath.exists() and not tpath.resolve().is_relative_to(d.resolve())
    raw = json.loads(tpath.read_text())
    assert set(raw) == TRUTH_KEYS
    assert raw["kind"] == kind and raw["seed"] == 7
    assert {x["kind"] for x in raw["distractors"]} == {
        "organic_drift", "snapshot_rollout", "upstream_change",
    }  # fmt: skip
    if kind == "none":
        assert raw["metric"] is None and raw["onset"] is None and raw["model"] is None
    else:
        assert raw["metric"] in ws.metric_names()
        assert raw["model"] in ws.models()
        assert raw["model"] == raw["affected_models"][0]
    # labels arrive late: the last hours have none
    last = ws.serving.filter(pl.col(c.TS) == pl.col(c.TS).max()).collect()
    assert last[c.LABEL].null_count() == last.height
    # the top line of every metric is there, and at least one metric is segmented
    m = ws.metrics.collect()
    assert (m[c.SEGMENT] == c.TOP_LINE_SEGMENT).any()
    assert m[c.SEGMENT].n_unique() > 1


@pytest.mark.parametrize("kind", ["activation_blowup", "bad_snapshot", "upstream_data"])
def test_serving_predictions_are_the_exported_programs_outputs(worlds, kind: str) -> None:
    d, _ = worlds[kind]
    ws = Workspace.open(d)
    serving = ws.serving.collect()
    checked = 0
    for model, snapshot in ws.programs():
        rows = serving.filter((pl.col(c.MODEL) == model) & (pl.col(c.SNAPSHOT) == snapshot))
        if rows.height == 0:
            continue
        x = torch.from_numpy(rows.select(ws.features(model)).to_numpy().astype(np.float32))
        with torch.no_grad():
            out = ws.load_program(model, snapshot).module()(x).numpy().astype(np.float64)
        logged = rows[c.PREDICTION].to_numpy()
        np.testing.assert_allclose(out.reshape(-1), logged, rtol=1e-5, atol=1e-7, equal_nan=True)
        checked += 1
    assert checked >= 6


def test_same_seed_same_contents_and_chunking_does_not_matter(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", "bad_snapshot", 3, **SMALL)
    a2 = simulate(tmp_path / "a2", "bad_snapshot", 3, **SMALL)
    b = simulate(tmp_path / "b", "bad_snapshot", 3, **SMALL, row_group_rows=500)
    assert a.to_dict() == a2.to_dict()
    assert a.onset == b.onset and a.snapshot == b.snapshot and a.metric == b.metric
    for spec in c.TABLES.values():
        fa = pl.read_parquet(tmp_path / "a" / spec.file)
        assert fa.equals(pl.read_parquet(tmp_path / "a2" / spec.file)), spec.file
        # streaming in other chunks changes only the batch size torch sees (last-bit noise)
        assert_frame_equal(fa, pl.read_parquet(tmp_path / "b" / spec.file), rel_tol=1e-5)
    # the small row groups were streamed, not written at once
    groups_a = pq.ParquetFile(tmp_path / "a" / "serving.parquet").metadata.num_row_groups
    groups_b = pq.ParquetFile(tmp_path / "b" / "serving.parquet").metadata.num_row_groups
    assert groups_a <= SMALL["days"] < 2 * groups_a < groups_b


def test_different_seeds_differ(tmp_path: Path) -> None:
    # planning is cheap: check the randomization over many seeds without writing data
    onsets, models, subtypes, layers, kinds_of_fault = set(), set(), set(), set(), set()
    for seed in range(25):
        system = build_system(_rng(seed, 1), 3, 24)
        p = plan(_rng(seed, 4), "bad_snapshot", system, 10)
        onsets.add(p.onset)
        models.add(p.culprit[0])
        subtypes.add(p.snapshot_fault["subtype"])
        layers.add(p.snapshot_fault["layer"])
        q = plan(_rng(seed, 4), "upstream_data", system, 10)
        kinds_of_fault.add(q.world.source_fault.subtype)
    assert len(onsets) > 10 and len(models) == 3 and len(layers) == 3
    assert len(subtypes) == 4 and len(kinds_of_fault) == 4


def test_default_system_is_ads_like() -> None:
    system = build_system(_rng(0, 1), 3, 24)
    graph = system.lineage_json()
    assert len(graph["nodes"]) >= 100
    kinds = {n["kind"] for n in graph["nodes"]}
    assert {"source", "table", "transform", "feature"} <= kinds
    assert 20 <= len(system.models[0].features) <= 40
    # some source feeds features of several models
    shared = [
        s for s in range(len(system.sources))
        if len(system.models_using(system.features_of_source(s))) > 1
    ]  # fmt: skip
    assert shared
    names = [m.name for m in system.models]
    assert len(set(names)) == 3


def test_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    d = tmp_path / "ws"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not empty"):
        simulate(d, "none", 0, **SMALL)
    simulate(d, "none", 0, **SMALL, force=True)
    simulate(d, "none", 1, **SMALL, force=True)
    assert (d / "notes.txt").read_text() == "mine"
    # only the second run's snapshots are left
    snaps = pl.read_parquet(d / "snapshots.parquet")
    files = {(p.parent.name, p.stem) for p in d.glob("snapshots/*/*.pt2")}
    assert files == set(zip(snaps[c.MODEL], snaps[c.SNAPSHOT], strict=True))


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="incident"):
        simulate(tmp_path / "x", "meteor", 0)
    with pytest.raises(ValueError, match="days"):
        simulate(tmp_path / "x", "none", 0, days=2)
    with pytest.raises(ValueError, match="inside"):
        simulate(tmp_path / "x", "none", 0, truth_path=tmp_path / "x" / "t.json", **SMALL)
    with pytest.raises(ValueError, match="n_models"):
        simulate(tmp_path / "y", "none", 0, n_models=1, days=3)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "cli_ws"
    truth = tmp_path / "elsewhere" / "t.json"
    rc = main(
        ["simulate", str(d), "--incident", "training_data", "--seed", "2", "--days", "3",
         "--rows-per-hour", "8", "--features-per-model", "6", "--truth", str(truth), "--quiet"]
    )  # fmt: skip
    assert rc == 0
    assert json.loads(truth.read_text())["kind"] == "training_data"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["simulate", str(mine), "--seed", "2", "--days", "3", "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err  # a folder hawknb did not write is refused
    assert (mine / "notes.txt").read_text() == "keep"

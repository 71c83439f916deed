"""The independent generator (benchmarks/indepgen) writes contract-valid workspaces.

Triage accuracy on these workspaces is measured (benchmarks/indep_accuracy.py), not tested.
"""

from __future__ import annotations

import json

import pytest

import hawknb
from benchmarks.indepgen import KINDS, TRUTH_KEYS, generate
from benchmarks.indepgen.__main__ import main as cli_main

TINY = {
    "history_days": 7,
    "features_min": 14,
    "features_max": 20,
    "n_models": 2,
    "rows_per_slot": 6,
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_passes_the_workspace_check(tmp_path, kind):
    truth = generate(
        tmp_path / "ws", tmp_path / "truth.json", kind, seed=3, difficulty="medium", **TINY
    )
    ws = hawknb.Workspace.open(tmp_path / "ws")
    ws.validate()
    on_disk = json.loads((tmp_path / "truth.json").read_text())
    assert set(TRUTH_KEYS) <= set(on_disk)
    assert on_disk["model"] in ws.models()
    assert on_disk["cause"] in ("upstream_data", "bad_snapshot", "training_data", "none")
    assert truth["onset"] == on_disk["onset"]
    names = {n["id"] for n in ws.lineage()["nodes"]} if isinstance(ws.lineage(), dict) else None
    if kind in ("upstream_data", "feature_coverage"):
        assert on_disk["upstream"] and on_disk["features"]
        assert set(on_disk["features"]) <= set(ws.features(on_disk["model"]))
        if names is not None:
            assert on_disk["upstream"][0] in names
    if kind in ("bad_snapshot", "activation_blowup", "training_data"):
        assert (
            tmp_path / "ws" / "snapshots" / on_disk["model"] / f"{on_disk['snapshot']}.pt2"
        ).exists()
    if kind in ("bad_snapshot", "activation_blowup"):
        assert on_disk["layer"]
    if kind == "activation_blowup":
        assert len(on_disk["features"]) == 1


def test_truth_is_refused_inside_the_workspace(tmp_path):
    with pytest.raises(ValueError, match="outside the workspace"):
        generate(tmp_path / "ws", tmp_path / "ws" / "truth.json", "none", seed=0, **TINY)


def test_unknown_knob_and_kind_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown knob 'dropp'"):
        generate(tmp_path / "a", tmp_path / "t.json", "none", seed=0, dropp=0.1)
    with pytest.raises(ValueError, match="kind 'oops'"):
        generate(tmp_path / "b", tmp_path / "t.json", "oops", seed=0)


def test_cli_writes_workspace_and_truth(tmp_path, capsys):
    knobs = [f"--knob={k}={v}" for k, v in TINY.items()]
    rc = cli_main([str(tmp_path / "out"), "--kind", "bad_snapshot", "--seed", "1", *knobs])
    assert rc == 0
    assert (tmp_path / "out" / "workspace" / "serving.parquet").exists()
    assert json.loads((tmp_path / "out" / "truth.json").read_text())["cause"] == "bad_snapshot"
    assert cli_main([str(tmp_path / "out"), "--kind", "none"]) == 2  # refuses a non-empty dir
    assert "not empty" in capsys.readouterr().err


def test_same_seed_same_workspace(tmp_path):
    """A held-out seed must mean the same scenario on every machine and run."""
    import polars as pl

    a = generate(tmp_path / "a", tmp_path / "a.json", "upstream_data", seed=5, **TINY)
    b = generate(tmp_path / "b", tmp_path / "b.json", "upstream_data", seed=5, **TINY)
    assert a == b
    serving = [pl.read_parquet(tmp_path / d / "serving.parquet") for d in ("a", "b")]
    assert serving[0].equals(serving[1])

"""Snapshot diagnosis on independently generated rollouts (benchmarks.indepgen, tuning seeds):
a bad canary on one experiment arm next to a benign rollout, and a partial activation
blow-up triggered by one input feature. Triage is given the incident's metric and a time
inside it (as `hawknb triage --metric --start`), so these tests measure the snapshot and
activation steps, not the choice of the top-line anomaly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

import hawknb
from benchmarks.indepgen import generate

#: a small workspace: few features and models, a week of history (seconds to generate)
SMALL = {"history_days": 7, "features_min": 20, "features_max": 30, "n_models": 2}


def _triage(tmp_path, kind: str, seed: int, **knobs):
    truth = generate(
        tmp_path / "ws", tmp_path / "truth.json", kind, seed, "medium", **SMALL, **knobs
    )
    start = datetime.fromisoformat(truth["onset"]) + timedelta(hours=1)
    ws = hawknb.Workspace.open(tmp_path / "ws")
    inv = hawknb.triage(ws, truth["metric"], start, progress=False)
    return truth, inv.verdict.to_dict(), inv


# seeds whose canary breaks its rows visibly (seed 0's moves only 13% of 31 rows out of the
# band: no row-level test can call that at this size, and none is claimed to)
@pytest.mark.parametrize("seed", [1, 2])
def test_canary_on_one_arm_next_to_a_benign_rollout(tmp_path, seed):
    truth, v, _ = _triage(tmp_path, "bad_snapshot", seed)
    assert truth["benign_rollouts"], "the scenario must have a benign rollout beside the canary"
    assert (v["cause"], v["model"], v["snapshot"]) == (
        "bad_snapshot",
        truth["model"],
        truth["snapshot"],
    ), json.dumps(v, default=str)[:400]
    assert v["experiment"] == truth["experiment"]


@pytest.mark.parametrize("seed", [0, 1])
def test_partial_blowup_names_its_trigger_feature(tmp_path, seed):
    truth, v, inv = _triage(tmp_path, "activation_blowup", seed)
    assert (v["cause"], v["model"], v["snapshot"]) == (
        "bad_snapshot",
        truth["model"],
        truth["snapshot"],
    ), json.dumps(v, default=str)[:400]
    assert truth["features"][0] in v["features"][:3]
    act = next(f for f in inv.findings if f.step == "activations")
    assert truth["features"][0] in act.evidence["driving_features"]

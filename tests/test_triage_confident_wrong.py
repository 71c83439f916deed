"""Confident wrong verdicts found on the independent generator's difficulty grid (tuning
seeds, knobs away from the hard preset): a verdict the walk gets wrong must not be stated as
near-certain. Each case: the verdict is right, or its confidence is under `MODERATE` (so it is
worded as the lead it is)."""

from __future__ import annotations

import json

import pytest
from _cases import generated_into

import hawknb
from hawknb.triage.calibration import MODERATE


@pytest.mark.parametrize(
    ("kind", "seed", "knobs"),
    [
        # hourly metrics: a benign rollout in the incident hour, nothing inside it, on a
        # window whose labels were blind, was stated at 0.97 by the blind-label map
        pytest.param(
            "activation_blowup",
            3,
            {"cadence_min": 60, "rows_per_slot": 48},
            id="hourly-benign-rollout",
        ),
        # half the preset's serving rows: the canary's evidence is too thin to name
        # it, and "no cause found" was stated at 0.75 (the thin-log map: 0.30)
        pytest.param("bad_snapshot", 2, {"rows_per_slot": 12}, id="thin-log-none"),
    ],
)
def test_a_wrong_verdict_is_not_stated_as_certain(tmp_path, kind, seed, knobs):
    ws = generated_into(tmp_path, kind, seed, **knobs)
    truth = json.loads((tmp_path / "truth.json").read_text())
    v = hawknb.triage(hawknb.Workspace.open(ws), progress=False).verdict
    right = (v.cause, v.model, v.snapshot) == (truth["cause"], truth["model"], truth["snapshot"])
    assert right or v.confidence < MODERATE, (v.cause, v.model, v.snapshot, v.confidence)
    if not right:
        assert v.summary.startswith(("low confidence", "moderate confidence")), v.summary

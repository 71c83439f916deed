"""A serving log without a `label` column (the contract makes labels optional: many teams log
predictions long before their labels, or never join them). Calibration and NE have nothing to
read there, so the verdict rests on predictions, rows, weights and inputs; it must still be
reached. The snapshot diagnosis asked `Workspace.label_mean` for the serving label rate to
compare with the training data's, and that query selected the missing column: every
snapshot hypothesis crashed the walk. Such a log is blind to the incident everywhere, so its
verdicts read the confidence map of windows whose labels had not arrived."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from _cases import generated_into, simulated_into

import hawknb
from hawknb.triage.calibration import calibrated
from hawknb.triage.results import HypothesesResult


@pytest.mark.parametrize(
    ("make", "kind", "seed", "fields"),
    [
        pytest.param(
            generated_into, "bad_snapshot", 0, ("cause", "model", "snapshot"), id="indep-canary"
        ),
        pytest.param(
            simulated_into, "training_data", 0, ("cause", "model", "snapshot"), id="sim-training"
        ),
    ],
)
def test_a_log_without_labels_is_triaged(tmp_path, make, kind, seed, fields):
    full = make(tmp_path, kind, seed, "full")
    truth = json.loads((tmp_path / "truth.json").read_text())
    bare = tmp_path / "bare"
    shutil.copytree(full, bare)
    pl.read_parquet(full / "serving.parquet").drop("label").write_parquet(bare / "serving.parquet")
    ws = hawknb.Workspace.open(bare)
    assert ws.label_mean(truth["model"]) is None
    inv = hawknb.triage(ws, progress=False)
    v = inv.verdict
    assert {f: getattr(v, f) for f in fields} == {f: truth[f] for f in fields}
    # no label column: blind everywhere, so the support reads the blind windows' map, and
    # the summary says why (not "0% of its labels had arrived")
    assert inv.finding("verdict").evidence["labels_seen"] == 0.0
    hyps = inv.get(HypothesesResult).hypotheses
    assert v.confidence == calibrated(hyps[0], hyps[1] if len(hyps) > 1 else None, 0.0)
    assert "the serving log has no labels, so calibration and NE could not show it" in v.summary

"""A serving log without a `label` column (the contract makes labels optional: many teams log
predictions long before their labels, or never join them). Calibration and NE have nothing to
read there, so the verdict rests on predictions, rows, weights and inputs; it must still be
reached. The snapshot diagnosis asked `Workspace.label_mean` for the serving label rate to
compare with the training data's, and that query selected the missing column: every
snapshot hypothesis crashed the walk."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from _cases import generated_into, simulated_into

import hawknb


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
    v = hawknb.triage(ws, progress=False).verdict
    assert {f: getattr(v, f) for f in fields} == {f: truth[f] for f in fields}

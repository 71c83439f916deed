"""The worked example (docs/ingest.md, the `ingest_example` template): an OpenLineage event
file, an MLflow store and CSV logs, ingested and triaged to a verdict, executed as a user runs
it (`hawknb new ingest_example --execute`, papermill on a fresh kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import polars as pl

from hawknb.ingest.example import ONSET
from hawknb.notebooks import instantiate
from hawknb.report import notebook_verdict
from hawknb.workspace import Workspace


def test_example_notebook_goes_from_records_to_a_verdict(tmp_path: Path) -> None:
    out = tmp_path / "ingest_example.ipynb"
    done = instantiate("ingest_example", out, workspace="ws", execute=True, timeout=600)
    assert done.executed
    nb = nbformat.read(out, as_version=4)
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    # the workspace the notebook ingested is a valid one, with every path's output in it
    ws = Workspace.open(tmp_path / "ws")
    ws.validate()
    assert ws.programs("ctr") == [("ctr", "1"), ("ctr", "2")]
    assert json.loads((tmp_path / "ws" / "snapshots" / "ctr" / "features.json").read_text()) == [
        "ctr_7d",
        "dwell_s",
        "price_rel",
    ]
    assert ws.has("training_curves") and ws.has("lineage_stats")
    # the planted break: raw.clicks lost 80% of its rows at ONSET; triage names the feature
    # it feeds and finds the break upstream
    verdict = notebook_verdict(nb)
    assert verdict["cause"] == "upstream_data", verdict
    assert verdict["model"] == "ctr"
    assert verdict["features"][0] == "ctr_7d"
    assert "postgres://warehouse/raw.clicks" in verdict["upstream"], verdict
    rows = (
        ws.table("lineage_stats")
        .filter(
            (pl.col("node") == "postgres://warehouse/raw.clicks") & (pl.col("stat") == "row_count")
        )
        .collect()
    )
    before = rows.filter(pl.col("ts") < ONSET)["value"].mean()
    after = rows.filter(pl.col("ts") >= ONSET)["value"].mean()
    assert after < 0.3 * before

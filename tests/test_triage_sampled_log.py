"""Verdicts on a sampled serving log: the independent generator's hard workspaces with half of
their serving rows kept (a deterministic hash of the row number), as a team that logs a
sample would hand them over. Half the rows is half the evidence, so some verdicts may weaken;
these four were lost to rules that counted rows, not to missing evidence:

- a one-arm bad snapshot (seed 0) served 5 rows in its 3-hour window, fewer than the 8 any
  row comparison takes, and was dropped *before* the longer span meant for canaries was tried
  (`row_evidence._canaries_compared_longer`);
- a one-arm bad snapshot (seed 3) kept about 60 rows of its arm's old snapshot in the same
  hours, under the 100 the same-hours comparison took, so it was compared with the rows
  before, weighed 0.6 as a possible data break, and lost its window to a distractor
  (`kernels.snapshot_rows.MIN_REFERENCE_ROWS`, now 50: the least any comparison takes);
- a bad snapshot (seed 1) served 16 rows after its onset, under the 32 the activation replay
  took before looking for rows that blew up at all, so the layer came from the weights alone
  (the head, whose bias moved) instead of the embedding whose every row blew up 200 times its
  previous snapshot (`activation_drivers.MIN_ROWS`: a whole-node blow-up from 8 rows);
- an upstream break (seed 2) named its model by the inputs that broke, but the break was too
  small on half the rows to be unusual for that model's history, so the lineage walk started
  from the ranking's top feature (confidence 0, unrelated) instead of the broken inputs
  (`Suspect.broken`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from _cases import generated_into

import hawknb

#: share of serving rows kept, in thousandths
KEEP = 500


def _sampled(root: Path, kind: str, seed: int) -> tuple[Path, dict]:
    full, truth = generated_into(root, kind, seed, "full"), root / "truth.json"
    half = root / "half"
    shutil.copytree(full, half)
    log = pl.read_parquet(full / "serving.parquet")
    log.filter(pl.int_range(pl.len()).hash(7) % 1000 < KEEP).write_parquet(half / "serving.parquet")
    assert (
        0.45
        < pl.scan_parquet(half / "serving.parquet").select(pl.len()).collect().item() / (log.height)
        < 0.55
    )
    return half, json.loads(truth.read_text())


@pytest.mark.parametrize(
    ("kind", "seed", "fields"),
    [
        pytest.param("bad_snapshot", 0, ("cause", "model", "snapshot", "layer"), id="canary"),
        pytest.param("bad_snapshot", 3, ("cause", "model", "snapshot"), id="thin-arm"),
        pytest.param("bad_snapshot", 1, ("cause", "snapshot", "layer"), id="few-rows-layer"),
        pytest.param("upstream_data", 2, ("cause",), id="upstream"),
    ],
)
def test_a_sampled_log_keeps_the_verdict(tmp_path, kind, seed, fields):
    ws, truth = _sampled(tmp_path, kind, seed)
    v = hawknb.triage(hawknb.Workspace.open(ws), progress=False).verdict
    assert {f: getattr(v, f) for f in fields} == {f: truth[f] for f in fields}
    if kind == "upstream_data":
        assert v.model in truth["affected_models"]
        assert v.upstream[:1] == truth["upstream"][:1]

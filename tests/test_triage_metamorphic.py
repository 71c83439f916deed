"""Verdicts that do not lean on a generator's conventions: a workspace and its twin (opaque
names that sort in the reverse order, the clock moved, metrics in other units, rows and columns
reordered: tests/_metamorphic.py) get the same verdict, read back in the original's names.

The independent generator's hard upstream break (tuning seed 1) steps the inputs of all four
models at once; their input leads were equally strong (a chance under 1e-16 read as the same
capped z) and the first model by name set the window, so renaming the models moved the onset
by an hour and changed the features named. The simulator's activation blow-up (seed 0) named
other trigger features when the log's rows were reversed: the traced rows were sampled by
position and tied input values ranked by position. The independent generator's hard
activation blow-up (seed 2) was answered `none` once the clock moved by 17 minutes: the health
windows sat on the clock's quarter-hour grid, which then cut the onset window elsewhere; they
now start on the phase of the first metric stamp (`triage.models.health_phase`). Both
generators are covered, every transform at once.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _cases import generated_into, simulated_into
from _metamorphic import TRANSFORMS, twin

import hawknb

#: the verdict's fields that must be equal on the twin (confidence within float rounding)
SAME = (
    "cause",
    "metric",
    "onset",
    "model",
    "experiment",
    "snapshot",
    "layer",
    "features",
    "upstream",
)


def _verdict(path: Path) -> dict[str, Any]:
    inv = hawknb.triage(hawknb.Workspace.open(path), progress=False)
    return dataclasses.asdict(inv.verdict)


CASES = [
    pytest.param(
        generated_into, "upstream_data", 1, frozenset({"rename"}), id="indep-upstream-rename"
    ),
    pytest.param(generated_into, "bad_snapshot", 1, TRANSFORMS, id="indep-bad-snapshot-all"),
    pytest.param(simulated_into, "upstream_data", 4, TRANSFORMS, id="sim-upstream-all"),
    pytest.param(
        simulated_into, "activation_blowup", 0, frozenset({"reorder"}), id="sim-blowup-reorder"
    ),
    pytest.param(
        generated_into, "activation_blowup", 2, frozenset({"shift"}), id="indep-blowup-shift"
    ),
]
#: the confidence may differ this much on a shifted twin: the row comparison's hour strata
#: (kernels.snapshot_rows) still sit on the clock's hours, and a shift by minutes moves rows
#: near an hour's edge to the next stratum (4e-4 on indep-blowup-shift). Counting the strata
#: from the onset removed it but turned independent hard bad snapshot 13 (tuning) from right
#: to `none`, a verdict that a 17-minute shift on the clock's hours also turns to `none`;
#: left for a round that can weigh it (tests/test_triage_stability.py asserts that case)
SHIFT_CONFIDENCE_TOL = 1e-3


@pytest.mark.parametrize(("make", "kind", "seed", "how"), CASES)
def test_the_twin_gets_the_same_verdict(tmp_path, make, kind, seed, how):
    original = make(tmp_path / "a", kind, seed)
    mirror = twin(original, tmp_path / "b" / "ws", how)
    want = _verdict(original)
    got = mirror.original(_verdict(mirror.path))
    assert {k: got[k] for k in SAME} == {k: want[k] for k in SAME}
    tol = SHIFT_CONFIDENCE_TOL if "shift" in how else 1e-6
    assert math.isclose(got["confidence"], want["confidence"], abs_tol=tol)


def test_the_twin_really_differs(tmp_path):
    """The transforms change what they claim to (else the test above proves nothing)."""
    import polars as pl

    original = simulated_into(tmp_path / "a", "upstream_data", 4)
    mirror = twin(original, tmp_path / "b" / "ws")
    a = pl.read_parquet(original / "metrics.parquet")
    b = pl.read_parquet(mirror.path / "metrics.parquet")
    assert not set(a["metric"].unique()) & set(b["metric"].unique())
    moved = b["ts"].min() - a["ts"].min()
    assert moved > timedelta(days=1) and moved % timedelta(minutes=15) != timedelta(0)
    assert a.columns != b.columns
    models = sorted(pl.read_parquet(original / "serving.parquet")["model"].unique())
    renamed = [mirror.names["model"][m] for m in models]
    assert len(models) > 1 and renamed == sorted(renamed, reverse=True)
    with pytest.raises(ValueError, match="unknown transforms"):
        twin(original, tmp_path / "c", frozenset({"rot13"}))

"""A new snapshot whose predictions' distribution moved (KS >= SHIFT_KS over >= LEAD_ROWS rows)
leads a window on that alone (triage.row_evidence._lead_z / _leads): known answers on
hand-built comparison frames. The window's own row comparison (row_shifts, row_suspects) does
not read the shift: a data break that starts with a cut-over moves its rows too."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from hawknb.kernels.snapshot_rows import ROW_SHIFT_SCHEMA
from hawknb.triage import row_evidence
from hawknb.triage.row_evidence import LEAD_ROWS, ROW_Z, SHIFT_KS

FIRST = datetime(2026, 3, 3, tzinfo=UTC)


def _shifts(*rows: dict) -> pl.DataFrame:
    base = dict.fromkeys(ROW_SHIFT_SCHEMA)
    filled = [
        {
            **base,
            "model": "m",
            "experiment": "A",
            "first_ts": FIRST,
            "reference": "before",
            "tail_share": 0.01,
            "tail_expected": 0.01,
            **r,
        }
        for r in rows
    ]
    return pl.DataFrame(filled, schema=ROW_SHIFT_SCHEMA).with_columns(
        pl.lit(False).alias("collapse")
    )


def test_a_moved_distribution_leads_and_says_so():
    leads = row_evidence._leads(
        _shifts({"snapshot": "moved", "rows": 140, "ks": 0.6, "tail_z": -0.5, "z": -0.5}), "m"
    )
    assert len(leads) == 1
    assert leads[0]["z"] == ROW_Z * 0.6 / SHIFT_KS >= row_evidence.LEAD_Z
    assert "distribution moved" in leads[0]["what"] and "KS 0.60" in leads[0]["what"]


def test_a_small_shift_few_rows_or_clear_tails_keep_their_own_z():
    leads = row_evidence._leads(
        _shifts(
            {"snapshot": "small", "rows": 140, "ks": SHIFT_KS - 0.05, "tail_z": 1.0, "z": 1.0},
            {"snapshot": "few", "rows": LEAD_ROWS - 1, "ks": 0.9, "tail_z": 1.0, "z": 1.0},
            {"snapshot": "tails", "rows": 140, "ks": 0.5, "tail_z": 30.0, "z": 30.0},
        ),
        "m",
    )
    z = {lead["snapshot"]: lead["z"] for lead in leads}
    assert z == {"small": 1.0, "few": 1.0, "tails": 30.0}
    tails = next(lead for lead in leads if lead["snapshot"] == "tails")
    assert "central 98%" in tails["what"]

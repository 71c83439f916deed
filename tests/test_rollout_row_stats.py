"""benchmarks/rollout_row_stats.py: the per-snapshot statistics the row bars are read from.

Run on one independently generated blow-up (a tuning seed): the script must keep working when
the row evidence's internals move (it had broken silently on a new argument), and what it reads
must show what RANGE_Z's comment says: the incident snapshot beyond the reference's range in
its clearer arm, no other new snapshot of the workspace near that bar.
"""

from __future__ import annotations

import json

from _cases import generated_into

from benchmarks.rollout_row_stats import STATS, snapshot_stats, summary
from hawknb.triage.row_evidence import RANGE_Z


def test_stats_of_a_partial_blowup_separate_on_the_range(tmp_path):
    ws = generated_into(tmp_path, "activation_blowup", 0)
    truth = json.loads((tmp_path / "truth.json").read_text())
    rows = snapshot_stats(ws, truth, "indep/activation_blowup/hard/0")
    bad = [r for r in rows if r["bad"]]
    others = [r for r in rows if not r["bad"]]
    assert bad and others
    assert {r["experiment"] for r in bad} >= {"ctl"}
    assert max(r["range_z"] or 0.0 for r in bad) >= RANGE_Z
    assert max(r["range_z"] or 0.0 for r in others) < RANGE_Z - 1
    text = summary(rows)
    scored = [r for r in rows if r["spread_ratio"] is not None]  # what the summary reads
    n_bad = sum(r["bad"] for r in scored)
    assert n_bad and f"{len(scored)} comparisons, {n_bad} of the incident's snapshot" in text
    assert all(s in text for s in STATS)

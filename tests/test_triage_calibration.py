"""Calibrated confidence: monotone in the evidence, lowered by a close runner-up, worded."""

from __future__ import annotations

import json

import pytest

from benchmarks.triage_accuracy import reliability
from hawknb.triage.calibration import CAUSE_KNOTS, LOW, MODERATE, _interp, calibrated, wording
from hawknb.triage.hypotheses import Hypothesis, ranked, why_not


def test_confidence_grows_with_support_and_stays_a_probability():
    confs = [calibrated(Hypothesis("bad_snapshot", s / 20), None) for s in range(21)]
    assert all(0.0 <= c <= 1.0 for c in confs)
    assert confs == sorted(confs)
    assert confs[0] < 0.3 < confs[-1]


def test_a_close_runner_up_for_another_cause_lowers_confidence():
    best = Hypothesis("bad_snapshot", 0.9, snapshot="s2")
    alone = calibrated(best, None)
    close = calibrated(best, Hypothesis("upstream_data", 0.85))
    far = calibrated(best, Hypothesis("upstream_data", 0.2))
    same_cause = calibrated(best, Hypothesis("bad_snapshot", 0.88, snapshot="s1"))
    assert close < alone
    assert far == alone
    assert same_cause == alone


def test_low_confidence_is_worded():
    assert wording(LOW - 0.01) == "low confidence"
    assert wording(MODERATE - 0.01) == "moderate confidence"
    assert wording(MODERATE) == ""


def test_ranking_is_deterministic_and_says_why_not():
    a = Hypothesis("upstream_data", 0.5, evidence_against=["x"])
    b = Hypothesis("bad_snapshot", 0.5, snapshot="s9", evidence_against=["no A/B"])
    c = Hypothesis("none", 0.1)
    order = ranked([c, a, b])
    assert [h.cause for h in order] == ["bad_snapshot", "upstream_data", "none"]
    assert "runner-up upstream_data" in why_not(order[0], order[1])
    assert json.dumps(order[0].brief())  # JSON-safe


def _row(conf: float, ok: bool) -> dict:
    cause = "bad_snapshot"
    return {
        "verdict": {"cause": cause, "confidence": conf},
        "truth": {"cause": cause},
        "score": {"cause": ok, "model": True},
    }


def test_reliability_table_and_ece():
    perfect = [_row(0.9, True)] * 9 + [_row(0.9, False)]
    _, ece = reliability(perfect)
    assert ece == pytest.approx(0.0, abs=1e-9)
    over = [_row(0.9, False)] * 10
    table, ece = reliability(over)
    assert ece == pytest.approx(0.9)
    assert "| 0.8-1.0 | 10 | 0.90 | 0.00 |" in table


def test_calibration_is_judged_per_data_set_on_maps_it_did_not_fit():
    from benchmarks.fit_calibration import by_group, cross_fitted, group

    def row(support: float, ok: bool, level: str | None) -> dict:
        # recorded as the map in place would have it (not a close call)
        r = {**_row(_interp(CAUSE_KNOTS, support), ok), "support": support}
        if level:
            r["difficulty"] = level
        return r

    # the simulator's verdicts are right at high support, the hard ones wrong at low support
    rows = [row(0.9, True, None) for _ in range(20)] + [row(0.05, False, "hard") for _ in range(20)]
    assert group(rows[0]) == "simulator" and group(rows[-1]) == "independent hard"
    judged = cross_fitted(rows)
    assert len(judged) == len(rows)
    table = by_group(judged)
    lines = {ln.split(" | ")[0].strip("| "): ln for ln in table.splitlines()[2:]}
    assert set(lines) == {"simulator", "independent hard"}
    # each group's ECE is small: the map learned from the other fold separates them
    for ln in lines.values():
        assert float(ln.rstrip(" |").split(" | ")[-1]) < 0.1

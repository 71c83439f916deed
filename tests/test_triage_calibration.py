"""Calibrated confidence: monotone in the evidence, lowered by a close runner-up, worded."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hawknb
from benchmarks.triage_accuracy import calibration_report, reliability
from hawknb.triage.calibration import (
    BLIND_CAUSE_KNOTS,
    CAUSE_KNOTS,
    LABELS_BLIND,
    LOW,
    MODERATE,
    NONE_KNOTS,
    UNEXPLAINED_SNAPSHOT,
    NoneEvidence,
    _interp,
    calibrated,
    doubt,
    none_confidence,
    none_summary,
    wording,
)
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
        # a snapshot with its broken layer found (one with nothing inside it is capped)
        "verdict": {"cause": cause, "confidence": conf, "layer": "net.0"},
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
    assert set(lines) == {"simulator", "independent hard", "all"}
    # each group's ECE is small: the map learned from the other fold separates them
    for ln in lines.values():
        assert float(ln.split(" | ")[3]) < 0.1, ln


# -- `none` verdicts: a probability that nothing is wrong -------------------------------------


def test_none_confidence_falls_with_every_piece_of_evidence_of_an_incident():
    quiet = NoneEvidence()
    assert 0.0 <= none_confidence(quiet) <= 1.0
    grid = [i / 4 for i in range(5)]
    for key in ("anomaly", "moved", "lead"):
        confs = [
            none_confidence(NoneEvidence(**{"anomaly": 1.0, "moved": 1.0, "lead": 0.0, key: x}))
            if key != "lead"
            else none_confidence(NoneEvidence(anomaly=0.5, moved=0.5, lead=x))
            for x in grid
        ]
        assert all(0.0 <= c <= 1.0 for c in confs), (key, confs)
        assert confs == sorted(confs, reverse=True), (key, confs)
    # a strong step that a model moved with, and nothing found to explain it: much less sure
    # that nothing is wrong than on a quiet workspace
    loud = NoneEvidence(anomaly=1.0, moved=1.0, lead=0.2)
    assert none_confidence(loud) < none_confidence(quiet) - 0.3


def test_fitted_maps_are_monotone_probabilities():
    for knots, increasing in ((CAUSE_KNOTS, True), (NONE_KNOTS, False), (BLIND_CAUSE_KNOTS, True)):
        xs = [x for x, _ in knots]
        ys = [y for _, y in knots]
        assert xs == sorted(xs) and xs[0] == 0.0 and xs[-1] == 1.0
        assert all(0.0 <= y <= 1.0 for y in ys)
        assert ys == sorted(ys, reverse=not increasing), knots
    assert doubt(NoneEvidence()) == 0.0
    assert doubt(NoneEvidence(anomaly=1.0, moved=1.0)) == 1.0
    assert 0.0 < doubt(NoneEvidence(anomaly=1.0)) < doubt(NoneEvidence(anomaly=1.0, moved=0.5))


def test_low_confidence_none_is_worded_with_its_strongest_lead():
    ev = NoneEvidence(
        anomaly=1.0, severity=7.5, moved=0.9, lead=0.18, lead_label="bad_snapshot (v2)"
    )
    text = none_summary("m's predictions moved, but nothing explains it", LOW - 0.1, ev)
    assert text.startswith("low confidence: no cause found (m's predictions moved")
    assert "the strongest lead was bad_snapshot (v2) (support 0.18)" in text
    step_only = none_summary("ctr moved", LOW - 0.1, NoneEvidence(anomaly=1.0, severity=7.5))
    assert "the strongest lead was the top line's step (7.5 of its spread)" in step_only
    moved = none_summary("ctr moved", LOW - 0.1, NoneEvidence(anomaly=1.0, moved=0.8))
    assert "the strongest lead was a model's predictions moving with it (0.80)" in moved
    assert none_summary("no top-line anomaly", MODERATE, NoneEvidence()) == "no top-line anomaly"
    assert none_summary("x", MODERATE - 0.01, ev) == "moderate confidence: x"


def test_reliability_covers_none_verdicts_and_keeps_the_cause_only_number():
    none_right = {
        "verdict": {"cause": "none", "confidence": 0.8},
        "truth": {"cause": "none"},
        "score": {"cause": True, "model": True},
    }
    none_wrong = {**none_right, "truth": {"cause": "upstream_data"}, "score": {"cause": False}}
    rows = [_row(0.9, True)] * 10 + [none_right] * 8 + [none_wrong] * 2
    assert reliability(rows)[1] == pytest.approx(10 / 20 * 0.1 + 10 / 20 * 0.0)
    assert reliability(rows, causes_only=True)[1] == pytest.approx(0.1)
    report = calibration_report(rows, lambda r: r["verdict"]["cause"])
    assert "| none | 10 | 8 | 0.000 | 0 | – | 8/10 | 0.80 |" in report
    assert "| all | 20 | 18 | 0.050 | 10 | 0.100 | 8/10 | 0.80 |" in report


def test_write_puts_the_knots_into_calibration_py(tmp_path, monkeypatch):
    import benchmarks.fit_calibration as fc
    from hawknb.triage import calibration

    copy = tmp_path / "calibration.py"
    copy.write_text(Path(calibration.__file__).read_text())
    monkeypatch.setattr(fc, "CALIBRATION_PY", copy)
    maps = (
        [(0.0, 0.1), (1.0, 0.9)],
        [(0.0, 0.8), (1.0, 0.3)],
        [(0.0, 0.6), (1.0, 0.7)],
        [(0.0, 0.5), (1.0, 0.1)],
    )
    fc.write(maps, {"CAUSE_KNOTS": "#: fitted by benchmarks/fit_calibration.py on test\n"})
    text = copy.read_text()
    knots = {
        node.target.id: ast.literal_eval(node.value)
        for node in ast.parse(text).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    assert knots["CAUSE_KNOTS"] == ((0.0, 0.1), (1.0, 0.9))
    assert knots["NONE_KNOTS"] == ((0.0, 0.8), (1.0, 0.3))
    assert knots["BLIND_CAUSE_KNOTS"] == ((0.0, 0.6), (1.0, 0.7))
    assert knots["THIN_NONE_KNOTS"] == ((0.0, 0.5), (1.0, 0.1))
    assert "#: fitted by benchmarks/fit_calibration.py on test\nCAUSE_KNOTS" in text
    # one map only: the others keep their knots
    fc.write(tuple([(0.0, 0.4), (1.0, 0.4)] for _ in range(4)), {}, only="THIN_NONE_KNOTS")
    again = copy.read_text()
    assert "THIN_NONE_KNOTS: tuple[tuple[float, float], ...] = (\n    (0.0, 0.4)," in again
    assert again.replace("(0.0, 0.4),\n    (1.0, 0.4)", "(0.0, 0.5),\n    (1.0, 0.1)") == text
    # the isotonic fit of a decreasing relation is decreasing
    pts = [(i / 20, i < 10) for i in range(21)]
    knots = fc.fit(pts, increasing=False)
    assert [y for _, y in knots] == sorted((y for _, y in knots), reverse=True)


def _workspace(path: Path, drop: float) -> Path:
    """Two weeks of an hourly top line and one model; for the last eight hours the top line
    drops by ``drop`` (a share; 0: noise only) and the model's predictions by as much, while
    its inputs stay as they were: an incident nothing in the workspace explains."""
    rng = np.random.default_rng(7)
    ts = pd.date_range("2026-03-01", periods=14 * 24, freq="h", tz="UTC")
    value = 1000 + rng.normal(0, 5, len(ts))
    value[-8:] *= 1 - drop
    path.mkdir(parents=True)
    pd.DataFrame({"metric": "orders", "ts": ts, "value": value}).to_parquet(
        path / "metrics.parquet"
    )
    m = len(ts) * 20
    serving = {"ts": ts.repeat(20), "model": "ranker", "experiment": "control", "snapshot": "s1"}
    prediction = rng.normal(0.3, 0.02, m)
    prediction[-8 * 20 :] *= 1 - drop
    serving.update(prediction=prediction, f_a=rng.normal(0, 1, m), f_b=rng.normal(0, 1, m))
    pd.DataFrame(serving).to_parquet(path / "serving.parquet")
    return path


def test_a_strong_unexplained_drop_makes_none_less_sure_than_a_quiet_workspace(tmp_path):
    quiet = hawknb.triage(_workspace(tmp_path / "quiet", 0.0), progress=False).verdict
    drop = hawknb.triage(_workspace(tmp_path / "drop", 0.2), progress=False).verdict
    assert quiet.cause == "none" and drop.cause == "none", (quiet, drop)
    assert 0.0 <= drop.confidence < quiet.confidence <= 1.0
    assert drop.metric == "orders"
    if drop.confidence < LOW:
        assert drop.summary.startswith("low confidence: no cause found"), drop.summary


# -- the logistic alternative (judged by fit_calibration.py --logistic, not shipped) ----------


def _fit_row(support: float, window: float, ok: bool, level: str | None = None) -> dict:
    r = {**_row(0.5, ok), "support": support, "hypotheses": [("bad_snapshot", support, window)]}
    if level:
        r["difficulty"] = level
    return r


def test_logistic_alternative_tells_a_faint_incident_from_a_cause_that_barely_explains():
    """A small support from a faint window that the cause fully explains, and a small support
    from a cause that barely explains a sure window: one map on the support gives both the
    same confidence, the logistic map on both factors separates them when the runs do."""
    from benchmarks.fit_calibration import fit_logit, generator_weights, logit_confidence

    rng = np.random.default_rng(0)
    faint = [_fit_row(0.8 * w, w, True, "hard") for w in rng.uniform(0.02, 0.08, 40)]
    weak = [_fit_row(s, 1.0, False) for s in rng.uniform(0.02, 0.08, 40)]
    sure = [_fit_row(s, 1.0, True) for s in rng.uniform(0.5, 1.0, 40)]
    logit = fit_logit(faint + weak + sure)
    assert all(w >= 0 for w in logit[1:])
    assert min(logit_confidence(logit, r) for r in faint) > 0.8
    assert max(logit_confidence(logit, r) for r in weak) < 0.2
    assert min(logit_confidence(logit, r) for r in sure) > 0.8
    # each generator weighs the same in the fit, however many runs it has
    w = generator_weights(faint + weak + sure)
    assert w[:40].sum() == pytest.approx(w[40:].sum())


def test_logistic_alternative_never_lets_confidence_fall_as_evidence_grows():
    from benchmarks.fit_calibration import fit_logit

    # runs where a larger window share goes with wrong verdicts: that weight is dropped
    rows = [_fit_row(0.5 * w, w, w < 0.5) for w in np.linspace(0.05, 1.0, 40)]
    _, b, c = fit_logit(rows)
    assert c == 0.0 and b >= 0.0
    # too few runs, or all alike: a constant at their share
    assert fit_logit(rows[:3])[1:] == (0.0, 0.0)
    assert fit_logit([_fit_row(0.5, 1.0, True)] * 10)[1:] == (0.0, 0.0)


def test_benign_changes_named_are_counted_by_the_accuracy_rule():
    from benchmarks.fit_calibration import benign_named

    def sim_none(cause: str, conf: float) -> dict:
        return {"verdict": {"cause": cause, "confidence": conf}, "truth": {"cause": "none"}}

    rows = [sim_none("none", 0.7), sim_none("upstream_data", 0.2), sim_none("bad_snapshot", 0.9)]
    assert benign_named(rows) == "2/3"
    assert benign_named([{**rows[0], "difficulty": "hard"}]) == "0/0"


def test_a_window_whose_labels_were_blind_reads_its_support_with_its_own_map():
    """Late labels leave calibration and NE blind: the same support is read with the map
    fitted on such windows; a window with its labels, or none measured, with the usual one."""
    from hawknb.triage.calibration import cause_knots

    best = Hypothesis("upstream_data", 0.05)
    assert cause_knots(None) == cause_knots(1.0) == cause_knots(LABELS_BLIND) == CAUSE_KNOTS
    assert cause_knots(LABELS_BLIND - 0.01) == cause_knots(0.0) == BLIND_CAUSE_KNOTS
    assert calibrated(best, None, 0.0) == pytest.approx(_interp(BLIND_CAUSE_KNOTS, 0.05))
    assert calibrated(best, None, 0.9) == calibrated(best, None) == _interp(CAUSE_KNOTS, 0.05)


def test_the_fit_reads_blind_windows_apart():
    """fit_calibration fits the blind map on the blind runs only and applies it to them."""
    from benchmarks.fit_calibration import apply, blind, fit_maps

    def row(support: float, ok: bool, seen: float | None) -> dict:
        # a snapshot with a mechanism found inside it: the kind the blind map is for
        return {**_row(0.5, ok), "support": support, "labels_seen": seen, "mechanism": 0.8}

    # with labels: faint support is wrong; blind: faint support is as right as strong support
    rows = [row(0.02, False, 1.0) for _ in range(10)] + [row(0.8, True, 1.0) for _ in range(10)]
    rows += [row(0.02, i % 5 != 0, 0.2) for i in range(10)] + [
        row(0.8, True, 0.2) for _ in range(5)
    ]
    assert not blind(rows[0]) and blind(rows[-1]) and not blind(row(0.1, True, None))
    cause, _none, blind_map, _thin = fit_maps(rows)
    assert _interp(tuple(cause), 0.02) < 0.1 < 0.7 < _interp(tuple(blind_map), 0.02)
    judged = apply(rows, cause, None, blind_map)
    faint = [r["verdict"]["confidence"] for r in judged if r["support"] == 0.02]
    assert max(faint[:10]) < 0.1 and min(faint[10:]) > 0.7


def test_the_verdict_records_how_many_labels_its_window_had(tmp_path):
    """Labels that have not arrived for the hours after the onset are recorded on the verdict
    finding (what the blind map is chosen by); with every label in, the share is 1."""
    path = _workspace(tmp_path / "ws", 0.3)
    serving = pd.read_parquet(path / "serving.parquet")
    rng = np.random.default_rng(1)
    serving["label"] = (rng.random(len(serving)) < serving["prediction"]).astype(float)
    full = tmp_path / "full"
    shutil.copytree(path, full)
    serving.to_parquet(full / "serving.parquet")
    late = serving.copy()
    late.loc[late.index[-10 * 20 :], "label"] = np.nan  # the last ten hours: not arrived yet
    late.to_parquet(path / "serving.parquet")
    seen = {}
    for name, ws in (("full", full), ("late", path)):
        inv = hawknb.triage(ws, progress=False)
        seen[name] = inv.finding("verdict").evidence["labels_seen"]
    assert seen["full"] == 1.0
    assert seen["late"] < LABELS_BLIND


def test_a_blind_window_says_so_in_the_summary():
    from hawknb.triage.calibration import blind_note

    note = blind_note("bad_snapshot", 0.12)
    assert "12% of its labels" in note and "6 h" in note
    assert blind_note("none", 0.1) == ""
    assert blind_note("bad_snapshot", LABELS_BLIND) == blind_note("upstream_data", None) == ""


def test_a_snapshot_with_nothing_inside_it_is_not_excused_by_late_labels():
    """The blind map excuses support that late labels kept small; a snapshot named with no
    bad activation, weight change or training anomaly inside it is weak for another reason,
    so it reads the ordinary map even on a blind window (and its summary does not blame the
    labels); a snapshot with a mechanism, or a data break, still reads the blind map."""
    from hawknb.triage.calibration import blind_note, excused_by_labels

    empty = Hypothesis("bad_snapshot", 0.12, snapshot="s2", mechanism=0.0)
    broken = Hypothesis("bad_snapshot", 0.12, snapshot="s2", layer="net.0", mechanism=0.8)
    data = Hypothesis("upstream_data", 0.12)
    usual = min(_interp(CAUSE_KNOTS, 0.12), UNEXPLAINED_SNAPSHOT)
    assert calibrated(empty, None, 0.1) == pytest.approx(usual)
    blind_read = pytest.approx(_interp(BLIND_CAUSE_KNOTS, 0.12))
    assert calibrated(broken, None, 0.1) == blind_read and calibrated(data, None, 0.1) == blind_read
    # with the maps in place the difference is a moderate lead against a near certainty
    assert calibrated(empty, None, 0.1) < MODERATE < calibrated(broken, None, 0.1)
    assert excused_by_labels(0.0, 0.1) is None and excused_by_labels(None, 0.1) == 0.1
    assert blind_note("bad_snapshot", excused_by_labels(0.0, 0.1)) == ""


def test_the_fit_reads_an_empty_snapshot_as_seen():
    """fit_calibration chooses the map as the triage does; runs recorded before the mechanism
    was take a snapshot named without a layer as one with nothing inside it."""
    from benchmarks.fit_calibration import blind

    def row(layer: str | None, **extra) -> dict:
        verdict = {"cause": "bad_snapshot", "layer": layer, "confidence": 0.5}
        return {"verdict": verdict, "support": 0.1, "labels_seen": 0.1, **extra}

    assert not blind(row(None)) and blind(row("net.0"))
    assert not blind(row("net.0", mechanism=0.0)) and blind(row(None, mechanism=0.65))


def test_rows_per_hour_is_each_models_median_window_scaled_to_an_hour():
    import polars as pl

    from hawknb.triage.calibration import rows_per_hour

    ts = pd.date_range("2026-03-01", periods=8, freq="30min", tz="UTC")
    # model a: two experiments of 5 and 7 rows per half hour (24 an hour); model b: 30 rows
    # per half hour but one window of 2 (its median is still 30: 60 an hour)
    frames = [
        pd.DataFrame({"model": "a", "experiment": "x", "ts": ts, "rows": 5}),
        pd.DataFrame({"model": "a", "experiment": "y", "ts": ts, "rows": 7}),
        pd.DataFrame({"model": "b", "experiment": "x", "ts": ts, "rows": [30] * 7 + [2]}),
    ]
    health = pl.from_pandas(pd.concat(frames))
    assert rows_per_hour(health) == pytest.approx((24 + 60) / 2)
    assert rows_per_hour(health.filter(pl.col("ts") == health["ts"].min())) is None
    assert rows_per_hour(health.head(0)) is None and rows_per_hour(health.drop("rows")) is None


def test_a_none_on_a_thin_log_reads_its_own_map():
    """No cause found on a few rows per model and hour is absence of evidence more often:
    the same doubt is read with THIN_NONE_KNOTS there, with NONE_KNOTS on a denser log or
    when the density was not measured."""
    from hawknb.triage.calibration import THIN_LOG, THIN_NONE_KNOTS, none_knots

    ev = NoneEvidence(anomaly=0.6, moved=0.2)
    assert none_knots(None) == none_knots(THIN_LOG) == NONE_KNOTS
    assert none_knots(THIN_LOG - 1) == none_knots(1.0) == THIN_NONE_KNOTS
    thin = none_confidence(dataclasses.replace(ev, rows_per_hour=THIN_LOG / 2))
    dense = none_confidence(dataclasses.replace(ev, rows_per_hour=THIN_LOG * 2))
    assert thin == pytest.approx(_interp(THIN_NONE_KNOTS, doubt(ev)))
    assert dense == none_confidence(ev) == pytest.approx(_interp(NONE_KNOTS, doubt(ev)))


def test_the_fit_reads_thin_logs_apart():
    from benchmarks.fit_calibration import apply, fit_maps, thin

    def row(ok: bool, rate: float | None) -> dict:
        verdict = {"cause": "none", "confidence": 0.5}
        ev = {"anomaly": 0.6, "moved": 0.2, "rows_per_hour": rate}
        return {
            "verdict": verdict,
            "truth": {"cause": "none" if ok else "bad_snapshot"},
            "score": {"cause": ok, "model": ok},
            "support": 0.0,
            "evidence": ev,
        }

    # dense: 9 of 10 `none` verdicts right; thin: 2 of 10
    rows = [row(i != 0, 48.0) for i in range(10)] + [row(i < 2, 12.0) for i in range(10)]
    assert not thin(rows[0]) and thin(rows[-1]) and not thin(row(True, None))
    _cause, none, _blind, thin_map = fit_maps(rows)
    d = doubt(NoneEvidence(anomaly=0.6, moved=0.2))
    assert _interp(tuple(thin_map), d) == pytest.approx(0.2)
    # the map in place, capped at the thin runs' share right; no anomaly at all stays sure
    assert _interp(tuple(thin_map), 0.0) == NONE_KNOTS[0][1]
    assert [x for x, _ in thin_map] == [x for x, _ in NONE_KNOTS]
    assert _interp(tuple(none), d) == pytest.approx(0.9)
    judged = apply(rows, list(CAUSE_KNOTS), none, list(BLIND_CAUSE_KNOTS), thin_map)
    assert [r["verdict"]["confidence"] for r in judged[::10]] == pytest.approx([0.9, 0.2])


def test_the_triage_records_how_thin_its_log_was(tmp_path):
    """The hourly workspace serves 20 rows an hour: recorded on the none evidence."""
    inv = hawknb.triage(_workspace(tmp_path / "ws", 0.2), progress=False)
    assert inv.finding("verdict").evidence["none_evidence"]["rows_per_hour"] == 20.0


def test_a_none_on_a_thin_log_says_the_log_is_thin():
    """The reader of a hedged `none` on a thin log learns why: more rows, not another
    hypothesis, is the next step. A confident `none` and a dense log read as before."""
    from hawknb.triage.calibration import THIN_LOG

    ev = NoneEvidence(anomaly=1.0, severity=7.5, rows_per_hour=12.0)
    low = none_summary("ctr moved", LOW - 0.1, ev)
    assert low.startswith("low confidence: no cause found (ctr moved)")
    assert low.endswith(
        "about 12 rows per model and hour, too few to show a change on a small arm or a few % of rows"
    )
    assert "about 12 rows" in none_summary("ctr moved", MODERATE - 0.1, ev)
    dense = dataclasses.replace(ev, rows_per_hour=THIN_LOG)
    assert "rows per model and hour" not in none_summary("ctr moved", LOW - 0.1, dense)
    assert none_summary("no top-line anomaly", MODERATE, ev) == "no top-line anomaly"


def test_a_snapshot_with_nothing_inside_it_is_never_stated_as_a_finding():
    """However strong the same-hours comparison, a snapshot verdict with no bad activation,
    weight change or training anomaly behind it is capped (0 of 5 such tuning verdicts were
    right), so its summary reads as the weak lead it is; one with a mechanism is not."""
    for support in (0.05, 0.3, 0.9):
        empty = Hypothesis("bad_snapshot", support, snapshot="s2", mechanism=0.0)
        broken = Hypothesis("bad_snapshot", support, snapshot="s2", layer="l", mechanism=0.8)
        assert calibrated(empty, None) <= UNEXPLAINED_SNAPSHOT < LOW
        assert calibrated(broken, None) == pytest.approx(_interp(CAUSE_KNOTS, support))
    assert calibrated(Hypothesis("upstream_data", 0.9), None) == _interp(CAUSE_KNOTS, 0.9)


def test_the_fit_caps_an_empty_snapshot_as_the_triage_does():
    from benchmarks.fit_calibration import apply, unexplained

    def row(layer: str | None, support: float) -> dict:
        verdict = {"cause": "bad_snapshot", "layer": layer, "confidence": 0.5}
        hyps = [("bad_snapshot", support, 1.0)]  # no runner-up: no close call
        return {"verdict": verdict, "support": support, "labels_seen": 1.0, "hypotheses": hyps}

    empty, broken = row(None, 0.9), row("net.0", 0.9)
    assert unexplained(empty) and not unexplained(broken)
    assert not unexplained({**empty, "mechanism": 0.7})
    judged = apply([empty, broken], list(CAUSE_KNOTS))
    assert judged[0]["verdict"]["confidence"] == UNEXPLAINED_SNAPSHOT
    assert judged[1]["verdict"]["confidence"] == _interp(CAUSE_KNOTS, 0.9)

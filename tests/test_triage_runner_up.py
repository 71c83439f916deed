"""The runner-up model (hawknb.triage.run._runner_up): when nothing about the model whose
predictions moved most explains a window, the next model whose predictions moved is weighed
too, and its cause wins when it explains more."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from hawknb.kernels.isolation import ModelIsolation, ModelLevel
from hawknb.triage import run
from hawknb.triage.findings import Finding
from hawknb.triage.hypotheses import Hypothesis
from hawknb.triage.investigation import Investigation
from hawknb.triage.models import ALL_EXPERIMENTS, MODEL_CONFIDENCE, Suspect, runner_up
from hawknb.triage.results import ModelsResult
from hawknb.triage.topline import Anomaly
from hawknb.triage.windows import WindowChoice

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _iso(rows: list[tuple[str, str, float]]) -> ModelIsolation:
    ranking = pl.DataFrame(rows, schema=["model", "experiment", "confidence"], orient="row")
    levels = {
        m: ModelLevel(
            m,
            tuple(sorted({e for mm, e, _ in rows if mm == m})),
            tuple(sorted({e for mm, e, p in rows if mm == m and p >= 0.5})),
            "model",
        )
        for m in {r[0] for r in rows}
    }
    return ModelIsolation(ranking, pl.DataFrame(), levels, T0, T0 + timedelta(hours=3))


TOP = Suspect("a", "ctl", ("ctl",), False, 0.4)


def test_runner_up_is_the_next_other_model_capped_at_the_suspects_confidence():
    iso = _iso(
        [("a", "ctl", 0.6), ("a", "trt", 0.5), ("b", ALL_EXPERIMENTS, 0.55), ("b", "trt", 0.3)]
    )
    alt = runner_up(iso, TOP)
    assert alt is not None and alt.model == "b"
    assert alt.experiment == "trt"  # the pooled row names the model's own experiment
    assert alt.confidence == TOP.confidence  # no better than the top model's explanation


def test_no_runner_up_when_no_other_model_moved():
    assert runner_up(_iso([("a", "ctl", 0.6), ("b", "ctl", MODEL_CONFIDENCE / 2)]), TOP) is None
    assert runner_up(_iso([("a", "ctl", 0.6)]), TOP) is None


def _choice(iso: ModelIsolation) -> WindowChoice:
    a = Anomaly("revenue", T0, T0 + timedelta(hours=2), -1, 5.0, 0.9, timedelta(minutes=30))
    f = Finding("models", checked="", decision="a's predictions degraded")
    return WindowChoice(a, f, 1.0, TOP, f, pl.DataFrame(), iso)


def test_the_runner_ups_snapshot_wins_when_the_suspect_explains_nothing(monkeypatch):
    iso = _iso([("a", "ctl", 0.6), ("b", "ctl", 0.5)])
    choice = _choice(iso)

    def fake(ws, inv, anomaly, suspect, bar):
        inv.findings.append(Finding("snapshot", checked="", decision=f"{suspect.model}'s A/B"))
        if suspect.model == "b":
            return [Hypothesis("bad_snapshot", 0.3, model="b", snapshot="b2")]
        return [Hypothesis("none", 0.1, model="a")]

    monkeypatch.setattr(run, "_model_hypotheses", fake)
    inv = Investigation(workspace=None)
    mine = fake(None, inv, choice.anomaly, TOP, None)
    inv.findings.insert(0, choice.finding)
    side = run._runner_up(None, choice.anomaly, choice, mine)  # type: ignore[arg-type]
    assert side is not None
    hyps = run.ranked(mine + side.get(run.HypothesesResult).hypotheses)
    assert hyps[0].cause == "bad_snapshot" and hyps[0].model == "b"
    run._adopt(inv, side, TOP)
    assert [f.decision for f in inv.findings if f.step == "snapshot"] == ["b's A/B"]
    assert inv.get(ModelsResult).suspect.model == "b"
    assert "b" in inv.finding("models").decision


def test_no_side_walk_when_the_suspect_has_a_cause(monkeypatch):
    choice = _choice(_iso([("a", "ctl", 0.6), ("b", "ctl", 0.5)]))
    called = []
    monkeypatch.setattr(run, "_model_hypotheses", lambda *a: called.append(a) or [])
    mine = [Hypothesis("upstream_data", 0.3, model="a"), Hypothesis("none", 0.1, model="a")]
    assert run._runner_up(None, choice.anomaly, choice, mine) is None  # type: ignore[arg-type]
    assert not called


def test_inputs_override_moved_predictions_only_when_unusual_for_their_history():
    """A few features drifting at once happens at ordinary times too: the inputs name the
    model over predictions that moved somewhat only when an input peak (a break unusual for
    the model's own history) lies near the onset."""
    from hawknb.triage.models import _unusual_inputs, health_every

    a = Anomaly("revenue", T0, T0 + timedelta(hours=2), -1, 5.0, 0.9, timedelta(minutes=30))
    key = ("input-peaks", health_every(a))
    near = {key: [(9.0, T0 + timedelta(hours=1), "b", "12 of b's input features stepped")]}
    far = {key: [(9.0, T0 + timedelta(days=3), "b", "12 of b's input features stepped")]}
    assert _unusual_inputs(None, a, "b", near)  # type: ignore[arg-type]
    assert not _unusual_inputs(None, a, "a", near)  # type: ignore[arg-type]
    assert not _unusual_inputs(None, a, "b", far)  # type: ignore[arg-type]
    assert not _unusual_inputs(None, a, "b", {key: []})  # type: ignore[arg-type]

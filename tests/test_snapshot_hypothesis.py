"""The snapshot hypothesis weighs which arms a snapshot served and what its A/B said.

Two snapshots of one model rolled out at the same hour share the model's training partitions
(training.parquet is per model and date), so their training-data findings are identical; what
tells them apart is the arm each serves: only the one serving the degraded arm can explain it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.activation_drivers import OutlierRows
from hawknb.kernels.rollout import SnapshotIsolation
from hawknb.kernels.weights import LayerSuspect, TensorChange, WeightComparison
from hawknb.triage import causes, diagnosis, snapshot
from hawknb.triage.diagnosis import Diagnosis
from hawknb.triage.models import Suspect
from hawknb.triage.topline import Anomaly

ONSET = datetime(2025, 2, 18, 14, tzinfo=UTC)


class _Ws:
    """Just the serving log: which snapshot served which arm when."""

    def __init__(self) -> None:
        ts = [ONSET + timedelta(minutes=10 * i) for i in range(-12, 12)]
        rows = []
        for t in ts:
            after = t >= ONSET
            rows.append(("m", "ctl", "benign" if after else "old", t))
            rows.append(("m", "trt", "leaky" if after else "old", t))
        self.serving = pl.DataFrame(
            rows, schema=["model", "experiment", "snapshot", "ts"], orient="row"
        ).lazy()


def _anomaly() -> Anomaly:
    return Anomaly(
        "m_metric", ONSET, ONSET + timedelta(hours=2), -1, 3.0, 0.9, timedelta(minutes=10)
    )


@pytest.fixture
def anomalous_training(monkeypatch):
    """Every snapshot diagnosed as trained on anomalous partitions (the same partitions)."""
    training = SimpleNamespace(
        verdict=True,
        volume_only=False,
        loss_only=False,
        reasons=("label mean 0.40 vs usual 0.12",),
        confidence=0.99,
    )

    def fake(ws, model, snap, onset):
        return Diagnosis(training=training), []

    monkeypatch.setattr(diagnosis, "diagnose_snapshot", fake)


def _iso(suspect: str | None, confidence: float) -> SnapshotIsolation:
    return SnapshotIsolation(
        model="m",
        experiment="trt",
        suspect=suspect,
        is_snapshot_cause=suspect is not None,
        confidence=confidence,
        rolled_out="leaky",
        snapshots=pl.DataFrame(),
        evidence=pl.DataFrame(),
    )


@pytest.mark.parametrize("specific", [True, False])
def test_snapshot_serving_only_healthy_arms_explains_less(anomalous_training, specific):
    ws, anomaly = _Ws(), _anomaly()
    suspect = Suspect("m", "trt", ("trt",), specific, 0.4)
    leaky, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, None, "leaky")
    benign, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, None, "benign")
    assert leaky.cause == benign.cause == "training_data"
    assert leaky.support > 1.5 * benign.support
    assert any("serves only ctl" in e for e in benign.evidence_against)
    assert not any("serves only" in e for e in leaky.evidence_against)


def test_every_arm_degraded_exonerates_no_arm(anomalous_training):
    ws, anomaly = _Ws(), _anomaly()
    suspect = Suspect("m", "trt", ("ctl", "trt"), False, 0.4)
    leaky, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, None, "leaky")
    benign, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, None, "benign")
    assert leaky.support == pytest.approx(benign.support)


def test_a_weak_ab_conviction_never_lowers_the_support(anomalous_training):
    """A same-hours A/B that leans towards the snapshot is evidence for it: with it, the
    snapshot may not score below what its mechanism earns without any A/B."""
    ws, anomaly = _Ws(), _anomaly()
    suspect = Suspect("m", "trt", ("trt",), True, 0.4)
    untested, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, None, "leaky")
    convicted, _, _ = causes.snapshot_hypothesis(ws, anomaly, suspect, _iso("leaky", 0.2), "leaky")
    assert convicted.support >= untested.support
    assert convicted.support > 0


def _rolled(chance_z: float | None) -> SnapshotIsolation:
    """The same-hours A/B of 'leaky' in trt: undecided, with a row-level lean (z 5)."""
    return SnapshotIsolation(
        model="m",
        experiment="trt",
        suspect=None,
        is_snapshot_cause=False,
        confidence=0.3,
        rolled_out="leaky",
        snapshots=pl.DataFrame({"snapshot": ["leaky"], "timing": [1.0]}),
        evidence=pl.DataFrame(
            {
                "snapshot": ["leaky"],
                "series": ["nmse"],
                "shared_windows": [3],
                "z": [5.0],
                "chance_z": pl.Series([chance_z], dtype=pl.Float64),
                "explained": [1.0],
            }
        ),
    )


def test_arm_control_needs_a_lean_beyond_the_usual_retrain_difference():
    """Only the arm that got the new snapshot degraded: the arms convict it only when its
    same-hours A/B leans towards it by more than earlier snapshots differed from each other."""
    ws, anomaly = _Ws(), _anomaly()
    suspect = Suspect("m", "trt", ("trt",), True, 0.6)
    typical = snapshot._experiment_control(ws, anomaly, suspect, [_rolled(0.8)])
    assert typical is None
    beyond = snapshot._experiment_control(ws, anomaly, suspect, [_rolled(4.0)])
    assert beyond is not None and beyond.suspect == "leaky" and beyond.is_snapshot_cause
    unknown = snapshot._experiment_control(ws, anomaly, suspect, [_rolled(None)])
    assert unknown is not None and unknown.suspect == "leaky"


def test_a_snapshot_is_compared_with_what_it_replaced_not_a_sibling():
    """'benign' (ctl) and 'leaky' (trt) rolled out in the same hour; each replaced 'old'. The
    sibling on the other arm is no baseline for either (it may be the broken one)."""
    ws = _Ws()
    assert diagnosis.served_before(ws, "m", "benign") == {"old"}
    assert diagnosis.served_before(ws, "m", "leaky") == {"old"}
    assert diagnosis.served_before(ws, "m", "old") == set()
    assert diagnosis.siblings(ws, "m", "benign") == {"leaky"}
    assert diagnosis.siblings(ws, "m", "leaky") == {"benign"}
    assert diagnosis.siblings(ws, "m", "old") == set()


def _tensor(layer: str) -> TensorChange:
    return TensorChange(f"{layer}.weight", layer, (4, 4), 16, 0, 0, 0.3, 0.01, 30.0, 9.0, True, "")


def test_a_blowup_at_an_activation_names_the_layer_feeding_it():
    """Rows blow up first at a parameter-free node after net.2; the weights rank a later
    layer (net.4) as the most changed. The verdict names the first bad layer, net.2."""
    blowup = OutlierRows(
        node="relu_1",
        layer=None,
        bad=np.arange(100) < 5,
        bad_fraction=0.05,
        ratio=40.0,
        reference="previous snapshot",
    )
    weights = WeightComparison(
        tensors=(_tensor("net.0"), _tensor("net.2"), _tensor("net.4")),
        suspect_layers=(
            LayerSuspect("net.4", 9.0, 0, 0, "net.4.weight", "9x"),
            LayerSuspect("net.2", 4.0, 0, 0, "net.2.weight", "4x"),
        ),
        n_stable=3,
    )
    diag = Diagnosis(weights=weights, blowup=blowup, blowup_layer="net.2")
    for convicted in (True, False):
        cause, strength, layer, _ = causes._mechanism(diag, convicted)
        assert (cause, layer) == ("bad_snapshot", "net.2")
        assert strength > 0.5
    alone = Diagnosis(blowup=blowup, blowup_layer="net.2")
    assert causes._mechanism(alone, False)[2] == "net.2"


def test_a_whole_node_blowup_before_the_trigger_rows_names_the_earlier_layer():
    """Every row blew up at net.2 (its bias); the triggered minority stands out at net.4."""
    blowup = OutlierRows(
        node="linear_2",
        layer="net.4",
        bad=np.arange(100) < 2,
        bad_fraction=0.02,
        ratio=22.0,
        reference="previous snapshot",
        whole_node="linear_1",
        whole_layer="net.2",
    )
    weights = WeightComparison(
        tensors=(_tensor("net.0"), _tensor("net.2"), _tensor("net.4")),
        suspect_layers=(LayerSuspect("net.2", 900.0, 0, 0, "net.2.bias", "900x"),),
        n_stable=3,
    )
    diag = Diagnosis(weights=weights, blowup=blowup)
    assert causes._mechanism(diag, True)[2] == "net.2"
    assert causes._mechanism(Diagnosis(blowup=blowup), False)[2] == "net.2"


def _trained(loss_only: bool) -> SimpleNamespace:
    why = "final loss 0.33 vs other snapshots' 0.30" if loss_only else "label mean 0.40 vs 0.12"
    return SimpleNamespace(
        verdict=True, volume_only=False, loss_only=loss_only, reasons=(why,), confidence=0.8
    )


def _one_layer_changed() -> SimpleNamespace:
    """Weights of one layer changed ~290x their usual snapshot-to-snapshot change."""
    return SimpleNamespace(
        suspect=True, suspect_layers=(SimpleNamespace(layer="proj", score=286.0),), tensors=()
    )


@pytest.mark.parametrize("convicted", [True, False])
def test_a_run_that_ended_worse_yields_to_a_layer_that_changed(convicted):
    """A final loss above the others' is what a snapshot with one corrupted layer shows too:
    the layer explains it; shifted labels still name the training data, and a higher loss
    with nothing inside the snapshot still does."""
    weights = _one_layer_changed()
    cause, strength, layer, _ = causes._mechanism(
        Diagnosis(training=_trained(loss_only=True), weights=weights), convicted
    )
    assert (cause, layer) == ("bad_snapshot", "proj") and strength > 0.4
    cause, _, layer, _ = causes._mechanism(
        Diagnosis(training=_trained(loss_only=False), weights=weights), convicted
    )
    assert (cause, layer) == ("training_data", None)
    cause, strength, _, _ = causes._mechanism(
        Diagnosis(training=_trained(loss_only=True)), convicted
    )
    assert cause == "training_data" and strength >= 0.6

"""A blow-up on a few % of one model's rows, labels hours late: the window is the right one,
but model isolation names another model whose health moved a little by chance, and its causes
explain nothing. The rollout at the onset whose own rows clearly differ names the competing
suspect (triage.windows.rollout_suspect), on an independently generated hard workspace
(benchmarks.indepgen, a tuning seed)."""

from __future__ import annotations

import json

import pytest
from _cases import generated_walk

from hawknb.triage import windows
from hawknb.triage.models import Suspect
from hawknb.triage.results import ToplineResult


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    return generated_walk(tmp_path_factory, "activation_blowup", 11)


def test_the_blown_up_snapshot_is_the_verdict(walked):
    truth, _, inv = walked
    v = inv.verdict.to_dict()
    got = (v["cause"], v["metric"], v["model"], v["snapshot"], v["layer"])
    want = ("bad_snapshot", truth["metric"], truth["model"], truth["snapshot"], truth["layer"])
    assert got == want, json.dumps(v, default=str)[:400]
    assert truth["features"][0] in v["features"]
    # its rows far beyond the whole range of the rows before name the model in the models step
    # itself (before the range z, another model was named there and the rollout examined too)
    assert inv.finding("models").decision.startswith(f"{truth['model']}'s predictions changed")
    assert "far beyond the whole range" in inv.finding("models").decision


def test_rollout_suspect_names_the_model_and_arms(walked):
    truth, ws, inv = walked
    anomaly = inv.get(ToplineResult).anomaly
    other = Suspect("someone-else", "ctl", ("ctl",), False, 0.2)
    sus = windows.rollout_suspect(ws, anomaly, other)
    assert sus is not None and sus.model == truth["model"]
    assert sus.confidence == 0.2  # capped at the suspect's: it explains the window no better
    # the model itself is never its own competitor
    assert windows.rollout_suspect(ws, anomaly, sus) is None

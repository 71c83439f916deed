"""A distractor window that some model's predictions happen to move with, but that no cause
explains, does not end the walk at `none` when the next window -- another incident -- has a
cause (triage.run._next_window), on an independently generated hard workspace
(benchmarks.indepgen, a tuning seed): a partial activation blow-up on feed-ranker, a 5% drop
of feed_engagements found only as a sustained shift, and a bigger rise of support_tickets a
week earlier that notif-open's predictions moved with by chance."""

from __future__ import annotations

import json

import pytest
from _cases import generated_walk

import hawknb


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    return generated_walk(tmp_path_factory, "activation_blowup", 6)


def test_the_incidents_window_and_its_cause_win(walked):
    truth, _, inv = walked
    v = inv.verdict.to_dict()
    got = (v["cause"], v["metric"], v["model"], v["snapshot"], v["layer"])
    want = ("bad_snapshot", truth["metric"], truth["model"], truth["snapshot"], truth["layer"])
    assert got == want, json.dumps(v, default=str)[:400]
    assert truth["features"][0] in v["features"]
    # the window had to be carried and its runner-up is a close call for another cause: not
    # stated as certain. (Its labels were blind, so its support is read with the blind map,
    # on which every such tuning verdict was right: benchmarks/results/calibration.md; with
    # the map for seen labels it read under 0.4.)
    evidence = inv.finding("verdict").evidence
    assert evidence["labels_seen"] < 0.5
    assert v["confidence"] < 0.8


def test_the_findings_say_which_window_was_walked_first_and_why_not(walked):
    truth, _, inv = walked
    top = inv.finding("topline")
    assert top.evidence["metric"] == truth["metric"]
    first = top.evidence["first_window"]
    assert first["metric"] != truth["metric"]
    assert "whose causes explained nothing" in top.decision
    # every later step is the adopted window's: the models step names the incident's model
    assert truth["model"] in inv.finding("models").decision


def test_a_window_asked_for_is_not_changed(walked):
    """With --metric / --start the person chose the window: no other window is walked."""
    _, ws, first = walked
    asked = first.finding("topline").evidence["first_window"]
    inv = hawknb.triage(ws, metric=asked["metric"], progress=False)
    assert inv.verdict.metric == asked["metric"]
    assert "first_window" not in inv.finding("topline").evidence

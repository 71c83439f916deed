"""The ground truth is real: each planted fault is visible where the truth says, and only there."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from hawknb.simulate import Truth, simulate
from hawknb.workspace import Workspace
from hawknb.workspace import contract as c

SIZE = {"days": 5, "rows_per_hour": 16, "features_per_model": 10}


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("truth")
    cache: dict[tuple[str, int], tuple[Path, Truth]] = {}

    def get(kind: str, seed: int) -> tuple[Path, Truth]:
        if (kind, seed) not in cache:
            d = root / f"{kind}_{seed}"
            cache[(kind, seed)] = (d, simulate(d, kind, seed, **SIZE))
        return cache[(kind, seed)]

    return get


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def _shift(ws: Workspace, onset: dt.datetime) -> dict[str, float]:
    """Per feature: |mean after - mean before| over the day around the onset, in sd units."""
    s = ws.serving.filter(
        (pl.col(c.TS) >= onset - dt.timedelta(hours=24))
        & (pl.col(c.TS) < onset + dt.timedelta(hours=12))
    ).collect()
    pre = s.filter(pl.col(c.TS) < onset)
    post = s.filter(pl.col(c.TS) >= onset + dt.timedelta(hours=1))
    out = {}
    for f in ws.feature_columns:
        a, b = pre[f].drop_nulls(), post[f].drop_nulls()
        sd = a.std() or 1e-9
        out[f] = abs((b.mean() - a.mean()) / sd)
    return out


def _stat(ws: Workspace, node: str, stat: str, onset: dt.datetime) -> tuple[float, float]:
    t = (
        ws.table("lineage_stats")
        .filter((pl.col(c.NODE) == node) & (pl.col(c.STAT) == stat))
        .collect()
    )
    pre = t.filter((pl.col(c.TS) < onset) & (pl.col(c.TS) >= onset - dt.timedelta(hours=24)))
    post = t.filter(
        (pl.col(c.TS) >= onset + dt.timedelta(hours=1))
        & (pl.col(c.TS) < onset + dt.timedelta(hours=12))
    )
    return float(pre[c.VALUE].mean()), float(post[c.VALUE].mean())


def _not_incident(truth: Truth) -> set[str]:
    """Features legitimately moving for other reasons: the drift distractors."""
    return {d["feature"] for d in truth.distractors if d["kind"] == "organic_drift"}


@pytest.mark.parametrize("seed", [0, 1])
def test_upstream_fault_is_in_exactly_the_downstream_features(sims, seed: int) -> None:
    d, truth = sims("upstream_data", seed)
    ws = Workspace.open(d)
    onset = _ts(truth.onset)
    shift = _shift(ws, onset)
    down = set(truth.downstream_features)
    graph = ws.lineage()
    import networkx as nx

    assert down == {
        n for n in nx.descendants(graph, truth.upstream[0]) if graph.nodes[n]["kind"] == "feature"
    }
    for f in down:
        assert shift[f] > 0.8, (f, shift[f], truth.details["subtype"])
    for f, v in shift.items():
        if f not in down and f not in _not_incident(truth):
            assert v < 0.6, (f, v)
    # the source's lineage stats show the break, an untouched source's do not
    root = truth.upstream[0]
    pre, post = _stat(ws, root, "mean", onset)
    npre, npost = _stat(ws, root, "null_rate", onset)
    assert abs(post - pre) > 0.3 * abs(pre) or npost - npre > 0.3
    assert set(truth.features) == down & set(ws.features(truth.model))
    assert truth.model in truth.affected_models


def test_feature_coverage_drops_one_feature_to_its_default(sims) -> None:
    d, truth = sims("feature_coverage", 1)
    ws = Workspace.open(d)
    onset = _ts(truth.onset)
    (f,) = truth.downstream_features
    assert truth.features == [f]
    s = ws.serving.select(c.TS, f).drop_nulls().collect()
    after = s.filter(pl.col(c.TS) >= onset)[f]
    before = s.filter(pl.col(c.TS) < onset)[f]
    mode_after = after.mode()[0]
    assert (after == mode_after).mean() > 0.6
    assert (before == mode_after).mean() < 0.05
    shift = _shift(ws, onset)
    for g, v in shift.items():
        if g != f and g not in _not_incident(truth):
            assert v < 0.6, (g, v)
    pre, post = _stat(ws, truth.upstream[0], "mean", onset)
    assert abs(post - pre) > 0.2 * abs(pre) + 1e-6


def _layer_tensors(ws: Workspace, model: str, snapshot: str) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in ws.load_program(model, snapshot).state_dict.items()}


def _previous(ws: Workspace, truth: Truth) -> str:
    r = (
        ws.table("rollouts")
        .filter(
            (pl.col(c.MODEL) == truth.model)
            & (pl.col(c.EXPERIMENT) == truth.experiment)
            & (pl.col(c.TS) < _ts(truth.onset))
        )
        .sort(c.TS)
        .collect()
    )
    return r[c.SNAPSHOT][-1]


@pytest.mark.parametrize("seed", [0, 4])
def test_bad_snapshot_is_broken_at_its_layer(sims, seed: int) -> None:
    d, truth = sims("bad_snapshot", seed)
    ws = Workspace.open(d)
    r = ws.table("rollouts").filter(pl.col(c.SNAPSHOT) == truth.snapshot).sort(c.TS).collect()
    assert r[c.TS][0] == _ts(truth.onset) and r[c.EXPERIMENT][0] == truth.experiment
    bad = _layer_tensors(ws, truth.model, truth.snapshot)
    good = _layer_tensors(ws, truth.model, _previous(ws, truth))
    change = {}
    for k in bad:
        b, g = bad[k].double(), good[k].double()
        finite = torch.isfinite(b).all()
        change[k.rsplit(".", 1)[0]] = max(
            change.get(k.rsplit(".", 1)[0], 0.0),
            float("inf") if not finite else float((b - g).norm() / (g.norm() + 1e-9)),
        )
    assert max(change, key=change.get) == truth.layer
    assert sorted(change.values())[-2] < 0.2  # the other layers only drift


def test_activation_blowup_fires_only_above_the_threshold(sims) -> None:
    d, truth = sims("activation_blowup", 0)
    ws = Workspace.open(d)
    (f,) = truth.features
    thr = truth.details["threshold"]
    rows = ws.serving.filter(pl.col(c.SNAPSHOT) == truth.snapshot).collect()
    pred = rows[c.PREDICTION].to_numpy()
    x = rows[f].to_numpy()
    bad = ~np.isfinite(pred)
    assert bad.sum() > 0
    assert (x[bad] > thr).all()
    assert np.isfinite(pred[x <= thr]).all()
    # the blow-up lives in net.2: its weights overflow float32 arithmetic
    w = _layer_tensors(ws, truth.model, truth.snapshot)
    assert truth.layer == "net.2"
    assert w["net.2.weight"].abs().max() > 1e30
    assert w["net.0.weight"].abs().max() < 1e30


def test_training_data_snapshot_overpredicts_after_inflated_partitions(sims) -> None:
    d, truth = sims("training_data", 0)
    ws = Workspace.open(d)
    tr = ws.table("training").filter(pl.col(c.MODEL) == truth.model).collect()
    bad = truth.details["bad_partition"]
    jump = tr.filter(pl.col(c.PARTITION).cast(pl.String) == bad)[c.LABEL_MEAN][0]
    assert jump > 3 * tr[c.LABEL_MEAN].median()
    snaps = ws.table("snapshots").filter(pl.col(c.SNAPSHOT) == truth.snapshot).collect()
    assert (
        snaps[c.TRAIN_END][0].date() > dt.date.fromisoformat(bad) >= snaps[c.TRAIN_START][0].date()
    )
    s = ws.serving.filter(pl.col(c.MODEL) == truth.model).drop_nulls(c.LABEL).collect()
    culprit = s.filter(pl.col(c.SNAPSHOT) == truth.snapshot)
    others = s.filter(pl.col(c.SNAPSHOT) != truth.snapshot)
    ratio_bad = culprit[c.PREDICTION].mean() / culprit[c.LABEL].mean()
    ratio_ok = others[c.PREDICTION].mean() / others[c.LABEL].mean()
    assert ratio_bad > 1.5 * ratio_ok


@pytest.mark.parametrize(
    ("kind", "seed"),
    [
        ("upstream_data", 0),
        ("feature_coverage", 1),
        ("bad_snapshot", 0),
        ("activation_blowup", 0),
        ("training_data", 0),
    ],
)
def test_the_truth_metric_shows_the_anomaly(sims, kind: str, seed: int) -> None:
    d, truth = sims(kind, seed)
    ws = Workspace.open(d)
    m = (
        ws.metrics.filter(
            (pl.col(c.METRIC) == truth.metric) & (pl.col(c.SEGMENT) == c.TOP_LINE_SEGMENT)
        )
        .sort(c.TS)
        .collect()
    )
    v = np.log(m[c.VALUE].to_numpy())
    onset = int((_ts(truth.onset) - m[c.TS][0]).total_seconds() // 3600)
    day_over_day = v[24:] - v[:-24]  # index i: hour i + 24 against hour i
    pre = day_over_day[: onset - 24]
    post = day_over_day[onset - 24 + 4 : onset - 24 + 12]  # after the ramp, for 8 hours
    assert abs(post.mean()) > 3 * pre.std() / np.sqrt(len(post)), (post.mean(), pre.std())
    assert abs(post.mean()) > 0.05  # a real incident, not a blip


def test_none_has_only_distractors(sims) -> None:
    d, truth = sims("none", 0)
    ws = Workspace.open(d)
    assert truth.cause == "none" and truth.features == [] and truth.upstream == []
    kinds = {x["kind"] for x in truth.distractors}
    assert kinds == {"organic_drift", "snapshot_rollout", "upstream_change"}
    # the distractors are really in the data
    roll = next(x for x in truth.distractors if x["kind"] == "snapshot_rollout")
    r = ws.table("rollouts").filter(pl.col(c.SNAPSHOT) == roll["snapshot"]).sort(c.TS).collect()
    assert r[c.TS][0] == _ts(roll["ts"])
    up = next(x for x in truth.distractors if x["kind"] == "upstream_change")
    pre, post = _stat(ws, up["node"], "row_count", _ts(up["ts"]))
    assert post < 0.85 * pre
    drift = next(x for x in truth.distractors if x["kind"] == "organic_drift")
    f = ws.serving.select(c.TS, drift["feature"]).drop_nulls().collect()
    start = _ts(drift["start"])
    a = f.filter(pl.col(c.TS) < start)[drift["feature"]]
    end = start + dt.timedelta(hours=drift["ramp_hours"])
    b = f.filter(pl.col(c.TS) >= end)[drift["feature"]]
    if b.len() > 20 and a.len() > 20:
        assert abs(b.mean() - a.mean()) > 0.3 * a.std()
    json.dumps(truth.to_dict())

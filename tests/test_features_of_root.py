"""The verdict's features are those under the upstream root it names, not under the walk's top
candidate when that top is a feature node the verdict does not call upstream."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl

from hawknb.triage.causes import features_of_root


def _ranking() -> SimpleNamespace:
    # ranked by the features step: a bystander first, then the root's two features
    table = pl.DataFrame(
        {
            "feature": ["bystander", "f_a", "f_b", "quiet"],
            "confidence": [0.9, 0.8, 0.7, 0.0],
            "drift_psi": [0.5, 0.4, 0.3, 0.0],
        }
    )
    return SimpleNamespace(table=table)


def _cand(node: str, explained: tuple[str, ...]) -> SimpleNamespace:
    return SimpleNamespace(node=node, explained=explained)


def test_features_follow_the_named_root_when_the_top_candidate_is_a_feature():
    top = _cand("bystander", ())
    root = _cand("src.orders", ("tbl.orders", "f_a", "f_b"))
    result = SimpleNamespace(
        top=top,
        candidates=(top, root),
        blast_radius=SimpleNamespace(nodes=("bystander",)),  # under the top candidate
    )
    assert features_of_root(_ranking(), result, "src.orders")[:2] == ["f_a", "f_b"]
    # without the named root, the top candidate's radius decides (the old behaviour)
    assert features_of_root(_ranking(), result)[0] == "bystander"


def test_same_root_as_the_top_keeps_its_blast_radius():
    top = _cand("src.orders", ("f_a",))
    result = SimpleNamespace(
        top=top, candidates=(top,), blast_radius=SimpleNamespace(nodes=("tbl", "f_a", "f_b"))
    )
    # the blast radius (all downstream) counts, not only what the walk saw change
    assert features_of_root(_ranking(), result, "src.orders")[:2] == ["f_a", "f_b"]

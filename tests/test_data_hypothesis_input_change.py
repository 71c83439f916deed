"""An upstream data break is a change of the model's inputs: a hypothesis whose features did
not move is no data break, however much the model's calibration moved for another reason."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl
import pytest

from hawknb.triage.causes import (
    PSI_NO_CHANGE,
    PSI_SIGNIFICANT,
    changed_factor,
    data_hypothesis,
    input_change,
)
from hawknb.triage.models import Suspect


def _ranking(
    psi: list[float],
    null_before: list[float] | None = None,
    null_after: list[float] | None = None,
    w1: list[float] | None = None,
    nonfinite_after: list[float] | None = None,
):
    n = len(psi)
    table = pl.DataFrame(
        {
            "feature": [f"f{i}" for i in range(n)],
            "confidence": [0.8] + [0.1] * (n - 1),
            "drift_psi": psi,
            "drift_wasserstein": w1 or [0.01] * n,
            "null_rate_before": null_before or [0.0] * n,
            "null_rate_after": null_after or [0.0] * n,
            "nonfinite_rate_before": [0.0] * n,
            "nonfinite_rate_after": nonfinite_after or [0.0] * n,
        }
    )
    return SimpleNamespace(table=table, top=lambda k=5: table["feature"].head(k).to_list())


def _suspect() -> Suspect:
    return Suspect("m", "control", ("control",), False, 0.8)


def test_input_change_is_the_largest_psi_of_the_named_features_values_or_nulls():
    r = _ranking([0.02, 0.6, float("nan")])
    assert input_change(r, ["f0"]) == pytest.approx(0.02)
    assert input_change(r, ["f0", "f1"]) == pytest.approx(0.6)
    # a feature without a PSI (no finite value on one side) cannot be judged: no evidence
    assert input_change(r, ["f0", "f2"]) == float("inf")
    # a coverage break: the values left are as they were, a third of them went missing
    cov = _ranking([0.01, 0.01], null_before=[0.0, 0.0], null_after=[0.3, 0.0])
    assert input_change(cov, ["f0"]) > PSI_SIGNIFICANT
    assert input_change(cov, ["f1"]) < PSI_NO_CHANGE
    # a NaN flood in a fifth of the rows: the finite values left are as they were
    nan = _ranking([0.01], nonfinite_after=[0.2])
    assert input_change(nan, ["f0"]) > PSI_SIGNIFICANT
    # 5% of the rows turned extreme: a quantile-binned PSI barely moves, W1 does
    extreme = _ranking([0.03], w1=[3.0])
    assert input_change(extreme, ["f0"]) > PSI_SIGNIFICANT
    # nothing to judge by: no evidence either way
    assert input_change(None, ["f0"]) == float("inf")
    assert input_change(r, []) == float("inf")


def test_changed_factor_is_zero_under_no_change_and_one_from_significant():
    assert changed_factor(0.0) == 0.0
    assert changed_factor(PSI_NO_CHANGE - 1e-9) == 0.0
    assert changed_factor(PSI_SIGNIFICANT) == 1.0
    assert changed_factor(float("inf")) == 1.0
    grid = [PSI_NO_CHANGE + i * (PSI_SIGNIFICANT - PSI_NO_CHANGE) / 10 for i in range(11)]
    values = [changed_factor(x) for x in grid]
    assert values == sorted(values) and 0.0 <= values[0] < values[5] < values[-1] == 1.0


def _walk(root: str = "src.a") -> SimpleNamespace:
    """A lineage walk that found an upstream node changed at the onset."""
    cand = SimpleNamespace(node=root, is_root=True, explained=["f0"])
    return SimpleNamespace(
        top=cand, candidates=[cand], targets=[], blast_radius=None, confidence=0.9, status={}
    )


def test_a_break_whose_features_did_not_move_is_no_data_break():
    # a benign upstream change: the walk found the node, the model's features did not move
    still = data_hypothesis(_suspect(), _ranking([0.03, 0.05, 0.02]), _walk(), 0.8)
    assert still.cause == "none" and still.features == [] and still.upstream == []
    assert "barely moved" in still.summary
    assert any("PSI" in e for e in still.evidence_against)
    assert 0.0 < still.support <= 0.25  # nothing explains the model's move: a weak `none`
    moved = data_hypothesis(_suspect(), _ranking([0.9, 0.05, 0.02]), None, 0.8)
    assert moved.cause == "upstream_data" and moved.features[0] == "f0"
    walked = data_hypothesis(_suspect(), _ranking([0.9, 0.05, 0.02]), _walk(), 0.8)
    assert walked.cause == "upstream_data" and walked.upstream == ["src.a"]
    # the full support when the inputs changed significantly, less when only moderately
    partly = data_hypothesis(_suspect(), _ranking([0.15, 0.05, 0.02]), None, 0.8)
    assert partly.cause == "upstream_data"
    assert 0.0 < partly.support < moved.support
    assert moved.support == pytest.approx(0.8 * (0.5 + 0.5 * 0.8) * 0.8)

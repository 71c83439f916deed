"""FeatureTable, ModelGraphTensorViewer and LineageExplorer: widget state and selection.

Each view is checked on data where the right answer is known (what crosses to the browser,
which nodes are flagged, which candidate ranks first), on every bad input the constructors
reject, and with property tests on the data preparation.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import polars as pl
import pytest
import traitlets
from hypothesis import given, settings
from hypothesis import strategies as st

from hawknb.widgets import FeatureTable, LineageExplorer, ModelGraphTensorViewer
from hawknb.widgets.features import prepare_distributions, prepare_sparklines, prepare_table
from hawknb.widgets.lineage import prepare_series
from hawknb.widgets.modelgraph import flag_nodes, prepare_graph, prepare_stats


def ranking() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "feature": ["ad_ctr", "user_age", "price"],
            "rank": [1, 2, 3],
            "score": [0.9, 0.4, float("nan")],
            "drift_psi": [1.2, None, 0.01],
            "evidence": ["PSI 1.2 at onset", "attribution shift", None],
        }
    )


# -- FeatureTable ------------------------------------------------------------------------------
class TestFeatureTable:
    def test_table_crosses_as_arrow_with_every_column(self) -> None:
        w = FeatureTable(ranking())
        back = w._table
        assert back.columns == ["feature", "rank", "score", "drift_psi", "evidence"]
        assert back["feature"].to_list() == ["ad_ctr", "user_age", "price"]
        assert math.isnan(back["score"][2])  # NaN stays NaN (evidence), null stays null
        assert back["drift_psi"][1] is None
        assert w.empty_reason == ""

    def test_pandas_input_and_input_not_mutated(self) -> None:
        pdf = ranking().to_pandas()
        before = pdf.copy()
        w = FeatureTable(pdf)
        assert w._table.height == 3
        pd.testing.assert_frame_equal(pdf, before)

    def test_selection_accepts_features_and_rejects_others(self) -> None:
        w = FeatureTable(ranking())
        seen: list[str] = []
        w.observe(lambda ch: seen.append(ch["new"]), "selected_feature")
        w.selected_feature = "user_age"
        assert seen == ["user_age"]
        with pytest.raises(traitlets.TraitError, match="not in the ranking"):
            w.selected_feature = "nope"
        w.selected_feature = ""
        assert w.selected_feature == ""

    def test_empty_table_has_a_reason(self) -> None:
        w = FeatureTable(ranking().head(0))
        assert "no features" in w.empty_reason

    def test_missing_feature_column_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match="'feature' column"):
            FeatureTable(pl.DataFrame({"name": ["a"], "score": [1.0]}))
        with pytest.raises(ValueError, match="DataFrame"):
            FeatureTable(42)

    def test_nested_columns_render_as_text(self) -> None:
        df = ranking().with_columns(pl.Series("hist", [[1, 2], [3], []]))
        out = prepare_table(df)
        assert out["hist"].dtype == pl.String  # lists shown as text
        assert out["hist"][0] == "[1, 2]"
        df2 = ranking().with_columns(pl.Series("obj", [{"a": 1}, {"a": 2}, {"a": 3}]))
        assert prepare_table(df2)["obj"].dtype == pl.String
        assert FeatureTable(df2)._table.height == 3

    def test_sparklines_from_dict_and_long_frame(self) -> None:
        d = prepare_sparklines({"ad_ctr": [1, float("nan"), 3], "ghost": [1, 2]}, ["ad_ctr"])
        assert d == {"ad_ctr": [1.0, None, 3.0]}
        long = pl.DataFrame(
            {"feature": ["a", "a", "b", "a"], "ts": [3, 1, 1, 2], "value": [30.0, 10.0, 5.0, 20.0]}
        )
        assert prepare_sparklines(long) == {"a": [10.0, 20.0, 30.0], "b": [5.0]}
        with pytest.raises(ValueError, match="'feature' and 'value'"):
            prepare_sparklines(pl.DataFrame({"feature": ["a"]}))
        w = FeatureTable(ranking(), sparklines={"ad_ctr": np.arange(1000.0)})
        assert len(w._sparklines["ad_ctr"]) <= 240  # thinned for a 90-px sparkline
        assert w._sparklines["ad_ctr"][0] == 0.0 and w._sparklines["ad_ctr"][-1] == 999.0

    def test_distributions_share_bins(self) -> None:
        rng = np.random.default_rng(0)
        d = prepare_distributions(
            {"ad_ctr": {"before": rng.normal(0, 1, 500), "after": rng.normal(3, 1, 500)}}, bins=10
        )["ad_ctr"]
        assert len(d["edges"]) == 11 and len(d["before"]) == len(d["after"]) == 10
        assert sum(d["before"]) == sum(d["after"]) == 500
        # the shift is visible: before mass sits left of after mass
        centers = (np.array(d["edges"][:-1]) + np.array(d["edges"][1:])) / 2
        assert np.average(centers, weights=d["before"]) < np.average(centers, weights=d["after"])

    def test_precomputed_distributions_and_bad_shapes(self) -> None:
        d = prepare_distributions({"a": {"edges": [0, 1, 2], "before": [1, 2], "after": [3, 0]}})
        assert d["a"]["after"] == [3.0, 0.0]
        with pytest.raises(ValueError, match="len\\(edges\\)"):
            prepare_distributions({"a": {"edges": [0, 1], "before": [1, 2], "after": [3, 0]}})
        with pytest.raises(ValueError, match="'before' and 'after'"):
            prepare_distributions({"a": {"before": [1]}})
        assert prepare_distributions({"a": ([np.nan], [])})["a"]["edges"] == []

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=50),
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=50),
    )
    def test_histograms_count_every_finite_sample(self, before, after) -> None:
        d = prepare_distributions({"f": {"before": before, "after": after}})["f"]
        fb = sum(1 for v in before if math.isfinite(v))
        fa = sum(1 for v in after if math.isfinite(v))
        assert sum(d["before"]) == fb and sum(d["after"]) == fa
        if d["edges"]:
            assert all(b > a for a, b in zip(d["edges"], d["edges"][1:], strict=False))


# -- ModelGraphTensorViewer ----------------------------------------------------------------------
def small_graph() -> tuple[list[dict], list[dict]]:
    nodes = [
        {"id": "x", "label": "x", "op": "placeholder", "layer": None, "kind": "input"},
        {"id": "lin", "label": "linear", "op": "call_function", "layer": "net.0"},
        {"id": "relu", "label": "relu", "op": "call_function", "layer": "net.1"},
        {"id": "lin2", "label": "linear", "op": "call_function", "layer": "net.2"},
        {"id": "out", "label": "output", "op": "output", "layer": None},
    ]
    edges = [
        {"source": "x", "target": "lin"},
        {"source": "lin", "target": "relu"},
        {"source": "relu", "target": "lin2"},
        {"source": "lin2", "target": "out"},
    ]
    return nodes, edges


def small_stats() -> dict:
    return {
        "x": {"max_abs": 3.0, "nan": 0, "inf": 0, "mean": 0.1},
        "lin": {"max_abs": 5.0, "nan": 0, "inf": 0, "mean": 0.2},
        "relu": {"max_abs": 4.0, "nan": 0, "inf": 0, "mean": 0.3},
        "lin2": {
            "max_abs": float("inf"),
            "nan": 12,
            "inf": 3,
            "mean": float("nan"),
            "hist": {"edges": np.array([0.0, 1.0, 2.0]), "counts": np.array([5, 7])},
        },
        "out": {"max_abs": 2e9, "nan": 0, "inf": 0, "mean": 1.0},
    }


class TestModelGraph:
    def test_state_keeps_nan_and_inf_as_evidence(self) -> None:
        nodes, edges = small_graph()
        w = ModelGraphTensorViewer(nodes, edges, stats=small_stats())
        assert [n["id"] for n in w._nodes] == ["x", "lin", "relu", "lin2", "out"]
        assert w._stats["lin2"]["max_abs"] == "inf"
        assert w._stats["lin2"]["mean"] == "nan"
        assert w._stats["lin2"]["hist"] == {"edges": [0.0, 1.0, 2.0], "counts": [5.0, 7.0]}
        assert w._stat_keys == ["max_abs", "nan", "inf", "mean"]
        assert w.color_by == "max_abs"

    def test_flags_nan_inf_and_extreme(self) -> None:
        nodes, edges = small_graph()
        w = ModelGraphTensorViewer(nodes, edges, stats=small_stats(), flagged={"relu": "dead"})
        assert set(w.flags) == {"lin2", "out", "relu"}
        assert "12 NaN values" in w.flags["lin2"] and "3 inf values" in w.flags["lin2"]
        assert "extreme magnitude" in w.flags["out"]  # 2e9 vs median 4.5
        assert w.flags["relu"] == "dead"
        assert "x" not in w.flags and "lin" not in w.flags

    def test_flag_rules_directly(self) -> None:
        assert flag_nodes({"a": {"max_abs": 1.0}, "b": {"max_abs": 2.0}}) == {}
        assert flag_nodes({"a": {"max": "inf"}}) == {"a": "non-finite max"}
        got = flag_nodes({"a": {"max_abs": 1.0}}, flagged=["a"])
        assert got == {"a": "flagged by the analysis"}

    def test_selection_and_color_by(self) -> None:
        nodes, edges = small_graph()
        w = ModelGraphTensorViewer(nodes, edges, stats=small_stats(), color_by="mean")
        assert w.color_by == "mean"
        w.selected_node = "lin2"
        assert w.selected_node == "lin2"
        with pytest.raises(traitlets.TraitError, match="not a node"):
            w.selected_node = "ghost"
        with pytest.raises(traitlets.TraitError, match="not a statistic"):
            w.color_by = "colour"
        w.color_by = "std"  # a standard statistic is always allowed (grey when absent)

    def test_networkx_input(self) -> None:
        g = nx.DiGraph()
        g.add_node("a", label="A", op="placeholder")
        g.add_edge("a", "b")
        nodes, edges = prepare_graph(g, None)
        assert [n["id"] for n in nodes] == ["a", "b"]
        assert nodes[0]["label"] == "A" and nodes[1]["label"] == "b"
        assert edges == [{"source": "a", "target": "b"}]

    def test_bad_inputs(self) -> None:
        nodes, edges = small_graph()
        with pytest.raises(ValueError, match="duplicate ids"):
            ModelGraphTensorViewer([*nodes, nodes[0]], edges)
        with pytest.raises(ValueError, match="not in `nodes`"):
            ModelGraphTensorViewer(nodes, [*edges, {"source": "x", "target": "zz"}])
        with pytest.raises(ValueError, match="no 'id'"):
            ModelGraphTensorViewer([{"label": "x"}], [])
        with pytest.raises(ValueError, match="not graph nodes"):
            ModelGraphTensorViewer(nodes, edges, stats={"zz": {"max_abs": 1.0}})
        with pytest.raises(ValueError, match="len\\(counts\\)"):
            prepare_stats({"x": {"hist": {"edges": [0, 1], "counts": [1, 2]}}}, ["x"])
        with pytest.raises(ValueError, match="flagged"):
            ModelGraphTensorViewer(nodes, edges, flagged=["zz"])

    def test_empty_graph_has_a_reason(self) -> None:
        w = ModelGraphTensorViewer([], [])
        assert "no nodes" in w.empty_reason

    def test_thousand_node_state_is_small(self) -> None:
        n = 1000
        nodes = [{"id": f"op{i}", "label": "add", "op": "call_function"} for i in range(n)]
        edges = [{"source": f"op{i}", "target": f"op{i + 1}"} for i in range(n - 1)]
        stats = {f"op{i}": {"max_abs": float(i + 1), "nan": 0} for i in range(n)}
        w = ModelGraphTensorViewer(nodes, edges, stats=stats)
        assert len(w._nodes) == n and len(w._edges) == n - 1
        assert w.state_bytes() < 300_000


# -- LineageExplorer ----------------------------------------------------------------------------
def lineage() -> tuple[list[dict], list[dict]]:
    nodes = [
        {"id": "raw_clicks", "kind": "source", "name": "raw clicks"},
        {"id": "clicks_tbl", "kind": "table", "name": "clicks"},
        {"id": "etl_job", "kind": "job", "name": "etl"},
        {"id": "ad_ctr", "kind": "feature", "name": "ad_ctr"},
        {"id": "ad_ctr_7d", "kind": "feature", "name": "ad_ctr_7d"},
    ]
    edges = [
        {"source": "raw_clicks", "target": "clicks_tbl"},
        {"source": "clicks_tbl", "target": "etl_job"},
        {"source": "etl_job", "target": "ad_ctr"},
        {"source": "etl_job", "target": "ad_ctr_7d"},
    ]
    return nodes, edges


class TestLineage:
    def test_state_candidates_ranked_and_blast_radius(self) -> None:
        nodes, edges = lineage()
        w = LineageExplorer(
            nodes,
            edges,
            candidates=[
                {"node": "etl_job", "score": 0.2, "confidence": 0.5},
                {"node": "clicks_tbl", "score": 0.8, "confidence": 0.9},
            ],
            blast_radius=["ad_ctr", "ad_ctr_7d", "ad_ctr"],
            focus="ad_ctr",
            hops=1,
        )
        assert [c["node"] for c in w.candidates] == ["clicks_tbl", "etl_job"]
        assert [c["rank"] for c in w.candidates] == [1, 2]
        assert w._blast_radius == ["ad_ctr", "ad_ctr_7d"]
        assert w.focus == "ad_ctr" and w.hops == 1
        assert {n["id"]: n["kind"] for n in w._nodes}["etl_job"] == "job"

    def test_series_from_long_frame_sorted_with_onset(self) -> None:
        nodes, edges = lineage()
        frame = pl.DataFrame(
            {
                "ts": ["2024-01-01T02:00Z", "2024-01-01T00:00Z", "2024-01-01T01:00Z"],
                "node": ["clicks_tbl"] * 3,
                "stat": ["row_count"] * 3,
                "value": [5.0, 100.0, float("nan")],
                "onset": ["2024-01-01T01:00Z"] * 3,
            }
        )
        w = LineageExplorer(nodes, edges, series=frame, focus="ad_ctr")
        s = w._series["clicks_tbl"]
        assert s["value"] == [100.0, None, 5.0]
        assert s["ts"] == sorted(s["ts"])
        assert s["onset"] == s["ts"][1]

    def test_series_rejects_mixed_stats_and_unknown_nodes(self) -> None:
        nodes, _ = lineage()
        ids = [n["id"] for n in nodes]
        mixed = pl.DataFrame(
            {
                "node": ["etl_job"] * 2,
                "ts": [1, 2],
                "stat": ["mean", "null_rate"],
                "value": [1.0, 2.0],
            }
        )
        with pytest.raises(ValueError, match="several statistics"):
            prepare_series(mixed, ids)
        with pytest.raises(ValueError, match="not in the lineage graph"):
            prepare_series({"ghost": {"ts": [1], "value": [1.0]}}, ids)
        with pytest.raises(ValueError, match="one timestamp per value"):
            prepare_series({"etl_job": {"ts": [1, 2], "value": [1.0]}}, ids)

    def test_selection_and_bad_inputs(self) -> None:
        nodes, edges = lineage()
        w = LineageExplorer(nodes, edges, focus="ad_ctr")
        w.selected_node = "etl_job"
        assert w.selected_node == "etl_job"
        with pytest.raises(traitlets.TraitError, match="not a lineage node"):
            w.selected_node = "ghost"
        with pytest.raises(ValueError, match="focus"):
            LineageExplorer(nodes, edges, focus="ghost")
        with pytest.raises(ValueError, match="candidates"):
            LineageExplorer(nodes, edges, candidates=[{"node": "ghost", "score": 1.0}])
        with pytest.raises(ValueError, match="blast_radius"):
            LineageExplorer(nodes, edges, blast_radius=["ghost"])
        with pytest.raises(ValueError, match="hops"):
            LineageExplorer(nodes, edges, hops=-1)

    def test_networkx_lineage_and_empty(self) -> None:
        g = nx.DiGraph()
        g.add_node("t", kind="table", name="T")
        g.add_node("f", kind="feature", name="f")
        g.add_edge("t", "f")
        w = LineageExplorer(g, focus="f")
        assert {n["id"]: n["name"] for n in w._nodes} == {"t": "T", "f": "f"}
        assert "no nodes" in LineageExplorer([], []).empty_reason

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=600))
    def test_series_prep_is_bounded_sorted_and_json_safe(self, values) -> None:
        ts = list(range(len(values)))[::-1]  # reverse time order on purpose
        out = prepare_series({"n": {"ts": ts, "value": values}}, ["n"])["n"]
        assert len(out["value"]) <= 240
        assert out["ts"] == sorted(out["ts"])
        assert all(v is None or math.isfinite(v) for v in out["value"])


def test_feature_ranking_widget_name_is_a_deprecated_alias() -> None:
    import hawknb
    import hawknb.widgets as widgets
    from hawknb.kernels.features import FeatureRanking as KernelResult

    with pytest.warns(DeprecationWarning, match="FeatureTable"):
        old = widgets.FeatureRanking
    assert old is FeatureTable
    assert hawknb.FeatureTable is FeatureTable
    assert KernelResult is not FeatureTable  # one name, one meaning


def test_feature_table_shows_the_compact_columns_first() -> None:
    w = FeatureTable(ranking())
    assert w.compact_columns[:2] == ["rank", "feature"]
    assert "evidence" in w.compact_columns and "confidence" not in w.compact_columns
    assert set(w._labels) <= set(w.frame.columns)


def test_graph_views_share_one_bundle_with_elkjs_once() -> None:
    from hawknb.widgets._base import STATIC_DIR

    assert str(LineageExplorer._esm) == str(ModelGraphTensorViewer._esm)
    with_elk = [p.name for p in STATIC_DIR.glob("*.js") if "org.eclipse.elk" in p.read_text()]
    assert with_elk == ["graph.js"]


def test_selection_traits_follow_one_scheme() -> None:
    import hawknb.widgets as w

    for cls in (
        w.AnomalyTimeline,
        w.RolloutCorrelator,
        FeatureTable,
        LineageExplorer,
        ModelGraphTensorViewer,
        w.InvestigationNavigator,
    ):
        synced = [n for n, t in cls.class_traits(sync=True).items() if "select" in n]
        assert synced and all(n.startswith("selected_") for n in synced), (cls.__name__, synced)

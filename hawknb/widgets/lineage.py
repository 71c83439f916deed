"""LineageExplorer: the upstream lineage of a feature, with the root-cause candidates marked.

Once a feature is known to be responsible, the question becomes "which upstream table, job or
source changed first?". The view draws the lineage DAG left (sources) to right (the feature),
gives each node a sparkline of its statistic around the onset so a step change is visible at a
glance, ranks and highlights the candidate root causes, and marks the blast radius (what else
the root cause feeds). It starts ``hops`` hops upstream of the focus; the browser expands
further on demand, so a 2,000-node lineage stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl
import traitlets

from hawknb.widgets._base import HawknbWidget, static_esm
from hawknb.widgets._serialization import records, to_ms, to_polars
from hawknb.widgets.modelgraph import prepare_graph

__all__ = ["LineageExplorer", "prepare_candidates", "prepare_series"]

_MAX_POINTS = 240


def _value(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def prepare_series(series: object | None, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per-node series as ``{id: {ts: [epoch ms], value: [...], onset: epoch ms | None}}``.

    Accepts a mapping node -> {ts, value, onset} or a long frame with ``node``, ``ts``,
    ``value`` (one statistic: filter ``lineage_stats`` by ``stat`` first) and an optional
    ``onset`` column. Points are sorted by time, non-finite values become gaps and long series
    are thinned (a sparkline in a 190-px box cannot show more than a few hundred points).
    """
    if series is None:
        return {}
    known = set(ids)
    items: list[tuple[str, Any, Any, Any]] = []
    if isinstance(series, Mapping):
        for key, spec in series.items():
            if not isinstance(spec, Mapping) or "value" not in spec:
                raise ValueError(
                    f"LineageExplorer(series[{key!r}]): expected {{'ts': [...], 'value': [...], "
                    "'onset': iso}}"
                )
            ts = spec.get("ts")
            vals = list(spec["value"])
            if ts is None:
                ts = list(range(len(vals)))
            items.append((str(key), list(ts), vals, spec.get("onset")))
    else:
        df = to_polars(series, "LineageExplorer(series)")
        missing = [c for c in ("node", "ts", "value") if c not in df.columns]
        if missing:
            raise ValueError(
                f"LineageExplorer(series): the frame lacks {missing} (it has {df.columns}). Fix: "
                "pass a long frame with node, ts, value, or a dict node -> {ts, value, onset}."
            )
        if "stat" in df.columns and df["stat"].n_unique() > 1:
            raise ValueError(
                "LineageExplorer(series): the frame holds several statistics "
                f"({sorted(df['stat'].unique().to_list())[:5]}). Fix: filter to one stat, e.g. "
                "frame.filter(pl.col('stat') == 'row_count')."
            )
        cols = [pl.col("ts"), pl.col("value")]
        if "onset" in df.columns:
            cols.append(pl.col("onset").first())
        g = df.sort(["node", "ts"]).group_by("node", maintain_order=True).agg(cols)
        for row in g.iter_rows(named=True):
            items.append((str(row["node"]), row["ts"], row["value"], row.get("onset")))
    unknown = [k for k, *_ in items if k not in known]
    if unknown:
        raise ValueError(
            f"LineageExplorer(series): nodes {sorted(unknown)[:5]} are not in the lineage graph. "
            "Fix: key series by lineage node id."
        )
    out: dict[str, dict[str, Any]] = {}
    for key, ts, vals, onset in items:
        if len(ts) != len(vals):
            raise ValueError(
                f"LineageExplorer(series[{key!r}]): ts has {len(ts)} points but value has "
                f"{len(vals)}. Fix: give one timestamp per value."
            )
        t = np.array([to_ms(x) if x is not None else np.nan for x in ts], dtype=np.float64)
        v = np.array([np.nan if x is None else float(x) for x in vals], dtype=np.float64)
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        if t.size > _MAX_POINTS:
            idx = np.linspace(0, t.size - 1, _MAX_POINTS).round().astype(np.int64)
            t, v = t[idx], v[idx]
        out[key] = {
            "ts": [float(x) for x in t.tolist()],
            "value": [_value(x) for x in v.tolist()],
            "onset": to_ms(onset) if onset is not None else None,
        }
    return out


def prepare_candidates(candidates: object, ids: Iterable[str]) -> list[dict[str, Any]]:
    """Candidates ranked by score (highest first) as ``[{node, score, confidence, rank}]``."""
    known = set(ids)
    out: list[dict[str, Any]] = []
    for i, c in enumerate(records(candidates, "LineageExplorer(candidates)")):
        node = c.get("node")
        if node is None or str(node) not in known:
            raise ValueError(
                f"LineageExplorer(candidates[{i}]): node {node!r} is not in the lineage graph. "
                "Fix: name candidates by lineage node id."
            )
        score = c.get("score")
        conf = c.get("confidence")
        out.append(
            {
                "node": str(node),
                "score": _value(score) if score is not None else None,
                "confidence": _value(conf) if conf is not None else None,
            }
        )
    out.sort(key=lambda c: -(c["score"] if c["score"] is not None else -math.inf))
    for rank, c in enumerate(out, start=1):
        c["rank"] = rank
    return out


class LineageExplorer(HawknbWidget):
    """Upstream lineage DAG around ``focus``; click a node -> ``selected_node`` (synced)."""

    _esm = static_esm("graph")  # one bundle with the other graph view: elkjs ships once
    _graph_view = traitlets.Unicode("lineage").tag(sync=True)
    _nodes = traitlets.List().tag(sync=True)
    _edges = traitlets.List().tag(sync=True)
    _series = traitlets.Dict().tag(sync=True)
    _candidates = traitlets.List().tag(sync=True)
    _blast_radius = traitlets.List().tag(sync=True)
    focus = traitlets.Unicode("").tag(sync=True)
    hops = traitlets.Int(2).tag(sync=True)
    selected_node = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        nodes: Any,
        edges: Any = (),
        *,
        series: object | None = None,
        candidates: object = (),
        blast_radius: Iterable[Any] = (),
        focus: str | None = None,
        hops: int = 2,
        title: str = "",
        **kwargs: Any,
    ) -> None:
        node_list, edge_list = prepare_graph(nodes, edges, "LineageExplorer")
        for n in node_list:
            n["name"] = str(n["name"]) if n.get("name") is not None else n["label"]
            n["kind"] = str(n["kind"]) if n.get("kind") is not None else ""
        ids = [n["id"] for n in node_list]
        known = set(ids)
        if focus is not None and str(focus) not in known:
            raise ValueError(
                f"LineageExplorer(focus): {focus!r} is not a node of the lineage graph. Fix: "
                "pass the feature's column name (its lineage node id) or None."
            )
        if not isinstance(hops, (int, np.integer)) or isinstance(hops, bool) or hops < 0:
            raise ValueError(f"LineageExplorer(hops): expected an int >= 0, got {hops!r}")
        blast = [str(b) for b in blast_radius or ()]
        unknown = [b for b in blast if b not in known]
        if unknown:
            raise ValueError(
                f"LineageExplorer(blast_radius): {sorted(unknown)[:5]} are not lineage nodes. "
                "Fix: list blast-radius nodes by lineage node id."
            )
        self._ids = known
        reason = "" if node_list else "the lineage graph has no nodes (lineage.json is empty)"
        super().__init__(
            _nodes=node_list,
            _edges=edge_list,
            _series=prepare_series(series, ids),
            _candidates=prepare_candidates(candidates, ids),
            _blast_radius=list(dict.fromkeys(blast)),
            focus="" if focus is None else str(focus),
            hops=int(hops),
            title=title,
            empty_reason=reason,
            **kwargs,
        )

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """The ranked candidates as shown (rank 1 = highest score)."""
        return [dict(c) for c in self._candidates]

    @traitlets.validate("selected_node")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"] or "")
        if value and value not in getattr(self, "_ids", set()):
            raise traitlets.TraitError(
                f"selected_node {value!r} is not a lineage node. Fix: use a node id."
            )
        return value

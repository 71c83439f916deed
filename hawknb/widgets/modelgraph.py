"""ModelGraphTensorViewer: the exported model graph coloured by a tensor statistic.

Snapshot diagnosis asks "where in the network do the numbers go wrong?": a NaN that appears in
one op and flows to the output, a layer whose activations grew by six decades. The view lays
the graph out as a DAG (ELK, in the browser), colours each node by the chosen statistic on a
log scale, flags NaN/inf/extreme nodes, and walks upstream (to the input placeholders) or
downstream (to the output) from the clicked node.

The widget takes plain nodes/edges/stats (e.g. from ``hawknb.kernels.graph.graph_structure``
and the activation tracer) so any producer can feed it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import traitlets

from hawknb.widgets._base import HawknbWidget, static_esm
from hawknb.widgets._serialization import jsonable, records

__all__ = [
    "EXTREME_RATIO",
    "STAT_NAMES",
    "ModelGraphTensorViewer",
    "flag_nodes",
    "prepare_graph",
    "prepare_stats",
]

#: statistics the contract of the tracer produces (any other numeric key is accepted too)
STAT_NAMES = ("min", "max", "mean", "std", "nan", "inf", "max_abs", "change_vs_previous")

#: a node whose max_abs exceeds this many times the median max_abs of the graph is "extreme":
#: layers legitimately differ by a few decades, a blow-up differs by many more
EXTREME_RATIO = 1e4


def _graph_from_networkx(g: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [{"id": n, **dict(d)} for n, d in g.nodes(data=True)]
    edges = [{"source": s, "target": t} for s, t in g.edges()]
    return nodes, edges


def prepare_graph(
    nodes: Any, edges: Any, where: str = "ModelGraphTensorViewer"
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Validate nodes/edges and normalise them to JSON-ready dicts.

    Node ids become strings; ``label`` defaults to the id, ``op`` to ``""``, ``layer`` to
    ``None``; other keys (kind, target, shape, params) pass through for the detail panel.
    Duplicate ids and edges naming unknown nodes are errors: a silently dropped edge would cut
    the very path the NaN walk follows.
    """
    if hasattr(nodes, "nodes") and hasattr(nodes, "edges") and callable(nodes.nodes):
        nodes, edges = _graph_from_networkx(nodes)
    node_list = records(nodes, f"{where}(nodes)")
    out_nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    dups: list[str] = []
    for i, n in enumerate(node_list):
        if n.get("id") is None:
            raise ValueError(
                f"{where}(nodes[{i}]): the node has no 'id' (keys {sorted(n)}). "
                "Fix: give every node a unique 'id'."
            )
        nid = str(n["id"])
        if nid in seen:
            dups.append(nid)
            continue
        seen.add(nid)
        d = {k: jsonable(v) for k, v in n.items()}
        d["id"] = nid
        d["label"] = str(n["label"]) if n.get("label") is not None else nid
        d["op"] = str(n["op"]) if n.get("op") is not None else ""
        d["layer"] = None if n.get("layer") is None else str(n["layer"])
        out_nodes.append(d)
    if dups:
        raise ValueError(
            f"{where}(nodes): duplicate ids {sorted(set(dups))[:5]}. Fix: make node ids unique."
        )
    out_edges: list[dict[str, str]] = []
    unknown: list[str] = []
    for e in records(edges, f"{where}(edges)"):
        if e.get("source") is None or e.get("target") is None:
            raise ValueError(
                f"{where}(edges): an edge lacks 'source' or 'target' ({e}). "
                "Fix: pass edges as {'source': id, 'target': id}."
            )
        s, t = str(e["source"]), str(e["target"])
        for end in (s, t):
            if end not in seen:
                unknown.append(end)
        out_edges.append({"source": s, "target": t})
    if unknown:
        raise ValueError(
            f"{where}(edges): edges name nodes that are not in `nodes`: "
            f"{sorted(set(unknown))[:5]}. Fix: add those nodes or drop the edges."
        )
    return out_nodes, out_edges


def _num(v: Any) -> Any:
    """A stat as JSON: finite floats as numbers, NaN/inf as strings the view parses back."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        v = v.item()
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def prepare_stats(stats: Mapping[Any, Any] | None, ids: Iterable[str]) -> dict[str, Any]:
    """Per-node statistics as JSON: ``{id: {stat: number | "nan" | "inf", hist: {...}}}``.

    NaN and inf are kept (as strings) because they are the evidence: a node whose max is inf
    must show "inf", not a blank. Stats for ids not in the graph are an error (a typo would
    otherwise leave the graph grey with no hint why).
    """
    if not stats:
        return {}
    if not isinstance(stats, Mapping):
        raise ValueError(
            "ModelGraphTensorViewer(stats): expected a dict node id -> {stat: value}, got "
            f"{type(stats).__name__}"
        )
    known = set(ids)
    unknown = [str(k) for k in stats if str(k) not in known]
    if unknown:
        raise ValueError(
            f"ModelGraphTensorViewer(stats): ids {sorted(unknown)[:5]} are not graph nodes. "
            "Fix: key stats by the node 'id' values."
        )
    out: dict[str, Any] = {}
    for key, raw in stats.items():
        if raw is None:
            continue
        entry = dict(raw) if isinstance(raw, Mapping) else jsonable(raw)
        if not isinstance(entry, dict):
            raise ValueError(f"ModelGraphTensorViewer(stats[{key!r}]): expected a dict of stats")
        clean: dict[str, Any] = {}
        for name, value in entry.items():
            if name == "hist":
                if value is None:
                    continue
                h = dict(value)
                edges = [_num(x) for x in np.asarray(h.get("edges", []), dtype=float).ravel()]
                counts = [_num(x) for x in np.asarray(h.get("counts", []), dtype=float).ravel()]
                if edges and len(edges) != len(counts) + 1:
                    raise ValueError(
                        f"ModelGraphTensorViewer(stats[{key!r}].hist): len(edges) must be "
                        f"len(counts)+1; got {len(edges)} and {len(counts)}"
                    )
                clean["hist"] = {"edges": edges, "counts": counts}
            else:
                clean[str(name)] = _num(value)
        out[str(key)] = clean
    return out


def _as_float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, str):
        return float(v)  # "nan"/"inf"/"-inf"
    return float(v)


def flag_nodes(
    stats: Mapping[str, Mapping[str, Any]], flagged: Any = (), ratio: float = EXTREME_RATIO
) -> dict[str, str]:
    """Why each node is flagged: given by the caller, NaN/inf present, or extreme magnitude.

    ``flagged`` is a sequence of ids or a mapping id -> reason (the analysis' own findings).
    "Extreme" is relative to the graph's own median max_abs so it needs no absolute threshold
    that would depend on the model's units.
    """
    out: dict[str, str] = {}
    if isinstance(flagged, Mapping):
        for k, reason in flagged.items():
            out[str(k)] = str(reason) if reason else "flagged by the analysis"
    else:
        for k in flagged or ():
            out[str(k)] = "flagged by the analysis"
    mags = []
    for s in stats.values():
        m = _as_float(s.get("max_abs")) if "max_abs" in s else math.nan
        if math.isfinite(m) and m > 0:
            mags.append(m)
    median = float(np.median(mags)) if mags else math.nan
    for nid, s in stats.items():
        reasons = []
        n_nan = _as_float(s.get("nan")) if "nan" in s else 0.0
        n_inf = _as_float(s.get("inf")) if "inf" in s else 0.0
        if math.isfinite(n_nan) and n_nan > 0:
            reasons.append(f"{n_nan:g} NaN values")
        if math.isfinite(n_inf) and n_inf > 0:
            reasons.append(f"{n_inf:g} inf values")
        nonfinite = [k for k in ("min", "max", "mean", "std", "max_abs") if k in s]
        bad = [k for k in nonfinite if not math.isfinite(_as_float(s.get(k)))]
        bad = [k for k in bad if s.get(k) is not None]
        if bad and not reasons:
            reasons.append(f"non-finite {', '.join(bad)}")
        m = _as_float(s.get("max_abs")) if "max_abs" in s else math.nan
        if math.isfinite(m) and math.isfinite(median) and median > 0 and m > ratio * median:
            reasons.append(f"extreme magnitude ({m / median:.3g}x the median max_abs)")
        if reasons:
            prior = out.get(nid)
            out[nid] = "; ".join([prior, *reasons] if prior else reasons)
    return out


class ModelGraphTensorViewer(HawknbWidget):
    """The model graph as a DAG coloured by a tensor statistic; click a node to inspect it.

    Synced: ``color_by`` (the statistic, also a dropdown in the view) and ``selected_node``
    (the clicked node id, "" when none). ``flags`` lists why nodes are flagged.
    """

    _esm = static_esm("graph")  # one bundle with the other graph view: elkjs ships once
    _graph_view = traitlets.Unicode("modelgraph").tag(sync=True)
    _nodes = traitlets.List().tag(sync=True)
    _edges = traitlets.List().tag(sync=True)
    _stats = traitlets.Dict().tag(sync=True)
    _flags = traitlets.Dict().tag(sync=True)
    _stat_keys = traitlets.List().tag(sync=True)
    color_by = traitlets.Unicode("max_abs").tag(sync=True)
    selected_node = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        nodes: Any,
        edges: Any = (),
        *,
        stats: Mapping[Any, Any] | None = None,
        color_by: str = "max_abs",
        flagged: Any = (),
        title: str = "",
        **kwargs: Any,
    ) -> None:
        node_list, edge_list = prepare_graph(nodes, edges)
        ids = [n["id"] for n in node_list]
        clean_stats = prepare_stats(stats, ids)
        flags = flag_nodes(clean_stats, flagged)
        unknown_flags = [k for k in flags if k not in set(ids)]
        if unknown_flags:
            raise ValueError(
                f"ModelGraphTensorViewer(flagged): ids {sorted(unknown_flags)[:5]} are not graph "
                "nodes. Fix: flag nodes by their 'id'."
            )
        keys: list[str] = []
        for s in clean_stats.values():
            for k, v in s.items():
                if (
                    k != "hist"
                    and k not in keys
                    and (v is None or isinstance(v, (int, float, str)))
                ):
                    keys.append(k)
        self._ids = set(ids)
        self._stat_names = set(keys) | set(STAT_NAMES)
        reason = "" if node_list else "the model graph has no nodes (was the program empty?)"
        super().__init__(
            _nodes=node_list,
            _edges=edge_list,
            _stats=clean_stats,
            _flags=flags,
            _stat_keys=keys,
            title=title,
            empty_reason=reason,
            **kwargs,
        )
        self.color_by = color_by

    @property
    def flags(self) -> dict[str, str]:
        """Node id -> why it is flagged (caller's flags, NaN/inf, extreme magnitude)."""
        return dict(self._flags)

    @traitlets.validate("color_by")
    def _check_color_by(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        names = getattr(self, "_stat_names", set(STAT_NAMES))
        if value not in names:
            raise traitlets.TraitError(
                f"color_by {value!r} is not a statistic of this graph. Fix: use one of "
                f"{sorted(names)}."
            )
        return value

    @traitlets.validate("selected_node")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"] or "")
        if value and value not in getattr(self, "_ids", set()):
            raise traitlets.TraitError(
                f"selected_node {value!r} is not a node of the graph. Fix: use a node 'id'."
            )
        return value

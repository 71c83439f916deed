"""Parsed OpenLineage events -> the contract's lineage graph and node statistics.

The reading side (:mod:`hawknb.ingest.openlineage`) hands over events as openlineage-python
objects; this module decides what they mean for the contract: which nodes and edges
``lineage.json`` gets, which dataset field each serving feature is, and which facet numbers
become ``lineage_stats.parquet`` rows (see docs/ingest.md for the tables).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import networkx as nx
import polars as pl

from ..workspace import contract as c
from .staging import IngestError, IngestWarning


def event_time(value: str, where: str) -> datetime:
    """An event's ``eventTime`` as UTC; a time without a zone offset is an error."""
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise IngestError(f"{where}: field 'eventTime' is {value!r}, not an ISO 8601 time") from exc
    if ts.tzinfo is None:
        raise IngestError(f"{where}: field 'eventTime' is {value!r}, which has no zone offset")
    return ts.astimezone(timezone.utc)


def dataset_id(namespace: str, name: str) -> str:
    """A dataset's node id: OpenLineage's own naming, ``namespace/name``."""
    return f"{namespace}/{name}"


def job_id(namespace: str, name: str) -> str:
    return f"job:{namespace}/{name}"


@dataclass
class _Lineage:
    datasets: dict[str, str] = field(default_factory=dict)  # id -> name
    jobs: dict[str, str] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    edges: set[tuple[str, str]] = field(default_factory=set)
    fields: dict[str, set[str]] = field(default_factory=dict)  # dataset id -> field names
    col_inputs: dict[tuple[str, str], set[str]] = field(default_factory=dict)


def _walk(events: Sequence[tuple[str, Any]]) -> _Lineage:
    g = _Lineage()
    for _, e in events:
        j = job_id(e.job.namespace, e.job.name)
        g.jobs[j] = e.job.name
        for d in [*(e.inputs or []), *(e.outputs or [])]:
            did = dataset_id(d.namespace, d.name)
            g.datasets[did] = d.name
            fs = g.fields.setdefault(did, set())
            facets = d.facets or {}
            if "schema" in facets:
                fs.update(x.name for x in facets["schema"].fields or [])
            if "columnLineage" in facets:
                for col, spec in facets["columnLineage"].fields.items():
                    fs.add(col)
                    ins = g.col_inputs.setdefault((did, col), set())
                    ins.update(dataset_id(i.namespace, i.name) for i in spec.inputFields)
            for slot in (facets, getattr(d, "inputFacets", None) or {}):
                if "dataQualityMetrics" in slot:
                    fs.update(slot["dataQualityMetrics"].columnMetrics)
        for d in e.inputs or []:
            g.edges.add((dataset_id(d.namespace, d.name), j))
        for d in e.outputs or []:
            did = dataset_id(d.namespace, d.name)
            g.written.add(did)
            g.edges.add((j, did))
    for (_, _), ins in g.col_inputs.items():
        for i in ins:
            g.datasets.setdefault(i, i.split("/", 1)[-1])
    return g


def _resolve_field(ref: str, g: _Lineage, feature: str) -> tuple[str, str]:
    """``namespace/name.field`` or ``name.field`` -> (dataset id, field)."""
    ds, dot, col = ref.rpartition(".")
    if not dot or not ds or not col:
        raise IngestError(f"--features {feature}={ref}: expected DATASET.FIELD")
    matches = [d for d in g.datasets if d == ds or g.datasets[d] == ds]
    if not matches:
        raise IngestError(
            f"--features {feature}={ref}: no event names dataset '{ds}'; known datasets "
            f"{sorted(g.datasets)[:10]}"
        )
    if len(matches) > 1:
        raise IngestError(
            f"--features {feature}={ref}: '{ds}' is ambiguous ({matches}); use namespace/name"
        )
    if col not in g.fields.get(matches[0], set()):
        raise IngestError(
            f"--features {feature}={ref}: dataset '{matches[0]}' has no field '{col}' in the "
            f"events (fields {sorted(g.fields.get(matches[0], set()))[:10]})"
        )
    return matches[0], col


def _feature_homes(
    g: _Lineage, mapping: Mapping[str, str], serving_columns: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """feature -> the (dataset, field) pairs it is: the mapping's, else same-named fields of
    the most downstream datasets (those no job reads) holding one."""
    homes = {f: [_resolve_field(ref, g, f)] for f, ref in mapping.items()}
    read = {s for s, _ in g.edges if s in g.datasets}
    for col in serving_columns:
        if col in homes:
            continue
        holders = sorted(d for d, fs in g.fields.items() if col in fs)
        sinks = [d for d in holders if d not in read] or holders
        if len(sinks) > 1:
            warnings.warn(
                f"feature '{col}' is a field of several datasets {sinks}; linked to all of them "
                "(pass --features to pick one)",
                IngestWarning,
                stacklevel=4,
            )
        if sinks:
            homes[col] = [(d, col) for d in sinks]
    return homes


def build_lineage(
    events: Sequence[tuple[str, Any]],
    *,
    features: Mapping[str, str] | None = None,
    serving_columns: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """The contract's lineage graph from parsed events, and the (dataset, field) -> feature
    map the statistics use."""
    g = _walk(events)
    homes = _feature_homes(g, dict(features or {}), serving_columns)
    nodes = [
        {"id": d, "kind": "table" if d in g.written else "source", "name": g.datasets[d]}
        for d in sorted(g.datasets)
    ]
    nodes += [{"id": j, "kind": "transform", "name": g.jobs[j]} for j in sorted(g.jobs)]
    taken = {n["id"] for n in nodes}
    edges = set(g.edges)
    upstream = nx.DiGraph(list(edges))
    field_of: dict[tuple[str, str], str] = {}
    for feat in sorted(homes):
        if feat in taken:
            raise IngestError(f"feature '{feat}': is also the id of a dataset or job node")
        nodes.append({"id": feat, "kind": "feature", "name": feat})
        for ds, col in homes[feat]:
            field_of[(ds, col)] = feat
            edges.add((ds, feat))
            known = nx.ancestors(upstream, ds) if ds in upstream else set()
            # column-level lineage: its input datasets become ancestors where jobs did not say so
            edges.update(
                (i, feat) for i in g.col_inputs.get((ds, col), ()) if i not in known | {ds}
            )
    self_loops = sorted(s for s, t in edges if (t, s) in edges and s in g.datasets)
    if self_loops:
        warnings.warn(
            f"datasets {self_loops[:5]} are read and written by the same job; that loop is dropped",
            IngestWarning,
            stacklevel=3,
        )
        edges = {(s, t) for s, t in edges if not ((t, s) in edges and s in g.datasets)}
    return {
        "nodes": nodes,
        "edges": [{"source": s, "target": t} for s, t in sorted(edges)],
    }, field_of


_SIZE_STATS = {
    "rowCount": "row_count",
    "size": "bytes",
    "bytes": "bytes",
    "fileCount": "file_count",
}
_COLUMN_STATS = {
    "nullCount": "null_count",
    "distinctCount": "distinct_count",
    "min": "min",
    "max": "max",
    "sum": "sum",
    "count": "count",
}


def _facet_rows(facet: Any, node: str) -> list[tuple[str, str, float | None]]:
    rows = [(node, stat, getattr(facet, key, None)) for key, stat in _SIZE_STATS.items()]
    return [r for r in rows if r[2] is not None]


def _column_rows(
    facet: Any, did: str, field_of: Mapping[tuple[str, str], str]
) -> list[tuple[str, str, float | None]]:
    out: list[tuple[str, str, float | None]] = []
    total = getattr(facet, "rowCount", None)
    for col, m in facet.columnMetrics.items():
        vals = {stat: getattr(m, key) for key, stat in _COLUMN_STATS.items()}
        if m.nullCount is not None and total:
            vals["null_rate"] = m.nullCount / total
        if m.sum is not None and m.count:
            vals["mean"] = m.sum / m.count
        vals.update({f"q{q}": v for q, v in (m.quantiles or {}).items()})
        feat = field_of.get((did, col))
        for stat, v in vals.items():
            out.append((did, f"{col}.{stat}", v))
            if feat is not None:
                out.append((feat, stat, v))
    return out


def build_stats(
    events: Sequence[tuple[str, Any]], field_of: Mapping[tuple[str, str], str]
) -> pl.DataFrame:
    """(ts, node, stat, value) rows from the dataset facets, one per event time; a repeated
    (ts, node, stat) keeps the value of the later event in the file."""
    rows: list[tuple[datetime, str, str, float]] = []
    for where, e in events:
        ts = event_time(e.eventTime, where)
        for d in [*(e.inputs or []), *(e.outputs or [])]:
            did = dataset_id(d.namespace, d.name)
            slots = [d.facets or {}, getattr(d, "inputFacets", None) or {}]
            slots.append(getattr(d, "outputFacets", None) or {})
            for slot in slots:
                for name in ("outputStatistics", "inputStatistics", "dataQualityMetrics"):
                    if name not in slot:
                        continue
                    found = _facet_rows(slot[name], did)
                    if name == "dataQualityMetrics":
                        found += _column_rows(slot[name], did, field_of)
                    rows += [(ts, n, s, float(v)) for n, s, v in found if v is not None]
    rows = [r for r in rows if math.isfinite(r[3])]
    schema = {
        c.TS: pl.Datetime("us", "UTC"),
        c.NODE: pl.String,
        c.STAT: pl.String,
        c.VALUE: pl.Float64,
    }
    df = pl.DataFrame(rows, schema=schema, orient="row")
    return df.unique([c.TS, c.NODE, c.STAT], keep="last", maintain_order=True).sort(
        c.NODE, c.STAT, c.TS
    )

"""OpenLineage run events -> ``lineage.json`` and ``lineage_stats.parquet``.

A lineage service (Marquez, a Spark/Airflow/dbt integration, the file transport) already
records which job read which dataset and wrote which, and often how many rows it wrote and how
many nulls each column held. That is exactly the evidence the lineage root-cause step walks, so
the events are read with openlineage-python's own event model (``RunEvent``, ``Job``,
``InputDataset`` and the generated facet classes, whose validators check run ids and event
times) rather than a home-made parser, and turned into the contract's graph and statistics:

* nodes: datasets (``namespace/name``; kind ``source`` when no job writes them, else
  ``table``), jobs (``job:namespace/name``, kind ``transform``) and features (the serving
  column name, kind ``feature``), joined input -> job -> output;
* a feature hangs off the dataset whose field it is (a user mapping, else the same name), and
  the datasets its column-level lineage facet names become its ancestors too;
* statistics per event time: ``row_count``, ``bytes``, ``file_count`` from output/input
  statistics and data-quality metrics; per column ``<field>.null_count``, ``.null_rate``,
  ``.distinct_count``, ``.min``, ``.max``, ``.mean``, ``.q<quantile>`` (on a feature node the
  same names without the field prefix).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl

from ..workspace import contract as c
from .staging import IngestError, IngestWarning, missing_extra, staged

#: facets of the OpenLineage spec that carry nothing the contract uses: ignored silently
_KNOWN_UNUSED = frozenset(
    {
        "dataSource",
        "documentation",
        "lifecycleStateChange",
        "ownership",
        "storage",
        "symlinks",
        "version",
        "datasetVersion",
        "dataQualityAssertions",
        "catalog",
        "datasetType",
        "hierarchy",
        "tags",
        "subset",
        "inputSubset",
        "outputSubset",
    }
)
_USED = frozenset(
    {"schema", "columnLineage", "dataQualityMetrics", "outputStatistics", "inputStatistics"}
)


def _lib() -> Any:
    try:
        from openlineage.client import event_v2
    except ImportError:
        raise missing_extra("openlineage", "openlineage-python") from None
    return event_v2


# -- reading events -------------------------------------------------------------------------------
def _raw_events(source: Path) -> Iterator[tuple[str, Any]]:
    """(where, decoded JSON) for each event: a JSON-lines file (``file:line``), or a folder of
    event files (one event per file, or JSON lines)."""
    if not source.exists():
        raise IngestError(f"{source}: does not exist")
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    files = [p for p in files if not p.name.startswith(".")]
    if not files:
        raise IngestError(f"{source}: holds no event files")
    for file in files:
        if source.is_dir():
            text = _text(file)
            try:
                yield str(file), json.loads(text)
                continue
            except json.JSONDecodeError:
                pass  # not one document: read it as JSON lines
            yield from _json_lines(file, text.splitlines())
        else:
            with file.open("rb") as f:  # streamed: an event log can be large
                yield from _json_lines(file, f)


def _text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{file}: is not UTF-8 text ({exc.reason})") from exc


def _json_lines(file: Path, lines: Iterable[str | bytes]) -> Iterator[tuple[str, Any]]:
    for lineno, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise IngestError(f"{file}:{lineno}: is not UTF-8 text ({exc.reason})") from exc
        if not line.strip():
            continue
        try:
            yield f"{file}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(
                f"{file}:{lineno}: is not valid JSON ({exc.msg} at column {exc.colno})"
            ) from exc


def _get(d: Any, path: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    """``d["a"]["b"]`` for path ``a.b``, with an error naming the field when it is absent."""
    cur = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise IngestError(f"{where}: field '{path}' is missing")
        cur = cur[part]
    if not isinstance(cur, kind):
        raise IngestError(f"{where}: field '{path}' is {type(cur).__name__}, expected {kind}")
    return cur


def _num(v: Any, where: str, name: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise IngestError(f"{where}: field '{name}' is {v!r}, expected a number")
    return float(v)


@dataclass
class _Parsed:
    """What the events say, in the library's classes plus where each came from."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # facet name -> first place seen


def _event_time(value: str, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise IngestError(f"{where}: field 'eventTime' is {value!r}, not an ISO 8601 time") from exc
    if ts.tzinfo is None:
        raise IngestError(f"{where}: field 'eventTime' is {value!r}, which has no zone offset")
    return ts.astimezone(timezone.utc)


def _counts(f: Mapping[str, Any], w: str, names: Sequence[str]) -> dict[str, float | None]:
    return {n: _num(f.get(n), w, n) for n in names}


def _column_metrics(cls: Any, raw: Any, w: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise IngestError(f"{w}: field 'columnMetrics' is {type(raw).__name__}, expected an object")
    out = {}
    for col, m in raw.items():
        mw = f"{w}, column '{col}'"
        if not isinstance(m, Mapping):
            raise IngestError(f"{mw}: is {type(m).__name__}, expected an object")
        qs = m.get("quantiles") or {}
        if not isinstance(qs, Mapping):
            raise IngestError(f"{mw}: field 'quantiles' is not an object")
        out[str(col)] = cls(
            **_counts(m, mw, ("nullCount", "distinctCount", "sum", "count", "min", "max")),
            quantiles={str(q): _num(v, mw, f"quantiles.{q}") for q, v in qs.items()},
        )
    return out


def _build_facet(name: str, slot: str, f: Mapping[str, Any], w: str) -> Any:
    """One facet as the library's generated class (numbers checked, names required)."""
    from openlineage.client.generated import (
        column_lineage_dataset as cl,
    )
    from openlineage.client.generated import (
        data_quality_metrics_dataset as dqd,
    )
    from openlineage.client.generated import (
        data_quality_metrics_input_dataset as dqi,
    )
    from openlineage.client.generated import (
        input_statistics_input_dataset as ist,
    )
    from openlineage.client.generated import (
        output_statistics_output_dataset as ost,
    )
    from openlineage.client.generated import schema_dataset as sd

    sizes = ("rowCount", "size", "fileCount")
    if name == "outputStatistics":
        return ost.OutputStatisticsOutputDatasetFacet(**_ints(_counts(f, w, sizes)))
    if name == "inputStatistics":
        return ist.InputStatisticsInputDatasetFacet(**_ints(_counts(f, w, sizes)))
    if name == "dataQualityMetrics":
        mod = dqi if slot == "inputFacets" else dqd
        cls = (
            mod.DataQualityMetricsInputDatasetFacet
            if mod is dqi
            else mod.DataQualityMetricsDatasetFacet
        )
        return cls(
            columnMetrics=_column_metrics(mod.ColumnMetrics, f.get("columnMetrics") or {}, w),
            **_ints(_counts(f, w, ("rowCount", "bytes", "fileCount"))),
        )
    if name == "schema":
        fields = f.get("fields") or []
        if not isinstance(fields, list):
            raise IngestError(f"{w}: field 'fields' is not a list")
        return sd.SchemaDatasetFacet(
            fields=[
                sd.SchemaDatasetFacetFields(name=_get(x, "name", w), type=_opt_str(x, "type"))
                for x in fields
            ]
        )
    if name == "columnLineage":
        fields = _get(f, "fields", w, Mapping)
        return cl.ColumnLineageDatasetFacet(
            fields={
                str(k): cl.Fields(
                    inputFields=[
                        cl.InputField(
                            namespace=_get(i, "namespace", f"{w}, '{k}'"),
                            name=_get(i, "name", f"{w}, '{k}'"),
                            field=_get(i, "field", f"{w}, '{k}'"),
                        )
                        for i in _get(v, "inputFields", f"{w}, '{k}'", list)
                    ]
                )
                for k, v in fields.items()
            }
        )
    raise AssertionError(name)  # pragma: no cover


def _ints(d: dict[str, float | None]) -> dict[str, int | None]:
    return {k: None if v is None else int(v) for k, v in d.items()}


def _opt_str(x: Any, key: str) -> str | None:
    v = x.get(key) if isinstance(x, Mapping) else None
    return None if v is None else str(v)


def _facets(raw: Any, where: str, slot: str, parsed: _Parsed) -> dict[str, Any]:
    """The used facets as library objects; spec facets hawknb does not use are skipped, other
    names are remembered for one warning each."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise IngestError(f"{where}: field '{slot}' is {type(raw).__name__}, expected an object")
    out = {}
    for name, f in raw.items():
        if name not in _USED:
            if name not in _KNOWN_UNUSED:
                parsed.unknown.setdefault(str(name), f"{where}, {slot}")
            continue
        w = f"{where}, facet '{slot}.{name}'"
        if not isinstance(f, Mapping):
            raise IngestError(f"{w}: is {type(f).__name__}, expected an object")
        out[name] = _build_facet(name, slot, f, w)
    return out


def _datasets(raw: Any, where: str, key: str, parsed: _Parsed) -> list[Any]:
    ev = _lib()
    items = raw.get(key) or []
    if not isinstance(items, list):
        raise IngestError(f"{where}: field '{key}' is {type(items).__name__}, expected a list")
    out = []
    for i, d in enumerate(items):
        w = f"{where}, {key}[{i}]"
        ns, name = _get(d, "namespace", w), _get(d, "name", w)
        facets = _facets(d.get("facets"), w, "facets", parsed)
        if key == "inputs":
            extra = _facets(d.get("inputFacets"), w, "inputFacets", parsed)
            out.append(ev.InputDataset(ns, name, facets=facets, inputFacets=extra))
        else:
            extra = _facets(d.get("outputFacets"), w, "outputFacets", parsed)
            out.append(ev.OutputDataset(ns, name, facets=facets, outputFacets=extra))
    return out


def _event(raw: Any, where: str, parsed: _Parsed) -> Any | None:
    """A decoded event as the library's ``RunEvent`` (or ``JobEvent``); None for a dataset
    event, which names no job."""
    ev = _lib()
    if not isinstance(raw, Mapping):
        raise IngestError(f"{where}: is {type(raw).__name__}, expected an event object")
    if "job" not in raw and "dataset" in raw:
        parsed.unknown.setdefault("DatasetEvent", where)
        return None
    t = _get(raw, "eventTime", where)
    _event_time(t, where)
    job = ev.Job(namespace=_get(raw, "job.namespace", where), name=_get(raw, "job.name", where))
    inputs = _datasets(raw, where, "inputs", parsed)
    outputs = _datasets(raw, where, "outputs", parsed)
    producer = str(raw.get("producer") or "")
    if "run" not in raw:
        return ev.JobEvent(eventTime=t, job=job, inputs=inputs, outputs=outputs, producer=producer)
    try:
        run = ev.Run(runId=_get(raw, "run.runId", where))
    except ValueError as exc:
        raise IngestError(f"{where}: field 'run.runId' is not a UUID ({exc})") from exc
    state = raw.get("eventType")
    try:
        kind = ev.RunState(state) if state is not None else None
    except ValueError as exc:
        raise IngestError(f"{where}: field 'eventType' is {state!r}; {exc}") from exc
    return ev.RunEvent(
        eventTime=t,
        run=run,
        job=job,
        eventType=kind,
        inputs=inputs,
        outputs=outputs,
        producer=producer,
    )


def read_events(source: str | Path) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Parse OpenLineage events into the library's classes: ``[(where, RunEvent|JobEvent)]``
    in file order, and the unknown facet names with the first place each was seen."""
    _lib()
    parsed = _Parsed()
    for where, raw in _raw_events(Path(source)):
        obj = _event(raw, where, parsed)
        if obj is not None:
            parsed.events.append((where, obj))
    if not parsed.events:
        raise IngestError(f"{source}: holds no OpenLineage run or job events")
    return parsed.events, parsed.unknown


# -- events -> graph and statistics -------------------------------------------------------------
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
        ts = _event_time(e.eventTime, where)
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


def _serving_columns(workspace: Path) -> list[str]:
    """Feature columns of the workspace's serving log (schema only), if it has one."""
    file = workspace / c.TABLES["serving"].file
    if not file.exists():
        return []
    schema = pl.read_parquet_schema(file)
    return [n for n, t in schema.items() if n not in c.SERVING_RESERVED and t.is_numeric()]


def ingest_openlineage(
    source: str | Path,
    workspace: str | Path,
    *,
    features: Mapping[str, str] | None = None,
    serving_columns: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Read OpenLineage events (a JSON-lines file or a folder of event files) and write
    ``lineage.json`` and ``lineage_stats.parquet`` into ``workspace``, validated.

    ``features`` maps a serving feature column to a dataset field (``namespace/name.field`` or
    ``name.field``); unmapped ``serving_columns`` (default: the workspace's serving log's
    feature columns) match dataset fields of the same name. Unknown facets are skipped with an
    :class:`IngestWarning` naming the first place each appeared.
    """
    ws = Path(workspace)
    events, unknown = read_events(source)
    for name, where in unknown.items():
        what = "dataset events are" if name == "DatasetEvent" else f"unknown facet '{name}' is"
        warnings.warn(f"{where}: {what} ignored", IngestWarning, stacklevel=2)
    cols = list(serving_columns) if serving_columns is not None else _serving_columns(ws)
    lineage, field_of = build_lineage(events, features=features, serving_columns=cols)
    if not any(n["kind"] == "feature" for n in lineage["nodes"]):
        warnings.warn(
            f"{source}: no dataset field matches a serving feature column; the graph has no "
            "feature nodes (ingest the serving log first, or pass features=/--features)",
            IngestWarning,
            stacklevel=2,
        )
    stats = build_stats(events, field_of)
    writes = [c.LINEAGE_FILE, c.TABLES["lineage_stats"].file]
    with staged(ws, writes, force=force) as stage:
        stage.path(c.LINEAGE_FILE).write_text(json.dumps(lineage, indent=1, sort_keys=True))
        target = stage.path(writes[1])  # removes a replaced file even when nothing replaces it
        if stats.height:
            stats.write_parquet(target)
    return ws

"""OpenLineage run events -> ``lineage.json`` and ``lineage_stats.parquet``.

A lineage service (Marquez, a Spark/Airflow/dbt integration, the file transport) already
records which job read which dataset and wrote which, and often how many rows it wrote and how
many nulls each column held. That is exactly the evidence the lineage root-cause step walks, so
the events are read with openlineage-python's own event model (``RunEvent``, ``Job``,
``InputDataset`` and the generated facet classes, whose validators check run ids and event
times) rather than a home-made parser. This module reads and parses them; the graph and
statistics they become are decided in :mod:`hawknb.ingest.openlineage_graph`:

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
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..workspace import contract as c
from .openlineage_graph import build_lineage, build_stats, event_time
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
    event_time(t, where)
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

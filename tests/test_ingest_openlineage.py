"""`hawknb ingest openlineage`: run events written by openlineage-python's own file transport."""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import column_lineage_dataset as cl
from openlineage.client.generated import data_quality_metrics_dataset as dqd
from openlineage.client.generated import data_quality_metrics_input_dataset as dqi
from openlineage.client.generated import output_statistics_output_dataset as ost
from openlineage.client.generated import schema_dataset as sd
from openlineage.client.transport.file import FileConfig, FileTransport

import hawknb.ingest as hi
from hawknb.cli import main
from hawknb.ingest import IngestError, IngestWarning
from hawknb.workspace import Workspace, WorkspaceError
from hawknb.workspace import contract as c

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
HOURS = 6
CLICKS, USERS, FEATS = "pg://db/raw.clicks", "pg://db/raw.users", "s3://lake/feat.user_features"


def _rows(h: int) -> int:
    """Rows the feature job writes each hour: 1000, dropping to 100 from hour 4 on."""
    return 1000 if h < 4 else 100


def _event(h: int) -> RunEvent:
    clicks_dq = dqi.DataQualityMetricsInputDatasetFacet(
        rowCount=500,
        bytes=4096,
        columnMetrics={"click": dqi.ColumnMetrics(nullCount=5 * h, distinctCount=2, min=0, max=1)},
    )
    lineage = cl.ColumnLineageDatasetFacet(
        fields={
            "ctr_7d": cl.Fields(inputFields=[cl.InputField("pg://db", "raw.clicks", "click")]),
            "age_days": cl.Fields(inputFields=[cl.InputField("pg://db", "raw.users", "signup")]),
        }
    )
    feats_dq = dqd.DataQualityMetricsDatasetFacet(
        rowCount=_rows(h),
        columnMetrics={
            "ctr_7d": dqd.ColumnMetrics(
                nullCount=10 * h, sum=0.5 * _rows(h), count=_rows(h), quantiles={"0.5": 0.4}
            )
        },
    )
    schema = sd.SchemaDatasetFacet(fields=[sd.SchemaDatasetFacetFields("user_id", "BIGINT")])
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=(T0 + timedelta(hours=h)).isoformat(),
        run=Run(runId=str(uuid.UUID(int=h + 1))),
        job=Job(namespace="airflow", name="features.user_features"),
        inputs=[
            InputDataset("pg://db", "raw.clicks", inputFacets={"dataQualityMetrics": clicks_dq}),
            InputDataset("pg://db", "raw.users"),
        ],
        outputs=[
            OutputDataset(
                "s3://lake",
                "feat.user_features",
                facets={"columnLineage": lineage, "dataQualityMetrics": feats_dq, "schema": schema},
                outputFacets={
                    "outputStatistics": ost.OutputStatisticsOutputDatasetFacet(
                        rowCount=_rows(h), size=100 * _rows(h)
                    )
                },
            )
        ],
    )


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    """Events as the file transport writes them in append mode: JSON lines."""
    path = tmp_path / "events.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    for h in range(HOURS):
        transport.emit(_event(h))
    return path


def _ingest(events: Path, ws: Path, **kw: object) -> Path:
    kw.setdefault("serving_columns", ["ctr_7d", "age_days", "other_feature"])
    return hi.openlineage(events, ws, **kw)


def test_graph_from_jobs_datasets_and_column_lineage(events_file: Path, tmp_path: Path) -> None:
    ws = _ingest(events_file, tmp_path / "ws")
    lineage = json.loads((ws / c.LINEAGE_FILE).read_text())
    kinds = {n["id"]: n["kind"] for n in lineage["nodes"]}
    job = "job:airflow/features.user_features"
    assert kinds == {
        CLICKS: "source",
        USERS: "source",
        FEATS: "table",
        job: "transform",
        "ctr_7d": "feature",
        "age_days": "feature",
    }
    edges = {(e["source"], e["target"]) for e in lineage["edges"]}
    assert edges == {
        (CLICKS, job),
        (USERS, job),
        (job, FEATS),
        (FEATS, "ctr_7d"),
        (FEATS, "age_days"),
    }


def test_statistics_per_event_time(events_file: Path, tmp_path: Path) -> None:
    ws = _ingest(events_file, tmp_path / "ws")
    stats = pl.read_parquet(ws / "lineage_stats.parquet")
    assert stats[c.TS].dtype == pl.Datetime("us", "UTC")

    def series(node: str, stat: str) -> list[float]:
        s = stats.filter((pl.col(c.NODE) == node) & (pl.col(c.STAT) == stat)).sort(c.TS)
        assert s[c.TS].to_list() == [T0 + timedelta(hours=h) for h in range(HOURS)]
        return s[c.VALUE].to_list()

    assert series(FEATS, "row_count") == [float(_rows(h)) for h in range(HOURS)]
    assert series(FEATS, "bytes") == [100.0 * _rows(h) for h in range(HOURS)]
    assert series(CLICKS, "click.null_count") == [5.0 * h for h in range(HOURS)]
    assert series(CLICKS, "click.null_rate") == [5.0 * h / 500 for h in range(HOURS)]
    # a feature's column metrics also land on the feature node, without the field prefix
    assert series("ctr_7d", "null_rate") == [10.0 * h / _rows(h) for h in range(HOURS)]
    assert series("ctr_7d", "mean") == [0.5] * HOURS
    assert series("ctr_7d", "q0.5") == [0.4] * HOURS


def test_result_passes_workspace_validation_with_a_serving_log(events_file: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    ts = [T0 + timedelta(hours=h) for h in range(HOURS)]
    ws.mkdir()
    pl.DataFrame({c.TS: ts, c.METRIC: "rev", c.VALUE: 1.0}).write_parquet(ws / "metrics.parquet")
    pl.DataFrame(
        {
            c.TS: ts,
            c.MODEL: "m",
            c.EXPERIMENT: "e",
            c.SNAPSHOT: "s",
            c.PREDICTION: 0.1,
            "ctr_7d": 0.2,
            "age_days": 3.0,
        }
    ).write_parquet(ws / "serving.parquet")
    hi.openlineage(events_file, ws)  # feature names come from the serving log
    w = Workspace.open(ws)
    w.validate()
    graph = w.lineage()
    assert graph is not None
    assert {n for n, k in graph.nodes(data="kind") if k == "feature"} == {"ctr_7d", "age_days"}


def test_user_mapping_links_a_feature_to_a_differently_named_field(events_file, tmp_path):
    ws = _ingest(events_file, tmp_path / "ws", features={"clicks_feature": "raw.clicks.click"})
    lineage = json.loads((ws / c.LINEAGE_FILE).read_text())
    edges = {(e["source"], e["target"]) for e in lineage["edges"]}
    assert (CLICKS, "clicks_feature") in edges
    stats = pl.read_parquet(ws / "lineage_stats.parquet")
    assert stats.filter(pl.col(c.NODE) == "clicks_feature")[c.STAT].unique().sort().to_list() == [
        "distinct_count",
        "max",
        "min",
        "null_count",
        "null_rate",
    ]


def test_mapping_to_a_missing_field_is_an_error(events_file: Path, tmp_path: Path) -> None:
    with pytest.raises(
        IngestError,
        match=r"--features f=raw\.clicks\.nope: dataset 'pg://db/raw\.clicks' has no field 'nope'",
    ):
        _ingest(events_file, tmp_path / "ws", features={"f": "raw.clicks.nope"})
    with pytest.raises(IngestError, match=r"no event names dataset 'raw\.nothing'"):
        _ingest(events_file, tmp_path / "ws", features={"f": "raw.nothing.x"})
    assert not (tmp_path / "ws").exists()


def test_folder_of_event_files(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    transport = FileTransport(FileConfig(log_file_path=str(folder / "ol"), append=False))
    for h in range(HOURS):
        transport.emit(_event(h))
    assert len(list(folder.glob("*.json"))) == HOURS
    ws = _ingest(folder, tmp_path / "ws")
    assert (
        pl.read_parquet(ws / "lineage_stats.parquet")
        .filter((pl.col(c.NODE) == FEATS) & (pl.col(c.STAT) == "row_count"))
        .height
        == HOURS
    )


def test_unknown_facets_are_ignored_with_a_warning(events_file: Path, tmp_path: Path) -> None:
    lines = events_file.read_text().splitlines()
    ev = json.loads(lines[2])
    ev["outputs"][0]["facets"]["acme_cost"] = {"dollars": 3}
    ev["outputs"][0]["facets"]["documentation"] = {"description": "known, unused: no warning"}
    lines[2] = json.dumps(ev)
    events_file.write_text("\n".join(lines) + "\n")
    with pytest.warns(IngestWarning) as rec:
        _ingest(events_file, tmp_path / "ws")
    msgs = [str(w.message) for w in rec if issubclass(w.category, IngestWarning)]
    assert any(
        "events.jsonl:3, outputs[0], facets: unknown facet 'acme_cost' is ignored" in m
        for m in msgs
    )
    assert not any("documentation" in m for m in msgs)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.pop("eventTime"), r"events\.jsonl:2: field 'eventTime' is missing"),
        (
            lambda e: e.update(eventTime="yesterday"),
            r"events\.jsonl:2: field 'eventTime' is 'yesterday', not an ISO 8601",
        ),
        (
            lambda e: e["run"].update(runId="r-1"),
            r"events\.jsonl:2: field 'run\.runId' is not a UUID",
        ),
        (lambda e: e.update(eventType="DONE"), r"events\.jsonl:2: field 'eventType' is 'DONE'"),
        (lambda e: e["job"].pop("name"), r"events\.jsonl:2: field 'job\.name' is missing"),
        (
            lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].update(rowCount="many"),
            r"events\.jsonl:2, outputs\[0\], facet 'outputFacets\.outputStatistics': field 'rowCount' is 'many', expected a number",
        ),
        (
            lambda e: e["outputs"][0]["facets"]["columnLineage"]["fields"]["ctr_7d"]["inputFields"][
                0
            ].pop("field"),
            r"columnLineage'.*field 'field' is missing",
        ),
    ],
)
def test_malformed_events_name_file_line_and_field(events_file, tmp_path, edit, message) -> None:
    ws = tmp_path / "ws"
    _ingest(events_file, ws)
    before = (ws / c.LINEAGE_FILE).read_bytes()
    lines = events_file.read_text().splitlines()
    ev = json.loads(lines[1])
    edit(ev)
    lines[1] = json.dumps(ev)
    events_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=message) as info:
        _ingest(events_file, ws, force=True)
    assert "\n" not in str(info.value)
    assert (ws / c.LINEAGE_FILE).read_bytes() == before  # nothing partially written


def test_broken_json_line(events_file: Path, tmp_path: Path) -> None:
    with events_file.open("a") as f:
        f.write('{"eventTime": "2024-03-01T00:00:00Z", "job": \n')
    with pytest.raises(IngestError, match=rf"events\.jsonl:{HOURS + 1}: is not valid JSON"):
        _ingest(events_file, tmp_path / "ws")


def test_a_lineage_cycle_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    for i, (src, dst) in enumerate([("a", "b"), ("b", "a")]):
        transport.emit(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=T0.isoformat(),
                run=Run(runId=str(uuid.UUID(int=i + 1))),
                job=Job(namespace="j", name=f"{src}_to_{dst}"),
                inputs=[InputDataset("ns", src)],
                outputs=[OutputDataset("ns", dst)],
            )
        )
    with (
        pytest.raises(WorkspaceError, match=r"ws/lineage\.json: has a cycle"),
        pytest.warns(IngestWarning, match="no feature nodes"),
    ):
        hi.openlineage(path, tmp_path / "ws", serving_columns=[])
    assert not (tmp_path / "ws").exists()


def test_replacing_needs_force_and_cli_prints_one_line(events_file, tmp_path, capsys) -> None:
    ws = str(tmp_path / "ws")
    argv = ["ingest", "openlineage", str(events_file), ws, "--serving-columns", "ctr_7d"]
    assert main(argv) == 0
    assert "ok:" in capsys.readouterr().out
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "lineage.json: already exists" in err and err.count("\n") == 1
    assert main([*argv, "--force", "--features", "x=raw.clicks.click"]) == 0


def test_missing_extra_names_it(events_file: Path, tmp_path: Path, monkeypatch) -> None:
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("openlineage"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(IngestError, match=r"pip install 'hawknb\[openlineage\]'") as info:
        _ingest(events_file, tmp_path / "ws")
    assert "\n" not in str(info.value)


def test_binary_garbage_is_named(events_file: Path, tmp_path: Path) -> None:
    with events_file.open("ab") as f:
        f.write(b"\xff\xfe\x00garbage\n")
    with pytest.raises(IngestError, match=rf"events\.jsonl:{HOURS + 1}: is not UTF-8 text"):
        _ingest(events_file, tmp_path / "ws")

"""Example source-system records for the ingest walk-through (docs/ingest.md, the
``ingest_example`` notebook): what a team's own systems would hold, written with those
systems' own libraries.

* ``events.jsonl``: OpenLineage run events as openlineage-python's file transport writes them
  (an hourly feature job reading ``raw.clicks`` and ``raw.impressions``, writing
  ``feat.ctr_features``, with output statistics, data-quality metrics and column lineage);
* ``mlruns/``: an MLflow store (file backend) with two registered versions of ``ctr-model``,
  each an ONNX logistic model with its training window as run params and a loss history;
* ``serving.csv``: the serving log in its own schema (epoch-millisecond ``event_time``,
  ``model_version``, ``pclick``, ``clicked``);
* ``revenue.csv``: hourly revenue with naive Europe/Berlin wall-clock times.

From 2026-03-04 06:00 UTC the ``raw.clicks`` table loses most of its rows upstream; the
feature job keeps running, so ``ctr_7d`` is computed from a fraction of the clicks, the model's
predictions drop and revenue with them. Nothing here is needed to use ``hawknb ingest`` on real
data; it needs the ``openlineage``, ``mlflow`` and ``onnx`` extras.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOURS = 5 * 24
ONSET = START + timedelta(days=3, hours=6)
FEATURES = ("ctr_7d", "dwell_s", "price_rel")
#: version -> (weights, bias, training window, publication time)
VERSIONS = {
    "1": ((9.0, 0.010, -0.8), -2.2, ("2026-02-20", "2026-02-27"), "2026-02-27T22:00:00Z"),
    "2": ((9.5, 0.011, -0.9), -2.2, ("2026-02-21", "2026-02-28"), "2026-02-28T22:00:00Z"),
}
SWITCH = START + timedelta(hours=10)  # version 2 takes over from version 1


@dataclass(frozen=True)
class ExampleSources:
    """Where :func:`write_example_sources` put each system's records."""

    events: Path
    mlflow_uri: str
    serving_csv: Path
    metrics_csv: Path


def _onnx_logistic(weights: tuple[float, ...], bias: float, path: Path) -> Path:
    """p = sigmoid(x @ w + b) as an ONNX graph (built with onnx.helper: no converter needed)."""
    from onnx import TensorProto, helper, save

    w = helper.make_tensor("w", TensorProto.FLOAT, [len(weights), 1], list(weights))
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [bias])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["pclick"]),
        ],
        "ctr_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", len(weights)])],
        [helper.make_tensor_value_info("pclick", TensorProto.FLOAT, ["batch", 1])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _clicks_kept(t: datetime) -> float:
    """Share of raw.clicks rows that arrive: all of them until the upstream break."""
    return 1.0 if t < ONSET else 0.2


def _serving(rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, per_hour = [], 200
    revenue = []
    for h in range(HOURS):
        t = START + timedelta(hours=h)
        true_ctr = rng.beta(4, 60, per_hour)
        x = np.column_stack(
            [
                true_ctr * _clicks_kept(t),
                rng.gamma(2.0, 20.0, per_hour),
                rng.normal(1, 0.2, per_hour),
            ]
        )
        version = "1" if t < SWITCH else "2"
        w, b, _, _ = VERSIONS[version]
        pred = _sigmoid(x @ np.array(w) + b)
        truth = _sigmoid(np.column_stack([true_ctr, x[:, 1:]]) @ np.array(w) + b)
        clicked = (rng.random(per_hour) < truth).astype(float)
        ms = int(t.timestamp() * 1000) + rng.integers(0, 3_600_000, per_hour)
        rows.append(
            pl.DataFrame(
                {
                    "event_time": ms,
                    "model_name": "ctr",
                    "arm": "control",
                    "model_version": int(version),
                    "pclick": pred,
                    "clicked": clicked,
                    **{f: x[:, j] for j, f in enumerate(FEATURES)},
                }
            )
        )
        # bids are priced by pclick: under-predicting clicks undersells the inventory
        revenue.append(36_000.0 * float(pred.mean()) + rng.normal(0, 40))
    local = [
        (START + timedelta(hours=h)).astimezone(_berlin()).strftime("%Y-%m-%d %H:%M")
        for h in range(HOURS)
    ]
    return pl.concat(rows).sort("event_time"), pl.DataFrame({"hour": local, "revenue_eur": revenue})


def _berlin():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


WAREHOUSE = "postgres://warehouse"


def _column_lineage() -> Any:
    from openlineage.client.generated import column_lineage_dataset as cl

    def field(table: str, column: str) -> Any:
        return cl.InputField(WAREHOUSE, table, column)

    return cl.ColumnLineageDatasetFacet(
        fields={
            "ctr_7d": cl.Fields([field("raw.clicks", "click_id"), field("raw.impressions", "id")]),
            "dwell_s": cl.Fields([field("raw.clicks", "dwell")]),
            "price_rel": cl.Fields([field("raw.impressions", "price")]),
        }
    )


def _inputs(t: datetime, rng: np.random.Generator) -> list[Any]:
    """The job's inputs at ``t`` with their data-quality metrics (row counts)."""
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.generated import data_quality_metrics_input_dataset as dqi

    clicks = int(rng.normal(5000, 60) * _clicks_kept(t))
    impressions = int(rng.normal(80000, 600))
    return [
        InputDataset(
            WAREHOUSE,
            "raw.clicks",
            inputFacets={
                "dataQualityMetrics": dqi.DataQualityMetricsInputDatasetFacet(
                    rowCount=clicks, columnMetrics={"dwell": dqi.ColumnMetrics(nullCount=0)}
                )
            },
        ),
        InputDataset(
            WAREHOUSE,
            "raw.impressions",
            inputFacets={
                "dataQualityMetrics": dqi.DataQualityMetricsInputDatasetFacet(
                    rowCount=impressions, columnMetrics={}
                )
            },
        ),
    ]


def _output(t: datetime, rng: np.random.Generator, lineage: Any) -> Any:
    """The feature table the job wrote at ``t``: row count, size, the mean of ``ctr_7d``."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.generated import data_quality_metrics_dataset as dqd
    from openlineage.client.generated import output_statistics_output_dataset as ost

    rows = int(rng.normal(30000, 200))
    ctr_mean = 0.0625 * _clicks_kept(t) * rng.normal(1, 0.01)
    metrics = {"ctr_7d": dqd.ColumnMetrics(nullCount=0, sum=ctr_mean * rows, count=rows)}
    return OutputDataset(
        "s3://lake",
        "feat.ctr_features",
        facets={
            "columnLineage": lineage,
            "dataQualityMetrics": dqd.DataQualityMetricsDatasetFacet(
                rowCount=rows, columnMetrics=metrics
            ),
        },
        outputFacets={
            "outputStatistics": ost.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=rows * 48
            )
        },
    )


def _events(path: Path, rng: np.random.Generator) -> Path:
    """One COMPLETE run event per hour from the feature job, via the file transport."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.transport.file import FileConfig, FileTransport

    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    lineage = _column_lineage()
    for h in range(HOURS):
        t = START + timedelta(hours=h)
        transport.emit(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=(t + timedelta(minutes=5)).isoformat(),
                run=Run(runId=str(uuid.UUID(int=h + 1))),
                job=Job(namespace="airflow", name="features.ctr_features"),
                inputs=_inputs(t, rng),
                outputs=[_output(t, rng, lineage)],
            )
        )
    return path


def _mlflow_store(folder: Path) -> str:
    """Two registered versions of ``ctr-model``, each an ONNX file logged by its run."""
    from mlflow import MlflowClient

    from .mlflow import _allow_file_store

    uri = (folder / "mlruns").as_uri()
    with _allow_file_store(uri):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.create_experiment("ctr")
        client.create_registered_model("ctr-model")
        for version, (w, b, (start, end), published) in VERSIONS.items():
            run = client.create_run(exp)
            rid = run.info.run_id
            for key, value in (("train_start", start), ("train_end", end)):
                client.log_param(rid, key, value)
            for step, loss in enumerate((0.62, 0.41, 0.35, 0.33, 0.325)):
                client.log_metric(rid, "loss", loss + 0.01 * int(version), step=step)
            model = _onnx_logistic(w, b, folder / "model.onnx")
            client.log_artifact(rid, str(model), artifact_path="model")
            model.unlink()
            client.set_terminated(rid)
            client.create_model_version(
                "ctr-model",
                f"{run.info.artifact_uri}/model",
                run_id=rid,
                tags={"published_at": published},
            )
    return uri


def write_example_sources(folder: str | Path, seed: int = 0) -> ExampleSources:
    """Write the example systems' records into ``folder`` (created; must be empty)."""
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        from .staging import IngestError

        raise IngestError(f"{root}: is not empty; pass a new folder for the example sources")
    rng = np.random.default_rng(seed)
    serving, revenue = _serving(rng)
    serving.write_csv(root / "serving.csv")
    revenue.write_csv(root / "revenue.csv")
    events = _events(root / "events.jsonl", rng)
    uri = _mlflow_store(root)
    return ExampleSources(events, uri, root / "serving.csv", root / "revenue.csv")

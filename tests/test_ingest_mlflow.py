"""`hawknb ingest mlflow`: registered model versions of a real (local) MLflow store.

mlflow-skinny cannot create a SQLite store here (it lacks SQLAlchemy/Alembic), so the store is
MLflow's file store (``file://``), created with ``MlflowClient`` exactly as a team would log to
it; the adapter's code is the same for ``sqlite:///`` and ``http://`` URIs.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from mlflow import MlflowClient
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

import hawknb.ingest as hi
from hawknb.cli import main
from hawknb.ingest import IngestError
from hawknb.workspace import Workspace, WorkspaceError, load_exported_program
from hawknb.workspace import contract as c
from hawknb.workspace.onnx_program import OnnxProgram

NAME = "ctr-ranker"
FEATURES = ["f1", "f2", "f3"]


@pytest.fixture(autouse=True)
def _file_store_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def _onnx(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.random((50, 3)).astype(np.float32)
    model = LinearRegression().fit(x, x @ np.array([1.0, 2.0, seed]))
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    return path


def _pt2(path: Path) -> Path:
    module = torch.nn.Sequential(torch.nn.Linear(3, 1))
    batch = torch.export.Dim("batch")
    ep = torch.export.export(module, (torch.zeros(4, 3),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, str(path))
    return path


def _version(
    client: MlflowClient,
    tmp: Path,
    *,
    params: dict[str, str],
    artifact: Path | None,
    losses: list[float],
    tags: dict[str, str] | None = None,
    name: str = NAME,
) -> str:
    exp = client.get_experiment_by_name("ranker")
    exp_id = exp.experiment_id if exp else client.create_experiment("ranker")
    run = client.create_run(exp_id)
    rid = run.info.run_id
    for k, v in params.items():
        client.log_param(rid, k, v)
    for step, value in enumerate(losses):
        client.log_metric(rid, "loss", value, step=step)
    if artifact is not None:
        client.log_artifact(rid, str(artifact), artifact_path="model")
    client.set_terminated(rid)
    if not any(m.name == name for m in client.search_registered_models()):
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=rid, tags=tags)
    return mv.version


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, datetime, datetime]:
    """Two versions with ONNX files, training windows as run params and loss histories."""
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    _version(
        client,
        tmp_path,
        params={"train_start": "2026-02-20", "train_end": "2026-02-27"},
        artifact=_onnx(tmp_path / "model.onnx", 1),
        losses=[0.9, 0.5, 0.3],
        tags={"published_at": "2026-02-28T06:00:00+01:00"},
    )
    _version(
        client,
        tmp_path,
        params={"train_start": "2026-02-21", "train_end": "2026-02-28"},
        artifact=_onnx(tmp_path / "model.onnx", 2),
        losses=[1.0, 0.6],
        tags={"published_at": "2026-03-01T06:00:00Z"},
    )
    return uri, before, datetime.now(timezone.utc) + timedelta(seconds=1)


def test_versions_become_snapshots_files_and_curves(store, tmp_path: Path) -> None:
    uri, before, after = store
    ws = hi.mlflow(uri, tmp_path / "ws", model=NAME, as_model="ctr", features=FEATURES)
    snaps = pl.read_parquet(ws / "snapshots.parquet")
    assert snaps[c.SNAPSHOT].to_list() == ["1", "2"]
    assert snaps[c.MODEL].unique().to_list() == ["ctr"]
    assert snaps[c.TRAIN_START].to_list() == [
        datetime(2026, 2, 20, tzinfo=timezone.utc),
        datetime(2026, 2, 21, tzinfo=timezone.utc),
    ]
    assert snaps[c.TRAIN_END][1] == datetime(2026, 2, 28, tzinfo=timezone.utc)
    assert all(before <= t <= after for t in snaps[c.PUBLISHED_TS])  # the registration times
    curves = pl.read_parquet(ws / "training_curves.parquet").sort(c.SNAPSHOT, c.STEP)
    assert curves.rows() == [
        ("ctr", "1", 0, 0.9),
        ("ctr", "1", 1, 0.5),
        ("ctr", "1", 2, 0.3),
        ("ctr", "2", 0, 1.0),
        ("ctr", "2", 1, 0.6),
    ]
    folder = ws / "snapshots" / "ctr"
    assert json.loads((folder / "features.json").read_text()) == FEATURES
    assert sorted(p.name for p in folder.iterdir()) == ["1.onnx", "2.onnx", "features.json"]
    # the copied file is the logged one: version 2's model weights f3 by 2
    prog = OnnxProgram(folder / "2.onnx")
    np.testing.assert_allclose(prog.run(np.eye(3, dtype=np.float32)), [1.0, 2.0, 2.0], atol=1e-4)


def test_publication_time_from_a_named_tag(store, tmp_path: Path) -> None:
    uri, _, _ = store
    ws = hi.mlflow(
        uri, tmp_path / "ws", model=NAME, published="published_at", snapshot_name="v{version}"
    )
    snaps = pl.read_parquet(ws / "snapshots.parquet")
    assert snaps[c.SNAPSHOT].to_list() == ["v1", "v2"]
    assert snaps[c.PUBLISHED_TS].to_list() == [
        datetime(2026, 2, 28, 5, tzinfo=timezone.utc),
        datetime(2026, 3, 1, 6, tzinfo=timezone.utc),
    ]


def test_pt2_artifact_is_copied_and_loads(tmp_path: Path) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    _version(
        client,
        tmp_path,
        params={"train_start": "2026-01-01", "train_end": "2026-01-08"},
        artifact=_pt2(tmp_path / "ranker.pt2"),
        losses=[0.4],
    )
    ws = hi.mlflow(uri, tmp_path / "ws", model=NAME)
    ep = load_exported_program(ws / "snapshots" / NAME / "1.pt2")
    assert isinstance(ep, torch.export.ExportedProgram)


def test_a_version_without_a_model_file_is_an_error(tmp_path: Path) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(b"\x80\x04not to be opened")
    _version(
        client,
        tmp_path,
        params={"train_start": "2026-01-01", "train_end": "2026-01-08"},
        artifact=pickled,
        losses=[],
    )
    with pytest.raises(IngestError) as info:
        hi.mlflow(uri, tmp_path / "ws", model=NAME)
    msg = str(info.value)
    assert f"registered model '{NAME}' version 1: has no model file" in msg
    assert "found ['model.pkl']" in msg and "\n" not in msg
    assert not (tmp_path / "ws").exists()


def test_missing_training_window_names_the_field(store, tmp_path: Path) -> None:
    uri, _, _ = store
    with pytest.raises(IngestError, match=rf"'{NAME}' version 1: has no .*named 'window_from'"):
        hi.mlflow(uri, tmp_path / "ws", model=NAME, train_start="window_from")
    assert not (tmp_path / "ws").exists()


def test_unparseable_training_date(tmp_path: Path) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    _version(
        client,
        tmp_path,
        params={"train_start": "last tuesday", "train_end": "2026-01-08"},
        artifact=_onnx(tmp_path / "m.onnx", 1),
        losses=[0.1],
    )
    with pytest.raises(
        IngestError, match=r"version 1: 'train_start' is 'last tuesday', not a date"
    ):
        hi.mlflow(uri, tmp_path / "ws", model=NAME)


def test_unknown_model_and_existing_files(store, tmp_path: Path) -> None:
    uri, _, _ = store
    with pytest.raises(IngestError, match=r"has no registered model 'nope'"):
        hi.mlflow(uri, tmp_path / "ws", model="nope")
    hi.mlflow(uri, tmp_path / "ws", model=NAME)
    with pytest.raises(IngestError, match=r"snapshots\.parquet: already exists"):
        hi.mlflow(uri, tmp_path / "ws", model=NAME)
    hi.mlflow(uri, tmp_path / "ws", model=NAME, force=True)


@pytest.mark.parametrize("quoted", ["o'brien", 'say "hi"', "both'\""])
def test_names_with_quotes_get_only_their_own_versions(store, tmp_path: Path, quoted) -> None:
    """MLflow filters have no escapes: a quote in a name must neither break the listing nor
    let the filter match another model's versions."""
    uri, _, _ = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    _version(
        client,
        tmp_path,
        params={"train_start": "2026-03-01", "train_end": "2026-03-02"},
        artifact=_onnx(tmp_path / "other.onnx", 3),
        losses=[0.5],
        name=quoted,
    )
    hi.mlflow(uri, tmp_path / "ws", model=quoted, as_model="m")
    snaps = pl.read_parquet(tmp_path / "ws" / "snapshots.parquet")
    assert snaps.height == 1
    assert snaps["train_start"].dt.day().to_list() == [1]


def test_cli(store, tmp_path: Path, capsys) -> None:
    uri, _, _ = store
    ws = str(tmp_path / "ws")
    assert (
        main(
            [
                "ingest",
                "mlflow",
                uri,
                ws,
                "--model",
                NAME,
                "--as",
                "ctr",
                "--features",
                "f1,f2,f3",
                "--published",
                "published_at",
            ]
        )
        == 0
    )
    assert "ok:" in capsys.readouterr().out
    assert main(["ingest", "mlflow", uri, ws, "--model", NAME, "--train-end", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hawknb: error: ") and err.count("\n") == 1


def test_missing_extra_names_it(tmp_path: Path, monkeypatch) -> None:
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(IngestError, match=r"pip install 'hawknb\[mlflow\]'"):
        hi.mlflow((tmp_path / "mlruns").as_uri(), tmp_path / "ws", model=NAME)


def test_features_must_be_serving_columns_when_a_log_exists(store, tmp_path: Path) -> None:
    """Validation at the end runs against what the workspace already holds: features.json
    naming a column the serving log lacks is refused, and nothing is written."""
    uri, _, _ = store
    ws = tmp_path / "ws"
    ws.mkdir()
    ts = [datetime(2026, 3, 1, h, tzinfo=timezone.utc) for h in range(3)]
    pl.DataFrame({"ts": ts, "metric": "rev", "value": 1.0}).write_parquet(ws / "metrics.parquet")
    pl.DataFrame(
        {
            "ts": ts,
            "model": "ctr",
            "experiment": "e",
            "snapshot": "2",
            "prediction": 0.1,
            "f1": 1.0,
            "f2": 2.0,
            "f3": 3.0,
        }
    ).write_parquet(ws / "serving.parquet")
    before = sorted(p.name for p in ws.iterdir())
    with pytest.raises(
        WorkspaceError, match=r"features\.json: lists features that are not serving"
    ):
        hi.mlflow(uri, ws, model=NAME, as_model="ctr", features=["f1", "nope"])
    assert sorted(p.name for p in ws.iterdir()) == before
    hi.mlflow(uri, ws, model=NAME, as_model="ctr", features=FEATURES)
    Workspace.open(ws).validate()

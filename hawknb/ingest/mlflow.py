"""An MLflow model registry -> ``snapshots.parquet``, model files and ``training_curves.parquet``.

The registry already knows every version of a model: when it was registered, which run trained
it (whose params or tags say the training window) and how its loss went down. This module reads
that through ``mlflow.MlflowClient`` (the same code works on a local file or SQLite store and a
tracking server) and writes the contract's tables. Model files are *copied*, never loaded by
MLflow: only a ``.pt2`` (torch.export) or ``.onnx`` artifact is taken, and nothing that could be
unpickled (an MLflow pyfunc/sklearn flavour) is ever opened. A version without such a file is an
error naming it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from ..workspace import contract as c
from .staging import IngestError, IngestWarning, missing_extra, staged

#: model artifact suffixes hawknb can run, in order of preference
MODEL_SUFFIXES = c.PROGRAM_SUFFIXES


def _client(tracking_uri: str, registry_uri: str | None) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise missing_extra("mlflow", "mlflow-skinny") from None
    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    except Exception as exc:
        raise IngestError(f"{tracking_uri}: cannot open the MLflow store: {_first(exc)}") from exc


def _first(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


@contextlib.contextmanager
def _allow_file_store(uri: str) -> Iterator[None]:
    """MLflow refuses to open a file store unless MLFLOW_ALLOW_FILE_STORE is set (the backend
    is in maintenance mode); hawknb only reads one, so allow it for the call. MLflow's
    download progress bars are turned off too (the CLI prints one line per result)."""
    env = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if "://" not in uri or uri.startswith("file:"):
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class _Version:
    version: str
    snapshot: str
    run_id: str | None
    published: datetime
    train_start: datetime
    train_end: datetime
    where: str


def _parse_time(value: Any, where: str, name: str) -> datetime:
    """An ISO date or time (naive ones are UTC: training windows are dates) or epoch ms."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        ms = float(value)
        return datetime.fromtimestamp(ms / 1000 if ms > 1e11 else ms, tz=timezone.utc)
    try:
        ts = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise IngestError(
            f"{where}: '{name}' is {value!r}, not a date or ISO 8601 time (e.g. 2026-03-01)"
        ) from exc
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _lookup(name: str, sources: Sequence[tuple[str, dict[str, Any]]], where: str) -> Any:
    for _, values in sources:
        if name in values and values[name] not in (None, ""):
            return values[name]
    kinds = " or ".join(k for k, _ in sources)
    raise IngestError(
        f"{where}: has no {kinds} named '{name}'; Fix: name the one that holds it "
        f"(--train-start/--train-end/--published)"
    )


def _version(
    client: Any, mv: Any, model: str, names: dict[str, str | None], pattern: str
) -> _Version:
    where = f"registered model '{model}' version {mv.version}"
    run = None
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
        except Exception as exc:
            raise IngestError(
                f"{where}: its run {mv.run_id} cannot be read: {_first(exc)}"
            ) from exc
    sources: list[tuple[str, dict[str, Any]]] = [("model version tag", dict(mv.tags or {}))]
    if run is not None:
        sources += [("run param", dict(run.data.params)), ("run tag", dict(run.data.tags))]
    if names["published"]:
        published = _parse_time(_lookup(names["published"], sources, where), where, "published")
    else:
        published = _parse_time(int(mv.creation_timestamp), where, "creation_timestamp")
    start = _parse_time(_lookup(names["train_start"], sources, where), where, names["train_start"])
    end = _parse_time(_lookup(names["train_end"], sources, where), where, names["train_end"])
    try:
        snapshot = pattern.format(version=mv.version, name=model, run_id=mv.run_id or "")
    except (KeyError, IndexError, ValueError) as exc:
        raise IngestError(
            f"--snapshot-name {pattern!r}: use {{version}}, {{name}} or {{run_id}}"
        ) from exc
    return _Version(str(mv.version), snapshot, mv.run_id, published, start, end, where)


def _list_files(repo: Any, path: str | None = None, depth: int = 0) -> list[str]:
    out: list[str] = []
    for info in repo.list_artifacts(path):
        if info.is_dir:
            if depth < 6:
                out += _list_files(repo, info.path, depth + 1)
        else:
            out.append(info.path)
    return out


def _fetch_model(client: Any, model: str, v: _Version, dst_dir: Path) -> Path:
    """Download the version's one ``.pt2``/``.onnx`` artifact into ``dst_dir`` (nothing else:
    a pickled flavour is never even downloaded)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        uri = client.get_model_version_download_uri(model, v.version)
        repo = get_artifact_repository(uri)
        files = _list_files(repo)
    except Exception as exc:
        raise IngestError(f"{v.where}: its artifacts cannot be listed: {_first(exc)}") from exc
    by_suffix = {s: sorted(f for f in files if f.lower().endswith(s)) for s in MODEL_SUFFIXES}
    for suffix in MODEL_SUFFIXES:
        found = by_suffix[suffix]
        if len(found) > 1:
            raise IngestError(
                f"{v.where}: has several {suffix} files {found[:5]}; expected one model file"
            )
        if found:
            dst_dir.mkdir(parents=True, exist_ok=True)
            try:
                return Path(repo.download_artifacts(found[0], str(dst_dir)))
            except Exception as exc:
                raise IngestError(
                    f"{v.where}: {found[0]} cannot be downloaded: {_first(exc)}"
                ) from exc
    raise IngestError(
        f"{v.where}: has no model file; expected one {' or '.join(MODEL_SUFFIXES)} artifact "
        f"(torch.export.save or an ONNX export), found {sorted(files)[:8]}. hawknb never loads "
        "pickled MLflow flavours"
    )


def _check_model(path: Path, where: str) -> None:
    """Open the copied model the way triage will, so a broken file fails the ingest."""
    from ..workspace import WorkspaceError, load_exported_program

    try:
        if path.suffix == ".onnx":
            from ..workspace.onnx_program import load_onnx_program

            load_onnx_program(path)
        else:
            load_exported_program(path)
    except WorkspaceError as exc:
        raise IngestError(f"{where}: its model file does not load: {exc.problem}") from exc


def _curve(client: Any, v: _Version, model: str, loss: str) -> pl.DataFrame | None:
    if v.run_id is None:
        return None
    try:
        history = client.get_metric_history(v.run_id, loss)
    except Exception as exc:
        raise IngestError(f"{v.where}: metric '{loss}' cannot be read: {_first(exc)}") from exc
    points = {}
    for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
        if m.value is not None and math.isfinite(m.value):
            points[int(m.step)] = float(m.value)  # a step logged twice keeps its last value
    if not points:
        return None
    return pl.DataFrame(
        {
            c.MODEL: model,
            c.SNAPSHOT: v.snapshot,
            c.STEP: list(points),
            c.LOSS: list(points.values()),
        },
        schema={c.MODEL: pl.String, c.SNAPSHOT: pl.String, c.STEP: pl.Int64, c.LOSS: pl.Float64},
    )


def _snapshots_frame(model: str, versions: Sequence[_Version]) -> pl.DataFrame:
    utc = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        {
            c.MODEL: [model] * len(versions),
            c.SNAPSHOT: [v.snapshot for v in versions],
            c.PUBLISHED_TS: [v.published for v in versions],
            c.TRAIN_START: [v.train_start for v in versions],
            c.TRAIN_END: [v.train_end for v in versions],
        },
        schema={
            c.MODEL: pl.String,
            c.SNAPSHOT: pl.String,
            c.PUBLISHED_TS: utc,
            c.TRAIN_START: utc,
            c.TRAIN_END: utc,
        },
    ).sort(c.PUBLISHED_TS, c.SNAPSHOT)


def _name_filter(model: str) -> str | None:
    """MLflow's filter grammar has no escape character, only a choice of quote: a name holding
    both quote kinds cannot be written as a filter at all, so it is listed unfiltered."""
    if "'" not in model:
        return f"name = '{model}'"
    if '"' not in model:
        return f'name = "{model}"'
    return None


def _all_versions(client: Any) -> list[Any]:
    """Every registered version by paging through the whole registry, for names no filter
    can express."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(max_results=1000, page_token=token)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def _registered_versions(client: Any, model: str, uri: str) -> list[Any]:
    query = _name_filter(model)
    try:
        listed = client.search_model_versions(query) if query else _all_versions(client)
        # The name is compared again here so that a filter the store reads differently can
        # never bring in another model's versions.
        versions = [mv for mv in listed if mv.name == model]
    except Exception as exc:
        raise IngestError(f"{uri}: cannot list versions of '{model}': {_first(exc)}") from exc
    if not versions:
        raise IngestError(f"{uri}: has no registered model '{model}' (or it has no versions)")
    return sorted(versions, key=lambda mv: int(mv.version))


def ingest_mlflow(
    tracking_uri: str,
    workspace: str | Path,
    *,
    model: str,
    as_model: str | None = None,
    train_start: str = "train_start",
    train_end: str = "train_end",
    published: str | None = None,
    loss: str = "loss",
    snapshot_name: str = "{version}",
    features: Sequence[str] | None = None,
    registry_uri: str | None = None,
    force: bool = False,
) -> Path:
    """Copy every version of registered model ``model`` into ``workspace``.

    Writes ``snapshots.parquet`` (published = the version's creation time, or the tag/param
    named by ``published``; the training window from the run params/tags or version tags named
    ``train_start``/``train_end``), ``snapshots/<as_model>/<snapshot>.pt2|.onnx`` (the version's
    one model file; ``snapshot_name`` formats ``{version}``), ``training_curves.parquet`` from
    the runs' ``loss`` metric history and, when ``features`` is given, ``features.json``.
    """
    name = as_model or model
    if "/" in name or name in ("", ".", ".."):
        raise IngestError(f"model name {name!r}: cannot be a folder name; pass --as NAME")
    ws = Path(workspace)
    names = {"train_start": train_start, "train_end": train_end, "published": published}
    with _allow_file_store(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        client = _client(tracking_uri, registry_uri)
        mvs = _registered_versions(client, model, tracking_uri)
        versions = [_version(client, mv, model, names, snapshot_name) for mv in mvs]
        snaps = [v.snapshot for v in versions]
        dup = sorted({s for s in snaps if snaps.count(s) > 1})
        if dup:
            raise IngestError(f"--snapshot-name {snapshot_name!r}: names two versions {dup}")
        files = {}
        for v in versions:
            local = _fetch_model(client, model, v, Path(tmp) / v.version)
            _check_model(local, v.where)
            files[v.snapshot] = local
        curves = [cv for v in versions if (cv := _curve(client, v, name, loss)) is not None]
        if len(curves) < len(versions):
            warnings.warn(
                f"{tracking_uri}: {len(versions) - len(curves)} version(s) of '{model}' have no "
                f"'{loss}' metric history; training_curves.parquet lacks them",
                IngestWarning,
                stacklevel=2,
            )
        _write(ws, name, versions, files, curves, features, force)
    return ws


def _write(
    ws: Path,
    name: str,
    versions: Sequence[_Version],
    files: dict[str, Path],
    curves: Sequence[pl.DataFrame],
    features: Sequence[str] | None,
    force: bool,
) -> None:
    folder = f"{c.SNAPSHOTS_DIR}/{name}"
    programs = {snap: f"{folder}/{snap}{path.suffix.lower()}" for snap, path in files.items()}
    writes = [c.TABLES["snapshots"].file, *programs.values()]
    if curves:
        writes.append(c.TABLES["training_curves"].file)
    if features is not None:
        writes.append(f"{folder}/{c.FEATURES_FILE}")
    with staged(ws, writes, force=force) as stage:
        _snapshots_frame(name, versions).write_parquet(stage.path(writes[0]))
        for snap, rel in programs.items():
            shutil.copyfile(files[snap], stage.path(rel))
        if curves:
            pl.concat(curves).write_parquet(stage.path(c.TABLES["training_curves"].file))
        if features is not None:
            text = json.dumps([str(f) for f in features])
            stage.path(f"{folder}/{c.FEATURES_FILE}").write_text(text)

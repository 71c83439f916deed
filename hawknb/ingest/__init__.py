"""Write workspaces from the systems a team already runs.

``hawknb.ingest.log`` / ``metrics`` convert a serving log or metrics table in your own schema,
``hawknb.ingest.openlineage`` turns OpenLineage run events into ``lineage.json`` and
``lineage_stats.parquet``, ``hawknb.ingest.mlflow`` copies registered model versions and their
training curves. Each one stages its output beside the workspace, validates it against the
contract and only then renames it into place (see docs/ingest.md). The OpenLineage and MLflow
adapters need the ``openlineage`` / ``mlflow`` extras, imported only when called.

The names ``openlineage`` and ``mlflow`` here are the functions; their modules are
``hawknb.ingest.openlineage`` / ``hawknb.ingest.mlflow`` in ``sys.modules`` (import from them
with ``from hawknb.ingest.openlineage import read_events``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import logs as _logs
from . import mlflow as _mlflow
from . import openlineage as _openlineage
from .staging import IngestError, IngestWarning

__all__ = ["IngestError", "IngestWarning", "log", "metrics", "mlflow", "openlineage"]


def log(source: str | Path, workspace: str | Path, **kwargs: Any) -> Path:
    """A serving log in your own schema -> ``serving.parquet`` (see :func:`.logs.ingest_log`)."""
    return _logs.ingest_log(source, workspace, table="serving", **kwargs)


def metrics(source: str | Path, workspace: str | Path, **kwargs: Any) -> Path:
    """Top-line metrics in your own schema -> ``metrics.parquet`` (see :func:`.logs.ingest_log`)."""
    return _logs.ingest_log(source, workspace, table="metrics", **kwargs)


def openlineage(source: str | Path, workspace: str | Path, **kwargs: Any) -> Path:
    """OpenLineage events -> ``lineage.json`` + ``lineage_stats.parquet`` (see
    :func:`hawknb.ingest.openlineage.ingest_openlineage`)."""
    return _openlineage.ingest_openlineage(source, workspace, **kwargs)


def mlflow(tracking_uri: str, workspace: str | Path, **kwargs: Any) -> Path:
    """Registered model versions -> snapshots, model files and training curves (see
    :func:`hawknb.ingest.mlflow.ingest_mlflow`)."""
    return _mlflow.ingest_mlflow(tracking_uri, workspace, **kwargs)

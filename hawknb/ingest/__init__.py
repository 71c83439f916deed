"""Write workspaces from the systems a team already runs.

``hawknb.ingest.log`` / ``metrics`` convert a serving log or metrics table in your own schema,
``hawknb.ingest.openlineage`` turns OpenLineage run events into ``lineage.json`` and
``lineage_stats.parquet``, ``hawknb.ingest.mlflow`` copies registered model versions and their
training curves. Each one stages its output beside the workspace, validates it against the
contract and only then renames it into place (see docs/ingest.md). The OpenLineage and MLflow
adapters need the ``openlineage`` / ``mlflow`` extras, imported only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .logs import ingest_log
from .staging import IngestError

__all__ = ["IngestError", "log", "metrics"]


def log(source: str | Path, workspace: str | Path, **kwargs: Any) -> Path:
    """A serving log in your own schema -> ``serving.parquet`` (see :func:`.logs.ingest_log`)."""
    return ingest_log(source, workspace, table="serving", **kwargs)


def metrics(source: str | Path, workspace: str | Path, **kwargs: Any) -> Path:
    """Top-line metrics in your own schema -> ``metrics.parquet`` (see :func:`.logs.ingest_log`)."""
    return ingest_log(source, workspace, table="metrics", **kwargs)

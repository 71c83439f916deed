"""`hawknb ingest SOURCE ...`: write or extend a workspace from the systems a team runs.

Sub-commands: ``log`` / ``metrics`` (your own schema), ``openlineage`` (run events),
``mlflow`` (a model registry). Each stages its output beside the workspace, validates it and
only then renames it into place; an existing file is replaced only with ``--force``.
The adapters are imported when their sub-command runs, so ``hawknb --help`` stays fast.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="write a workspace from OpenLineage events, an MLflow registry or your own logs",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    kinds = p.add_subparsers(dest="source_kind", metavar="SOURCE", required=True)
    _register_logs(kinds)
    _register_openlineage(kinds)
    _register_mlflow(kinds)


def _register_logs(kinds: argparse._SubParsersAction) -> None:
    for name, help_ in (
        ("log", "a serving log (Parquet, CSV or a Hive-partitioned folder) -> serving.parquet"),
        ("metrics", "top-line metrics in your own schema -> metrics.parquet"),
    ):
        q = kinds.add_parser(name, help=help_, description=help_)
        q.add_argument("source", help="a .parquet/.csv file or a folder of them")
        q.add_argument("workspace", help="workspace directory (created if missing)")
        q.add_argument(
            "--map",
            default=None,
            metavar="NAME=COLUMN,...",
            help="rename your columns to the contract's, e.g. prediction=score,ts=event_time",
        )
        q.add_argument(
            "--const",
            default=None,
            metavar="NAME=VALUE,...",
            help="add fixed columns the log lacks, e.g. experiment=control",
        )
        q.add_argument("--tz", default=None, help="zone of naive times, e.g. UTC, Europe/Berlin")
        q.add_argument(
            "--ts-unit",
            choices=("s", "ms", "us", "ns"),
            default=None,
            help="unit of epoch-number times (default: judged by magnitude)",
        )
        q.add_argument("--ts-format", default=None, help="strftime format of time strings")
        _force(q)
        q.set_defaults(func=_run_log, table="serving" if name == "log" else "metrics")


def _register_openlineage(kinds: argparse._SubParsersAction) -> None:
    q = kinds.add_parser(
        "openlineage",
        help="OpenLineage run events -> lineage.json + lineage_stats.parquet",
        description="Read OpenLineage run events (a JSON-lines file as the file transport "
        "writes it, or a folder of event .json files).",
    )
    q.add_argument("source", help="events file (JSON lines) or folder of .json events")
    q.add_argument("workspace", help="workspace directory (created if missing)")
    q.add_argument(
        "--features",
        default=None,
        metavar="FEATURE=DATASET.FIELD,...",
        help="map serving feature columns to dataset fields (namespace/name.field or name.field); "
        "unmapped features match a dataset field of the same name",
    )
    q.add_argument(
        "--serving-columns",
        default=None,
        help="feature column names to match by name (default: the workspace's serving log)",
    )
    _force(q)
    q.set_defaults(func=_run_openlineage)


def _register_mlflow(kinds: argparse._SubParsersAction) -> None:
    q = kinds.add_parser(
        "mlflow",
        help="registered model versions of an MLflow store -> snapshots + training curves",
    )
    q.add_argument("tracking_uri", help="tracking store, e.g. sqlite:///mlflow.db or http://host")
    q.add_argument("workspace", help="workspace directory (created if missing)")
    q.add_argument("--model", required=True, help="registered model name")
    q.add_argument("--as", dest="as_model", default=None, help="model name in the workspace")
    q.add_argument("--train-start", default="train_start", help="run param/tag of train start")
    q.add_argument("--train-end", default="train_end", help="run param/tag of train end")
    q.add_argument(
        "--published",
        default=None,
        help="version tag or run param/tag holding the publication time "
        "(default: the version's creation time)",
    )
    q.add_argument("--loss", default="loss", help="run metric recorded as the training loss")
    q.add_argument(
        "--features", default=None, help="the model's input columns in order, comma-separated"
    )
    q.add_argument(
        "--snapshot-name", default="{version}", help="snapshot name pattern (default {version})"
    )
    q.add_argument("--registry-uri", default=None, help="registry URI if not the tracking URI")
    _force(q)
    q.set_defaults(func=_run_mlflow)


def _force(q: argparse.ArgumentParser) -> None:
    q.add_argument("--force", action="store_true", help="replace files the workspace already has")


def _call(fn: Callable[..., object], *args: object, **kwargs: object) -> int:
    """Run an ingest, printing hawknb's own warnings (libraries' noise dropped) and the result."""
    from ..workspace import WorkspaceWarning

    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", WorkspaceWarning)
        out = fn(*args, **kwargs)
    for w in notes:
        print(f"warning: {w.message}")
    print(f"ok: {out}")
    return 0


def _run_log(args: argparse.Namespace) -> int:
    from ..ingest.logs import ingest_log

    return _call(
        ingest_log,
        args.source,
        args.workspace,
        table=args.table,
        mapping=args.map,
        constants=args.const,
        tz=args.tz,
        ts_unit=args.ts_unit,
        ts_format=args.ts_format,
        force=args.force,
    )


def _run_openlineage(args: argparse.Namespace) -> int:
    from ..ingest.logs import parse_mapping
    from ..ingest.openlineage import ingest_openlineage

    cols = [s.strip() for s in args.serving_columns.split(",")] if args.serving_columns else None
    return _call(
        ingest_openlineage,
        args.source,
        args.workspace,
        features=parse_mapping(args.features, "--features"),
        serving_columns=cols,
        force=args.force,
    )


def _run_mlflow(args: argparse.Namespace) -> int:
    from ..ingest.mlflow import ingest_mlflow

    return _call(
        ingest_mlflow,
        args.tracking_uri,
        args.workspace,
        model=args.model,
        as_model=args.as_model,
        train_start=args.train_start,
        train_end=args.train_end,
        published=args.published,
        loss=args.loss,
        snapshot_name=args.snapshot_name,
        features=[f.strip() for f in args.features.split(",")] if args.features else None,
        registry_uri=args.registry_uri,
        force=args.force,
    )

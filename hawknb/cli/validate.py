"""`hawknb validate WS --model M --snapshot S`: candidate snapshot vs its predecessor.

Runs both exported programs on the model's most recent labelled serving rows and applies the
checks of :func:`hawknb.kernels.validate.validate_snapshot`. Exit code 0 when the candidate
passes, 1 when it fails (the reasons are printed), errors as one line.
"""

from __future__ import annotations

import argparse
import json
import warnings

import polars as pl

from ..kernels.validate import ValidationReport, validate_snapshot
from ..workspace import Workspace, WorkspaceWarning
from ..workspace import contract as c
from ..workspace.errors import WorkspaceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a snapshot against its predecessor on recent labelled serving rows",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("workspace", help="workspace directory")
    p.add_argument("--model", required=True, help="model name (as in serving.parquet)")
    p.add_argument("--snapshot", required=True, help="candidate snapshot")
    p.add_argument(
        "--baseline",
        default=None,
        help="baseline snapshot (default: the previous published snapshot that has a program)",
    )
    p.add_argument(
        "--rows", type=int, default=20_000, help="most recent serving rows to use (default 20000)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def previous_snapshot(ws: Workspace, model: str, snapshot: str) -> str:
    """The snapshot served before ``snapshot``: by published_ts in snapshots.parquet, else by
    first rollout with traffic; only snapshots whose program is present qualify."""
    have = {s for _, s in ws.programs(model)}
    order: list[str] = []
    if ws.has("snapshots"):
        df = (
            ws.table("snapshots")
            .filter(pl.col(c.MODEL) == model)
            .sort(c.PUBLISHED_TS)
            .select(c.SNAPSHOT)
            .collect()
        )
        order = df[c.SNAPSHOT].to_list()
    if snapshot not in order and ws.has("rollouts"):
        df = (
            ws.table("rollouts")
            .filter((pl.col(c.MODEL) == model) & (pl.col(c.TRAFFIC) > 0))
            .group_by(c.SNAPSHOT)
            .agg(pl.col(c.TS).min())
            .sort(c.TS)
            .collect()
        )
        order = df[c.SNAPSHOT].to_list()
    if snapshot not in order:
        raise WorkspaceError(
            f"snapshot {model}/{snapshot}",
            "has no publication or rollout record to order it by",
            fix="pass --baseline explicitly",
        )
    earlier = [s for s in order[: order.index(snapshot)] if s in have]
    if not earlier:
        raise WorkspaceError(
            f"snapshot {model}/{snapshot}",
            "has no earlier snapshot with an exported program",
            expected=f"a {ws.program_file(model)} published before it",
            fix="pass --baseline explicitly",
        )
    return earlier[-1]


def held_out_rows(ws: Workspace, model: str, features: list[str], rows: int) -> pl.DataFrame:
    """The model's most recent serving rows, labelled ones only when there are any."""
    serving = ws.serving.filter(pl.col(c.MODEL) == model)
    has_label = c.LABEL in ws.serving.collect_schema().names()
    cols = [c.TS, *features] + ([c.LABEL] if has_label else [])
    if has_label:
        labelled = serving.filter(pl.col(c.LABEL).is_not_null() & pl.col(c.LABEL).is_not_nan())
        df = labelled.sort(c.TS, descending=True).head(rows).select(cols).collect()
        if df.height:
            return df
    return serving.sort(c.TS, descending=True).head(rows).select(cols).collect()


def _print(report: ValidationReport, model: str, cand: str, base: str) -> None:
    verdict = "PASS" if report.passed else "FAIL"
    print(f"{verdict}: {model}/{cand} vs baseline {base} on {report.n_rows} rows")
    for r in report.reasons:
        print(f"  fail: {r}")
    for w in report.warnings:
        print(f"  warning: {w}")
    cs, bs = report.candidate, report.baseline

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    print(f"  {'measure':<16}{'candidate':>12}{'baseline':>12}")
    for name in ("ne", "log_loss", "mse", "calibration", "mean", "nonfinite_rate"):
        print(f"  {name:<16}{fmt(getattr(cs, name)):>12}{fmt(getattr(bs, name)):>12}")
    print(f"  psi {report.psi:.4f}")


def run(args: argparse.Namespace) -> int:
    if args.rows <= 0:
        raise WorkspaceError("--rows", "must be positive", found=str(args.rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WorkspaceWarning)
        ws = Workspace.open(args.workspace)
    model, cand = args.model, args.snapshot
    if model not in ws.models():
        raise WorkspaceError(
            f"--model {model}", "is not in the serving log", found=f"models {ws.models()[:10]}"
        )
    have = {s for _, s in ws.programs(model)}
    if cand not in have:
        raise WorkspaceError(
            f"snapshot {model}/{cand}",
            "has no exported program",
            expected=ws.program_file(model, cand),
            found=f"programs for {sorted(have)[:10]}",
        )
    base = args.baseline or previous_snapshot(ws, model, cand)
    if base not in have:
        raise WorkspaceError(
            f"--baseline {base}", "has no exported program", found=f"programs for {sorted(have)}"
        )
    features = ws.features(model)
    if not features:
        raise WorkspaceError(f"model {model}", "has no feature columns in the serving log")
    df = held_out_rows(ws, model, features, args.rows)
    if df.is_empty():
        raise WorkspaceError(f"model {model}", "has no serving rows to validate on")
    labels = df[c.LABEL] if c.LABEL in df.columns else None
    report = validate_snapshot(
        ws.load_program(model, cand),
        ws.load_program(model, base),
        df,
        labels,
        feature_names=features,
    )
    if args.json:
        out = {"model": model, "snapshot": cand, "baseline_snapshot": base, **report.to_dict()}
        print(json.dumps(out, indent=2))
    else:
        _print(report, model, cand, base)
    return 0 if report.passed else 1

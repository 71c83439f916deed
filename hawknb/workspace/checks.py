"""Content checks of a workspace: one aggregate query per table, errors that name the fix."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..engine import collect
from . import contract as c
from .errors import WorkspaceError, WorkspaceWarning

if TYPE_CHECKING:
    from .workspace import Workspace


_PACKAGE = str(Path(__file__).resolve().parents[1])


def _warn(out: list[str], msg: str) -> None:
    out.append(msg)
    warnings.warn(msg, WorkspaceWarning, stacklevel=_outside_level())


def _outside_level() -> int:
    """The stack level of the first frame outside hawknb, so a warning points at the user's
    call whichever check (at whatever depth) raised it."""
    frame, level = sys._getframe(2), 2  # 2: the caller of _warn
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def _read(ws: Workspace, name: str, lf: pl.LazyFrame) -> pl.DataFrame:
    try:
        return collect(lf)
    except WorkspaceError:
        raise
    except Exception as exc:
        raise WorkspaceError(
            ws.where(name),
            "cannot be read",
            found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            fix="re-export the table as Parquet",
        ) from exc


def validate_contents(ws: Workspace) -> list[str]:
    """See `Workspace.validate`."""
    out: list[str] = []
    for name, spec in c.TABLES.items():
        if ws.has(name):
            _check_table(ws, name, spec, out)
    _check_rollouts(ws)
    _check_snapshot_refs(ws)
    _check_feature_lists(ws, out)
    _check_programs(ws, out)
    graph = ws.lineage()
    if graph is not None and ws.has("lineage_stats"):
        nodes = ws.table("lineage_stats").select(pl.col(c.NODE).unique()).collect()[c.NODE]
        unknown = sorted(set(nodes.to_list()) - set(graph.nodes))
        if unknown:
            _warn(
                out,
                f"{ws.where('lineage_stats')}: nodes {unknown[:5]} are not in the lineage graph",
            )
    return out


def _check_table(ws: Workspace, name: str, spec: Any, out: list[str]) -> None:
    """One pass over a table for its row count, nulls in required columns, duplicate keys
    and non-finite floats; errors for what breaks the contract, warnings for evidence."""
    lf = ws.table(name)
    where = ws.where(name)
    schema = lf.collect_schema()
    required = list(spec.required)
    aggs = [pl.len().alias("__rows")]
    aggs += [pl.col(col).null_count().alias(f"__null_{col}") for col in required]
    key = [k for k in spec.key if k in schema]
    if key:
        aggs.append(pl.struct(key).is_duplicated().sum().alias("__dup"))
    float_cols = [col for col in required if spec.required[col] == "float"]
    if name == "serving":
        float_cols = [*float_cols, *ws.feature_columns]
    aggs += [
        pl.col(col).cast(pl.Float64).is_nan().sum().alias(f"__nan_{col}") for col in float_cols
    ]
    aggs += [
        pl.col(col).cast(pl.Float64).is_infinite().sum().alias(f"__inf_{col}") for col in float_cols
    ]
    row = _read(ws, name, lf.select(aggs)).row(0, named=True)
    if row["__rows"] == 0:
        if spec.mandatory:
            raise WorkspaceError(where, "is empty", expected="at least one row")
        _warn(out, f"{where}: is empty; the steps that need it are skipped")
        return
    for col in required:
        nulls = row[f"__null_{col}"]
        if nulls and not (name == "serving" and col == c.PREDICTION):
            raise WorkspaceError(
                f"{where}, column '{col}'",
                f"has {nulls} null values",
                expected="no nulls in a required column",
                fix="drop or fill those rows",
            )
    if key and row["__dup"]:
        raise WorkspaceError(
            where,
            f"has {row['__dup']} duplicate rows for the key {key}",
            expected="one row per key",
            fix="deduplicate (e.g. df.drop_duplicates(subset=key))",
        )
    if name == "serving":
        dup_rows = _duplicate_rows(ws, lf, required)
        if dup_rows:
            _warn(out, f"{where}: {dup_rows} rows are exact duplicates")
    _check_non_finite(name, where, float_cols, row, out)


def _check_non_finite(
    name: str, where: str, float_cols: list[str], row: dict[str, Any], out: list[str]
) -> None:
    """NaN/inf in the serving log are evidence (warned, kept), in metrics ignored (warned),
    anywhere else a contract error."""
    for col in float_cols:
        nan, inf = row[f"__nan_{col}"], row[f"__inf_{col}"]
        if not (nan or inf):
            continue
        if name == "serving":
            what = "prediction" if col == c.PREDICTION else "feature"
            _warn(
                out,
                f"{where}, {what} '{col}': {nan} NaN and {inf} inf values "
                "(kept: they are evidence)",
            )
        elif name == "metrics":
            _warn(out, f"{where}, column '{col}': {nan} NaN and {inf} inf values are ignored")
        else:
            raise WorkspaceError(
                f"{where}, column '{col}'",
                f"has {nan} NaN and {inf} inf values",
                expected="finite numbers",
                fix="drop or fix those rows",
            )


def _check_feature_lists(ws: Workspace, out: list[str]) -> None:
    """An empty features.json is legal JSON but says the model reads nothing: triage would
    find no feature to blame and answer 'none' without saying why, so say it here."""
    for model, names in sorted(ws._features_given.items()):
        if not names:
            where = (
                str(ws.root / c.SNAPSHOTS_DIR / model / c.FEATURES_FILE)
                if ws.root
                else f"features[{model!r}]"
            )
            _warn(
                out,
                f"{where}: lists no features, so model '{model}' has no inputs to check "
                "(feature and lineage steps find nothing for it)",
            )


def _check_programs(ws: Workspace, out: list[str]) -> None:
    """Check every snapshot's exported program the way loading it would (without loading
    it): a refused program is a warning here, so the rest of the workspace is still usable,
    and `hawknb check` turns it into its error."""
    for _key, problem in sorted(ws.program_problems().items()):
        _warn(out, str(problem))


def _duplicate_rows(ws: Workspace, lf: pl.LazyFrame, narrow: list[str]) -> int:
    """Rows that are exact duplicates of another row (every copy counted).

    Two equal rows are equal in the ``narrow`` columns too, so the rows whose narrow columns
    hash to a repeated value are the only candidates: a streamed pass hashes those few
    columns, and only the candidates (none, in a log with distinct timestamps or predictions)
    are compared on every column. Hashing all columns of every row would hold the whole log
    in memory.
    """
    hashes = _read(ws, "serving", lf.select(pl.struct(narrow).hash().alias("__h")))["__h"]
    repeats = hashes.is_duplicated()
    if not repeats.any():
        return 0
    repeated = hashes.filter(repeats).unique()
    candidates = lf.filter(pl.struct(narrow).hash().is_in(repeated.implode()))
    return int(
        _read(ws, "serving", candidates.select(pl.struct(pl.all()).is_duplicated().sum())).item()
    )


def _check_rollouts(ws: Workspace) -> None:
    if not ws.has("rollouts"):
        return
    where = ws.where("rollouts")
    lf = ws.table("rollouts")
    bad = lf.filter((pl.col(c.TRAFFIC) < 0) | (pl.col(c.TRAFFIC) > 1)).head(1).collect()
    if bad.height:
        r = bad.row(0, named=True)
        raise WorkspaceError(
            f"{where}, column '{c.TRAFFIC}'",
            f"is out of range at {r[c.TS]} for {r[c.MODEL]}/{r[c.EXPERIMENT]}",
            expected="a share in [0, 1]",
            found=str(r[c.TRAFFIC]),
        )
    sums = (
        lf.group_by(c.TS, c.MODEL, c.EXPERIMENT)
        .agg(pl.col(c.TRAFFIC).sum())
        .filter((pl.col(c.TRAFFIC) - 1).abs() > 1e-6)
        .sort(c.TS)
        .head(1)
        .collect()
    )
    if sums.height:
        r = sums.row(0, named=True)
        raise WorkspaceError(
            where,
            f"shares at {r[c.TS]} for {r[c.MODEL]}/{r[c.EXPERIMENT]} do not sum to 1",
            expected="every snapshot with a non-zero share listed, shares summing to 1",
            found=f"{r[c.TRAFFIC]:.6g}",
        )


def _check_snapshot_refs(ws: Workspace) -> None:
    known = []
    for name in ("rollouts", "snapshots"):
        if ws.has(name):
            known.append(ws.table(name).select(c.MODEL, c.SNAPSHOT).unique())
    if not known:
        return
    ref = pl.concat(known).unique()
    missing = (
        ws.serving.select(c.MODEL, c.SNAPSHOT)
        .unique()
        .join(ref, on=[c.MODEL, c.SNAPSHOT], how="anti")
        .sort(c.MODEL, c.SNAPSHOT)
        .collect()
    )
    if missing.height:
        pairs = [f"{m}/{s}" for m, s in missing.iter_rows()]
        tables = " / ".join(ws.where(n) for n in ("rollouts", "snapshots") if ws.has(n))
        raise WorkspaceError(
            ws.where("serving"),
            "serves snapshots that are not in the rollout/snapshot tables",
            expected=f"every (model, snapshot) to appear in {tables}",
            found=", ".join(pairs[:5]) + (" ..." if len(pairs) > 5 else ""),
            fix="add them to rollouts.parquet/snapshots.parquet or fix the serving log",
        )

"""`hawknb anomalies INPUT... --out DIR`: per-row anomaly scores for NAB-style CSV files.

Each input is a CSV with ``timestamp,value`` columns or a folder searched recursively for
them. The output mirrors the input layout under DIR (paths relative to the folder given; a
file given directly lands under its own name) with ``timestamp,value,anomaly_score``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from .._io import replacing_dir
from ..kernels.anomaly import anomaly_scores
from ..workspace.errors import HawknbError, WorkspaceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anomalies",
        help="score NAB-style timestamp,value CSV files for anomalies",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="CSV files or folders of them")
    p.add_argument(
        "--out",
        required=True,
        help="output folder, written whole: replaces an earlier `anomalies` output; any other "
        "existing folder needs --force; never one holding or inside an input",
    )
    p.add_argument("--force", action="store_true", help="replace an --out folder with other data")
    p.add_argument(
        "--causal",
        action="store_true",
        help="streaming scores: a row's score uses only the rows up to it (default: offline)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="also write an is_anomaly column (anomaly_score >= T)",
    )
    p.set_defaults(func=run)


def _collect_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(source file, output path relative to --out) for every CSV to score."""
    pairs: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.csv") if p.is_file())
            if not found:
                raise HawknbError(f"{path}: folder holds no .csv file")
            pairs += [(p, p.relative_to(path)) for p in found]
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        else:
            raise HawknbError(f"{path}: no such file or folder")
    seen: dict[Path, Path] = {}
    for src, rel in pairs:
        if rel in seen and seen[rel] != src:
            raise HawknbError(
                f"{src} and {seen[rel]} would both be written to {rel}; give them separately"
            )
        seen[rel] = src
    return pairs


def _score_file(src: Path, causal: bool, threshold: float | None) -> pl.DataFrame:
    try:
        df = pl.read_csv(src, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise WorkspaceError(str(src), "could not be read as CSV", found=str(exc)) from exc
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise WorkspaceError(
            str(src),
            f"missing column(s) {missing}",
            expected="a header with timestamp,value",
            found=",".join(df.columns),
        )
    if df.height == 0:
        raise WorkspaceError(str(src), "has no rows", fix="remove the file or add data")
    value = df["value"]
    if value.dtype == pl.String:
        conv = value.cast(pl.Float64, strict=False)
        bad = conv.is_null() & value.is_not_null() & ~value.str.to_lowercase().is_in(["nan", ""])
        if bad.any():
            first = value.filter(bad)[0]
            raise WorkspaceError(
                str(src), "column value is not numeric", found=repr(first), fix="clean the file"
            )
        value = conv
    try:
        scores = anomaly_scores(value, df["timestamp"], causal=causal)
    except ValueError as exc:
        raise WorkspaceError(str(src), str(exc)) from exc
    out = df.select("timestamp", "value").with_columns(anomaly_score=pl.Series(scores))
    if threshold is not None:
        out = out.with_columns(is_anomaly=(pl.col("anomaly_score") >= threshold).cast(pl.Int8))
    return out


def _write_csv(df: pl.DataFrame, dest: Path) -> None:
    """polars reports a failed write as its own error type; as OSError it becomes one line."""
    try:
        df.write_csv(dest)
    except pl.exceptions.PolarsError as exc:
        raise OSError(f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__) from exc


def run(args: argparse.Namespace) -> int:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise HawknbError(f"--threshold must be in [0, 1], got {args.threshold}")
    pairs = _collect_inputs(args.inputs)
    out_dir = Path(args.out)
    # scored into a temporary folder renamed into place at the end: a failure half-way (a bad
    # CSV, a full disk) leaves the previous output whole; inputs can never be overwritten
    with replacing_dir(out_dir, force=args.force, keep_out=args.inputs) as tmp:
        for k, (src, rel) in enumerate(pairs, 1):
            print(f"[{k}/{len(pairs)}] {src}", file=sys.stderr, flush=True)
            result = _score_file(src, args.causal, args.threshold)
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            _write_csv(result, dest)
    print(f"wrote {len(pairs)} file(s) under {out_dir}", file=sys.stderr)
    return 0

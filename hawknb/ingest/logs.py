"""Serving logs and metrics in your own schema -> ``serving.parquet`` / ``metrics.parquet``.

A team's serving log already exists, with its own column names (``score``, ``event_time``,
``model_version``), its own time format (epoch seconds or milliseconds, naive local times)
and its own layout (one Parquet file, CSV, a Hive-partitioned folder). Renaming it by hand is
where the contract gets subtly wrong (a naive time read as UTC, a version read as a float), so
this module does the conversion in one streamed polars query: scan, rename, parse the time
into UTC, cast the contract's columns, sink to Parquet. The log is never loaded whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from ..workspace import contract as c
from .staging import IngestError, staged

TimeUnit = Literal["s", "ms", "us", "ns"]

#: the table each kind of log becomes, and the kinds of its columns
_TABLES = ("serving", "metrics")
_EPOCH_SCALE = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def parse_mapping(text: str | None, what: str = "--map") -> dict[str, str]:
    """``prediction=score,ts=event_time`` -> ``{"prediction": "score", "ts": "event_time"}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise IngestError(
                f"{what} '{part}': expected NAME=VALUE pairs separated by commas, "
                "e.g. prediction=score,ts=event_time"
            )
        out[key.strip()] = value.strip()
    return out


def _scan(source: Path) -> tuple[pl.LazyFrame, str]:
    """A lazy scan of a Parquet/CSV file or folder (Hive partitions become columns)."""
    if not source.exists():
        raise IngestError(f"{source}: does not exist")
    if source.is_dir():
        parquet = sorted(source.rglob("*.parquet"))
        csv = sorted(source.rglob("*.csv"))
        if parquet and csv:
            raise IngestError(f"{source}: holds both Parquet and CSV files; pass one kind")
        if not parquet and not csv:
            raise IngestError(f"{source}: holds no .parquet or .csv files")
        if parquet:
            return pl.scan_parquet(source / "**/*.parquet", hive_partitioning=True), "parquet"
        return pl.scan_csv(source / "**/*.csv", try_parse_dates=False), "csv"
    name = source.name.lower()
    if name.endswith(".parquet"):
        return pl.scan_parquet(source), "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        sep = "\t" if name.endswith(".tsv") else ","
        return pl.scan_csv(source, separator=sep, try_parse_dates=False), "csv"
    raise IngestError(f"{source}: unknown format; expected .parquet, .csv, .tsv or a folder")


def _schema(lf: pl.LazyFrame, source: Path) -> pl.Schema:
    try:
        return lf.collect_schema()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise IngestError(f"{source}: cannot be read: {type(exc).__name__}: {first[:200]}") from exc


def _guess_unit(lf: pl.LazyFrame, col: str) -> TimeUnit:
    """Epoch unit from the magnitude of the first non-null values (2001..2286 in seconds is
    1e9..1e10; the same instants are 1e12.. in ms, 1e15.. in us, 1e18.. in ns)."""
    head = lf.select(pl.col(col).drop_nulls().abs().head(100)).collect()[col]
    if head.len() == 0:
        return "s"
    mag = float(head.median())  # type: ignore[arg-type]
    if mag == 0 or not math.isfinite(mag):
        return "s"
    digits = math.log10(mag)
    return "s" if digits < 11.5 else "ms" if digits < 14.5 else "us" if digits < 17.5 else "ns"


def _time_expr(
    lf: pl.LazyFrame,
    col: str,
    dtype: pl.DataType,
    *,
    tz: str | None,
    unit: TimeUnit | None,
    fmt: str | None,
    where: str,
) -> pl.Expr:
    """The expression turning the log's time column into UTC microsecond timestamps."""
    e = pl.col(col)
    if dtype.is_numeric():
        u = unit or _guess_unit(lf, col)
        if u == "ns":
            e = pl.from_epoch(e.cast(pl.Int64), time_unit="ns")
        else:
            scale = _EPOCH_SCALE[u]
            e = pl.from_epoch((e.cast(pl.Float64) * scale).round().cast(pl.Int64), time_unit="us")
        return e.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.String:
        has_offset = _strings_have_offset(lf, col)
        if not has_offset and tz is None:
            raise IngestError(
                f"{where}: holds naive time strings (no zone or offset); Fix: pass --tz (tz=) "
                "with the zone they were written in, e.g. --tz UTC or --tz Europe/Berlin"
            )
        zone = "UTC" if has_offset else tz
        e = e.str.strip_chars().str.to_datetime(
            format=fmt, strict=True, time_unit="us", time_zone=zone, ambiguous="earliest"
        )
        return e.dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        return _zone(e, tz, dtype.time_zone is not None, where).dt.cast_time_unit("us")
    if dtype == pl.Date:
        return _zone(e.cast(pl.Datetime("us")), tz, False, where)
    raise IngestError(
        f"{where}: is {dtype}; expected a timestamp, a date, epoch numbers or time strings"
    )


def _zone(e: pl.Expr, tz: str | None, aware: bool, where: str) -> pl.Expr:
    """Naive times are read in ``tz`` (required for them); aware times are converted."""
    if aware:
        return e.dt.convert_time_zone("UTC")
    if tz is None:
        raise IngestError(
            f"{where}: has naive times (no zone); Fix: pass --tz (tz=) with the zone they were "
            "written in, e.g. --tz UTC or --tz Europe/Berlin"
        )
    return e.dt.replace_time_zone(tz, ambiguous="earliest").dt.convert_time_zone("UTC")


_OFFSET = r"(Z|z|[+-]\d\d(:?\d\d)?)$"


def _strings_have_offset(lf: pl.LazyFrame, col: str) -> bool:
    """Whether the log's time strings carry a zone offset (judged on the first values)."""
    head = lf.select(pl.col(col).drop_nulls().str.strip_chars().head(20)).collect()[col]
    return bool(head.len()) and bool(head.str.contains(_OFFSET).all())


def _first_bad_time(lf: pl.LazyFrame, col: str, fmt: str | None) -> tuple[int, str] | None:
    """Row number (0-based) and text of the first time string that does not parse."""
    parsed = (
        pl.col(col).str.strip_chars().str.to_datetime(format=fmt, strict=False, time_zone="UTC")
    )
    bad = (
        lf.select(pl.col(col))
        .with_row_index("__row")
        .filter(pl.col(col).is_not_null() & parsed.is_null())
        .head(1)
        .collect()
    )
    if bad.height == 0:
        return None
    return int(bad["__row"][0]), str(bad[col][0])


_KINDS = {
    "serving": {c.MODEL: "str", c.EXPERIMENT: "str", c.SNAPSHOT: "str", c.PREDICTION: "float"},
    "metrics": {c.METRIC: "str", c.VALUE: "float", c.SEGMENT: "str"},
}


def _cast(col: str, kind: str, dtype: pl.DataType, where: str) -> pl.Expr:
    if kind == "str":
        return pl.col(col).cast(pl.String)
    if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
        raise IngestError(
            f"{where}, column '{col}': is {dtype}; expected numbers. Fix: map another column to "
            f"'{col}' with --map {col}=YOUR_COLUMN"
        )
    return pl.col(col).cast(pl.Float64)


def _rename(
    lf: pl.LazyFrame,
    schema: pl.Schema,
    mapping: Mapping[str, str],
    constants: Mapping[str, str],
    where: str,
) -> pl.LazyFrame:
    """Apply ``contract_name=log_column`` renames and ``column=value`` constants, refusing a
    mapping that names a missing column or would leave two columns with one name."""
    names = list(schema.names())
    for target, src in mapping.items():
        if src not in schema:
            raise IngestError(
                f"{where}: --map {target}={src} names column '{src}', which the log lacks; "
                f"it has {names[:20]}"
            )
    renamed = {src: target for target, src in mapping.items() if src != target}
    after = [renamed.get(n, n) for n in names]
    clash = sorted({n for n in after if after.count(n) > 1})
    if clash:
        raise IngestError(
            f"{where}: --map gives two columns the name {clash}; Fix: map only one of them, or "
            "drop the log's own column of that name"
        )
    lf = lf.rename(renamed)
    for col, value in constants.items():
        if col in after:
            raise IngestError(
                f"{where}: --const {col}={value} names a column the log already has; Fix: drop "
                "--const or map that column away"
            )
        lf = lf.with_columns(pl.lit(value).alias(col))
    return lf


def _convert(
    lf: pl.LazyFrame,
    table: str,
    *,
    tz: str | None,
    unit: TimeUnit | None,
    fmt: str | None,
    where: str,
    ts_source: str,
) -> pl.LazyFrame:
    schema = lf.collect_schema()
    spec = c.TABLES[table]
    missing = [col for col in spec.required if col not in schema]
    if missing:
        raise IngestError(
            f"{where}: lacks the contract's columns {missing} (it has {list(schema.names())[:20]}); "
            f"Fix: --map {missing[0]}=YOUR_COLUMN or --const {missing[0]}=VALUE"
        )
    exprs = [
        _time_expr(
            lf,
            c.TS,
            schema[c.TS],
            tz=tz,
            unit=unit,
            fmt=fmt,
            where=f"{where}, column '{ts_source}'",
        ).alias(c.TS)
    ]
    kinds = dict(_KINDS[table])
    if table == "serving":
        kinds[c.LABEL] = "float"
    for col, kind in kinds.items():
        if col in schema:
            exprs.append(_cast(col, kind, schema[col], f"{where}, column '{col}'").alias(col))
    return lf.with_columns(exprs)


def ingest_log(
    source: str | Path,
    workspace: str | Path,
    *,
    table: Literal["serving", "metrics"] = "serving",
    mapping: Mapping[str, str] | str | None = None,
    constants: Mapping[str, str] | str | None = None,
    tz: str | None = None,
    ts_unit: TimeUnit | None = None,
    ts_format: str | None = None,
    force: bool = False,
) -> Path:
    """Convert a serving log (``table="serving"``) or metrics table in your own schema into the
    workspace's ``serving.parquet`` / ``metrics.parquet``, streamed, and validate the result.

    ``mapping`` renames log columns to the contract's (``{"prediction": "score"}`` or the
    string ``"prediction=score,ts=event_time"``); ``constants`` adds fixed columns
    (``experiment=control``). Time columns may be timestamps (naive ones read in ``tz``),
    epoch numbers (``ts_unit`` s/ms/us/ns, else judged by magnitude) or strings (``ts_format``
    in strftime notation, else inferred; naive strings read in ``tz``). Returns the workspace.
    """
    if table not in _TABLES:
        raise IngestError(f"table '{table}': expected one of {list(_TABLES)}")
    if ts_unit is not None and ts_unit not in _EPOCH_SCALE:
        raise IngestError(f"--ts-unit '{ts_unit}': expected one of {list(_EPOCH_SCALE)}")
    src = Path(source)
    mapping = parse_mapping(mapping) if isinstance(mapping, str) or mapping is None else mapping
    constants = (
        parse_mapping(constants, "--const")
        if isinstance(constants, str) or constants is None
        else constants
    )
    if tz is not None:
        _check_zone(tz)
    lf, kind = _scan(src)
    where = str(src)
    lf = _rename(lf, _schema(lf, src), mapping, constants, where)
    ts_source = mapping.get(c.TS, c.TS)
    out = _convert(lf, table, tz=tz, unit=ts_unit, fmt=ts_format, where=where, ts_source=ts_source)
    file = c.TABLES[table].file
    with staged(workspace, [file], force=force) as stage:
        _sink(
            out, stage.path(file), lf, where, ts_source, ts_format, kind == "csv" and src.is_file()
        )
    return Path(workspace)


def _check_zone(tz: str) -> None:
    try:
        pl.select(pl.datetime(2000, 1, 1).dt.replace_time_zone(tz))
    except Exception as exc:
        raise IngestError(
            f"--tz '{tz}': is not a known time zone; expected an IANA name like UTC or "
            "America/New_York"
        ) from exc


def _sink(
    out: pl.LazyFrame,
    path: Path,
    raw: pl.LazyFrame,
    where: str,
    ts_source: str,
    fmt: str | None,
    csv: bool,
) -> None:
    try:
        out.sink_parquet(path)
    except pl.exceptions.PolarsError as exc:
        if raw.collect_schema()[c.TS] == pl.String:
            bad = _first_bad_time(raw, c.TS, fmt)
            if bad is not None:
                row, text = bad
                at = f"line {row + 2}" if csv else f"row {row + 1}"
                hint = f" with format {fmt!r}" if fmt else "; Fix: pass --ts-format"
                raise IngestError(
                    f"{where}, {at}, column '{ts_source}': cannot parse {text[:60]!r} "
                    f"as a time{hint}"
                ) from exc
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise IngestError(
            f"{where}: cannot be converted: {type(exc).__name__}: {first[:200]}"
        ) from exc

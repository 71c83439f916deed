"""How data crosses from the kernel to the browser: Arrow IPC for tables, typed arrays for tensors.

Stable API (other widgets build on it; keep signatures):

- ``to_polars(frame, where) -> pl.DataFrame``: accept polars (eager/lazy) or pandas, never mutate.
- ``table_to_ipc(frame, columns=None) -> bytes``: an Arrow IPC *stream* the JS side decodes with
  ``decodeTable`` from ``js/src/_shared/arrow.js``. Datetime/date columns cross as Float64 epoch
  **milliseconds** (UTC), so JS gets plain numbers usable by ``new Date(ms)``; integers other
  than Int64 keep their type, Int64/UInt64 become Float64 (no BigInt in JS); NaN stays NaN,
  null stays null; strings/categoricals cross as UTF-8 strings.
- ``ipc_to_table(data) -> pl.DataFrame``: the inverse (used by tests and by reply handlers).
- ``typed_array(arr) -> tuple[dict, bytes]``: a numpy/torch tensor as ``({"dtype", "shape"},
  little-endian bytes)``; JS rebuilds it with ``typedArray(meta, dataView)``.
- ``to_ms(value) -> float | None``: any timestamp-ish scalar (datetime, date, pandas Timestamp,
  numpy datetime64, ISO string, epoch-ms number) to UTC epoch milliseconds.
- ``ms_to_iso(ms) -> str``: epoch ms to an ISO-8601 UTC string ("...Z").
- ``jsonable(obj)``: dataclasses / numpy / datetimes / NaN made JSON-safe (NaN, inf -> None).
- ``records(obj) -> list[dict]``: a list of dicts/dataclasses/objects or a frame as dicts.

Why Arrow and typed arrays: JSON of a 500k-point series is ~20 MB and slow to parse; widget
state travels over the comm as binary buffers when a trait is ``Bytes``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_polars(frame: object, where: str = "frame") -> pl.DataFrame:
    """Accept a polars (eager or lazy) or pandas frame without mutating it.

    Widgets take plain data from the triage layer and from users, so the accepted input is broad;
    anything else is a user error named by ``where``.
    """
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        return pl.from_pandas(frame, nan_to_null=False)
    if isinstance(frame, Mapping):
        return pl.DataFrame(dict(frame))
    if isinstance(frame, list) and (not frame or isinstance(frame[0], Mapping)):
        return pl.DataFrame(frame)
    raise ValueError(
        f"{where}: expected a polars or pandas DataFrame, got {type(frame).__name__}. "
        "Fix: pass a DataFrame (polars or pandas) or a list of dicts."
    )


def _wire_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Cast columns to the types the browser reads without BigInt or timezone handling."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            exprs.append(col.dt.epoch("us").cast(pl.Float64).truediv(1000.0).alias(name))
        elif dtype == pl.Date:
            exprs.append(col.cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Float64).alias(name))
        elif dtype in (pl.Int64, pl.UInt64, pl.UInt32):
            exprs.append(col.cast(pl.Float64))
        elif dtype in (pl.Categorical, pl.Enum) or isinstance(dtype, (pl.Categorical, pl.Enum)):
            exprs.append(col.cast(pl.String))
        elif dtype == pl.Boolean:
            exprs.append(col.cast(pl.UInt8))
        elif dtype.is_numeric() or dtype == pl.String:
            exprs.append(col)
        elif dtype == pl.Null:
            exprs.append(col.cast(pl.Float64))
        else:
            exprs.append(col.cast(pl.String))
    return df.select(exprs) if exprs else df


def table_to_ipc(frame: object, columns: Iterable[str] | None = None) -> bytes:
    """Serialize a frame (or chosen columns) to an Arrow IPC stream for a ``Bytes`` trait."""
    df = to_polars(frame)
    if columns is not None:
        cols = list(columns)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(
                f"table_to_ipc: columns {missing} are not in the frame (it has {df.columns})"
            )
        df = df.select(cols)
    df = _wire_frame(df)
    import pyarrow as pa

    buf = io.BytesIO()

    table = df.to_arrow()
    # string_view/large types are not all readable by apache-arrow JS 19: normalize them.
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_large_list(t):
            t = pa.list_(t.value_type)
        fields.append(pa.field(f.name, t, f.nullable))
    table = table.cast(pa.schema(fields))
    with pa.ipc.new_stream(buf, table.schema) as writer:
        writer.write_table(table)
    return buf.getvalue()


def ipc_to_table(data: bytes | bytearray | memoryview) -> pl.DataFrame:
    """Decode an Arrow IPC stream (as produced by ``table_to_ipc`` or sent by JS)."""
    import pyarrow as pa

    reader = pa.ipc.open_stream(pa.py_buffer(bytes(data)))
    return pl.from_arrow(reader.read_all())  # type: ignore[return-value]


_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
}


def typed_array(arr: Any) -> tuple[dict[str, Any], bytes]:
    """A tensor as (``{"dtype", "shape"}``, little-endian bytes) for a JS typed array.

    64-bit integers and bool become int32/uint8 (JS typed arrays have no cheap int64), float16
    becomes float32.
    """
    if hasattr(arr, "detach"):  # torch tensor, without importing torch
        arr = arr.detach().cpu().numpy()
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype in (np.int64, np.uint64):
        a = a.astype(np.int32 if a.dtype == np.int64 else np.uint32)
    name = a.dtype.name
    if name not in _DTYPES:
        raise ValueError(
            f"typed_array: dtype {a.dtype} has no JS typed array. Fix: cast to float32/float64."
        )
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"dtype": name, "shape": list(a.shape)}, a.tobytes()


def from_typed_array(meta: Mapping[str, Any], data: bytes | memoryview) -> np.ndarray:
    """Inverse of ``typed_array`` (for tests and for buffers sent back by JS)."""
    dtype = np.dtype(_DTYPES[str(meta["dtype"])]).newbyteorder("<")
    return np.frombuffer(bytes(data), dtype=dtype).reshape(tuple(meta["shape"]))


def to_ms(value: Any) -> float | None:
    """Any timestamp-ish scalar to UTC epoch milliseconds; None/NaT/NaN -> None.

    Naive datetimes are taken as UTC: the contract stores every ``ts`` in UTC.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"to_ms: {value!r} is not a timestamp")
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
        return None if math.isnan(f) else f
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        return float(value.astype("datetime64[us]").astype(np.int64)) / 1000.0
    if isinstance(value, str):
        s = value.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(s)
        except ValueError as exc:
            raise ValueError(
                f"to_ms: {value!r} is not an ISO-8601 timestamp. Fix: use e.g. '2024-01-01T00:00Z'."
            ) from exc
    try:
        import pandas as pd

        if value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        # integer microseconds first: total_seconds() * 1000 loses the last millisecond digit
        return ((value - _EPOCH) // dt.timedelta(microseconds=1)) / 1000.0
    if isinstance(value, dt.date):
        return to_ms(dt.datetime(value.year, value.month, value.day))
    raise ValueError(f"to_ms: cannot read {value!r} ({type(value).__name__}) as a timestamp")


def ms_to_iso(ms: float) -> str:
    """Epoch milliseconds to an ISO-8601 UTC string with a trailing Z (millisecond precision)."""
    t = _EPOCH + dt.timedelta(milliseconds=float(ms))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso_to_datetime(s: str) -> dt.datetime:
    """ISO-8601 (with Z or offset) to an aware UTC datetime."""
    ms = to_ms(s)
    if ms is None:
        raise ValueError(f"iso_to_datetime: {s!r} is empty")
    return _EPOCH + dt.timedelta(milliseconds=ms)


def jsonable(obj: Any) -> Any:
    """Make a value JSON-safe for a synced ``Dict``/``List`` trait (NaN/inf -> None)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (dt.datetime, dt.date, np.datetime64)):
        ms = to_ms(obj)
        return None if ms is None else ms_to_iso(ms)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    try:
        import pandas as pd

        if obj is pd.NaT:
            return None
        if isinstance(obj, pd.Timestamp):
            return jsonable(obj.to_pydatetime())
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def records(obj: Any, where: str = "records") -> list[dict[str, Any]]:
    """A list of dicts, dataclasses or plain objects, or a frame, as a list of dicts."""
    if obj is None:
        return []
    if isinstance(obj, (pl.DataFrame, pl.LazyFrame)) or type(obj).__name__ == "DataFrame":
        return to_polars(obj, where).to_dicts()
    if isinstance(obj, Mapping):
        obj = [obj]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(obj):
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            out.append({f.name: getattr(item, f.name) for f in dataclasses.fields(item)})
        elif hasattr(item, "__dict__"):
            out.append({k: v for k, v in vars(item).items() if not k.startswith("_")})
        else:
            raise ValueError(
                f"{where}[{i}]: expected a dict or an object with attributes, "
                f"got {type(item).__name__}"
            )
    return out


def _frame_to_json(value: pl.DataFrame | None, _widget: object) -> memoryview:
    """ipywidgets ``to_json`` of a frame trait: the Arrow IPC stream as a binary buffer.

    ipywidgets lifts any ``memoryview``/``bytes`` out of the state into a binary comm buffer, so
    the frame never becomes JSON; the bytes are built when the state is sent (on display or on
    a change), not when the widget is constructed.
    """
    if value is None or value.width == 0:
        return memoryview(b"")
    return memoryview(table_to_ipc(value))


def _frame_from_json(value: Any, _widget: object) -> pl.DataFrame | None:
    """The inverse, for a frame the browser sends back (none of the views do today)."""
    if value is None or len(value) == 0:
        return None
    return ipc_to_table(value)


#: tag a synced frame trait with these (``.tag(sync=True, **FRAME_SERIALIZERS)``), the way
#: jupyter-scatter and lonboard attach binary serializers to their array/table traits
FRAME_SERIALIZERS: dict[str, Any] = {"to_json": _frame_to_json, "from_json": _frame_from_json}


def frame_trait(help: str = "") -> Any:
    """A synced polars-frame trait that crosses to the browser as Arrow IPC (see
    ``FRAME_SERIALIZERS``); ``None`` crosses as empty bytes, which ``decodeTable`` reads as an
    empty table."""
    import traitlets

    # an empty frame, not None, by default: traitlets compares old and new values, and a frame
    # compared with None warns
    return traitlets.Instance(pl.DataFrame, args=(), allow_none=True, help=help).tag(
        sync=True, **FRAME_SERIALIZERS
    )

"""The `Workspace`: a lazy, validated view of an investigation's data.

A workspace is opened from a directory (Parquet files scanned lazily by polars) or built from
in-memory pandas/polars frames. Nothing is read until a step needs it, nothing the user owns is
modified, and nothing is ever written inside the workspace directory.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl

from ..engine import as_lazy
from . import contract as c
from .errors import WorkspaceError, WorkspaceWarning
from .pt2_guard import checked_archive
from .reading import read_json, regular_file
from .serving_queries import ServingQueries

FrameLike = Any  # a pandas or polars (lazy) DataFrame

_FLOAT_TYPES = (pl.Float32, pl.Float64)
_INT_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _to_lazy(frame: FrameLike, where: str) -> pl.LazyFrame:
    """Wrap a user's frame without copying its data and without ever mutating it."""
    try:
        return as_lazy(frame)
    except TypeError:
        raise WorkspaceError(
            where,
            "is not a table",
            expected="a pandas or polars DataFrame",
            found=type(frame).__name__,
        ) from None


def _dtype_name(dtype: pl.DataType) -> str:
    return str(dtype)


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _normalize_column(where: str, col: str, kind: c.Kind, dtype: pl.DataType) -> pl.Expr:
    """Check one column's dtype against the contract and return the expression that
    normalizes it (UTC microseconds, Float64, Int64, String, Date)."""
    e = pl.col(col)
    if kind == "utc_datetime":
        if not isinstance(dtype, pl.Datetime):
            raise WorkspaceError(
                f"{where}, column '{col}'",
                "is not a timestamp",
                expected="a UTC datetime",
                found=_dtype_name(dtype),
                fix="store it as a timezone-aware UTC timestamp, e.g. pd.to_datetime(s, utc=True)",
            )
        if dtype.time_zone is None:
            raise WorkspaceError(
                f"{where}, column '{col}'",
                "has naive timestamps (no time zone)",
                expected="UTC timestamps",
                found=_dtype_name(dtype),
                fix="localize them, e.g. s.dt.tz_localize('UTC') in pandas or "
                "pl.col(c).dt.replace_time_zone('UTC') in polars",
            )
        if dtype.time_zone != "UTC":
            e = e.dt.convert_time_zone("UTC")
        return e.dt.cast_time_unit("us").alias(col)
    if kind == "float":
        if not _is_numeric(dtype):
            raise WorkspaceError(
                f"{where}, column '{col}'",
                "is not numeric",
                expected="a float (f64)",
                found=_dtype_name(dtype),
                fix=f"cast '{col}' to float64",
            )
        e = e.cast(pl.Float64)
        if col == c.LABEL:
            # a label that has not arrived is null; pandas users write it as NaN
            e = e.fill_nan(None)
        return e
    if kind == "int":
        if not isinstance(dtype, _INT_TYPES):
            raise WorkspaceError(
                f"{where}, column '{col}'",
                "is not an integer",
                expected="an integer (i64)",
                found=_dtype_name(dtype),
                fix=f"cast '{col}' to int64",
            )
        return e.cast(pl.Int64)
    if kind == "str":
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            return e.cast(pl.String)
        raise WorkspaceError(
            f"{where}, column '{col}'",
            "is not a string",
            expected="str",
            found=_dtype_name(dtype),
            fix=f"cast '{col}' to string",
        )
    if kind == "date":
        if dtype == pl.Date:
            return e
        if isinstance(dtype, pl.Datetime):
            return e.dt.date()
        raise WorkspaceError(
            f"{where}, column '{col}'",
            "is not a date",
            expected="a date",
            found=_dtype_name(dtype),
            fix=f"store '{col}' as a date (datetime.date / pl.Date)",
        )
    raise AssertionError(kind)  # pragma: no cover


def _normalize_table(
    spec: c.TableSpec, lf: pl.LazyFrame, where: str
) -> tuple[pl.LazyFrame, pl.Schema]:
    try:
        schema = lf.collect_schema()
    except Exception as exc:  # a corrupt Parquet surfaces here
        raise WorkspaceError(
            where,
            "cannot be read as Parquet",
            found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            fix="re-export the table as Parquet (e.g. df.to_parquet)",
        ) from exc
    exprs = []
    for col, kind in spec.required.items():
        if col not in schema:
            raise WorkspaceError(
                where,
                f"missing required column '{col}'",
                expected=f"columns {list(spec.required)}",
                found=f"columns {list(schema.names())}",
                fix=f"add or rename a column to '{col}' (see docs/workspace.md)",
            )
        exprs.append(_normalize_column(where, col, kind, schema[col]))
    for col, kind in spec.optional.items():
        if col in schema and schema[col] != pl.Null:
            exprs.append(_normalize_column(where, col, kind, schema[col]))
    lf = lf.with_columns(exprs) if exprs else lf
    return lf, lf.collect_schema()


def _present(path: Path) -> bool:
    """Whether a path exists, counting a dangling link as present (reading it then says why
    it cannot be read, instead of the file silently counting as absent)."""
    return path.exists() or path.is_symlink()


def _read_features(root: Path) -> dict[str, list[str]]:
    """Each model's features.json under snapshots/: a JSON list of column names."""
    features: dict[str, list[str]] = {}
    snap_dir = root / c.SNAPSHOTS_DIR
    if not snap_dir.is_dir():
        return features
    for model_dir in sorted(p for p in snap_dir.iterdir() if p.is_dir()):
        ffile = model_dir / c.FEATURES_FILE
        if not _present(ffile):
            continue
        names = read_json(ffile)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise WorkspaceError(
                str(ffile),
                "has the wrong shape",
                expected="a JSON list of feature column names",
                found=type(names).__name__,
            )
        features[model_dir.name] = names
    return features


class Workspace(ServingQueries):
    """An investigation workspace: the tables, lineage and snapshots of one production system.

    Build one from frames, ``Workspace(metrics=df, serving=df, ...)``, or open a directory with
    :meth:`Workspace.open`. Only ``metrics`` and ``serving`` are required; a triage step whose
    inputs are missing is skipped with a finding that says so. Schemas are checked at
    construction (cheap: only Parquet footers are read); :meth:`validate` checks contents.
    """

    def __init__(
        self,
        metrics: FrameLike,
        serving: FrameLike,
        *,
        rollouts: FrameLike | None = None,
        snapshots: FrameLike | None = None,
        training: FrameLike | None = None,
        training_curves: FrameLike | None = None,
        lineage_stats: FrameLike | None = None,
        lineage: Mapping[str, Any] | nx.DiGraph | None = None,
        features: Mapping[str, list[str]] | None = None,
        programs: Mapping[tuple[str, str], Any] | None = None,
        _root: Path | None = None,
        _sources: Mapping[str, str] | None = None,
    ) -> None:
        self.root = _root
        # a hawknb.profile.Profile given as `serving` stands in for the log (docs/scale.md)
        self.profile = (
            serving if hasattr(serving, "moments") and hasattr(serving, "sample") else None
        )
        if self.profile is not None:
            serving = self.profile.sample.drop("_h", strict=False)
        self._tables: dict[str, pl.LazyFrame] = {}
        self._schemas: dict[str, pl.Schema] = {}
        given = {
            "metrics": metrics,
            "serving": serving,
            "rollouts": rollouts,
            "snapshots": snapshots,
            "training": training,
            "training_curves": training_curves,
            "lineage_stats": lineage_stats,
        }
        sources = dict(_sources or {})
        for name, frame in given.items():
            spec = c.TABLES[name]
            where = sources.get(name, f"the '{name}' table")
            if frame is None:
                if spec.mandatory:
                    raise WorkspaceError(
                        where, "is missing", expected="a table", fix=f"provide {spec.file}"
                    )
                continue
            lf, schema = _normalize_table(spec, _to_lazy(frame, where), where)
            self._tables[name] = lf
            self._schemas[name] = schema
        self._where = {name: sources.get(name, f"the '{name}' table") for name in given}
        if self.profile is not None:
            from ..profile.view import serving_view

            self._tables["serving"] = serving_view(self.profile, self._tables["serving"])
        self._lineage_raw = lineage
        self._lineage: nx.DiGraph | None = None
        self._features_given = {k: list(v) for k, v in (features or {}).items()}
        self._programs = dict(programs or {})
        #: programs loaded from files, most recently used last (see `load_program`)
        self._loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._problems: dict[tuple[str, str], WorkspaceError] | None = None
        self._check_serving_columns()
        self._check_features_json()

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Workspace:
        """Open a workspace directory lazily (see docs/workspace.md for the contract)."""
        root = Path(path)
        if not root.exists():
            raise WorkspaceError(str(root), "does not exist", fix="pass a workspace directory")
        if not root.is_dir():
            raise WorkspaceError(str(root), "is not a directory", fix="pass a workspace directory")
        frames: dict[str, pl.LazyFrame] = {}
        sources: dict[str, str] = {}
        for name, spec in c.TABLES.items():
            file = root / spec.file
            sources[name] = str(file)
            if name == "serving" and not file.exists() and (root / "profile").is_dir():
                from ..profile import Profile

                sources[name] = str(root / "profile")
                frames[name] = Profile.load(root / "profile")  # type: ignore[assignment]
                continue
            if not file.exists():
                if spec.mandatory:
                    raise WorkspaceError(
                        str(file),
                        "is missing",
                        expected=f"{spec.file} with columns {list(spec.required)}",
                        fix="see docs/workspace.md for the workspace contract",
                    )
                continue
            regular_file(file)  # a pipe would block the scan, a folder would read as a dataset
            frames[name] = pl.scan_parquet(file)
        lineage_file = root / c.LINEAGE_FILE
        lineage = read_json(lineage_file) if _present(lineage_file) else None
        return cls(
            metrics=frames.get("metrics"),
            serving=frames.get("serving"),
            rollouts=frames.get("rollouts"),
            snapshots=frames.get("snapshots"),
            training=frames.get("training"),
            training_curves=frames.get("training_curves"),
            lineage_stats=frames.get("lineage_stats"),
            lineage=lineage,
            features=_read_features(root),
            _root=root,
            _sources=sources,
        )

    # -- tables ------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether an optional input is present: a table name, 'lineage' or 'programs'."""
        if name == "lineage":
            return self._lineage_raw is not None
        if name == "programs":
            return bool(self._programs) or bool(self._program_files())
        return name in self._tables

    def table(self, name: str) -> pl.LazyFrame:
        """The normalized lazy table (UTC microsecond `ts`, Float64 values, String names)."""
        if name not in c.TABLES:
            raise KeyError(f"unknown table {name!r}; the contract has {list(c.TABLES)}")
        if name not in self._tables:
            raise WorkspaceError(self._where[name], "is missing", fix=f"add {c.TABLES[name].file}")
        return self._tables[name]

    def where(self, name: str) -> str:
        """Where a table came from (a path, or 'the X table' for in-memory frames)."""
        return self._where.get(name, name)

    @property
    def metrics(self) -> pl.LazyFrame:
        return self.table("metrics")

    @property
    def serving(self) -> pl.LazyFrame:
        return self.table("serving")

    # -- features ----------------------------------------------------------------------------
    @property
    def feature_columns(self) -> list[str]:
        """Every numeric serving column that is not one of the reserved columns."""
        schema = self._schemas["serving"]
        return [n for n in schema.names() if n not in c.SERVING_RESERVED and _is_numeric(schema[n])]

    def features(self, model: str) -> list[str]:
        """The model's input features in its input order (features.json), or, without one,
        the serving columns that are non-null on the model's rows."""
        if model in self._features_given:
            return list(self._features_given[model])
        cols = self.feature_columns
        if not cols:
            return []
        counts = (
            self.serving.filter(pl.col(c.MODEL) == model)
            .select(pl.col(cols).is_not_null().sum())
            .collect()
        )
        return [col for col in cols if counts[col][0] > 0]

    def models(self) -> list[str]:
        """Models present in the serving log, sorted."""
        return sorted(self.serving.select(pl.col(c.MODEL).unique()).collect()[c.MODEL].drop_nulls())

    def metric_names(self) -> list[str]:
        """Metrics present in metrics.parquet, sorted."""
        return sorted(
            self.metrics.select(pl.col(c.METRIC).unique()).collect()[c.METRIC].drop_nulls()
        )

    def _check_serving_columns(self) -> None:
        schema = self._schemas["serving"]
        odd = [
            n for n in schema.names() if n not in c.SERVING_RESERVED and not _is_numeric(schema[n])
        ]
        if odd:
            warnings.warn(
                f"{self._where['serving']}: non-numeric columns {odd} are not features and are "
                "ignored",
                WorkspaceWarning,
                stacklevel=3,
            )

    def _check_features_json(self) -> None:
        schema = self._schemas["serving"]
        for model, names in self._features_given.items():
            where = (
                str(self.root / c.SNAPSHOTS_DIR / model / c.FEATURES_FILE)
                if self.root
                else f"features[{model!r}]"
            )
            if len(set(names)) != len(names):
                dup = sorted({n for n in names if names.count(n) > 1})
                raise WorkspaceError(where, "lists a feature twice", found=str(dup))
            missing = [n for n in names if n not in schema]
            if missing:
                raise WorkspaceError(
                    where,
                    "lists features that are not serving columns",
                    expected=f"each name to be a column of {self._where['serving']}",
                    found=f"missing {missing[:10]}" + (" ..." if len(missing) > 10 else ""),
                    fix="make features.json match the serving log's feature columns",
                )
            reserved = [n for n in names if n in c.SERVING_RESERVED]
            bad = reserved + [n for n in names if n not in reserved and not _is_numeric(schema[n])]
            if bad:
                raise WorkspaceError(
                    where,
                    "lists columns that are not numeric features",
                    found=str(bad),
                    fix="list only numeric feature columns",
                )

    # -- lineage -----------------------------------------------------------------------------
    def lineage(self) -> nx.DiGraph | None:
        """The lineage DAG (edges point downstream, source -> target), or None if absent.

        Node attributes: `kind` and `name`. Raises WorkspaceError on a malformed file, an edge
        to an unknown node, or a cycle (naming the cycle).
        """
        if self._lineage_raw is None:
            return None
        if self._lineage is None:
            self._lineage = _build_lineage(
                self._lineage_raw,
                str(self.root / c.LINEAGE_FILE) if self.root else "the lineage graph",
            )
        return self._lineage

    # -- snapshots ---------------------------------------------------------------------------
    def _program_files(self) -> dict[tuple[str, str], Path]:
        if self.root is None:
            return {}
        snap_dir = self.root / c.SNAPSHOTS_DIR
        if not snap_dir.is_dir():
            return {}
        return {
            (p.parent.name, p.name[: -len(suffix)]): p
            for suffix in reversed(c.PROGRAM_SUFFIXES)  # the preferred suffix is written last
            for p in sorted(snap_dir.glob(f"*/*{suffix}"))
        }

    def programs(self, model: str | None = None) -> list[tuple[str, str]]:
        """(model, snapshot) pairs whose exported program is available."""
        keys = set(self._programs) | set(self._program_files())
        return sorted(k for k in keys if model is None or k[0] == model)

    def program_file(self, model: str, snapshot: str = "<snapshot>") -> str:
        """Where ``snapshot``'s program is expected, in the format (``.pt2``/``.onnx``) the
        model's other snapshot files use (both named when it has none, or both kinds)."""
        have = {p.suffix for (m, _), p in self._program_files().items() if m == model}
        suffix = have.pop() if len(have) == 1 else " or ".join(c.PROGRAM_SUFFIXES)
        return f"{c.SNAPSHOTS_DIR}/{model}/{snapshot}{suffix}"

    def load_program(self, model: str, snapshot: str) -> Any:
        """Load a snapshot's `torch.export` program.

        The file is checked to be a torch.export archive before it is loaded, so a file that is
        not one is never unpickled. Load failures become a WorkspaceError naming the file (and
        torch's own logged traceback is silenced).

        Recently loaded programs are kept and returned again, up to `LOADED_PROGRAMS` of them
        and `LOADED_BYTES` of weights (a triage asks for the suspect and its baselines from
        several steps, and a load costs far more than the steps' forward passes); callers
        treat a program as read-only.
        """
        key = (model, snapshot)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if key in self._programs:
            obj = self._programs[key]
            if not isinstance(obj, (str, Path)):
                return obj
            path = Path(obj)
        else:
            path = self._program_files().get(key)  # type: ignore[assignment]
            if path is None:
                raise WorkspaceError(
                    f"snapshot {model}/{snapshot}",
                    "has no exported program",
                    expected=self.program_file(model, snapshot),
                    fix="export it with torch.export.save or torch.onnx.export",
                )
        if path.suffix == ".onnx":  # run with onnxruntime (docs/workspace.md, ONNX snapshots)
            from .onnx_program import load_onnx_program

            program = load_onnx_program(path)
        else:
            program = load_exported_program(path)
        self._loaded[key] = program
        while len(self._loaded) > 1 and (
            len(self._loaded) > LOADED_PROGRAMS
            or sum(map(_weight_bytes, self._loaded.values())) > LOADED_BYTES
        ):
            self._loaded.popitem(last=False)
        return program

    def program_problems(self) -> dict[tuple[str, str], WorkspaceError]:
        """The snapshot programs that loading would refuse, each with its one-line error.

        Checked statically (no program is loaded) and once per workspace: `validate` reports
        them as warnings, so triage still runs on the rest, and `hawknb check` fails on them.
        """
        if self._problems is None:
            problems = {}
            for key, path in self._program_files().items():
                try:
                    _check_program_statically(path)
                except WorkspaceError as exc:
                    problems[key] = exc
            self._problems = problems
        return dict(self._problems)

    # -- content validation ------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Check the contents against the contract (reads the data once per table).

        Raises WorkspaceError on the first violation; returns the warnings (also emitted as
        WorkspaceWarning) for what is suspicious but usable.
        """
        from .checks import validate_contents

        return validate_contents(self)

    def __repr__(self) -> str:
        tables = ", ".join(sorted(self._tables))
        where = f" at {self.root}" if self.root else ""
        return f"Workspace({tables}{where})"


#: programs a workspace keeps loaded, and the most weight bytes they may hold together (a
#: snapshot of a large model can be gigabytes: then only the last one is kept)
LOADED_PROGRAMS, LOADED_BYTES = 8, 1 << 30


def _weight_bytes(program: Any) -> int:
    """Bytes of a loaded program's tensors (0 where it has no ``state_dict``, as ONNX)."""
    state = getattr(program, "state_dict", None)
    tensors = state.values() if isinstance(state, dict) else ()
    return sum(int(getattr(t, "nbytes", 0)) for t in tensors)


_LINEAGE_SHAPE = '{"nodes": [{"id", "kind", "name"}], "edges": [{"source", "target"}]}'


def _node_id(value: Any, where: str, what: str) -> str:
    """Node ids are strings or integers (read as their decimal string); anything else, null
    above all, is an error rather than a node silently called "None"."""
    if isinstance(value, str) and value != "":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WorkspaceError(
        where,
        f"{what} is not a node id",
        expected="a non-empty string or an integer",
        found=repr(value)[:80],
    )


def _text_attr(node: Mapping[str, Any], key: str, default: str, where: str, i: int) -> str:
    value = node.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise WorkspaceError(
            where, f"node #{i} has a '{key}' that is not text", found=repr(value)[:80]
        )
    return str(value)


def _lineage_lists(raw: Any, where: str) -> tuple[list[Any], list[Any]]:
    if not isinstance(raw, Mapping) or "nodes" not in raw or "edges" not in raw:
        raise WorkspaceError(
            where,
            "has the wrong shape",
            expected=_LINEAGE_SHAPE,
            found=type(raw).__name__ if not isinstance(raw, Mapping) else f"keys {list(raw)}",
        )
    for key in ("nodes", "edges"):
        if not isinstance(raw[key], list):
            raise WorkspaceError(
                where,
                f"'{key}' is not a list",
                expected=_LINEAGE_SHAPE,
                found=type(raw[key]).__name__ if raw[key] is not None else "null",
            )
    return raw["nodes"], raw["edges"]


def _build_lineage(raw: Any, where: str) -> nx.DiGraph:
    if isinstance(raw, nx.DiGraph):
        # the same ids as from a file: strings (integers become their decimal string), so
        # lineage_stats' string `node` column matches them
        names = {n: _node_id(n, where, f"node {n!r}") for n in raw.nodes}
        if len(set(names.values())) != len(names):
            dup = sorted({v for v in names.values() if list(names.values()).count(v) > 1})
            raise WorkspaceError(where, f"node id '{dup[0]}' appears twice")
        graph = nx.relabel_nodes(raw, names, copy=True)
    else:
        nodes, edges = _lineage_lists(raw, where)
        graph = nx.DiGraph()
        for i, node in enumerate(nodes):
            if not isinstance(node, Mapping) or "id" not in node:
                raise WorkspaceError(where, f"node #{i} has no 'id'", found=repr(node)[:80])
            nid = _node_id(node["id"], where, f"node #{i}'s 'id'")
            if nid in graph:
                raise WorkspaceError(where, f"node id '{nid}' appears twice")
            graph.add_node(
                nid,
                kind=_text_attr(node, "kind", "", where, i),
                name=_text_attr(node, "name", nid, where, i),
            )
        for i, edge in enumerate(edges):
            if not isinstance(edge, Mapping) or "source" not in edge or "target" not in edge:
                raise WorkspaceError(
                    where, f"edge #{i} needs 'source' and 'target'", found=repr(edge)[:80]
                )
            s = _node_id(edge["source"], where, f"edge #{i}'s 'source'")
            t = _node_id(edge["target"], where, f"edge #{i}'s 'target'")
            for end in (s, t):
                if end not in graph:
                    raise WorkspaceError(
                        where,
                        f"edge #{i} refers to unknown node '{end}'",
                        fix="add the node to 'nodes' or remove the edge",
                    )
            graph.add_edge(s, t)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
    raise WorkspaceError(
        where, "has a cycle", found=path, fix="lineage must be a DAG; remove one of these edges"
    )


class _SilenceTorchLogs:
    """torch.export.load logs a traceback at WARNING level for a corrupt file; mute it so the
    command line shows only our one-line error."""

    def __enter__(self) -> None:
        self._levels = {}
        for name in ("torch", "torch.export", "torch._export", "torch._export.serde"):
            lg = logging.getLogger(name)
            self._levels[name] = lg.level
            lg.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


def load_exported_program(path: str | Path) -> Any:
    """Load a `torch.export.save`d program without letting the file run code.

    The archive is checked entry by entry first (see `pt2_guard`: pickles must be tensors
    only, call targets torch ops, names plain), and torch loads the checked bytes, not the
    file again. The loaded program's guard code and sample inputs are dropped: torch turns
    them into Python source that it execs when `.module()` is called, and hawknb needs
    neither (it runs the graph on the serving log's rows).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise WorkspaceError(str(path), "does not exist")
    packed = checked_archive(path)
    import torch

    try:
        with _SilenceTorchLogs(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(packed))
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WorkspaceError(
            str(path),
            "cannot be loaded as a torch.export program",
            found=f"{type(exc).__name__}: {first[:200]}",
            fix="re-export the snapshot with torch.export.save",
        ) from exc
    program._guards_code = []
    program.example_inputs = None
    return program


def iter_tables(ws: Workspace) -> Iterable[tuple[str, pl.LazyFrame]]:
    """The present tables, in contract order."""
    for name in c.TABLES:
        if ws.has(name):
            yield name, ws.table(name)


def _check_program_statically(path: Path) -> None:
    """The load-time refusals of a snapshot file, without loading it: a .pt2 archive entry by
    entry (no pickle beyond tensors, no code), an ONNX file for tensors kept outside it (ONNX
    holds no pickle)."""
    if path.suffix == ".onnx":
        from .onnx_program import refuse_external_data

        refuse_external_data(path)
    else:
        checked_archive(path)

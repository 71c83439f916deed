"""A workspace's twin that the contract says must get the same verdict: every name replaced by
an opaque one that sorts in the reverse order, the clock moved, each metric in other units,
every table's rows and columns in another order.

The simulator and the independent generator both write names that sort the way they were
created, hourly-aligned clocks and one unit per metric; a verdict that changes on the twin leans
on one of those conventions (a tie broken by a name, a constant in a metric's units) instead of
on the evidence.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

#: the contract's id columns whose values are renamed
ID_COLUMNS = ("model", "experiment", "snapshot", "metric", "segment", "node")
#: serving columns that are not features
SERVING_CORE = frozenset({"ts", "model", "experiment", "snapshot", "prediction", "label"})
#: the clock moves by days, hours and an odd number of minutes: the hour-of-day a row falls in
#: changes, and so does where the clock's quarter-hour grid cuts the data (a verdict that
#: leans on that grid changes with it)
SHIFT = timedelta(days=41, hours=7, minutes=17)
TRANSFORMS = frozenset({"rename", "shift", "scale", "reorder"})


def opaque(kind: str, names: list[str]) -> dict[str, str]:
    """Stable names unrelated to the originals' spelling that sort in their reverse order, so
    every tie broken by a name breaks the other way on the twin."""
    ordered = sorted(set(names))
    return {
        name: f"{len(ordered) - i:05d}{hashlib.sha1(f'{kind}:{name}'.encode()).hexdigest()[:8]}"
        for i, name in enumerate(ordered)
    }


def _digest(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


@dataclass
class Twin:
    """Where the twin is and how to read its verdict in the original's names and clock."""

    path: Path
    names: dict[str, dict[str, str]] = field(default_factory=dict)
    shift: timedelta = timedelta(0)

    def original(self, verdict: dict[str, Any]) -> dict[str, Any]:
        """The twin's verdict with the original's names and times."""
        back = {kind: {new: old for old, new in m.items()} for kind, m in self.names.items()}
        out = dict(verdict)
        for key in ("model", "snapshot", "metric", "experiment"):
            if out.get(key) is not None:
                out[key] = back.get(key, {}).get(out[key], out[key])
        out["features"] = [back.get("feature", {}).get(f, f) for f in out.get("features") or []]
        out["upstream"] = [back.get("node", {}).get(n, n) for n in out.get("upstream") or []]
        if out.get("onset") is not None:
            out["onset"] = out["onset"] - self.shift
        return out


def _names(ws: Path) -> dict[str, dict[str, str]]:
    """old -> new for every id the tables, features and lineage use."""
    seen: dict[str, set[str]] = {k: set() for k in ID_COLUMNS}
    features: list[str] = []
    for table in sorted(ws.glob("*.parquet")):
        frame = pl.read_parquet(table)
        for col in ID_COLUMNS:
            if col in frame.columns:
                seen[col] |= set(frame[col].drop_nulls().unique().to_list())
        if table.stem == "serving":
            features = [f for f in frame.columns if f not in SERVING_CORE]
    # `all` names the top line (the contract's word), not a segment
    seen["segment"].discard("all")
    names = {col: opaque(col, sorted(values)) for col, values in seen.items()}
    names["feature"] = opaque("feature", features)
    lineage = ws / "lineage.json"
    if lineage.exists():
        ids = [node["id"] for node in json.loads(lineage.read_text())["nodes"]]
        # a feature's node id is its column name, in the twin too
        others = opaque("node", [i for i in ids if i not in names["feature"]])
        names["node"] = {i: names["feature"].get(i) or others[i] for i in ids}
    return names


def _table(frame: pl.DataFrame, stem: str, twin: Twin, how: frozenset[str]) -> pl.DataFrame:
    for col in ID_COLUMNS:
        if col in frame.columns and twin.names.get(col):
            frame = frame.with_columns(pl.col(col).replace(twin.names[col]))
    if stem == "serving" and twin.names.get("feature"):
        frame = frame.rename(twin.names["feature"])
    for col, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            frame = frame.with_columns(pl.col(col) + twin.shift)
        elif isinstance(dtype, pl.Date):
            frame = frame.with_columns(pl.col(col) + timedelta(days=twin.shift.days))
    if stem == "snapshots":
        # training windows are UTC midnights compared as dates: they move by whole days
        hours = timedelta(seconds=twin.shift.seconds)
        frame = frame.with_columns(pl.col("train_start", "train_end") - hours)
    if stem == "metrics" and "scale" in how:
        units = {m: 10.0 ** (_digest(m)[0] % 5 - 2) for m in frame["metric"].unique().to_list()}
        frame = frame.with_columns(pl.col("value") * pl.col("metric").replace_strict(units))
    if "reorder" in how:
        frame = frame.reverse().select(sorted(frame.columns, key=_digest))
    return frame


def _lineage(src: Path, dst: Path, twin: Twin, how: frozenset[str]) -> None:
    graph = json.loads(src.read_text())
    nodes = twin.names.get("node") or {}
    if nodes:
        for node in graph["nodes"]:
            node["id"] = nodes[node["id"]]
            node["name"] = node["id"]
        for edge in graph["edges"]:
            edge["source"], edge["target"] = nodes[edge["source"]], nodes[edge["target"]]
    if "reorder" in how:
        graph["nodes"].reverse()
        graph["edges"].reverse()
    dst.write_text(json.dumps(graph))


def _snapshots(src: Path, dst: Path, twin: Twin) -> None:
    models, snaps = twin.names.get("model", {}), twin.names.get("snapshot", {})
    features = twin.names.get("feature", {})
    for model_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        out = dst / models.get(model_dir.name, model_dir.name)
        out.mkdir(parents=True)
        for f in sorted(model_dir.iterdir()):
            if f.name == "features.json":
                order = [features.get(x, x) for x in json.loads(f.read_text())]
                (out / f.name).write_text(json.dumps(order))
            else:
                shutil.copy(f, out / f"{snaps.get(f.stem, f.stem)}{f.suffix}")


def twin(src: Path, dst: Path, how: frozenset[str] = TRANSFORMS) -> Twin:
    """Write the twin of workspace ``src`` to ``dst`` with the transforms ``how``."""
    unknown = set(how) - TRANSFORMS
    if unknown:
        raise ValueError(f"unknown transforms {sorted(unknown)}; known: {sorted(TRANSFORMS)}")
    out = Twin(
        dst, _names(src) if "rename" in how else {}, SHIFT if "shift" in how else timedelta(0)
    )
    dst.mkdir(parents=True)
    for table in sorted(src.glob("*.parquet")):
        _table(pl.read_parquet(table), table.stem, out, how).write_parquet(dst / table.name)
    if (src / "lineage.json").exists():
        _lineage(src / "lineage.json", dst / "lineage.json", out, how)
    if (src / "snapshots").is_dir():
        _snapshots(src / "snapshots", dst / "snapshots", out)
    return out

"""A workspace whose every name is an injection payload, for the escaping tests.

Built from a simulated workspace by renaming, file by file as docs/workspace.md lists them:
metric values, model / experiment / snapshot values (and the snapshot folders and `.pt2`
files named after them), feature columns (serving columns, features.json, their lineage node
ids) and the other lineage nodes (lineage.json, lineage_stats.parquet). The data is untouched,
so triage walks the same tree as on the clean workspace and every name reaches a view, the
findings, the verdict and the report.

Each payload calls ``alert("<tag>")`` (or navigates to ``javascript:alert("<tag>")``) with a
tag saying which name it was, so a failing test says which field leaked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hawknb.workspace import contract as c

#: payload templates; `{t}` is the tag. Folder-named fields (model, snapshot) cannot hold "/".
PAYLOADS = (
    "{t}<script>alert('{t}')</script>",
    "{t}<img src=x onerror=alert('{t}')>",
    '{t}" onmouseover="alert(\'{t}\')" x="',
    "{t}' autofocus onfocus='alert(`{t}`)' x='",
    "[{t}](javascript:alert('{t}'))",
    "`{t}`<b>{t}</b>``|{t}|``",
    "{t}<svg onload=alert('{t}')>",
    "<a href=\"javascript:alert('{t}')\">{t}</a>",
    "![{t}](x\" onerror=\"alert('{t}'))",
    "{t}<iframe srcdoc=\"<script>alert('{t}')</script>\"></iframe>",
)


def payload(kind: str, i: int, *, for_path: bool = False) -> str:
    """The i-th payload for a name of ``kind`` (e.g. ``feature-3``), unique per (kind, i)."""
    tag = f"{kind}-{i}"
    choices = [p for p in PAYLOADS if not for_path or "/" not in p.format(t=tag)]
    return choices[i % len(choices)].format(t=tag)


@dataclass
class Hostile:
    """What was renamed: ``names[kind]`` maps each old name to its payload."""

    root: Path
    names: dict[str, dict[str, str]] = field(default_factory=dict)

    def all_payloads(self) -> list[str]:
        return [p for m in self.names.values() for p in m.values()]


def _unique(kind: str, olds: list[str], for_path: bool = False) -> dict[str, str]:
    return {old: payload(kind, i, for_path=for_path) for i, old in enumerate(sorted(olds))}


def _replace(path: Path, mapping: dict[str, dict[str, str]]) -> None:
    """Rewrite the string columns of a Parquet file named in ``mapping`` (column -> old->new)."""
    if not path.exists():
        return
    df = pl.read_parquet(path)
    cols = [pl.col(col).replace(m) for col, m in mapping.items() if col in df.columns and m]
    if cols:
        df.with_columns(cols).write_parquet(path)


def make_hostile(ws: Path) -> Hostile:
    """Rename every name in the workspace at ``ws`` (in place) to an injection payload."""
    metrics = pl.read_parquet(ws / "metrics.parquet")
    serving = pl.read_parquet(ws / "serving.parquet", columns=[c.MODEL, c.EXPERIMENT, c.SNAPSHOT])
    lineage = json.loads((ws / c.LINEAGE_FILE).read_text())
    snap_dir = ws / c.SNAPSHOTS_DIR
    model_features = {
        d.name: json.loads((d / c.FEATURES_FILE).read_text()) for d in sorted(snap_dir.iterdir())
    }
    feature_names = sorted({f for fs in model_features.values() for f in fs})
    snapshots = set(serving[c.SNAPSHOT].unique().to_list())
    snapshots |= {p.stem for d in snap_dir.iterdir() for p in d.glob(f"*{c.PROGRAM_SUFFIX}")}
    h = Hostile(ws)
    h.names["metric"] = _unique("metric", metrics[c.METRIC].unique().to_list())
    h.names["model"] = _unique("model", list(model_features), for_path=True)
    h.names["experiment"] = _unique("experiment", serving[c.EXPERIMENT].unique().to_list())
    h.names["snapshot"] = _unique("snapshot", sorted(snapshots), for_path=True)
    h.names["feature"] = _unique("feature", feature_names)
    others = sorted(n["id"] for n in lineage["nodes"] if n["id"] not in h.names["feature"])
    h.names["node"] = _unique("node", others)
    _rename_tables(ws, h)
    _rename_lineage(ws, lineage, h)
    _rename_snapshots(snap_dir, model_features, h)
    return h


def _rename_tables(ws: Path, h: Hostile) -> None:
    m, e, s = h.names["model"], h.names["experiment"], h.names["snapshot"]
    nodes = {**h.names["feature"], **h.names["node"]}
    _replace(ws / "metrics.parquet", {c.METRIC: h.names["metric"]})
    for name in ("rollouts", "snapshots", "training", "training_curves"):
        _replace(ws / f"{name}.parquet", {c.MODEL: m, c.EXPERIMENT: e, c.SNAPSHOT: s})
    _replace(ws / "lineage_stats.parquet", {c.NODE: nodes})
    serving = pl.read_parquet(ws / "serving.parquet")
    serving = serving.with_columns(
        pl.col(c.MODEL).replace(m), pl.col(c.EXPERIMENT).replace(e), pl.col(c.SNAPSHOT).replace(s)
    ).rename({k: v for k, v in h.names["feature"].items() if k in serving.columns})
    serving.write_parquet(ws / "serving.parquet")


def _rename_lineage(ws: Path, lineage: dict, h: Hostile) -> None:
    ids = {**h.names["feature"], **h.names["node"]}
    for n in lineage["nodes"]:
        n["id"] = ids.get(n["id"], n["id"])
        n["name"] = n["id"] if n.get("name") else n.get("name")
    for edge in lineage["edges"]:
        edge["source"] = ids.get(edge["source"], edge["source"])
        edge["target"] = ids.get(edge["target"], edge["target"])
    (ws / c.LINEAGE_FILE).write_text(json.dumps(lineage))


def _rename_snapshots(snap_dir: Path, model_features: dict[str, list[str]], h: Hostile) -> None:
    for model, feats in model_features.items():
        old = snap_dir / model
        (old / c.FEATURES_FILE).write_text(json.dumps([h.names["feature"][f] for f in feats]))
        for prog in old.glob(f"*{c.PROGRAM_SUFFIX}"):
            prog.rename(old / f"{h.names['snapshot'][prog.stem]}{c.PROGRAM_SUFFIX}")
        old.rename(snap_dir / h.names["model"][model])

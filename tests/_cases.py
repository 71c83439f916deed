"""A simulated incident with its ground truth, for the module-scoped fixtures that investigate
one (the truth file is written outside the workspace, as `hawknb simulate` does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hawknb.simulate import simulate


def simulated_case(
    factory: pytest.TempPathFactory, name: str, kind: str, seed: int
) -> tuple[Path, dict[str, Any]]:
    """Simulate ``kind`` with ``seed`` into a fresh folder; returns (workspace, truth)."""
    root = factory.mktemp(name)
    simulate(root / "ws", incident=kind, seed=seed, truth_path=root / "truth.json")
    return root / "ws", json.loads((root / "truth.json").read_text())


def simulated_into(root: Path, kind: str, seed: int, name: str = "ws") -> Path:
    """Simulate ``kind`` with ``seed`` into ``root / name`` (truth beside it); returns the
    workspace. For tests that build several variants of one case under one folder."""
    simulate(root / name, incident=kind, seed=seed, truth_path=root / "truth.json")
    return root / name


def generated_into(
    root: Path, kind: str, seed: int, name: str = "ws", difficulty: str = "hard", **knobs: Any
) -> Path:
    """Generate ``kind`` with the independent generator (a tuning seed; ``knobs`` override
    the difficulty's) into ``root / name`` (truth beside it); returns the workspace."""
    from benchmarks.indepgen import generate

    generate(root / name, root / "truth.json", kind, seed, difficulty, **knobs)
    return root / name


def generated_walk(
    factory: pytest.TempPathFactory, kind: str, seed: int, difficulty: str = "hard"
) -> tuple[dict[str, Any], Any, Any]:
    """Generate ``kind`` with the independent generator (benchmarks.indepgen, a tuning seed)
    into a fresh folder and triage it; returns (truth, workspace, investigation)."""
    import hawknb
    from benchmarks.indepgen import generate

    root = factory.mktemp(f"{kind}_{seed}")
    truth = generate(root / "ws", root / "truth.json", kind, seed, difficulty)
    ws = hawknb.Workspace.open(root / "ws")
    return truth, ws, hawknb.triage(ws, progress=False)


def assert_verdict(inv: Any, truth: dict[str, Any], cause: str, fields: tuple[str, ...]) -> None:
    """The walk's verdict names ``cause`` and, for each of ``fields``, the truth's value."""
    v = inv.verdict.to_dict()
    got = (v["cause"], *(v[f] for f in fields))
    want = (cause, *(truth[f] for f in fields))
    assert got == want, json.dumps(v, default=str)[:400]

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

"""Two ingests into one workspace at once: the second waits, so neither undoes the other."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hawknb.ingest import IngestError
from hawknb.ingest.staging import LOCK_WAIT_ENV, staged


def _hold(target: Path, name: str, entered: threading.Event, release: threading.Event) -> None:
    with staged(target, [name]) as stage:
        stage.path(name).write_text(name)
        entered.set()
        release.wait(10)


def test_concurrent_ingests_keep_each_others_files(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    entered, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_hold, args=(target, "a.txt", entered, release))
    first.start()
    assert entered.wait(10)
    done = threading.Event()

    def second() -> None:
        with staged(target, ["b.txt"]) as stage:
            stage.path("b.txt").write_text("b")
        done.set()

    t2 = threading.Thread(target=second)
    t2.start()
    # The second ingest must not get past the lock while the first still holds the workspace.
    assert not done.wait(0.5)
    release.set()
    first.join(10)
    t2.join(10)
    assert done.is_set()
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]  # no lock or stage left behind


def test_a_lock_held_too_long_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(LOCK_WAIT_ENV, "0.2")
    target = tmp_path / "ws"
    entered, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_hold, args=(target, "a.txt", entered, release))
    first.start()
    try:
        assert entered.wait(10)
        with (
            pytest.raises(IngestError, match=r"another ingest .* still running") as err,
            staged(target, ["b.txt"]),
        ):
            pass
        assert "\n" not in str(err.value)
        assert LOCK_WAIT_ENV in str(err.value)
    finally:
        release.set()
        first.join(10)
    assert [p.name for p in target.iterdir()] == ["a.txt"]

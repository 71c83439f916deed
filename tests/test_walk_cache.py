"""The walk's shared reads: computed once per key with a cache, every time without one."""

from __future__ import annotations

from hawknb.triage.walk_cache import memo


def test_a_read_is_computed_once_per_key_and_reused():
    calls: list[str] = []

    def read(name: str):
        return lambda: calls.append(name) or f"rows of {name}"

    cache: dict = {}
    assert memo(cache, ("arms", "m1"), read("m1")) == "rows of m1"
    assert memo(cache, ("arms", "m1"), read("m1")) == "rows of m1"
    assert memo(cache, ("arms", "m2"), read("m2")) == "rows of m2"
    assert calls == ["m1", "m2"]


def test_without_a_cache_every_call_computes():
    calls: list[int] = []
    for _ in range(2):
        memo(None, "k", lambda: calls.append(1))
    assert calls == [1, 1]


def test_a_falsy_answer_is_kept_too():
    calls: list[int] = []
    cache: dict = {}
    for _ in range(3):
        assert memo(cache, "empty", lambda: calls.append(1) or []) == []
    assert calls == [1]

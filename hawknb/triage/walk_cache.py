"""The walk's reads, shared by its steps.

One walk weighs a dozen windows and then explains one; most of what each step reads from
the log (the models' features, the snapshots' first serves, the rollout table, row-level
comparisons) does not depend on the window, or depends on it only through a key. Each such
read goes through :func:`memo` with the walk's ``cache`` dict, so it is done once per walk
however many windows and steps ask for it; without a cache (a step called on its own) it
is simply computed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def memo(cache: dict | None, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, stored under ``key`` in ``cache`` and returned from it on later calls.

    Keys name the read and everything it depends on (a model, an onset, a cadence): two
    reads that differ in anything that changes the answer must not share a key."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]

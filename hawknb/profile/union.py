"""The distribution of several KLL sketches' streams together, read without merging them.

Why not ``kll.merge``: DataSketches compacts a merge with random coin flips, so two merges of
the same sketches answer different quantiles (PSI of one window moved by 0.3 between calls),
and triage on a profile would not give the same verdict twice. A :class:`Union` instead pools
the retained items of every sketch with their weights: its CDF is the count-weighted mean of
the sketches' own CDFs, which is deterministic, and exact where every sketch is (a sketch that
saw at most ~k values keeps them all). Its stated rank error is the count-weighted mean of the
sketches' stated errors (0 for an exact sketch): if every sketch is within its bound, the pool
is within that.

It answers the calls ``profile.drift`` and the health quantiles make of a sketch:
``get_quantiles``, ``get_cdf``, ``get_min_value``, ``get_max_value``, ``n``, ``is_empty``,
``normalized_rank_error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class Union:
    """Several sketches' values as one weighted sample (see the module docstring)."""

    def __init__(self, sketches: Iterable[Any]) -> None:
        sks = [sk for sk in sketches if not sk.is_empty()]
        self.n = int(sum(sk.n for sk in sks))
        pairs = [np.array(list(sk), dtype=np.float64).reshape(-1, 2) for sk in sks]
        items = np.concatenate(pairs) if pairs else np.empty((0, 2))
        order = np.argsort(items[:, 0], kind="stable")
        self._v = items[order, 0]
        self._w = items[order, 1].astype(np.int64)
        self._cw = np.cumsum(items[order, 1])
        self._exact = not any(sk.is_estimation_mode() for sk in sks)
        self._min = min((sk.get_min_value() for sk in sks), default=np.nan)
        self._max = max((sk.get_max_value() for sk in sks), default=np.nan)
        self._err = {
            side: (
                sum(sk.n * sk.normalized_rank_error(side) for sk in sks if sk.is_estimation_mode())
                / self.n
                if self.n
                else 0.0
            )
            for side in (False, True)
        }

    @property
    def exact(self) -> bool:
        """Every sketch kept all its values: the pool is the data itself."""
        return self._exact

    def values(self) -> np.ndarray:
        """The pooled values, sorted (each repeated by its weight: the data when exact)."""
        return np.repeat(self._v, self._w)

    def is_empty(self) -> bool:
        return self.n == 0

    def get_min_value(self) -> float:
        return float(self._min)

    def get_max_value(self) -> float:
        return float(self._max)

    def normalized_rank_error(self, double_sided: bool = False) -> float:
        return float(self._err[bool(double_sided)])

    def get_quantiles(self, ranks: Sequence[float] | np.ndarray) -> np.ndarray:
        """The smallest value whose (inclusive) rank reaches each of ``ranks``; the exact
        min and max at 0 and 1, as KLL answers."""
        u = np.asarray(ranks, dtype=np.float64)
        if self.n == 0:
            return np.full(u.shape, np.nan)
        idx = np.searchsorted(self._cw, u * self._cw[-1], side="left")
        out = self._v[np.clip(idx, 0, self._v.size - 1)]
        return np.where(u <= 0, self._min, np.where(u >= 1, self._max, out))

    def get_cdf(self, points: Sequence[float] | np.ndarray, inclusive: bool = True) -> np.ndarray:
        """The share of values <= (``inclusive``) or < each point, then 1.0 (as KLL)."""
        x = np.asarray(points, dtype=np.float64)
        side = "right" if inclusive else "left"
        below = np.searchsorted(self._v, x, side=side)
        cw = np.r_[0.0, self._cw]
        return np.r_[cw[below] / self._cw[-1], 1.0]

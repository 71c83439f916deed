"""A mergeable quantile sketch (KLL) with a rank-error bound it can state for itself.

Why a sketch: serving logs are sampled per host and per hour; quantiles of a feature over a
day must be assembled from pieces without keeping every value, and the pieces must merge in any
order. KLL (Karnin, Lang, Liberty 2016) is the sketch with the best known space/accuracy trade-
off for that, and it is simple enough to keep here as ~150 lines of vectorized numpy instead of
a compiled dependency (``benchmarks/sketch_bench.py`` compares it with Apache DataSketches' KLL
and with exact numpy quantiles).

How it works: level ``h`` holds items of weight ``2**h``. When the sketch holds more items than
its capacity (about ``3k``), the lowest over-full level is *compacted*: sorted, and every other
item (random offset) moves up one level with double weight. Total weight stays exactly ``n``.

The error bound. For any query value ``x``, one compaction at level ``h`` changes the estimated
rank of ``x`` by 0 or +-2**h, with mean zero (the random offset). The compactions are
independent, so by Hoeffding's inequality

    P(|estimated rank - true rank| >= t) <= 2 exp(-t**2 / (2 * sum(4**h over compactions)))

The sketch keeps ``sum(4**h)`` (merges add them up), so ``rank_error_bound(delta)`` returns the
normalized rank error ``t / n`` that holds for any single query with probability >= 1 - delta:
a bound *measured on this sketch's own history*, not a worst case over all inputs. With the
default ``k=200`` it is about 1.5-2% at delta=0.01 for any ``n`` (see the benchmark). A quantile
query returns a retained item, which adds at most one item weight; ``quantile_error_bound``
includes that. Min and max are exact. NaN/inf are counted in ``n_nonfinite`` and not inserted.

Which sketch hawknb uses. Profiles (``hawknb.profile``) keep Apache DataSketches' KLL
(``datasketches.kll_doubles_sketch``): measured in the same run as this one
(``benchmarks/sketch_bench.py``) it updates ~3x and merges ~9x faster at the same measured rank
error. :func:`kll`, :func:`seal` and :func:`unseal` wrap it; this class stays as the
dependency-free reference implementation with a self-measured bound.

Bytes read back are untrusted (a profile may come from another team's job): every serialized
sketch carries a CRC-32 over its header and payload, and its structure is validated on load, so
a flipped byte is refused with a one-line ``SketchError`` instead of answering wrong quantiles.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import numpy as np

_MAGIC = b"HKLL"
_VERSION = 2  # v2: a CRC-32 trailer over everything before it
_CRC = struct.Struct("<I")
_HEADER = struct.Struct(
    "<4sBIQQQdddI"
)  # magic, version, k, seed, n, n_nonfinite, var, min, max, levels
_MIN_WIDTH = 8
_DECAY = 2.0 / 3.0


class SketchError(ValueError):
    """A serialized sketch that is corrupt, truncated or not a sketch (one-line message)."""


def _check_structure(
    k: int, n: int, nnf: int, var: float, mn: float, mx: float, data: np.ndarray
) -> None:
    """What a sketch's numbers must satisfy whatever bytes produced them."""
    if k < _MIN_WIDTH or k > 1 << 20 or nnf > 1 << 62 or not math.isfinite(var) or var < 0:
        raise SketchError("from_bytes: corrupt sketch (header fields out of range)")
    if n == 0:
        if data.size:
            raise SketchError("from_bytes: corrupt sketch (items in an empty sketch)")
        return
    if not (math.isfinite(mn) and math.isfinite(mx) and mn <= mx):
        raise SketchError("from_bytes: corrupt sketch (min/max)")
    if not np.all(np.isfinite(data)) or data.min() < mn or data.max() > mx:
        raise SketchError("from_bytes: corrupt sketch (items outside [min, max])")


class QuantileSketch:
    """KLL quantile sketch over float64 values: ``update``, ``merge``, ``quantile``, ``cdf``,
    ``to_bytes``/``from_bytes``; deterministic for a ``seed``."""

    def __init__(self, k: int = 200, *, seed: int = 0) -> None:
        if not isinstance(k, int) or k < _MIN_WIDTH:
            raise ValueError(f"k: must be an integer >= {_MIN_WIDTH}, got {k!r}")
        self.k = k
        self.seed = int(seed)
        self.n = 0
        self.n_nonfinite = 0
        self._var = 0.0  # sum of squared item weights over all compactions so far
        self._min = math.inf
        self._max = -math.inf
        self._levels: list[np.ndarray] = [np.empty(0)]
        self._rng = np.random.default_rng(self.seed)

    # -- building -----------------------------------------------------------------------------

    def _capacity(self, h: int) -> int:
        depth = len(self._levels) - 1 - h
        return max(_MIN_WIDTH, math.ceil(self.k * _DECAY**depth))

    def _compress(self) -> None:
        while True:
            sizes = [lv.size for lv in self._levels]
            caps = [self._capacity(h) for h in range(len(self._levels))]
            if sum(sizes) <= sum(caps):
                return
            h = next(i for i, (s, cap) in enumerate(zip(sizes, caps, strict=True)) if s >= cap)
            lv = np.sort(self._levels[h])
            keep = lv[:0]
            if lv.size % 2:
                keep, lv = lv[-1:], lv[:-1]
            promoted = lv[int(self._rng.integers(2)) :: 2]
            if h + 1 == len(self._levels):
                self._levels.append(np.empty(0))
            self._levels[h + 1] = np.concatenate([self._levels[h + 1], promoted])
            self._levels[h] = keep
            self._var += float(4**h)

    def update(self, values: Any) -> QuantileSketch:
        """Add values (any array-like); NaN/inf are counted, not inserted. Returns self."""
        a = np.asarray(values, dtype=np.float64).ravel()
        fin = np.isfinite(a)
        self.n_nonfinite += int(a.size - fin.sum())
        a = a[fin]
        if a.size == 0:
            return self
        self.n += int(a.size)
        self._min = min(self._min, float(a.min()))
        self._max = max(self._max, float(a.max()))
        self._levels[0] = np.concatenate([self._levels[0], a])
        self._compress()
        return self

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Fold ``other`` into this sketch (``other`` is not modified). Returns self. Sketches
        of different ``k`` merge; the result keeps the smaller ``k``."""
        if not isinstance(other, QuantileSketch):
            raise TypeError(f"merge: expected a QuantileSketch, got {type(other).__name__}")
        self.k = min(self.k, other.k)
        while len(self._levels) < len(other._levels):
            self._levels.append(np.empty(0))
        for h, lv in enumerate(other._levels):
            self._levels[h] = np.concatenate([self._levels[h], lv])
        self.n += other.n
        self.n_nonfinite += other.n_nonfinite
        self._var += other._var
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self._compress()
        return self

    # -- queries ------------------------------------------------------------------------------

    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        items = np.concatenate(self._levels)
        weights = np.concatenate([np.full(lv.size, 2.0**h) for h, lv in enumerate(self._levels)])
        order = np.argsort(items, kind="stable")
        return items[order], np.cumsum(weights[order])

    def _require(self, what: str) -> None:
        if self.n == 0:
            raise ValueError(f"{what}: the sketch is empty; update() it with finite values first")

    def quantile(self, q: Any) -> Any:
        """Value at normalized rank ``q`` (scalar or array in [0, 1]); q=0/1 give min/max."""
        self._require("quantile")
        qa = np.asarray(q, dtype=np.float64)
        if not np.all((qa >= 0) & (qa <= 1)):
            raise ValueError(f"quantile: q must be in [0, 1], got {q!r}")
        items, cum = self._sorted()
        idx = np.clip(np.searchsorted(cum, qa * self.n, side="left"), 0, items.size - 1)
        out = items[idx]
        out = np.where(qa <= 0, self._min, np.where(qa >= 1, self._max, out))
        return float(out) if out.ndim == 0 else out

    def rank(self, x: Any) -> Any:
        """Estimated number of inserted values <= x."""
        self._require("rank")
        items, cum = self._sorted()
        xa = np.asarray(x, dtype=np.float64)
        idx = np.searchsorted(items, xa, side="right")
        r = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
        return float(r) if r.ndim == 0 else r

    def cdf(self, x: Any) -> Any:
        """Estimated fraction of inserted values <= x."""
        r = self.rank(x)
        return r / self.n

    def rank_error_bound(self, delta: float = 0.01) -> float:
        """Normalized rank error that any one rank/cdf query stays within with probability
        >= 1 - delta (Hoeffding over this sketch's compactions; 0 while nothing was compacted)."""
        if not 0 < delta < 1:
            raise ValueError(f"delta: must be in (0, 1), got {delta}")
        if self.n == 0:
            return 0.0
        return math.sqrt(2.0 * self._var * math.log(2.0 / delta)) / self.n

    def quantile_error_bound(self, delta: float = 0.01) -> float:
        """Bound on |true normalized rank of quantile(q) - q|: the rank bound plus the largest
        retained item weight (a quantile answer is one retained item)."""
        top = max((h for h, lv in enumerate(self._levels) if lv.size), default=0)
        return self.rank_error_bound(delta) + (2.0**top / self.n if self.n else 0.0)

    @property
    def num_retained(self) -> int:
        return int(sum(lv.size for lv in self._levels))

    @property
    def min(self) -> float:
        self._require("min")
        return self._min

    @property
    def max(self) -> float:
        self._require("max")
        return self._max

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(k={self.k}, n={self.n}, retained={self.num_retained}, "
            f"rank_error<={self.rank_error_bound():.4f} @99%)"
        )

    # -- serialization ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        header = _HEADER.pack(
            _MAGIC,
            _VERSION,
            self.k,
            self.seed & 0xFFFFFFFFFFFFFFFF,
            self.n,
            self.n_nonfinite,
            self._var,
            self._min,
            self._max,
            len(self._levels),
        )
        sizes = np.array([lv.size for lv in self._levels], dtype="<u8").tobytes()
        data = np.concatenate(self._levels).astype("<f8").tobytes()
        body = header + sizes + data
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, blob: bytes) -> QuantileSketch:
        """Inverse of ``to_bytes``; the random state restarts from (seed, n), so a restored
        sketch is deterministic too."""
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise SketchError(f"from_bytes: expected bytes, got {type(blob).__name__}")
        blob = bytes(blob)
        if len(blob) < _HEADER.size + _CRC.size:
            raise SketchError("from_bytes: too short to be a hawknb quantile sketch")
        magic, version, k, seed, n, nnf, var, mn, mx, nlev = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise SketchError("from_bytes: not a hawknb quantile sketch (bad magic)")
        if version != _VERSION:
            raise SketchError(
                f"from_bytes: sketch format v{version}; this hawknb reads v{_VERSION}"
            )
        body, (crc,) = blob[: -_CRC.size], _CRC.unpack_from(blob, len(blob) - _CRC.size)
        if zlib.crc32(body) != crc:
            raise SketchError("from_bytes: corrupt sketch (checksum mismatch)")
        off = _HEADER.size
        if nlev < 1 or nlev > 64 or len(body) < off + 8 * nlev:
            raise SketchError("from_bytes: truncated or corrupt sketch (level count)")
        sizes = np.frombuffer(body, dtype="<u8", count=nlev, offset=off)
        off += 8 * nlev
        total = int(sizes.sum()) if np.all(sizes < 2**40) else -1
        if total < 0 or len(body) != off + 8 * total:
            raise SketchError("from_bytes: truncated or corrupt sketch (length mismatch)")
        data = np.frombuffer(body, dtype="<f8", count=total, offset=off).astype(np.float64)
        weight = sum(int(s) << h for h, s in enumerate(sizes))
        if weight != n:
            raise SketchError("from_bytes: corrupt sketch (item weights do not add up to n)")
        _check_structure(k, n, nnf, var, mn, mx, data)
        sk = cls(k, seed=seed)
        sk.n, sk.n_nonfinite, sk._var, sk._min, sk._max = n, nnf, var, mn, mx
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        sk._levels = [data[bounds[h] : bounds[h + 1]].copy() for h in range(nlev)]
        sk._rng = np.random.default_rng([seed, n])
        return sk

    @classmethod
    def of(cls, values: Any, k: int = 200, *, seed: int = 0) -> QuantileSketch:
        """A sketch of ``values``."""
        return cls(k, seed=seed).update(values)

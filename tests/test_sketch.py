"""KLL sketch: the stated rank-error bound holds for merged sketches; exactness; bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hawknb.kernels import kll
from hawknb.kernels.sketch import QuantileSketch, SketchError

DELTA = 1e-6  # per-query failure probability used in the property test


def _rank_interval(sorted_x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.searchsorted(sorted_x, v, side="left"), np.searchsorted(sorted_x, v, side="right")


def _check_within_bound(sk: QuantileSketch, values: np.ndarray) -> None:
    xs = np.sort(values)
    n = xs.size
    assert sk.n == n
    # cdf / rank: estimated rank of a data point vs its true rank
    probe = np.unique(xs)
    true_rank = np.searchsorted(xs, probe, side="right")
    err = np.abs(sk.rank(probe) - true_rank) / n
    assert err.max() <= sk.rank_error_bound(DELTA) + 1e-12
    # quantile: the answer's true rank interval must come within the bound of q*n
    qs = np.linspace(0, 1, 41)
    lo, hi = _rank_interval(xs, np.atleast_1d(sk.quantile(qs)))
    slack = sk.quantile_error_bound(DELTA) * n + 1e-9
    assert np.all(qs * n >= lo - slack) and np.all(qs * n <= hi + slack)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    chunks=st.lists(
        st.lists(st.integers(-1000, 1000) | st.floats(-1e6, 1e6), min_size=0, max_size=400),
        min_size=1,
        max_size=8,
    ),
    k=st.sampled_from([8, 16, 50]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merged_sketches_stay_within_their_bound(
    chunks: list[list[float]], k: int, seed: int
) -> None:
    values = np.array([v for ch in chunks for v in ch], dtype=np.float64)
    if values.size == 0:
        return
    merged = QuantileSketch(k, seed=seed)
    for i, ch in enumerate(chunks):
        part = QuantileSketch(k, seed=seed + i + 1)
        for j in range(0, len(ch), 37):  # streaming updates force many small compactions
            part.update(ch[j : j + 37])
        merged.merge(part)
    _check_within_bound(merged, values)
    assert merged.quantile(0.0) == values.min() and merged.quantile(1.0) == values.max()


def test_large_stream_error_is_small_and_bounded() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=300_000)
    parts = [QuantileSketch.of(c, seed=i) for i, c in enumerate(np.array_split(x, 30))]
    sk = parts[0]
    for p in parts[1:]:
        sk.merge(p)
    _check_within_bound(sk, x)
    assert sk.rank_error_bound(0.01) < 0.03  # k=200: a couple of percent at 99%
    assert sk.num_retained < 3 * 200 + 100  # space does not grow with n
    assert sk.cdf(np.median(x)) == pytest.approx(0.5, abs=0.02)


def test_exact_while_small_and_nonfinite_counted() -> None:
    sk = QuantileSketch(50).update([3.0, 1.0, np.nan, 2.0, np.inf, 4.0])
    assert sk.n == 4 and sk.n_nonfinite == 2 and sk.rank_error_bound() == 0.0
    assert sk.quantile(0.5) == 2.0 and sk.quantile([0.0, 1.0]).tolist() == [1.0, 4.0]
    assert sk.cdf(2.5) == pytest.approx(0.5) and sk.rank(0.0) == 0.0


def test_merge_does_not_touch_other_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    a, b = (
        QuantileSketch.of(rng.normal(size=5000), 20),
        QuantileSketch.of(rng.normal(size=7000), 20),
    )
    b_bytes = b.to_bytes()
    ab = QuantileSketch.from_bytes(a.to_bytes()).merge(b)
    assert b.to_bytes() == b_bytes
    assert ab.n == 12_000
    again = QuantileSketch.from_bytes(a.to_bytes()).merge(b)
    assert again.to_bytes() == ab.to_bytes()


def test_bytes_roundtrip() -> None:
    sk = QuantileSketch.of(np.arange(10_000.0), 32, seed=3)
    back = QuantileSketch.from_bytes(sk.to_bytes())
    qs = np.linspace(0, 1, 11)
    np.testing.assert_array_equal(back.quantile(qs), sk.quantile(qs))
    assert back.rank_error_bound() == sk.rank_error_bound() and back.n == sk.n


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="empty"):
        QuantileSketch().quantile(0.5)
    with pytest.raises(ValueError, match="empty"):
        QuantileSketch().update([np.nan]).cdf(1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        QuantileSketch.of([1.0]).quantile(1.5)
    with pytest.raises(ValueError, match="k: must be"):
        QuantileSketch(2)
    with pytest.raises(ValueError, match="bad magic"):
        QuantileSketch.from_bytes(b"x" * 100)
    blob = QuantileSketch.of(np.arange(100.0)).to_bytes()
    with pytest.raises(ValueError, match="truncated|checksum"):
        QuantileSketch.from_bytes(blob[:-8])
    with pytest.raises(TypeError):
        QuantileSketch().merge([1, 2])  # type: ignore[arg-type]


def _flip_every_way(blob: bytes, tries: int, seed: int) -> list[bytes]:
    """Corruptions of ``blob``: one random byte replaced, a random bit flipped, truncations."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(tries):
        b = bytearray(blob)
        i = int(rng.integers(len(b)))
        if rng.random() < 0.5:
            b[i] ^= 1 << int(rng.integers(8))
        else:
            b[i] = (b[i] + int(rng.integers(1, 256))) % 256
        out.append(bytes(b))
    out += [blob[:i] for i in rng.integers(0, len(blob), 20)]
    return out


def test_own_sketch_refuses_every_corruption() -> None:
    blobs = [
        QuantileSketch.of(np.random.default_rng(s).lognormal(size=n), 16).to_bytes()
        for s, n in ((0, 0), (1, 5), (2, 5000))
    ]
    for j, blob in enumerate(blobs):
        for bad in _flip_every_way(blob, 300, j):
            with pytest.raises(SketchError):
                QuantileSketch.from_bytes(bad)


def test_sealed_kll_roundtrip_and_refuses_every_corruption() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 3, 50_000):
        sk = kll.kll(np.r_[rng.normal(size=n), np.nan, np.inf], k=64)
        assert sk.n == n  # non-finite values are not inserted
        back = kll.unseal(kll.seal(sk))
        assert back.n == n and back.serialize() == sk.serialize()
        for bad in _flip_every_way(kll.seal(sk), 400, n):
            with pytest.raises(SketchError):
                kll.unseal(bad)
    with pytest.raises(SketchError, match="expected bytes"):
        kll.unseal("not bytes")
    with pytest.raises(SketchError, match="bad magic"):
        kll.unseal(QuantileSketch.of([1.0]).to_bytes())


def test_sealed_kll_merge_within_stated_error() -> None:
    rng = np.random.default_rng(7)
    parts = [rng.exponential(size=20_000) * (1 + i) for i in range(8)]
    merged = kll.merge(kll.unseal(kll.seal(kll.kll(p))) for p in parts)
    x = np.sort(np.concatenate(parts))
    qs = np.linspace(0.01, 0.99, 99)
    est = np.array(merged.get_quantiles(qs))
    true_rank = np.searchsorted(x, est, side="right") / x.size
    err = np.abs(true_rank - qs) / kll.rank_error(merged)
    # a 99% bound per query: over 99 queries a few may pass it, none by much
    assert (err > 1).mean() <= 0.1 and err.max() <= 2

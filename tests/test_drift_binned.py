"""The binned drift path (large samples, sorting neither): known answers, scipy's KS flags,
exactness against the sort-based path, point masses, and bad values in big frames."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from test_drift import _exact

from hawknb.kernels import drift as drift_module
from hawknb.kernels.drift import distances, drift
from hawknb.kernels.drift_binned import _median_abs_dev

ALPHAS = (0.05, 0.01, 0.001)


def _scipy_p(d: float, n: int, m: int) -> float:
    """scipy's own p-value formula for samples this large (its 'asymp' method)."""
    en = max(n, m) * min(n, m) / (n + m)
    return float(np.clip(stats.distributions.kstwo.sf(d, np.round(en)), 0, 1))


def _assert_like_exact(ref: np.ndarray, cur: np.ndarray) -> tuple[float, ...]:
    assert cur.size >= drift_module.BINNED_FROM
    got, want = distances(ref, cur), _exact(ref, cur)
    assert got[0] == pytest.approx(want[0], abs=1e-12)  # PSI exact
    assert got[2] == pytest.approx(want[2], abs=1e-12)  # KS exact
    assert abs(got[1] - want[1]) <= 1e-4  # W1 within 1e-4 reference IQRs
    assert got[3] == pytest.approx(want[3], rel=1e-6, abs=1e-9)
    return got


def test_planted_shift_of_a_uniform_has_known_distances() -> None:
    """U(0,1) -> U(0.2,1.2): W1 = 0.2 = 0.4 IQRs, KS = 0.2, and PSI from the reference's
    deciles: the bottom two empty out (floored at 1e-4), the top one takes 0.3."""
    rng = np.random.default_rng(0)
    ref, cur = rng.random(200_000), rng.random(100_000) + 0.2
    psi, w1, ks, ms = _assert_like_exact(ref, cur)
    assert w1 == pytest.approx(0.2 / 0.5, abs=0.01)
    assert ks == pytest.approx(0.2, abs=0.01)
    rp = np.full(10, 0.1)
    cp = np.array([1e-4, 1e-4, *([0.1] * 7), 0.3])
    assert psi == pytest.approx(float(np.sum((cp - rp) * np.log(cp / rp))), rel=0.05)
    assert ms > 0


def test_planted_normal_shift_matches_theory_and_scipy() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 100_000).astype(np.float32), rng.normal(0.3, 1, 300_000)
    cur = cur.astype(np.float32)
    psi, w1, ks, ms = _assert_like_exact(ref, cur)
    assert ks == pytest.approx(2 * stats.norm.cdf(0.15) - 1, abs=0.006)
    assert w1 == pytest.approx(0.3 / 1.349, rel=0.03)
    assert ms == pytest.approx(0.3, rel=0.05)
    edges = stats.norm.ppf(np.linspace(0, 1, 11))  # the reference's deciles, in theory
    cp = np.diff(stats.norm.cdf(edges - 0.3))
    assert psi == pytest.approx(float(np.sum((cp - 0.1) * np.log(cp / 0.1))), rel=0.05)
    iqr = float(np.subtract(*np.quantile(ref.astype(np.float64), [0.75, 0.25])))
    assert w1 * iqr == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-4 * iqr)


def test_ks_flags_are_scipys_across_the_decision_boundary() -> None:
    """Shifts from none to a few hundredths put scipy's p-values on both sides of every
    alpha; hawknb's KS gives the same flags because it is scipy's statistic."""
    rng = np.random.default_rng(2)
    n, m = 20_000, 60_000
    flags = {a: set() for a in ALPHAS}
    for i, shift in enumerate(np.linspace(0.0, 0.05, 16)):
        ref, cur = rng.normal(0, 1, n), rng.normal(shift, 1, m)
        sc = stats.ks_2samp(ref, cur)
        ks = distances(ref, cur)[2]
        assert ks == pytest.approx(sc.statistic, abs=1e-12)
        p = _scipy_p(ks, n, m)
        for a in ALPHAS:
            assert (p < a) == (sc.pvalue < a), (shift, a, p, sc.pvalue)
            if sc.pvalue < a:
                flags[a].add(i)
    for a in ALPHAS:  # the sweep crosses each boundary: some flagged, some not
        assert 0 < len(flags[a]) < 16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_point_mass_cell_with_and_without_neighbours(dtype: type) -> None:
    """A default value (40% zeros) is counted, not sorted: exact whether its cell holds
    only the zeros (pure) or also values a hair away from zero (impure)."""
    rng = np.random.default_rng(3)

    def sample(k: int, shift: float, hair: bool) -> np.ndarray:
        x = np.where(rng.random(k) < 0.4, 0.0, rng.normal(1 + shift, 1, k))
        if hair:
            x[rng.random(k) < 0.01] = 1e-9  # same cell as the zeros, another value
        return x.astype(dtype)

    for hair in (False, True):
        _assert_like_exact(sample(100_000, 0.0, False), sample(300_000, 0.05, hair))
        _assert_like_exact(sample(100_000, 0.0, hair), sample(300_000, 0.05, False))


def test_many_point_masses_integer_counts() -> None:
    """Integer counts: every heavy cell is one value; then a few non-integers among them."""
    rng = np.random.default_rng(4)
    ref = rng.poisson(5, 100_000).astype(np.float32)
    cur = rng.poisson(5.5, 300_000).astype(np.float32)
    _assert_like_exact(ref, cur)
    noisy = cur.copy()
    noisy[rng.random(cur.size) < 0.002] += np.float32(1e-4)
    _assert_like_exact(ref, noisy)
    assert distances(ref, ref)[2] == 0.0


def test_median_abs_dev_is_numpys_on_ties_and_continuous_data() -> None:
    rng = np.random.default_rng(5)
    cases = {
        "poisson": rng.poisson(5, 50_000).astype(np.float32),
        "normal": rng.normal(0, 1, 50_000),
        "point mass": np.where(rng.random(50_000) < 0.6, 0.0, rng.normal(1, 1, 50_000)),
        "three values": rng.integers(0, 3, 50_001).astype(float),
    }
    for name, a in cases.items():
        for med in (0.0, 0.5, 1.0, float(np.median(a))):
            want = float(np.median(np.abs(a.astype(np.float64) - med)))
            assert _median_abs_dev(a, med) == want, (name, med)


def test_big_frame_with_nan_inf_null_constant_and_empty_columns() -> None:
    """Bad values in a frame large enough for the binned path: non-finite values and nulls
    are counted apart and left out; a constant reference or an all-null window does not
    crash; distances equal those of the finite values alone."""
    rng = np.random.default_rng(6)
    n, m = 60_000, 120_000
    r, c = rng.normal(0, 1, n), rng.normal(0.1, 1, m)
    c_bad = c.copy()
    c_bad[:1000] = np.nan
    c_bad[1000:1500] = np.inf
    c_bad[1500:1600] = -np.inf
    ref = pl.DataFrame(
        {
            "bad": r,
            "const": np.full(n, 3.0),
            "gone": r,
            "ints": rng.integers(0, 50, n),
        }
    )
    cur = pl.DataFrame(
        {
            "bad": c_bad,
            "const": rng.normal(3, 1, m),
            "gone": pl.Series([None] * m, dtype=pl.Float64),
            "ints": rng.integers(0, 52, m),
        }
    )
    rep = drift(ref, cur)
    bad = rep["bad"]
    assert bad.nonfinite_rate_current == pytest.approx(1600 / m)
    assert bad.n_current == m - 1600
    want = _exact(r, c[1600:])
    assert (bad.psi, bad.ks) == pytest.approx((want[0], want[2]), abs=1e-12)
    assert abs(bad.wasserstein - want[1]) <= 1e-4
    const = rep["const"]
    assert const.ks == pytest.approx(stats.ks_2samp(np.full(n, 3.0), cur["const"]).statistic)
    assert np.isfinite(const.wasserstein) and np.isfinite(const.mean_shift)
    gone = rep["gone"]
    assert np.isnan(gone.ks) and gone.null_rate_current == 1.0
    assert "no finite values in the current window" in gone.note
    ints = rep["ints"]
    assert ints.ks == pytest.approx(
        stats.ks_2samp(ref["ints"].to_numpy(), cur["ints"].to_numpy()).statistic, abs=1e-12
    )


def test_identical_big_samples_have_zero_drift_in_both_dtypes() -> None:
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        x = rng.lognormal(0, 1.5, 80_000).astype(dtype)
        assert distances(x, x) == (0.0, 0.0, 0.0, 0.0)


def test_chunked_binning_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _CHUNK values a sample is binned chunk by chunk (its cells kept as int32 up to
    _KEEP values, else computed again); forcing small chunks must not change a single bit (normal, point mass with neighbours, 40 integer point masses,
    float32 lognormal)."""
    from hawknb.kernels import drift_binned

    rng = np.random.default_rng(8)
    pm = np.where(rng.random(200_000) < 0.4, 0.0, rng.normal(1, 1, 200_000))
    pm[:500] = 1e-9
    cases = [
        (rng.normal(0, 1, 60_000), rng.normal(0.02, 1, 200_000)),
        (np.where(rng.random(60_000) < 0.4, 0.0, rng.normal(1, 1, 60_000)), pm),
        (rng.integers(0, 40, 60_000).astype(float), rng.integers(0, 41, 200_000).astype(float)),
        (
            rng.lognormal(0, 1.5, 60_000).astype(np.float32),
            rng.lognormal(0.02, 1.5, 200_000).astype(np.float32),
        ),
    ]
    monkeypatch.setattr(drift_binned, "USE_JIT", False)  # the numpy passes are chunked
    monkeypatch.setattr(drift_binned, "_CHUNK", 1 << 30)
    whole = [distances(r, c) for r, c in cases]
    monkeypatch.setattr(drift_binned, "_CHUNK", 4096)
    for keep in (1 << 24, 0):  # chunks' cells kept as int32, or computed again
        monkeypatch.setattr(drift_binned, "_KEEP", keep)
        for (r, c), want in zip(cases, whole, strict=True):
            assert distances(r, c) == want, keep


def test_compiled_passes_give_the_numpy_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numba passes (counts, and the pull of wanted cells: sparse, and dense where a
    wanted cell holds a point mass) must give every distance the numpy passes give, to the
    bit, with each value's cell kept or computed again, in both dtypes, values near the
    float32 limit included."""
    from hawknb.kernels import _drift_jit, drift_binned

    if not _drift_jit.READY:
        pytest.skip("numba is not installed: only the numpy passes run")
    rng = np.random.default_rng(30)
    near = rng.normal(0, 1, 200_000).astype(np.float32)
    near[:20] = np.float32(3e38)
    near[20:40] = np.float32(-3e38)
    cases = [
        (rng.normal(0, 1, 60_000), rng.normal(0.02, 1, 200_000)),
        (  # 40% zeros: the dense pull
            np.where(rng.random(60_000) < 0.4, 0.0, rng.normal(1, 1, 60_000)),
            np.where(rng.random(200_000) < 0.4, 0.0, rng.normal(1.05, 1, 200_000)),
        ),
        (rng.poisson(5, 60_000).astype(np.float32), rng.poisson(5.2, 200_000).astype(np.float32)),
        (
            rng.lognormal(0, 1.5, 60_000).astype(np.float32),
            rng.lognormal(0.02, 1.5, 200_000).astype(np.float32),
        ),
        (rng.normal(0, 1, 60_000).astype(np.float32), near),
    ]
    monkeypatch.setattr(drift_binned, "USE_JIT", False)
    want = [distances(r, c) for r, c in cases]
    monkeypatch.setattr(drift_binned, "USE_JIT", True)
    for keep in (1 << 24, 0):  # cells kept as int32, or computed again
        monkeypatch.setattr(drift_binned, "_KEEP", keep)
        for (r, c), w in zip(cases, want, strict=True):
            assert distances(r, c) == w, keep


def _mad_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    n = 60_000
    return {
        "normal": rng.normal(0, 1, n),
        "normal f32": rng.normal(0, 1, n).astype(np.float32),
        "lognormal f32": rng.lognormal(0, 1.5, n).astype(np.float32),
        "cauchy": rng.standard_cauchy(n),
        "poisson f32": rng.poisson(5, n).astype(np.float32),
        "mass at the median": np.where(rng.random(n) < 0.55, 1.0, rng.normal(1, 1, n)),
        "mass near zero": np.where(rng.random(n) < 0.4, 0.0, rng.normal(1, 1, n)),
        "two values": rng.integers(0, 2, n + 1).astype(float),
        "offset f32": (1e6 + rng.normal(0, 3, n)).astype(np.float32),
        # a point mass exactly one MAD from the median: many ties at the middle rank
        "mass at the mad": np.r_[
            rng.normal(0, 0.1, n // 2), np.full(n // 4, 2.0), -np.ones(n // 4)
        ],
    }


@pytest.mark.parametrize("case", sorted(_mad_cases()))
def test_mad_read_off_the_grid_is_numpys(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The robust scale's MAD is read off the grid and a pulled window of cells, not a pass
    over the values: it must equal np.median(|r - median|) to the bit, whether the grid
    path answers or falls back (both recorded)."""
    from hawknb.kernels import drift_binned

    ref = _mad_cases()[case]
    seen: list[tuple[float, float]] = []
    grid_path = drift_binned._mad_on_grid

    def spy(rs, grid, med, cm, g, win):
        got = grid_path(rs, grid, med, cm, g, win)
        seen.append((got, float(np.median(np.abs(np.subtract(ref, med, dtype=np.float64))))))
        return got

    monkeypatch.setattr(drift_binned, "_mad_on_grid", spy)
    cur = np.resize(ref, 120_000)[::-1].copy()
    distances(ref, cur)
    for got, want in seen:
        assert got == want, case
    if case in ("normal", "normal f32", "lognormal f32", "cauchy", "offset f32"):
        assert seen, f"{case}: the MAD was not read off the grid"


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("keep", [1 << 24, 0])
@pytest.mark.parametrize("cells", [1 << 10, 1 << 12, 1 << 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_counts_equal_one_bincount_of_every_cell(
    cells: int, dtype: type, keep: int, jit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are counted by a bincount each on grids up to _CHUNK cells (here 2,048: the
    1,024-cell grid); finer grids' kept cells by a bincount per span of twice the cells
    (4,096 cells: two spans; 65,536: one), else (cells not kept) by np.add.at: each must
    give one bincount of all the cells, values far outside the grid (the tails, magnitudes
    whose cell arithmetic overflows) and two-valued data included; so must the compiled
    count (``jit``), which has no chunks."""
    from hawknb.kernels import drift_binned

    monkeypatch.setattr(drift_binned, "USE_JIT", jit)
    monkeypatch.setattr(drift_binned, "_CHUNK", 2048)
    monkeypatch.setattr(drift_binned, "_KEEP", keep)
    rng = np.random.default_rng(21)
    n = 3 * 4096 + 17  # chunked, with a short last chunk and span
    x = rng.normal(0, 1, n)
    x[:50] = [3e38 if i % 2 else -3e38 for i in range(50)]  # overflow to +-inf, clipped
    x[50:100] = 1e6  # past the span
    two = np.where(rng.random(n) < 0.3, -0.5, 0.25)
    grid = drift_binned.make_grid([(-2.0, 2.0)], 4.0 / cells / drift_binned.GRID_WIDTH, dtype)
    assert grid.cells == cells
    for v in (x.astype(dtype), two.astype(dtype)):
        want = np.bincount(grid(v), minlength=grid.cells + 2)
        got = drift_binned._Cells(v, grid, "test").counts(grid.cells + 2)
        np.testing.assert_array_equal(got, want)
        assert got[0] >= (v < -2).sum() and got[-1] >= (v > 2).sum()

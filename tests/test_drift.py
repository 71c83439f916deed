"""Drift kernel: distances on known distributions, null/NaN accounting, bad inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hawknb.kernels import drift as drift_module
from hawknb.kernels.drift import (
    distances,
    drift,
    ks_statistic,
    psi,
    wasserstein,
    windowed_quantiles,
)
from hawknb.workspace.errors import WorkspaceError


def _frame(n: int = 20_000, loc: float = 0.0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"a": rng.normal(loc, 1.0, n), "b": rng.exponential(2.0, n)})


def test_identical_windows_have_zero_drift() -> None:
    df = _frame()
    rep = drift(df, df)
    for col in ("a", "b"):
        d = rep[col]
        assert d.psi == pytest.approx(0.0, abs=1e-12)
        assert d.wasserstein == pytest.approx(0.0, abs=1e-12)
        assert d.ks == pytest.approx(0.0, abs=1e-12)
        assert d.mean_shift == pytest.approx(0.0, abs=1e-12)


def test_known_mean_shift_distances() -> None:
    """N(0,1) -> N(1,1): W1 = 1 = 1/1.349 reference IQRs, KS = 2*Phi(0.5)-1, robust shift = 1."""
    ref, cur = _frame(200_000, 0.0, 1), _frame(200_000, 1.0, 2)
    d = drift(ref, cur, ["a"])["a"]
    assert d.wasserstein == pytest.approx(1.0 / 1.349, rel=0.03)
    assert d.ks == pytest.approx(2 * stats.norm.cdf(0.5) - 1, abs=0.01)
    assert d.mean_shift == pytest.approx(1.0, rel=0.03)
    assert d.psi > 0.5  # a one-sigma shift is a large PSI
    small = drift(ref, _frame(200_000, 0.1, 3), ["a"])["a"]
    assert small.psi < d.psi and small.wasserstein < d.wasserstein


def test_psi_of_a_tiny_window_is_not_inflated_by_empty_bins() -> None:
    """9 rows against 70 of the same distribution: with 10 bins most of the 9-row bins are
    empty and PSI reads as a big drift; fewer bins keep it near its sampling noise."""
    rng = np.random.default_rng(5)
    same = [psi(rng.normal(0, 1, 70), rng.normal(0, 1, 9)) for _ in range(200)]
    assert np.median(same) < 0.6  # with 10 fixed bins the median is about 3
    moved = [psi(rng.normal(0, 1, 70), rng.normal(3, 1, 9)) for _ in range(200)]
    assert np.median(moved) > 3 * np.median(same)  # a real shift still stands out
    big = rng.normal(0, 1, 50_000)
    assert psi(big, rng.normal(0, 1, 50_000)) < 0.01  # large samples keep all 10 bins


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy on one-element samples
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
    st.lists(st.integers(-20, 20), min_size=1, max_size=60),
)
def test_w1_and_ks_match_scipy_with_ties(a: list[int], b: list[int]) -> None:
    x, y = np.array(a, float), np.array(b, float)
    assert wasserstein(x, y, normalize=False) == pytest.approx(
        stats.wasserstein_distance(x, y), abs=1e-9
    )
    assert ks_statistic(x, y) == pytest.approx(
        stats.ks_2samp(x, y, method="asymp").statistic, abs=1e-9
    )
    assert psi(x, y) >= 0.0


def test_nulls_and_nan_are_counted_apart_and_excluded() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, None, None, 5.0, 6.0]})
    cur = pl.DataFrame({"x": [1.0, 2.0, float("nan"), float("inf"), 3.0, 4.0, 5.0, 6.0]})
    d = drift(ref, cur)["x"]
    assert d.null_rate_reference == pytest.approx(2 / 8)
    assert d.null_rate_current == 0.0
    assert d.nonfinite_rate_current == pytest.approx(2 / 8)
    assert d.nonfinite_rate_reference == 0.0
    assert d.n_reference == 6 and d.n_current == 6
    assert d.ks == pytest.approx(0.0) and d.wasserstein == pytest.approx(0.0)


def test_column_that_went_missing_is_a_finding_not_a_crash() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0, 3.0]})
    cur = pl.DataFrame({"x": [None, None, None]}, schema={"x": pl.Float64})
    d = drift(ref, cur)["x"]
    assert np.isnan(d.psi) and "no finite values in the current window" in d.note
    assert d.null_rate_change == pytest.approx(1.0)
    assert drift(ref, cur).frame().height == 1


def test_pandas_input_is_not_mutated() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "s": ["a", "b", "c", "d"]})
    before = ref.copy()
    rep = drift(ref, ref.assign(x=ref["x"] + 1))
    assert [d.column for d in rep.columns] == ["x"]  # the string column is not compared
    pd.testing.assert_frame_equal(ref, before)
    assert set(rep.frame().columns) >= {"column", "psi", "wasserstein", "ks", "null_rate_change"}


def test_bad_inputs_raise_clear_errors() -> None:
    df = _frame(100)
    with pytest.raises(WorkspaceError, match="column 'zzz'.*missing"):
        drift(df, df, ["zzz"])
    with pytest.raises(WorkspaceError, match="has no rows"):
        drift(df.head(0), df, ["a"])
    with pytest.raises(WorkspaceError, match="not numeric"):
        drift(df.with_columns(s=pl.lit("x")), df.with_columns(s=pl.lit("y")), ["s"])
    with pytest.raises(WorkspaceError, match="no numeric column"):
        drift(pl.DataFrame({"s": ["x"]}), pl.DataFrame({"s": ["y"]}))
    with pytest.raises(TypeError):
        drift([1, 2, 3], df)


def test_windowed_quantiles_known_values() -> None:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    rows = []
    for h in range(3):
        for i in range(101):  # hour h holds h*100 + 0..100 -> median h*100 + 50
            rows.append((t0 + dt.timedelta(hours=h, seconds=i), float(h * 100 + i)))
    df = pl.DataFrame(rows, schema={"ts": pl.Datetime("us", "UTC"), "x": pl.Float64}, orient="row")
    df = pl.concat(
        [
            df,
            pl.DataFrame(
                {"ts": [t0, t0], "x": [float("nan"), None]},
                schema={"ts": pl.Datetime("us", "UTC"), "x": pl.Float64},
            ),
        ]
    )
    out = windowed_quantiles(df, columns=["x"], every="1h", quantiles=(0.5, 0.9))
    assert out.height == 3
    assert out["p50"].to_list() == pytest.approx([50.0, 150.0, 250.0])
    assert out["p90"].to_list() == pytest.approx([90.0, 190.0, 290.0])
    first = out.row(0, named=True)
    assert first["count"] == 103 and first["null_count"] == 1 and first["nonfinite_count"] == 1
    assert first["mean"] == pytest.approx(50.0)
    with pytest.raises(WorkspaceError):
        windowed_quantiles(df, ts="nope", columns=["x"])
    with pytest.raises(ValueError, match="outside"):
        windowed_quantiles(df, columns=["x"], quantiles=(1.5,))


# -- extreme magnitudes -----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e150, 1e300, 1e307])
def test_distances_at_extreme_magnitudes(scale: float) -> None:
    """Scale-free distances do not depend on the unit, even near the float limits: KS never
    above 1, a sample against itself exactly 0, mean shift finite."""
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 3000)  # quantile edges between points: no tie flips a bin
    b = rng.normal(0.5, 1, 2000)
    base = distances(a, b)
    got = distances(a * scale, b * scale)
    assert all(np.isfinite(got))
    assert got == pytest.approx(base, rel=1e-9)
    assert 0.0 <= got[2] <= 1.0
    same = distances(a * scale, a * scale)
    assert same == (0.0, 0.0, 0.0, 0.0)
    assert wasserstein(a * scale, a * scale) == 0.0
    assert ks_statistic(a * scale, a * scale) == 0.0


def test_extremes_of_both_signs_stay_finite() -> None:
    big = np.finfo(np.float64).max
    ref = np.array([-big, -big / 2, 0.0, big / 2, big, 1.0, -1.0])
    cur = np.array([big, big, big / 2, 0.0])
    p, w1, ks, ms = distances(ref, cur)
    assert np.isfinite([p, w1, ms]).all() and 0.0 <= ks <= 1.0
    assert ms > 0 and w1 > 0
    # a constant reference reports raw units: an overflow is +inf, never NaN
    _, w_raw, _, ms_raw = distances(np.full(5, -big), np.full(5, big))
    assert ms_raw == np.inf and w_raw == np.inf


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=60),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=60),
)
def test_ks_is_a_probability_gap_and_self_distance_is_zero(a: list, b: list) -> None:
    _, w1, ks, ms = distances(np.array(a), np.array(b))
    assert 0.0 <= ks <= 1.0
    assert not np.isnan(ms) and not np.isnan(w1)
    assert distances(np.array(a), np.array(a))[1:3] == (0.0, 0.0)


# -- large samples: binned against the reference quantiles, no sort of the current sample -------
def _exact(ref: np.ndarray, cur: np.ndarray) -> tuple[float, ...]:
    old = drift_module.BINNED_FROM
    drift_module.BINNED_FROM = 10**12
    try:
        return distances(ref, cur)
    finally:
        drift_module.BINNED_FROM = old


_RNG = np.random.default_rng(11)
_LARGE = {
    "normal shift": (_RNG.normal(0, 1, 20_000), _RNG.normal(0.1, 1, 60_000)),
    "same": (_RNG.normal(0, 1, 20_000), _RNG.normal(0, 1, 60_000)),
    "exponential f32": (
        _RNG.exponential(1, 20_000).astype(np.float32),
        _RNG.exponential(1.2, 60_000).astype(np.float32),
    ),
    "integer ties": (
        _RNG.integers(0, 20, 20_000).astype(float),
        _RNG.integers(0, 22, 60_000).astype(float),
    ),
    "cauchy": (_RNG.standard_cauchy(20_000), _RNG.standard_cauchy(60_000) + 0.05),
    "point mass": (
        np.r_[np.zeros(10_000), _RNG.normal(0, 1, 10_000)],
        np.r_[np.zeros(45_000), _RNG.normal(1, 1, 15_000)],
    ),
    "lognormal": (_RNG.lognormal(0, 2, 20_000), _RNG.lognormal(0.05, 2, 60_000)),
    "offset f32 (1e6 + small spread)": (
        (1e6 + _RNG.normal(0, 3, 20_000)).astype(np.float32),
        (1e6 + _RNG.normal(0.5, 3, 60_000)).astype(np.float32),
    ),
    "current beyond the reference": (_RNG.normal(0, 1, 20_000), _RNG.normal(9, 1, 60_000)),
    "mixed dtypes": (_RNG.normal(0, 1, 20_000), _RNG.normal(0, 1.1, 60_000).astype(np.float32)),
    "lognormal f32, many cells": (
        _RNG.lognormal(0, 1.5, 20_000).astype(np.float32),
        _RNG.lognormal(0, 1.5, 60_000).astype(np.float32),
    ),
    # every pulled cell a pure point mass: nothing is pulled out but counted (crashed W1)
    "two values": (
        np.random.default_rng(5).integers(0, 2, 20_001).astype(float),
        np.random.default_rng(6).integers(0, 2, 60_000).astype(float),
    ),
    "near the float limit": (
        _RNG.normal(0, 1, 20_000) * 1e305,
        _RNG.normal(0.2, 1, 60_000) * 1e305,
    ),
}


@pytest.mark.parametrize("case", sorted(_LARGE))
def test_binned_distances_match_the_exact_ones(case: str) -> None:
    """PSI and KS exact, W1 within 1e-4 of an IQR, mean shift to rounding; KS equals
    scipy's, so any flag drawn from it (its p-value) is scipy's flag."""
    ref, cur = _LARGE[case]
    assert cur.size >= drift_module.BINNED_FROM
    p, w1, ks, ms = distances(ref, cur)
    ep, ew1, eks, ems = _exact(ref, cur)
    assert p == pytest.approx(ep, abs=1e-12)
    assert ks == pytest.approx(eks, abs=1e-12)
    assert ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert w1 == pytest.approx(ew1, abs=1e-4, rel=1e-4)
    assert ms == pytest.approx(ems, rel=1e-6, abs=1e-9)


def test_drift_of_many_columns_on_threads_equals_one_by_one() -> None:
    rng = np.random.default_rng(3)
    ref = pl.DataFrame({f"f{i}": rng.normal(0, 1, 20_000) for i in range(4)})
    cur = pl.DataFrame({f"f{i}": rng.normal(0.05 * i, 1, 60_000) for i in range(4)})
    rep = drift(ref, cur)
    for i in range(4):
        one = distances(ref[f"f{i}"].to_numpy(), cur[f"f{i}"].to_numpy())
        got = rep[f"f{i}"]
        assert (got.psi, got.wasserstein, got.ks, got.mean_shift) == one
    assert rep["f3"].ks > rep["f0"].ks


@pytest.mark.parametrize("case", ["normal shift", "same", "lognormal f32, many cells", "cauchy"])
def test_finer_grid_for_large_samples_stays_exact(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large samples get a grid up to 4x finer (with up to 4x the cells) so that the CDFs of
    an undrifted column do not cross in most cells; forced here on small samples, the
    answers must stay those of the exact path."""
    from hawknb.kernels import drift_binned

    monkeypatch.setattr(drift_binned, "_REFINE_FROM", 500)
    assert drift_binned._refine(20_000, 60_000) == drift_binned._REFINE_MAX
    ref, cur = _LARGE[case]
    p, w1, ks, ms = distances(ref, cur)
    ep, ew1, eks, ems = _exact(ref, cur)
    assert p == pytest.approx(ep, abs=1e-12)
    assert ks == pytest.approx(eks, abs=1e-12)
    assert w1 == pytest.approx(ew1, abs=1e-4, rel=1e-4)
    assert ms == pytest.approx(ems, rel=1e-6, abs=1e-9)

"""Model-led candidate windows (hawknb.triage.led): a small drop of a metric that its own
detector cannot tell from noise becomes a candidate when a model's predictions got worse at
the same time; without the model's step, or without the metric's, it does not."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.anomaly import detect_anomalies
from hawknb.triage.led import (
    HEALTH_STEP_Z,
    METRIC_STEP_Z,
    input_peaks,
    led_windows,
    standardized_steps,
)
from hawknb.triage.topline import TOPLINE_SEVERITY, merge_episodes

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
STEP = timedelta(minutes=30)
N = 48 * 12  # twelve days at 30 minutes
AT = N - 30  # the incident, 15 hours before the end


def _ts() -> list[datetime]:
    return [T0 + i * STEP for i in range(N)]


def _metric(name: str, seed: int, drop_at: int | None, drop: float) -> pl.DataFrame:
    """A daily cycle with autocorrelated noise; ``drop`` (relative) from ``drop_at`` on."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(N) % 48) / 2
    noise = np.convolve(rng.standard_normal(N + 5), np.ones(6) / np.sqrt(6), "valid")[:N]
    # a slow swing no daily profile models (a weekly pattern, a trend)
    swing = 0.03 * np.sin(2 * np.pi * np.arange(N) / (48 * 5) + seed)
    x = 1000 * (1 + 0.2 * np.cos(2 * np.pi * hour / 24)) * (1 + 0.02 * noise + swing)
    if drop_at is not None:
        x[drop_at:] *= 1 - drop
    return pl.DataFrame({"metric": name, "ts": _ts(), "value": x})


def _health(step_at: int | None, seed: int) -> pl.DataFrame:
    """Prediction health of two models: model b's NE steps up (worse) at ``step_at``."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("a", "b"):
        ne = 0.8 + 0.01 * rng.standard_normal(N)
        if model == "b" and step_at is not None:
            ne[step_at:] += 0.08
        rows.append(
            pl.DataFrame(
                {
                    "model": model,
                    "experiment": "ctl",
                    "ts": _ts(),
                    "mean_prediction": 0.1 + 0.001 * rng.standard_normal(N),
                    "ne": ne,
                }
            )
        )
    return pl.concat(rows)


def _world(drop: float, step_at: int | None, seed: int = 1):
    series = pl.concat(
        [_metric("revenue", seed, AT, drop), _metric("latency", seed + 1, N // 3, -0.15)]
    )
    results = {
        name: detect_anomalies(
            series.filter(pl.col("metric") == name).select("ts", "value"),
            min_severity=TOPLINE_SEVERITY,
        )
        for name in ("revenue", "latency")
    }
    return series, results, _health(step_at, seed)


def test_standardized_steps_find_a_step_on_its_own_scale():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(400)
    x[250:] += 3.0
    z = standardized_steps(x, 6)
    assert int(np.nanargmax(z)) in range(247, 254)
    assert np.nanmax(z) > 5
    # the scale is the series' own: multiplying it changes nothing
    np.testing.assert_allclose(standardized_steps(1000 * x, 6), z)
    # too short, or constant: nothing to standardize against
    assert np.isnan(standardized_steps(x[:10], 6)).all()
    assert np.isnan(standardized_steps(np.ones(400), 6)).all()


def test_a_small_drop_the_detector_misses_is_led_by_the_model_that_got_worse():
    series, results, health = _world(drop=0.02, step_at=AT)
    onset = _ts()[AT]
    # the metric's own detector has no window at the incident (the premise of the test)
    own = merge_episodes(results["revenue"], STEP)
    assert not any(w.onset - 3 * STEP <= onset <= w.end for w, _ in own)
    got = led_windows(health, STEP, results, series, known=[])
    assert got, "model b's NE stepped worse with a revenue drop: a candidate"
    anomaly, finding, mass = got[0]
    assert anomaly.metric == "revenue"
    assert anomaly.direction == -1
    assert abs(anomaly.onset - onset) <= 2 * STEP
    assert anomaly.sustained  # no row alerted: weaker evidence, as sustained windows
    assert "led_by" in finding.evidence and mass >= 0


def test_no_model_step_no_led_window():
    series, results, health = _world(drop=0.02, step_at=None)
    assert led_windows(health, STEP, results, series, known=[]) == []


def test_a_model_step_without_a_metric_step_leads_nowhere():
    series, results, health = _world(drop=0.0, step_at=AT)
    got = led_windows(health, STEP, results, series, known=[])
    assert all(abs(a.onset - _ts()[AT]) > 2 * STEP for a, _, _ in got)


def test_a_window_already_known_is_not_repeated():
    series, results, health = _world(drop=0.02, step_at=AT)
    first = led_windows(health, STEP, results, series, known=[])
    assert first
    again = led_windows(health, STEP, results, series, known=[first[0][0]])
    assert all(a.metric != "revenue" or a.onset != first[0][0].onset for a, _, _ in again)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_health_values_are_ignored(bad):
    series, results, health = _world(drop=0.02, step_at=AT)
    health = health.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(bad).otherwise(pl.col("ne")).alias("ne")
    )
    got = led_windows(health, STEP, results, series, known=[])
    assert got and got[0][0].metric == "revenue"


def test_thresholds_are_ordered():
    # the model's step is scanned over every series and time, the metric's only at the
    # times the models point at: the first must be the stricter
    assert HEALTH_STEP_Z > METRIC_STEP_Z > 0


def test_a_led_window_convicts_only_as_far_as_its_metric_moved():
    """A window the models led to, whose metric stepped barely past noise, cannot convict
    firmly: the supports scale by the metric step's strength (and the sustained weight)."""
    from dataclasses import replace

    from hawknb.kernels.isolation import strength
    from hawknb.triage.calibration import calibrated
    from hawknb.triage.findings import Finding
    from hawknb.triage.hypotheses import Hypothesis
    from hawknb.triage.run import _window_doubt
    from hawknb.triage.topline import Anomaly
    from hawknb.triage.windows import SUSTAINED_WEIGHT, WindowChoice

    base = Anomaly("revenue", T0, T0 + 4 * STEP, -1, 2.6, 0.1, STEP, sustained=True)
    f = Finding("topline", checked="", decision="")

    def choice(a: Anomaly) -> WindowChoice:
        return WindowChoice(a, f, 1.0, None, f, pl.DataFrame(), None, 0.5)  # type: ignore[arg-type]

    weak, clear = replace(base, led=True), replace(base, led=True, severity=7.0)
    h_quiet, h_weak, h_clear = (Hypothesis("upstream_data", 0.3) for _ in range(3))
    _window_doubt([h_quiet], choice(base))
    _window_doubt([h_weak], choice(weak))
    _window_doubt([h_clear], choice(clear))
    assert h_quiet.support == pytest.approx(0.3 * SUSTAINED_WEIGHT)
    assert h_weak.support == pytest.approx(0.3 * SUSTAINED_WEIGHT * strength(2.6))
    assert h_clear.support == pytest.approx(h_quiet.support)  # a clear step: no extra doubt
    assert any("health step" in e for e in h_weak.evidence_against)
    assert calibrated(h_weak, None) < 0.3 < calibrated(h_quiet, None)


def _serving(break_at: int | None, seed: int = 5, rows_per_step: int = 12) -> pl.DataFrame:
    """A sampled serving log of two models with 12 features each over the metric's span;
    from ``break_at`` on (a metric step index) six of model b's features lose a third of
    their value (an upstream source lost rows), while its predictions stay as noisy as ever."""
    rng = np.random.default_rng(seed)
    n = N * rows_per_step
    step_idx = np.repeat(np.arange(N), rows_per_step)
    ts = [T0 + STEP * (i + 0.5) for i in step_idx]
    frames = []
    for model in ("a", "b"):
        x = rng.gamma(4.0, 1.0, size=(n, 12))
        if model == "b" and break_at is not None:
            x[step_idx >= break_at, :6] *= 0.67
        cols = {f"{model}_f{k}": x[:, k] for k in range(12)}
        frames.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "model": model,
                    "experiment": "ctl",
                    "snapshot": "s1",
                    "prediction": 0.1 + 0.01 * rng.standard_normal(n),
                    "label": None,
                    **cols,
                }
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")


FEATURES = {m: [f"{m}_f{k}" for k in range(12)] for m in ("a", "b")}


def test_many_inputs_stepping_at_once_lead_when_the_predictions_stay_flat():
    """Labels hours late and a mean prediction within its noise: the health has no step, but
    six of model b's inputs stepped in the same hour, which leads to the metric's small drop."""
    series, results, health = _world(drop=0.02, step_at=None)
    peaks = input_peaks(_serving(AT).lazy(), FEATURES, "1h")
    assert peaks and peaks[0][2] == "b"
    assert abs(peaks[0][1] - _ts()[AT]) <= timedelta(hours=2)
    assert len({p[2] for p in peaks}) == 1, "model a's inputs did not break"
    # without the input evidence there is nothing to lead (the health is flat) ...
    assert led_windows(health, STEP, results, series, known=[]) == []
    # ... with it the drop becomes a candidate
    got = led_windows(health, STEP, results, series, known=[], inputs=peaks)
    assert got and got[0][0].metric == "revenue"
    assert abs(got[0][0].onset - _ts()[AT]) <= 2 * STEP
    assert "input features stepped" in got[0][1].evidence["led_by"]


def test_inputs_that_only_wander_lead_nowhere():
    assert input_peaks(_serving(None).lazy(), FEATURES, "1h") == []
    # a model without features, or whose features.json names columns the log lacks, has
    # nothing to count
    assert input_peaks(_serving(None).lazy(), {"c": []}, "1h") == []
    assert input_peaks(_serving(AT).lazy(), {"b": ["not_logged"]}, "1h") == []


def _noisy_health(shift: float, at: int, spike: bool, seed: int) -> pl.DataFrame:
    """One model's mean prediction on few rows per window (noisy), with a level ``shift``
    from ``at`` on that stays, or (``spike``) that lasts only three windows."""
    rng = np.random.default_rng(seed)
    mean = 0.15 + 0.05 * rng.standard_normal(N)
    mean[at : at + 3 if spike else N] += shift
    return pl.DataFrame(
        {"model": "b", "experiment": "trt", "ts": _ts(), "mean_prediction": mean, "ne": 0.8}
    )


def test_a_level_shift_that_stays_leads_even_when_six_windows_cannot_tell_it_from_noise():
    from hawknb.triage.led import STEP_SPAN, _health_peaks

    shift = 0.11  # ~4 sigma of a 6-window step, ~5.7 of a 12-window one
    health = _noisy_health(shift, AT, spike=False, seed=5)
    z6 = np.nanmax(np.abs(standardized_steps(health["mean_prediction"].to_numpy(), STEP_SPAN)))
    assert z6 < HEALTH_STEP_Z, "the premise: the short span alone does not lead"
    peaks = _health_peaks(health)
    assert peaks, "a shift that stays is clear over twice the span"
    z, t, model, _ = peaks[0]
    assert model == "b" and z >= HEALTH_STEP_Z
    assert abs(t - _ts()[AT]) <= 3 * STEP


def test_a_short_blip_of_the_same_size_does_not_lead():
    from hawknb.triage.led import _health_peaks

    health = _noisy_health(0.11, AT, spike=True, seed=5)
    assert _health_peaks(health) == []


def _plain_metric(name: str, seed: int, at: int, drop: float) -> pl.DataFrame:
    """A daily cycle with 1% independent noise; ``drop`` (relative) from ``at`` on."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(N) % 48) / 2
    x = 1000 * (1 + 0.2 * np.cos(2 * np.pi * hour / 24)) * (1 + 0.01 * rng.standard_normal(N))
    x[at:] *= 1 - drop
    return pl.DataFrame({"metric": name, "ts": _ts(), "value": x})


def _two_metric_world(seed: int = 4):
    """Revenue drops 5% at AT; latency shifts 15% five hours earlier, for its own reasons."""
    series = pl.concat(
        [
            _plain_metric("revenue", seed, AT, 0.05),
            _plain_metric("latency", seed + 1, AT - 10, -0.15),
        ]
    )
    results = {
        name: detect_anomalies(
            series.filter(pl.col("metric") == name).select("ts", "value"),
            min_severity=TOPLINE_SEVERITY,
        )
        for name in ("revenue", "latency")
    }
    return series, results


def test_a_metric_steps_against_the_same_hours_a_day_before():
    from hawknb.triage.led import _day_over_day_steps, _metric_steps

    series, results = _two_metric_world()
    value = series.filter(pl.col("metric") == "revenue")["value"].to_numpy()
    day = _day_over_day_steps(value, STEP)
    near = slice(AT - 1, AT + 2)
    assert np.nanmin(day[near]) <= -4.0
    # at other times it is noise on its own history's scale
    assert np.nanquantile(np.abs(day[48 : AT - 48]), 0.95) < 3.0
    # the led step is the clearer of it and the step of the detector's own robust z
    _, z, steps, _ = _metric_steps(results)["revenue"]
    own = standardized_steps(z, 6)
    clearer = np.where(np.abs(np.nan_to_num(day)) > np.abs(np.nan_to_num(own)), day, own)
    np.testing.assert_allclose(steps, clearer)
    # a history of fewer than DAY_OVER_DAY_MIN_DAYS days has no day before to trust
    assert np.isnan(_day_over_day_steps(np.ones(48 * 3), STEP)).all()


def test_leads_hours_apart_may_lead_to_different_metrics():
    series, results = _two_metric_world()
    ts = _ts()
    leads = [(12.0, ts[AT - 10], "a", "a's inputs stepped"), (9.0, ts[AT], "b", "b's rows")]
    got = led_windows(_health(None, 4), STEP, results, series, known=[], inputs=leads)
    found = {a.metric: a.onset for a, _, _ in got}
    assert set(found) == {"latency", "revenue"}, found
    assert abs(found["revenue"] - ts[AT]) <= 2 * STEP
    # and a second lead near the first to the same metric is the same incident
    again = [*leads, (8.0, ts[AT + 1], "b", "b's health")]
    got = led_windows(_health(None, 4), STEP, results, series, known=[], inputs=again)
    assert sorted(a.metric for a, _, _ in got) == ["latency", "revenue"]


def test_the_input_chance_does_not_saturate():
    """A count far beyond a model's usual one is a chance below 1e-300; its log is still read
    (pdtrc alone underflows to 0), so stronger evidence stays stronger."""
    from scipy.special import pdtrc

    from hawknb.triage.led import _poisson_log_sf

    n = np.array([0, 1, 3, 12, 40, 200, 2000])
    for mu in (1e-3, 0.05, 0.7, 3.0):
        got = _poisson_log_sf(n, mu)
        assert got[0] == 0.0 and np.all(np.isfinite(got)) and np.all(np.diff(got) < 0)
        with np.errstate(divide="ignore"):
            exact = np.log(pdtrc(n - 1, mu))
        ok = exact > -600
        under = ~ok & (n > 0)
        np.testing.assert_allclose(got[ok], exact[ok], rtol=1e-9)
        # where it underflows: the first term bounds it from below, within log(2)
        first = -mu + n * np.log(mu) - np.array([math.lgamma(k + 1) for k in n])
        assert under.any()
        assert np.all(got[under] >= first[under])
        assert np.all(got[under] <= first[under] + math.log(2))


def test_equally_strong_leads_go_by_time_not_by_name():
    """Two models whose inputs broke at the cap: the earlier break leads, whatever the names."""
    from hawknb.triage.led import MAX_LEAD_Z, _by_strength

    t0, t1 = _ts()[AT], _ts()[AT + 2]
    peaks = [
        (MAX_LEAD_Z, t1, "aaa", "later"),
        (MAX_LEAD_Z, t0, "zzz", "earlier"),
        (9.0, t0, "m", ""),
    ]
    assert [p[3] for p in _by_strength(peaks)] == ["earlier", "later", ""]

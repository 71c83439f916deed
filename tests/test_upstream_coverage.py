"""Which model's inputs broke at the onset (kernels.coverage, triage.upstream), on serving
logs built here: the right answer is whatever was broken on purpose."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.coverage import input_breaks
from hawknb.triage import upstream
from hawknb.triage.topline import Anomaly
from hawknb.workspace import Workspace, WorkspaceError

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
ONSET = T0 + dt.timedelta(hours=30)
HOURS = 40
ROWS_PER_HOUR = 40


def _serving(
    breaks: dict[str, dict[str, str]], *, n_features: int = 12, seed: int = 0
) -> pl.DataFrame:
    """Three models (a, b, c), ``n_features`` positive count-like features each, and
    prediction noise; ``breaks[model][feature]`` is applied from ONSET on: "default" (0.0 on
    60% of rows), "null" (missing on 60%), "scale" (x 0.5), "flip" (a feature that changes
    level every 3 hours, onset included), "trend" (a slow drift over the whole log)."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in ("a", "b", "c"):
        n = HOURS * ROWS_PER_HOUR
        ts = T0 + pl.Series(np.sort(rng.uniform(0, HOURS * 3600, n))) * dt.timedelta(seconds=1)
        hours = np.asarray((ts - T0).dt.total_seconds()) / 3600
        after = hours >= (ONSET - T0).total_seconds() / 3600
        cols: dict[str, np.ndarray] = {}
        for j in range(n_features):
            f = f"{m}_f{j}"
            x = rng.lognormal(1.0, 0.5, n)
            how = breaks.get(m, {}).get(f)
            if how == "default":
                x[after & (rng.random(n) < 0.6)] = 0.0
            elif how == "null":
                x[after & (rng.random(n) < 0.6)] = np.nan
            elif how == "scale":
                x[after] *= 0.5
            elif how == "flip":
                x *= np.where((hours // 3) % 2 == 0, 1.0, 1.8)
            elif how == "trend":
                x *= 1 + hours / HOURS
            cols[f] = x
        frames.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "model": m,
                    "experiment": "ctl",
                    "snapshot": f"{m}-1",
                    "prediction": rng.uniform(0, 1, n),
                    "label": (rng.random(n) < 0.2).astype(float),
                    **cols,
                }
            ).with_columns(pl.col(f).fill_nan(None) for f in cols)
        )
    return pl.concat(frames, how="diagonal")


def _models(n_features: int = 12) -> dict[str, list[str]]:
    return {m: [f"{m}_f{j}" for j in range(n_features)] for m in ("a", "b", "c")}


def test_defaults_and_missing_values_name_the_model_and_its_features():
    broken = {"b": {"b_f1": "default", "b_f4": "default", "b_f7": "null", "b_f9": "default"}}
    res = input_breaks(_serving(broken), _models(), ONSET)
    assert res[0].model == "b"
    top = res[0]
    assert sorted(top.top(10)) == sorted(broken["b"])
    assert {b.test for b in top.broken} == {"takeover"}
    assert all(b.share_after > 0.4 > b.share_before for b in top.broken)
    assert all(r.n_broken == 0 for r in res[1:])


def test_a_shrunken_count_breaks_by_its_distribution():
    broken = {"c": {f"c_f{j}": "scale" for j in range(5)}}
    res = input_breaks(_serving(broken), _models(), ONSET)
    assert res[0].model == "c"
    assert sorted(res[0].top(10)) == sorted(broken["c"])
    assert {b.test for b in res[0].broken} == {"ks"}


def test_a_feature_that_steps_all_the_time_or_drifts_slowly_is_not_a_break():
    broken = {"a": {"a_f0": "flip", "a_f1": "flip", "a_f2": "trend", "a_f3": "trend"}}
    res = input_breaks(_serving(broken), _models(), ONSET)
    assert all(r.n_broken == 0 for r in res), [(r.model, r.top()) for r in res]


def test_a_break_one_window_before_the_detected_onset_still_counts():
    broken = {"a": {f"a_f{j}": "default" for j in range(4)}}
    late = ONSET + dt.timedelta(hours=2)  # the metric's onset lags the data break
    res = input_breaks(_serving(broken), _models(), late, window=dt.timedelta(hours=3))
    assert res[0].model == "a" and res[0].n_broken == 4


def test_no_break_at_another_time():
    broken = {"a": {f"a_f{j}": "default" for j in range(4)}}
    res = input_breaks(_serving(broken), _models(), ONSET - dt.timedelta(hours=10))
    assert all(r.n_broken == 0 for r in res)


def test_bad_input_is_a_one_line_error():
    df = _serving({})
    with pytest.raises(ValueError, match="timezone-aware"):
        input_breaks(df, _models(), ONSET.replace(tzinfo=None))
    with pytest.raises(ValueError, match="positive"):
        input_breaks(df, _models(), ONSET, window=dt.timedelta(0))
    with pytest.raises(WorkspaceError, match="model"):
        input_breaks(df.drop("model"), _models(), ONSET)
    # features a model lists that the log lacks are not tested (the contract allows that)
    res = input_breaks(df, {"a": ["a_f0", "nope"]}, ONSET)
    assert res[0].n_features == 1


def test_confidence_grows_with_the_features_that_broke():
    conf = [upstream.confidence(n) for n in range(0, 30)]
    assert conf[: upstream.MIN_BROKEN] == [0.0] * upstream.MIN_BROKEN
    grown = conf[upstream.MIN_BROKEN :]
    assert all(b > a for a, b in pairwise(grown))
    assert max(conf) <= upstream.MAX_CONFIDENCE


def _workspace(tmp_path: Path, breaks: dict[str, dict[str, str]]) -> Workspace:
    serving = _serving(breaks)
    hours = pl.datetime_range(T0, T0 + dt.timedelta(hours=HOURS - 1), "1h", eager=True)
    drop = np.where(hours >= ONSET, 0.9, 1.0)
    metrics = pl.DataFrame({"ts": hours, "metric": "clicks", "value": 100.0 * drop})
    serving.write_parquet(tmp_path / "serving.parquet")
    metrics.write_parquet(tmp_path / "metrics.parquet")
    return Workspace.open(tmp_path)


def _anomaly() -> Anomaly:
    return Anomaly(
        "clicks", ONSET, ONSET + dt.timedelta(hours=6), -1, 5.0, 0.9, dt.timedelta(hours=1)
    )


def test_input_suspect_names_the_model_whose_inputs_broke(tmp_path):
    ws = _workspace(tmp_path, {"c": {f"c_f{j}": "default" for j in range(6)}})
    sus = upstream.input_suspect(ws, _anomaly())
    assert sus is not None
    assert (sus.model, sus.experiment) == ("c", "ctl")
    assert sus.confidence == pytest.approx(upstream.confidence(6))
    assert sus.finding.step == "models" and "c_f" in sus.finding.decision


def test_input_suspect_is_none_when_no_input_broke(tmp_path):
    ws = _workspace(tmp_path, {"a": {"a_f0": "default", "a_f1": "flip"}})
    assert upstream.input_suspect(ws, _anomaly()) is None


def test_a_break_well_before_a_late_onset_is_found_with_lookback_and_dated():
    broken = {"b": {f"b_f{j}": "default" for j in range(5)}}
    late = ONSET + dt.timedelta(hours=5)  # late labels: the metric's onset trails the break
    w = dt.timedelta(hours=2)
    assert input_breaks(_serving(broken), _models(), late, window=w)[0].n_broken == 0
    res = input_breaks(_serving(broken), _models(), late, window=w, lookback=3)
    assert res[0].model == "b" and res[0].n_broken == 5
    # dated to the window the break happened in ([ONSET - 1 h, ONSET + 1 h)), not the onset
    assert res[0].start == late - 3 * w
    assert {b.window for b in res[0].broken} == {-3}
    assert res[1].start is None
    with pytest.raises(ValueError, match="lookback"):
        input_breaks(_serving(broken), _models(), late, lookback=-1)


def test_the_features_step_starts_its_windows_where_the_inputs_broke(tmp_path):
    from hawknb.triage.features import data_onset

    ws = _workspace(tmp_path, {"c": {f"c_f{j}": "default" for j in range(6)}})
    feats = [f"c_f{j}" for j in range(12)]
    half = dt.timedelta(minutes=30)
    late = Anomaly(
        "clicks", ONSET + dt.timedelta(hours=5), ONSET + dt.timedelta(hours=9), -1, 5.0, 0.9, half
    )
    got = data_onset(ws, "c", feats, late)
    assert ONSET - dt.timedelta(hours=3) <= got <= ONSET
    # a model whose inputs held keeps the metric's onset
    assert data_onset(ws, "a", [f"a_f{j}" for j in range(12)], late) == late.onset

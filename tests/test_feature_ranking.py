"""The combined feature ranking on serving logs with a planted truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from hawknb.kernels.features import FeatureRanking, rank_features
from hawknb.workspace import contract as c
from hawknb.workspace.errors import WorkspaceError

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
NF = 10
NAMES = [f"feat_{j}" for j in range(NF)]
SHIFTED, IGNORED, STUCK = 2, 7, 4  # planted: important shift, zero-weight drift, stuck value


class Logit(torch.nn.Module):
    def __init__(self, w: np.ndarray) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(w, dtype=torch.float32)[None, :])
            self.lin.bias.fill_(-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.lin(x))


def _weights(seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(0.2, 0.6, NF) * np.where(np.arange(NF) % 2, -1, 1)
    w[SHIFTED] = 1.2
    w[IGNORED] = 0.0
    return w


def _serving(
    fault: str, n: int = 40_000, hours: int = 48, seed: int = 0
) -> tuple[pl.DataFrame, Logit]:
    """One model's log (plus a second model's rows, whose features are null) with a fault
    planted at hour ``hours/2``; predictions come from the model, so the truth is known."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.uniform(0, hours * 3600, n))
    x = rng.normal(size=(n, NF)).astype(np.float32)
    after = secs >= hours * 3600 / 2
    if fault == "shift":
        x[after, SHIFTED] += 1.5
        x[after, IGNORED] = x[after, IGNORED] * 4 + 25
    elif fault == "stuck":
        x[after, STUCK] = 0.0
    model = Logit(_weights())
    with torch.no_grad():
        pred = model(torch.from_numpy(x))[:, 0].double().numpy()
    ts = np.datetime64("2024-03-01T00:00:00", "us") + (secs * 1e6).astype("timedelta64[us]")
    df = pl.DataFrame(
        {
            c.TS: ts,
            c.MODEL: "ctr",
            c.EXPERIMENT: "base",
            c.SNAPSHOT: "s1",
            c.PREDICTION: pred,
            c.LABEL: rng.binomial(1, pred).astype(np.float64),
            **{name: x[:, j] for j, name in enumerate(NAMES)},
        }
    ).with_columns(pl.col(c.TS).dt.replace_time_zone("UTC"))
    other = df.head(2000).with_columns(
        pl.lit("other").alias(c.MODEL), *[pl.lit(None, pl.Float32).alias(f) for f in NAMES]
    )
    return pl.concat([df, other]), model


ONSET = T0 + dt.timedelta(hours=24)


def test_important_shift_ranks_first_and_ignored_drift_ranks_low() -> None:
    df, model = _serving("shift")
    r = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, program=model)
    assert isinstance(r, FeatureRanking) and r.used_program
    assert r.top(1) == [NAMES[SHIFTED]]
    t = r.frame()
    ignored = t.filter(pl.col("feature") == NAMES[IGNORED]).row(0, named=True)
    top = t.row(0, named=True)
    assert ignored["drift_psi"] > top["drift_psi"]  # the ignored feature drifted the most ...
    assert ignored["rank"] > NF // 2  # ... yet ranks in the bottom half
    assert ignored["confidence"] < 0.1 and ignored["importance_before"] == 0.0
    assert top["confidence"] > 0.7 and top["corr_with_prediction"] > 0.5
    assert r.topk_stability >= 0.9
    assert r.prediction_shift > 0
    assert t["rank"].to_list() == list(range(1, NF + 1))
    assert set(t.columns) >= {
        "feature", "rank", "score", "confidence", "drift_psi", "drift_wasserstein",
        "corr_with_prediction", "importance_before", "importance_after", "importance_shift",
        "null_rate_before", "null_rate_after", "evidence",
    }  # fmt: skip
    assert "carries" in top["evidence"]


def test_without_program_only_distribution_evidence_is_used() -> None:
    df, _ = _serving("shift")
    r = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET)
    assert not r.used_program and "distribution only" in r.method
    assert any("no program" in n for n in r.notes)
    # both changed features are on top: time correlation alone cannot tell them apart
    assert set(r.top(2)) == {NAMES[SHIFTED], NAMES[IGNORED]}
    assert r.frame()["confidence"].max() <= 0.5
    assert (
        r.frame()["importance_shift"].is_null().all()
        or r.frame()["importance_shift"].is_nan().all()
    )


def test_stuck_feature_ranks_first_with_program() -> None:
    df, model = _serving("stuck")
    r = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, program=model)
    assert r.top(1) == [NAMES[STUCK]]
    row = r.frame().row(0, named=True)
    assert row["importance_after"] < 0.05 * row["importance_before"]


def test_no_fault_gives_low_confidence_everywhere() -> None:
    df, model = _serving("none")
    r = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, program=model)
    assert r.frame()["drift_psi"].max() < 0.02
    assert r.frame()["score"].max() < 0.2


def test_explicit_windows_series_and_determinism() -> None:
    df, model = _serving("shift", n=20_000)
    kw = dict(
        model="ctr",
        feature_names=NAMES,
        onset=ONSET,
        reference=(T0, T0 + dt.timedelta(hours=20)),
        anomaly=(ONSET, ONSET + dt.timedelta(hours=20)),
        program=model,
        sample_rows=512,
        seed=5,
    )
    r1, r2 = rank_features(df.to_pandas(), **kw), rank_features(df, **kw)
    assert r1.frame().equals(r2.frame())
    assert r1.n_reference_rows + r1.n_anomaly_rows < 20_000
    s = r1.sparklines()
    assert set(s["feature"].unique()) == {*NAMES}
    assert r1.series.filter(pl.col("feature") == c.PREDICTION).height > 8


def test_bad_inputs() -> None:
    df, _ = _serving("none", n=3000)
    with pytest.raises(WorkspaceError, match="no column for features"):
        rank_features(df, model="ctr", feature_names=[*NAMES, "nope"], onset=ONSET)
    with pytest.raises(WorkspaceError, match="no rows for model 'ctr'"):
        rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, experiment="nope")
    with pytest.raises(WorkspaceError, match="no rows for model 'zzz'"):
        rank_features(df, model="zzz", feature_names=NAMES, onset=ONSET)
    with pytest.raises(WorkspaceError, match="no finite value"):
        rank_features(df, model="other", feature_names=NAMES, onset=ONSET)
    with pytest.raises(ValueError, match="overlap"):
        rank_features(
            df, model="ctr", feature_names=NAMES, onset=ONSET,
            reference=(T0, ONSET + dt.timedelta(hours=1)), anomaly=(ONSET, ONSET + dt.timedelta(hours=3)),
        )  # fmt: skip
    with pytest.raises(WorkspaceError, match="before the onset"):
        rank_features(df, model="ctr", feature_names=NAMES, onset=T0 - dt.timedelta(days=1))
    with pytest.raises(ValueError, match="empty"):
        rank_features(df, model="ctr", feature_names=[], onset=ONSET)
    with pytest.raises(WorkspaceError, match="'prediction'"):
        rank_features(df.drop(c.PREDICTION), model="ctr", feature_names=NAMES, onset=ONSET)


def test_the_same_rows_in_another_order_rank_the_same() -> None:
    """Ablation and the window subsamples pick rows by position: the same rows in another
    order (a profile's sample, a log written by another engine) must rank the same."""
    df, model = _serving("shift", n=12_000)
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    a = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, program=model)
    b = rank_features(shuffled, model="ctr", feature_names=NAMES, onset=ONSET, program=model)
    assert a.table.equals(b.table)
    assert a.topk_stability == b.topk_stability


def _given(df: pl.DataFrame, scale: float):
    """A window_drift that answers the rows' own drift times ``scale`` (so the test can tell
    whose numbers the ranking used), with its windows recorded."""
    from hawknb.kernels.drift import distances

    seen: list[tuple] = []

    def answer(reference: tuple, current: tuple) -> pl.DataFrame:
        seen.append((reference, current))
        win = [
            df.filter((pl.col(c.MODEL) == "ctr") & pl.col(c.TS).is_between(*w, closed="left"))
            for w in (reference, current)
        ]
        recs = []
        for f in NAMES:
            psi, w1, ks, shift = distances(win[0][f].to_numpy(), win[1][f].to_numpy())
            recs.append(
                {
                    "feature": f,
                    "psi": psi * scale,
                    "wasserstein": w1 * scale,
                    "ks": ks,
                    "ks_error": 0.01,
                    "psi_error": 0.02,
                    "mean_shift": shift,
                    "null_rate_reference": 0.0,
                    "null_rate_current": 0.5 if f == NAMES[0] else 0.0,
                    "nonfinite_rate_reference": 0.0,
                    "nonfinite_rate_current": 0.0,
                    "source": "the test's sketches",
                }
            )
        return pl.DataFrame(recs)

    return answer, seen


def test_window_drift_replaces_the_rows_window_level_drift() -> None:
    df, _ = _serving("shift", n=12_000)
    rows = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET)
    answer, seen = _given(df, scale=2.0)
    given = rank_features(df, model="ctr", feature_names=NAMES, onset=ONSET, window_drift=answer)
    assert seen == [(given.reference, given.anomaly)]
    assert rows.drift_source == "rows" and given.drift_source == "the test's sketches"
    assert given.drift_error == {"ks": 0.01, "psi": 0.02, "wasserstein": 0.0}
    a, b = (r.table.sort("feature") for r in (rows, given))
    np.testing.assert_allclose(b["drift_psi"], 2.0 * a["drift_psi"], rtol=1e-12)
    np.testing.assert_allclose(b["drift_ks"], a["drift_ks"], rtol=1e-12)
    # the null rates come from the answer too (the rows have no nulls)
    assert b.filter(pl.col("feature") == NAMES[0])["null_rate_after"].item() == 0.5
    assert a["null_rate_after"].max() == 0.0
    # the correlation series is still the rows'
    assert given.series.equals(rows.series)
    assert given.top(1) == [NAMES[SHIFTED]]


def test_a_bad_window_drift_answer_is_refused() -> None:
    df, _ = _serving("shift", n=4_000)
    with pytest.raises(ValueError, match="lacks columns"):
        rank_features(
            df,
            model="ctr",
            feature_names=NAMES,
            onset=ONSET,
            window_drift=lambda r, a: pl.DataFrame({"feature": NAMES, "psi": [0.0] * NF}),
        )
    with pytest.raises(ValueError, match="not a polars DataFrame"):
        rank_features(
            df, model="ctr", feature_names=NAMES, onset=ONSET, window_drift=lambda r, a: {}
        )

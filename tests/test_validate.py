"""Snapshot validation: a corrupted snapshot fails, a slightly drifted one passes; CLI."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hawknb.cli import main
from hawknb.kernels.activations import SnapshotRunError
from hawknb.kernels.validate import Thresholds, predict, psi, validate_snapshot
from hawknb.workspace import contract as c
from hawknb.workspace.errors import WorkspaceError

N_FEAT = 6
NAMES = [f"f{i}" for i in range(N_FEAT)]
DYN = ({0: torch.export.Dim("batch")},)


class Net(nn.Module):
    def __init__(self, prob: bool = True) -> None:
        super().__init__()
        self.prob = prob
        self.net = nn.Sequential(
            nn.Linear(N_FEAT, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.sigmoid(out) if self.prob else out


def _base(prob: bool = True) -> Net:
    torch.manual_seed(0)
    m = Net(prob)
    with torch.no_grad():  # a model with real signal: logits spread over a few units
        m.net[0].weight.mul_(3.0)
        m.net[4].weight.mul_(6.0)
        m.net[4].bias.fill_(-1.0)
    return m


def _variant(m: Net, *, noise: float = 0.0, seed: int = 1, edit=None) -> Net:
    g = torch.Generator().manual_seed(seed)
    out = Net(m.prob)
    sd = {
        k: v + noise * v.abs().mean() * torch.randn(v.shape, generator=g)
        for k, v in m.state_dict().items()
    }
    if edit:
        edit(sd)
    out.load_state_dict(sd)
    return out


def _ep(m: nn.Module) -> torch.export.ExportedProgram:
    return torch.export.export(m, (torch.randn(4, N_FEAT),), dynamic_shapes=DYN)


def _data(m: Net, n: int = 8000, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEAT)).astype(np.float32)
    with torch.no_grad():
        p = m(torch.from_numpy(x)).squeeze(-1).numpy().astype(np.float64)
    y = (rng.random(n) < p).astype(np.float64) if m.prob else p + rng.normal(0, 0.1, n)
    return pl.DataFrame({name: x[:, i] for i, name in enumerate(NAMES)}), y


def _scale(layer: str, factor: float):
    def edit(sd: dict[str, torch.Tensor]) -> None:
        sd[f"{layer}.weight"] = sd[f"{layer}.weight"] * factor

    return edit


def _nan(sd: dict[str, torch.Tensor]) -> None:
    sd["net.0.weight"][3, 1] = float("nan")


def test_slightly_drifted_snapshot_passes() -> None:
    base = _base()
    feats, y = _data(base)
    rep = validate_snapshot(
        _ep(_variant(base, noise=0.01)), _ep(base), feats, y, feature_names=NAMES
    )
    assert rep.passed, rep.reasons
    assert rep.reasons == ()
    assert rep.candidate.is_probability
    assert rep.candidate.ne is not None and 0.5 < rep.candidate.ne < 1.0
    assert rep.loss_ratio is not None and abs(rep.loss_ratio - 1) < 0.02
    assert rep.psi < 0.1
    assert rep.candidate.calibration == pytest.approx(1.0, abs=0.1)
    assert rep.n_rows == 8000
    assert rep.frame().height == 11


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (_scale("net.2", 4.0), "normalized entropy"),
        (_scale("net.4", -1.0), "normalized entropy"),
        (_nan, "NaN/inf"),
    ],
)
def test_corrupted_snapshot_fails(edit, expect: str) -> None:
    base = _base()
    feats, y = _data(base)
    rep = validate_snapshot(
        _ep(_variant(base, noise=0.01, edit=edit)), _ep(base), feats, y, feature_names=NAMES
    )
    assert not rep.passed
    assert any(expect in r for r in rep.reasons), rep.reasons


def test_nan_snapshot_reports_nonfinite_rate() -> None:
    base = _base()
    feats, y = _data(base, n=2000)
    rep = validate_snapshot(
        _ep(_variant(base, edit=_nan)), _ep(base), feats, y, feature_names=NAMES
    )
    assert rep.candidate.nonfinite_rate == 1.0
    assert rep.baseline.nonfinite_rate == 0.0
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)  # NaN became null
    assert d["passed"] is False


def test_miscalibrated_snapshot_fails_on_calibration() -> None:
    base = _base()
    feats, y = _data(base)

    def shift(sd: dict[str, torch.Tensor]) -> None:
        sd["net.4.bias"] = sd["net.4.bias"] + 0.6

    rep = validate_snapshot(
        _ep(_variant(base, edit=shift)), _ep(base), feats, y, feature_names=NAMES
    )
    assert not rep.passed
    assert any("calibration" in r for r in rep.reasons)
    assert rep.candidate.calibration > 1.2


def test_unbounded_predictions_use_mse_not_log_loss() -> None:
    base = _base(prob=False)
    feats, y = _data(base)
    good = validate_snapshot(
        _ep(_variant(base, noise=0.005)), _ep(base), feats, y, feature_names=NAMES
    )
    assert good.candidate.log_loss is None and good.candidate.ne is None
    assert good.candidate.mse is not None
    assert not good.candidate.is_probability
    bad = validate_snapshot(
        _ep(_variant(base, edit=_scale("net.2", 3.0))), _ep(base), feats, y, feature_names=NAMES
    )
    assert good.passed, good.reasons
    assert not bad.passed
    assert any("squared error" in r for r in bad.reasons)


def test_without_labels_only_distribution_checks() -> None:
    base = _base()
    feats, _ = _data(base, n=3000)
    rep = validate_snapshot(
        _ep(_variant(base, noise=0.01)), _ep(base), feats, None, feature_names=NAMES
    )
    assert rep.passed
    assert rep.candidate.n_labeled == 0 and rep.candidate.ne is None
    assert any("no labels" in w for w in rep.warnings)
    rep = validate_snapshot(
        _ep(_variant(base, edit=_scale("net.2", 4.0))), _ep(base), feats, None, feature_names=NAMES
    )
    assert not rep.passed
    assert any("PSI" in r or "mean prediction" in r for r in rep.reasons)


def test_null_labels_are_skipped() -> None:
    base = _base()
    feats, y = _data(base, n=2000)
    y = y.copy()
    y[::2] = np.nan
    rep = validate_snapshot(_ep(base), _ep(base), feats, pl.Series(y), feature_names=NAMES)
    assert rep.candidate.n_labeled == 1000
    assert rep.passed and rep.loss_ratio == pytest.approx(1.0)


def test_bad_inputs() -> None:
    base = _ep(_base())
    feats, y = _data(_base(), n=50)
    with pytest.raises(WorkspaceError, match="labels"):
        validate_snapshot(base, base, feats, y[:10], feature_names=NAMES)
    with pytest.raises(WorkspaceError, match=r"expected 6 features.*found 5"):
        validate_snapshot(base, base, feats.to_numpy()[:, :5], None, feature_names=None)
    with pytest.raises(WorkspaceError, match="empty batch"):
        validate_snapshot(base, base, feats.head(0), None, feature_names=NAMES)
    broken = _ep(_base())
    broken.state_dict["net.2.weight"] = torch.zeros(8, 3)
    with pytest.raises(SnapshotRunError, match="linear_1"):
        validate_snapshot(broken, base, feats, y, feature_names=NAMES)


def test_predict_matches_module() -> None:
    m = _base()
    x = np.random.default_rng(0).normal(size=(100, N_FEAT)).astype(np.float32)
    got = predict(_ep(m), x, batch_rows=7)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).squeeze(-1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), shift=st.floats(0, 3))
def test_psi_is_zero_on_itself_and_grows_with_shift(seed: int, shift: float) -> None:
    a = np.random.default_rng(seed).normal(size=2000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    p_small, p_big = psi(a, a + shift / 2), psi(a, a + shift)
    assert p_small >= 0 and p_big >= p_small - 1e-9
    assert math.isnan(psi(a, np.array([np.nan])))


def test_thresholds_are_configurable() -> None:
    base = _base()
    feats, y = _data(base, n=3000)
    cand = _ep(_variant(base, noise=0.05))
    strict = Thresholds(max_loss_increase=-1.0)  # anything fails
    assert not validate_snapshot(
        cand, _ep(base), feats, y, feature_names=NAMES, thresholds=strict
    ).passed


# -- CLI ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    base = _base()
    snaps = {
        "s1": _variant(base, noise=0.01, seed=5),
        "s2": base,
        "s3": _variant(base, noise=0.01, seed=7, edit=_scale("net.2", 4.0)),
        "s4": _variant(base, noise=0.01, seed=8),
    }
    mdir = root / c.SNAPSHOTS_DIR / "ctr"
    mdir.mkdir(parents=True)
    (mdir / c.FEATURES_FILE).write_text(json.dumps(NAMES))
    for name, m in snaps.items():
        torch.export.save(_ep(m), str(mdir / f"{name}{c.PROGRAM_SUFFIX}"))
    feats, y = _data(base, n=3000)
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    ts = [t0 + dt.timedelta(minutes=i) for i in range(feats.height)]
    serving = feats.with_columns(
        pl.Series(c.TS, ts),
        pl.lit("ctr").alias(c.MODEL),
        pl.lit("prod").alias(c.EXPERIMENT),
        pl.lit("s2").alias(c.SNAPSHOT),
        pl.lit(0.5).alias(c.PREDICTION),
        pl.Series(c.LABEL, y),
    )
    serving.write_parquet(root / "serving.parquet")
    pl.DataFrame({c.TS: ts[:3], c.METRIC: ["ctr"] * 3, c.VALUE: [0.1, 0.1, 0.1]}).write_parquet(
        root / "metrics.parquet"
    )
    pub = [t0 - dt.timedelta(days=d) for d in (4, 3, 2, 1)]
    pl.DataFrame(
        {
            c.MODEL: ["ctr"] * 4,
            c.SNAPSHOT: ["s1", "s2", "s3", "s4"],
            c.PUBLISHED_TS: pub,
            c.TRAIN_START: [p - dt.timedelta(days=7) for p in pub],
            c.TRAIN_END: pub,
        }
    ).write_parquet(root / "snapshots.parquet")
    return root


def test_cli_fails_corrupted_snapshot(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["validate", str(workspace), "--model", "ctr", "--snapshot", "s3"])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith("FAIL: ctr/s3 vs baseline s2")
    assert "normalized entropy" in out


def test_cli_passes_drifted_snapshot_json(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "validate",
            str(workspace),
            "--model",
            "ctr",
            "--snapshot",
            "s4",
            "--baseline",
            "s2",
            "--rows",
            "1000",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["passed"] is True
    assert doc["baseline_snapshot"] == "s2"
    assert doc["n_rows"] == 1000


def test_cli_default_baseline_is_previous_published(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["validate", str(workspace), "--model", "ctr", "--snapshot", "s2", "--json"])
    assert json.loads(capsys.readouterr().out)["baseline_snapshot"] == "s1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "ctr", "--snapshot", "nope"], "has no exported program"),
        (["--model", "ctr", "--snapshot", "s1"], "no earlier snapshot"),
        (["--model", "other", "--snapshot", "s1"], "not in the serving log"),
        (["--model", "ctr", "--snapshot", "s3", "--baseline", "zz"], "has no exported program"),
        (["--model", "ctr", "--snapshot", "s3", "--rows", "0"], "must be positive"),
    ],
)
def test_cli_errors_are_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = main(["validate", str(workspace), *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("hawknb: error:")
    assert message in err
    assert err.count("\n") == 1

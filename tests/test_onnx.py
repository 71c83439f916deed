"""ONNX snapshots (`<snapshot>.onnx`, run with onnxruntime): every predictions-only step works,
graph steps say they are not available, and a scikit-learn model goes through triage."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression

import hawknb
from hawknb.cli import main
from hawknb.kernels.activations import trace_activations
from hawknb.kernels.attribution import ablation_importance
from hawknb.kernels.graph import NotAvailableForFormat
from hawknb.kernels.validate import validate_snapshot
from hawknb.kernels.weights import compare_weights
from hawknb.workspace import Workspace, WorkspaceError
from hawknb.workspace.onnx_program import OnnxProgram

FEATURES = ["dwell_s", "ctr_7d", "price_rel", "age_days"]
MODEL = "gbm ranker"
GOOD, BAD = "2026.03.01", "2026.03.03-retrain"


def _x(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack(
        [
            rng.gamma(2.0, 20.0, n),
            rng.beta(2, 50, n),
            rng.normal(1, 0.2, n),
            rng.integers(0, 400, n),
        ]
    ).astype(np.float32)


def _truth(x: np.ndarray) -> np.ndarray:
    return 0.01 * x[:, 0] + 8.0 * x[:, 1] - 0.5 * x[:, 2] + 0.001 * x[:, 3]


def _save(model: object, x: np.ndarray, path: Path, **opts: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onx = to_onnx(model, x[:1], options={id(model): opts} if opts else None)
    path.write_bytes(onx.SerializeToString())
    return path


def _gbm(seed: int, corrupt: bool = False) -> GradientBoostingRegressor:
    """A gradient-boosted model; `corrupt` trains it on a label off by a factor (a broken join)."""
    rng = np.random.default_rng(seed)
    x = _x(rng, 1500)
    y = _truth(x) + rng.normal(0, 0.05, len(x))
    if corrupt:
        y = 4.0 * y + 2.0
    return GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=seed).fit(x, y)


# -- the program ----------------------------------------------------------------------------
def test_predictions_match_the_sklearn_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = _x(rng, 300)
    gbm = _gbm(1)
    prog = OnnxProgram(_save(gbm, x, tmp_path / "g.onnx"))
    np.testing.assert_allclose(prog.run(x), gbm.predict(x), rtol=1e-4, atol=1e-4)
    out = prog(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.shape == (300,)
    clf = LogisticRegression().fit(x, (_truth(x) > np.median(_truth(x))).astype(int))
    prog = OnnxProgram(_save(clf, x, tmp_path / "c.onnx", zipmap=False))
    np.testing.assert_allclose(prog.run(x), clf.predict_proba(x)[:, 1], atol=1e-5)


def test_ablation_importance_on_a_linear_onnx_model(tmp_path: Path) -> None:
    """For a linear model the ablation attribution of feature j on row i is exactly
    coef_j * (x_ij - baseline_j); the ONNX path must reproduce it."""
    rng = np.random.default_rng(1)
    x = _x(rng, 400)
    lin = LinearRegression().fit(x, _truth(x))
    prog = OnnxProgram(_save(lin, x, tmp_path / "lin.onnx"))
    res = ablation_importance(prog, x, feature_names=FEATURES, n_bootstrap=0)
    base = np.median(x.astype(np.float64), axis=0)
    expected = np.abs(lin.coef_ * (x - base)).mean(axis=0)
    np.testing.assert_allclose(res.importance, expected, rtol=2e-3, atol=1e-5)
    assert res.top(1) == [FEATURES[int(np.argmax(expected))]]


def test_validator_fails_a_corrupt_onnx_snapshot_and_passes_a_twin(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = _x(rng, 800)
    labels = _truth(x) + rng.normal(0, 0.05, len(x))
    good = OnnxProgram(_save(_gbm(3), x, tmp_path / "good.onnx"))
    twin = OnnxProgram(_save(_gbm(3), x, tmp_path / "twin.onnx"))
    bad = OnnxProgram(_save(_gbm(3, corrupt=True), x, tmp_path / "bad.onnx"))
    assert validate_snapshot(twin, good, x, labels, feature_names=FEATURES).passed
    report = validate_snapshot(bad, good, x, labels, feature_names=FEATURES)
    assert not report.passed
    assert any("mean squared error" in r for r in report.reasons)


def test_weights_of_a_tree_ensemble_are_not_available(tmp_path: Path) -> None:
    x = _x(np.random.default_rng(3), 50)
    gbm = OnnxProgram(_save(_gbm(4), x, tmp_path / "g.onnx"))
    with pytest.raises(NotAvailableForFormat, match="comparing weights"):
        compare_weights(gbm, [gbm])  # a tree ensemble keeps no weight tensors
    # a network's initializers are its weights: comparable across ONNX snapshots
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        mlp.fit(x, _truth(x))
    net = OnnxProgram(_save(mlp, x, tmp_path / "mlp.onnx"))
    cmp = compare_weights(net, [net, net])
    assert not cmp.suspect
    assert {"coefficient", "intercepts"} <= {t.name for t in cmp.tensors}


def test_activations_from_intermediate_outputs(tmp_path: Path) -> None:
    """A logistic network x @ w + b -> sigmoid: one onnxruntime run exposes every node's value.
    NaN in feature b is reported at the input with b as the driver; a weight scaled by 1e9 is
    reported at the MatMul that reads it, with that weight as the bad parameter."""
    from hawknb.ingest.example import _onnx_logistic
    from hawknb.kernels.activations import find_first_anomaly

    names = ["a", "b", "c"]
    x = np.random.default_rng(7).random((200, 3)).astype(np.float32)
    net = OnnxProgram(_onnx_logistic((1.0, 2.0, 3.0), 0.5, tmp_path / "ok.onnx"))
    trace = trace_activations(net, x, feature_names=names)
    assert [(n.name, n.kind, n.target) for n in trace.nodes] == [
        ("x", "input", "input"),
        ("w", "parameter", "parameter"),
        ("b", "parameter", "parameter"),
        ("xw", "op", "MatMul"),
        ("logit", "op", "Add"),
        ("pclick", "op", "Sigmoid"),
    ]
    assert trace.outputs == ("pclick",)
    expected = 1 / (1 + np.exp(-(x @ np.array([1.0, 2.0, 3.0]) + 0.5)))
    assert trace.node("pclick").stats.mean == pytest.approx(expected.mean(), rel=1e-5)
    assert find_first_anomaly(trace) is None
    xn = x.copy()
    xn[:20, 1] = np.nan
    fault = find_first_anomaly(trace_activations(net, xn, feature_names=names))
    assert (fault.node, fault.kind, fault.bad_rows) == ("x", "nan", 20)
    assert [d.feature for d in fault.driving_features] == ["b"]
    blown = OnnxProgram(_onnx_logistic((1e9, 2.0, 3.0), 0.5, tmp_path / "blown.onnx"))
    fault = find_first_anomaly(trace_activations(blown, x, feature_names=names))
    assert (fault.node, fault.target, fault.kind) == ("xw", "MatMul", "extreme")
    assert fault.bad_parameters == ("w",)


def test_workspace_lists_and_loads_onnx_snapshots(tmp_path: Path) -> None:
    ws = _bad_rollout_workspace(tmp_path / "ws")
    w = Workspace.open(ws)
    assert w.programs(MODEL) == [(MODEL, GOOD), (MODEL, BAD)]
    assert isinstance(w.load_program(MODEL, GOOD), OnnxProgram)
    (ws / "snapshots" / MODEL / f"{BAD}.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(WorkspaceError, match=r"\.onnx: cannot be loaded as an ONNX model") as info:
        Workspace.open(ws).load_program(MODEL, BAD)
    assert "\n" not in str(info.value)


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    x = _x(np.random.default_rng(5), 20)
    path = _save(_gbm(5), x, tmp_path / "g.onnx")
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("onnxruntime"):
            raise ImportError("No module named 'onnxruntime'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(WorkspaceError, match=r"pip install 'hawknb\[onnx\]'"):
        OnnxProgram(path)


# -- end to end: a scikit-learn model through triage -------------------------------------------
def _bad_rollout_workspace(ws: Path, seed: int = 11) -> Path:
    """Three days hourly, two experiments. Both serve GOOD (a GBM) until BAD (the same model
    retrained on a broken label join) takes the `exp` arm at day 2 12:00; revenue drops with its
    traffic share."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-01", periods=72, freq="h", tz="UTC")
    onset = ts[36]
    folder = ws / "snapshots" / MODEL
    x0 = _x(rng, 10)
    progs = {
        GOOD: OnnxProgram(_save(_gbm(7), x0, folder / f"{GOOD}.onnx")),
        BAD: OnnxProgram(_save(_gbm(7, corrupt=True), x0, folder / f"{BAD}.onnx")),
    }
    (folder / "features.json").write_text(json.dumps(FEATURES))
    frames, bad_share = [], np.zeros(len(ts))
    for i, t in enumerate(ts):
        for exp in ("ctl", "exp"):
            x = _x(rng, 12)
            snap = BAD if exp == "exp" and t >= onset else GOOD
            bad_share[i] += 0.5 * (snap == BAD)
            frames.append(
                pd.DataFrame(
                    {
                        "ts": t,
                        "model": MODEL,
                        "experiment": exp,
                        "snapshot": snap,
                        "prediction": progs[snap].run(x),
                        "label": _truth(x) + rng.normal(0, 0.05, len(x)),
                        **{f: x[:, j] for j, f in enumerate(FEATURES)},
                    }
                )
            )
    pd.concat(frames, ignore_index=True).to_parquet(ws / "serving.parquet", index=False)
    revenue = 5000 + rng.normal(0, 30, len(ts)) - 2000 * bad_share
    pd.DataFrame({"ts": ts, "metric": "revenue", "value": revenue}).to_parquet(
        ws / "metrics.parquet", index=False
    )
    pd.DataFrame(
        {
            "ts": [ts[0], ts[0], onset],
            "model": MODEL,
            "experiment": ["ctl", "exp", "exp"],
            "snapshot": [GOOD, GOOD, BAD],
            "traffic": 1.0,
        }
    ).to_parquet(ws / "rollouts.parquet", index=False)
    return ws


@pytest.fixture(scope="module")
def bad_rollout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bad_rollout_workspace(tmp_path_factory.mktemp("onnx") / "ws")


def test_sklearn_onnx_snapshot_goes_through_triage(bad_rollout: Path) -> None:
    inv = hawknb.triage(bad_rollout, progress=False)
    v = inv.verdict
    assert v.cause == "bad_snapshot", v
    assert (v.model, v.snapshot) == (MODEL, BAD)
    steps = {f.step: f for f in inv.findings}
    assert steps["weights"].status == "skipped", steps["weights"]  # trees have no weights
    assert "not available for onnx snapshots" in steps["weights"].decision
    # activations come from the tree ensemble's intermediate outputs: traced, nothing blew up
    assert steps["activations"].status == "done", steps["activations"]
    assert steps["activations"].decision.startswith("no NaN, inf, extreme")
    assert not any(f.status == "failed" for f in inv.findings)


def test_validate_cli_on_onnx_snapshots(bad_rollout: Path, capsys) -> None:
    code = main(
        [
            "validate",
            str(bad_rollout),
            "--model",
            MODEL,
            "--snapshot",
            BAD,
            "--baseline",
            GOOD,
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["passed"] is False
    assert (
        main(
            ["validate", str(bad_rollout), "--model", MODEL, "--snapshot", GOOD, "--baseline", GOOD]
        )
        == 0
    )


def test_feature_ablation_in_triage_uses_the_onnx_snapshot(tmp_path: Path) -> None:
    """One GBM snapshot serves throughout; from day 2 12:00 an upstream bug multiplies
    `ctr_7d` by 6. The feature step ranks it first with ablation run through onnxruntime."""
    rng = np.random.default_rng(5)
    ws = tmp_path / "ws"
    ts = pd.date_range("2026-03-01", periods=72, freq="h", tz="UTC")
    folder = ws / "snapshots" / MODEL
    prog = OnnxProgram(_save(_gbm(9), _x(rng, 5), folder / f"{GOOD}.onnx"))
    (folder / "features.json").write_text(json.dumps(FEATURES))
    frames = []
    for t in ts:
        x = _x(rng, 24)
        if t >= ts[36]:
            x[:, 1] *= 6.0
        pred = prog.run(x)
        frames.append(
            pd.DataFrame(
                {
                    "ts": t,
                    "model": MODEL,
                    "experiment": "all",
                    "snapshot": GOOD,
                    "prediction": pred,
                    **{f: x[:, j] for j, f in enumerate(FEATURES)},
                }
            )
        )
    ws.mkdir(exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(ws / "serving.parquet", index=False)
    revenue = 5000 + rng.normal(0, 30, len(ts)) - 1000 * (ts >= ts[36])
    pd.DataFrame({"ts": ts, "metric": "revenue", "value": revenue}).to_parquet(
        ws / "metrics.parquet", index=False
    )
    inv = hawknb.triage(ws, progress=False)
    feats = next(f for f in inv.findings if f.step == "features")
    assert feats.evidence["method"] == "distribution + ablation", feats.evidence
    assert inv.verdict.model == MODEL
    assert inv.verdict.features[:1] == ["ctr_7d"], inv.verdict


def test_external_data_is_refused(tmp_path: Path) -> None:
    """A snapshot whose tensors live in other files (possibly outside the workspace) is
    refused before onnxruntime would read them."""
    import onnx

    from hawknb.ingest.example import _onnx_logistic

    model = onnx.load(str(_onnx_logistic((1.0, 2.0, 3.0, 4.0), 0.0, tmp_path / "own.onnx")))
    for init in model.graph.initializer:  # raw bytes: what onnx moves to external files
        init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init), init.name))
    path = tmp_path / "ext.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    with pytest.raises(WorkspaceError, match=r"ext\.onnx: keeps tensors in external files"):
        OnnxProgram(path)
    assert OnnxProgram(tmp_path / "own.onnx").run(np.ones((1, 4))).shape == (1,)


def test_an_oversize_or_non_regular_onnx_snapshot_is_refused(tmp_path: Path, monkeypatch) -> None:
    """ONNX files are read through the workspace's bounded reader: one byte over
    HAWKNB_MAX_ONNX_BYTES is refused with one line naming it; a pipe is never opened."""
    import os

    path = _save(_gbm(5), _x(np.random.default_rng(5), 20), tmp_path / "g.onnx")
    size = path.stat().st_size
    monkeypatch.setenv("HAWKNB_MAX_ONNX_BYTES", str(size - 1))
    with pytest.raises(WorkspaceError) as info:
        OnnxProgram(path)
    msg = str(info.value)
    assert "\n" not in msg and f"g.onnx: is larger than the {size - 1}-byte limit" in msg
    assert "HAWKNB_MAX_ONNX_BYTES=<bytes>" in msg
    monkeypatch.setenv("HAWKNB_MAX_ONNX_BYTES", str(size))
    assert OnnxProgram(path).run(_x(np.random.default_rng(6), 3)).shape == (3,)
    pipe = tmp_path / "p.onnx"
    os.mkfifo(pipe)
    with pytest.raises(WorkspaceError, match=r"p\.onnx: is a named pipe"):
        OnnxProgram(pipe)


def test_validate_cli_names_the_onnx_format_and_the_limit(
    bad_rollout: Path, capsys, monkeypatch
) -> None:
    code = main(["validate", str(bad_rollout), "--model", MODEL, "--snapshot", "2026.04.01"])
    err = capsys.readouterr().err
    assert code != 0 and f"snapshots/{MODEL}/2026.04.01.onnx" in err and ".pt2" not in err
    monkeypatch.setenv("HAWKNB_MAX_ONNX_BYTES", "64")
    code = main(["validate", str(bad_rollout), "--model", MODEL, "--snapshot", BAD])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    assert f"{BAD}.onnx: is larger than the 64-byte limit" in err and "HAWKNB_MAX_ONNX_BYTES" in err

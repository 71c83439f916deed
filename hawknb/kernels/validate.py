"""Pre-rollout snapshot validation: candidate vs its predecessor on the same held-out rows.

The cheapest root cause to fix is the one that never reaches production. Before (or right
after) a snapshot serves, run it and its predecessor on the same recent labelled rows and
compare: loss (log loss and normalized entropy for probabilities, MSE otherwise), calibration
(sum of predictions over sum of labels), the prediction distribution (mean, quantiles, PSI)
and the share of NaN/inf predictions. Each check fails only when the candidate is both bad in
absolute terms and worse than the baseline, so a slightly drifted but healthy snapshot passes.
Thresholds are in :class:`Thresholds` and documented in ``docs/snapshot-diagnosis.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

from .activations import _as_batch, _input_spec, trace_activations
from .drift import psi  # the one PSI of the code base (reference-quantile bins)
from .graph import program_graph

__all__ = [
    "PredictionSummary",
    "Thresholds",
    "ValidationReport",
    "predict",
    "validate_snapshot",
]

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Thresholds:
    """When a candidate fails. Relative numbers compare the candidate with the baseline."""

    #: fail when more than this share of predictions is NaN/inf (and more than the baseline's)
    max_nonfinite_rate: float = 0.001
    #: fail when NE (or MSE for unbounded predictions) is this much worse, relative
    max_loss_increase: float = 0.02
    #: fail when |calibration - 1| exceeds this and is worse than the baseline's by `..._margin`
    max_calibration_error: float = 0.10
    calibration_margin: float = 0.05
    #: fail when the prediction distribution moved this much (PSI); warn above `warn_psi`
    max_psi: float = 0.25
    warn_psi: float = 0.10
    #: without labels, a relative mean shift above this fails (with labels it only warns)
    max_mean_shift: float = 0.25


@dataclass(frozen=True)
class PredictionSummary:
    n: int
    nonfinite_rate: float
    mean: float
    quantiles: dict[str, float]
    #: all finite predictions lie in [0, 1]
    is_probability: bool
    n_labeled: int
    log_loss: float | None
    ne: float | None
    mse: float | None
    calibration: float | None


@dataclass(frozen=True)
class ValidationReport:
    passed: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    candidate: PredictionSummary
    baseline: PredictionSummary
    psi: float
    mean_shift: float
    #: candidate - baseline, per quantile
    quantile_shift: dict[str, float]
    #: candidate NE / baseline NE (or MSE ratio for unbounded predictions)
    loss_ratio: float | None
    n_rows: int
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN/inf become None)."""
        return _jsonable(asdict(self))

    def frame(self) -> pl.DataFrame:
        """Candidate vs baseline, one row per measure, for display."""
        measures = ["nonfinite_rate", "mean", "log_loss", "ne", "mse", "calibration"]
        measures += [f"q{k}" for k in self.candidate.quantiles]

        def get(s: PredictionSummary, m: str) -> float | None:
            if m.startswith("q") and m[1:] in s.quantiles:
                return s.quantiles[m[1:]]
            return getattr(s, m)

        return pl.DataFrame(
            {
                "measure": measures,
                "candidate": [get(self.candidate, m) for m in measures],
                "baseline": [get(self.baseline, m) for m in measures],
            },
            schema={"measure": pl.String, "candidate": pl.Float64, "baseline": pl.Float64},
        )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj


def predict(program: Any, x: np.ndarray, *, batch_rows: int = 65_536) -> np.ndarray:
    """Run an exported program on a float32 batch and return float64 predictions [rows].

    Uses ``ep.module()`` (the fast path); if it raises, the batch is re-run node by node so
    the error names the failing node (:class:`SnapshotRunError`).
    """
    if isinstance(getattr(program, "program_format", None), str):  # e.g. an OnnxProgram
        x = _as_batch(x, None, getattr(program, "n_features", None))
        return np.concatenate(
            [program.run(x[i : i + batch_rows]) for i in range(0, len(x), batch_rows)]
        )
    pg = program_graph(program)
    _, width, _ = _input_spec(pg)
    x = _as_batch(x, None, width)
    outs = []
    try:
        mod = program.module()
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_rows):
                out = mod(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_rows])))
                if isinstance(out, (tuple, list)):
                    out = out[0]
                outs.append(out.detach().to(torch.float64).reshape(out.shape[0], -1))
    except Exception:
        trace_activations(program, x)  # raises SnapshotRunError naming the node
        raise
    y = torch.cat(outs).numpy()
    if y.shape[1] != 1:
        from ..workspace.errors import WorkspaceError

        raise WorkspaceError(
            "snapshot program",
            "returns more than one value per row",
            expected="output [batch] or [batch, 1] in prediction units",
            found=f"[batch, {y.shape[1]}]",
        )
    return y[:, 0]


def _summary(pred: np.ndarray, labels: np.ndarray | None) -> PredictionSummary:
    n = pred.size
    fin = np.isfinite(pred)
    p = pred[fin]
    qs = (
        {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(p, QUANTILES), strict=True)}
        if p.size
        else {f"{q:g}": math.nan for q in QUANTILES}
    )
    is_prob = bool(p.size) and bool(np.all((p >= 0) & (p <= 1)))
    log_loss = ne = mse = cal = None
    n_lab = 0
    if labels is not None:
        ok = fin & np.isfinite(labels)
        n_lab = int(ok.sum())
        if n_lab:
            yp, yl = pred[ok], labels[ok]
            mse = float(np.mean((yp - yl) ** 2))
            if abs(float(yl.sum())) > 1e-12:
                cal = float(yp.sum() / yl.sum())
            if is_prob and np.all((yl >= 0) & (yl <= 1)):
                pc = np.clip(yp, 1e-7, 1 - 1e-7)
                log_loss = float(-np.mean(yl * np.log(pc) + (1 - yl) * np.log(1 - pc)))
                base = float(yl.mean())
                if 0 < base < 1:
                    h = -(base * math.log(base) + (1 - base) * math.log(1 - base))
                    ne = log_loss / h
    return PredictionSummary(
        n=n,
        nonfinite_rate=float(1 - fin.mean()) if n else math.nan,
        mean=float(p.mean()) if p.size else math.nan,
        quantiles=qs,
        is_probability=is_prob,
        n_labeled=n_lab,
        log_loss=log_loss,
        ne=ne,
        mse=mse,
        calibration=cal,
    )


def _labels(labels: Any, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, pl.Series):
        arr = labels.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    elif type(labels).__module__.startswith("pandas"):
        arr = np.asarray(labels.to_numpy(dtype=float, na_value=np.nan))
    else:
        arr = np.asarray(labels, dtype=float)
    arr = arr.reshape(-1)
    if arr.size != n:
        from ..workspace.errors import WorkspaceError

        raise WorkspaceError(
            "labels",
            "do not match the feature rows",
            expected=f"{n} labels",
            found=f"{arr.size}",
            fix="pass one label (or null) per row of features",
        )
    if not np.isfinite(arr).any():
        return None
    return arr


def validate_snapshot(
    candidate_program: Any,
    baseline_program: Any,
    features: Any,
    labels: Any | None,
    *,
    feature_names: Sequence[str] | None,
    thresholds: Thresholds | None = None,
) -> ValidationReport:
    """Evaluate a candidate snapshot against its predecessor on the same held-out rows.

    ``features`` is a frame (columns picked by ``feature_names``, in that order) or a
    [rows, features] array; ``labels`` one value per row (nulls allowed) or None. Passes unless
    the candidate is clearly worse; see :class:`Thresholds`.
    """
    th = thresholds or Thresholds()
    x = _as_batch(features, feature_names, None)
    y = _labels(labels, x.shape[0])
    pc = predict(candidate_program, x)
    pb = predict(baseline_program, x)
    cand, base = _summary(pc, y), _summary(pb, y)

    reasons: list[str] = []
    warns: list[str] = []
    loss_ratio = _quality_checks(cand, base, th, reasons)
    shift_psi = psi(pb, pc)
    if math.isfinite(shift_psi) and shift_psi > th.max_psi:
        reasons.append(f"prediction distribution shifted: PSI {shift_psi:.3f} > {th.max_psi}")
    elif math.isfinite(shift_psi) and shift_psi > th.warn_psi:
        warns.append(f"prediction distribution moved: PSI {shift_psi:.3f}")
    mean_shift = (
        (cand.mean - base.mean) / abs(base.mean)
        if math.isfinite(cand.mean) and math.isfinite(base.mean) and base.mean != 0
        else math.nan
    )
    if math.isfinite(mean_shift) and abs(mean_shift) > th.max_mean_shift:
        msg = f"mean prediction {cand.mean:.4g} vs baseline {base.mean:.4g} ({mean_shift:+.0%})"
        (warns if y is not None else reasons).append(msg)
    if y is None:
        warns.append("no labels: loss and calibration were not checked")
    elif cand.is_probability != base.is_probability:
        warns.append("candidate and baseline disagree on whether predictions are probabilities")
    qshift = {
        k: cand.quantiles[k] - base.quantiles[k] for k in cand.quantiles if k in base.quantiles
    }
    return ValidationReport(
        passed=not reasons,
        reasons=tuple(reasons),
        warnings=tuple(warns),
        candidate=cand,
        baseline=base,
        psi=shift_psi,
        mean_shift=mean_shift,
        quantile_shift=qshift,
        loss_ratio=loss_ratio,
        n_rows=int(x.shape[0]),
        thresholds=th,
    )


def _quality_checks(
    cand: PredictionSummary, base: PredictionSummary, th: Thresholds, reasons: list[str]
) -> float | None:
    """Non-finite predictions, loss (NE for probabilities, else MSE) and calibration against
    the baseline; appends a reason per failed check and returns the loss ratio."""
    if cand.nonfinite_rate > th.max_nonfinite_rate and cand.nonfinite_rate > base.nonfinite_rate:
        reasons.append(
            f"{cand.nonfinite_rate:.2%} of candidate predictions are NaN/inf "
            f"(baseline {base.nonfinite_rate:.2%}, limit {th.max_nonfinite_rate:.2%})"
        )
    loss_ratio = None
    # NE where both sides have it (probabilities), else MSE
    for label, c_loss, b_loss, spec in (
        ("normalized entropy", cand.ne, base.ne, ".4f"),
        ("mean squared error", cand.mse, base.mse, ".4g"),
    ):
        if c_loss is None or b_loss is None or not b_loss > 0:
            continue
        loss_ratio = c_loss / b_loss
        if loss_ratio > 1 + th.max_loss_increase:
            reasons.append(
                f"{label} {c_loss:{spec}} vs baseline {b_loss:{spec}} "
                f"({loss_ratio - 1:+.1%}, limit +{th.max_loss_increase:.0%})"
            )
        break
    if cand.calibration is not None:
        err_c = abs(cand.calibration - 1)
        err_b = abs(base.calibration - 1) if base.calibration is not None else 0.0
        if err_c > th.max_calibration_error and err_c > err_b + th.calibration_margin:
            reasons.append(
                f"calibration (sum pred / sum label) {cand.calibration:.3f} vs baseline "
                f"{base.calibration if base.calibration is not None else float('nan'):.3f}"
            )
    return loss_ratio

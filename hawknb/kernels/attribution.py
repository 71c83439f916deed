"""Feature-ablation importance of a model snapshot, and how it shifts.

Following "Root Causing Prediction Anomalies Using Explainable AI" (Meta, arXiv 2403.02439):
a feature's per-example importance is how much the prediction changes when the feature is
replaced by a *baseline* -- the control window's per-feature median (or mean), not zero, because
zero is often an impossible value for a production feature and would measure the model's
behaviour off its input manifold. Per-example attributions are aggregated as mean |attr| over a
few thousand sampled rows, for a control window and an anomaly window (or for two snapshots on
the same rows), and features are ranked by the *shift* of their importance.

Two extra quantities come for free from the same attributions:

* the signed mean attribution, whose change between windows estimates how much of the mean
  prediction shift each feature carries (exact for a linear model);
* a bootstrap over sampled rows, giving the top-k stability of the ranking (reported in every
  result, and used to grow the sample until the ranking stops moving).

Works on a ``torch.export`` ``ExportedProgram`` (``ep.module()``; programs exported with a
static batch size are fed in padded chunks of that size) or on any ``nn.Module`` / callable
that maps float32 ``[batch, n_features]`` to ``[batch]`` or ``[batch, 1]``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import torch

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
BaselineSpec = Literal["median", "mean"] | ArrayLike

DEFAULT_BOOTSTRAP = 200
#: the bootstrap resamples at most this many blocks of consecutive rows: for independent rows
#: (a random sample) the resampled means have the row bootstrap's variance, at a fraction of
#: its [resamples x rows] weight matrix and matmul; neighbouring rows that are alike (a
#: time-ordered window) widen it, which is the honest direction
BOOT_BLOCKS = 1024


# -- the model adapter ------------------------------------------------------------------------


def _static_batch(program: Any) -> int | None:
    """The batch size an ExportedProgram was traced with, if it was not exported dynamic."""
    try:
        names = set(program.graph_signature.user_inputs)
        for node in program.graph.nodes:
            if node.op == "placeholder" and node.name in names:
                dim0 = node.meta["val"].shape[0]
                return int(dim0) if isinstance(dim0, int) else None
    except (AttributeError, KeyError, IndexError):
        return None
    return None


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` runs anything besides its ``forward``: its own forward
    (pre-)hooks or the process-wide ones (``register_module_forward_hook``)."""
    from torch.nn.modules import module as mod

    own = module._forward_hooks or module._forward_pre_hooks
    glob = getattr(mod, "_global_forward_hooks", {}) or getattr(
        mod, "_global_forward_pre_hooks", {}
    )
    return bool(own or glob)


@dataclass(frozen=True)
class _LinearHead:
    """A model that is ``rest(first(x))`` with ``first`` an ``nn.Linear`` on the whole feature
    vector. Ablating feature j to ``b_j`` then moves the first layer's output by the rank-1
    term ``(b_j - x[:, j]) * W[:, j]``: the ablated first layer is one fused multiply-add on
    the unablated one, and only ``rest`` runs per ablated feature (no input copy, no
    first-layer matmul)."""

    weight: torch.Tensor  # [hidden, f], as nn.Linear stores it
    weight_t: torch.Tensor  # [f, hidden] contiguous: row j is what ablating feature j scales
    weight_max: torch.Tensor  # [f] max_i |W[i, j]|: bounds feature j's update over the units
    bias: torch.Tensor | None
    rest: _Forward  # the layers after the first, on [rows, hidden]


def _linear_head(model: Any) -> _LinearHead | None:
    """The model's first ``nn.Linear`` and the rest of it, when that split is verifiably the
    model's own computation: an exact ``nn.Sequential`` (no subclass: its ``forward`` could
    differ) whose first module is an exact float32 CPU ``nn.Linear`` and with no forward hooks
    on either. Anything else (ExportedPrograms, custom modules, callables) returns None and
    takes the plain path."""
    if type(model) is not torch.nn.Sequential or len(model) == 0:
        return None
    first = model[0]
    if type(first) is not torch.nn.Linear or _has_hooks(model) or _has_hooks(first):
        return None
    w, bias = first.weight.detach(), first.bias
    if w.dtype != torch.float32 or w.device.type != "cpu" or w.ndim != 2:
        return None
    if bias is not None:
        bias = bias.detach()
        if bias.dtype != torch.float32 or bias.device.type != "cpu":
            return None
    rest = _Forward(model[1:] if len(model) > 1 else torch.nn.Identity())
    return _LinearHead(w, w.T.contiguous(), w.abs().amax(dim=0), bias, rest)


def _program_tensors(program: Any) -> dict[str, torch.Tensor] | None:
    """The ExportedProgram's lifted tensors (parameters, buffers, constants) by placeholder
    name, or None when it takes anything else besides one user input (custom objects,
    tokens) or returns anything besides one output (mutated buffers)."""
    from torch.export.graph_signature import InputKind, OutputKind

    sig = program.graph_signature
    if len(sig.user_inputs) != 1 or [o.kind for o in sig.output_specs] != [OutputKind.USER_OUTPUT]:
        return None
    out: dict[str, torch.Tensor] = {}
    for spec in sig.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            continue
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = program.state_dict.get(spec.target)
            if value is None:  # a non-persistent buffer
                value = program.constants.get(spec.target)
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            value = program.constants.get(spec.target)
        else:
            return None
        if not isinstance(value, torch.Tensor):
            return None
        out[spec.arg.name] = value.detach()
    return out


def _exported_linear_head(program: Any, module: Callable[..., Any]) -> _LinearHead | None:
    """The split of :func:`_linear_head` for a dynamic-batch ExportedProgram whose input's
    only use is ``aten.linear(x, W, b)`` with ``W``, ``b`` lifted tensors: ``rest`` is the
    program's graph with that node turned into the input. Checked on a few random rows
    against the program's ``module``; any doubt returns None (the plain path)."""
    tensors = _program_tensors(program)
    if tensors is None:
        return None
    graph = program.graph
    (x_name,) = program.graph_signature.user_inputs
    x = next((n for n in graph.nodes if n.op == "placeholder" and n.name == x_name), None)
    if x is None or len(x.users) != 1:
        return None
    (lin,) = x.users
    args = list(lin.args)
    if lin.target != torch.ops.aten.linear.default or lin.kwargs or not 2 <= len(args) <= 3:
        return None
    if args[0] is not x or any(getattr(a, "name", None) not in tensors for a in args[1:]):
        return None
    w = tensors[args[1].name]
    bias = tensors[args[2].name] if len(args) == 3 else None
    if w.ndim != 2 or w.dtype != torch.float32 or w.device.type != "cpu":
        return None
    if bias is not None and (bias.dtype != torch.float32 or bias.shape != (w.shape[0],)):
        return None
    holder, rest = torch.nn.Module(), torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {lin: rest.placeholder("h")}
    for node in graph.nodes:
        if node is x or node is lin:
            continue
        if node.op == "placeholder":  # a lifted tensor: an attribute of the new module
            attr = f"t{len(env)}"
            holder.register_buffer(attr, tensors[node.name])
            env[node] = rest.get_attr(attr)
        else:
            env[node] = rest.node_copy(node, lambda n: env[n])
    rest.eliminate_dead_code()  # the first layer's own tensors
    head = _LinearHead(
        w, w.T.contiguous(), w.abs().amax(dim=0), bias, _Forward(torch.fx.GraphModule(holder, rest))
    )
    return head if _head_matches(head, module) else None


def _head_matches(head: _LinearHead, model: Callable[[torch.Tensor], Any]) -> bool:
    """Whether ``rest(linear(x))`` reproduces ``model(x)`` on a few random rows."""
    g = torch.Generator().manual_seed(0)
    probe = torch.randn(5, head.weight.shape[1], generator=g)
    try:
        with torch.no_grad():
            want = model(probe)
            want = want[0] if isinstance(want, (tuple, list)) else want
            got = head.rest(torch.nn.functional.linear(probe, head.weight, head.bias))
            return bool(torch.allclose(got, want.reshape(-1).to(got.dtype), 1e-5, 1e-6))
    except Exception:  # any failure means: not verified, take the plain path
        return False


class _Forward:
    """Calls the model on any batch size and returns one float per example."""

    def __init__(self, model: Any) -> None:
        self.static_batch: int | None = None
        head: _LinearHead | None = None
        if isinstance(model, torch.export.ExportedProgram):
            self.static_batch = _static_batch(model)
            program, model = model, model.module()
            if self.static_batch is None:
                head = _exported_linear_head(program, model)
        else:
            head = _linear_head(model)
        if isinstance(model, torch.nn.Module):
            # ep.module() refuses eval(): an exported graph is already in its inference form
            with contextlib.suppress(NotImplementedError):
                model.eval()
        if not callable(model):
            raise TypeError(
                f"model: expected a torch.export ExportedProgram, an nn.Module or a callable, "
                f"got {type(model).__name__}"
            )
        self.model: Callable[[torch.Tensor], torch.Tensor] = model
        self.head = head

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = torch.as_tensor(out)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"model output has shape {tuple(out.shape)} for an input of {tuple(x.shape)}; "
                "expected [batch] or [batch, 1] (one prediction per row)"
            )
        return out.to(torch.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            sb = self.static_batch
            if sb is None or x.shape[0] == sb:
                return self._call(x)
            outs = []
            for start in range(0, x.shape[0], sb):
                chunk = x[start : start + sb]
                n = chunk.shape[0]
                if n < sb:
                    chunk = torch.cat([chunk, chunk[-1:].expand(sb - n, -1)])
                outs.append(self._call(chunk)[:n])
            return torch.cat(outs)


def predict(model: Any, X: ArrayLike, *, batch_size: int = 8192) -> np.ndarray:
    """The model's predictions on rows ``X`` (float32), as a float64 numpy vector."""
    fwd = _Forward(model)
    x = _as_matrix(X, None)
    out = [fwd(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).double().numpy() if out else np.empty(0)


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportanceResult:
    """Ablation importance of each feature on one set of rows."""

    feature_names: tuple[str, ...]
    importance: np.ndarray  # mean |attr| over finite rows, per feature
    mean_attribution: np.ndarray  # signed mean attr: the feature's pull on the mean prediction
    baseline: np.ndarray  # the value each feature was replaced with
    mean_prediction: float
    n_rows: int
    n_nonfinite_inputs: int  # rows with a NaN/inf feature value
    n_nonfinite_outputs: int  # rows whose prediction or attribution is NaN/inf (excluded)
    k: int  # size of the top set whose stability was bootstrapped
    topk_stability: float  # share of bootstrap resamples that keep the same top-k set
    attributions: np.ndarray = field(repr=False)  # [n_rows, n_features] per-example attrs

    def frame(self) -> pl.DataFrame:
        order = np.argsort(-np.nan_to_num(self.importance, nan=-1.0), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        return pl.DataFrame(
            {
                "feature": list(self.feature_names),
                "rank": rank,
                "importance": self.importance,
                "mean_attribution": self.mean_attribution,
                "baseline": self.baseline,
            }
        ).sort("rank")

    def top(self, k: int = 5) -> list[str]:
        return self.frame()["feature"].head(k).to_list()


@dataclass(frozen=True)
class ImportanceShift:
    """How feature importance moved between two windows (or two snapshots on one window)."""

    feature_names: tuple[str, ...]
    before: ImportanceResult
    after: ImportanceResult
    shift: np.ndarray  # importance after - before (mean |attr|)
    relative_shift: np.ndarray  # shift / max(importance before, tiny)
    explained_shift: (
        np.ndarray
    )  # mean attr after - before: the feature's share of the prediction shift
    attribution_change: (
        np.ndarray
    )  # paired only: mean |attr_after - attr_before| per row, else |shift|
    prediction_shift: float  # mean prediction after - before
    k: int
    topk_stability: float  # share of bootstrap resamples with the same top-k set by |shift|
    top_frequency: np.ndarray  # per feature: share of resamples in which it is in that top-k
    n_rows: int  # rows per side
    paired: bool  # True when both sides were computed on the same rows (two snapshots)

    def score(self) -> np.ndarray:
        """What ranks features: the largest of the importance shift, the share of the
        prediction shift a feature carries and (paired) the per-row attribution change -- all
        in prediction units. The last one sees a weight whose sign flipped, which leaves mean
        |attr| unchanged."""
        return np.maximum(
            np.maximum(np.abs(self.shift), np.abs(self.explained_shift)), self.attribution_change
        )

    def frame(self) -> pl.DataFrame:
        s = self.score()
        order = np.argsort(-np.nan_to_num(s, nan=-1.0), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        return pl.DataFrame(
            {
                "feature": list(self.feature_names),
                "rank": rank,
                "importance_before": self.before.importance,
                "importance_after": self.after.importance,
                "importance_shift": self.shift,
                "relative_shift": self.relative_shift,
                "explained_shift": self.explained_shift,
                "attribution_change": self.attribution_change,
                "top_frequency": self.top_frequency,
            }
        ).sort("rank")

    def top(self, k: int = 5) -> list[str]:
        return self.frame()["feature"].head(k).to_list()


# -- helpers ----------------------------------------------------------------------------------


def _as_matrix(X: ArrayLike, feature_names: Sequence[str] | None, where: str = "X") -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        x = X.detach().to(torch.float32).cpu()
    else:
        x = torch.from_numpy(np.asarray(X, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(
            f"{where}: expected a 2-d [rows, features] matrix, got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{where}: has no rows; sample rows from a non-empty window")
    if feature_names is not None and x.shape[1] != len(feature_names):
        raise ValueError(
            f"{where}: has {x.shape[1]} columns but {len(feature_names)} feature_names were given; "
            "pass the columns in the model's input order (snapshots/<model>/features.json)"
        )
    return x.contiguous()


def _names(feature_names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if feature_names is None:
        return tuple(f"x{i}" for i in range(n))
    names = tuple(str(f) for f in feature_names)
    if len(set(names)) != len(names):
        raise ValueError("feature_names: contains duplicates; names must identify columns")
    return names


def _row_medians(xt: np.ndarray) -> np.ndarray:
    """``np.median(xt, axis=1)`` of finite rows (bit for bit), from one partition per row and
    the max of its lower half, where numpy partitions around both middle values (~40% less
    time on 10k rows); ``xt`` is overwritten."""
    k = xt.shape[1] // 2
    xt.partition(k, axis=1)
    upper = xt[:, k]
    if xt.shape[1] % 2:
        return upper.copy()
    return np.mean(np.stack([xt[:, :k].max(axis=1), upper]), axis=0)


def resolve_baseline(
    baseline: BaselineSpec, X: ArrayLike, feature_names: Sequence[str]
) -> np.ndarray:
    """Per-feature replacement values: ``"median"``/``"mean"`` of ``X`` (nan-safe), or given."""
    if isinstance(baseline, str):
        if baseline not in ("median", "mean"):
            raise ValueError(f"baseline: expected 'median', 'mean' or an array, got '{baseline}'")
        x32 = _as_matrix(X, feature_names, "baseline rows").numpy()
        if np.isfinite(x32).all():  # the common case: a partition per column, no NaN handling
            xt = np.ascontiguousarray(x32.T)  # our own copy: partitioned in place
            if baseline == "median":
                return _row_medians(xt).astype(np.float64)
            return xt.mean(axis=1, dtype=np.float64)
        x = np.where(np.isfinite(x32), x32.astype(np.float64), np.nan)
        empty = ~np.isfinite(x).any(axis=0)
        if empty.any():
            bad = [feature_names[i] for i in np.flatnonzero(empty)]
            raise ValueError(
                f"baseline: features {bad} have no finite value in the control rows, so no "
                "baseline can be computed; pass baseline= explicitly or drop those features"
            )
        b = np.nanmedian(x, axis=0) if baseline == "median" else np.nanmean(x, axis=0)
    else:
        b = np.asarray(
            baseline.detach().cpu() if isinstance(baseline, torch.Tensor) else baseline,
            dtype=np.float64,
        ).ravel()
        if b.size != len(feature_names):
            raise ValueError(f"baseline: has {b.size} values for {len(feature_names)} features")
        if not np.isfinite(b).all():
            raise ValueError(
                "baseline: contains NaN/inf; a baseline must be a finite value per feature"
            )
    return b


def _attributions(
    fwd: _Forward, x: torch.Tensor, baseline: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ablation attributions [n, f] (prediction minus the prediction with the
    feature set to its baseline, as captum's ``FeatureAblation``) and predictions [n].

    A model that starts with an ``nn.Linear`` on the features (:func:`_linear_head`) takes the
    rank-1 path; any other model, and any row that path leaves non-finite, the plain one.
    """
    head = fwd.head
    if head is None or head.weight.shape[1] != x.shape[1]:
        return _attributions_plain(fwd, x, baseline, batch_size)
    attrs_t, preds, redo = _attributions_rank1(head, x, baseline, batch_size)
    # rows the rank-1 update cannot vouch for (a NaN/inf input, which it turns into NaN where
    # the plain path replaces it; cancellation) or whose result is not finite are computed the
    # plain way, so the two paths agree on every row, finite or not
    if not math.isfinite(float(attrs_t.sum()) + float(preds.sum())):
        redo |= ~(torch.isfinite(attrs_t).all(dim=0) & torch.isfinite(preds))
    idx = torch.nonzero(redo)[:, 0]
    if idx.numel():
        a_bad, p_bad = _attributions_plain(fwd, x[idx], baseline, batch_size)
        attrs_t[:, idx] = torch.from_numpy(a_bad.T.astype(np.float32))
        preds[idx] = torch.from_numpy(p_bad.astype(np.float32))
    return attrs_t.numpy().T.astype(np.float64), preds.double().numpy()


#: the rank-1 update is used for a row only where no feature's update exceeds this many times
#: a lower bound of the ablated first layer's largest output (see :func:`_cancels`)
CANCEL_RATIO = 16.0


def _cancels(head: _LinearHead, h0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Rows [c] where some ablated first layer ``h0 + delta_j * W[:, j]`` may be mostly
    cancellation (an outlier feature whose term dominates ``h0``, set back to its baseline):
    there the update's float32 rounding, ~eps * (|h0| + |update|), is not small against the
    result, where the plain path's is. Elsewhere the error is within ~(2 * CANCEL_RATIO + 2)
    eps of the ablated output's largest unit. The bound is checked per (row, feature) from
    two lower bounds of that largest unit: the row's largest unablated unit after the update,
    and |h0|'s max minus the update's max. NaN/inf inputs are flagged too."""
    habs = h0.abs()
    top = habs.argmax(dim=1)  # [c] the row's largest unit
    rows = torch.arange(h0.shape[0])
    h_top = h0[rows, top]
    upd = delta.abs() * head.weight_max[:, None]  # [f, c] bound of |update| over units
    lower = torch.maximum(
        (h_top + delta * head.weight[top].T).abs(), habs[rows, top] - upd
    )  # [f, c]
    ok = (upd <= CANCEL_RATIO * lower) & torch.isfinite(upd)
    return ~ok.all(dim=0)


def _attributions_rank1(
    head: _LinearHead, x: torch.Tensor, baseline: np.ndarray, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feature-major float32 attributions [f, n], predictions [n] and the rows to recompute
    the plain way (:func:`_cancels`) of a model ``rest(linear(x))``, each ablated first layer
    computed as ``h0 + (b_j - x_j) * W[:, j]`` (one ``addcmul`` over the unablated ``h0``).

    Each ``rest`` call holds up to ``batch_size`` rows, a row chunk repeated for a group of
    features, as in the plain path.
    """
    n, f = x.shape
    hidden = head.weight.shape[0]
    base = torch.from_numpy(baseline.astype(np.float32))
    chunk = max(1, min(batch_size, n))
    group = max(1, min(f, batch_size // chunk))
    attrs_t = torch.empty(f, n)
    preds = torch.empty(n)
    redo = torch.empty(n, dtype=torch.bool)
    flat = torch.empty(group * chunk * hidden)  # [group, rows, hidden], viewed per call
    with torch.no_grad():
        for start in range(0, n, chunk):
            xb = x[start : start + chunk]
            c = xb.shape[0]
            h0 = torch.nn.functional.linear(xb, head.weight, head.bias)
            p0 = head.rest(h0)
            preds[start : start + c] = p0
            delta = base[:, None] - xb.T  # [f, c]: how far each feature moves when ablated
            redo[start : start + c] = _cancels(head, h0, delta)
            for j0 in range(0, f, group):
                g = min(group, f - j0)
                h = flat[: g * c * hidden].view(g, c, hidden)
                torch.addcmul(
                    h0, delta[j0 : j0 + g, :, None], head.weight_t[j0 : j0 + g, None], out=h
                )
                out = head.rest(h.view(g * c, hidden)).view(g, c)
                torch.sub(p0, out, out=attrs_t[j0 : j0 + g, start : start + c])
    return attrs_t, preds, redo


def _attributions_plain(
    fwd: _Forward, x: torch.Tensor, baseline: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ablation attributions [n, f] and predictions [n] of any model.

    Each forward call holds up to ``batch_size`` rows: a chunk of rows repeated once per
    feature of a group, each copy with one feature ablated. The copies live in one buffer that
    is filled once per row chunk; moving to the next feature group only restores the previous
    group's columns and ablates the new ones (O(rows) writes per feature, where captum
    rebuilds the input and accumulates a full [rows, features] mask per feature).
    """
    n, f = x.shape
    base = baseline.astype(np.float32).tolist()
    chunk = max(1, min(batch_size, n))
    group = max(1, min(f, batch_size // chunk))
    preds = torch.cat([fwd(x[s : s + chunk]) for s in range(0, n, chunk)])
    attrs_t = torch.empty(f, n)  # feature-major: each call's differences are one contiguous write
    buf = torch.empty(group, chunk, f)
    for start in range(0, n, chunk):
        xb = x[start : start + chunk]
        xbt = xb.T.contiguous()  # the columns to restore, read contiguously
        c = xb.shape[0]
        view = buf[:, :c]
        view.copy_(xb.expand(group, c, f))
        p0 = preds[start : start + c]
        for j0 in range(0, f, group):
            g = min(group, f - j0)
            cols = [view.select(0, k).select(1, j0 + k) for k in range(g)]  # strided [c] views
            for k, col in enumerate(cols):
                col.fill_(base[j0 + k])
            out = fwd(view[:g].reshape(-1, f)).view(g, c)
            torch.sub(p0, out, out=attrs_t[j0 : j0 + g, start : start + c])
            for k, col in enumerate(cols):  # undo this group's ablation
                col.copy_(xbt[j0 + k])
    # float32 differences, as captum's; [n, f] float64, feature-major in memory
    return attrs_t.numpy().T.astype(np.float64), preds.double().numpy()


def _nonfinite_rows(x: torch.Tensor) -> int:
    """Rows of ``x`` holding NaN/inf, counted only when its sum is not finite (one reduction
    instead of a bool copy and a per-row ``all``: a sum is finite only when every value is, and
    a sum that overflows merely takes the exact count)."""
    if math.isfinite(float(x.sum())):
        return 0
    return int((~np.isfinite(x.numpy()).all(axis=1)).sum())


def _finite_rows(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Rows whose attributions and prediction are all finite: a row sum is finite exactly then
    (attributions of float32 predictions cannot overflow a float64 sum), one reduction."""
    return np.isfinite(a.sum(axis=1)) & np.isfinite(p)


def _topk_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean [..., f] mask of the k largest entries along the last axis."""
    idx = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=-1)
    return mask


def _effective_k(point: np.ndarray, boot: np.ndarray, k: int) -> int:
    """How many top features stand out of the noise: |value| at least 10% of the largest and
    at least 2 bootstrap standard errors; between 1 and k. Bootstrapping the stability of a
    top-k that includes pure-noise features would only measure the noise."""
    sd = boot.std(axis=0)
    mx = float(np.max(point)) if point.size else 0.0
    if not np.isfinite(mx) or mx <= 0:
        return 1
    strong = (point >= 0.1 * mx) & (point >= 2 * sd)
    return int(min(k, max(1, strong.sum())))


def _bootstrap_weights(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """[b, n] resampling weights (multinomial counts / n): a resample as one matmul."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n) / n


def _block_means(a: np.ndarray) -> np.ndarray:
    """Means of ``a``'s rows over at most :data:`BOOT_BLOCKS` near-equal blocks of consecutive
    rows (each row its own block when there are fewer rows)."""
    n = a.shape[0]
    m = min(n, BOOT_BLOCKS)
    if m == n:
        return a
    starts = (np.arange(m) * n) // m
    sizes = np.diff(np.append(starts, n))
    return np.add.reduceat(a, starts, axis=0) / sizes[:, None]


def _resampled_means(w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """[b, f] bootstrap means of ``a``'s rows for block weights ``w`` [b, blocks]."""
    return w @ _block_means(a)


def _importance(a: np.ndarray, absa: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean |attr|, mean attr) per feature over the finite rows (``absa`` is ``|a|``)."""
    if not ok.any():
        nanv = np.full(a.shape[1], np.nan)
        return nanv, nanv
    if ok.all():
        return absa.mean(axis=0), a.mean(axis=0)
    return absa[ok].mean(axis=0), a[ok].mean(axis=0)


def _single(
    fwd: _Forward,
    x: torch.Tensor,
    names: tuple[str, ...],
    baseline: np.ndarray,
    batch_size: int,
    k: int,
    n_bootstrap: int,
    seed: int,
) -> ImportanceResult:
    a, p = _attributions(fwd, x, baseline, batch_size)
    ok = _finite_rows(a, p)
    absa = np.abs(a)
    imp, mean_attr = _importance(a, absa, ok)
    stab, k_eff = float("nan"), min(k, len(names))
    if ok.sum() >= 2 and n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        af = absa if ok.all() else absa[ok]
        boot = _resampled_means(
            _bootstrap_weights(rng, min(af.shape[0], BOOT_BLOCKS), n_bootstrap), af
        )
        k_eff = _effective_k(imp, boot, k)
        full = _topk_mask(imp, k_eff)
        stab = float((_topk_mask(boot, k_eff) == full).all(axis=1).mean())
    return ImportanceResult(
        feature_names=names,
        importance=imp,
        mean_attribution=mean_attr,
        baseline=baseline,
        mean_prediction=float(p[ok].mean()) if ok.any() else float("nan"),
        n_rows=int(x.shape[0]),
        n_nonfinite_inputs=_nonfinite_rows(x),
        n_nonfinite_outputs=int((~ok).sum()),
        k=k_eff,
        topk_stability=stab,
        attributions=a,
    )


# -- public API -------------------------------------------------------------------------------


def ablation_importance(
    model: Any,
    X: ArrayLike,
    *,
    baseline: BaselineSpec = "median",
    feature_names: Sequence[str] | None = None,
    batch_size: int = 4096,
    k: int = 5,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> ImportanceResult:
    """Feature-ablation importance of ``model`` on rows ``X`` (the attributions of captum's
    ``FeatureAblation``, computed in batched forward calls of up to ``batch_size`` rows).

    ``baseline`` is the per-feature value a feature is replaced with: an array, or
    ``"median"``/``"mean"`` of ``X`` itself. Rows whose prediction or attribution is not
    finite are counted and left out of the means.
    """
    x = _as_matrix(X, feature_names)
    names = _names(feature_names, x.shape[1])
    b = resolve_baseline(baseline, x, names)
    return _single(_Forward(model), x, names, b, batch_size, k, n_bootstrap, seed)


def _shift_result(
    before: ImportanceResult,
    after: ImportanceResult,
    *,
    paired: bool,
    k: int,
    n_bootstrap: int,
    seed: int,
) -> ImportanceShift:
    a0, a1 = before.attributions, after.attributions
    ok0 = _finite_rows(a0, np.zeros(a0.shape[0]))
    ok1 = _finite_rows(a1, np.zeros(a1.shape[0]))
    if paired:
        ok0 = ok1 = ok0 & ok1
    shift = after.importance - before.importance
    explained = after.mean_attribution - before.mean_attribution
    if paired:
        ok = ok0 & ok1
        change = np.abs(a1[ok] - a0[ok]).mean(axis=0) if ok.any() else np.full(a0.shape[1], np.nan)
    else:
        change = np.abs(shift)
    point = np.maximum(np.maximum(np.abs(shift), np.abs(explained)), change)
    nf = len(before.feature_names)
    stab, k_eff, freq = float("nan"), min(k, nf), np.full(nf, np.nan)
    if ok0.sum() >= 2 and ok1.sum() >= 2 and n_bootstrap > 0:
        rng = np.random.default_rng(seed + 1)
        f0, f1 = a0[ok0], a1[ok1]
        w0 = _bootstrap_weights(rng, min(f0.shape[0], BOOT_BLOCKS), n_bootstrap)
        w1 = w0 if paired else _bootstrap_weights(rng, min(f1.shape[0], BOOT_BLOCKS), n_bootstrap)
        bshift = _resampled_means(w1, np.abs(f1)) - _resampled_means(w0, np.abs(f0))
        bexpl = _resampled_means(w1, f1) - _resampled_means(w0, f0)
        boot = np.maximum(np.abs(bshift), np.abs(bexpl))
        if paired:
            boot = np.maximum(boot, _resampled_means(w0, np.abs(f1 - f0)))
        k_eff = _effective_k(point, boot, k)
        full = _topk_mask(point, k_eff)
        bm = _topk_mask(boot, k_eff)
        stab = float((bm == full).all(axis=1).mean())
        freq = bm.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = shift / np.maximum(before.importance, 1e-12)
    return ImportanceShift(
        feature_names=before.feature_names,
        before=before,
        after=after,
        shift=shift,
        relative_shift=rel,
        explained_shift=explained,
        attribution_change=change,
        prediction_shift=after.mean_prediction - before.mean_prediction,
        k=k_eff,
        topk_stability=stab,
        top_frequency=freq,
        n_rows=min(before.n_rows, after.n_rows),
        paired=paired,
    )


def _sample(x: torch.Tensor, n: int, rng: np.random.Generator) -> torch.Tensor:
    if x.shape[0] <= n:
        return x
    idx = np.sort(rng.choice(x.shape[0], size=n, replace=False))
    return x[torch.from_numpy(idx)]


def importance_shift(
    model: Any,
    X_control: ArrayLike,
    X_anomaly: ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
    baseline: BaselineSpec = "median",
    sample_rows: int = 2048,
    max_rows: int = 8192,
    target_stability: float = 0.9,
    batch_size: int = 4096,
    k: int = 5,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> ImportanceShift:
    """Importance in the control window vs the anomaly window, for one model.

    The baseline comes from the *control* rows for both windows (so "ablated" means "set to
    what was normal"). Each window is sampled to ``sample_rows`` rows (deterministic for a
    seed); while the bootstrapped top-k stability is below ``target_stability`` the sample is
    doubled, up to ``max_rows``.
    """
    xc = _as_matrix(X_control, feature_names, "X_control")
    xa = _as_matrix(X_anomaly, feature_names, "X_anomaly")
    if xc.shape[1] != xa.shape[1]:
        raise ValueError(
            f"X_control has {xc.shape[1]} columns and X_anomaly {xa.shape[1]}; pass the same features"
        )
    names = _names(feature_names, xc.shape[1])
    b = resolve_baseline(baseline, xc, names)
    fwd = _Forward(model)
    rng = np.random.default_rng(seed)
    perm_c = torch.from_numpy(rng.permutation(xc.shape[0]))
    perm_a = torch.from_numpy(rng.permutation(xa.shape[0]))
    n = max(2, min(sample_rows, max_rows))
    while True:
        sc, sa = xc[perm_c[:n]], xa[perm_a[:n]]
        before = _single(fwd, sc, names, b, batch_size, k, n_bootstrap, seed)
        after = _single(fwd, sa, names, b, batch_size, k, n_bootstrap, seed + 7)
        res = _shift_result(before, after, paired=False, k=k, n_bootstrap=n_bootstrap, seed=seed)
        exhausted = n >= max_rows or (n >= xc.shape[0] and n >= xa.shape[0])
        if exhausted or not (res.topk_stability < target_stability):
            return res
        n = min(2 * n, max_rows)


def snapshot_importance_shift(
    model_a: Any,
    model_b: Any,
    X: ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
    baseline: BaselineSpec = "median",
    sample_rows: int = 4096,
    batch_size: int = 4096,
    k: int = 5,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> ImportanceShift:
    """Importance under snapshot ``model_a`` (before) vs ``model_b`` (after) on the same rows.

    The rows and the baseline are shared, so any shift is the model's doing: a feature whose
    weight changed between snapshots moves, features the snapshots treat alike do not. The
    bootstrap resamples rows jointly (paired).
    """
    x = _as_matrix(X, feature_names)
    names = _names(feature_names, x.shape[1])
    b = resolve_baseline(baseline, x, names)
    x = _sample(x, sample_rows, np.random.default_rng(seed))
    before = _single(_Forward(model_a), x, names, b, batch_size, k, n_bootstrap, seed)
    after = _single(_Forward(model_b), x, names, b, batch_size, k, n_bootstrap, seed)
    return _shift_result(before, after, paired=True, k=k, n_bootstrap=n_bootstrap, seed=seed)

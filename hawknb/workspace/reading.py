"""Bounded, non-blocking reads of workspace files.

A workspace is written by someone else's pipeline, so a file may be a named pipe (a read would
block forever), a device such as /dev/zero (a read would never end), a folder, or simply huge.
Every file hawknb reads goes through :func:`regular_file` first, and JSON through
:func:`read_json`, which reads at most a configured number of bytes and turns every decoding
failure (bad UTF-8, bad JSON, nesting deep enough to exhaust the recursion limit, numbers too
long to convert) into a one-line :class:`WorkspaceError`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import WorkspaceError

#: default cap on one JSON file (lineage.json, features.json, a .pt2's model JSON)
DEFAULT_MAX_JSON_BYTES = 256 * 1024 * 1024
#: default cap on one exported program (.pt2): it is read whole into memory to be checked
DEFAULT_MAX_PT2_BYTES = 4 * 1024 * 1024 * 1024
#: default cap on one ONNX snapshot: read whole into memory (protobuf's own limit is 2 GiB)
DEFAULT_MAX_ONNX_BYTES = 2 * 1024 * 1024 * 1024


def _limit(env: str, default: int) -> int:
    raw = os.environ.get(env)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WorkspaceError(
            f"environment variable {env}", "is not a number of bytes", found=repr(raw)
        ) from None
    if value <= 0:
        raise WorkspaceError(f"environment variable {env}", "must be positive", found=raw)
    return value


def max_json_bytes() -> int:
    """The JSON size cap: HAWKNB_MAX_JSON_BYTES, or 256 MiB."""
    return _limit("HAWKNB_MAX_JSON_BYTES", DEFAULT_MAX_JSON_BYTES)


def max_pt2_bytes() -> int:
    """The exported-program size cap: HAWKNB_MAX_PT2_BYTES, or 4 GiB."""
    return _limit("HAWKNB_MAX_PT2_BYTES", DEFAULT_MAX_PT2_BYTES)


def max_onnx_bytes() -> int:
    """The ONNX snapshot size cap: HAWKNB_MAX_ONNX_BYTES, or 2 GiB."""
    return _limit("HAWKNB_MAX_ONNX_BYTES", DEFAULT_MAX_ONNX_BYTES)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path: Path) -> os.stat_result:
    """Stat ``path`` (following links) and refuse anything that is not a regular file."""
    try:
        st = path.stat()
    except OSError as exc:
        raise WorkspaceError(str(path), "cannot be read", found=exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise WorkspaceError(
            str(path),
            f"is {_kind(st.st_mode)}",
            expected="a regular file",
            fix="replace it with the file the contract describes (see docs/workspace.md)",
        )
    return st


def read_bytes(path: Path, limit: int, limit_name: str) -> bytes:
    """Read a regular file whole, refusing one larger than ``limit`` bytes.

    The file is opened non-blocking and checked again on the open descriptor, so a file swapped
    for a pipe between the check and the open cannot block the read; at most ``limit + 1``
    bytes are ever read, so a file that grows (or lies about its size) cannot exhaust memory.
    """
    regular_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise WorkspaceError(str(path), "cannot be read", found=exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise WorkspaceError(str(path), f"is {_kind(st.st_mode)}", expected="a regular file")
        if st.st_size > limit:
            raise _too_big(path, limit, limit_name, st.st_size)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise _too_big(path, limit, limit_name, None)
    return data


def _too_big(path: Path, limit: int, limit_name: str, size: int | None) -> WorkspaceError:
    return WorkspaceError(
        str(path),
        f"is larger than the {limit}-byte limit",
        found=f"{size} bytes" if size is not None else "more bytes than that",
        fix=f"shrink the file, or raise the limit with {limit_name}=<bytes>",
    )


def parse_json(data: bytes, where: str) -> Any:
    """Decode JSON bytes; every failure becomes a one-line WorkspaceError naming ``where``."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WorkspaceError(where, "is not UTF-8 text", found=str(exc)[:200]) from None
    except RecursionError:
        raise WorkspaceError(
            where, "is nested too deeply to read", fix="flatten the JSON structure"
        ) from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number too long to read
        raise WorkspaceError(
            where, "is not valid JSON", found=str(exc).splitlines()[0][:200], fix="rewrite it"
        ) from None


def read_json(path: Path) -> Any:
    """Read a workspace JSON file: a regular file, at most HAWKNB_MAX_JSON_BYTES bytes."""
    return parse_json(read_bytes(path, max_json_bytes(), "HAWKNB_MAX_JSON_BYTES"), str(path))

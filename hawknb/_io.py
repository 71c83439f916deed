"""Safe output: atomic writes, and no user file replaced without ``--force``.

Every hawknb command that writes goes through here, for two reasons:

- **Nothing half-written.** A file is written to a temporary file in the same folder, flushed
  to disk, then renamed over the target (``os.replace`` is atomic on POSIX); a folder is built
  under a temporary name beside the target and renamed into place. A full disk, a read-only
  folder or a crash leaves the previous target as it was and no stray temporary behind.
- **No silent data loss.** An existing target that hawknb did not write is only replaced with
  ``force=True`` (``--force``). hawknb recognises its own output by a marker file,
  :data:`MARKER`, in every folder it creates; the marker also records the SHA-256 of each file
  hawknb wrote in that folder, so a notebook the user has edited since counts as theirs.

Targets that exist but are neither regular files nor folders (``/dev/stdout``, ``/dev/full``,
a named pipe) are written in place, unrenamed: they hold no data that could be lost, and
renaming over a device node would replace it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .workspace.errors import HawknbError

#: the file hawknb writes in every folder it creates (and its manifest of files written there)
MARKER = ".hawknb-created"
_TMP = ".hawknb-tmp"


class OutputError(HawknbError):
    """An output could not be written, or would replace something that is not hawknb's."""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _write_failed(target: Path, exc: OSError) -> OutputError:
    return OutputError(f"{target}: could not write ({_why(exc)}); nothing was changed")


def _marker(folder: Path) -> dict[str, Any]:
    """The marker of ``folder``: ``{"folder": bool, "files": {name: sha256}}`` (empty if none).

    ``folder`` is true when hawknb created the folder itself; a marker with files only means
    hawknb wrote those files into a folder it did not create (``hawknb demo`` into an existing
    folder), which does not make the folder hawknb's.
    """
    marker = folder / MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    files = data.get("files")
    files = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    return {"folder": data.get("folder") is True, "files": files}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def created_by_hawknb(path: str | os.PathLike[str]) -> bool:
    """Whether hawknb wrote ``path`` and nobody changed it since.

    A folder is hawknb's when it holds :data:`MARKER`; a file is hawknb's when the marker of
    its folder lists it with the SHA-256 it still has.
    """
    p = Path(path)
    if p.is_dir():
        return bool(_marker(p).get("folder"))
    if not p.is_file():
        return False
    listed = _marker(p.parent).get("files", {}).get(p.name)
    return listed is not None and listed == _sha256(p)


def is_special(path: Path) -> bool:
    """An existing target that is neither a regular file nor a folder (device, pipe, socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_target(
    target: str | os.PathLike[str], *, force: bool = False, folder: bool = False
) -> Path:
    """Refuse, with a one-line :class:`OutputError`, a write that would lose the user's data.

    Allowed: a target that does not exist, an empty folder (for ``folder``), a special file as
    a file target (see module docstring), anything hawknb wrote, and anything else when
    ``force``. A folder where a file is wanted, or a file where a folder is wanted, is refused
    even with ``force``: that is a wrong path, not an overwrite. Call it before long work, so
    that a refusal comes first.
    """
    p = Path(target)
    if is_special(p):
        if folder:  # files would be written beside a device, then renamed over it
            raise OutputError(f"{p}: is not a folder; Fix: pass a folder path")
        return p
    if not os.path.lexists(p):
        return p
    if p.is_dir() != folder or p.is_symlink():
        what = "a folder" if p.is_dir() else "a link" if p.is_symlink() else "a file"
        raise OutputError(f"{p}: is {what}; Fix: pass a {'folder' if folder else 'file'} path")
    if folder and not any(p.iterdir()):
        return p
    if not force and not created_by_hawknb(p):
        kind = "folder" if folder else "file"
        raise OutputError(
            f"{p}: refusing to replace an existing {kind} that hawknb did not write "
            "(or that changed since); "
            "Fix: pass --force to replace it, or choose another path"
        )
    return p


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _record(target: Path) -> None:
    """Add ``target`` (with its hash) to its folder's marker, making the folder hawknb's."""
    _write_marker(target.parent, {target.name: _sha256(target)})


def _write_marker(folder: Path, add: dict[str, str], created: bool = False) -> None:
    old = _marker(folder)
    files = {**old.get("files", {}), **add}
    data = {"created_by": "hawknb", "folder": created or bool(old.get("folder")), "files": files}
    _write_bytes(folder / MARKER, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def _new_file_mode(target: Path, base: int = 0o666) -> int:
    """The mode ``target`` has, or a new file's (folder's, with base 0o777) under the umask;
    temporaries are created private (0600/0700) and get this mode before the rename."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return base & ~umask


@contextlib.contextmanager
def replacing_file(
    target: str | os.PathLike[str], *, force: bool = False, record: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds, move it into place.

    Whatever writes the yielded path (polars, papermill, plain ``open``) gets the atomic
    behaviour: the data is fsynced and renamed over ``target`` only when complete; on any
    error the temporary is removed and ``target`` is untouched. ``record`` lists the file in
    its folder's marker (always done in a folder that has one), so hawknb may replace it again
    without ``--force``.
    """
    p = check_target(target, force=force)
    if is_special(p):
        tmp_dir = Path(tempfile.mkdtemp(prefix="hawknb-"))
        try:
            tmp = tmp_dir / p.name
            yield tmp
            _copy_into(tmp, p)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # the temporary keeps the target's extension: some writers (papermill) look at it
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=_TMP + p.suffix, dir=p.parent)
        os.close(fd)
    except OSError as exc:
        raise _write_failed(p, exc) from exc
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(p))
        os.replace(tmp, p)
        _fsync_dir(p.parent)
    except OSError as exc:
        raise _write_failed(p, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    if record or (p.parent / MARKER).is_file():
        # after the target is in place: a marker that cannot be written only means a rerun
        # will need --force, not that the output failed
        with contextlib.suppress(OSError):
            _record(p)


def _copy_into(src: Path, special: Path) -> None:
    """Copy a finished temporary into a device or pipe (no rename possible there)."""
    try:
        with open(src, "rb") as fin, open(special, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
    except OSError as exc:
        raise OutputError(f"{special}: could not write ({_why(exc)})") from exc


def _write_bytes(target: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, _new_file_mode(target))
        os.replace(name, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def write_file(
    target: str | os.PathLike[str],
    data: str | bytes,
    *,
    force: bool = False,
    record: bool = False,
) -> Path:
    """Write ``data`` (str as UTF-8) to ``target`` atomically; see :func:`replacing_file`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing_file(target, force=force, record=record) as tmp:
        tmp.write_bytes(raw)
    return Path(target)


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


@contextlib.contextmanager
def replacing_dir(
    target: str | os.PathLike[str],
    *,
    force: bool = False,
    keep_out: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it becomes ``target``.

    The folder gets :data:`MARKER`, so a later run may replace it without ``--force``. The old
    target (when replaced) is renamed aside first and deleted only after the new one is in
    place. ``keep_out`` are paths (a command's inputs) the target must neither be, contain nor
    lie inside: those are refused even with ``force``, since replacing the folder would delete
    them.
    """
    p = Path(target)
    real = p.resolve()
    for src in keep_out:
        s = Path(src).resolve()
        if _inside(real, s) or _inside(s, real):
            raise OutputError(
                f"{p}: is or overlaps the input {src}; writing there would destroy it. "
                "Fix: choose an output folder outside the inputs"
            )
    check_target(p, force=force, folder=True)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=_TMP, dir=p.parent))
    except OSError as exc:
        raise _write_failed(p, exc) from exc
    old: Path | None = None
    try:
        yield tmp
        _write_marker(tmp, {}, created=True)
        os.chmod(tmp, _new_file_mode(p, 0o777))
        if os.path.lexists(p):
            old = Path(tempfile.mkdtemp(prefix=f".{p.name}.old.", suffix=_TMP, dir=p.parent))
            os.replace(p, old / p.name)
        os.replace(tmp, p)
        _fsync_dir(p.parent)
    except OSError as exc:
        if old is not None and not os.path.lexists(p):
            with contextlib.suppress(OSError):
                os.replace(old / p.name, p)  # put the old folder back
        if exc.errno == errno.ENOTEMPTY:  # pragma: no cover - a race with another writer
            raise OutputError(f"{p}: another process wrote there meanwhile; try again") from exc
        raise _write_failed(p, exc) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

"""Write a workspace all at once or not at all: stage beside the target, validate, rename.

An ingestion that fails halfway (a malformed event on line 9,000, a timestamp that does not
parse in the last partition) must not leave a workspace that looks complete but is not. Every
ingest writes into a temporary folder next to the target (same file system, so the final
rename is cheap), copies in what the target already holds (hard links where possible), checks
the result against the contract and only then swaps it into place. On any error the temporary
folder is removed and the target is exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from ..workspace import Workspace, WorkspaceError, WorkspaceWarning
from ..workspace import contract as c
from ..workspace.errors import HawknbError


class IngestError(HawknbError, ValueError):
    """An input to ``hawknb ingest`` is wrong; the message names the file, line or field."""


class IngestWarning(WorkspaceWarning):
    """Something in the input was skipped (e.g. an unknown OpenLineage facet); says where."""


def missing_extra(extra: str, module: str) -> IngestError:
    """The one-line error for an optional dependency that is not installed."""
    return IngestError(
        f"{module} is not installed; this ingest needs the '{extra}' extra. "
        f"Fix: pip install 'hawknb[{extra}]'"
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) every file of ``src`` into ``dst``; the originals are never
    written to, because a file the ingest replaces is unlinked in ``dst`` first."""
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, dst / rel)


class Stage:
    """The temporary workspace an ingest writes into (``stage.root``)."""

    def __init__(self, root: Path, target: Path) -> None:
        self.root = root
        self.target = target

    def path(self, rel: str) -> Path:
        """A file of the staged workspace; its folder is created, a linked original removed."""
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        return p


def _check_replace(target: Path, writes: Sequence[str], force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise IngestError(f"{target}: is not a directory; Fix: pass a workspace directory")
    if force:
        return
    present = [w for w in writes if (target / w).exists()]
    if present:
        raise IngestError(
            f"{target / present[0]}: already exists; refusing to replace it. "
            "Fix: pass --force (force=True) to replace it, or ingest into another workspace"
        )


@contextlib.contextmanager
def staged(target: str | Path, writes: Sequence[str], *, force: bool = False) -> Iterator[Stage]:
    """Stage an ingest into ``target``, which will hold the files ``writes`` (relative paths).

    Yields a :class:`Stage`; when the block ends without error the staged workspace is
    validated and renamed over ``target``. Files named in ``writes`` that already exist are
    replaced only with ``force``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _ingest_lock(target):
        _check_replace(target, writes, force)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.ingest-", dir=target.parent))
        try:
            if target.is_dir():
                _copy_tree(target, tmp)
            yield Stage(tmp, target)
            validate_staged(tmp, target)
            _swap(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


LOCK_WAIT_ENV = "HAWKNB_INGEST_LOCK_WAIT"


@contextlib.contextmanager
def _ingest_lock(target: Path) -> Iterator[None]:
    """One ingest into a workspace at a time.

    Every ingest copies the workspace, adds its files and swaps the copy in, so two running at
    once would each swap in a copy without the other's files: the second silently undoes the
    first. An exclusive lock makes the second wait (``HAWKNB_INGEST_LOCK_WAIT`` seconds,
    default 600) and then copy the first one's result. The lock is on the folder that holds
    the workspace: the workspace itself is renamed by the swap, and a lock file would be left
    behind in the user's folder (ingests into sibling workspaces wait for each other too).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    wait = float(os.environ.get(LOCK_WAIT_ENV, "600"))
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IngestError(
                        f"{target}: another ingest into this workspace is still running "
                        f"after {wait:g} s; Fix: wait for it to finish, or raise "
                        f"{LOCK_WAIT_ENV}"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _swap(tmp: Path, target: Path) -> None:
    if not target.exists():
        tmp.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _retarget(exc: WorkspaceError, tmp: Path, target: Path) -> WorkspaceError:
    """The same error, naming the target instead of the temporary folder."""

    def fix(s: str | None) -> str | None:
        return None if s is None else s.replace(str(tmp), str(target))

    return WorkspaceError(
        fix(exc.where) or "",
        fix(exc.problem) or "",
        expected=fix(exc.expected),
        found=fix(exc.found),
        fix=fix(exc.fix),
    )


def validate_staged(tmp: Path, target: Path) -> list[str]:
    """Check the staged workspace against the contract before it replaces ``target``.

    With ``metrics.parquet`` and ``serving.parquet`` present this is ``Workspace.validate``.
    Without them (lineage or a registry ingested before the logs) each present table, the
    lineage graph and ``features.json`` are still checked: the same validation runs with
    stand-ins for the two required tables, and their own findings are dropped.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WorkspaceWarning)
            partial = [n for n in ("metrics", "serving") if not (tmp / c.TABLES[n].file).exists()]
            if not partial:
                notes = Workspace.open(tmp).validate()
            else:
                notes = _validate_partial(tmp, partial)
    except WorkspaceError as exc:
        raise _retarget(exc, tmp, target) from exc
    out = [n.replace(str(tmp), str(target)) for n in notes]
    for w in caught:
        msg = str(w.message).replace(str(tmp), str(target))
        if any(f"{target}/{c.TABLES[n].file}" in msg for n in partial):
            continue
        if msg not in out:
            out.append(msg)
    for msg in out:
        warnings.warn(msg, WorkspaceWarning, stacklevel=3)
    return out


def _validate_partial(tmp: Path, missing: list[str]) -> list[str]:
    """Validate with stand-ins written for the ``missing`` required tables (then removed)."""
    stand_ins = {n: tmp / c.TABLES[n].file for n in missing}
    features: dict[str, list[str]] = {}
    for ffile in sorted((tmp / c.SNAPSHOTS_DIR).glob(f"*/{c.FEATURES_FILE}")):
        with contextlib.suppress(ValueError):
            names = json.loads(ffile.read_text())
            if isinstance(names, list):
                features[ffile.parent.name] = [str(n) for n in names]
    snaps = tmp / c.TABLES["snapshots"].file
    metrics, serving = _stand_ins(pl.scan_parquet(snaps) if snaps.exists() else None, features)
    for name, frame in (("metrics", metrics), ("serving", serving)):
        if name in stand_ins:
            frame.write_parquet(stand_ins[name])
    try:
        notes = Workspace.open(tmp).validate()
    finally:
        for p in stand_ins.values():
            p.unlink(missing_ok=True)
    return [n for n in notes if not any(str(p) in n for p in stand_ins.values())]


def _stand_ins(
    snapshots: pl.LazyFrame | None, features: dict[str, list[str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A one-row metrics table and a serving log that serves every known snapshot with every
    listed feature, so that only the tables the ingest wrote can raise."""
    ts = pl.datetime(2000, 1, 1, time_zone="UTC")
    metrics = pl.select(ts.alias(c.TS), pl.lit("_").alias(c.METRIC), pl.lit(0.0).alias(c.VALUE))
    if snapshots is not None:
        pairs = snapshots.select(
            pl.col(c.MODEL).cast(pl.String), pl.col(c.SNAPSHOT).cast(pl.String)
        ).collect()
    else:
        pairs = pl.DataFrame({c.MODEL: ["_"], c.SNAPSHOT: ["_"]})
    if pairs.height == 0:
        pairs = pl.DataFrame({c.MODEL: ["_"], c.SNAPSHOT: ["_"]})
    cols = sorted({f for names in features.values() for f in names})
    serving = pairs.with_columns(
        ts.alias(c.TS),
        pl.lit("_").alias(c.EXPERIMENT),
        pl.lit(0.0).alias(c.PREDICTION),
        *[pl.lit(0.0).alias(f) for f in cols],
    )
    return metrics, serving

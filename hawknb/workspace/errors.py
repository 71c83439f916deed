"""Errors and warnings about a workspace, written for the person who has to fix the file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class HawknbError(Exception):
    """Base class of the errors hawknb reports as a one-line message on the command line.

    ``str()`` is the first line of the message, whatever was appended later: torch.fx's
    interpreter, for one, rewrites the message of any exception raised while it runs a node
    (ours included) to add the node, the original traceback and a link.
    """

    def __str__(self) -> str:
        return _first_line(super().__str__())


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


class WorkspaceError(HawknbError, ValueError):
    """A workspace does not follow the contract.

    The message names the place (file, column), what the contract expects, what was found and
    how to fix it, so the command line can print it as one line without a traceback.
    """

    def __init__(
        self,
        where: str,
        problem: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.where = where
        self.problem = problem
        self.expected = expected
        self.found = found
        self.fix = fix
        # each part on one line: `found` often quotes a library's multi-line message
        parts = [f"{_first_line(where)}: {_first_line(problem)}"]
        if expected is not None:
            parts.append(f"expected {_first_line(expected)}")
        if found is not None:
            parts.append(f"found {_first_line(found)}")
        msg = "; ".join(parts)
        if fix:
            msg += f". Fix: {_first_line(fix)}"
        super().__init__(msg)


class WorkspaceWarning(UserWarning):
    """Something in a workspace is suspicious but still usable (e.g. NaN in a feature)."""


@contextmanager
def reading_errors(where: str) -> Iterator[None]:
    """Turn a failure of the data engine while reading a workspace into a one-line
    WorkspaceError naming ``where``.

    polars raises ComputeError (or panics: PanicException derives from BaseException, not
    Exception) when a Parquet file changes or is truncated after its footer was read, and the
    OS raises when a file disappears mid-run. None of these are hawknb bugs the user should
    see a traceback for; all of them mean "the workspace changed or cannot be read".
    """
    try:
        yield
    except HawknbError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        if not _is_read_failure(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WorkspaceError(
            str(where),
            "could not be read (did a file change while hawknb was reading it?)",
            found=f"{type(exc).__name__}: {first[:200]}",
            fix="rerun on a workspace that is not being written to",
        ) from exc


def _is_read_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or is_engine_failure(exc)


def is_engine_failure(exc: BaseException) -> bool:
    """A polars error, or a panic of its Rust engine (which derives from BaseException)."""
    module = type(exc).__module__ or ""
    return module.startswith("polars") or type(exc).__name__ == "PanicException"


def engine_failure_message(exc: BaseException) -> str:
    """One line for the command line when the data engine fails outside a workspace read."""
    first = _first_line(str(exc))
    return (
        f"the data engine failed ({type(exc).__name__}: {first[:200]}); did a workspace file "
        "change while hawknb was reading it?"
    )

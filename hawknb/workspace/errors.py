"""Errors and warnings about a workspace, written for the person who has to fix the file."""

from __future__ import annotations


class HawknbError(Exception):
    """Base class of the errors hawknb reports as a one-line message on the command line."""


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
        parts = [f"{where}: {problem}"]
        if expected is not None:
            parts.append(f"expected {expected}")
        if found is not None:
            parts.append(f"found {found}")
        msg = "; ".join(parts)
        if fix:
            msg += f". Fix: {fix}"
        super().__init__(msg)


class WorkspaceWarning(UserWarning):
    """Something in a workspace is suspicious but still usable (e.g. NaN in a feature)."""

"""Module-level lazy attributes (PEP 562), shared by the packages that re-export heavy classes.

``hawknb`` and ``hawknb.widgets`` both name classes whose modules pull in the widget stack
(anywidget, traitlets, IPython); importing those on first use keeps the command line, the
kernels and ``import hawknb.widgets`` cheap, and lets one missing view fail alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for the names in ``lazy``.

    ``lazy`` maps a name to the module (relative to ``package``) that defines it; ``namespace``
    is the package's ``globals()``, where a resolved name is cached so the import runs once.
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy))

    return __getattr__, __dir__

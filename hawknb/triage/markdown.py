"""The one Markdown rendering of findings and verdicts: ticket-ready, and safe to render.

What an on-call engineer pastes into an incident ticket, what the notebooks display, what
``hawknb triage --markdown`` prints and what the offline report shows all come from here, so
they say the same thing the same way: tables with rounded numbers and units, names in code
spans, lists joined in words; never a Python repr or a JSON dump.

Every name comes from a workspace someone else wrote, and Markdown passes raw HTML through,
so nothing from a workspace reaches the output unescaped:

- :func:`code` puts a name in a code span. A plain name (letters, digits, ``_.:/@+=,-``) gets
  backticks, readable in a ticket; anything else becomes ``<code>`` with *every* other
  character as a numeric entity, so neither HTML (``<script>``, ``onerror=``) nor Markdown
  (``[x](javascript:...)``, backticks, ``|`` that would split a table cell) survives in it.
- :func:`text` escapes free text (decisions, summaries, which embed names): HTML's ``<&``
  become entities and the Markdown characters that make links, code or cells are
  backslash-escaped; line breaks become spaces, so text cannot start a block of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

from .findings import STEPS

_PLAIN_NAME = re.compile(r"[\w.:/@+=,\-]+")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?")
_LONG_FLOAT = re.compile(r"(?<![\d.])-?\d+\.\d{4,}(?![\d.])")
#: without `<` no tag opens; `>` stays readable (``a->b``) and is harmless mid-line
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;"}
#: what makes links/images, code, emphasis or a new table cell; `_` is left alone (CommonMark
#: does not emphasise inside words, and ``click\_tower`` is unreadable in a ticket)
_MD_SPECIAL = set("\\`*[]|")
#: key suffix -> unit appended to a number (the workspace contract's naming, docs/workspace.md)
_UNITS = (("_pct", " %"), ("_percent", " %"), ("seconds", " s"), ("_s", " s"), ("_hours", " h"))
#: the most rows / columns / list items a table or list shows before "… N more"
MAX_ROWS, MAX_COLUMNS, MAX_ITEMS = 10, 7, 10
_EMPTY = "—"


def code(name: Any) -> str:
    """``name`` as a code span that renders as exactly that text and nothing else."""
    s = str(name)
    if _PLAIN_NAME.fullmatch(s):
        return f"`{s}`"
    safe = "".join(c if c.isalnum() else f"&#{ord(c) or 0xFFFD};" for c in s)
    return f"<code>{safe}</code>"


def text(value: Any) -> str:
    """Free text, escaped so that it renders as itself: no HTML, links, code or table breaks."""
    out = []
    words = " ".join(str(value).split())
    # triage's sentences embed numbers as computed; 2.9538591831018692 reads as 2.95
    words = _LONG_FLOAT.sub(lambda m: number(float(m.group())), words)
    for c in words:
        if c in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[c])
        elif c in _MD_SPECIAL:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def number(x: float | int, key: str = "") -> str:
    """A number for people: 3 significant digits (thousands grouped), its unit from ``key``."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float) and not math.isfinite(x):
        return _EMPTY
    unit = next((u for suffix, u in _UNITS if key.endswith(suffix)), "")
    if key == "confidence" or key.endswith("_confidence"):
        return f"{x:.2f}"
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e15):
        return f"{int(x):,}{unit}"
    if abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    if abs(x) >= 0.001:
        s = f"{x:.3g}"
        return (s if "e" not in s else f"{x:.3f}") + unit
    return f"{x:.2e}{unit}"


def when(value: datetime | date | str) -> str:
    """A timestamp as ``2024-10-09 03:00 UTC`` (minutes are what an incident timeline needs)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return text(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M") + " UTC"
    return value.isoformat()


def listing(items: Iterable[Any], key: str = "", sep: str = ", ") -> str:
    """A list in words: each item rendered, the first :data:`MAX_ITEMS`, then "and N more"."""
    values = list(items)
    shown = [value(v, key) for v in values[:MAX_ITEMS]]
    more = len(values) - len(shown)
    return sep.join(shown) + (f" and {more} more" if more > 0 else "") if shown else _EMPTY


def names(items: Iterable[Any], sep: str = ", ") -> str:
    """Names (features, lineage nodes) as code spans joined in words, "and N more" after
    :data:`MAX_ITEMS`; unlike :func:`listing`, a name with spaces is still a name."""
    values = list(items)
    shown = [code(v) for v in values[:MAX_ITEMS]]
    more = len(values) - len(shown)
    return sep.join(shown) + (f" and {more} more" if more > 0 else "") if shown else _EMPTY


def value(v: Any, key: str = "") -> str:
    """One value in a table cell: a number, time, name, text or a short list; never a repr."""
    if v is None or v == "" or v == [] or v == {}:
        return _EMPTY
    if isinstance(v, (bool, int, float)):
        return number(v, key)
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return value(v.item(), key)
    if isinstance(v, (datetime, date)):
        return when(v)
    if isinstance(v, str):
        if _ISO_TIME.fullmatch(v):
            return when(v)
        return code(v) if _PLAIN_NAME.fullmatch(v) or " " not in v.strip() else text(v)
    if isinstance(v, Mapping):
        return "; ".join(f"{text(k)}: {value(x, str(k))}" for k, x in list(v.items())[:MAX_ITEMS])
    if isinstance(v, (list, tuple, set, frozenset)):
        return listing(sorted(v, key=str) if isinstance(v, (set, frozenset)) else v, key)
    return text(v)


def _label(key: str) -> str:
    return text(key.replace("_", " "))


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts): the first :data:`MAX_COLUMNS` keys as columns."""
    if not rows:
        return ""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(str(k) for k in row))
        columns = list(seen)[:MAX_COLUMNS]
    lines = ["| " + " | ".join(_label(c) for c in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows[:MAX_ROWS]:
        lines.append("| " + " | ".join(value(row.get(c), c) for c in columns) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n*… {len(rows) - MAX_ROWS} more rows*")
    return "\n".join(lines)


def field_table(fields: Sequence[tuple[str, str]], header: tuple[str, str]) -> str:
    """A two-column table of already rendered ``(label, value)`` pairs."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_label(k)} | {v} |" for k, v in fields]
    return "\n".join(lines)


def evidence(ev: Mapping[str, Any]) -> str:
    """A finding's evidence: scalars and short lists in one table, each list of records
    (rankings, candidates) or mapping of records (per experiment) as a table of its own."""
    scalars: list[tuple[str, str]] = []
    tables: list[str] = []
    for key, v in ev.items():
        key = str(key)
        records = _records(v)
        if records is not None:
            if records:
                tables.append(f"**{_label(key)}**\n\n{table(records)}")
        elif v not in (None, "", [], {}):
            scalars.append((key, value(v, key)))
    parts = [field_table(scalars, ("evidence", "value"))] if scalars else []
    return "\n\n".join(parts + tables)


def _records(v: Any) -> list[dict[str, Any]] | None:
    """``v`` as table rows when it is a list of dicts or a dict of dicts, else None."""
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
        return [dict(x) for x in v]
    if isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values()):
        return [{"name": k, **dict(x)} for k, x in v.items()]
    return None


def finding(f: Any, level: int = 4, with_evidence: bool = True) -> str:
    """A finding: heading (title, status, confidence), what was checked, the decision, where
    the walk goes next and, when ``with_evidence``, its evidence as tables."""
    title = text(STEPS.get(f.step, {}).get("title") or f.step)
    conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
    lines = [
        f"{'#' * level} {title} · {text(f.status)}{conf}",
        "",
        f"- **Checked:** {text(f.checked)}",
        f"- **Decision:** {text(f.decision)}",
    ]
    if f.next_step:
        nxt = STEPS.get(f.next_step, {}).get("title") or f.next_step
        lines.append(f"- **Next:** {text(nxt)}")
    if with_evidence and f.evidence:
        from .findings import jsonable

        body = evidence(jsonable(f.evidence))
        if body:
            lines += ["", body]
    return "\n".join(lines)


def verdict_rows(v: Any) -> list[tuple[str, str]]:
    """The verdict's fields as rendered ``(field, value)`` rows, empty ones shown as —."""
    keys = ("metric", "model", "experiment", "snapshot", "layer")
    rows = [("cause", code(v.cause)), ("confidence", f"{float(v.confidence):.2f}")]
    rows.append(("onset", when(v.onset) if v.onset else _EMPTY))
    rows += [(k, code(getattr(v, k)) if getattr(v, k) else _EMPTY) for k in keys]
    rows.append(("features", names(v.features)))
    rows.append(("upstream", names(v.upstream, " → ")))
    return rows


def verdict(v: Any) -> str:
    """The verdict: its summary in words, then a field/value table."""
    head = f"**Verdict:** {text(v.summary or v.cause)}"
    return head + "\n\n" + field_table(verdict_rows(v), ("field", "value"))


def investigation(inv: Any, with_evidence: bool = False) -> str:
    """A whole walk: the verdict, then each step (evidence optional: the CLI's summary leaves
    it out, the notebooks show it step by step)."""
    lines = ["# hawknb triage", "", verdict(inv.verdict), "", "## Steps", ""]
    for f in inv.findings:
        lines += [finding(f, level=3, with_evidence=with_evidence), ""]
    return "\n".join(lines)


def verdict_html(v: Any) -> str:
    """The verdict table as HTML, for JupyterLab's rich display (every value escaped)."""
    import html

    def cell(key: str) -> str:
        val = getattr(v, key)
        if not val:
            return _EMPTY
        if key in ("features", "upstream"):
            sep = ", " if key == "features" else " → "
            items = [f"<code>{html.escape(str(x))}</code>" for x in val[:MAX_ITEMS]]
            more = len(val) - len(items)
            return sep.join(items) + (f" and {more} more" if more > 0 else "")
        if key == "onset":
            return html.escape(when(val))
        if key == "confidence":
            return f"{float(val):.2f}"
        return f"<code>{html.escape(str(val))}</code>"

    keys = ("cause", "confidence", "onset", "metric", "model", "experiment", "snapshot")
    keys += ("layer", "features", "upstream")
    rows = "".join(f"<tr><th>{k}</th><td>{cell(k)}</td></tr>" for k in keys)
    summary = html.escape(str(v.summary or v.cause))
    return (
        f"<p><strong>Verdict:</strong> {summary}</p>"
        f'<table class="hawknb-verdict"><tbody>{rows}</tbody></table>'
    )

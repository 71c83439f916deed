"""The one Markdown renderer: ticket-ready (rounded, units, names in code spans, no reprs) and
safe (no name renders as HTML, a link, code breaking out of its span or a new table cell).

Safety is checked on the *rendered* HTML, with the Markdown renderer nbconvert uses for the
report (mistune, raw HTML passed through, as in ``hawknb report``), not by looking for strings.
"""

from __future__ import annotations

import html
import re
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hostile import PAYLOADS

from hawknb.triage import markdown as md
from hawknb.triage.findings import Finding, Verdict
from hawknb.triage.investigation import Investigation

HOSTILE = [p.format(t=f"x{i}") for i, p in enumerate(PAYLOADS)] + [
    "a|b",
    "```",
    "`",
    "line\nbreak",
    "\u202eevil",
    "<",
    "&lt;script&gt;",
]


def render(markdown: str) -> str:
    """Markdown -> HTML exactly as the offline report renders it (nbconvert's filter)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


class _Elements(HTMLParser):
    """Every start tag and its attributes in rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(rendered: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Elements()
    p.feed(rendered)
    return p.tags


def assert_inert(rendered: str) -> None:
    """No tag a payload could have made: only the renderer's own structure tags, no event
    handlers, no links or images (none of the renderer's inputs here has one)."""
    allowed = {"p", "code", "table", "thead", "tbody", "tr", "th", "td", "strong", "em"}
    allowed |= {"ul", "li", "h1", "h2", "h3", "h4", "br", "hr", "pre", "a"}
    for tag, attrs in elements(rendered):
        assert tag in allowed, f"payload made a <{tag}>: {rendered[:300]}"
        assert not any(k.startswith("on") for k in attrs), attrs
        if tag == "a":
            # mistune's heading anchors only; never a javascript: link
            assert (attrs.get("href") or "").startswith("#"), attrs


# -- names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_code_span_renders_the_name_as_inert_text(name: str) -> None:
    out = render(f"the name {md.code(name)} here")
    assert_inert(out)
    spans = re.findall(r"<code>(.*?)</code>", out, re.S)
    assert len(spans) == 1
    # the span shows exactly the name (line breaks folded, as in any one-line cell)
    assert html.unescape(spans[0]).replace("\n", " ") == name.replace("\n", " ")


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_keeps_a_table_row_whole(name: str) -> None:
    out = render(md.field_table([("model", md.code(name)), ("cause", "x")], ("field", "value")))
    assert_inert(out)
    rows = re.findall(r"<tr>(.*?)</tr>", out, re.S)
    assert len(rows) == 3 and all(len(re.findall(r"<t[dh]", r)) == 2 for r in rows)


@pytest.mark.parametrize("name", HOSTILE)
def test_free_text_with_a_name_renders_as_itself(name: str) -> None:
    sentence = f"{name} dropped at the onset; see [the runbook] and *this*"
    out = render(f"- **Decision:** {md.text(sentence)}")
    assert_inert(out)
    shown = html.unescape(re.sub(r"<[^>]+>", "", out)).strip()
    assert " ".join(sentence.split()) in " ".join(shown.split())


def test_plain_names_stay_readable_in_a_ticket() -> None:
    assert md.code("click_tower") == "`click_tower`"
    assert md.code("src.advertiser_db") == "`src.advertiser_db`"
    assert md.text("click_tower's features a->b") == "click_tower's features a->b"


# -- numbers, times, lists ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "key", "shown"),
    [
        (2.9538591831018692, "drift_psi", "2.95"),
        (0.7672337583474103, "shift", "0.767"),
        (148.1510477495289, "shift", "148"),
        (12345.678, "rows", "12,346"),
        (0.00012345, "x", "1.23e-04"),
        (22.0, "severity", "22"),
        (3, "count", "3"),
        (0.105, "confidence", "0.10"),
        (0.9986146964022671, "confidence", "1.00"),
        (12.3456, "drop_pct", "12.3 %"),
        (3.5, "seconds", "3.5 s"),
        (float("nan"), "x", "—"),
        (True, "root", "yes"),
    ],
)
def test_numbers_are_rounded_with_units(value: float, key: str, shown: str) -> None:
    assert md.value(value, key) == shown


def test_long_floats_inside_sentences_are_rounded() -> None:
    assert md.text("mean moved by 148.1510477495289 sigmas") == "mean moved by 148 sigmas"
    assert md.text("version 1.2.3 and 2024-10-09") == "version 1.2.3 and 2024-10-09"


def test_times_lists_and_records() -> None:
    assert md.value("2024-10-09T03:00:00+00:00") == "2024-10-09 03:00 UTC"
    assert md.value(datetime(2024, 1, 2, 3, 4, tzinfo=timezone.utc)) == "2024-01-02 03:04 UTC"
    assert md.value(["a", "b"]) == "`a`, `b`"
    many = md.value([f"f{i}" for i in range(13)])
    assert many.endswith("and 3 more") and many.count("`") == 20
    assert md.value({"suspect": None, "notes": ["x y"]}) == "suspect: —; notes: x y"


# -- findings and the verdict ------------------------------------------------------------------
def _finding() -> Finding:
    return Finding(
        step="snapshot",
        checked="the rollout timeline of click_tower",
        decision="not the snapshot",
        confidence=0.8,
        next_step="features",
        evidence={
            "experiments": {
                "prod": {
                    "suspect": None,
                    "rolled_out": "1009-84b5",
                    "confidence": 0.105,
                    "notes": ["took over at the onset", "no same-hour overlap"],
                }
            },
            "top": [{"feature": "user_rate_1d", "drift_psi": 2.9538591831018692}],
            "degraded": ["candidate", "prod"],
            "onset": datetime(2024, 10, 9, 3, tzinfo=timezone.utc),
        },
    )


def test_finding_is_tables_not_json_or_reprs() -> None:
    out = _finding().to_markdown(level=4)
    assert out.startswith("#### Snapshot rollout at the onset? · done · confidence 0.80")
    assert "- **Next:** Features responsible for the prediction shift" in out
    # no Python repr or JSON of the evidence
    for bad in ("{'", "['", '{"', '["', '"confidence": 0.105, "note', "None", "0.105, "):
        assert bad not in out, bad
    assert "2.9538591831018692" not in out and "| `user_rate_1d` | 2.95 |" in out
    assert "| `prod` | — | `1009-84b5` | 0.10 | took over at the onset, no same-hour" in out
    assert "| degraded | `candidate`, `prod` |" in out
    assert "| onset | 2024-10-09 03:00 UTC |" in out
    assert_inert(render(out))


def _investigation(name: str) -> Investigation:
    verdict = Verdict(
        metric=name,
        onset=datetime(2024, 10, 9, 3, tzinfo=timezone.utc),
        model=name,
        cause="upstream_data",
        features=[name, "user_rate_1d"],
        upstream=[name, "tbl.daily"],
        confidence=0.9986,
        summary=f"{name}'s input features changed at the onset",
    )
    f = Finding(step="topline", checked=f"metrics: {name}", decision=f"{name} dropped")
    return Investigation(None, [f], verdict)


def test_investigation_markdown_is_a_ticket() -> None:
    out = _investigation("ctr").to_markdown()
    assert "| features | `ctr`, `user_rate_1d` |" in out
    assert "| upstream | `ctr` → `tbl.daily` |" in out
    assert "| confidence | 1.00 |" in out and "| onset | 2024-10-09 03:00 UTC |" in out
    assert "[" not in out.replace("\\[", "") and "{" not in out


@pytest.mark.parametrize("name", HOSTILE[:10])
def test_hostile_names_in_every_rendering(name: str) -> None:
    inv = _investigation(name)
    assert_inert(render(inv.to_markdown()))
    assert_inert(render(inv.findings[0].to_markdown()))
    assert_inert(md.verdict_html(inv.verdict))
    assert name in html.unescape(re.sub(r"<[^>]+>", "", md.verdict_html(inv.verdict)))


def test_show_verdict_is_a_table_not_a_json_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """JupyterLab picks application/json over HTML/Markdown; the verdict JSON rides under its
    own MIME type so that the table is what is shown (and the report still reads it)."""
    import IPython.display

    from hawknb.notebooks import VERDICT_MIME, show_verdict

    shown: list[dict] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    inv = _investigation("ctr")
    show_verdict(inv)
    (bundle,) = shown
    assert "application/json" not in bundle
    assert bundle[VERDICT_MIME] == inv.verdict.to_dict()
    assert (
        "<table" in bundle["text/html"] and "| cause | `upstream_data` |" in bundle["text/markdown"]
    )

"""Per-token view, terminal heatmap, HTML page, and the report functions."""

from __future__ import annotations

import io
import json
import math
from html.parser import HTMLParser

import pytest
from analysis_helpers import completion, p, tok, toks
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from logprobe.analysis import (
    BUCKETS,
    bucket,
    legend,
    print_report,
    render_html,
    render_terminal,
    report,
    token_view,
)
from logprobe.types import TokenLogprob, tokens_text

EVIL = "<script>alert('x')</script>"


def sample() -> list[TokenLogprob]:
    return [
        tok("Paris", p(0.95), [("Paris", p(0.95)), ("Lyon", p(0.03))], entropy=0.3),
        tok(" is", p(0.6), [(" is", p(0.6)), ("<b>", p(0.2))]),
        tok(" " + EVIL, p(0.01)),
        tok(" founded", None),
    ]


def test_bucket_edges() -> None:
    assert [bucket(x) for x in (1.0, 0.9, 0.89, 0.5, 0.2, 0.05, 0.049, 0.0)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        4,
        4,
    ]
    assert bucket(None) is None
    assert len(BUCKETS) == 5


def test_token_view_fields_and_values() -> None:
    view = token_view(sample())
    json.dumps(view, allow_nan=False)
    first = view[0]
    assert first["text"] == "Paris" and first["prob"] == pytest.approx(0.95)
    assert first["rank"] == 1 and first["entropy"] == 0.3 and first["entropy_exact"] is True
    assert first["bucket"] == 0 and first["color"] == BUCKETS[0][1]
    assert first["critical"] is None
    assert [a["token"] for a in first["alternatives"]] == ["Paris", "Lyon"]
    assert [a["chosen"] for a in first["alternatives"]] == [True, False]
    assert view[2]["low_span"] is True and view[2]["bucket"] == 4
    assert view[3]["prob"] is None and view[3]["bucket"] is None and view[3]["status"] == "unscored"
    assert [v["word"] for v in view][:2] == [0, 1]


def test_token_view_of_split_character() -> None:
    view = token_view([tok(" caf", -0.1), tok(b"\xc3", -0.2), tok(b"\xa9", -0.3)])
    assert [v["text"] for v in view] == [" caf", "é", ""]
    assert view[1]["bytes"] == [0xC3]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def test_html_escapes_everything_and_is_self_contained() -> None:
    page = render_html(completion(sample()), title="<t>")
    assert EVIL not in page and "<b>" not in page.replace("<body>", "")
    assert "&lt;script&gt;" in page and "&lt;t&gt;" in page
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags
    assert not any(t in parser.tags for t in ("link", "img", "iframe"))  # nothing external
    assert "src=" not in page and "http" not in page
    text = "".join(parser.data)
    assert EVIL in text  # shown as text
    assert "Lyon" in text and "p ≥ 0.9" in text  # alternatives and legend


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=8), max_size=8))
def test_html_never_lets_markup_through(pieces: list[str]) -> None:
    tokens = [tok(s, -0.5, [(s, -0.5), (s + "<i>", -1.0)]) for s in pieces]
    parser = _Collect()
    parser.feed(render_html(tokens))
    assert set(parser.tags) <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "div",
        "span",
        "table",
        "tr",
        "td",
        "u",
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=4), max_size=12))
def test_view_texts_rebuild_the_text(raws: list[bytes]) -> None:
    tokens = [tok(r, -0.1) for r in raws]
    view = token_view(tokens)
    json.dumps(view, allow_nan=False)
    joined = "".join(v["text"] for v in view)
    try:
        expected = b"".join(raws).decode("utf-8")
    except UnicodeDecodeError:  # invalid UTF-8: one U+FFFD per bad byte
        assert joined.replace("\ufffd", "") == tokens_text(tokens).replace("\ufffd", "")
        return
    assert joined == expected == tokens_text(tokens)


def test_terminal_rendering_keeps_text_and_colours() -> None:
    text = render_terminal(sample())
    assert text.plain == tokens_text(sample())
    styles = {str(span.style) for span in text.spans}
    assert f"black on {BUCKETS[0][1]}" in styles and f"black on {BUCKETS[4][1]}" in styles
    assert "p < 0.05" in legend().plain


def test_report_dict() -> None:
    r = report(completion(sample()))
    json.dumps(r, allow_nan=False)
    assert r["text"] == tokens_text(sample())
    assert r["decision"] == "reject" and r["policy"] == "default"  # mean logprob -1.72
    assert set(r) >= {"summary", "reasons", "low_spans", "critical", "confidence"}
    assert r["summary"]["n_unscored"] == 1


def test_print_report_output() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=120, color_system=None)
    d = print_report(console, completion(sample()), policy="strict")
    out = buf.getvalue()
    assert d.decision in ("review", "reject") and f"decision: {d.decision}" in out
    assert "mean logprob" in out and "legend" in out and EVIL in out
    assert "(policy strict)" in out
    for r in d.reasons:
        assert r.rule in out


def test_print_report_marks_entropy_bound() -> None:
    buf = io.StringIO()
    print_report(Console(file=buf, width=120, color_system=None), toks([("a", -0.1)]))
    assert "mean entropy (lower bound)" in buf.getvalue()
    assert math.isfinite(report(toks([("a", -0.1)]))["summary"]["mean_entropy"])

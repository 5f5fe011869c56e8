"""Show confidence: a JSON-able per-token view, a terminal heatmap (rich) and standalone HTML.

All three colour tokens by probability with the same :data:`BUCKETS`. The per-token view's
``text`` fields concatenate to exactly the decoded text (a character split over several tokens is
shown on the token holding its first byte). Everything a model produced is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from .._json import json_safe
from ..types import TokenLogprob
from .analyzer import Analysis, analyze
from .sequence import Analyzable
from .tokens import clean_alternatives, same_token

BUCKETS: tuple[tuple[float, str, str], ...] = (
    (0.9, "#1a9850", "p ≥ 0.9"),
    (0.5, "#a6d96a", "0.5 ≤ p < 0.9"),
    (0.2, "#fee08b", "0.2 ≤ p < 0.5"),
    (0.05, "#fdae61", "0.05 ≤ p < 0.2"),
    (0.0, "#d73027", "p < 0.05"),
)
"""(lower bound of probability, colour, label), most to least confident."""
UNKNOWN_COLOR = "#bdbdbd"


def bucket(prob: float | None) -> int | None:
    """Index into :data:`BUCKETS` for a probability (``None`` when unknown)."""
    if prob is None:
        return None
    return next(i for i, (lo, _, _) in enumerate(BUCKETS) if prob >= lo or i == len(BUCKETS) - 1)


def _as_analysis(obj: Analyzable | Analysis | Sequence[TokenLogprob]) -> Analysis:
    return obj if isinstance(obj, Analysis) else analyze(obj)


def _marks(a: Analysis) -> tuple[dict[int, str], set[int], dict[int, int]]:
    critical = {i: s.kind for s in a.critical for i in range(s.token_start, s.token_end)}
    low = {i for s in a.low_spans for i in range(s.token_start, s.token_end)}
    word = {i: n for n, w in enumerate(a.words) for i in range(w.token_start, w.token_end)}
    return critical, low, word


def token_view(obj: Analyzable | Analysis | Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    """One JSON-safe dict per token: ``index, text, token, bytes, logprob, prob, rank, margin,
    entropy, entropy_exact, status, bucket, color, word, critical, low_span, alternatives``
    (each alternative: ``token, bytes, logprob, prob, chosen``)."""
    a = _as_analysis(obj)
    critical, low, word = _marks(a)
    view = []
    for t, s, (c0, c1) in zip(a.tokens, a.stats, a.layout.token_chars, strict=True):
        b = bucket(s.prob)
        alts = [
            {
                "token": x.token,
                "bytes": None if x.bytes is None else list(x.bytes),
                "logprob": x.logprob,
                "prob": x.prob,
                "chosen": same_token(t, x),
            }
            for x in clean_alternatives(t.top_logprobs)
        ]
        view.append(
            {
                "index": s.index,
                "text": a.layout.text[c0:c1],
                "token": t.token,
                "bytes": None if t.bytes is None else list(t.bytes),
                "logprob": s.logprob,
                "prob": s.prob,
                "rank": s.rank,
                "margin": s.margin,
                "entropy": s.entropy,
                "entropy_exact": s.entropy_exact,
                "status": s.status,
                "bucket": b,
                "color": UNKNOWN_COLOR if b is None else BUCKETS[b][1],
                "word": word.get(s.index),
                "critical": critical.get(s.index),
                "low_span": s.index in low,
                "alternatives": alts,
            }
        )
    return json_safe(view)


def legend_items() -> list[tuple[str, str]]:
    """(colour, label) pairs of the legend, unknown last."""
    return [(c, label) for _, c, label in BUCKETS] + [(UNKNOWN_COLOR, "no logprob")]


# ---------------------------------------------------------------- terminal (rich)


def render_terminal(obj: Analyzable | Analysis | Sequence[TokenLogprob]) -> Text:
    """The text with each token's background coloured by its probability."""
    out = Text()
    for v in token_view(obj):
        style = f"black on {v['color']}"
        if v["critical"]:
            style += " underline"
        out.append(v["text"], style=style)
    return out


def legend() -> Text:
    """A one-line colour legend for :func:`render_terminal`."""
    out = Text("legend: ")
    for colour, label in legend_items():
        out.append(f" {label} ", style=f"black on {colour}")
        out.append(" ")
    out.append("(underlined: critical)", style="underline")
    return out


# ---------------------------------------------------------------- HTML

_CSS = """
.lp-view{font:15px/1.7 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;
 word-break:break-word}
.lp-tok{position:relative;border-radius:2px;color:#111;cursor:default}
.lp-tok.lp-crit{text-decoration:underline;text-decoration-thickness:2px}
.lp-tok.lp-low{outline:1px dashed #7f0000}
.lp-tip{display:none;position:absolute;left:0;top:1.6em;z-index:10;background:#fff;color:#111;
 border:1px solid #888;border-radius:4px;padding:6px 8px;white-space:nowrap;
 box-shadow:0 2px 6px rgba(0,0,0,.25);font-size:12px;line-height:1.4}
.lp-tok:hover .lp-tip,.lp-tok:focus .lp-tip{display:block}
.lp-tip table{border-collapse:collapse}.lp-tip td{padding:0 6px}
.lp-tip tr.lp-chosen{font-weight:bold}
.lp-legend{font:13px sans-serif;margin:0 0 12px}
.lp-legend span{display:inline-block;padding:1px 6px;margin-right:4px;border-radius:2px}
"""


def _visible(s: str) -> str:
    """Token text for the tooltip: whitespace made visible, then escaped."""
    return html.escape(s.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5"))


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def _tip(v: dict[str, Any]) -> str:
    head = (
        f"p={_num(v['prob'], '.4f')} logprob={_num(v['logprob'], '.3f')} "
        f"rank={v['rank'] if v['rank'] is not None else 'n/a'} "
        f"{'H' if v['entropy_exact'] else 'H≥'}={_num(v['entropy'], '.3f')}"
    )
    if v["critical"]:
        head += f" [{v['critical']}]"
    chosen = ' class="lp-chosen"'
    rows = "".join(
        f"<tr{chosen if a['chosen'] else ''}><td>{_visible(a['token'])}</td>"
        f"<td>{_num(a['prob'], '.4f')}</td><td>{_num(a['logprob'], '.3f')}</td></tr>"
        for a in v["alternatives"]
    )
    table = f"<table>{rows}</table>" if rows else "<div>no alternatives</div>"
    return f'<span class="lp-tip">{html.escape(head)}{table}</span>'


def _legend_html() -> str:
    items = "".join(
        f'<span style="background:{c}">{html.escape(label)}</span>' for c, label in legend_items()
    )
    return f'<div class="lp-legend">{items}<u>underlined</u>: critical; dashed: low span</div>'


def render_html_fragment(obj: Analyzable | Analysis | Sequence[TokenLogprob]) -> str:
    """The legend and the highlighted text as an HTML fragment (needs :data:`HTML_CSS`)."""
    parts = []
    for v in token_view(obj):
        cls = (
            "lp-tok" + (" lp-crit" if v["critical"] else "") + (" lp-low" if v["low_span"] else "")
        )
        parts.append(
            f'<span class="{cls}" tabindex="0" style="background:{v["color"]}">'
            f"{html.escape(v['text'])}{_tip(v)}</span>"
        )
    return f'{_legend_html()}<div class="lp-view">{"".join(parts)}</div>'


HTML_CSS = _CSS


def render_html(
    obj: Analyzable | Analysis | Sequence[TokenLogprob], *, title: str = "logprobe"
) -> str:
    """A self-contained HTML page (inline CSS, no script, no external resource) highlighting
    each token by probability, with its alternatives shown on hover or keyboard focus."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{render_html_fragment(obj)}</body></html>"
    )

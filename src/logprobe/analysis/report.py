"""A confidence report for one response, as a dict (``--json``) or printed with rich.

Used by ``logprobe generate`` / ``logprobe inspect``::

    from logprobe.analysis import print_report, report
    print_report(console, completion)                  # heatmap, summary, spans, decision
    data = report(completion, policy="strict")         # the same as a JSON-safe dict
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._json import json_safe
from ..types import TokenLogprob
from .gate import ConfidenceTransform, Decision, gate
from .policy import Policy
from .render import legend, render_terminal
from .sequence import Analyzable
from .spans import Span

_SHOWN = (
    ("tokens (scored)", "n_scored", "d"),
    ("mean logprob", "mean_logprob", ".3f"),
    ("sum logprob", "sum_logprob", ".3f"),
    ("perplexity", "perplexity", ".3f"),
    ("min token prob", "min_prob", ".4f"),
    ("10% quantile prob", "prob_q10", ".4f"),
    ("mean entropy", "mean_entropy", ".3f"),
    ("first-k mean logprob", "first_k_mean_logprob", ".3f"),
)
_COLOURS = {"publish": "bold green", "review": "bold yellow", "reject": "bold red"}


def report(
    obj: Analyzable | Sequence[TokenLogprob],
    *,
    policy: str | Policy = "default",
    confidence_transform: ConfidenceTransform | None = None,
) -> dict[str, Any]:
    """JSON-safe report: ``text, decision, policy, confidence, reasons, summary, low_spans,
    critical`` for a Completion (first choice), Choice, ScoredText or token list."""
    d = gate(obj, policy, confidence_transform=confidence_transform)
    return json_safe({"text": d.analysis.text, **d.to_dict()})


def _fmt(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _summary_table(d: Decision) -> Table:
    s = d.summary
    table = Table(title="sequence confidence", show_header=False, box=None, pad_edge=False)
    table.add_column("metric", style="dim")
    table.add_column("value", justify="right")
    for label, name, fmt in _SHOWN:
        value = getattr(s, name)
        if name == "mean_entropy" and s.entropy_kind and s.entropy_kind != "exact":
            label += " (lower bound)"
        table.add_row(label, _fmt(value, fmt))
    if d.confidence is not None:
        table.add_row("calibrated confidence", _fmt(d.confidence, ".3f"))
    return table


def _span_table(title: str, spans: Sequence[Span]) -> Table:
    table = Table(title=title, box=None, pad_edge=False)
    for col in ("kind", "text", "tokens", "prob", "min token prob"):
        table.add_column(col)
    for s in spans:
        table.add_row(
            s.kind,
            Text(repr(s.text)),
            f"{s.token_start}-{s.token_end}",
            _fmt(s.prob, ".4f"),
            _fmt(s.min_prob, ".4f"),
        )
    return table


def print_report(
    console: Console,
    obj: Analyzable | Sequence[TokenLogprob],
    *,
    policy: str | Policy = "default",
    confidence_transform: ConfidenceTransform | None = None,
) -> Decision:
    """Print the heatmap, legend, summary, flagged spans and gate decision; returns the decision."""
    d = gate(obj, policy, confidence_transform=confidence_transform)
    console.print(render_terminal(d.analysis))
    console.print(legend())
    console.print(_summary_table(d))
    flagged = [s for s in d.analysis.low_spans] + [
        s for s in d.analysis.critical if s.min_prob is not None and s.min_prob < 0.5
    ]
    if flagged:
        console.print(_span_table("flagged spans", flagged))
    head = Text("decision: ")
    head.append(d.decision, style=_COLOURS[d.decision])
    head.append(f"  (policy {d.policy})")
    console.print(head)
    for r in d.reasons:
        where = ", ".join(repr(s.text) for s in r.spans)
        console.print(
            Text(f"  - [{r.action}] {r.rule}: {r.message}" + (f" at {where}" if where else ""))
        )
    return d

"""Confidence analysis: token logprobs -> per-token and per-sequence numbers, words, spans,
critical tokens, a review gate and renderings (numpy/scipy/rich only).

Start with :func:`summarize` (numbers), :func:`gate` (publish / review / reject with reasons),
:func:`report` / :func:`print_report` (both at once), :func:`token_view` / :func:`render_html`
(viewers). Reference: docs/ANALYSIS.md.
"""

from __future__ import annotations

from .analyzer import Analysis, analyze
from .critical import KINDS as CRITICAL_KINDS
from .critical import critical_spans, find_critical
from .gate import ConfidenceTransform, Decision, Reason, decide, gate
from .policy import (
    BUILTIN_POLICIES,
    METRICS,
    Policy,
    Rule,
    get_policy,
    load_policy,
    policy_from_dict,
)
from .render import (
    BUCKETS,
    HTML_CSS,
    bucket,
    legend,
    render_html,
    render_html_fragment,
    render_terminal,
    token_view,
)
from .report import print_report, report
from .sequence import SequenceSummary, summarize
from .spans import Span, Word, low_confidence_spans, merge_words
from .tokens import EntropyBounds, TokenStats, clean_logprob, entropy_bounds, token_stats

__all__ = [
    "Analysis",
    "BUCKETS",
    "BUILTIN_POLICIES",
    "CRITICAL_KINDS",
    "ConfidenceTransform",
    "Decision",
    "EntropyBounds",
    "HTML_CSS",
    "METRICS",
    "Policy",
    "Reason",
    "Rule",
    "SequenceSummary",
    "Span",
    "TokenStats",
    "Word",
    "analyze",
    "bucket",
    "clean_logprob",
    "critical_spans",
    "decide",
    "entropy_bounds",
    "find_critical",
    "gate",
    "get_policy",
    "legend",
    "load_policy",
    "low_confidence_spans",
    "merge_words",
    "policy_from_dict",
    "print_report",
    "render_html",
    "render_html_fragment",
    "render_terminal",
    "report",
    "summarize",
    "token_stats",
    "token_view",
]

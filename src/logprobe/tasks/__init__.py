"""Tasks on logprobs: classify, choose, rerank, route, evaluate, compare.

Every task compares continuations of one shared prompt through ``engine.score_continuations``
(the prompt is prefilled once), so a distribution over labels, choices or candidates is exact,
multi-token options included. See ``docs/TASKS.md``.
"""

from __future__ import annotations

from .batch import BatchSummary, classify_dataset
from .choose import AllowedStep, ChooseResult, choose
from .classify import (
    ClassifyResult,
    RawDecision,
    classify,
    classify_signature,
    first_token_label_logprobs,
    supports_scoring,
)
from .compare import CompareReport, Segment, align, compare_texts
from .contextual import content_free_probs, fit_contextual_for
from .datasets import MCItem, TextRow, load_mc_items, parse_label_map, read_rows, subset, text_rows
from .evaluate import (
    Loglikelihood,
    MCReport,
    MCResult,
    Perplexity,
    loglikelihood,
    multiple_choice,
    rolling_perplexity,
    score_mc_item,
)
from .grammar import GrammarConstraint, make_constraint
from .prompting import DEFAULT_CLASSIFY_TEMPLATE, build_prompt
from .rerank import RerankResult, rerank
from .route import (
    RouteDecision,
    RoutedItem,
    RouteReport,
    SweepPoint,
    pick_threshold,
    route,
    route_classify,
    route_generate,
    route_report,
    sweep,
)
from .scoring import NORMALIZATIONS, ScoredOption, score_options, softmax

__all__ = [
    "DEFAULT_CLASSIFY_TEMPLATE",
    "NORMALIZATIONS",
    "AllowedStep",
    "BatchSummary",
    "ChooseResult",
    "ClassifyResult",
    "CompareReport",
    "GrammarConstraint",
    "Loglikelihood",
    "MCItem",
    "MCReport",
    "MCResult",
    "Perplexity",
    "RawDecision",
    "RerankResult",
    "RouteDecision",
    "RouteReport",
    "RoutedItem",
    "ScoredOption",
    "Segment",
    "SweepPoint",
    "TextRow",
    "align",
    "build_prompt",
    "choose",
    "classify",
    "classify_dataset",
    "classify_signature",
    "compare_texts",
    "content_free_probs",
    "first_token_label_logprobs",
    "fit_contextual_for",
    "load_mc_items",
    "loglikelihood",
    "make_constraint",
    "multiple_choice",
    "parse_label_map",
    "pick_threshold",
    "read_rows",
    "rerank",
    "rolling_perplexity",
    "route",
    "route_classify",
    "route_generate",
    "route_report",
    "score_mc_item",
    "score_options",
    "softmax",
    "subset",
    "supports_scoring",
    "sweep",
    "text_rows",
]

"""The store's read path: the queries and row mappings behind runs, responses and tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from ..types import TokenLogprob, Usage
from . import schema as S
from .codec import row_token
from .models import Run, StoredResponse


def runs_query() -> Any:
    r = S.responses.c
    stats = (
        select(
            r.run_id,
            func.count().label("n_responses"),
            func.avg(r.mean_logprob).label("avg_mean_logprob"),
        )
        .group_by(r.run_id)
        .subquery()
    )
    return select(S.runs, stats.c.n_responses, stats.c.avg_mean_logprob).outerjoin(
        stats, stats.c.run_id == S.runs.c.id
    )


def run_from_row(row: Row[Any]) -> Run:
    m = row._mapping
    avg = m["avg_mean_logprob"]
    return Run(
        id=int(m["id"]),
        name=m["name"],
        model=m["model"],
        model_version=m["model_version"],
        prompt_template=m["prompt_template"],
        params=m["params"] or {},
        tags=tuple(m["tags"] or ()),
        created_at=float(m["created_at"]),
        n_responses=int(m["n_responses"] or 0),
        mean_logprob=None if avg is None else float(avg),
    )


def responses_query() -> Any:
    q = S.requests.c
    return select(S.responses, q.prompt, q.messages, q.params, q.meta, q.latency_ms).join(
        S.requests, S.requests.c.id == S.responses.c.request_id
    )


def response_from_row(row: Row[Any], run_name: str) -> StoredResponse:
    m = row._mapping
    return StoredResponse(
        id=int(m["id"]),
        run=run_name,
        request_id=int(m["request_id"]),
        prompt=m["prompt"],
        messages=m["messages"],
        params=m["params"] or {},
        meta=m["meta"] or {},
        choice_index=int(m["choice_index"]),
        text=m["text"],
        finish_reason=m["finish_reason"],
        model=m["model"],
        provider=m["provider"],
        logprob_mode=m["logprob_mode"],
        completion_id=m["completion_id"],
        usage=Usage(int(m["usage_prompt_tokens"]), int(m["usage_completion_tokens"])),
        n_tokens=int(m["n_tokens"]),
        n_scored=int(m["n_scored"]),
        sum_logprob=m["sum_logprob"],
        mean_logprob=m["mean_logprob"],
        min_logprob=m["min_logprob"],
        perplexity=m["perplexity"],
        mean_entropy=m["mean_entropy"],
        n_low_confidence=int(m["n_low_confidence"]),
        correct=m["correct"],
        latency_ms=m["latency_ms"],
        created_at=float(m["created_at"]),
        has_prompt_tokens=bool(m["has_prompt_tokens"]),
    )


def load_tokens(
    conn: Connection,
    response_id: int,
    part: int,
    offset: int = 0,
    limit: int | None = None,
    alternatives: bool = True,
) -> list[TokenLogprob]:
    t = S.tokens.c
    q = (
        select(S.tokens)
        .where((t.response_id == response_id) & (t.part == part))
        .order_by(t.position)
    )
    if offset > 0:
        q = q.where(t.position >= offset)
    if limit is not None:
        q = q.limit(max(0, limit))
    return [row_token(r, with_alternatives=alternatives) for r in conn.execute(q)]


def with_tokens(conn: Connection, resp: StoredResponse) -> StoredResponse:
    toks = tuple(load_tokens(conn, resp.id, S.PART_COMPLETION))
    prompt_toks = (
        tuple(load_tokens(conn, resp.id, S.PART_PROMPT)) if resp.has_prompt_tokens else None
    )
    return replace(resp, tokens=toks, prompt_tokens=prompt_toks)

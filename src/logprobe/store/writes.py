"""The store's write path: run names, prompt fields, and the inserts of a recorded response.

``Store.record`` and ``Store.create_run`` call these inside one transaction: a run upserted by
name (a concurrent writer may have made it), a request row, one response row per choice with its
metrics, and the tokens bulk-inserted through the driver's executemany.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..errors import InvalidRequestError, StoreError
from ..types import Choice, Completion, TokenLogprob
from . import schema as S
from .codec import jsonable, token_tuple
from .metrics import compute

TOKEN_BATCH = 5000
MAX_RUN_NAME = 200
Prompt = str | Sequence[Mapping[str, Any]] | None


def check_run_name(name: object) -> str:
    """A valid run name, or :class:`InvalidRequestError` saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequestError("a run name must be a non-empty string", param="run")
    if len(name) > MAX_RUN_NAME:
        raise InvalidRequestError(f"run name longer than {MAX_RUN_NAME} characters", param="run")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequestError("run name contains control characters", param="run")
    return name


def prompt_fields(prompt: Prompt) -> tuple[str, list[dict[str, Any]] | None]:
    """``(text, messages)``: a chat prompt is kept as messages and as ``role: content`` lines
    (that text is what runs are aligned on when compared)."""
    if prompt is None:
        return "", None
    if isinstance(prompt, str):
        return prompt, None
    messages = [dict(m) for m in prompt]
    lines = []
    for m in messages:
        content = m.get("content")
        body = content if isinstance(content, str) else json.dumps(jsonable(content))
        lines.append(f"{m.get('role', 'user')}: {body}")
    return "\n".join(lines), jsonable(messages)


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- inserts (inside the caller's transaction) --------------------------------------------
def find_run_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(S.runs.c.id).where(S.runs.c.name == name)).scalar()


def insert_run(
    conn: Connection,
    name: str,
    model: str,
    model_version: str,
    prompt_template: str | None,
    params: Any,
    tags: Sequence[str],
) -> int:
    """Insert a run unless one of that name exists (a concurrent writer may have made it)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(S.runs)
        .values(
            name=name,
            model=model or "",
            model_version=model_version or "",
            prompt_template=prompt_template,
            params=jsonable(params) or {},
            tags=sorted({str(t) for t in tags}),
            created_at=time.time(),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(stmt)
    run_id = find_run_id(conn, name)
    if run_id is None:  # pragma: no cover - impossible after the upsert above
        raise StoreError(f"run {name!r} could not be created")
    return int(run_id)


def insert_choice(
    conn: Connection,
    run_id: int,
    request_id: int,
    completion: Completion,
    choice: Choice,
    correct: bool | None,
    now: float,
) -> int:
    m = compute(choice.tokens)
    response_id = inserted_id(
        conn,
        S.responses.insert().values(
            request_id=request_id,
            run_id=run_id,
            choice_index=choice.index,
            text=choice.text,
            finish_reason=choice.finish_reason,
            model=completion.model or "",
            provider=completion.provider or "",
            logprob_mode=completion.logprob_mode,
            completion_id=completion.id,
            usage_prompt_tokens=completion.usage.prompt_tokens,
            usage_completion_tokens=completion.usage.completion_tokens,
            has_prompt_tokens=choice.prompt_tokens is not None,
            correct=correct,
            created_at=now,
            **m.as_row(),
        ),
    )
    _insert_tokens(conn, response_id, S.PART_COMPLETION, choice.tokens)
    if choice.prompt_tokens:
        _insert_tokens(conn, response_id, S.PART_PROMPT, choice.prompt_tokens)
    return response_id


def inserted_id(conn: Connection, stmt: Any) -> int:
    key = conn.execute(stmt).inserted_primary_key
    if key is None:  # pragma: no cover - every table here has an integer primary key
        raise StoreError("the database returned no id for a new row")
    return int(key[0])


def _insert_tokens(
    conn: Connection, response_id: int, part: int, toks: Sequence[TokenLogprob]
) -> None:
    """Bulk insert through the driver's executemany (one row per token, batches of 5000)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO tokens ({', '.join(S.TOKEN_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(S.TOKEN_COLUMNS))})"
    )
    for start in range(0, len(toks), TOKEN_BATCH):
        chunk = toks[start : start + TOKEN_BATCH]
        rows = [token_tuple(response_id, part, start + i, t) for i, t in enumerate(chunk)]
        conn.exec_driver_sql(sql, rows)

"""Tables of the run store (SQLAlchemy Core, portable between SQLite and PostgreSQL).

    runs ──< requests ──< responses ──< tokens          (ON DELETE CASCADE all the way down)
      └──< artifacts                                     (files kept with a run: predictions…)
    migrations                                           (names of applied migrations, in order)

One row per token (``part`` 0 = generated tokens, 1 = prompt tokens); the token's alternatives
are compact JSON in the token row (see :mod:`logprobe.store.codec`). Derived metrics are
columns of ``responses``, computed once at insert.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

_MARK = "\x01"


class SafeText(TypeDecorator[str]):
    """Text that survives any database: NUL characters (PostgreSQL rejects them) and lone
    surrogates (not encodable as UTF-8) are stored as ``\\x01`` + JSON, and read back exactly."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return escape_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and value.startswith(_MARK):
            return str(json.loads(value[1:]))
        return value


def escape_text(value: str | None) -> str | None:
    """What :class:`SafeText` writes for ``value`` (for bulk inserts that bypass it)."""
    if value is None or not _needs_escape(value):
        return value
    return _MARK + json.dumps(value)


def _needs_escape(value: str) -> bool:
    if value.startswith(_MARK) or "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class JsonText(TypeDecorator[Any]):
    """A JSON value kept as ASCII text (never NaN/Infinity: those raise on write)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

metadata = MetaData()

migrations = Table(
    "migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", Double, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("model", SafeText, nullable=False),
    Column("model_version", SafeText, nullable=False),
    Column("prompt_template", SafeText),
    Column("params", JsonText, nullable=False),
    Column("tags", JsonText, nullable=False),
    Column("created_at", Double, nullable=False),
)

requests = Table(
    "requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("prompt", SafeText, nullable=False),
    Column("prompt_hash", String(64), nullable=False),
    Column("messages", JsonText),
    Column("params", JsonText, nullable=False),
    Column("meta", JsonText, nullable=False),
    Column("latency_ms", Double),
    Column("created_at", Double, nullable=False),
    Index("ix_requests_run_prompt", "run_id", "prompt_hash"),
)

responses = Table(
    "responses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", Id, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("choice_index", Integer, nullable=False),
    Column("text", SafeText, nullable=False),
    Column("finish_reason", String(32)),
    Column("model", SafeText, nullable=False),
    Column("provider", SafeText, nullable=False),
    Column("logprob_mode", String(16), nullable=False),
    Column("completion_id", SafeText),
    Column("usage_prompt_tokens", Integer, nullable=False),
    Column("usage_completion_tokens", Integer, nullable=False),
    Column("has_prompt_tokens", Boolean, nullable=False),
    Column("n_tokens", Integer, nullable=False),
    Column("n_scored", Integer, nullable=False),
    Column("sum_logprob", Double),
    Column("mean_logprob", Double),
    Column("min_logprob", Double),
    Column("perplexity", Double),
    Column("mean_entropy", Double),
    Column("n_low_confidence", Integer, nullable=False),
    Column("correct", Boolean),
    Column("created_at", Double, nullable=False),
    Index("ix_responses_run", "run_id", "id"),
    Index("ix_responses_request", "request_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("response_id", Id, ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True),
    Column("part", SmallInteger, primary_key=True),  # 0 generated, 1 prompt
    Column("position", Integer, primary_key=True),
    Column("token", SafeText, nullable=False),
    Column("bytes", LargeBinary),
    Column("token_id", Integer),
    Column("logprob", Double),
    Column("rank", Integer),
    Column("entropy", Double),
    Column("alternatives", Text),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("run_id", "name", name="uq_artifacts_run_name"),
)

PART_COMPLETION = 0
PART_PROMPT = 1
TOKEN_COLUMNS = (
    "response_id",
    "part",
    "position",
    "token",
    "bytes",
    "token_id",
    "logprob",
    "rank",
    "entropy",
    "alternatives",
)

"""The tables exactly as migrations m001 and m002 created them: frozen, never edited.

Migrations must not build tables from the current :mod:`~logprobe.store.schema`: once a later
migration adds a column there, an m001 reading it would create that column on a fresh database
and the later migration would then fail (or be skipped) there, while old databases take the
other path. So each migration's DDL is written down here as it was released (SQLAlchemy Core,
so the same definition compiles for SQLite and PostgreSQL). A new migration spells out its own
change (``ALTER TABLE ... ADD COLUMN``, or a new frozen table below), and ``schema`` is updated
to match; ``tests/store/test_migrations.py`` checks that the two agree.

Column types are the plain storage types: ``SafeText``/``JsonText`` in ``schema`` are ``TEXT``
columns that encode values in Python, so their DDL is ``Text``'s.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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

_Id = BigInteger().with_variant(Integer(), "sqlite")

v1 = MetaData()
"""Release 0.1.0: migrations table, m001 (runs, requests, responses, tokens), m002 (artifacts)."""

migrations_v1 = Table(
    "migrations",
    v1,
    Column("name", String(200), primary_key=True),
    Column("applied_at", Double, nullable=False),
)

runs_v1 = Table(
    "runs",
    v1,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("model", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("prompt_template", Text),
    Column("params", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

requests_v1 = Table(
    "requests",
    v1,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", _Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("prompt_hash", String(64), nullable=False),
    Column("messages", Text),
    Column("params", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("latency_ms", Double),
    Column("created_at", Double, nullable=False),
    Index("ix_requests_run_prompt", "run_id", "prompt_hash"),
)

responses_v1 = Table(
    "responses",
    v1,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("request_id", _Id, ForeignKey("requests.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", _Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("choice_index", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("finish_reason", String(32)),
    Column("model", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("logprob_mode", String(16), nullable=False),
    Column("completion_id", Text),
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

tokens_v1 = Table(
    "tokens",
    v1,
    Column("response_id", _Id, ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True),
    Column("part", SmallInteger, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("token", Text, nullable=False),
    Column("bytes", LargeBinary),
    Column("token_id", Integer),
    Column("logprob", Double),
    Column("rank", Integer),
    Column("entropy", Double),
    Column("alternatives", Text),
)

artifacts_v1 = Table(
    "artifacts",
    v1,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", _Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("run_id", "name", name="uq_artifacts_run_name"),
)

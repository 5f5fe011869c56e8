"""The SQL of the released migrations, frozen: never edited.

Migrations must not build tables from the current :mod:`~logprobe.store.schema`: once a later
migration adds a column there, an m001 reading it would create that column on a fresh database
and the later migration would then fail (or be skipped) there, while old databases take the
other path. So each released migration's DDL is written down here, as SQLAlchemy emitted it for
release 0.1.0. SQLite and PostgreSQL differ only in four type names, filled in per dialect. A new
migration spells out its own change (``ALTER TABLE ... ADD COLUMN``, or new SQL below), and
``schema`` is changed to match; ``tests/store/test_migrations.py`` checks that they agree.
"""

from __future__ import annotations

from ..errors import StoreError

TYPES = {
    # id: auto-increment key (SQLite: an INTEGER primary key is the rowid); ref: a column that
    # points to one; real: float column; blob: bytes column
    "sqlite": {"id": "INTEGER", "ref": "INTEGER", "real": "DOUBLE", "blob": "BLOB"},
    "postgresql": {"id": "BIGSERIAL", "ref": "BIGINT", "real": "DOUBLE PRECISION", "blob": "BYTEA"},
}

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    name VARCHAR(200) NOT NULL,
    applied_at {real} NOT NULL,
    PRIMARY KEY (name)
)
"""

M001 = """
CREATE TABLE runs (
    id {id} NOT NULL,
    name VARCHAR(200) NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    prompt_template TEXT,
    params TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (name)
);
CREATE TABLE requests (
    id {id} NOT NULL,
    run_id {ref} NOT NULL,
    prompt TEXT NOT NULL,
    prompt_hash VARCHAR(64) NOT NULL,
    messages TEXT,
    params TEXT NOT NULL,
    meta TEXT NOT NULL,
    latency_ms {real},
    created_at {real} NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_requests_run_prompt ON requests (run_id, prompt_hash);
CREATE TABLE responses (
    id {id} NOT NULL,
    request_id {ref} NOT NULL,
    run_id {ref} NOT NULL,
    choice_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    finish_reason VARCHAR(32),
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    logprob_mode VARCHAR(16) NOT NULL,
    completion_id TEXT,
    usage_prompt_tokens INTEGER NOT NULL,
    usage_completion_tokens INTEGER NOT NULL,
    has_prompt_tokens BOOLEAN NOT NULL,
    n_tokens INTEGER NOT NULL,
    n_scored INTEGER NOT NULL,
    sum_logprob {real},
    mean_logprob {real},
    min_logprob {real},
    perplexity {real},
    mean_entropy {real},
    n_low_confidence INTEGER NOT NULL,
    correct BOOLEAN,
    created_at {real} NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(request_id) REFERENCES requests (id) ON DELETE CASCADE,
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_responses_request ON responses (request_id);
CREATE INDEX ix_responses_run ON responses (run_id, id);
CREATE TABLE tokens (
    response_id {ref} NOT NULL,
    part SMALLINT NOT NULL,
    position INTEGER NOT NULL,
    token TEXT NOT NULL,
    bytes {blob},
    token_id INTEGER,
    logprob {real},
    rank INTEGER,
    entropy {real},
    alternatives TEXT,
    PRIMARY KEY (response_id, part, position),
    FOREIGN KEY(response_id) REFERENCES responses (id) ON DELETE CASCADE
)
"""

M002 = """
CREATE TABLE artifacts (
    id {id} NOT NULL,
    run_id {ref} NOT NULL,
    name VARCHAR(200) NOT NULL,
    media_type VARCHAR(100) NOT NULL,
    content {blob} NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_artifacts_run_name UNIQUE (run_id, name),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
)
"""


def statements(sql: str, dialect: str) -> list[str]:
    """The statements of ``sql`` with ``dialect``'s type names filled in."""
    types = TYPES.get(dialect)
    if types is None:
        raise StoreError(f"the run store supports SQLite and PostgreSQL, not {dialect}")
    return [s.strip() for s in sql.format(**types).split(";") if s.strip()]


__all__ = ["M001", "M002", "MIGRATIONS_TABLE", "TYPES", "statements"]

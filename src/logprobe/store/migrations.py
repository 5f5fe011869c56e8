"""Schema migrations: registered in order, each applied once and recorded in ``migrations``.

A migration is a function of an open write transaction. :func:`migrate` applies the missing
ones in registration order, all in one transaction, holding a lock so that several processes
opening a fresh store at once apply each migration exactly once (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-level advisory lock). Append new migrations at the end; never edit
or reorder applied ones. Migrations never read the current :mod:`~logprobe.store.schema`:
m001 and m002 run the SQL frozen in :mod:`~logprobe.store.frozen` as released, and later
ones spell out their own DDL (why, and why not Alembic: docs/STORE.md, "Migrations").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, Engine

from . import frozen, schema

Migration = Callable[[Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []
_ADVISORY_LOCK_KEY = 0x6C6F6770  # "logp"


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (its name is the function's name)."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def run_sql(conn: Connection, sql: str) -> None:
    """Execute frozen DDL (:mod:`.frozen`) on ``conn`` in its dialect."""
    for statement in frozen.statements(sql, conn.dialect.name):
        conn.exec_driver_sql(statement)


@migration
def m001_runs_requests_responses_tokens(conn: Connection) -> None:
    run_sql(conn, frozen.M001)


@migration
def m002_artifacts(conn: Connection) -> None:
    run_sql(conn, frozen.M002)


def applied(conn: Connection) -> list[str]:
    """Names of the applied migrations (empty for a fresh database)."""
    if not inspect(conn).has_table("migrations"):
        return []
    rows = conn.execute(select(schema.migrations.c.name)).scalars()
    return list(rows)


def pending(conn: Connection) -> list[str]:
    done = set(applied(conn))
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(engine: Engine, write_engine: Engine) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty if up to date)."""
    with engine.connect() as conn:
        if not pending(conn):
            return []
    with write_engine.begin() as conn:
        _lock(conn)
        run_sql(conn, frozen.MIGRATIONS_TABLE)
        done = set(applied(conn))
        now: list[str] = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(conn)
            conn.execute(schema.migrations.insert().values(name=name, applied_at=time.time()))
            now.append(name)
        return now


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})


def registered() -> list[str]:
    return [name for name, _ in MIGRATIONS]

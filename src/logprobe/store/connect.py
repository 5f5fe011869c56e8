"""Where the store lives and how to reach it: URL resolution, SQLite pragmas, one-line errors.

Resolution order for the database URL: an explicit ``url`` (``--db``), then ``$LOGPROBE_DB``,
then the SQLite file ``$LOGPROBE_HOME/logprobe.db`` (``LOGPROBE_HOME`` defaults to
``~/.logprobe``). A bare path is taken as a SQLite file; ``postgresql://`` means psycopg 3.

SQLite runs in WAL mode with a busy timeout; every write transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead of failing half-way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from .._paths import logprobe_home
from ..errors import StoreError

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for the lock before giving up."""

DB_FILENAME = "logprobe.db"
WRITE_OPTION = "logprobe_write"
"""Execution option that marks a connection whose transactions write (``BEGIN IMMEDIATE``)."""

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@/]*@")


def default_url() -> str:
    """``$LOGPROBE_DB`` if set, else the SQLite file in :func:`logprobe_home`."""
    env = os.environ.get("LOGPROBE_DB")
    if env:
        return env
    return f"sqlite:///{logprobe_home() / DB_FILENAME}"


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***`` (fit for error messages)."""
    return _PASSWORD.sub(r"\1***@", url)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception (or of the DB-API error it wraps)."""
    inner = getattr(exc, "orig", None) or exc
    for line in str(inner).splitlines():
        if line.strip():
            return line.strip()
    return type(inner).__name__


def resolve_url(url: str | None = None) -> URL:
    """Parse ``url`` (or the default); raises :class:`StoreError` for an unusable one."""
    raw = url or default_url()
    if "://" not in raw:
        raw = f"sqlite:///{Path(raw).expanduser().resolve()}"
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise StoreError(
            f"invalid database URL {mask(raw)!r}: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {backend!r} in {mask(raw)!r}: use sqlite or postgresql"
        )
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: URL) -> Engine:
    """A SQLAlchemy engine for ``url`` with the store's connection settings."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _postgres_engine(url)


def _sqlite_engine(url: URL) -> Engine:
    memory = is_memory(url)
    if not memory:
        path = Path(str(url.database)).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"cannot create the store directory {path.parent}: {e.strerror}"
            ) from None
    kw: dict[str, Any] = {
        "connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    }
    if memory:
        kw["poolclass"] = StaticPool
    engine = create_engine(url, **kw)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own: we do
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not memory:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    try:
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (ModuleNotFoundError, NoSuchModuleError):
        raise StoreError(
            "PostgreSQL support needs psycopg 3: pip install 'logprobe[postgres]'"
        ) from None

"""Launcher for the full-disk fault test: ``python serve_full_disk.py PORT SQLITE_PATH RUN``.

Serves ``logprobe serve --log RUN`` on a SQLite store whose every new connection gets
``PRAGMA max_page_count`` = the file's current size, so any write that needs one more page
fails with SQLITE_FULL ("database or disk is full"), exactly as on a full disk.
"""

from __future__ import annotations

import sys

import uvicorn
from sqlalchemy import event

from logprobe.engines.llamacpp import LlamaEngine
from logprobe.server import create_app
from logprobe.store import Store


def main() -> None:
    port, path, run = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    store = Store.open(f"sqlite:///{path}")
    store.create_run(run, exist_ok=True)
    engine_ = store._engine  # the SQLAlchemy engine behind the store
    with engine_.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(engine_, "connect")
    def _full(dbapi_conn: object, _record: object) -> None:
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cur.execute(f"PRAGMA max_page_count = {pages}")
        cur.close()

    engine_.dispose()  # every connection from now on sees the full disk
    print(f"store {path} capped at {pages} pages", flush=True)
    engine = LlamaEngine(n_threads=2, n_ctx=2048, n_seq_max=4)
    app = create_app(engine, store=store, run=run)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    main()

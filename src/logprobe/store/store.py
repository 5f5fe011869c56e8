"""The run store: every run kept, with every token's logprob, alternatives and bytes.

    store = Store.open()                       # $LOGPROBE_DB or $LOGPROBE_HOME/logprobe.db
    store.create_run("smol-greedy", model="SmolLM2-135M", params={"temperature": 0})
    store.record("smol-greedy", "2+2=", completion, params)   # thread-safe, one transaction
    store.runs(); store.responses("smol-greedy"); store.compare("smol-greedy", "smol-t07")

Every method runs in its own transaction and raises :class:`~logprobe.errors.StoreError`
(one line, password masked) when the database cannot be reached or written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import InvalidRequestError, StoreError
from ..types import Choice, Completion, ScoredText, TokenLogprob, Usage
from . import schema as S
from .codec import jsonable
from .connect import WRITE_OPTION, first_line, make_engine, resolve_url
from .migrations import migrate
from .models import Recorded, Run, RunNotFoundError, StoredResponse

# The read and write helpers live in .queries and .writes; the names they had here stay
# importable from this module.
from .queries import load_tokens as _load_tokens
from .queries import response_from_row as _response_from_row
from .queries import responses_query as _responses_query
from .queries import run_from_row as _run_from_row
from .queries import runs_query as _runs_query
from .queries import with_tokens as _with_tokens
from .writes import MAX_RUN_NAME as MAX_RUN_NAME
from .writes import TOKEN_BATCH as TOKEN_BATCH
from .writes import Prompt as Prompt
from .writes import _insert_tokens as _insert_tokens
from .writes import check_run_name as check_run_name
from .writes import find_run_id as _run_id
from .writes import insert_choice as _insert_choice
from .writes import insert_run as _insert_run
from .writes import inserted_id as _inserted_id
from .writes import prompt_fields as prompt_fields
from .writes import prompt_hash as prompt_hash


class Store:
    """A run store on SQLite (default) or PostgreSQL. Thread-safe; open with :meth:`open`."""

    def __init__(self, engine: Engine, url: URL):
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self.url = url.render_as_string(hide_password=True)
        self.dialect = engine.dialect.name

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Open (creating and migrating when needed) the store at ``url`` or the default."""
        resolved = resolve_url(url)
        engine = make_engine(resolved)
        store = cls(engine, resolved)
        try:
            migrate(engine, store._write_engine)
        except SQLAlchemyError as e:
            engine.dispose()
            raise StoreError(f"cannot open store {store.url}: {first_line(e)}") from None
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextmanager
    def transaction(
        self, *, write: bool = True, action: str = "store access"
    ) -> Iterator[Connection]:
        """One transaction (committed on success, rolled back on any error)."""
        engine = self._write_engine if write else self._engine
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"{action} failed in store {self.url}: {first_line(e)}") from None

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        *,
        model: str = "",
        model_version: str = "",
        prompt_template: str | None = None,
        params: Mapping[str, Any] | Any = None,
        tags: Sequence[str] = (),
        exist_ok: bool = False,
    ) -> Run:
        """Create a run (``StoreError`` if the name is taken, unless ``exist_ok``)."""
        name = check_run_name(name)
        with self.transaction(action=f"creating run {name!r}") as conn:
            if _run_id(conn, name) is not None:
                if not exist_ok:
                    raise StoreError(f"a run named {name!r} already exists")
            else:
                _insert_run(conn, name, model, model_version, prompt_template, params, tags)
        return self.run(name)

    def create_run_in(
        self,
        conn: Connection,
        name: str,
        *,
        model: str = "",
        model_version: str = "",
        prompt_template: str | None = None,
        params: Any = None,
        tags: Sequence[str] = (),
    ) -> int:
        """Create run ``name`` unless it exists, inside the caller's transaction; its id."""
        return _insert_run(
            conn, check_run_name(name), model, model_version, prompt_template, params, tags
        )

    def run(self, name: str) -> Run:
        """The run called ``name``; :class:`RunNotFoundError` naming the known runs if absent."""
        with self.transaction(write=False, action="reading runs") as conn:
            rows = conn.execute(_runs_query().where(S.runs.c.name == name)).all()
            if not rows:
                known = conn.execute(select(S.runs.c.name).order_by(S.runs.c.name)).scalars().all()
        if not rows:
            hint = ", ".join(repr(k) for k in known[:10]) or "none yet"
            raise RunNotFoundError(f"no run named {name!r} (known runs: {hint})", param="run")
        return _run_from_row(rows[0])

    def runs(
        self, *, tag: str | None = None, model: str | None = None, search: str | None = None
    ) -> list[Run]:
        """All runs, newest first; optionally those with ``tag``, ``model`` or a name match."""
        with self.transaction(write=False, action="reading runs") as conn:
            rows = conn.execute(_runs_query().order_by(S.runs.c.id.desc())).all()
        out = [_run_from_row(r) for r in rows]
        if tag is not None:
            out = [r for r in out if tag in r.tags]
        if model is not None:
            out = [r for r in out if model.lower() in r.model.lower()]
        if search:
            out = [r for r in out if search.lower() in r.name.lower()]
        return out

    def delete_run(self, name: str) -> None:
        run = self.run(name)
        with self.transaction(action=f"deleting run {name!r}") as conn:
            conn.execute(S.runs.delete().where(S.runs.c.id == run.id))

    # -- recording ----------------------------------------------------------------------------
    def record(
        self,
        run: str | Run,
        prompt: Prompt,
        completion: Completion,
        params: Mapping[str, Any] | Any = None,
        *,
        correct: bool | None = None,
        meta: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> Recorded:
        """Store one request and its response (one row per choice, one per token), in one
        transaction. ``run`` is a :class:`Run` or a name (created on first use with the
        completion's model). Safe to call from many threads and processes at once."""
        if not isinstance(completion, Completion):
            raise InvalidRequestError(
                f"record() needs a Completion, got {type(completion).__name__}", param="completion"
            )
        name = run.name if isinstance(run, Run) else check_run_name(run)
        with self.transaction(action=f"recording into run {name!r}") as conn:
            return self.record_in(
                conn,
                name,
                prompt,
                completion,
                params,
                correct=correct,
                meta=meta,
                latency_ms=latency_ms,
            )

    def record_in(
        self,
        conn: Connection,
        run: str,
        prompt: Prompt,
        completion: Completion,
        params: Mapping[str, Any] | Any = None,
        *,
        correct: bool | None = None,
        meta: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> Recorded:
        """:meth:`record` inside a transaction the caller holds (used by imports)."""
        run_id = _run_id(conn, run)
        if run_id is None:
            run_id = _insert_run(conn, run, completion.model, "", None, params, ())
        text, messages = prompt_fields(prompt)
        now = time.time()
        request_id = _inserted_id(
            conn,
            S.requests.insert().values(
                run_id=run_id,
                prompt=text,
                prompt_hash=prompt_hash(text),
                messages=messages,
                params=jsonable(params) or {},
                meta=jsonable(meta) or {},
                latency_ms=latency_ms,
                created_at=now,
            ),
        )
        ids = tuple(
            _insert_choice(conn, run_id, request_id, completion, choice, correct, now)
            for choice in completion.choices
        )
        return Recorded(request_id=int(request_id), response_ids=ids)

    def record_scored(
        self, run: str | Run, scored: ScoredText, params: Mapping[str, Any] | Any = None, **kw: Any
    ) -> Recorded:
        """Store a teacher-forced score (``engine.score``) as a response whose tokens are the
        scored text's."""
        choice = Choice(text=scored.text, tokens=scored.tokens, finish_reason=None)
        usage = Usage(scored.prompt_token_count, len(scored.tokens))
        completion = Completion(choices=(choice,), usage=usage)
        return self.record(run, scored.prompt, completion, params, **kw)

    def set_correct(self, response_id: int, correct: bool | None) -> None:
        """Label a response correct/incorrect (used by calibration pages)."""
        with self.transaction(action="labelling a response") as conn:
            n = conn.execute(
                S.responses.update().where(S.responses.c.id == response_id).values(correct=correct)
            ).rowcount
        if not n:
            raise RunNotFoundError(f"no response with id {response_id}", param="response")

    # -- reading responses --------------------------------------------------------------------
    def count_responses(self, run: str | Run) -> int:
        run_id = self._resolve(run).id
        with self.transaction(write=False, action="counting responses") as conn:
            q = select(func.count()).select_from(S.responses).where(S.responses.c.run_id == run_id)
            return int(conn.execute(q).scalar_one())

    def responses(
        self,
        run: str | Run,
        *,
        offset: int = 0,
        limit: int | None = None,
        with_tokens: bool = False,
    ) -> list[StoredResponse]:
        """The run's responses in insertion order (tokens only when ``with_tokens``)."""
        r = self._resolve(run)
        q = _responses_query().where(S.responses.c.run_id == r.id).order_by(S.responses.c.id)
        q = q.offset(max(0, offset))
        if limit is not None:
            q = q.limit(max(0, limit))
        with self.transaction(write=False, action="reading responses") as conn:
            rows = conn.execute(q).all()
            out = [_response_from_row(row, r.name) for row in rows]
            if with_tokens:
                out = [_with_tokens(conn, resp) for resp in out]
        return out

    def response(self, response_id: int, *, with_tokens: bool = True) -> StoredResponse:
        """One response by id (with all its tokens unless ``with_tokens=False``)."""
        q = (
            _responses_query()
            .add_columns(S.runs.c.name.label("run_name"))
            .join(S.runs, S.runs.c.id == S.responses.c.run_id)
            .where(S.responses.c.id == response_id)
        )
        with self.transaction(write=False, action="reading a response") as conn:
            row = conn.execute(q).first()
            if row is None:
                raise RunNotFoundError(f"no response with id {response_id}", param="response")
            resp = _response_from_row(row, row._mapping["run_name"])
            return _with_tokens(conn, resp) if with_tokens else resp

    def tokens(
        self,
        response_id: int,
        *,
        prompt: bool = False,
        offset: int = 0,
        limit: int | None = None,
        alternatives: bool = True,
    ) -> list[TokenLogprob]:
        """A page of a response's tokens (``prompt=True``: its prompt tokens)."""
        with self.transaction(write=False, action="reading tokens") as conn:
            return _load_tokens(
                conn,
                response_id,
                S.PART_PROMPT if prompt else S.PART_COMPLETION,
                offset,
                limit,
                alternatives,
            )

    def count_tokens(self, response_id: int, *, prompt: bool = False) -> int:
        t = S.tokens.c
        part = S.PART_PROMPT if prompt else S.PART_COMPLETION
        q = select(func.count()).where((t.response_id == response_id) & (t.part == part))
        with self.transaction(write=False, action="counting tokens") as conn:
            return int(conn.execute(q).scalar_one())

    def _resolve(self, run: str | Run) -> Run:
        return run if isinstance(run, Run) else self.run(run)

    # -- artifacts ----------------------------------------------------------------------------
    def add_artifact(
        self,
        run: str | Run,
        name: str,
        data: bytes | str,
        media_type: str = "application/octet-stream",
    ) -> None:
        """Keep a file with a run (replacing one of the same name), e.g. predictions.jsonl."""
        r = self._resolve(run)
        content = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self.transaction(action=f"attaching {name!r} to run {r.name!r}") as conn:
            conn.execute(
                S.artifacts.delete().where(
                    (S.artifacts.c.run_id == r.id) & (S.artifacts.c.name == name)
                )
            )
            conn.execute(
                S.artifacts.insert().values(
                    run_id=r.id,
                    name=name,
                    media_type=media_type,
                    content=content,
                    created_at=time.time(),
                )
            )

    def artifact(self, run: str | Run, name: str) -> bytes:
        r = self._resolve(run)
        with self.transaction(write=False, action="reading an artifact") as conn:
            data = conn.execute(
                select(S.artifacts.c.content).where(
                    (S.artifacts.c.run_id == r.id) & (S.artifacts.c.name == name)
                )
            ).scalar()
        if data is None:
            raise RunNotFoundError(f"run {r.name!r} has no artifact named {name!r}", param="name")
        return bytes(data)

    def artifacts(self, run: str | Run) -> list[dict[str, Any]]:
        r = self._resolve(run)
        a = S.artifacts.c
        q = (
            select(a.name, a.media_type, func.length(a.content).label("size"), a.created_at)
            .where(a.run_id == r.id)
            .order_by(a.name)
        )
        with self.transaction(write=False, action="listing artifacts") as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    # -- comparing ----------------------------------------------------------------------------
    def compare(self, run_a: str | Run, run_b: str | Run, *, token_limit: int = 20) -> Any:
        """Per-prompt and per-token confidence differences (see :mod:`.compare`)."""
        from .compare import compare_runs

        return compare_runs(self, run_a, run_b, token_limit=token_limit)

"""The run store: every run kept, with every token's logprob, alternatives and bytes.

    store = Store.open()                       # $LOGPROBE_DB or $LOGPROBE_HOME/logprobe.db
    store.create_run("smol-greedy", model="SmolLM2-135M", params={"temperature": 0})
    store.record("smol-greedy", "2+2=", completion, params)   # thread-safe, one transaction
    store.runs(); store.responses("smol-greedy"); store.compare("smol-greedy", "smol-t07")

Every method runs in its own transaction and raises :class:`~logprobe.errors.StoreError`
(one line, password masked) when the database cannot be reached or written.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from ..errors import InvalidRequestError, StoreError
from ..types import Choice, Completion, ScoredText, TokenLogprob, Usage
from . import schema as S
from .codec import jsonable, row_token, token_tuple
from .connect import WRITE_OPTION, first_line, make_engine, resolve_url
from .metrics import compute
from .migrations import migrate
from .models import Recorded, Run, RunNotFoundError, StoredResponse

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


# -- row helpers ------------------------------------------------------------------------------
def _run_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(S.runs.c.id).where(S.runs.c.name == name)).scalar()


def _insert_run(
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
    run_id = _run_id(conn, name)
    if run_id is None:  # pragma: no cover - impossible after the upsert above
        raise StoreError(f"run {name!r} could not be created")
    return int(run_id)


def _insert_choice(
    conn: Connection,
    run_id: int,
    request_id: int,
    completion: Completion,
    choice: Choice,
    correct: bool | None,
    now: float,
) -> int:
    m = compute(choice.tokens)
    response_id = _inserted_id(
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


def _inserted_id(conn: Connection, stmt: Any) -> int:
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


def _runs_query() -> Any:
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


def _run_from_row(row: Row[Any]) -> Run:
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


def _responses_query() -> Any:
    q = S.requests.c
    return select(S.responses, q.prompt, q.messages, q.params, q.meta, q.latency_ms).join(
        S.requests, S.requests.c.id == S.responses.c.request_id
    )


def _response_from_row(row: Row[Any], run_name: str) -> StoredResponse:
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


def _load_tokens(
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


def _with_tokens(conn: Connection, resp: StoredResponse) -> StoredResponse:
    from dataclasses import replace

    toks = tuple(_load_tokens(conn, resp.id, S.PART_COMPLETION))
    prompt_toks = (
        tuple(_load_tokens(conn, resp.id, S.PART_PROMPT)) if resp.has_prompt_tokens else None
    )
    return replace(resp, tokens=toks, prompt_tokens=prompt_toks)

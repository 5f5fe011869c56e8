"""Import saved provider responses into a run: JSON (one response or a list), JSONL (one per
line), or one saved stream (a JSON list of chunks, or Server-Sent Events text).

Each item is either a response on its own (any shape :func:`logprobe.normalize.normalize`
reads, a neutral :class:`~logprobe.types.Completion` dict included), or a wrapper object::

    {"prompt": "2+2=" | "messages": [...] | "request": {...}, "response": {...},
     "params": {...}, "correct": true, "meta": {...}}

OpenAI Batch API output lines (``{"custom_id", "response": {"status_code", "body"}}``) are
unwrapped; their ``custom_id`` stands in for the prompt when no prompt is given.

The whole import is one transaction: by default any malformed item aborts it and nothing is
written; with ``skip_invalid`` the valid items are written and the bad ones reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError, LogprobeError, NormalizeError
from ..types import Completion
from .codec import jsonable

if TYPE_CHECKING:
    from .store import Prompt, Store

JSONL_SUFFIXES = (".jsonl", ".ndjson")
_PROMPT_KEYS = ("prompt", "messages", "input")


@dataclass(frozen=True, slots=True)
class ImportIssue:
    where: str  # "line 3" or "item 2"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportItem:
    prompt: Prompt
    completion: Completion
    params: dict[str, Any] = field(default_factory=dict)
    correct: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportReport:
    run: str
    imported: int
    n_tokens: int
    skipped: tuple[ImportIssue, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "imported": self.imported,
            "n_tokens": self.n_tokens,
            "skipped": [str(i) for i in self.skipped],
            "seconds": round(self.seconds, 3),
        }


def _no_nan(name: str) -> float:
    if name == "-Infinity":
        return float("-inf")  # clamped to the logprob floor when stored
    raise ValueError(f"{name} is not a valid JSON number")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_nan)


def read_items(
    path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` for each item; ``value`` is an :class:`ImportIssue` when the item is
    not valid JSON. Raises :class:`InvalidRequestError` when the file cannot be read at all."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidRequestError(f"cannot read {path}: {e.strerror}", param="file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidRequestError(
            f"{path} is not UTF-8 text (byte {e.start})", param="file"
        ) from None
    if not text.strip():
        return
    if text.lstrip().startswith(("data:", "event:")):  # a saved Server-Sent Events stream
        if progress:
            progress(len(raw))
        yield "file", text
        return
    if path.suffix.lower() not in JSONL_SUFFIXES:
        try:
            doc = _loads(text)
        except json.JSONDecodeError as e:
            if not e.msg.startswith("Extra data"):
                yield (
                    "file",
                    ImportIssue(
                        "file", f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})"
                    ),
                )
                return
        except ValueError as e:
            yield "file", ImportIssue("file", str(e))
            return
        else:
            items = doc if isinstance(doc, list) and not _is_stream(doc) else [doc]
            for i, item in enumerate(items, 1):
                yield f"item {i}", item
            if progress:
                progress(len(raw))
            return
    yield from _jsonl(text, progress)


def _jsonl(text: str, progress: Callable[[int], None] | None) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 is valid JSON
        if progress:
            progress(len(line.encode("utf-8", "surrogatepass")) + 1)
        if not line.strip():
            continue
        try:
            yield f"line {n}", _loads(line)
        except json.JSONDecodeError as e:
            yield f"line {n}", ImportIssue(f"line {n}", f"invalid JSON: {e.msg} (column {e.colno})")
        except ValueError as e:
            yield f"line {n}", ImportIssue(f"line {n}", str(e))


def to_completion(payload: Any, provider: str | None = None) -> Completion:
    """A Completion from any provider response :func:`logprobe.normalize.normalize` reads
    (a neutral Completion dict included; stream chunks as a list or SSE text too)."""
    from ..normalize import normalize  # here: the normalizer's parsers load only for imports

    return normalize(payload, provider)


def _is_stream(items: list[Any]) -> bool:
    """A list of streamed chunks/events (one response), not a list of responses."""
    first = items[0] if items else None
    if not isinstance(first, Mapping):
        return False
    kind = str(first.get("object") or first.get("type") or "")
    return kind.endswith(".chunk") or kind.startswith("response.")


def to_item(obj: Any, provider: str | None = None) -> ImportItem:
    """Read one item (a bare response or a wrapper with prompt/params/correct/meta)."""
    if isinstance(obj, (list, str)):  # a stream: chunks, or SSE text
        return ImportItem(prompt=None, completion=to_completion(obj, provider))
    if not isinstance(obj, Mapping):
        raise NormalizeError(f"expected a JSON object, got {type(obj).__name__}")
    if "response" not in obj or not isinstance(obj["response"], (Mapping, list)):
        return ImportItem(prompt=None, completion=to_completion(obj, provider))
    response = obj["response"]
    if isinstance(response, Mapping) and "body" in response and "status_code" in response:
        # an OpenAI Batch API output line
        if response["status_code"] != 200:
            raise NormalizeError(f"batch request failed with status {response['status_code']}")
        response = response["body"]
    raw_request = obj.get("request")
    request: Mapping[str, Any] = raw_request if isinstance(raw_request, Mapping) else {}
    prompt = _prompt(obj, request)
    meta = dict(obj["meta"]) if isinstance(obj.get("meta"), Mapping) else {}
    if "custom_id" in obj:
        meta.setdefault("custom_id", obj["custom_id"])
    if prompt is None and "custom_id" in obj:
        prompt = str(obj["custom_id"])
    params = obj.get("params")
    if not isinstance(params, Mapping):
        params = {k: v for k, v in request.items() if k not in _PROMPT_KEYS}
    return ImportItem(
        prompt=prompt,
        completion=to_completion(response, provider),
        params=jsonable(params),
        correct=_correct(obj.get("correct")),
        meta=meta,
    )


def _prompt(obj: Mapping[str, Any], request: Mapping[str, Any]) -> Prompt:
    for source in (obj, request):
        for key in _PROMPT_KEYS:
            value = source.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, list) and all(isinstance(m, Mapping) for m in value):
                return value
    return None


def _correct(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise NormalizeError(f"'correct' must be true, false or null, got {value!r}", path="correct")


@dataclass(frozen=True, slots=True)
class ImportRow:
    """Read one ``(where, value)`` entry into an :class:`ImportItem`, or the
    :class:`ImportIssue` that says why not (a row function for any executor: parsing and
    normalizing fan out, writing stays in the one transaction)."""

    provider: str | None = None

    def __call__(self, engine: Any, entry: tuple[str, Any]) -> ImportItem | ImportIssue:
        where, value = entry
        if isinstance(value, ImportIssue):
            return value
        try:
            return to_item(value, self.provider)
        except LogprobeError as e:
            return ImportIssue(where, e.message)
        except Exception as e:  # a payload no reader expected: reported, never a traceback
            return ImportIssue(where, f"cannot read this item ({type(e).__name__}: {e})")


def _read(
    path: Path, progress: Callable[[int], None] | None, provider: str | None, executor: Any | None
) -> Iterator[ImportItem | ImportIssue]:
    fn = ImportRow(provider)
    entries = read_items(path, progress)
    if executor is None:
        for entry in entries:
            yield fn(None, entry)
        return
    for outcome in executor.map(fn, entries):
        yield (
            outcome.result
            if outcome.result is not None
            else ImportIssue(outcome.item[0], outcome.error or "failed")
        )


def import_file(
    store: Store,
    path: str | Path,
    run: str,
    *,
    append: bool = False,
    skip_invalid: bool = False,
    model: str | None = None,
    tags: Sequence[str] = (),
    provider: str | None = None,
    progress: Callable[[int], None] | None = None,
    executor: Any | None = None,
) -> ImportReport:
    """Import ``path`` into ``run`` in one transaction; see the module doc for the rules.

    ``executor`` (a :mod:`logprobe.execution` executor) reads and normalizes the items on its
    workers; they come back in file order and are written here."""
    from .store import check_run_name

    run = check_run_name(run)
    path = Path(path)
    started = time.perf_counter()
    if not append and _exists(store, run):
        raise InvalidRequestError(
            f"run {run!r} already exists; pass --append to add to it", param="run"
        )
    issues: list[ImportIssue] = []
    imported = n_tokens = 0
    with store.transaction(action=f"importing {path.name} into run {run!r}") as conn:
        for item in _read(path, progress, provider, executor):
            if isinstance(item, ImportIssue):
                issues.append(item)
                continue
            if issues and not skip_invalid:
                continue  # keep reading only to report every problem; nothing will be kept
            if imported == 0:
                store.create_run_in(conn, run, model=model or item.completion.model, tags=tags)
            store.record_in(
                conn,
                run,
                item.prompt,
                item.completion,
                item.params,
                correct=item.correct,
                meta=item.meta,
            )
            imported += 1
            n_tokens += sum(len(c.tokens) for c in item.completion.choices)
        if issues and not skip_invalid:
            raise InvalidRequestError(_failure(path, issues), param="file")
        if imported == 0:
            raise InvalidRequestError(f"{path}: no responses to import", param="file")
    return ImportReport(run, imported, n_tokens, tuple(issues), time.perf_counter() - started)


def _exists(store: Store, run: str) -> bool:
    from .models import RunNotFoundError

    try:
        store.run(run)
    except RunNotFoundError:
        return False
    return True


def _failure(path: Path, issues: Sequence[ImportIssue]) -> str:
    shown = "; ".join(str(i) for i in issues[:3])
    more = f" (+{len(issues) - 3} more)" if len(issues) > 3 else ""
    return (
        f"{path}: {len(issues)} malformed item(s), nothing imported: {shown}{more}. "
        f"Fix them or pass --skip-invalid to import the valid ones"
    )

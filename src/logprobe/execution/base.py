"""What every executor offers, and how an actor on another machine builds its own engine.

An executor maps a *row function* ``fn(engine, item) -> result`` over many items and yields one
:class:`~logprobe.tasks.runner.Outcome` per item, **in input order**. A
:class:`~logprobe.errors.LogprobeError` raised for one item becomes that item's ``error`` (the
row is skipped and reported, the run goes on); any other exception is a bug and stops the run.

Row functions are small frozen dataclasses defined at module level (``ClassifyRow``, ``MCRow``,
``ScoreRow``, ``GateRow``, ``ImportRow``) so that Ray can pickle them to its workers; they must
not keep state between rows, so running a row twice (a retried task) gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..errors import InvalidRequestError, ModelNotFoundError
from ..tasks.runner import Outcome

T = TypeVar("T")
R = TypeVar("R")
T_in = TypeVar("T_in", contravariant=True)
R_out = TypeVar("R_out", covariant=True)

GEMMA_ALIASES = ("gemma", "gemma3-270m")


class RowFn(Protocol[T_in, R_out]):
    """A picklable, stateless function of one row: ``fn(engine, item) -> result``."""

    def __call__(self, engine: Any, item: T_in, /) -> R_out: ...


class Executor(Protocol):
    """Runs row functions over items; ``model_name`` is the engine's (``""`` without one)."""

    backend: str
    model_name: str

    def map(self, fn: RowFn[T, R], items: Iterable[T]) -> Iterator[Outcome[T, R]]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """How to open an engine where it runs (each Ray actor opens its own).

    ``model``: ``None`` = the embedded default model, a ``.gguf`` path, ``gemma``, or an
    ``http(s)://`` OpenAI-compatible base URL with ``#name``. Several URLs separated by commas
    spread the actors over several servers (actor ``i`` takes URL ``i mod n``); one URL is
    shared by every actor. ``threads``: CPU threads of an embedded engine. ``api_key``: for
    the remote server (default: ``$OPENAI_API_KEY`` where the engine runs).
    """

    model: str | None = None
    threads: int | None = None
    api_key: str | None = field(default=None, repr=False)

    @property
    def urls(self) -> list[str]:
        if self.model is None or not self.model.startswith(("http://", "https://")):
            return []
        return [u.strip() for u in self.model.split(",") if u.strip()]

    def for_actor(self, index: int) -> EngineSpec:
        """The spec actor ``index`` opens: its own URL when several are given."""
        urls = self.urls
        if len(urls) > 1:
            return replace(self, model=urls[index % len(urls)])
        return self

    def open(self) -> Any:
        """Open the engine (embedded llama.cpp, or a :class:`RemoteEngine`)."""
        urls = self.urls
        if urls:
            return _remote(urls[0], self.api_key)
        from ..engines.llamacpp import LlamaEngine

        if self.model is None:
            return LlamaEngine(n_threads=self.threads)
        path = self.model
        if path in GEMMA_ALIASES:
            from ..engines.gemma_gguf import gemma_model_path

            path = gemma_model_path()
        if not Path(path).is_file():
            raise ModelNotFoundError(f"model file not found: {path}")
        return LlamaEngine(model_path=path, n_threads=self.threads)


def _remote(spec: str, api_key: str | None) -> Any:
    from ..engines.remote import RemoteEngine

    url, _, model = spec.partition("#")
    if not model:
        raise InvalidRequestError(
            f"Invalid 'model': name the remote model after '#', e.g. {url}#my-model",
            param="model",
        )
    return RemoteEngine(url, model, api_key=api_key)


def close_engine(engine: Any) -> None:
    close = getattr(engine, "close", None)
    if callable(close):
        close()


__all__ = ["EngineSpec", "Executor", "RowFn", "close_engine"]

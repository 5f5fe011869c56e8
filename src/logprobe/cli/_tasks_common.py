"""Shared pieces of the task commands: opening engines, reading list options, printing."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..engines.gemma_gguf import gemma_model_path
from ..errors import InvalidRequestError, ModelNotFoundError

if TYPE_CHECKING:
    from ..engines.base import Engine, LocalEngine

GEMMA_ALIASES = ("gemma", "gemma3-270m")


def split_list(value: str | None, *, param: str, sep: str = ",") -> list[str] | None:
    """``"a,b,c"`` -> ``["a", "b", "c"]`` (items stripped); a leading ``@`` reads one per line
    from a file. Empty items are kept so the task can reject them by name."""
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InvalidRequestError(
                f"Invalid '{param}': no such file {value[1:]!r}.", param=param
            )
        return [
            line.rstrip("\n")
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return [item.strip() for item in value.split(sep)]


def open_engine(spec: str | None, *, threads: int | None = None) -> Engine:
    """An engine for ``--model``: nothing = the embedded default, a ``.gguf`` path, ``gemma``
    (the optional Gemma 3 270M package), or an ``http(s)://`` OpenAI-compatible base URL
    (``URL#model`` picks the remote model name)."""
    if spec is not None and spec.startswith(("http://", "https://")):
        return _remote(spec)
    from ..engines.llamacpp import LlamaEngine

    if spec is None:
        return LlamaEngine(n_threads=threads)
    path = gemma_model_path() if spec in GEMMA_ALIASES else spec
    if not Path(path).is_file():
        raise ModelNotFoundError(f"model file not found: {path}")
    return LlamaEngine(model_path=path, n_threads=threads)


def _remote(spec: str) -> Engine:
    from ..engines.remote import RemoteEngine

    url, _, model = spec.partition("#")
    if not model:
        raise InvalidRequestError(
            f"Invalid 'model': name the remote model after '#', e.g. {url}#gpt-4o-mini",
            param="model",
        )
    return RemoteEngine(url, model)


def local_engine(engine: Engine, task: str) -> LocalEngine:
    """``engine`` as one that owns its vocabulary (the embedded engine), or a clear error."""
    from ..engines.remote import RemoteEngine

    if isinstance(engine, RemoteEngine):
        raise InvalidRequestError(
            f"{task} needs the model's own tokens and context size, which a remote server does "
            "not expose; use the embedded engine (a .gguf --model)",
            param="model",
        )
    return cast("LocalEngine", engine)


def close_engine(engine: Engine) -> None:
    engine.close()


@contextmanager
def engine_from(spec: str | None, *, threads: int | None = None) -> Iterator[Engine]:
    engine = open_engine(spec, threads=threads)
    try:
        yield engine
    finally:
        close_engine(engine)


def stderr_console() -> Console:
    return Console(stderr=True)


def stdout_console() -> Console:
    return Console(file=sys.stdout, soft_wrap=True)


def progress_bar(console: Console | None = None) -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal-capable stream)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or stderr_console(),
        transient=False,
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """JSON on stdout only; non-finite numbers become null (never NaN/Infinity)."""
    sys.stdout.write(json.dumps(_clean(value), ensure_ascii=False, indent=2, allow_nan=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def read_json_arg(value: str, *, param: str) -> Any:
    """A JSON value given inline or as ``@file`` (or a path to an existing file)."""
    text = value
    path = Path(value[1:]) if value.startswith("@") else Path(value)
    if value.startswith("@") or (len(value) < 4096 and path.suffix == ".json" and path.is_file()):
        if not path.is_file():
            raise InvalidRequestError(
                f"Invalid '{param}': no such file {str(path)!r}.", param=param
            )
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidRequestError(
            f"Invalid '{param}': not valid JSON ({e.msg}).", param=param
        ) from None


__all__ = [
    "close_engine",
    "engine_from",
    "open_engine",
    "print_json",
    "progress_bar",
    "read_json_arg",
    "split_list",
    "stderr_console",
    "stdout_console",
]

"""``logprobe serve``: the OpenAI-compatible server (full logprobs, echo, streaming)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import InvalidRequestError, LogprobeError
from ..server.drain import DEFAULT_DRAIN_TIMEOUT_S
from ..server.header_timeout import DEFAULT_HEADER_TIMEOUT_S, header_timeout_protocol
from ..server.limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_SEND_TIMEOUT_S,
    MAX_BODY_ENV,
    parse_size,
)


def _check_port(host: str, port: int) -> None:
    """Fail with one clear line when the address cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidRequestError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", param="port"
            ) from None


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def warn_if_open(host: str, api_key: str | None, what: str = "server") -> None:
    """A clear warning when a keyless server listens beyond this machine."""
    if not api_key and host not in LOOPBACK and not host.startswith("127."):
        print(
            f"WARNING: the {what} listens on {host} WITHOUT an API key: anyone who can reach "
            f"this address can use the model and read every stored prompt and response. "
            f"Set --api-key (or $LOGPROBE_API_KEY), or listen on 127.0.0.1. See "
            f"docs/SECURITY.md.",
            file=sys.stderr,
        )


def _open_store(db: str | None) -> Any:
    from ..store import Store

    return Store.open(db)


def serve(
    model: Path = typer.Option(None, "--model", help="GGUF file (default: SmolLM2-135M-Instruct)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    api_key: str = typer.Option(
        None,
        "--api-key",
        envvar="LOGPROBE_API_KEY",
        help="Require this key on every route but /health: "
        "'Authorization: Bearer KEY', or the viewer's login.",
    ),
    max_logprobs: int = typer.Option(
        20, "--max-logprobs", min=0, help="Most alternatives per token a request may ask for."
    ),
    max_queue: int = typer.Option(
        64, "--max-queue", min=1, help="Requests in flight before new ones get HTTP 429."
    ),
    log: str = typer.Option(
        None, "--log", metavar="RUN", help="Record every request and response into this run."
    ),
    db: str = typer.Option(
        None,
        "--db",
        help="Run store URL (default $LOGPROBE_DB or $LOGPROBE_HOME/logprobe.db); used with --log.",
    ),
    ui: bool = typer.Option(
        False, "--ui", help="Serve the web viewer of the run store under /ui (on with --log)."
    ),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads (default: all)."),
    ctx: int = typer.Option(
        2048,
        "--ctx",
        min=16,
        help="Context length of each sequence "
        "(prompt + output); KV memory is ctx x parallel cells.",
    ),
    parallel: int = typer.Option(
        8, "--parallel", min=1, help="Most sequences decoded together in one batch."
    ),
    deterministic: bool = typer.Option(
        True,
        "--deterministic/--no-deterministic",
        help="Batch-invariant kernels: a request's logprobs are the same to the bit whatever "
        "else is served (default). --no-deterministic uses llama.cpp's default kernels: "
        "~15% faster prompt processing, numbers that move with the load (docs/ENGINE.md).",
    ),
    max_body: str = typer.Option(
        None,
        "--max-body",
        envvar=MAX_BODY_ENV,
        help="Largest request body, e.g. 4MB (default); more: HTTP 413.",
    ),
    send_timeout: float = typer.Option(
        DEFAULT_SEND_TIMEOUT_S,
        "--send-timeout",
        min=0.1,
        help="Seconds a client may stop reading a response "
        "before it is dropped and its slot freed.",
    ),
    header_timeout: float = typer.Option(
        DEFAULT_HEADER_TIMEOUT_S,
        "--header-timeout",
        min=0.1,
        help="Seconds a connection may take to send its request headers before it is closed.",
    ),
    drain_timeout: float = typer.Option(
        DEFAULT_DRAIN_TIMEOUT_S,
        "--drain-timeout",
        min=0,
        help="On SIGTERM, seconds to let requests in flight finish (new ones get 503).",
    ),
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API with full logprobs."""
    import uvicorn

    from ..engines.llamacpp import LlamaEngine
    from ..server import DrainingServer, create_app

    if model is not None and not model.is_file():
        raise LogprobeError(f"model file not found: {model}", param="model")
    max_body_bytes = parse_size(max_body) if max_body else DEFAULT_MAX_BODY_BYTES
    _check_port(host, port)
    warn_if_open(host, api_key)
    store = _open_store(db) if (log or ui) else None
    engine = LlamaEngine(
        model,
        n_ctx=ctx,
        n_threads=threads,
        n_seq_max=parallel,
        max_logprobs=max_logprobs,
        batch_invariant=deterministic,
    )
    try:
        app = create_app(
            engine,
            api_key=api_key,
            max_logprobs=max_logprobs,
            max_queue=max_queue,
            store=store,
            run=log,
            max_body_bytes=max_body_bytes,
            send_timeout_s=send_timeout,
        )
        print(
            f"logprobe: serving {engine.model_name} at http://{host}:{port}/v1"
            + (f" (recording into run {log!r})" if log else "")
            + (f"; viewer at http://{host}:{port}/ui/" if store is not None else ""),
            file=sys.stderr,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            timeout_graceful_shutdown=5,
            timeout_keep_alive=5,
            http=header_timeout_protocol(header_timeout),
        )
        DrainingServer(config, app, drain_timeout_s=drain_timeout).run()
    finally:
        engine.close()
        if store is not None:
            store.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)

"""Entry point ``logprobe``: one typer app; each command group lives in its own module.

Errors reach the user as one line on stderr with exit code 2 (never a traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from typer import exceptions as typer_exc

from ..errors import LogprobeError
from . import apps, calibrate, doctor, gate, generate, inspect, serve, store, tasks

app = typer.Typer(
    name="logprobe",
    help="Token log-probabilities: generate, score, serve, analyse, classify, calibrate, track.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(doctor.version_line())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_version,
        help="Print the versions of logprobe, llama-cpp-python and ggml, and exit.",
    ),
) -> None:
    """Token log-probabilities: generate, score, serve, analyse, classify, calibrate, track."""


for _module in (generate, serve, inspect, gate, tasks, calibrate, store, apps, doctor):
    _module.register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="logprobe",
            standalone_mode=False,
        )
        code = rv if isinstance(rv, int) else 0
    except typer_exc.Exit as e:
        code = e.exit_code
    except typer_exc.TyperException as e:  # usage errors: bad option, missing argument
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            code = 0
        else:
            print(f"error: {e.format_message()}", file=sys.stderr)
            code = 2
    except typer_exc.Abort:
        print("error: aborted", file=sys.stderr)
        code = 130
    except LogprobeError as e:
        print(f"error: {e.message}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()

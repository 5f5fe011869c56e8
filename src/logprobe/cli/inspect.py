"""``logprobe inspect FILE|-``: any provider's response (JSON, JSON Lines of stream chunks, or
SSE ``data:`` text) as a token table and a confidence summary; ``--json`` prints the neutral
structure (:meth:`Completion.to_dict`) with each choice's confidence report beside its tokens
(``choices[i].analysis``: summary, low spans, critical tokens, decision; see
:func:`logprobe.analysis.report`) and the reading notes. Notes also go to stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ..analysis import print_report, report
from ..errors import InvalidRequestError
from ..normalize import PROVIDERS, normalize_with_notes
from ..types import Choice, TokenLogprob
from ._output import print_json, stderr, stdout, token_table

FileArg = Annotated[str, typer.Argument(help="Response file (JSON, JSONL or SSE), or - for stdin.")]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider", "-p", help=f"Payload shape (default: detected): {', '.join(PROVIDERS)}."
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print the neutral structure with each choice's confidence report as JSON."
    ),
]
TopOpt = Annotated[
    int, typer.Option("--top", "-n", min=0, max=20, help="Alternatives shown per token.")
]
ChoiceOpt = Annotated[int | None, typer.Option("--choice", help="Show only this choice index.")]
PromptOpt = Annotated[
    bool, typer.Option("--prompt/--no-prompt", help="Also show prompt tokens (echo / prefill).")
]


def read_input(source: str) -> str:
    """The text of ``source`` (a path, or ``-`` for stdin), as a one-line error if unreadable."""
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InvalidRequestError(
                f"cannot read {source}: {e.strerror or e}", param="file"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidRequestError(
            f"{source} is not UTF-8 text (byte {e.start})", param="file"
        ) from None


def inspect_command(
    file: FileArg,
    provider: ProviderOpt = None,
    json_out: JsonOpt = False,
    top: TopOpt = 3,
    choice: ChoiceOpt = None,
    prompt: PromptOpt = False,
) -> None:
    """Read any provider's response and show its tokens, logprobs and confidence."""
    result = normalize_with_notes(read_input(file), provider)
    for note in result.notes:
        stderr.print(f"note: {note}", markup=False)
    comp = result.completion
    if json_out:
        print_json(inspect_dict(comp.to_dict(), comp.choices, result.notes))
        return
    choices = comp.choices
    if choice is not None:
        choices = tuple(c for c in comp.choices if c.index == choice)
        if not choices:
            raise InvalidRequestError(
                f"no choice {choice}; the payload has {[c.index for c in comp.choices]}",
                param="choice",
            )
    stdout.print(
        f"provider: {result.provider}   model: {comp.model or '?'}   "
        f"choices: {len(comp.choices)}   logprobs: {comp.logprob_mode}",
        markup=False,
    )
    for c in choices:
        _show_choice(c, top, prompt)


def inspect_dict(
    data: dict[str, Any], choices: Sequence[Choice], notes: Sequence[str]
) -> dict[str, Any]:
    """``data`` (a Completion's dict) with each choice's report beside its tokens, and the notes.

    ``Completion.from_dict`` ignores the added keys, so the output still reads back."""
    for d, c in zip(data["choices"], choices, strict=True):
        tokens = _analysed_tokens(c)
        d["analysis"] = report(list(tokens)) if _scored(tokens) else None
    return {**data, "notes": list(notes)}


def _analysed_tokens(c: Choice) -> Sequence[TokenLogprob]:
    """The generated tokens, or the prompt tokens for a pure ``echo`` scoring response."""
    return c.tokens or c.prompt_tokens or ()


def _scored(tokens: Sequence[TokenLogprob]) -> bool:
    return any(t.logprob is not None for t in tokens)


def _show_choice(c: Choice, top: int, prompt: bool) -> None:
    """Token tables of one choice and a summary of its generated tokens (of its prompt tokens
    when there are none, as for a pure ``echo`` scoring request)."""
    if c.prompt_tokens and (prompt or not c.tokens):
        stdout.print(
            token_table(
                c.prompt_tokens,
                top_n=top,
                title=f"choice {c.index}: {len(c.prompt_tokens)} prompt tokens",
            )
        )
    if c.tokens or not c.prompt_tokens:
        stdout.print(
            token_table(
                c.tokens,
                top_n=top,
                title=f"choice {c.index}: {len(c.tokens)} tokens, finish "
                f"{c.finish_reason or 'unknown'}",
            )
        )
    tokens = _analysed_tokens(c)
    if _scored(tokens):
        print_report(stdout, list(tokens))


def register(app: typer.Typer) -> None:
    """Add ``inspect`` to ``app``."""
    app.command("inspect")(inspect_command)

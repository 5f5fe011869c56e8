"""Output helpers shared by CLI commands: token tables, JSON to stdout, engines from options."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..types import TokenLogprob

# one console for humans on stderr-free stdout; progress bars and notes go to stderr
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON to stdout (NaN/inf are rejected: callers pass JSON-safe data)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=2) + "\n")
    sys.stdout.flush()


def _show(s: str) -> str:
    return s.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def token_table(tokens: Sequence[TokenLogprob], *, top_n: int = 5, title: str = "tokens") -> Table:
    """A table of tokens: logprob, probability, rank, entropy and the top alternatives."""
    t = Table(title=title, title_justify="left", pad_edge=False, box=None, header_style="bold")
    t.add_column("#", justify="right", style="dim")
    t.add_column("token")
    t.add_column("logprob", justify="right")
    t.add_column("prob", justify="right")
    t.add_column("rank", justify="right")
    t.add_column("entropy", justify="right")
    if top_n:
        t.add_column(f"top {top_n} alternatives")
    for i, tok in enumerate(tokens):
        lp = tok.logprob
        row: list[str | Text] = [
            str(i),
            Text(repr(_show(tok.token))[1:-1] if tok.token else "∅"),
            "—" if lp is None else f"{lp:.4f}",
            "—" if lp is None else f"{math.exp(lp):.4f}",
            "—" if tok.rank is None else str(tok.rank),
            "—" if tok.entropy is None else f"{tok.entropy:.3f}",
        ]
        if top_n:
            alts = "  ".join(
                f"{_show(a.token)!r} {math.exp(a.logprob):.3f}" for a in tok.top_logprobs[:top_n]
            )
            row.append(Text(alts, style="dim"))
        t.add_row(*row)
    return t

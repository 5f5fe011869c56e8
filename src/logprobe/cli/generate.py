"""``logprobe generate`` and ``logprobe score``: the main job, on the embedded or a remote model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..engines.base import GenerationParams
from ..errors import InvalidRequestError
from ..types import Completion, ScoredText
from ._execution import ActorCpusOpt, ActorsOpt, ExecChoice, RayAddressOpt, RayOpt
from ._output import print_json, stdout, token_table
from ._score_dataset import engine_model, print_score_summary, score_dataset

if TYPE_CHECKING:
    from ..engines.base import Engine

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="GGUF file (embedded), or the model name with --base-url."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="An OpenAI-compatible server to use instead of the "
        "embedded engine (API key from --api-key or OPENAI_API_KEY).",
    ),
]
ApiKeyOpt = Annotated[str | None, typer.Option("--api-key", help="Bearer key for --base-url.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads (embedded).")]
TopOpt = Annotated[int, typer.Option("--top-logprobs", "-k", help="Alternatives per token.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the neutral structure as JSON.")]
RunOpt = Annotated[
    str | None, typer.Option("--run", help="Also record this call in the run store under NAME.")
]
DbOpt = Annotated[
    str | None, typer.Option("--db", help="Store URL (default: SQLite in $LOGPROBE_HOME).")
]


def open_engine(
    model: str | None, base_url: str | None, api_key: str | None, threads: int | None = None
) -> Engine:
    """The embedded engine (default model, or a GGUF path), or a remote one with ``base_url``."""
    if base_url:
        from ..engines.remote import RemoteEngine

        if not model:
            raise InvalidRequestError(
                "--base-url needs --model NAME (the server's model name)", param="model"
            )
        return RemoteEngine(base_url, model, api_key=api_key)
    from ..engines.llamacpp import LlamaEngine

    # one request per process: two sequences (a prompt and its scored text) with the model's
    # whole training context each, rather than many short ones
    return LlamaEngine(model, n_threads=threads, n_ctx=1 << 20, n_seq_max=2)


def _record(
    run: str | None,
    db: str | None,
    prompt: str,
    result: Completion | ScoredText,
    params: dict[str, Any],
) -> None:
    if not run:
        return
    from ..store import Store

    store = Store.open(db)
    try:
        if isinstance(result, ScoredText):
            store.record_scored(run, result, params)
        else:
            store.record(run, prompt, result, params)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``score``."""

    @app.command()
    def generate(
        prompt: Annotated[str, typer.Argument(help="The prompt (a user message unless --raw).")],
        raw: Annotated[
            bool, typer.Option("--raw", help="Plain completion, no chat template.")
        ] = False,
        system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
        max_tokens: Annotated[int, typer.Option("--max-tokens", "-n")] = 128,
        temperature: Annotated[
            float, typer.Option("--temperature", "-t", help="0 = greedy (default).")
        ] = 0.0,
        top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
        top_k: Annotated[int, typer.Option("--top-k", help="0 = off.")] = 0,
        seed: Annotated[int | None, typer.Option("--seed")] = None,
        stop: Annotated[
            list[str] | None, typer.Option("--stop", help="Stop sequence (repeatable).")
        ] = None,
        top_logprobs: TopOpt = 5,
        logprob_mode: Annotated[
            str, typer.Option("--logprob-mode", help="raw (model) or processed (sampled).")
        ] = "raw",
        policy: Annotated[
            str, typer.Option("--policy", help="Review-gate policy name or TOML file.")
        ] = "default",
        model: ModelOpt = None,
        base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
        run: RunOpt = None,
        db: DbOpt = None,
    ) -> None:
        """Generate an answer and show every token's probability, alternatives and a verdict."""
        if not prompt.strip():
            raise InvalidRequestError("the prompt is empty", param="prompt")
        params = GenerationParams.make(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            seed=seed,
            stop=stop,
            top_logprobs=top_logprobs,
            logprob_mode=logprob_mode,
            max_logprobs=max(20, top_logprobs),
        )
        engine = open_engine(model, base_url, api_key, threads)
        try:
            if raw:
                comp = engine.complete(prompt, params)
            else:
                msgs = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": prompt}
                ]
                comp = engine.chat(msgs, params)
            _record(
                run,
                db,
                prompt,
                comp,
                {
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "top_p": top_p,
                    "top_k": top_k,
                    "seed": seed,
                    "raw": raw,
                    "top_logprobs": top_logprobs,
                },
            )
        finally:
            _close(engine)
        pol = _policy(policy)
        from ..analysis import print_report, report

        if as_json:
            print_json({"completion": comp.to_dict(), "report": report(comp, policy=pol)})
            return
        print_report(stdout, comp, policy=pol)
        stdout.print(token_table(comp.tokens, top_n=min(top_logprobs, 5)))

    @app.command()
    def score(
        text: Annotated[
            str | None, typer.Argument(help="The text to score (teacher forcing); or --dataset.")
        ] = None,
        prompt: Annotated[
            str | None,
            typer.Option(
                "--prompt",
                "-p",
                help="Context before the text; the text is scored as its continuation.",
            ),
        ] = None,
        top_logprobs: TopOpt = 3,
        model: ModelOpt = None,
        base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
        run: RunOpt = None,
        db: DbOpt = None,
        dataset: Annotated[
            Path | None,
            typer.Option("--dataset", help="Score every row of this JSONL/CSV/TSV file instead."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Scores JSONL (dataset mode; default DATASET.scores.jsonl)."
            ),
        ] = None,
        text_col: Annotated[str, typer.Option("--text-col", help="Text column.")] = "text",
        prompt_col: Annotated[
            str | None,
            typer.Option("--prompt-col", help="Column scored as context before the text."),
        ] = None,
        fmt: Annotated[str | None, typer.Option("--format", help="jsonl | csv | tsv")] = None,
        workers: Annotated[int, typer.Option("--workers", help="Rows in flight per engine.")] = 2,
        resume: Annotated[
            bool, typer.Option("--resume", help="Keep rows already in --out; score the rest.")
        ] = False,
        ray: RayOpt = False,
        ray_address: RayAddressOpt = None,
        actors: ActorsOpt = None,
        actor_cpus: ActorCpusOpt = 1.0,
    ) -> None:
        """Per-token logprobs of a text (or of every row of --dataset) and its perplexity."""
        if (text is None) == (dataset is None):
            raise InvalidRequestError("give a TEXT or --dataset (not both)", param="text")
        if dataset is not None:
            d = score_dataset(
                dataset,
                out=out,
                text_col=text_col,
                prompt_col=prompt_col,
                fmt=fmt,
                top_logprobs=top_logprobs,
                model=engine_model(model, base_url),
                threads=threads,
                workers=workers,
                resume=resume,
                choice=ExecChoice(ray, ray_address, actors, actor_cpus),
                api_key=api_key,
            )
            print_json(d) if as_json else print_score_summary(d)
            return
        assert text is not None
        engine = open_engine(model, base_url, api_key, threads)
        try:
            s = engine.score(text, prompt=prompt, top_logprobs=top_logprobs)
            _record(run, db, prompt or "", s, {"score": True})
        finally:
            _close(engine)
        n = s.n_scored
        ppl = s.perplexity if n else None
        if as_json:
            print_json(s.to_dict() | {"n_scored": n, "perplexity": ppl})
            return
        stdout.print(token_table(s.tokens, top_n=top_logprobs, title="scored tokens"))
        stdout.print(
            f"[bold]{n}[/] tokens scored · total logprob [bold]{s.logprob:.4f}[/] · "
            f"mean {s.logprob / n if n else float('nan'):.4f} · perplexity "
            f"[bold]{ppl if ppl is not None else float('nan'):.3f}[/]"
        )


def _policy(policy: str) -> Any:
    if policy.endswith(".toml") or os.path.sep in policy:
        from ..analysis import load_policy

        return load_policy(policy)
    return policy


def _close(engine: Engine) -> None:
    engine.close()

"""The embedded engine on the real default model: properties that must hold for exact logprobs."""

from __future__ import annotations

import math
import threading

import pytest

from logprobe import ContextOverflowError, InvalidRequestError, ModelNotFoundError
from logprobe.engines import GenerationParams
from logprobe.engines.llamacpp import LlamaEngine
from logprobe.errors import EngineError
from logprobe.types import LOGPROB_FLOOR, tokens_text

QUESTION = [{"role": "user", "content": "Name three colours."}]


def greedy(**kw: object) -> GenerationParams:
    return GenerationParams.make(temperature=0, **({"max_tokens": 24, "top_logprobs": 5} | kw))


def check_token_invariants(tokens, *, exact_top: bool) -> None:
    for t in tokens:
        assert t.logprob is not None and LOGPROB_FLOOR <= t.logprob <= 0.0
        lps = [a.logprob for a in t.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        assert sum(math.exp(x) for x in lps) <= 1 + 1e-4
        assert t.entropy is not None and 0.0 <= t.entropy <= math.log(49152) + 1e-6
        assert t.rank is not None and t.rank >= 1
        if exact_top:
            assert t.rank == 1
            assert t.top_logprobs[0].id == t.id
            assert t.top_logprobs[0].logprob == pytest.approx(t.logprob, abs=1e-9)
        for a in t.top_logprobs:
            if a.id == t.id:
                assert a.logprob == pytest.approx(t.logprob, abs=1e-6)


def test_greedy_chat_properties(engine: LlamaEngine) -> None:
    c = engine.chat(QUESTION, greedy())
    ch = c.choice
    assert ch.tokens and ch.finish_reason in ("stop", "length")
    check_token_invariants(ch.tokens, exact_top=True)
    assert tokens_text(ch.tokens) == ch.text
    assert c.usage.completion_tokens == len(ch.tokens)
    assert c.usage.prompt_tokens == len(engine.tokenize(engine.render_chat(QUESTION), special=True))


def test_sampled_ranks_and_alternatives(engine: LlamaEngine) -> None:
    c = engine.complete(
        "Once upon a time",
        GenerationParams.make(temperature=1.5, seed=7, max_tokens=40, top_logprobs=20),
    )
    check_token_invariants(c.tokens, exact_top=False)
    # the rank is the 1-based position of the chosen token whenever it is among the alternatives
    for t in c.tokens:
        ids = [a.id for a in t.top_logprobs]
        if t.id in ids:
            assert t.rank == ids.index(t.id) + 1 or t.top_logprobs[
                t.rank - 1
            ].logprob == pytest.approx(t.logprob)
        else:
            assert t.rank > 20


def test_seed_reproducible_and_n_choices_differ(engine: LlamaEngine) -> None:
    p = GenerationParams.make(temperature=1.0, seed=123, max_tokens=20, n=3, top_logprobs=2)
    a = engine.complete("My favourite food is", p)
    b = engine.complete("My favourite food is", p)
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    assert [[t.id for t in c.tokens] for c in a.choices] == [
        [t.id for t in c.tokens] for c in b.choices
    ]
    assert len({c.text for c in a.choices}) > 1  # each choice has its own random stream
    assert [c.index for c in a.choices] == [0, 1, 2]


@pytest.mark.parametrize(
    "prompt",
    [
        "Translate to Chinese: good morning, friend",
        "Reply with emoji only: 🎉🚀🧪👩‍🔬",
        "日本語で答えてください：空はなぜ青いのですか？",
    ],
)
def test_bytes_rebuild_text_with_split_characters(engine: LlamaEngine, prompt: str) -> None:
    c = engine.chat([{"role": "user", "content": prompt}], greedy(max_tokens=48))
    joined = b"".join(t.bytes for t in c.tokens)
    assert joined.decode("utf-8", errors="replace") == c.text
    # U+FFFD only where the model itself emitted it, or for a character cut off by max_tokens
    complete = joined if c.choice.finish_reason == "stop" else _valid_prefix(joined)
    assert "\ufffd" not in complete.decode("utf-8") or b"\xef\xbf\xbd" in joined
    # scoring the prompt itself: bytes of the scored tokens rebuild it exactly
    s = engine.score(prompt)
    assert b"".join(t.bytes for t in s.tokens) == prompt.encode("utf-8")


def test_partial_utf8_tokens_keep_their_bytes(engine: LlamaEngine) -> None:
    s = engine.score("🧪🧬 emoji")
    partial = [t for t in s.tokens if t.bytes and _incomplete_utf8(t.bytes)]
    assert partial, "the emoji should split into byte-level tokens"
    assert b"".join(t.bytes for t in s.tokens) == "🧪🧬 emoji".encode()


def _valid_prefix(b: bytes) -> bytes:
    for cut in range(4):
        try:
            (b[: len(b) - cut] if cut else b).decode("utf-8")
            return b[: len(b) - cut] if cut else b
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"invalid UTF-8 in the middle of {b!r}")


def _incomplete_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_scoring_the_generation_reproduces_its_logprobs(engine: LlamaEngine) -> None:
    prompt = "The three primary colours are"
    c = engine.complete(prompt, greedy(max_tokens=20, top_logprobs=3))
    ids = [t.id for t in c.tokens]
    s = engine.score(ids, prompt=prompt, top_logprobs=3)
    assert [t.id for t in s.tokens] == ids
    for g, r in zip(c.tokens, s.tokens, strict=True):  # bit for bit, alternatives included
        assert r.logprob == g.logprob and r.entropy == g.entropy and r.rank == g.rank
        assert [(a.id, a.logprob) for a in r.top_logprobs] == [
            (a.id, a.logprob) for a in g.top_logprobs
        ]


def test_score_first_token_has_no_logprob_and_perplexity(engine: LlamaEngine) -> None:
    s = engine.score("Paris is the capital of France.", top_logprobs=2)
    assert s.tokens[0].logprob is None and s.tokens[0].top_logprobs == ()
    lps = [t.logprob for t in s.tokens[1:]]
    assert all(x is not None and x <= 0 for x in lps)
    assert s.perplexity == pytest.approx(math.exp(-sum(lps) / len(lps)))


def test_score_continuations_match_separate_scoring(engine: LlamaEngine) -> None:
    prompt = "Review: a wonderful, moving film.\nSentiment:"
    conts = [" positive", " negative", " very mixed feelings"]
    shared = engine.score_continuations(prompt, conts, top_logprobs=2)
    for cont, sc in zip(conts, shared, strict=True):
        alone = engine.score(cont, prompt=prompt, top_logprobs=2)
        assert [t.id for t in sc.tokens] == [t.id for t in alone.tokens]
        assert [t.logprob for t in sc.tokens] == [t.logprob for t in alone.tokens]
    # token by token: each token's logprob equals scoring it after the growing prefix
    multi = shared[2]
    prefix = engine.tokenize(prompt)
    for t in multi.tokens:
        one = engine.score([t.id], prompt=prefix)
        assert one.tokens[0].logprob == t.logprob
        prefix = [*prefix, t.id]


def test_score_many_equals_score(engine: LlamaEngine) -> None:
    texts = ["Hello world, this is a test.", "Another sentence entirely.", "Short"]
    many = engine.score_many(texts)
    for text, m in zip(texts, many, strict=True):
        one = engine.score(text)
        assert [t.logprob for t in m.tokens][1:] == [t.logprob for t in one.tokens][1:]


def test_prompt_logprobs_equal_scoring(engine: LlamaEngine) -> None:
    prompt = "Water boils at one hundred degrees."
    c = engine.complete(prompt, greedy(max_tokens=2, prompt_logprobs=3))
    s = engine.score(prompt, top_logprobs=3)
    pt = c.choice.prompt_tokens
    assert pt is not None and pt[0].logprob is None
    assert [t.id for t in pt] == [t.id for t in s.tokens]
    assert [t.logprob for t in pt[1:]] == [t.logprob for t in s.tokens[1:]]


def test_streaming_equals_non_streaming(engine: LlamaEngine) -> None:
    p = greedy(max_tokens=30)
    full = engine.chat(QUESTION, p)
    text, toks, reason = "", [], None
    for ev in engine.stream(messages=QUESTION, params=p):
        text += ev.text
        if ev.token is not None:
            toks.append(ev.token)
        reason = ev.finish_reason or reason
    assert text == full.text and reason == full.choice.finish_reason
    assert [t.logprob for t in toks] == [t.logprob for t in full.tokens]


def test_stop_sequences_cut_text(engine: LlamaEngine) -> None:
    base = engine.complete("1, 2, 3, 4,", greedy(max_tokens=20))
    assert "," in base.text
    stopped = engine.complete("1, 2, 3, 4,", greedy(max_tokens=20, stop=[","]))
    assert stopped.choice.finish_reason == "stop"
    assert stopped.text == base.text[: base.text.index(",")]
    assert "," not in stopped.text


def test_processed_mode_reflects_sampling_distribution(engine: LlamaEngine) -> None:
    raw = engine.complete(
        "The weather today is",
        GenerationParams.make(temperature=0.5, top_k=3, seed=1, max_tokens=10, top_logprobs=5),
    )
    proc = engine.complete(
        "The weather today is",
        GenerationParams.make(
            temperature=0.5,
            top_k=3,
            seed=1,
            max_tokens=10,
            top_logprobs=5,
            logprob_mode="processed",
        ),
    )
    assert [t.id for t in raw.tokens] == [t.id for t in proc.tokens]
    assert proc.logprob_mode == "processed"
    for t in proc.tokens:
        assert len(t.top_logprobs) <= 3  # tokens outside top-k cannot be sampled: not listed
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) == pytest.approx(1.0, abs=1e-4)
        assert t.rank <= 3


def test_logit_bias_forces_a_token(engine: LlamaEngine) -> None:
    tok = engine.tokenize(" banana")[0]
    c = engine.complete("My favourite fruit is", greedy(max_tokens=3, logit_bias={tok: 100}))
    assert all(t.id == tok for t in c.tokens)
    # raw logprobs ignore the bias: they stay the model's own numbers
    assert c.tokens[0].logprob < -0.01


def test_whole_vocabulary_alternatives() -> None:
    with LlamaEngine(max_logprobs=-1, n_threads=2, n_ctx=512, n_seq_max=2) as eng:
        p = GenerationParams.make(
            temperature=0, max_tokens=2, top_logprobs=eng.n_vocab, max_logprobs=eng.max_logprobs
        )
        c = eng.complete("Hi", p)
        alts = c.tokens[0].top_logprobs
        assert len(alts) == eng.n_vocab
        assert sum(math.exp(a.logprob) for a in alts) == pytest.approx(1.0, abs=1e-3)
        ent = -sum(math.exp(a.logprob) * a.logprob for a in alts)
        assert c.tokens[0].entropy == pytest.approx(ent, rel=1e-3)


def test_concurrent_requests_match_alone(engine: LlamaEngine) -> None:
    prompts = ["The sun is", "Cats like to", "In 1969, humans", "Python is a"]
    p = greedy(max_tokens=16)
    alone = [engine.complete(x, p) for x in prompts]
    results: dict[int, object] = {}

    def run(i: int) -> None:
        results[i] = engine.complete(prompts[i], p)

    steps0 = engine.stats.get("decode_steps", 0)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    steps = engine.stats["decode_steps"] - steps0
    for i, a in enumerate(alone):
        b = results[i]
        assert b.text == a.text
        assert [t.logprob for t in b.tokens] == [t.logprob for t in a.tokens]  # bit for bit
    # batched: far fewer decode steps than the tokens generated
    assert steps < sum(len(a.tokens) for a in alone)


def test_concurrent_chats_share_their_system_prompt(engine: LlamaEngine) -> None:
    """A chat admitted while another runs copies the shared template prefix (the system
    prompt) from it instead of decoding it, and still gives the tokens it gives alone."""
    system = {"role": "system", "content": "You are a careful assistant. Answer in one line."}
    first = [system, {"role": "user", "content": "Write a long poem about the sea."}]
    second = [system, {"role": "user", "content": "What colour is the sky?"}]
    p = greedy(max_tokens=12)
    alone = engine.chat(second, p)
    shared0 = engine.stats.get("shared_prefix_tokens", 0)
    running = engine.stream(None, greedy(max_tokens=200), messages=first)
    next(running)  # the first chat is decoding now
    try:
        together = engine.chat(second, p)
    finally:
        running.close()
    shared = engine.stats.get("shared_prefix_tokens", 0) - shared0
    ids = [
        engine.tokenize(engine.render_chat(m), add_bos=True, special=True) for m in (first, second)
    ]
    from logprobe.engines._scheduler import common_prefix

    # the second chat's own earlier run is cached, so it reuses even more than the system prompt
    assert shared >= common_prefix(*ids) >= 8
    assert [t.id for t in together.tokens] == [t.id for t in alone.tokens]
    assert [t.logprob for t in together.tokens] == [t.logprob for t in alone.tokens]


def test_closing_a_stream_cancels_generation(engine: LlamaEngine) -> None:
    before = engine.stats.get("cancelled_sequences", 0)
    it = engine.stream("Write a very long story about dragons:", greedy(max_tokens=400))
    for i, _ in enumerate(it):
        if i == 3:
            break
    it.close()
    # the scheduler notices on its next step
    for _ in range(100):
        if engine.stats.get("cancelled_sequences", 0) > before:
            break
        threading.Event().wait(0.02)
    assert engine.stats["cancelled_sequences"] == before + 1


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"max_tokens": -1}, "max_tokens"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"stop": [""]}, "stop"),
        ({"temperature": float("nan")}, "temperature"),
        ({"max_tokens": "ten"}, "max_tokens"),
    ],
)
def test_bad_params_name_the_field(kw: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        GenerationParams.make(**kw)
    assert e.value.param == param and param in str(e.value)


def test_bad_inputs(engine: LlamaEngine) -> None:
    with pytest.raises(InvalidRequestError, match="empty"):
        engine.complete("", greedy())
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        engine.complete("bad \udcff surrogate", greedy())
    with pytest.raises(ContextOverflowError, match="maximum context length"):
        engine.complete("word " * 9000, greedy())
    with pytest.raises(InvalidRequestError, match="outside the vocabulary"):
        engine.complete([1, 2, 10**7], greedy())
    with pytest.raises(InvalidRequestError, match="empty"):
        engine.score("")
    with pytest.raises(InvalidRequestError):
        engine.score("hello", top_logprobs=50)
    with pytest.raises(InvalidRequestError, match="messages"):
        engine.chat([], greedy())
    with pytest.raises(InvalidRequestError, match="role"):
        engine.chat([{"role": "wizard", "content": "x"}], greedy())
    with pytest.raises(ModelNotFoundError, match="not found"):
        LlamaEngine("/nonexistent/model.gguf")


def test_max_tokens_zero_and_echo_only(engine: LlamaEngine) -> None:
    c = engine.complete("Just score me", greedy(max_tokens=0, prompt_logprobs=0))
    assert c.text == "" and c.tokens == () and c.choice.finish_reason == "length"
    assert c.choice.prompt_tokens is not None and len(c.choice.prompt_tokens) >= 3


def test_closing_a_stream_before_reading_cancels(engine: LlamaEngine) -> None:
    before = engine.stats.get("cancelled_sequences", 0)
    it = engine.stream("Count to one thousand:", greedy(max_tokens=400))
    it.close()
    for _ in range(200):
        if engine.stats.get("cancelled_sequences", 0) > before:
            break
        threading.Event().wait(0.02)
    assert engine.stats["cancelled_sequences"] == before + 1
    assert list(it) == []


def test_a_scheduler_bug_fails_the_request_and_the_engine_recovers(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception inside the scheduler thread must reach the caller as an
    EngineError (never a hang), and later requests must still work with exact results."""
    from logprobe.errors import EngineError

    before = engine.complete("The sky is", greedy(max_tokens=6))
    sched = engine._sched
    real_step = sched._step
    calls = {"n": 0}

    def broken_step() -> None:
        calls["n"] += 1
        raise RuntimeError("injected fault")

    monkeypatch.setattr(sched, "_step", broken_step)
    with pytest.raises(EngineError, match="injected fault"):
        engine.complete("The sky is", greedy(max_tokens=6))
    assert calls["n"] == 1
    monkeypatch.setattr(sched, "_step", real_step)
    after = engine.complete("The sky is", greedy(max_tokens=6))
    assert [t.id for t in after.tokens] == [t.id for t in before.tokens]
    assert [t.logprob for t in after.tokens] == [t.logprob for t in before.tokens]


def test_score_with_messages_reproduces_chat_logprobs(engine: LlamaEngine) -> None:
    """Scoring a chat reply with ``messages=`` uses the prompt tokens chat() generates from, so
    it reproduces the generation's logprobs; the prompt as plain text would not (its special
    tokens would be spelled out)."""
    c = engine.chat(QUESTION, greedy(max_tokens=12))
    ids = [t.id for t in c.tokens]
    s = engine.score(ids, messages=QUESTION, top_logprobs=2)
    assert [t.id for t in s.tokens] == ids
    assert [t.logprob for t in s.tokens] == [t.logprob for t in c.tokens]
    several = engine.score_continuations(None, [ids, ids[:3]], messages=QUESTION)
    assert [t.logprob for t in several[1].tokens] == [t.logprob for t in s.tokens[:3]]
    as_text = engine.score(ids, prompt=engine.render_chat(QUESTION))
    assert as_text.prompt_token_count > len(
        engine.tokenize(engine.render_chat(QUESTION), add_bos=True, special=True)
    )
    with pytest.raises(InvalidRequestError, match="either a prompt or messages"):
        engine.score_continuations("x", ["y"], messages=QUESTION)


def test_special_token_ids_are_the_control_tokens(engine: LlamaEngine) -> None:
    special = set(engine.special_token_ids)
    for name in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        ids = engine.tokenize(name, special=True)
        assert len(ids) == 1 and ids[0] in special
        assert engine.tokenize(name) != ids  # plain text never produces a control token
    assert set(engine.eog_ids) & special
    assert not special & set(engine.tokenize("Hello world, plain words."))


def test_close_waits_for_the_decode_in_flight_and_fails_the_request() -> None:
    """close() from another thread while a generation decodes: the request fails with a clear
    error, and the context is freed only after the scheduler thread has stopped using it."""
    eng = LlamaEngine(n_threads=2, n_ctx=1024, n_seq_max=2)
    errors: list[BaseException] = []
    started = threading.Event()

    def generate() -> None:
        try:
            for _ in eng.stream(
                "Tell a very long story.",
                greedy(max_tokens=900, logit_bias={t: -100.0 for t in eng.eog_ids}),
            ):
                started.set()
        except EngineError as e:
            errors.append(e)

    t = threading.Thread(target=generate)
    t.start()
    assert started.wait(120)
    eng.close()
    assert not eng._sched._thread.is_alive()  # nothing can touch the freed context
    t.join(60)
    assert len(errors) == 1 and "closed" in str(errors[0])
    with pytest.raises(EngineError, match="closed"):
        eng.complete("Hi", greedy(max_tokens=1))

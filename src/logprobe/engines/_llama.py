"""Thin, typed wrapper over llama.cpp's C API as exposed by ``llama_cpp`` (low-level bindings).

Only what the engine needs: load a model, make a multi-sequence context, fill a batch, decode,
read the output logits as a numpy view, tokenize, token bytes, KV-cache sequence operations and
GGUF metadata. No logprob logic lives here.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._paths import logprobe_home
from ..errors import EngineError, InvalidRequestError, ModelNotFoundError
from . import _ggml
from .portability import apply_model_params, self_test

_REQUIRED = (
    "llama_backend_init",
    "llama_model_default_params",
    "llama_model_load_from_file",
    "llama_model_free",
    "llama_context_default_params",
    "llama_init_from_model",
    "llama_free",
    "llama_model_get_vocab",
    "llama_vocab_n_tokens",
    "llama_model_n_ctx_train",
    "llama_batch_init",
    "llama_batch_free",
    "llama_decode",
    "llama_get_logits",
    "llama_get_memory",
    "llama_memory_clear",
    "llama_memory_seq_rm",
    "llama_memory_seq_cp",
    "llama_tokenize",
    "llama_token_to_piece",
    "llama_vocab_is_eog",
    "llama_model_meta_val_str",
    "llama_model_chat_template",
    "llama_vocab_get_add_bos",
    "llama_vocab_bos",
    "llama_log_set",
)

_init_lock = threading.Lock()
_initialised = False
_log_cb = None  # keep the ctypes callback alive


def _lib():  # type: ignore[no-untyped-def]
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - a broken install
        raise EngineError(f"llama-cpp-python is not importable: {e}") from e
    missing = [n for n in _REQUIRED if not hasattr(llama_cpp, n)]
    if missing:  # pragma: no cover - depends on the installed version
        raise EngineError(
            "this llama-cpp-python version lacks "
            + ", ".join(missing)
            + "; install the tested range (pip install 'llama-cpp-python>=0.3.36,<0.4')"
        )
    return llama_cpp


def _init_backend() -> None:
    global _initialised, _log_cb
    with _init_lock:
        if _initialised:
            return
        ll = _lib()
        ll.llama_backend_init()
        if not os.environ.get("LOGPROBE_LLAMA_VERBOSE"):
            _log_cb = ll.llama_log_callback(lambda level, text, user_data: None)
            ll.llama_log_set(_log_cb, ctypes.c_void_p(0))
        _initialised = True


@dataclass(frozen=True, slots=True)
class ContextConfig:
    n_ctx_seq: int  # KV cells of each sequence's own stream (its context length)
    n_batch: int
    n_seq_max: int
    n_threads: int
    prefix_cache: bool = True
    reference_kernels: bool = True  # ggml's per-row kernels: batch-invariant results


class LlamaModel:
    """A loaded GGUF model with its vocabulary tables (token bytes, end-of-generation ids)."""

    def __init__(self, path: str, *, extra_buffers: bool = False) -> None:
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"model file not found: {path}")
        _init_backend()
        self.ll = ll = _lib()
        if extra_buffers:  # opt-in only: guarded by a cached self-test in a subprocess
            self_test(path, extra_buffers=True, raise_on_failure=True)
        mp = apply_model_params(ll.llama_model_default_params(), extra_buffers=extra_buffers)
        self.extra_buffers = extra_buffers
        self.ptr = ll.llama_model_load_from_file(path.encode(), mp)
        if not self.ptr:
            raise ModelNotFoundError(f"could not load a GGUF model from {path}")
        self.path = path
        self.vocab = ll.llama_model_get_vocab(self.ptr)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(ll.llama_model_n_ctx_train(self.ptr))
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(ll.llama_vocab_bos(self.vocab))
        self.token_bytes, self.eog = _vocab_tables(self, path)

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, True)
        return buf.raw[:n]

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.ll.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            n = self.ll.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.raw[:n].decode("utf-8", errors="replace")

    def special_ids(self) -> list[int]:
        """Control tokens (``<|im_start|>``, ``<|endoftext|>``...) and the unknown token: ids the
        tokenizer produces from text only when asked to parse special tokens."""
        mask = self.ll.LLAMA_TOKEN_ATTR_CONTROL | self.ll.LLAMA_TOKEN_ATTR_UNKNOWN
        get = self.ll.llama_vocab_get_attr
        return [i for i in range(self.n_vocab) if get(self.vocab, i) & mask]

    def chat_template(self) -> str | None:
        t = self.ll.llama_model_chat_template(self.ptr, None)
        return t.decode("utf-8", errors="replace") if t else None

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        if not self.ptr:
            raise EngineError("the engine is closed")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidRequestError(
                f"the text is not valid UTF-8 (undecodable data at character {e.start})",
                param="prompt",
            ) from None
        cap = len(data) + 8
        arr = (ctypes.c_int32 * cap)()
        n = self.ll.llama_tokenize(self.vocab, data, len(data), arr, cap, add_bos, special)
        if n < 0:
            cap = -n
            arr = (ctypes.c_int32 * cap)()
            n = self.ll.llama_tokenize(self.vocab, data, len(data), arr, cap, add_bos, special)
        if n < 0:  # pragma: no cover
            raise InvalidRequestError("the text could not be tokenized", param="prompt")
        return list(arr[:n])

    def close(self) -> None:
        if getattr(self, "ptr", None):
            self.ll.llama_model_free(self.ptr)
            self.ptr = None


def _cache_file(path: str) -> Path:
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return logprobe_home() / "cache" / f"vocab-{key.hexdigest()[:24]}.npz"


def _vocab_tables(model: LlamaModel, path: str) -> tuple[list[bytes], np.ndarray]:
    """Every token's bytes and end-of-generation flag, read once per model file and cached
    under ``$LOGPROBE_HOME/cache`` (49k ctypes calls cost ~0.5 s; the cache loads in ~20 ms)."""
    cache = _cache_file(path)
    try:
        with np.load(cache) as z:
            blob, offs, eog = z["blob"].tobytes(), z["offsets"], z["eog"]
        if len(offs) == model.n_vocab + 1:
            return [blob[offs[i] : offs[i + 1]] for i in range(model.n_vocab)], eog
    except (OSError, KeyError, ValueError):
        pass
    ll, vocab = model.ll, model.vocab
    pieces = [model._piece(i) for i in range(model.n_vocab)]
    eog = np.array([bool(ll.llama_vocab_is_eog(vocab, i)) for i in range(model.n_vocab)], bool)
    offsets = np.zeros(model.n_vocab + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp, blob=np.frombuffer(b"".join(pieces), dtype=np.uint8), offsets=offsets, eog=eog
        )
        os.replace(tmp, cache)
    except OSError:  # a read-only home only costs the speed-up
        pass
    return pieces, eog


class LlamaContext:
    """A llama.cpp context of ``n_seq_max`` sequences, each in its own KV stream.

    llama.cpp's non-unified KV cache ("high-throughput mode") gives every sequence a stream of
    ``n_ctx_seq`` cells that no other sequence touches; with ggml's reference kernels on (see
    :mod:`._ggml`), a row's results then depend only on its own sequence.
    """

    def __init__(self, model: LlamaModel, cfg: ContextConfig) -> None:
        ll = self.ll = model.ll
        self.model = model
        self.cfg = cfg
        cp = ll.llama_context_default_params()
        cp.n_ctx = cfg.n_ctx_seq * cfg.n_seq_max
        cp.n_batch = cfg.n_batch
        cp.n_ubatch = cfg.n_batch
        cp.n_seq_max = cfg.n_seq_max
        cp.n_threads = cfg.n_threads
        cp.n_threads_batch = cfg.n_threads
        cp.no_perf = True
        cp.kv_unified = False
        self.ptr = ll.llama_init_from_model(model.ptr, cp)
        if not self.ptr:
            raise EngineError("llama.cpp could not create a context (out of memory?)")
        n_ctx_seq = int(ll.llama_n_ctx_seq(self.ptr)) if hasattr(ll, "llama_n_ctx_seq") else 0
        if n_ctx_seq and n_ctx_seq < cfg.n_ctx_seq:  # pragma: no cover - llama.cpp's rounding
            cfg = self.cfg = ContextConfig(
                n_ctx_seq,
                cfg.n_batch,
                cfg.n_seq_max,
                cfg.n_threads,
                cfg.prefix_cache,
                cfg.reference_kernels,
            )
        self.reference_kernels = cfg.reference_kernels and _ggml.set_reference_mode(
            ctypes.cast(self.ptr, ctypes.c_void_p).value or 0
        )
        self.mem = ll.llama_get_memory(self.ptr)
        self.n_vocab = model.n_vocab
        self.batch = ll.llama_batch_init(cfg.n_batch, 0, 1)
        cap = cfg.n_batch
        self._tok = np.ctypeslib.as_array(self.batch.token, shape=(cap,))
        self._pos = np.ctypeslib.as_array(self.batch.pos, shape=(cap,))
        self._nseq = np.ctypeslib.as_array(self.batch.n_seq_id, shape=(cap,))
        self._out = np.ctypeslib.as_array(self.batch.logits, shape=(cap,))
        self._seq_ptrs = [self.batch.seq_id[i] for i in range(cap)]

    def decode(
        self,
        tokens: Sequence[int] | np.ndarray,
        positions: Sequence[int] | np.ndarray,
        seq_ids: Sequence[int] | np.ndarray,
        outputs: Sequence[bool] | np.ndarray,
    ) -> np.ndarray:
        """Decode one batch; returns a view (n_outputs, V) of the rows marked for output.

        The view is only valid until the next decode call.
        """
        n = len(tokens)
        if n == 0 or n > self.cfg.n_batch:  # pragma: no cover - callers chunk batches
            raise EngineError(f"internal: batch of {n} tokens (max {self.cfg.n_batch})")
        self._tok[:n] = tokens
        self._pos[:n] = positions
        self._nseq[:n] = 1
        out = np.asarray(outputs, dtype=np.int8)
        self._out[:n] = out
        ptrs = self._seq_ptrs
        for i, s in enumerate(seq_ids):
            ptrs[i][0] = int(s)
        self.batch.n_tokens = n
        rc = self.ll.llama_decode(self.ptr, self.batch)
        if rc == 1:
            raise InvalidRequestError(
                "the model's KV cache is full: too many tokens in flight for its context size",
                param="max_tokens",
                code="context_length_exceeded",
            )
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc}")
        n_out = int(out.sum())
        if n_out == 0:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        ptr = self.ll.llama_get_logits(self.ptr)
        return np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab))

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        self.ll.llama_memory_seq_rm(self.mem, seq, p0, p1)

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        self.ll.llama_memory_seq_cp(self.mem, src, dst, p0, p1)

    def clear(self) -> None:
        self.ll.llama_memory_clear(self.mem, True)

    def close(self) -> None:
        if getattr(self, "ptr", None):
            self.ll.llama_batch_free(self.batch)
            self.ll.llama_free(self.ptr)
            self.ptr = None

"""Helpers shared by the calibration tests: a strict PNG check and synthetic predictions."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path: Path) -> tuple[int, int]:
    """Check the signature and every chunk's CRC; return (width, height)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.4, 1.0, size=n)
    return conf, rng.random(n) < conf**2


def biased_probs(
    n: int = 600, k: int = 3, seed: int = 0, bias: float = 2.0, signal: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """A classifier with real signal whose logits favour label 0 by ``bias`` nats: most of its
    decisions are label 0, so the argmax is often wrong until the bias is corrected."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, size=n)
    logits = rng.normal(0.0, 1.0, size=(n, k))
    logits[np.arange(n), gold] += signal
    logits[:, 0] += bias
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True), gold


def signature_dict(
    labels: tuple[str, ...] = ("a", "b", "c"),
    model: str = "toy-model",
    template: str = "Text: {text}\nLabel:",
) -> dict:
    from logprobe.calibration import TaskSignature, prompt_spec

    return TaskSignature(
        model=model,
        labels=labels,
        prompt=prompt_spec(template=template),
        method="exact",
        normalize="none",
    ).to_dict()


def signed_rows(
    n: int = 600, seed: int = 0, labels: tuple[str, ...] = ("a", "b", "c"), **sig: str
) -> list[dict]:
    """Prediction rows as ``logprobe classify --dataset`` writes them, from :func:`biased_probs`."""
    probs, gold = biased_probs(n, len(labels), seed)
    signature = signature_dict(labels, **sig)
    rows = []
    for p, g in zip(probs, gold, strict=True):
        pred = int(p.argmax())
        dist = {lab: float(v) for lab, v in zip(labels, p, strict=True)}
        rows.append(
            {
                "label": labels[pred],
                "probs": dist,
                "confidence": float(p[pred]),
                "gold": labels[int(g)],
                "correct": pred == int(g),
                "logprobs": {lab: float(np.log(v)) - 0.3 for lab, v in dist.items()},
                "n_tokens": {lab: 1 for lab in labels},
                "model": signature["model"],
                "signature": signature,
            }
        )
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path

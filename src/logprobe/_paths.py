"""Where logprobe keeps its data: ``$LOGPROBE_HOME`` (default ``~/.logprobe``)."""

from __future__ import annotations

import os
from pathlib import Path


def logprobe_home() -> Path:
    """The data directory (store, caches, calibrators); created lazily by whoever writes there."""
    env = os.environ.get("LOGPROBE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".logprobe"

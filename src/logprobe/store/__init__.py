"""Run store: every run kept (SQLite by default, PostgreSQL by URL), compared and imported.

See docs/STORE.md. ``Store.open(url=None)`` resolves ``--db``/``$LOGPROBE_DB``/
``$LOGPROBE_HOME/logprobe.db``.
"""

from __future__ import annotations

from .compare import Comparison, PromptDiff, TokenDelta, align_tokens
from .connect import default_url, logprobe_home, resolve_url
from .importer import ImportIssue, ImportReport, import_file
from .metrics import LOW_CONFIDENCE, Metrics
from .migrations import MIGRATIONS
from .models import Recorded, Run, RunNotFoundError, StoredResponse
from .store import Store, check_run_name

__all__ = [
    "Comparison",
    "ImportIssue",
    "ImportReport",
    "LOW_CONFIDENCE",
    "MIGRATIONS",
    "Metrics",
    "PromptDiff",
    "Recorded",
    "Run",
    "RunNotFoundError",
    "Store",
    "StoredResponse",
    "TokenDelta",
    "align_tokens",
    "check_run_name",
    "default_url",
    "import_file",
    "logprobe_home",
    "resolve_url",
]

"""Web viewer: runs, token heatmaps, run comparison, calibration pages and a live playground.

``create_ui_app(store)`` is a standalone app (``logprobe ui``); ``mount_ui(app, store, engine)``
or ``create_ui_router(store, engine)`` serve it under ``/ui`` of another app. See docs/VIEWER.md.
"""

from __future__ import annotations

from .app import create_ui_app, create_ui_router, mount_ui
from .playground import lazy_engine

__all__ = ["create_ui_app", "create_ui_router", "lazy_engine", "mount_ui"]

"""The analysis tests share small token builders in ``analysis_helpers.py`` next to this file.

The project runs pytest with ``--import-mode=importlib``, which does not put test folders on
``sys.path``; this folder is added here so the tests can ``import analysis_helpers``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

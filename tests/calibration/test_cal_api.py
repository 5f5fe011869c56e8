"""The calibration package re-exports its public API with a sorted ``__all__``."""

from __future__ import annotations

import logprobe.calibration as cal


def test_all_is_sorted_and_complete() -> None:
    assert list(cal.__all__) == sorted(cal.__all__)
    for name in cal.__all__:
        assert hasattr(cal, name), name
    public = {n for n in vars(cal) if not n.startswith("_") and n not in {"annotations"}}
    submodules = {
        "autoselect",
        "bootstrap",
        "compare",
        "io",
        "metrics",
        "plots",
        "recalibrate",
        "report",
        "scaling",
        "selective",
        "signature",
        "thresholds",
    }
    assert public - submodules == set(cal.__all__)


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, logprobe.calibration; "
        "heavy = {'sklearn', 'matplotlib', 'torch'}; "
        "print(any(m.split('.')[0] in heavy for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

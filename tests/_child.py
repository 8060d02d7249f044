"""A child Python process that has no Graphviz ``dot`` program on its PATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_without_dot(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    """``python -c code`` with ``PATH`` set to ``path`` only (so no ``dot``), its output as text.

    It runs in ``path`` too: with no ``PLANLOOP_HOME`` in its environment, its runs are
    recorded in ``path/.planloop``, not in the checkout.
    """
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": str(path)},
        cwd=path,
    )

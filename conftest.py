"""Keep the test suite's runs out of the working directory's ``.planloop`` store.

Runs are recorded by default; every test process gets its own temporary
``PLANLOOP_HOME`` (inherited by notebook kernels and subprocesses the tests start).
"""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PLANLOOP_HOME"] = tempfile.mkdtemp(prefix="planloop-tests-")

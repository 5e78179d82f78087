"""Dependencies point inward: core imports no adapter or framework (import-linter contracts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_type_checks() -> None:
    """mypy over every package (tests and benchmarks excepted); config in pyproject.toml."""
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(mypy), "core", "admin_api", "inbound", "bots", "knowledge"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]

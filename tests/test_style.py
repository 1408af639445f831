"""The code base stays ruff clean and ruff formatted (ruff is part of the test extras).

ruff runs through this interpreter (``python -m ruff``), not whatever ``ruff`` is on
PATH: the test extra installs it into the environment that runs the suite, so a
missing ruff fails here instead of silently skipping the check.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["skcflo", "tests", "benchmarks", "examples"]


def _ruff(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, *FOLDERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_check_passes():
    result = _ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes():
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr

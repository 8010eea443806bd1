"""The reference cases computed by real PHP 8.2 (``tests/signing/reference/``), as pytest params.

They are data in the repository (see reference/README.md).  When a file is missing or unreadable the tests
*fail* with the path they looked at; a skipped golden test would let a broken signer through unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = Path(__file__).resolve().with_name("reference")


def vector_params(filename: str) -> list:
    """One ``pytest.param(case, id=case name)`` per case, or one param that fails with where it looked."""
    path = VECTORS_DIR / filename
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError) as error:
        problem = f"reference vectors {filename} not found or unreadable at {path} ({error})"
        return [pytest.param(problem, id=f"{filename}-missing")]
    return [pytest.param(case, id=case["name"]) for case in cases]


def require_case(case) -> dict:
    """The case itself, or fail the test with the loader's message when the vectors are missing."""
    if isinstance(case, str):
        pytest.fail(case)
    return case

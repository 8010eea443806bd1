"""CI's Hypothesis runs are reproducible: with ``CI`` set the suite loads the derandomized ``ci`` profile
(the same examples every run), elsewhere the ``dev`` profile; ``HYPOTHESIS_PROFILE`` overrides both."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOW = ("import tests.conftest; from hypothesis import settings; "
        "print(settings.default.derandomize, settings.default.database is None)")


@pytest.mark.parametrize("env, expected", [
    ({"CI": "true"}, "True True"),
    ({}, "False False"),
    ({"CI": "true", "HYPOTHESIS_PROFILE": "dev"}, "False False"),
])
def test_the_profile_follows_ci(env, expected):
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    out = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env={**base, **env}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected

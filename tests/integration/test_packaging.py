"""An installed wms-relay (a built wheel, not this checkout) serves the OpenAPI document with its examples:
examples/ lives at the top of the checkout, and reaches the package as ``tasks/example_events`` (a link, so
one copy), whose files the wheel carries (pyproject.toml's package data)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _checkout_copy(target: Path) -> Path:
    """The checkout's tracked files as a clone has them (links stay links), so building leaves no build/
    behind in the checkout."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, copy = ROOT / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), copy)
        elif source.is_file():
            shutil.copy2(source, copy)
    return target


def test_the_wheel_carries_the_examples_and_its_openapi_document_shows_them(tmp_path):
    source = _checkout_copy(tmp_path / "clone")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = tmp_path.glob("wms_relay-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    shipped = {name.rsplit("/", 1)[1] for name in names if name.startswith("tasks/example_events/")}
    assert shipped == {path.name for path in (ROOT / "examples").glob("*.json")}
    # The installed copy, away from the checkout (cwd /, the wheel's files first on the path).
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); from worker.web.ingest.openapi import "
              "document; import worker; d = document(); print(json.dumps([worker.__file__, "
              "d['paths']['/v1/events/stock.adjust']['post']['requestBody']['content']['application/json']"
              "['examples']['example']['value']]))")
    shown = subprocess.run([sys.executable, "-c", script, str(tmp_path / "installed")], cwd="/",
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    where, value = json.loads(shown.stdout)
    assert where.startswith(str(tmp_path / "installed"))
    assert value == json.loads((ROOT / "examples" / "stock.adjust.json").read_text())

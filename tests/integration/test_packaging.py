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

from worker.commands.demo import SCRIPT

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the checkout: (its file names, the folder it was unpacked into)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = _checkout_copy(tmp_path / "clone")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = tmp_path.glob("wms_relay-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    return names, tmp_path / "installed"


def _run_installed(installed: Path, script: str) -> list:
    """``script`` run on the installed copy, away from the checkout (cwd /, the wheel's files first on the
    path); it prints JSON."""
    preamble = "import json, sys; sys.path.insert(0, sys.argv[1]); "
    shown = subprocess.run([sys.executable, "-c", preamble + script, str(installed)], cwd="/",
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    return json.loads(shown.stdout)


def test_the_wheel_carries_the_examples_and_its_openapi_document_shows_them(wheel):
    names, installed = wheel
    shipped = {name.rsplit("/", 1)[1] for name in names
               if name.startswith("tasks/example_events/") and name.count("/") == 2}
    assert shipped == {path.name for path in (ROOT / "examples").glob("*.json")}
    where, value = _run_installed(installed, (
        "from worker.web.ingest.openapi import document; import worker; d = document(); print(json.dumps(["
        "worker.__file__, d['paths']['/v1/events/stock.adjust']['post']['requestBody']['content']"
        "['application/json']['examples']['example']['value']]))"))
    assert where.startswith(str(installed))
    assert value == json.loads((ROOT / "examples" / "stock.adjust.json").read_text())


def test_the_installed_demo_finds_its_sample_events_and_catalogs(wheel):
    """``wms-relay demo`` reads the examples the package carries, not a folder beside the checkout."""
    _, installed = wheel
    examples, events, catalogs = _run_installed(installed, (
        "from worker.commands.demo import CATALOGS, EXAMPLES, SCRIPT; print(json.dumps([str(EXAMPLES), "
        "[(EXAMPLES / name).read_text() for _, name, _ in SCRIPT], "
        "sorted(p.name for p in CATALOGS.glob('*.csv'))]))"))
    assert examples.startswith(str(installed))
    assert events == [(ROOT / "examples" / name).read_text() for _, name, _ in SCRIPT]
    assert catalogs == sorted(path.name for path in (ROOT / "examples" / "catalog").glob("*.csv")) != []

"""The checkout stands on its own: no file in it names a file it does not contain — no sibling directory,
no local copy of an API document, no brief kept elsewhere — and every repository path a doc or docstring
mentions (``worker/...``, ``tests/...``, ``docs/...``) exists.  (.ci/run also runs the signing tests
from a fresh clone in an empty directory.)"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".php", ".toml", ".cfg", ".txt", ""}
# Spelled in pieces so that this file does not name them itself.
OUTSIDE = ["../" + "shared", "design" + ".md", "trademax-api" + ".txt", "design " + "brief"]
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:worker|tasks|tests|signing|docs|benchmarks|examples|\.ci)/[\w/.-]*\w)")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    paths = [ROOT / name for name in listed.stdout.split()]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file() and "reference" not in p.parts]


def test_nothing_names_a_file_outside_the_repository():
    named = [f"{p.relative_to(ROOT)}: {word}" for p in _tracked_text_files()
             for word in OUTSIDE if word in p.read_text(errors="replace")]
    assert named == []


def test_every_repository_path_mentioned_exists():
    missing = sorted({f"{p.relative_to(ROOT)}: {m.group(1)}" for p in _tracked_text_files()
                      for m in REPO_PATH.finditer(p.read_text(errors="replace"))
                      if "*" not in m.group(1) and not (ROOT / m.group(1)).exists()})
    assert missing == []

"""signing/ is pure: its library modules import none of os, time, random, requests, redis, celery, logging.

How this is checked, and why so:

* Each library module (``signing/*.py`` except ``__main__.py``) is parsed with :mod:`ast` and its own
  imports are read — ``import x``, ``from x import y``, ``__import__("x")`` and ``importlib`` calls. This
  looks at what *our* code imports, so it cannot be fooled (or tripped) by the standard library importing
  ``os`` for itself, which it always does.
* ``signing/__main__.py`` is exempt: it is the entry point of ``python -m signing explain`` and only that
  command runs it. It is the one place allowed to read the environment (``os.environ``, handed to
  ``main(argv, environ)``). The subprocess check below proves that ``import signing`` never loads it, and
  that every module ``import signing`` does load is one of the files the AST check covered.
* ``logging`` is on the list too: signing logs nothing (the canonical string holds request data).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import signing

FORBIDDEN = {"os", "time", "random", "requests", "redis", "celery", "logging"}
PACKAGE_DIR = Path(signing.__file__).resolve().parent
REPOSITORY_ROOT = PACKAGE_DIR.parent
ENTRY_POINT = "__main__.py"


def library_modules() -> list[Path]:
    return sorted(path for path in PACKAGE_DIR.glob("*.py") if path.name != ENTRY_POINT)


def imported_names(path: Path) -> set[str]:
    """Top-level names of the modules a source file imports (relative imports stay inside signing)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            function = node.func
            called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
            if called in {"__import__", "import_module"}:
                argument = node.args[0] if node.args else None
                names.add(argument.value.split(".")[0] if isinstance(argument, ast.Constant) else "<dynamic>")
    return names


def test_the_library_modules_import_nothing_forbidden():
    modules = library_modules()
    assert {path.name for path in modules} >= {"__init__.py", "canonical.py", "flatten.py",
                                               "natural_order.py"}
    offenders = {path.name: sorted(imported_names(path) & (FORBIDDEN | {"<dynamic>", "importlib"}))
                 for path in modules}
    assert not {name: found for name, found in offenders.items() if found}


def test_the_check_itself_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os.path\nfrom time import sleep\nx = __import__('random')\n", encoding="utf-8")
    assert imported_names(sample) >= {"os", "time", "random"}


def test_import_signing_loads_only_checked_modules_and_no_io_library():
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import signing\n"
        "loaded = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'loaded': loaded, 'files': {name: getattr(sys.modules[name], '__file__', None)\n"
        "    for name in loaded if name == 'signing' or name.startswith('signing.')}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPOSITORY_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    report = json.loads(result.stdout)
    checked = {str(path) for path in library_modules()}
    assert "signing.__main__" not in report["loaded"]
    assert {str(Path(file).resolve()) for file in report["files"].values()} <= checked
    assert not {"requests", "redis", "celery", "logging"} & {name.split(".")[0] for name in report["loaded"]}

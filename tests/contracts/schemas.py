"""The contract schemas in this folder (``*.schema.json``, JSON Schema 2020-12, each quoting the API
document's section it is written from) and a validator for any definition in them, references resolved
across files (``urn:wms-relay:contract:<name>``) by the ``referencing`` registry jsonschema uses."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

HERE = Path(__file__).resolve().parent
PREFIX = "urn:wms-relay:contract:"


@lru_cache(maxsize=1)
def schemas() -> dict[str, dict]:
    """Every schema file of this folder by its ``$id``."""
    found = {}
    for path in sorted(HERE.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        found[schema["$id"]] = schema
    return found


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A validator for ``file#definition`` (``trademax-dispatch#create``) or a whole ``file``."""
    file, _, definition = name.partition("#")
    ref = PREFIX + file + (f"#/$defs/{definition}" if definition else "")
    registry = Registry().with_resources(
        (schema_id, Resource.from_contents(schema)) for schema_id, schema in schemas().items())
    return Draft202012Validator({"$ref": ref}, registry=registry)


def problems(name: str, instance) -> list[str]:
    """What is wrong with ``instance`` under ``name``, one line per error (empty: it conforms)."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator(name).iter_errors(instance)]

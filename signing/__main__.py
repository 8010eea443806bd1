"""``python -m signing explain FILE|-``: show every signing step of one request, for support staff.

The input is a JSON document ``{"method", "url", "api_key", "timestamp", "params"}`` (``params`` are the
request's own fields, without the auth params). The output is the flattened pairs in signed order, the
canonical string and the signature — what to put beside Trademax's own notes when a signature is
disputed. The secret comes from the environment variable ``TRADEMAX_SECRET`` and is never printed.

This module is the entry point only: ``import signing`` never imports it, so it is the one place in
``signing/`` that may touch the process environment (``os.environ``, passed into :func:`main`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Mapping, Sequence, TextIO

from .canonical import canonical_string, sign, signed_pairs
from .errors import SigningError

SECRET_VARIABLE = "TRADEMAX_SECRET"
DOCUMENT_FIELDS = ("method", "url", "api_key", "timestamp", "params")
EXIT_USAGE = 2


class _Refused(Exception):
    """A problem with the input or the environment, told to the user in plain words (exit 2)."""


def main(argv: Sequence[str], environ: Mapping[str, str], *, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line ``argv`` (without the program name) with the environment ``environ``."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m signing",
        description="Trademax request signing, step by step (the secret comes from $TRADEMAX_SECRET).")
    commands = parser.add_subparsers(dest="command", required=True)
    explain = commands.add_parser(
        "explain", help="print the flattened pairs, canonical string and signature of a request document",
        description='FILE (or - for standard input) holds {"method", "url", "api_key", "timestamp", '
                    '"params"}. Prints the pairs in signed order, the canonical string and the signature.')
    explain.add_argument("file", metavar="FILE|-")
    args = parser.parse_args(list(argv))
    try:
        secret = environ.get(SECRET_VARIABLE)
        if not secret:
            raise _Refused(f"{SECRET_VARIABLE} is not set (or empty): export the Trademax secret as "
                           f"{SECRET_VARIABLE} to compute the signature")
        document = _read_document(args.file, stdin)
        params = _signed_params(document)
        pairs = signed_pairs(params)
        canonical = canonical_string(params)
        signature = sign(params, secret)
    except _Refused as refusal:
        print(f"signing explain: {refusal}", file=stderr)
        return EXIT_USAGE
    except SigningError as error:  # names the key path; never holds the secret
        print(f"signing explain: the request cannot be signed: {error}", file=stderr)
        return EXIT_USAGE
    _print_explanation(pairs, canonical, signature, stdout)
    return 0


def _read_document(path: str, stdin: TextIO) -> dict:
    where = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise _Refused(f"cannot read {where}: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Refused(f"{where} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise _Refused(f"{where} must hold a JSON object with {', '.join(DOCUMENT_FIELDS)}")
    missing = [field for field in DOCUMENT_FIELDS if field not in document]
    if missing:
        raise _Refused(f"{where} lacks {', '.join(missing)} (it needs {', '.join(DOCUMENT_FIELDS)})")
    return document


def _signed_params(document: dict) -> dict:
    """The request's own params plus the four auth params, as the sender signs them."""
    params = document["params"]
    if not isinstance(params, dict):
        raise _Refused('"params" must be a JSON object (the request\'s own fields)')
    clash = [field for field in ("api_key", "timestamp", "method", "url") if field in params]
    if clash:
        raise _Refused(f'"params" must not hold the auth params ({", ".join(clash)}): they go beside it')
    return {**params, **{field: document[field] for field in ("api_key", "timestamp", "method", "url")}}


def _print_explanation(pairs: list[tuple[str, str]], canonical: str, signature: str, out: TextIO) -> None:
    print(f"Flattened pairs, in signed order ({len(pairs)}):", file=out)
    width = len(str(len(pairs)))
    for number, (key, value) in enumerate(pairs, 1):
        print(f"  {number:>{width}}  {key}={value}", file=out)
    print("", file=out)
    print("Canonical string (signed as UTF-8):", file=out)
    print(f"  {canonical}", file=out)
    print("", file=out)
    print(f"Signature (HMAC-SHA256 under ${SECRET_VARIABLE}, lowercase hex):", file=out)
    print(f"  {signature}", file=out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))

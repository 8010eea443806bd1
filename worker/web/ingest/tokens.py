"""The ingest door's bearer tokens at rest: INGEST_TOKENS_FILE, one line per token, hashes only.

    # client        hash                         operations (optional; all when left out)
    nw-wms          sha256:5e8f...c1             stock.adjust,receipt.create

``wms-relay ingest add-token CLIENT`` makes a token (``wmsr_`` + 43 URL-safe characters: 256 random bits),
prints it once and appends its hash.  The file never holds a token, so reading it (a backup, a support
screen-share) gives nobody a way in.

Why plain SHA-256 and not bcrypt/argon2: slow hashes exist to make guessing *low-entropy* secrets (human
passwords) expensive once their hashes leak.  A 256-bit random token cannot be guessed however fast the
hash is, so a slow hash would only add its cost to every request (GitHub and Stripe keep API tokens the
same way).  The ``wmsr_`` prefix lets secret scanners recognise a token pasted where it should not be.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_PREFIX = "wmsr_"
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
ALL_OPERATIONS = "*"
# A changed file is noticed within this many seconds (add-token needs no restart).
RELOAD_SECONDS = 2.0


class TokenFileError(ValueError):
    """INGEST_TOKENS_FILE cannot be used; the message names the file and line, never a hash."""


@dataclass(frozen=True)
class TokenEntry:
    client: str
    digest: bytes  # sha256 of the token
    operations: frozenset[str] | None  # None: every operation

    def allows(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse(text: str, where: str) -> list[TokenEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        match = _HASH.match(parts[1]) if len(parts) in (2, 3) else None
        if match is None or not CLIENT_NAME.match(parts[0]):
            raise TokenFileError(f"{where} line {number}: expected `CLIENT sha256:HEX [OPERATIONS]` "
                                 "(wms-relay ingest add-token writes such lines)")
        scope = None
        if len(parts) == 3 and parts[2] != ALL_OPERATIONS:
            scope = frozenset(op for op in parts[2].split(",") if op)
        entries.append(TokenEntry(parts[0], bytes.fromhex(match.group(1)), scope))
    return entries


class TokenFile:
    """The tokens of one file, re-read when it changes (checked at most every RELOAD_SECONDS)."""

    def __init__(self, path: Path, *, clock=time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._stamp: tuple | None = None
        self._entries: list[TokenEntry] = []
        self.entries()  # a missing or malformed file stops start-up

    def entries(self) -> list[TokenEntry]:
        if self._clock() - self._checked_at < RELOAD_SECONDS:
            return self._entries
        with self._lock:
            self._checked_at = self._clock()
            try:
                stat = self.path.stat()
            except OSError as exc:
                if self._stamp is None:
                    raise TokenFileError(f"INGEST_TOKENS_FILE {self.path}: {exc.strerror}; create it with "
                                         "`wms-relay ingest add-token CLIENT`") from None
                return self._entries  # gone while running: keep what was read (and say so in check)
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                text = self.path.read_text(encoding="utf-8")
                self._entries = parse(text, f"INGEST_TOKENS_FILE {self.path}")
                self._stamp = stamp
            return self._entries

    def match(self, token: str) -> TokenEntry | None:
        """The entry of ``token``, comparing its hash with every entry in constant time."""
        digest = token_digest(token)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry
        return found


def add_token(path: Path, client: str, operations: list[str] | None = None) -> str:
    """Make a token for ``client``, append its hash to ``path`` (created 0600 if missing) and return the
    token — the only time it exists outside the WMS."""
    if not CLIENT_NAME.match(client):
        raise TokenFileError("CLIENT: letters, digits and _.@- (up to 64), starting with a letter or digit")
    path = Path(path)
    if path.exists():
        parse(path.read_text(encoding="utf-8"), f"INGEST_TOKENS_FILE {path}")  # never append to a bad file
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    line = f"{client} sha256:{token_digest(token).hex()}"
    if operations:
        line += " " + ",".join(operations)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    return token

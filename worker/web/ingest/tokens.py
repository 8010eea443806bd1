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
# A changed file is noticed within this many seconds (add-token needs no restart; a line deleted from the
# file, or the file deleted, revokes within it).  One stat() per this long: nothing next to a request.
RELOAD_SECONDS = 0.5


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
    """The tokens of one file, re-read when it changes (checked at most every RELOAD_SECONDS).

    While the door runs, the file is what it says at that moment: a token added is let in, a line removed
    is revoked, and a file deleted means no tokens at all (every bearer request 401).  A file that cannot
    be read or parsed any more (an edit gone wrong) lets nobody in by token either — the old tokens are not
    kept, some may be the reason for the edit — but that is the door's fault, not the caller's:
    :meth:`entries` raises :class:`TokenFileError` (the door answers 503, so a WMS sends again later) and
    :attr:`problem` says why (``/healthz`` fails with it) until the file is good again.  At start-up a
    missing or malformed file stops the door."""

    def __init__(self, path: Path, *, clock=time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._stamp: tuple | None = None
        self._entries: list[TokenEntry] = []
        self._problem: str | None = None
        self._reload()
        if self._problem is not None:  # a missing or malformed file stops start-up
            raise TokenFileError(self._problem)
        if self._stamp is None:
            raise TokenFileError(f"INGEST_TOKENS_FILE {self.path}: No such file; create it with "
                                 "`wms-relay ingest add-token CLIENT`")

    @property
    def problem(self) -> str | None:
        """Why the file cannot be used now (it names the file and line, never a hash); None when it can."""
        self._refresh()
        return self._problem

    def entries(self) -> list[TokenEntry]:
        """The tokens the file holds now; TokenFileError while it cannot be read (see the class doc)."""
        self._refresh()
        if self._problem is not None:
            raise TokenFileError(self._problem)
        return self._entries

    def _refresh(self) -> None:
        if self._clock() - self._checked_at >= RELOAD_SECONDS:
            with self._lock:
                self._reload()

    def _reload(self) -> None:
        self._checked_at = self._clock()
        where = f"INGEST_TOKENS_FILE {self.path}"
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp, self._problem = [], None, None  # deleted: no tokens
            return
        except OSError as exc:
            self._entries, self._stamp, self._problem = [], None, f"{where}: {exc.strerror}"
            return
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        self._entries, self._stamp = [], stamp
        try:
            self._entries, self._problem = parse(self.path.read_text(encoding="utf-8"), where), None
        except TokenFileError as exc:
            self._problem = str(exc)
        except UnicodeDecodeError:
            self._problem = f"{where}: not UTF-8 text"
        except OSError as exc:
            self._stamp, self._problem = None, f"{where}: {exc.strerror}"

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

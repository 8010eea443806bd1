"""The desk's users: a text file (``DESK_USERS_FILE``), one user a line — ``name role argon2-hash`` —
written by ``wms-relay desk add-user``, read again whenever it changes (so adding, removing or demoting a
user takes effect at the user's next page, without a restart).

Roles: ``viewer`` (reads every page) and ``operator`` (also retries, discards, resolves, runs now).
Passwords are kept as Argon2id hashes (argon2-cffi's defaults, the OWASP recommendation); a sign-in with
an unknown name still verifies against a dummy hash, so the time taken does not tell which names exist.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from worker.settings import SettingsError

ROLES = ("viewer", "operator")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")


@dataclass(frozen=True)
class DeskUser:
    name: str
    role: str
    password_hash: str

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return f"DeskUser(name={self.name!r}, role={self.role!r})"

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError("a user name is 1-64 letters, digits or . _ @ - (starting with a letter or digit)")
    return name


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a desk password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def parse_users(text: str, where: str) -> dict[str, DeskUser]:
    users: dict[str, DeskUser] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ROLES or not _NAME.match(parts[0]) or \
                not parts[2].startswith("$argon2"):
            raise SettingsError(f"{where} line {number}: expected `name role hash` with role viewer or "
                                "operator and an Argon2 hash (write it with `wms-relay desk add-user`)")
        users[parts[0]] = DeskUser(*parts)
    return users


class UsersFile:
    """The users file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._users: dict[str, DeskUser] = {}

    def users(self) -> dict[str, DeskUser]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if stamp != self._seen:
                self._users = parse_users(self.path.read_text(encoding="utf-8"), str(self.path))
                self._seen = stamp
            return self._users

    def get(self, name: str) -> DeskUser | None:
        return self.users().get(name)

    def verify(self, name: str, password: str) -> DeskUser | None:
        """The user, if ``password`` is theirs; None otherwise (same work either way)."""
        user = self.get(name)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def add(self, name: str, role: str, password: str) -> bool:
        """Add the user or replace their role and password; True if they were new.  Written atomically
        (a temporary file renamed over the old one), readable by its owner only."""
        check_name(name)
        if role not in ROLES:
            raise ValueError(f"role must be viewer or operator, not {role!r}")
        line = f"{name} {role} {hash_password(password)}"
        existing = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else \
            ["# wms-relay support desk users: name role argon2-hash (wms-relay desk add-user writes it)"]
        parse_users("\n".join(existing), str(self.path))  # refuse to rewrite a file we cannot read
        kept = [old for old in existing if old.split()[:1] != [name]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".desk-users-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join([*kept, line]) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)
        return len(kept) == len(existing)

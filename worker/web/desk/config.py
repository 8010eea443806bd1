"""The desk's settings, read once from the environment into a frozen object (beside ``Settings``, which
the desk also reads for its Redis).  docs/operations.md explains each:

    DESK_USERS_FILE      the users: name, role, Argon2 hash (default <WMS_RELAY_VAR_DIR>/desk-users)
    DESK_SECRET_KEY      signs the session cookies (default: a random key kept in
                         <WMS_RELAY_VAR_DIR>/desk-secret-key, mode 0600)
    DESK_PUBLIC_URL      the address people use (https: Secure cookies, one proxy's X-Forwarded-* trusted)
    DESK_SESSION_HOURS   how long a sign-in lasts (default 8)
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from worker.settings import SettingsError

SECRET_FILE_NAME = "desk-secret-key"


@dataclass(frozen=True)
class DeskSettings:
    users_file: Path
    secret_key: str = field(repr=False)
    public_url: str = ""
    session_hours: float = 8.0

    @property
    def behind_tls(self) -> bool:
        return self.public_url.startswith("https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str], var_dir: Path) -> "DeskSettings":
        public_url = (env.get("DESK_PUBLIC_URL") or "").strip()
        parts = urlsplit(public_url)
        if public_url and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise SettingsError(f"DESK_PUBLIC_URL must be an http(s) URL like https://desk.example.com/, "
                                f"got {public_url!r}")
        raw_hours = (env.get("DESK_SESSION_HOURS") or "8").strip()
        try:
            hours = float(raw_hours)
        except ValueError:
            raise SettingsError(f"DESK_SESSION_HOURS must be a number of hours, got {raw_hours!r}") from None
        if not 0 < hours <= 24 * 30:
            raise SettingsError(f"DESK_SESSION_HOURS must be more than 0 and at most 720, got {raw_hours!r}")
        secret = env.get("DESK_SECRET_KEY") or ""
        if secret and len(secret) < 32:
            raise SettingsError("DESK_SECRET_KEY must be at least 32 characters (e.g. `python -c 'import "
                                "secrets; print(secrets.token_hex(32))'`)")
        return cls(users_file=users_file_of(env, var_dir),
                   secret_key=secret or kept_secret_key(var_dir), public_url=public_url, session_hours=hours)


def users_file_of(env: Mapping[str, str], var_dir: Path) -> Path:
    return Path(env.get("DESK_USERS_FILE") or var_dir / "desk-users")


def kept_secret_key(var_dir: Path) -> str:
    """The session-signing key kept under ``var_dir`` (made on first use, readable by its owner only), so
    sign-ins outlive a restart of the desk."""
    path = var_dir / SECRET_FILE_NAME
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another desk process made it a moment ago
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < 32:
        raise SettingsError(f"{path} holds no usable session key: delete it and start the desk again")
    return key

"""The desk's settings, read once from the environment into a frozen object (beside ``Settings``, which
the desk also reads for its Redis).  docs/operations.md explains each:

    DESK_USERS_FILE      the users: name, role, Argon2 hash (default <WMS_RELAY_VAR_DIR>/desk-users)
    DESK_SECRET_KEY      signs the session cookies (default: a random key kept in
                         <WMS_RELAY_VAR_DIR>/desk-secret-key, mode 0600)
    DESK_PUBLIC_URL      the address people use (https: Secure cookies, one proxy's X-Forwarded-* trusted)
    DESK_SESSION_HOURS   how long a sign-in lasts (default 8)

Single sign-on through a trusted reverse proxy (``proxy_sign_in.py``; unset: off):

    DESK_TRUSTED_PROXY_HEADER    the header naming the person, e.g. X-Forwarded-Email (oauth2-proxy)
    DESK_TRUSTED_PROXIES         the proxies' addresses or CIDRs, comma-separated (required with the header)
    DESK_TRUSTED_GROUPS_HEADER   the header listing the person's groups, e.g. X-Forwarded-Groups (optional)
    DESK_GROUP_ROLES             group=role pairs, comma-separated (with the groups header), e.g.
                                 wms-support=viewer,wms-operators=operator
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from worker.settings import SettingsError

SECRET_FILE_NAME = "desk-secret-key"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
ROLES = ("viewer", "operator")  # as worker.web.desk.users.ROLES


@dataclass(frozen=True)
class DeskSettings:
    users_file: Path
    secret_key: str = field(repr=False)
    public_url: str = ""
    session_hours: float = 8.0
    trusted_proxy_header: str = ""
    trusted_proxies: tuple = ()  # ipaddress networks
    trusted_groups_header: str = ""
    group_roles: tuple = ()  # (group, role) pairs

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
                   secret_key=secret or kept_secret_key(var_dir), public_url=public_url, session_hours=hours,
                   **trusted_proxy_settings(env))


def trusted_proxy_settings(env: Mapping[str, str]) -> dict:
    """The single sign-on settings, checked together: a header needs the proxies it is trusted from; the
    groups header and the group roles go in pairs, and only with the header."""
    header = (env.get("DESK_TRUSTED_PROXY_HEADER") or "").strip()
    proxies_text = (env.get("DESK_TRUSTED_PROXIES") or "").strip()
    groups_header = (env.get("DESK_TRUSTED_GROUPS_HEADER") or "").strip()
    roles_text = (env.get("DESK_GROUP_ROLES") or "").strip()
    for name, value in (("DESK_TRUSTED_PROXY_HEADER", header), ("DESK_TRUSTED_GROUPS_HEADER", groups_header)):
        if value and not _HEADER_NAME.match(value):
            raise SettingsError(f"{name} must be an HTTP header name like X-Forwarded-Email, got {value!r}")
    if not header:
        others = {"DESK_TRUSTED_PROXIES": proxies_text, "DESK_TRUSTED_GROUPS_HEADER": groups_header,
                  "DESK_GROUP_ROLES": roles_text}
        named = [name for name, value in others.items() if value]
        if named:
            raise SettingsError(f"{', '.join(named)} without DESK_TRUSTED_PROXY_HEADER does nothing: set the "
                                "header that names the person (e.g. X-Forwarded-Email), or unset them")
        return {}
    if not proxies_text:
        raise SettingsError("DESK_TRUSTED_PROXY_HEADER needs DESK_TRUSTED_PROXIES: the addresses or CIDRs of "
                            "the reverse proxies whose header is believed (e.g. 10.0.0.5,10.1.0.0/24)")
    proxies = []
    for entry in filter(None, (part.strip() for part in proxies_text.split(","))):
        try:
            proxies.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise SettingsError(f"DESK_TRUSTED_PROXIES: {entry!r} is not an address or CIDR") from None
    if bool(groups_header) != bool(roles_text):
        raise SettingsError("DESK_TRUSTED_GROUPS_HEADER and DESK_GROUP_ROLES go together: the header listing "
                            "a person's groups, and which role each group gives (group=role,...)")
    pairs = []
    for entry in filter(None, (part.strip() for part in roles_text.split(","))):
        group, _, role = entry.rpartition("=")
        if not group.strip() or role.strip() not in ROLES:
            raise SettingsError(f"DESK_GROUP_ROLES: {entry!r} is not group=viewer or group=operator")
        pairs.append((group.strip(), role.strip()))
    return {"trusted_proxy_header": header, "trusted_proxies": tuple(proxies),
            "trusted_groups_header": groups_header, "group_roles": tuple(pairs)}


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

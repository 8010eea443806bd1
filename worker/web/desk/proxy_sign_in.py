"""Single sign-on for the desk: the person a trusted reverse proxy vouches for — oauth2-proxy in front of the
organisation's OIDC provider, an nginx or Traefik forward-auth — instead of a desk password.

The proxy signs the person in with the organisation (OIDC, SAML, whatever it speaks) and passes each request
on with a header naming them (``DESK_TRUSTED_PROXY_HEADER``, e.g. oauth2-proxy's ``X-Forwarded-Email``).
The desk believes that header only on a request whose TCP peer is one of ``DESK_TRUSTED_PROXIES`` (addresses
or CIDRs; the peer itself, never an ``X-Forwarded-For`` a client could write): from anywhere else it is
ignored, the request line says so, and the person signs in with a password as before.

The role: the person's entry in the users file (its name = the header's value) if there is one; otherwise
the best role their groups give (``DESK_TRUSTED_GROUPS_HEADER``, comma-separated, mapped by
``DESK_GROUP_ROLES``); neither → refused with a page saying why (403), nothing else shown.  A header that
is not one plausible name (empty, twice, control characters, over 128 characters) is refused likewise.

Everything else stays as it is: actions still need the desk's CSRF token (kept in the browser's session
cookie), operators act and viewers look, and the audit log names the person the proxy named — their first
page in a browser session is recorded as a ``sign-in`` through the proxy.  The password sign-in
(``auth.py``) is untouched: :func:`then` runs it for every request the proxy does not vouch for.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from typing import Callable

from flask import current_app, g, render_template, request, session

from worker.web.desk.users import DeskUser
from worker.web.request_log import note

log = logging.getLogger("wms_relay.desk")

_PLAUSIBLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_RANK = {"viewer": 1, "operator": 2}
SESSION_KEY = "proxy_user"  # the proxy-named person this browser session's sign-in was audited for


def peer_address() -> str:
    """The TCP peer of the request: the proxy itself (behind DESK_PUBLIC_URL, ProxyFix keeps the original)."""
    environ = request.environ
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR") or environ.get("REMOTE_ADDR") or ""


def from_trusted_proxy(settings) -> bool:
    try:
        peer = ipaddress.ip_address(peer_address())
    except ValueError:
        return False
    return any(peer in network for network in settings.trusted_proxies)


def role_of_groups(settings, header_value: str | None) -> str | None:
    """The best role the listed groups give (operator over viewer); None when none of them gives one."""
    mapped = dict(settings.group_roles)
    roles = [mapped[group.strip()] for group in (header_value or "").split(",") if group.strip() in mapped]
    return max(roles, key=_RANK.__getitem__, default=None)


def then(password_load_user: Callable[[], object]) -> Callable[[], object]:
    """The desk's before-request check: the proxy's person when a trusted proxy names one, else
    ``password_load_user`` (the session of a password sign-in, or off to the sign-in page)."""

    def load_user():
        desk = current_app.extensions["desk"]
        settings = desk.settings
        header = settings.trusted_proxy_header
        named = request.headers.getlist(header) if header else []
        if not named or request.endpoint in ("static", "health"):
            return password_load_user()
        if not from_trusted_proxy(settings):
            note(sign_on="ignored", sign_on_reason=f"{header} from an address not in DESK_TRUSTED_PROXIES")
            return password_load_user()
        name = named[0].strip() if len(named) == 1 else ""
        if not _PLAUSIBLE.match(name):
            return _refused(f"The sign-on proxy's {header} header does not hold one user name.", None)
        user = desk.users.get(name)
        if user is None:
            role = role_of_groups(settings, request.headers.get(settings.trusted_groups_header)
                                  if settings.trusted_groups_header else None)
            if role is None:
                return _refused(f"You are signed in as {name}, but {name} is not a desk user and none of "
                                "your groups gives a desk role. Ask whoever runs the desk to add you.", name)
            user = DeskUser(name, role, "")
        g.user = user
        g.signed_on_by_proxy = True
        note(sign_on="proxy")
        if session.get(SESSION_KEY) != user.name:
            session[SESSION_KEY] = user.name
            desk.audit(actor=user.name, action="sign-in", target=peer_address(),
                       message=f"signed in as {user.role} by the trusted proxy ({header})")
        return None

    return load_user


def _refused(text: str, name: str | None):
    note(sign_on="refused", sign_on_user=name)
    g.user = None
    return render_template("error.html", title="Not a desk user", text=text), 403

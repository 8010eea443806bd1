"""Signing in and out of the desk, and who may do what.

The browser holds Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure behind TLS) with a random
session id; the server holds the id, so signing out really ends the session (a copied cookie is worth
nothing afterwards) and removing a user from the users file ends theirs at the next page.  Sign-in makes
a fresh session (no fixation).  Failed sign-ins are limited per user name and per client address.

    wms:desk:session:<sid>              string: the user name, expires after DESK_SESSION_HOURS
    wms:desk:failures:user:<hmac>       counter of failed sign-ins for a name (an HMAC under the session
                                        key: what someone typed as a name may be a password), expires
                                        FAILURE_WINDOW s
    wms:desk:failures:address:<addr>    counter of failed sign-ins from an address, expires likewise
"""
from __future__ import annotations

import functools
import hmac
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 30
OPEN_ENDPOINTS = {"auth.sign_in", "static", "health"}

bp = Blueprint("auth", __name__)


def _redis():
    return current_app.extensions["desk"].redis


def _desk():
    return current_app.extensions["desk"]


def load_user() -> None:
    """Before every request: who is signed in (``g.user``), or off to the sign-in page."""
    g.user = None
    sid, name = session.get("sid"), session.get("user")
    if sid and name:
        if _redis().get(f"wms:desk:session:{sid}") == name:
            g.user = _desk().users.get(name)
        if g.user is None:
            session.clear()
    if g.user is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.method != "GET":
            abort(401)
        return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
    return None


def operator_only(view):
    """An action: operators only (a viewer gets 403 and a sentence saying so)."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if g.user is None or not g.user.can_act:
            abort(403)
        return view(*args, **kwargs)

    return guarded


def _safe_next(target: str | None) -> str:
    """Only a path on this desk (never another site: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("overview.page")
    return target


def _name_key(name: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return "wms:desk:failures:user:" + hmac.new(key, name.encode("utf-8", "replace"), "sha256").hexdigest()


def _blocked(name: str, address: str) -> int:
    """Seconds until a sign-in may be tried again (0: now)."""
    r = _redis()
    keys = [(_name_key(name), MAX_FAILURES_PER_USER),
            (f"wms:desk:failures:address:{address}", MAX_FAILURES_PER_ADDRESS)]
    waits = [max(int(r.ttl(key)), 1) for key, limit in keys if int(r.get(key) or 0) >= limit]
    return max(waits, default=0)


def _count_failure(name: str, address: str) -> None:
    pipe = _redis().pipeline()
    for key in (_name_key(name), f"wms:desk:failures:address:{address}"):
        pipe.incr(key)
        pipe.expire(key, FAILURE_WINDOW, nx=True)
    pipe.execute()


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    desk = _desk()
    target = _safe_next(request.values.get("next"))
    if g.user is not None:
        return redirect(target)
    if request.method == "GET":
        return render_template("sign_in.html", next=target, no_users=not desk.users.users())
    name = (request.form.get("name") or "").strip()
    password = request.form.get("password") or ""
    address = request.remote_addr or "-"
    known = desk.users.get(name) is not None
    wait = _blocked(name, address)
    if wait:
        desk.audit(actor=name if known else "(unknown name)", action="sign-in-refused",
                   message=f"too many failed sign-ins; blocked for {wait} s more", target=address)
        return render_template("sign_in.html", next=target, name=name if known else "",
                               error=f"Too many failed sign-ins. Try again in {(wait + 59) // 60} min."), 429
    user = desk.users.verify(name, password)
    if user is None:
        _count_failure(name, address)
        desk.audit(actor=name if known else "(unknown name)", action="sign-in-refused",
                   message="wrong name or password", target=address)
        # An unknown name is not shown again (it may be a password typed into the wrong box).
        return render_template("sign_in.html", next=target, name=name if known else "",
                               error="That name and password do not match a desk user."), 401
    _redis().delete(_name_key(name))
    session.clear()  # a fresh session: nothing from before the sign-in carries over
    sid = secrets.token_urlsafe(24)
    _redis().set(f"wms:desk:session:{sid}", user.name, ex=int(desk.settings.session_hours * 3600))
    session.permanent = True
    session.update(sid=sid, user=user.name)
    desk.audit(actor=user.name, action="sign-in", message=f"signed in as {user.role}", target=address)
    return redirect(target)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    sid = session.get("sid")
    if sid:
        _redis().delete(f"wms:desk:session:{sid}")
    if g.user is not None:
        _desk().audit(actor=g.user.name, action="sign-out", message="signed out",
                      target=request.remote_addr or "-")
    session.clear()
    return redirect(url_for("auth.sign_in"))

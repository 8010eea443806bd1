"""Signing in and out of the desk, and who may do what.

The browser holds Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure behind TLS) with a random
session id; the server holds the id, so signing out really ends the session (a copied cookie is worth
nothing afterwards).  The server also keeps, with the id, a stamp of the user's role and password hash
at sign-in: removing a user from the users file, changing their password or their role ends every session
they have at its next page.  Sign-in makes a fresh session (no fixation).  Failed sign-ins are limited per
name + client address and per address (worker.store.sign_ins: one script checks and counts), counted for
the metrics, and audited once per lockout — not once per failure — and once per sign-in.

    wms:desk:session:<sid>              string: "<user name> <stamp of role and password hash>", expires
                                        after DESK_SESSION_HOURS
    (the sign-in limits' keys: worker.store.sign_ins)
"""
from __future__ import annotations

import functools
import hmac
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

from worker.web.desk.services import SIGN_IN_FAILURE_WINDOW

OPEN_ENDPOINTS = {"auth.sign_in", "static", "health"}

bp = Blueprint("auth", __name__)


def _redis():
    return current_app.extensions["desk"].redis


def _desk():
    return current_app.extensions["desk"]


def _stamp(user) -> str:
    """What a session remembers of its user: their role and password hash, as an HMAC (a change of
    either ends the session)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{user.role} {user.password_hash}".encode(), "sha256").hexdigest()[:32]


def load_user() -> None:
    """Before every request: who is signed in (``g.user``), or off to the sign-in page."""
    g.user = None
    sid, name = session.get("sid"), session.get("user")
    if sid and name:
        user = _desk().users.get(name)
        held = _redis().get(f"wms:desk:session:{sid}")
        if user is not None and held is not None and hmac.compare_digest(held, f"{user.name} {_stamp(user)}"):
            g.user = user
        else:
            if held is not None:  # the user was removed, or their password or role changed: it ends here
                _redis().delete(f"wms:desk:session:{sid}")
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
    limits = desk.sign_ins
    attempt = limits.attempt(name, address)
    if attempt.blocked:  # counted (wms_relay_desk_sign_ins_total{outcome="blocked"}), not audited
        return render_template("sign_in.html", next=target, name=name if known else "",
                               error="Too many failed sign-ins. Try again in "
                                     f"{(int(attempt.wait) + 59) // 60} min."), 429
    user = desk.users.verify(name, password)
    if user is None:
        for lockout in limits.refused(attempt):
            whom = (f"{name if known else 'an unknown name'} from {address}" if lockout.what == "name"
                    else f"any names from {address}")
            desk.audit(actor=name if known else "(unknown name)", action="sign-in-locked", target=address,
                       message=f"{lockout.failures} failed sign-ins ({whom}): further tries wait up to "
                               f"{SIGN_IN_FAILURE_WINDOW // 60} min")
        # An unknown name is not shown again (it may be a password typed into the wrong box).
        return render_template("sign_in.html", next=target, name=name if known else "",
                               error="That name and password do not match a desk user."), 401
    limits.signed_in(attempt)
    session.clear()  # a fresh session: nothing from before the sign-in carries over
    sid = secrets.token_urlsafe(24)
    _redis().set(f"wms:desk:session:{sid}", f"{user.name} {_stamp(user)}",
                 ex=int(desk.settings.session_hours * 3600))
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

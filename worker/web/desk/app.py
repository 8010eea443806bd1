"""The desk's Flask app: ``create_app(services)`` wires the pages (one blueprint per page), sign-in, CSRF
protection, the cookie and security-header policy, and the error pages.

Why Flask + Jinja2: the desk is a handful of server-rendered pages and forms; Flask is small, maintained,
and its templates escape everything by default (an event's ``<script>`` is text).  Forms are plain HTML
posts (no action by GET); the only script is a checkbox helper.  CSRF: Flask-WTF's ``CSRFProtect`` — a
session-bound token in every form, checked on every POST before any view runs, plus a strict Referer
check when the desk is served over https — rather than our own token code."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from worker.web import request_log
from worker.web.desk import auth, presenting, proxy_sign_in
from worker.web.desk.services import DeskServices

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_ERRORS = {
    400: ("The form could not be used",
          "It was incomplete or malformed. Go back, reload the page and try again."),
    401: ("Please sign in", "Your session has ended. Sign in again, then repeat what you were doing."),
    403: ("Not allowed for your role", "Viewers can look at everything but cannot retry, discard, resolve or "
                                       "run anything. Ask an operator."),
    404: ("Not found", "Nothing here by that name. It may have been settled and expired, or the address "
                       "is mistyped."),
    405: ("Not allowed this way", "Actions are buttons on the desk's pages (never links): use those."),
}


def create_app(services: DeskServices) -> Flask:
    app = Flask(__name__)
    settings = services.settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="wms_desk",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.behind_tls,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        PREFERRED_URL_SCHEME="https" if settings.behind_tls else "http",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the sign-in (the session holds it)
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if settings.public_url:  # behind a reverse proxy: trust its one hop for the client address and scheme
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.extensions["desk"] = services
    # One line per request (method, path, status, user, X-Request-ID...): before the sign-in check, whose
    # redirect ends the before-request chain.
    request_log.install(app, logging.getLogger("wms_relay.desk"),
                        fields=lambda: {"user": getattr(g.get("user"), "name", None)})
    CSRFProtect(app)
    presenting.install(app)

    from worker.web.desk.pages import audit, dead_letters, dispatch_ids, events, overview, retries, uncertain

    for blueprint in (auth.bp, overview.bp, dead_letters.bp, events.bp, uncertain.bp, retries.bp, audit.bp,
                      dispatch_ids.bp):
        app.register_blueprint(blueprint)
    # Who is signed in: the person a trusted reverse proxy names (single sign-on), else a password sign-in.
    app.before_request(proxy_sign_in.then(auth.load_user))

    @app.get("/healthz")
    def health():
        return {"ok": True}

    @app.after_request
    def policy(response):
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        return render_template("error.html", title="This form was refused",
                               text="It did not carry the desk's security token (CSRF), or the token belongs "
                                    f"to another session ({error.description}). Reload the page and send it "
                                    "again."), 400

    for status, (title, text) in _ERRORS.items():
        app.register_error_handler(status, _error_page(status, title, text))
    return app


def _error_page(status: int, title: str, text: str):
    def page(_error):
        return render_template("error.html", title=title, text=text), status

    return page


__all__ = ["create_app", "DeskServices", "g"]

"""One module per page of the desk, each a Flask blueprint; they act only through the support actions
(``worker.web.desk.services``)."""
from __future__ import annotations

from flask import current_app

from worker.web.desk.services import DeskServices


def services() -> DeskServices:
    return current_app.extensions["desk"]

"""The support desk: a server-rendered web app where support staff see and act on failed deliveries —
the same support actions as the ``wms-relay`` CLI (retry, discard, resolve, run now), the same audit.

    config.py      DeskSettings (DESK_* variables)         users.py    the users file, Argon2 hashes
    app.py         create_app: pages, CSRF, cookies, headers auth.py     sign-in/out, roles, rate limit
    services.py    what pages work with (the one import seam) jobs.py     bulk actions in the background
    pages/         one blueprint per page                   templates/, static/
    chart.py       the per-minute chart as SVG shapes       signing_view.py  the signing explanation
"""
from worker.web.desk.app import create_app
from worker.web.desk.services import DeskServices

__all__ = ["create_app", "DeskServices"]

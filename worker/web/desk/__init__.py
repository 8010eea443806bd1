"""The support desk: a server-rendered web app where support staff see and act on failed deliveries —
the same support actions as the ``wms-relay`` CLI (retry, discard, resolve, run now), the same audit.

    config.py      DeskSettings (DESK_* variables)         users.py    the users file, Argon2 hashes
    app.py         create_app: pages, CSRF, cookies, headers auth.py     sign-in/out, roles, rate limit
    services.py    what pages work with (the one import seam) jobs.py     bulk actions in the background
    pages/         one blueprint per page                   templates/, static/
    chart.py       the per-minute chart as SVG shapes       signing_view.py  the signing explanation

``worker.web.desk.app.create_app(services)`` builds the app on a ``worker.web.desk.services.DeskServices``
(``wms-relay desk`` serves it with ``worker.web.serving``).
"""

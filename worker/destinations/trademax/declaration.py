"""Trademax's settings, declared once (worker.destinations.declaration): the base URL, the api key and
the secret it signs with.  Its connect and read timeouts (``TRADEMAX_CONNECT_TIMEOUT``,
``TRADEMAX_READ_TIMEOUT``) are every client's and stay in worker.settings."""
from __future__ import annotations

from worker.destinations.declaration import URL, Declaration, Variable

DECLARATION = Declaration(
    name="trademax", title="Trademax", prefix="TRADEMAX",
    base_url=Variable("TRADEMAX_BASE_URL", "the Trademax API root", kind=URL,
                      default="http://dashboard.trademax.se/api/"),
    credentials=(
        Variable("TRADEMAX_API_KEY", "the public api key Trademax gave you", example="sandbox-demo-key"),
        Variable("TRADEMAX_SECRET", "the secret key Trademax gave you", secret=True),
    ),
    # The signature and the api key travel as ``signature`` / ``api_key`` in every request; the api key
    # is public (it is not scrubbed by value), but no store keeps it under its variable's name either.
    secret_keys=("signature", "api_key", "trademax_api_key"),
)

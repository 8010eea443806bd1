"""A desk app over fakeredis (text replies, as the desk's own client) with the relay's real stores and
support actions, a recording publisher, and a users file holding one operator and one viewer."""
from __future__ import annotations

import re
from pathlib import Path

import fakeredis
import pytest

from worker.delivery.relay import build_relay
from worker.settings import Settings
from worker.store.audit_log import AuditLog
from worker.store.heartbeats import Heartbeats
from worker.support.actions import SupportTools
from worker.support.workplace import Workplace
from worker.web.desk.app import create_app
from worker.web.desk.config import DeskSettings
from worker.web.desk.services import DeskServices
from worker.web.desk.users import UsersFile

PASSWORDS = {"olga": "operator-pass-1", "vic": "viewer-pass-12"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Published(list):
    def __call__(self, message: dict) -> None:
        self.append(message)


@pytest.fixture(scope="session")
def users_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("desk") / "desk-users"
    users = UsersFile(path)
    users.add("olga", "operator", PASSWORDS["olga"])
    users.add("vic", "viewer", PASSWORDS["vic"])
    return path


@pytest.fixture
def desk_services(users_path, clock):
    return desk_services_over(users_path, clock)


def desk_services_over(users_path, clock, settings: Settings | None = None, clients=None) -> DeskServices:
    """The desk's services over a fresh fakeredis: a relay with ``settings`` (default: Trademax only) and,
    if given, ``clients`` per destination (a test that delivers through ``services.relay``)."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    relay = build_relay(settings or Settings(), redis_client=client, clock=clock, sends=False,
                        clients=clients)
    published = Published()
    support = SupportTools(ledger=relay.ledger, dead_letters=relay.dead_letters, schedule=relay.schedule,
                           publish=published, dispatch_waiters=relay.dispatch_waiters, clock=clock,
                           audit=AuditLog(client, clock), via="desk")
    place = Workplace(settings or Settings(), "fakeredis (test)", relay, None, support)
    # A worker and the scheduler alive, as their heartbeats say (the status report reads them).
    Heartbeats(client, clock).beat("worker", "relay-1@test")
    Heartbeats(client, clock).beat("scheduler", "scheduler-1@test")
    published_jobs = Published()  # the bulk job tasks the desk published (a worker would run them)
    services = DeskServices(place=place, users=UsersFile(users_path),
                            settings=DeskSettings(users_file=users_path, secret_key="k" * 40),
                            publish_job=published_jobs)
    services.published = published
    services.published_jobs = published_jobs
    return services


@pytest.fixture
def app(desk_services):
    flask_app = create_app(desk_services)
    flask_app.config["TESTING"] = True
    return flask_app


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client, name: str, password: str | None = None):
    page = client.get("/sign-in")
    return client.post("/sign-in", data={"name": name, "password": password or PASSWORDS[name],
                                         "csrf_token": csrf_of(page.get_data(as_text=True))})


@pytest.fixture
def operator(app):
    client = app.test_client()
    assert sign_in(client, "olga").status_code == 302
    return client


@pytest.fixture
def viewer(app):
    client = app.test_client()
    assert sign_in(client, "vic").status_code == 302
    return client

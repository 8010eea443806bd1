"""``wms-relay desk add-user`` writes the users file (Argon2 hashes, owner-only), and ``wms-relay desk``
refuses an address other machines can reach while no user is configured."""
from __future__ import annotations

import io
import stat

import pytest

from worker.cli import main
from worker.web.desk.users import UsersFile
from worker.web.serving import is_loopback, refuse_exposure
from worker.settings import SettingsError


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "desk-users"
    monkeypatch.setenv("DESK_USERS_FILE", str(path))
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    return path


def add_user(monkeypatch, *argv: str, password: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["desk", "add-user", *argv, "--password-stdin"])


def test_add_user_writes_an_owner_only_file_of_argon2_hashes(users_file, monkeypatch, capsys):
    assert add_user(monkeypatch, "maria", "--role", "operator", password="a-long-password") == 0
    assert "Added desk user maria (operator)" in capsys.readouterr().out
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    line = users_file.read_text().splitlines()[-1]
    assert line.startswith("maria operator $argon2id$") and "a-long-password" not in users_file.read_text()
    assert UsersFile(users_file).verify("maria", "a-long-password").role == "operator"
    assert UsersFile(users_file).verify("maria", "wrong-password") is None
    assert add_user(monkeypatch, "maria", "--role", "viewer", password="another-password") == 0
    assert "Updated" in capsys.readouterr().out
    users = UsersFile(users_file)
    assert users.get("maria").role == "viewer" and users.verify("maria", "a-long-password") is None
    assert add_user(monkeypatch, "tom", "--role", "viewer", password="short") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert add_user(monkeypatch, "bad name", "--role", "viewer", password="a-long-password") == 2
    assert set(UsersFile(users_file).users()) == {"maria"}


def test_a_malformed_users_file_is_named_not_guessed(users_file):
    users_file.write_text("maria admin $argon2id$whatever\n")
    with pytest.raises(SettingsError, match="line 1: expected `name role hash`"):
        UsersFile(users_file).users()


def test_the_desk_will_not_listen_in_the_open_without_users(users_file, capsys):
    assert main(["desk", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "DESK_USERS_FILE" in err and "0.0.0.0" in err and "--host 127.0.0.1" in err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("", False), ("10.1.2.3", False),
                                            ("desk.example.com", False)])
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        refuse_exposure(host, has_credentials=False, what="x", credentials="Y")
    else:
        with pytest.raises(SettingsError):
            refuse_exposure(host, has_credentials=False, what="x", credentials="Y")
        refuse_exposure(host, has_credentials=True, what="x", credentials="Y")

"""Every scheme REDIS_URL may have reaches the broker through our kombu transports — so every broker
message is screened (``tasks.raw_messages``) whichever way the store is reached — and TLS is set up the
same for the broker and the store: ``rediss://`` and ``sentinel://...&ssl=true`` verify the server's
certificate, against REDIS_SSL_CA_CERTS when set, and show REDIS_SSL_CERTFILE / REDIS_SSL_KEYFILE where
set; the three settings are refused, naming the variable, when unreadable, incomplete or set for a store
reached without TLS.  (Real TLS connections: tests/integration/test_redis_tls.py.)"""
from __future__ import annotations

import pytest
from kombu import Connection

from worker.broker.celery_config import RedisTransport, SentinelTransport, SocketTransport, celery_config
from worker.settings import SentinelAddress, Settings, SettingsError
from worker.store.connection import tls_options

OURS = "worker.broker.celery_config:"


@pytest.fixture
def pem(tmp_path):
    """Three readable files standing in for a CA, a certificate and its key (only their paths matter)."""
    paths = {}
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
        paths[name] = str(tmp_path / name)
    return paths


@pytest.mark.parametrize("url, transport", [
    ("redis://:pw@h:6379/0", "RedisTransport"),
    ("rediss://:pw@h:6380/0", "RedisTransport"),
    ("unix://:pw@/run/valkey.sock?db=3", "SocketTransport"),
    ("sentinel://:pw@h1:26379,h2:26379/0?master_name=relay", "SentinelTransport"),
    ("sentinel://:pw@h1:26379/0?master_name=relay&ssl=true", "SentinelTransport"),
])
def test_every_scheme_goes_through_our_screened_transports(url, transport):
    config = celery_config(Settings(), url)
    assert config["broker_transport"] == OURS + transport
    for cls in (RedisTransport, SocketTransport, SentinelTransport):
        assert hasattr(cls.Channel, "_admit")  # the screen, mixed into every channel


def test_a_unix_socket_url_keeps_its_password_out_of_what_kombu_shows():
    config = celery_config(Settings(), "unix://:s3cret@/run/valkey.sock?db=3")
    assert config["broker_url"] == "socket://:s3cret@/run/valkey.sock?virtual_host=3"
    assert "s3cret" not in Connection(config["broker_url"], transport=SocketTransport).as_uri()


def test_rediss_always_verifies_the_server_and_carries_the_tls_files(pem):
    settings = Settings(redis_url="rediss://h:6380/0", redis_ssl_ca_certs=pem["ca.crt"],
                        redis_ssl_certfile=pem["client.crt"], redis_ssl_keyfile=pem["client.key"])
    expected = {"ssl_cert_reqs": "required", "ssl_ca_certs": pem["ca.crt"],
                "ssl_certfile": pem["client.crt"], "ssl_keyfile": pem["client.key"]}
    assert tls_options(settings) == expected
    assert celery_config(settings, "rediss://h:6380/0")["broker_use_ssl"] == expected
    assert celery_config(Settings(), "rediss://h:6380/0")["broker_use_ssl"] == {"ssl_cert_reqs": "required"}
    # A URL's own ssl_* parameters win, and leave the URL (kombu would otherwise drop broker_use_ssl).
    config = celery_config(settings, "rediss://h:6380/0?ssl_cert_reqs=none&health=1")
    assert config["broker_use_ssl"]["ssl_cert_reqs"] == "none"
    assert config["broker_url"].endswith("/0?health=1")
    assert celery_config(settings, "redis://h:6379/0")["broker_use_ssl"] is None


def test_sentinel_over_tls_speaks_tls_to_the_sentinels_and_the_data_servers(pem):
    url = "sentinel://:pw@h1:26379/0?master_name=relay&ssl=true&sentinel_password=spw"
    assert SentinelAddress.parse(url).ssl and not SentinelAddress.parse(url.replace("&ssl=true", "")).ssl
    settings = Settings.from_env({"REDIS_URL": url, "REDIS_SSL_CA_CERTS": pem["ca.crt"]})
    config = celery_config(settings, url)
    tls = {"ssl_cert_reqs": "required", "ssl_ca_certs": pem["ca.crt"]}
    assert config["broker_use_ssl"] == tls
    assert config["broker_transport_options"]["sentinel_kwargs"] == {"password": "spw", "ssl": True, **tls}


@pytest.mark.parametrize("env, problem", [
    ({"REDIS_URL": "rediss://h:6380/0", "REDIS_SSL_CA_CERTS": "/nonexistent/ca.crt"},
     "REDIS_SSL_CA_CERTS names '/nonexistent/ca.crt', which is not a readable file"),
    ({"REDIS_URL": "rediss://h:6380/0", "REDIS_SSL_KEYFILE": "{client.key}"},
     "REDIS_SSL_KEYFILE is set without REDIS_SSL_CERTFILE"),
    ({"REDIS_URL": "redis://h:6379/0", "REDIS_SSL_CA_CERTS": "{ca.crt}"},
     "REDIS_SSL_CA_CERTS set, but REDIS_URL does not use TLS"),
    ({"REDIS_SSL_CERTFILE": "{client.crt}"}, "REDIS_SSL_CERTFILE set, but REDIS_URL does not use TLS"),
    ({"REDIS_URL": "sentinel://h:26379/0?master_name=relay", "REDIS_SSL_CA_CERTS": "{ca.crt}"},
     "does not use TLS"),
    ({"REDIS_URL": "sentinel://h:26379/0?master_name=relay&ssl=yes"}, "ssl is true or false"),
])
def test_bad_tls_settings_stop_the_start_naming_the_variable(pem, env, problem):
    env = {name: pem[value.strip("{}")] if value.startswith("{") else value for name, value in env.items()}
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(env)


def test_tls_settings_are_read_when_the_store_speaks_tls(pem):
    settings = Settings.from_env({"REDIS_URL": "rediss://h:6380/0", "REDIS_SSL_CA_CERTS": pem["ca.crt"],
                                  "REDIS_SSL_CERTFILE": pem["client.crt"],
                                  "REDIS_SSL_KEYFILE": pem["client.key"]})
    assert str(settings.redis_ssl_ca_certs) == pem["ca.crt"]
    assert str(settings.redis_ssl_keyfile) == pem["client.key"]
    assert Settings.from_env({}).redis_ssl_ca_certs is None

"""REDIS_URL may name Sentinels (``sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/DB?master_name=NAME``):
parsed once, refused with a message naming what is wrong (never the password), turned into kombu's form
for the broker and a Sentinel-managed client for the stores, and shown without its password."""
from __future__ import annotations

import pytest

from worker.broker.celery_config import celery_config
from worker.settings import SentinelAddress, Settings, SettingsError
from worker.store.connection import describe

URL = "sentinel://:pw%40x@10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/2?master_name=relay"


def test_a_sentinel_url_is_parsed():
    address = SentinelAddress.parse(URL)
    assert address.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381))
    assert (address.master_name, address.db, address.password, address.username) == ("relay", 2, "pw@x", None)
    assert address.broker_url() == ("sentinel://:pw%40x@10.0.0.1:26379/2;sentinel://:pw%40x@10.0.0.2:26380/2;"
                                    "sentinel://:pw%40x@::1:26381/2")


@pytest.mark.parametrize("url, problem", [
    ("sentinel://10.0.0.1:26379/0", "master_name"),
    ("sentinel://10.0.0.1/0?master_name=relay", "HOST:PORT"),
    ("sentinel://:secret-pw@10.0.0.1:26379/x?master_name=relay", "database"),
])
def test_a_bad_sentinel_url_is_refused_without_its_password(url, problem):
    with pytest.raises(SettingsError, match=problem) as refused:
        Settings.from_env({"REDIS_URL": url})
    assert "secret-pw" not in str(refused.value)


def test_the_broker_gets_kombus_form_and_the_master_name():
    config = celery_config(Settings(), URL + "&sentinel_password=spw")
    assert config["broker_url"].startswith("sentinel://:pw%40x@10.0.0.1:26379/2;sentinel://")
    assert config["broker_transport"] == "worker.broker.celery_config:SentinelTransport"
    assert config["broker_transport_options"]["master_name"] == "relay"
    assert config["broker_transport_options"]["sentinel_kwargs"] == {"password": "spw"}
    plain = celery_config(Settings(), "redis://127.0.0.1:6379/0")
    assert plain["broker_transport"] == "worker.broker.celery_config:RedisTransport"
    assert "master_name" not in plain["broker_transport_options"]
    # screened too (tests/worker/broker/test_redis_schemes.py)
    tls = celery_config(Settings(), "rediss://h:6380/0")
    assert tls["broker_transport"] == "worker.broker.celery_config:RedisTransport"
    assert tls["broker_use_ssl"]["ssl_cert_reqs"] == "required"


def test_the_store_is_named_without_the_password():
    assert describe(Settings(redis_url=URL)) == \
        "sentinel://:***@10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/2?master_name=relay (REDIS_URL)"

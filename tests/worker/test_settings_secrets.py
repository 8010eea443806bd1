"""Settings never show the store's password (in a REDIS_URL error or their repr), and one rule each for
LOG_LEVEL and FLOWER_BASIC_AUTH serves `check`, `flower` and every process's logging."""
from __future__ import annotations

import io

import pytest

from worker.commands.check import settings_problems
from worker.observe.logs import configure
from worker.settings import Settings, SettingsError, valid_basic_auth


def test_a_bad_redis_url_is_named_without_its_password():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "reddis://:s3cretpw@store.example:6379/0"})
    assert "REDIS_URL" in str(caught.value) and "reddis://" in str(caught.value)
    assert "s3cretpw" not in str(caught.value)


def test_settings_repr_hides_the_store_url():
    settings = Settings.from_env({"REDIS_URL": "redis://:s3cretpw@store.example:6379/0"})
    assert settings.redis_url.endswith("6379/0") and "s3cretpw" not in repr(settings)


def test_an_unknown_log_level_is_a_settings_error_naming_the_variable():
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        configure(Settings(log_level="VERBOSE"), stream=io.StringIO())


def test_check_and_flower_read_flower_basic_auth_alike():
    assert valid_basic_auth("ops:pw,viewer:x") and not valid_basic_auth("ops:pw,")
    flagged = [v.what for v in settings_problems(Settings(flower_basic_auth="ops:pw,"))]
    assert "FLOWER_BASIC_AUTH" in flagged


def test_other_destinations_credentials_are_read_hidden_from_repr_and_scrubbed():
    from worker.redaction import Scrubber

    env = {"KACHING_ACCOUNT": "acme", "KACHING_INTEGRATION": "wms", "KACHING_API_KEY": "kaching-secret-1",
           "STOCKTRIM_AUTH_ID": "tenant", "STOCKTRIM_AUTH_SIGNATURE": "stocktrim-secret-2",
           "STOCK2SHOP_USERNAME": "relay", "STOCK2SHOP_PASSWORD": "stock2shop-secret-3",
           "STOCK2SHOP_SOURCE_ID": "57"}
    settings = Settings.from_env(env)
    secrets = ("kaching-secret-1", "stocktrim-secret-2", "stock2shop-secret-3")
    assert not any(secret in repr(settings) for secret in secrets)
    line = Scrubber.from_settings(settings).text(" ".join(secrets))
    assert not any(secret in line for secret in secrets)
    for destination in ("kaching", "stocktrim", "stock2shop"):
        assert settings.require_credentials(destination) is settings


@pytest.mark.parametrize("destination, variable", [("kaching", "KACHING_ACCOUNT"),
                                                   ("stocktrim", "STOCKTRIM_AUTH_ID"),
                                                   ("stock2shop", "STOCK2SHOP_USERNAME"),
                                                   ("trademax", "TRADEMAX_API_KEY")])
def test_a_missing_credential_is_named(destination, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings().require_credentials(destination)

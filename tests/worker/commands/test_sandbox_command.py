"""``wms-relay sandbox --api kaching|stocktrim|stock2shop`` starts the chosen fake API as a process with
its credentials from the same variables the clients read, announces its base URL, answers the harmless
request ``wms-relay check`` will send and is driven by the shared control client; a missing credential
stops it with a message naming the variable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from worker.sandbox.control import SandboxControl, wait_for_ready_line

ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = {
    "KACHING_ACCOUNT": "acme", "KACHING_INTEGRATION": "wms", "KACHING_API_KEY": "k-key",
    "STOCKTRIM_AUTH_ID": "tenant", "STOCKTRIM_AUTH_SIGNATURE": "Tenant Name",
    "STOCK2SHOP_USERNAME": "relay", "STOCK2SHOP_PASSWORD": "pw", "STOCK2SHOP_SOURCE_ID": "57",
}


def harmless_request(api: str, base_url: str) -> requests.Response:
    if api == "kaching":
        return requests.post(base_url + "imports/stock", json={}, timeout=10,
                             params={"account": "acme", "integration": "wms", "apikey": "k-key"})
    if api == "stocktrim":
        return requests.get(base_url + "api/ProcessingStatus", timeout=10,
                            headers={"api-auth-id": "tenant", "api-auth-signature": "Tenant Name"})
    token = requests.post(base_url + "v1/users/authenticate", timeout=10, json={
        "system_user_auth": {"username": "relay", "password": "pw"}}).json()["system_user"]["token"]
    return requests.get(base_url + "v1/sources", params={"token": token}, timeout=10)


@pytest.mark.parametrize("api", ["kaching", "stocktrim", "stock2shop"])
def test_sandbox_process_per_api(api):
    args = [sys.executable, "-m", "worker.cli", "sandbox", "--api", api, "--port", "0", "--max-rps", "0"]
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **CREDENTIALS}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        base_url = wait_for_ready_line(process, timeout=30)
        assert base_url.endswith("/") and not base_url.endswith("/api/")
        assert harmless_request(api, base_url).status_code == 200
        control = SandboxControl(base_url, timeout=10)
        assert control.state()["stock"] == {} and len(control.requests()) >= 1
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_missing_credential_names_the_variable():
    env = {k: v for k, v in {**os.environ, **CREDENTIALS}.items() if k != "STOCKTRIM_AUTH_SIGNATURE"}
    command = [sys.executable, "-m", "worker.cli", "sandbox", "--api", "stocktrim", "--port", "0"]
    done = subprocess.run(command,
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "STOCKTRIM_AUTH_SIGNATURE" in done.stderr

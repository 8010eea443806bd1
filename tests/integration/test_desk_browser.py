"""The support desk in a real browser (headless Chromium) against the running service: a real
valkey-server, worker, scheduler, the sandbox Trademax and the desk process.  A person signs in, finds a
dead letter by its order_no, retries it with a reason and watches it become delivered; a viewer cannot
retry; a form without its CSRF token is refused; an XSS payload in an event is shown as text; two people
retrying one letter at once send it exactly once (the sandbox's request count); an operator records the
dispatch id Trademax did not give with the event page's form.  Screenshots of the main
pages are written to var/screenshots/ (tests/fixtures/browser.py)."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from benchmarks._harness import Desk
from tests.fixtures.browser import browser_binaries, chromium, screenshot
from tests.fixtures.pipeline import FAST_SETTINGS, Pipeline, wait_until
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import start_sandbox
from tests.integration.test_delivery_pipeline import api_requests, example
from worker.web.desk.users import UsersFile

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PEOPLE = {"alice": ("operator", "alice-password-1"), "bob": ("operator", "bob-password-12"),
          "vera": ("viewer", "vera-password-1")}
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One running service and desk for the module: retries give up after one attempt, so a failure
    becomes a dead letter at once."""
    browser_binaries()  # skip (or fail in CI) before starting anything
    work = tmp_path_factory.mktemp("desk-browser")
    (work / "valkey").mkdir()
    server = RedisServer(work / "valkey").start()
    sandbox = start_sandbox()
    env = {**os.environ, **FAST_SETTINGS, "RETRY_MAX_ATTEMPTS": "1", "REDIS_URL": server.url,
           "TRADEMAX_BASE_URL": sandbox.base_url, "TRADEMAX_API_KEY": sandbox.api_key,
           "TRADEMAX_SECRET": sandbox.secret, "WMS_RELAY_VAR_DIR": str(work / "var"),
           "DESK_USERS_FILE": str(work / "desk-users")}
    env.pop("SENTRY_DSN", None)
    users = UsersFile(work / "desk-users")
    for name, (role, password) in PEOPLE.items():
        users.add(name, role, password)
    run = Pipeline(env=env, redis_server=server, sandbox=sandbox, log_dir=work)
    run.start_scheduler()
    run.start_worker()
    desk = Desk(env, work / "desk.log")
    run.desk_url = desk.url
    try:
        yield run
    finally:
        desk.stop()
        run.stop()
        sandbox.stop()
        server.kill()


@pytest.fixture(scope="module")
def browser(service):
    driver = chromium()
    yield driver
    driver.quit()


def sign_in(driver, desk_url: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(desk_url)
    assert "/sign-in" in driver.current_url
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PEOPLE[name][1])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit].primary").click()
    shows(driver, "header .who span", name)


def make_dead_receipt(service, key: str, order_no: str) -> str:
    """A receipt that fails (500) on its one allowed attempt: a dead letter; the sandbox then recovers."""
    service.sandbox.set_faults(fail_rate=1.0)
    service.enqueue("receipt.create", example("receipt.create", transaction_id=key, order_no=order_no))
    service.wait_for_state("receipt.create", key, "dead")
    service.sandbox.set_faults(fail_rate=0.0)
    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    return DeadLetters(service.redis(), delivery_ref=delivery_ref).latest_for("receipt.create", key).letter_id


def receipt_posts(service, key: str) -> list[int]:
    return [r["status"] for r in api_requests(service, "POST", "receipt")
            if r["params"].get("transaction_id") == key]


def text_of(driver, css: str) -> str:
    """The text of the element, or "" while the page is loading (after a click, or its own refresh)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.CSS_SELECTOR, css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def shows(driver, css: str, wanted: str, timeout: float = 30) -> str:
    """Wait until the element's text contains ``wanted`` (pages load after a click); return the text."""
    return wait_until(lambda: wanted in (found := text_of(driver, css)) and found, timeout,
                      f"{css} to show {wanted!r} (it shows {text_of(driver, css)!r})")


def listed_rows(driver) -> list[str] | None:
    """The texts of the list's rows, or None while the page is loading."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")]
    except StaleElementReferenceException:
        return None


def state_shown(driver) -> str:
    return text_of(driver, "#event-state")


def test_find_a_dead_letter_by_order_no_retry_it_with_a_reason_and_watch_it_delivered(service, browser):
    from selenium.webdriver.common.by import By

    letter_id = make_dead_receipt(service, "R-BROWSER", "IO-FIND-ME-42")
    sign_in(browser, service.desk_url, "alice")
    shows(browser, ".needs", "dead letter")
    screenshot(browser, "overview")
    browser.find_element(By.LINK_TEXT, "Dead letters").click()
    search = browser.find_element(By.CSS_SELECTOR, "form.filters input[name=q]")
    search.send_keys("io-find-me-42")
    search.submit()
    rows = wait_until(lambda: "io-find-me-42" in browser.current_url.lower() and listed_rows(browser), 30,
                      "the search results to load")
    assert len(rows) == 1 and letter_id in rows[0] and "R-BROWSER" in rows[0]
    screenshot(browser, "dead-letters")
    browser.find_element(By.LINK_TEXT, letter_id).click()
    wait_until(lambda: state_shown(browser) == "dead", 30, "the event page to show dead")
    screenshot(browser, "event-dead")
    browser.find_element(By.ID, "retry-letter").click()
    shows(browser, "main", "would be retried (dry run: nothing changed)")
    assert receipt_posts(service, "R-BROWSER") == [500]  # the preview sent nothing
    browser.find_element(By.NAME, "why").send_keys("Trademax is back")
    screenshot(browser, "retry-preview")
    browser.find_element(By.CSS_SELECTOR, "form.confirm button[type=submit]").click()
    shows(browser, "#summary", "1 done, 0 skipped, 0 failed")
    browser.find_element(By.CSS_SELECTOR, "table.list tbody a").click()
    wait_until(lambda: state_shown(browser) == "delivered", 60, "the event page to show delivered")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "by alice" in page and "Trademax is back" in page and "receipt_id" in page
    latencies = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tr.attempt-delivered td")]
    assert latencies and latencies[-1].endswith(" ms")  # each attempt's latency
    screenshot(browser, "event-delivered")
    assert receipt_posts(service, "R-BROWSER") == [500, 200]


def test_an_operator_records_a_dispatch_id_trademax_did_not_give_and_the_update_is_sent(service, browser):
    """A create answered 452 with no data (the sandbox's duplicate_without_data switch): the update waits;
    alice records the id with the form on the update's page and the update is sent, once, to it."""
    from selenium.webdriver.common.by import By

    from worker.destinations.trademax.client import TrademaxClient

    create = example("dispatch.create", transaction_id="BROWSER-NO-ID", draft=True)
    existing = TrademaxClient(service.sandbox.settings()).create_dispatch(
        {k: v for k, v in create.items() if k != "occurred_at"})
    service.sandbox.set_faults(duplicate_without_data=1)
    try:
        service.enqueue("dispatch.create", create)
        service.wait_for_state("dispatch.create", "BROWSER-NO-ID", "delivered")
    finally:
        service.sandbox.set_faults(duplicate_without_data=0)
    update = example("dispatch.update", transaction_id="BROWSER-NO-ID", event_id="upd-browser")
    service.enqueue("dispatch.update", update)
    service.wait_for_state("dispatch.update", "upd-browser", "waiting")

    sign_in(browser, service.desk_url, "alice")
    shows(browser, ".needs", "dispatch id Trademax did not")
    browser.get(f"{service.desk_url}events/dispatch.update/upd-browser")
    shows(browser, "#dispatch-id-unknown", "dispatch id is unknown")
    form = browser.find_element(By.CSS_SELECTOR, "#dispatch-id-unknown form")
    form.find_element(By.NAME, "dispatch_id").send_keys(str(existing.data["dispatch_id"]))
    form.find_element(By.NAME, "why").send_keys("read in Trademax's dashboard")
    screenshot(browser, "dispatch-id-unknown")
    browser.find_element(By.ID, "record-dispatch-id").click()
    shows(browser, "#summary", "1 done, 0 skipped, 0 failed")
    service.wait_for_state("dispatch.update", "upd-browser", "delivered")
    patches = [r for r in api_requests(service, "PATCH", "dispatch") if r["status"] == 200
               and r["path"].endswith(f"/{existing.data['dispatch_id']}")]
    assert len(patches) == 1
    history = service.record("dispatch.create", "BROWSER-NO-ID").history
    assert history[-1]["actor"] == "alice" and "read in Trademax's dashboard" in history[-1]["reason"]


def test_a_viewer_cannot_retry(service, browser):
    from selenium.webdriver.common.by import By

    letter_id = make_dead_receipt(service, "R-VIEWER", "IO-VIEWER")
    sign_in(browser, service.desk_url, "vera")
    browser.get(f"{service.desk_url}dead-letter/{letter_id}")
    assert state_shown(browser) == "dead"
    assert not browser.find_elements(By.ID, "retry-letter")
    assert not browser.find_elements(By.CSS_SELECTOR, "input.pick")
    # Forge the operator's form with this page's own CSRF token: the desk still refuses.
    browser.execute_script("""
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/dead-letters/act';
        const add = (name, value) => { const i = document.createElement('input'); i.type = 'hidden';
                                       i.name = name; i.value = value; form.appendChild(i); };
        add('csrf_token', document.querySelector('input[name=csrf_token]').value);
        add('action', 'retry'); add('ids', arguments[0]); add('why', 'a viewer tries');
        document.body.appendChild(form); form.submit();""", letter_id)
    shows(browser, "h1", "Not allowed for your role")
    time.sleep(1)
    assert service.state("receipt.create", "R-VIEWER") == "dead"
    assert receipt_posts(service, "R-VIEWER") == [500]


def test_a_form_without_its_csrf_token_is_refused(service, browser):
    from selenium.webdriver.common.by import By

    letter_id = make_dead_receipt(service, "R-CSRF", "IO-CSRF")
    sign_in(browser, service.desk_url, "alice")
    browser.get(f"{service.desk_url}dead-letter/{letter_id}")
    browser.find_element(By.ID, "retry-letter").click()
    shows(browser, "main", "would be retried")
    browser.find_element(By.NAME, "why").send_keys("no token")
    browser.execute_script("document.querySelectorAll('form.confirm input[name=csrf_token]')"
                           ".forEach(i => i.remove())")
    browser.find_element(By.CSS_SELECTOR, "form.confirm button[type=submit]").click()
    shows(browser, "h1", "This form was refused")
    assert "CSRF" in text_of(browser, "main")
    time.sleep(1)
    assert service.state("receipt.create", "R-CSRF") == "dead"


def test_an_xss_payload_in_an_event_is_shown_as_text(service, browser):
    from selenium.webdriver.common.by import By

    invalid = example("receipt.create", transaction_id="R-XSS", order_no=XSS)
    invalid.pop("products")  # invalid: a dead letter at the door, kept exactly as sent
    service.enqueue("receipt.create", invalid)
    sign_in(browser, service.desk_url, "alice")
    browser.get(f"{service.desk_url}dead-letters?q=onerror")
    browser.find_element(By.CSS_SELECTOR, "table.list tbody tr td a").click()
    shows(browser, "h1", "R-XSS")
    assert browser.execute_script("return window.__xss === undefined")
    assert json.dumps(XSS, ensure_ascii=False) in text_of(browser, "pre.event")  # as text, quoted as JSON
    assert not browser.find_elements(By.CSS_SELECTOR, "pre.event img, pre.event script")
    screenshot(browser, "event-invalid-xss")


def test_two_people_retrying_one_letter_at_once_retry_it_exactly_once(service, browser):
    from selenium.webdriver.common.by import By

    letter_id = make_dead_receipt(service, "R-RACE", "IO-RACE")
    other = chromium()
    try:
        sign_in(browser, service.desk_url, "alice")
        sign_in(other, service.desk_url, "bob")
        for driver, who in ((browser, "alice"), (other, "bob")):
            driver.get(f"{service.desk_url}dead-letter/{letter_id}")
            driver.find_element(By.ID, "retry-letter").click()
            shows(driver, "main", "would be retried")
            driver.find_element(By.NAME, "why").send_keys(f"{who}: Trademax is back")
        start = threading.Barrier(2)

        def confirm(driver) -> None:
            start.wait()
            driver.find_element(By.CSS_SELECTOR, "form.confirm button[type=submit]").click()

        clicks = [threading.Thread(target=confirm, args=(d,)) for d in (browser, other)]
        for click in clicks:
            click.start()
        for click in clicks:
            click.join(60)
        said = sorted(shows(d, "#summary", "done,") for d in (browser, other))
        assert said == ["0 done, 1 skipped, 0 failed.", "1 done, 0 skipped, 0 failed."]
        loser = next(d for d in (browser, other) if "1 skipped" in d.find_element(By.ID, "summary").text)
        winner = "bob" if loser is browser else "alice"
        assert f"already retried by {winner}" in loser.find_element(By.CSS_SELECTOR, "td.message").text
        screenshot(loser, "retry-raced")
    finally:
        other.quit()
    service.wait_for_state("receipt.create", "R-RACE", "delivered")
    wait_until(lambda: service.redis().llen("trademax.receipt") == 0, 30, "the receipt queue to drain")
    time.sleep(1)
    assert receipt_posts(service, "R-RACE") == [500, 200]

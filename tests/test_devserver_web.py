"""The dev server's live page in a real headless Chromium (Debian's chromium and
chromium-driver, driven by selenium; ``.ci/run`` installs them).

Events tracked by the SDK appear on the page without a reload, newest first; the
filters hide the others; a refused request (401) appears with its status and reason;
a click shows the full JSON; user data is shown as text, never run as HTML; the page
loads nothing from any other origin. Every wait is an explicit, bounded WebDriverWait.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable, Iterator, List

import pytest
import requests

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15.0
KEY = "web-key"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
)

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the test and dev extras install selenium
    webdriver = None


def _missing() -> str:
    """Why the browser test cannot run here ("" when it can)."""
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return (
                f"{path} is missing: install Debian's chromium and chromium-driver"
                " (apt-get install chromium chromium-driver; .ci/run does it as root)"
            )
    return ""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile directory."""
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="rudder-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # An explicit driver path: selenium-manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(KEY,)) as dev:
        yield dev


def client_for(server: DevServer, key: str = KEY) -> Client:
    """An SDK client that delivers quickly to ``server``."""
    return Client(key, server.url, upload_interval=0.05, atexit=False, retry_base_delay=0.01)


def until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    """Wait (bounded) until ``condition(driver)`` is truthy; fail naming ``what``."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message=what)


def rows(driver: Any, table: str) -> List[List[str]]:
    """The visible rows of ``#events`` or ``#rejections`` as lists of cell texts."""
    found = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in found if row.is_displayed()]


def open_page(driver: Any, server: DevServer) -> None:
    """Load the page at ``/`` and wait until its live feed is connected."""
    driver.get(server.page_url)
    until(driver, lambda d: d.find_element(By.ID, "status").get_attribute("data-state")
          == "live", "the live feed to connect")


def test_tracked_events_appear_live_newest_first(browser: Any, server: DevServer) -> None:
    """Events sent by the SDK after the page loaded appear on it without a reload,
    newest first, with type, user, name and properties."""
    open_page(browser, server)
    browser.execute_script("window.notReloaded = true;")
    client = client_for(server)
    try:
        client.track(user_id="ada", event="Signed Up", properties={"plan": "pro"})
        assert client.flush(timeout=WAIT)
        client.page(user_id="ada", name="Pricing")
        assert client.flush(timeout=WAIT)
    finally:
        client.shutdown(timeout=WAIT)
    until(browser, lambda d: len(rows(d, "events")) == 2, "two event rows")
    newest, oldest = rows(browser, "events")
    assert newest[1:4] == ["page", "ada", "Pricing"]
    assert oldest[1:4] == ["track", "ada", "Signed Up"]
    assert '"plan":"pro"' in oldest[4]
    assert browser.execute_script("return window.notReloaded === true;")


def test_filters_hide_the_other_events(browser: Any, server: DevServer) -> None:
    """The type, user and event filters each hide the events that do not match."""
    client = client_for(server)
    try:
        client.track(user_id="u-one", event="Order Completed")
        client.track(user_id="u-two", event="Signed Up")
        client.identify(user_id="u-one", traits={"email": "a@example.com"})
        assert client.flush(timeout=WAIT)
    finally:
        client.shutdown(timeout=WAIT)
    open_page(browser, server)  # events stored before the page opened are shown too
    until(browser, lambda d: len(rows(d, "events")) == 3, "three event rows")

    Select(browser.find_element(By.ID, "filter-type")).select_by_value("identify")
    until(browser, lambda d: [r[1] for r in rows(d, "events")] == ["identify"],
          "only the identify row")
    Select(browser.find_element(By.ID, "filter-type")).select_by_value("")

    browser.find_element(By.ID, "filter-user").send_keys("u-two")
    until(browser, lambda d: [r[2] for r in rows(d, "events")] == ["u-two"], "only u-two")
    browser.find_element(By.ID, "filter-user").clear()
    browser.execute_script(
        "document.getElementById('filter-user').dispatchEvent(new Event('input'))")

    browser.find_element(By.ID, "filter-event").send_keys("order")
    until(browser, lambda d: [r[3] for r in rows(d, "events")] == ["Order Completed"],
          "only the Order Completed row")


def test_rejected_request_appears_with_status_and_reason(
    browser: Any, server: DevServer
) -> None:
    """A client with a wrong write key gets 401; the page lists it under rejected
    requests with the status, the route, the gateway's reason and the key."""
    open_page(browser, server)
    client = client_for(server, key="wrong-key")
    try:
        client.track(user_id="u1", event="Lost")
        client.flush(timeout=WAIT)
    finally:
        client.shutdown(timeout=WAIT)
    until(browser, lambda d: len(rows(d, "rejections")) == 1, "one rejection row")
    rejection = rows(browser, "rejections")[0]
    assert rejection[1:] == ["401", "POST /v1/batch", "invalid write key", "wrong-key"]
    assert rows(browser, "events") == []


def test_click_shows_the_full_json(browser: Any, server: DevServer) -> None:
    """Clicking an event shows its whole stored JSON, enrichment and context included."""
    open_page(browser, server)
    client = client_for(server)
    try:
        client.track(user_id="u1", event="Clicked", properties={"nested": {"deep": [1, 2]}})
        assert client.flush(timeout=WAIT)
    finally:
        client.shutdown(timeout=WAIT)
    until(browser, lambda d: len(rows(d, "events")) == 1, "one event row")
    browser.find_element(By.CSS_SELECTOR, "#events tbody tr").click()
    shown = until(browser, lambda d: d.find_element(By.ID, "detail").text, "the details")
    stored = server.events()[0]
    import json

    assert json.loads(shown) == stored
    assert "rudderId" in shown and '"deep"' in shown and '"context"' in shown


def test_user_data_is_shown_as_text_never_as_html(browser: Any, server: DevServer) -> None:
    """Markup in a property value, an event name and a refused path is displayed
    literally: no element is created and no script runs."""
    attack = "<img src=x onerror=\"window.pwned=1\">"
    open_page(browser, server)
    client = client_for(server)
    try:
        client.track(user_id="u1", event=attack, properties={"note": attack})
        assert client.flush(timeout=WAIT)
    finally:
        client.shutdown(timeout=WAIT)
    answer = requests.post(server.url + "/v1/%3Cb%3Ebold%3C%2Fb%3E", timeout=WAIT)
    assert answer.status_code == 404
    until(browser, lambda d: len(rows(d, "events")) == 1 and len(rows(d, "rejections")) == 1,
          "the event and the rejection")
    event = rows(browser, "events")[0]
    assert event[3] == attack and attack.replace('"', '\\"') in event[4]
    assert rows(browser, "rejections")[0][2] == "POST /v1/<b>bold</b>"
    browser.find_element(By.CSS_SELECTOR, "#events tbody tr").click()
    until(browser, lambda d: "onerror" in d.find_element(By.ID, "detail").text, "details")
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main b") == []
    assert browser.execute_script("return window.pwned === undefined;")


def test_page_loads_nothing_from_elsewhere(browser: Any, server: DevServer) -> None:
    """Everything the page loads comes from the dev server itself (no CDN), and the
    answer forbids other origins with a Content-Security-Policy."""
    open_page(browser, server)
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });"
    )
    assert loaded, "the page loads its script and style sheet"
    assert all(name.startswith(server.url + "/") for name in loaded), loaded
    answer = requests.get(server.url + "/", headers={"Accept": "text/html"}, timeout=WAIT)
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]

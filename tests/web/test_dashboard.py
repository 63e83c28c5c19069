"""The dashboard: the login and its cookie over HTTP, then every page in a real headless Chromium.

The browser tests use Debian's chromium and chromium-driver (installed by .ci/run) through
Selenium, which is told never to download a browser. Screenshots of every page are kept in
$CALIPER_STORE_TEST_ARTIFACTS (default: test-artifacts/ in the checkout).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from tests.fixtures.server import ServerProcess
from tests.reports.course_data import COURSE_A, S1, S2, fill_course

from caliper_store.storage import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("CALIPER_STORE_TEST_ARTIFACTS", "test-artifacts"))
NOW = "2024-03-01T00:00:00.000000Z"
PAGES = ("/", "/course?groupId=x", "/student?groupId=x&actorId=y", "/delivery", "/quarantine")


def test_every_page_needs_a_login_and_only_a_read_key_logs_in(
    server: ServerProcess, store: Store
) -> None:
    ingest_key, _ = store.keys.create(label="Learn", now=NOW)
    reader, reader_key = store.keys.create(label="advisor", now=NOW, scopes=("read",))
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for path in PAGES:
            answer = http.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/login?next=" + quote(path, safe="")
        assert http.get("/login").status_code == 200
        refused = http.post("/login", data={"key": ingest_key})
        assert refused.status_code == 401
        assert "caliper_store_session" not in refused.cookies
        assert http.post("/login", data={"key": "not a key"}).status_code == 401
        # Another site's address is never where a login leads.
        logged_in = http.post("/login", data={"key": reader, "next": "//evil.example/"})
        assert (logged_in.status_code, logged_in.headers["location"]) == (303, "/")
        cookie = logged_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert reader not in cookie  # the cookie names the key's id, never the key
        assert http.get("/").status_code == 200
        forged = logged_in.cookies["caliper_store_session"][:-2] + "xx"
        with httpx.Client(base_url=server.base_url, timeout=60) as stranger:
            forged_answer = stranger.get("/", headers={"Cookie": f"caliper_store_session={forged}"})
            assert forged_answer.status_code == 303
        # Revoking the key ends its sessions at their next request.
        store.keys.set_status(reader_key.id, "revoked", now=NOW)
        assert http.get("/").status_code == 303
        http.cookies.clear()
        admin, _ = store.keys.create(label="operator", now=NOW, scopes=("admin",))
        assert http.post("/login", data={"key": admin}).status_code == 303
        assert http.get("/quarantine").status_code == 200
        out = http.post("/logout")
        assert out.status_code == 303
        assert http.get("/quarantine").status_code == 303


def test_a_bad_parameter_is_a_page_naming_it(server: ServerProcess, store: Store) -> None:
    reader, _ = store.keys.create(label="advisor", now=NOW, scopes=("read",))
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        http.post("/login", data={"key": reader})
        answer = http.get("/course", params={"groupId": COURSE_A, "sort": "shoe size"})
        assert answer.status_code == 400
        assert "sort must be one of" in answer.text
        assert http.get("/course").status_code == 400


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "no /usr/bin/chromium and /usr/bin/chromedriver (apt install chromium chromium-driver)"
        )

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[no-untyped-call]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_every_page_in_a_real_browser(
    server: ServerProcess, store: Store, browser: WebDriver, database_url: str
) -> None:
    driver = browser
    fill_course(store)
    reader, _ = store.keys.create(label="advisor", now=NOW, scopes=("read",))
    base = server.base_url
    backend = database_url.split(":")[0]
    shots = ARTIFACTS / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)

    def text(selector: str) -> str:
        return str(driver.find_element(By.CSS_SELECTOR, selector).text)

    def visit(path: str, name: str, *, has_chart: bool) -> None:
        driver.get(base + path)
        if has_chart:  # uPlot draws a canvas once the page's script ran
            WebDriverWait(driver, 30).until(
                expected_conditions.presence_of_element_located(
                    (By.CSS_SELECTOR, "figure.chart canvas")
                )
            )
        driver.save_screenshot(str(shots / f"{backend}-{name}.png"))

    driver.get(base + "/course?groupId=" + quote(COURSE_A, safe=""))
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "key").send_keys(reader)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "students"))
    )

    at = "2024-03-06T10:00:00Z"
    visit(f"/?since=2024-03-01&until=2024-03-08&at={at}", "overview", has_chart=True)
    courses = text("#courses")
    assert COURSE_A in courses
    assert "BIO-101" in courses
    assert "Learn" in text("#events-per-key")
    assert "id_conflict" in text("#quarantine-by-reason")
    # Every day of the period is on the chart, 0 where nothing came (3 of the 7 days).
    chart = json.loads(
        driver.find_element(By.ID, "events-per-day").get_attribute("textContent") or ""
    )
    assert len(chart["x"]) == 7
    canvas = next(series for series in chart["series"] if series["label"] == "Canvas")
    assert canvas["values"] == [0, 0, 0, 4, 0, 0, 0]

    course = f"/course?groupId={quote(COURSE_A, safe='')}&at={at}&sort=visits&dir=desc"
    visit(course, "course", has_chart=True)
    s1_row = driver.find_element(By.XPATH, f"//table[@id='students']//tr[td/a[text()='{S1}']]")
    cells = [cell.text for cell in s1_row.find_elements(By.TAG_NAME, "td")]
    assert cells[2:6] == ["6", "2", "2", "3600.0"]  # events, active days, visits, time active
    s2_row = driver.find_element(By.XPATH, f"//table[@id='students']//tr[td/a[text()='{S2}']]")
    assert "at risk: activity, grade" in s2_row.text
    assert s2_row.get_attribute("class") == "at-risk"
    assert "Course average (3 learners)" in text("#students tfoot")

    driver.find_element(By.LINK_TEXT, S1).click()
    WebDriverWait(driver, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "timeline"))
    )
    driver.save_screenshot(str(shots / f"{backend}-student.png"))
    grades = text("#grades")
    assert "7.0" in grades
    assert "latest" in grades
    assert len(driver.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")) == 6

    store.forwarding.add(
        name="warehouse",
        url="http://127.0.0.1:9/caliper",
        api_key="their key",
        event_types=None,
        key_ids=None,
        batch_events=100,
        is_from_start=True,
        now=NOW,
    )
    store.forwarding.set_paused("warehouse", is_paused=True)
    visit(
        "/delivery?since=2024-03-04T14:00:00Z&until=2024-03-05T14:00:00Z&at=2024-03-05T14:30:00Z",
        "delivery",
        has_chart=True,
    )
    silent = driver.find_element(By.CSS_SELECTOR, "#keys tr.silent")
    assert "Canvas" in silent.text
    assert "id_conflict" in text("#delivery-quarantine")
    assert "91800.0" in text("#hours")  # the event sent a day late
    forwarding = driver.find_element(By.CSS_SELECTOR, "#forwarding tbody tr")
    cells = [cell.text for cell in forwarding.find_elements(By.TAG_NAME, "td")]
    assert cells[:5] == [
        "warehouse",
        "http://127.0.0.1:9/caliper",
        "paused",
        "0",
        str(store.stats()["events"]),
    ]
    assert float(cells[5]) > 0  # never delivered: the oldest event waiting gives the lag

    visit("/quarantine", "quarantine", has_chart=False)
    assert "id_conflict" in text("#held")
    assert "Canvas" in text("#held")

    logged = driver.get_log("browser")  # type: ignore[no-untyped-call]
    errors = [entry for entry in logged if entry["level"] == "SEVERE"]
    assert errors == []
    # Every network request went to the server itself (the browser's own chrome:// pages aside).
    requested = _requested_urls(driver)
    assert any(url.startswith(base + "/static/vendor/uplot") for url in requested)
    network = [url for url in requested if url.startswith(("http:", "https:", "ws:", "wss:"))]
    assert [url for url in network if not url.startswith(base + "/")] == []

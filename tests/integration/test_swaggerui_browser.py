"""Swagger UI in a real headless browser (Debian's chromium through selenium and chromedriver):
the page renders the operations of the simulator's spec, and "try it out" reaches the pod through
a real kubectl tunnel.

Skipped when chromium, chromedriver, selenium or the Swagger UI assets are missing, unless
KPORTFORWARD_REQUIRE_BROWSER=1 (CI sets it once it installs chromium), which turns the skip into a
failure so the test can never silently stop running.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from kportforward.sim import Simulator

from .test_swaggerui_server import LoopThread, api_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("KPORTFORWARD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{why} and KPORTFORWARD_REQUIRE_BROWSER=1")
    pytest.skip(why)


@pytest.fixture
def browser(tmp_path) -> Iterator[Any]:
    """A headless chromium with a fresh profile, quit after the test."""
    _require(os.path.exists(CHROMIUM), "chromium is not installed")
    _require(os.path.exists(CHROMEDRIVER), "chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require(False, "selenium is not installed")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
        options=options,
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.timeout(180)
def test_swagger_ui_renders_and_try_it_out_reaches_the_pod(
    sim_factory, port_forward, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sim: Simulator = sim_factory(api_world())
    pf = port_forward(sim, "service/api", 80)
    (pod,) = sim.pods("default", {"app": "api"})
    with LoopThread() as loop:
        ui = loop.start_ui()
        url = loop.call(ui.publish, "api", pf.local_port, "api", "openapi.json")
        driver = browser
        driver.get(url)
        wait = WebDriverWait(driver, 30)

        # The operations of the simulator's spec are rendered.
        wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, ".opblock")))
        paths = {
            e.get_attribute("data-path")
            for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        }
        assert paths == {"/whoami", "/echo", "/status/{code}"}, paths
        title = driver.find_element(By.CSS_SELECTOR, ".info .title").text
        assert "Simulated pod API" in title
        # The servers drop-down offers the proxy route, not the pod's own (unreachable) address.
        server = driver.find_element(By.CSS_SELECTOR, ".servers select")
        assert "/api/proxy/api" in server.text

        # "Try it out" on GET /whoami: the request goes through the proxy and the kubectl tunnel.
        whoami = driver.find_element(By.CSS_SELECTOR, "#operations-default-whoami")
        whoami.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda d: whoami.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
        whoami.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        wait.until(lambda d: whoami.find_elements(By.CSS_SELECTOR, "button.execute"))
        connections_before = pf.stdout.count("Handling connection")
        whoami.find_element(By.CSS_SELECTOR, "button.execute").click()
        wait.until(
            lambda d: whoami.find_elements(
                By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
            )
        )
        status = whoami.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        ).text
        body = whoami.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description pre"
        ).text
        assert status.strip().startswith("200"), status
        assert json.loads(body) == {"pod": pod, "namespace": "default", "port": 8080}
        # kubectl saw the connection: the answer came through the tunnel, not from anywhere else.
        assert pf.stdout.count("Handling connection") > connections_before

        # A POST with the example body: the browser sends an Origin header, ours, accepted.
        echo = driver.find_element(By.CSS_SELECTOR, "#operations-default-echo")
        echo.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda d: echo.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
        echo.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        wait.until(lambda d: echo.find_elements(By.CSS_SELECTOR, "button.execute"))
        echo.find_element(By.CSS_SELECTOR, "button.execute").click()
        row = ".live-responses-table tr.response"
        wait.until(lambda d: echo.find_elements(By.CSS_SELECTOR, f"{row} .response-col_status"))
        assert echo.find_element(By.CSS_SELECTOR, f"{row} .response-col_status").text.startswith(
            "200"
        )
        answer = json.loads(
            echo.find_element(By.CSS_SELECTOR, f"{row} .response-col_description pre").text
        )
        assert answer == {
            "echo": {"hello": "world"},
            "pod": pod,
            "namespace": "default",
            "port": 8080,
        }

        # The page loaded without a blocked script or a failed request.
        errors = [
            e["message"]
            for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"]
        ]
        assert errors == []

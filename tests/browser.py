"""Headless Chromium for the dashboard tests: Debian's chromium and chromium-driver, as .ci/run installs them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(profile: Path) -> Iterator[object]:
    """A selenium driver of headless Chromium, quit on the way out; fails under CI=true when it is missing."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium and chromium-driver are missing; .ci/run installs them")
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # the machine's network is closed: no update or sync traffic
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, *texts: str, timeout: float = 30.0) -> str:
    """The page's text once it shows every one of `texts`; fails with what it showed instead."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    body: list[str] = [""]

    def shows_all(d) -> bool:
        body[0] = d.find_element(By.TAG_NAME, "body").text
        return all(text in body[0] for text in texts)

    try:
        WebDriverWait(driver, timeout).until(shows_all)
    except Exception as error:  # selenium's TimeoutException: say what the page showed instead
        raise AssertionError(f"page never showed {texts}; it showed:\n{body[0][:2000]}") from error
    return body[0]

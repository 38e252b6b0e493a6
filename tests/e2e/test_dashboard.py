"""`search dashboard`: optuna-dashboard over a real SQLite study, checked in headless Chromium."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from browser import wait_for_text
from ports import free_port
from processes import SEARCH, search_server

from search.reporting.dashboard import exposure_warning, is_loopback
from search.study.record import TrialRecord

STUDY = "dashboard-check"


def _make_study(path: Path) -> str:
    """A small finished study written with Optuna directly (no training): 3 trials with user attrs."""
    url = f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=STUDY, storage=url, direction="maximize")
    for number, value in enumerate((0.81, 0.86, 0.84)):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_categorical("family", ["siamese", "cnn2ch"])
        TrialRecord(fold_std=0.01 * (number + 1), n_params=70_000 + number).write(trial)
        study.tell(trial, value)
    return url


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    """A `search dashboard` subprocess over a fresh study; yields its base URL."""
    port = free_port()
    with search_server("dashboard", "--storage", _make_study(tmp_path / "study.db"), port=port) as process:
        yield f"http://127.0.0.1:{port}"
    assert process.returncode in (0, -15)


@pytest.mark.browser
def test_dashboard_shows_study_and_trials_in_chromium(dashboard: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{dashboard}/dashboard/")
    wait_for_text(browser, STUDY)

    # Follow the study's link from the study list, as a person would.
    links = [a for a in browser.find_elements(By.TAG_NAME, "a") if STUDY in a.text]
    assert links, "the study list has no link to the study"
    links[0].click()
    study_page = wait_for_text(browser, f"{STUDY} (id=", "Best Trial")
    assert "0.86" in study_page  # the best value (maximize)

    study_url = browser.current_url.rstrip("/")
    browser.get(f"{study_url}/trials")
    trials_page = wait_for_text(browser, "3 Trials", "Trial 0", "Trial 1", "Trial 2")
    assert trials_page.count("Complete") >= 3
    assert "fold_std" in trials_page and "n_params" in trials_page  # the user attrs the objective writes

    screenshot = tmp_path / "dashboard-trials.png"
    assert browser.save_screenshot(str(screenshot))
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_dashboard_api_lists_the_study(dashboard: str) -> None:
    with urllib.request.urlopen(f"{dashboard}/api/studies", timeout=10) as response:
        body = response.read().decode()
    assert f'"study_name": "{STUDY}"' in body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_need_no_warning(host: str) -> None:
    assert is_loopback(host)
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "dashboard.example.org"])
def test_other_hosts_get_the_no_authentication_warning(host: str) -> None:
    assert not is_loopback(host)
    assert "no authentication" in exposure_warning(host)


def test_cli_warns_for_public_host_and_reports_busy_port(tmp_path: Path) -> None:
    """Binding 0.0.0.0 prints the warning first; a port already taken is one red line and exit code 1."""
    storage = f"sqlite:///{tmp_path / 'empty.db'}"
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [SEARCH, "dashboard", "--storage", storage, "--host", "0.0.0.0", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "warning: The dashboard has no authentication" in result.stderr
    assert f"error: Cannot listen on 0.0.0.0:{port} for the dashboard" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_unreachable_storage(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no-such-dir" / "study.db"
    result = subprocess.run(
        [SEARCH, "dashboard", "--storage", f"sqlite:///{missing_dir}", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr

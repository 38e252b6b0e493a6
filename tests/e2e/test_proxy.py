"""`search proxy`: Optuna's gRPC storage proxy in front of a database, with a real worker behind it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ports import free_port
from processes import SEARCH, search_server

from search.errors import SearchError
from search.storage.leases import LEASE_ATTR
from search.storage.proxy import serve_proxy
from search.study.record import TrialRecord


def test_worker_through_proxy_writes_to_the_database(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'behind-proxy.db'}"
    port = free_port()
    with search_server("proxy", "--storage", database, port=port) as proxy:
        worker = subprocess.run(
            [
                SEARCH,
                "run",
                "--study",
                "smoke",
                "--trials",
                "2",
                "--workers",
                "1",
                "--threads",
                "1",
                "--storage",
                f"grpc://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    out, _ = proxy.communicate(timeout=30)
    assert worker.returncode == 0, worker.stderr
    assert "2/2 new finished trials" in worker.stdout
    assert f"grpc://127.0.0.1:{port}" in out

    # The trials landed in the database behind the proxy, with the objective's user attrs.
    trials = optuna.load_study(study_name="smoke", storage=database).get_trials(deepcopy=False)
    assert len(trials) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert all(TrialRecord.from_trial(t).has_configs for t in trials)


def test_proxy_refuses_a_grpc_url() -> None:
    with pytest.raises(
        SearchError, match="The gRPC proxy, which must sit in front of a database, needs a direct database URL"
    ):
        serve_proxy("grpc://127.0.0.1:13000", port=13001)


@pytest.mark.parametrize("port", [0, 70000])
def test_proxy_rejects_bad_port(port: int) -> None:
    with pytest.raises(SearchError, match="between 1 and 65535"):
        serve_proxy("sqlite:///unused.db", port=port)


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [SEARCH, "proxy", "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"error: Cannot listen on 127.0.0.1:{port} for the gRPC proxy" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_killed_behind_the_proxy_has_its_trial_failed_and_retried(pg_url, tmp_path: Path) -> None:
    """The proxy path has the crash tolerance of the direct one: leases instead of Optuna's heartbeats."""
    port = free_port()
    beat = ("--heartbeat-interval", "1", "--grace-period", "3")
    run = (SEARCH, "run", "--study", "smoke", "--epochs", "40", "--workers", "1", "--threads", "1", *beat)
    with search_server("proxy", "--storage", pg_url, *beat, port=port) as proxy:
        victim = subprocess.Popen(
            [*run, "--trials", "3", "--storage", f"grpc://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        running = _wait_for(lambda: _running_with_lease(pg_url), timeout=120, what="a running trial with a lease")
        os.killpg(victim.pid, signal.SIGKILL)  # the whole machine gone: no worker is left to say so
        victim.wait()

        # The proxy fails it once its lease is older than the grace period, and queues its parameters again.
        failed = _wait_for(lambda: _state(pg_url, running) == TrialState.FAIL or None, timeout=30, what="the fail")
        study = optuna.load_study(study_name="smoke", storage=pg_url)
        assert failed and "lease" in TrialRecord.from_trial(study.trials[running]).failure_reason
        (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == running]
        assert retry.state == TrialState.WAITING and retry.params == study.trials[running].params

        before = _finished(pg_url)
        again = subprocess.run(
            [*run, "--trials", "3", "--storage", f"grpc://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
    proxy.communicate(timeout=30)
    study = optuna.load_study(study_name="smoke", storage=pg_url)
    assert _finished(pg_url) == before + 3  # exactly --trials added
    assert study.trials[retry.number].state in (TrialState.COMPLETE, TrialState.PRUNED)  # the retry ran
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def _wait_for(probe, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.2)
    return found


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="smoke", storage=url).get_trials(deepcopy=False)
    except KeyError:  # the study is not created yet
        return []


def _running_with_lease(url: str) -> int | None:
    running = [t.number for t in _trials(url) if t.state == TrialState.RUNNING and LEASE_ATTR in t.system_attrs]
    return running[0] if running else None


def _state(url: str, number: int) -> TrialState:
    return _trials(url)[number].state


def _finished(url: str) -> int:
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in _trials(url))

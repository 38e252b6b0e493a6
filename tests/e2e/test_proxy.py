"""`search proxy`: Optuna's gRPC storage proxy in front of a database, with a real worker behind it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ports import free_port
from processes import SEARCH, search_server

from search.errors import SearchError
from search.storage.proxy import serve_proxy


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
    assert "sends no heartbeats" in worker.stderr  # the worker says what the proxy cannot do
    assert f"grpc://127.0.0.1:{port}" in out

    # The trials landed in the database behind the proxy, with the objective's user attrs.
    trials = optuna.load_study(study_name="smoke", storage=database).get_trials(deepcopy=False)
    assert len(trials) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert all("net_config" in t.user_attrs for t in trials)


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

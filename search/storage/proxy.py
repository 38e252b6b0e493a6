"""Optuna's gRPC storage proxy in front of one database, for clusters of many workers.

Each worker talking to PostgreSQL directly holds its own connection pool (up to 6 connections,
search/storage/studies.py); PostgreSQL allows 100 by default. Workers given `--storage grpc://HOST:PORT` talk to this proxy
instead, and only the proxy holds database connections. The gRPC client carries no Optuna heartbeat:
workers renew a lease on their running trial instead (search.storage.leases), and the proxy fails and
retries, every heartbeat interval, the trials whose lease is older than the grace period.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import get_storage, run_grpc_proxy_server

from search.errors import SearchError
from search.storage.leases import fail_expired_leases
from search.storage.studies import check_heartbeat, open_storage
from search.storage.urls import direct_database_url

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 13000


def serve_proxy(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve the storage named by `storage_url` over gRPC on host:port; blocks until interrupted. Every
    `heartbeat_interval` it fails and retries the trials whose workers' leases are older than `grace_period`.
    `on_ready` is called once the arguments and the database have passed their checks, before serving."""
    if not 1 <= port <= 65535:
        raise SearchError(f"The proxy port must be between 1 and 65535, but got {port=}.")
    url = direct_database_url(storage_url, user="The gRPC proxy, which must sit in front of a database,")
    # Optuna's documentation asks for get_storage's caching wrapper here: a bare RDBStorage is slow behind the proxy.
    storage = get_storage(open_storage(url))
    interval, grace = check_heartbeat(heartbeat_interval, grace_period)
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_expired_leases, args=(url, interval, grace, stop), name="lease-sweeper", daemon=True
    )
    sweeper.start()
    logger.info("gRPC storage proxy on %s:%d", host, port)
    if on_ready is not None:
        on_ready()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # the proxy is "experimental" in Optuna 5
            run_grpc_proxy_server(storage, host=host, port=port)
    except RuntimeError as error:
        if "Failed to bind" not in str(error):
            raise
        raise SearchError(
            f"Cannot listen on {host}:{port} for the gRPC proxy (address in use or unknown host). "
            "Pick another --port or stop what is using it."
        ) from error
    finally:
        stop.set()


def _sweep_expired_leases(url: str, interval: float, grace: float, stop: threading.Event) -> None:
    """Every `interval`: in every study of the database, fail and retry the trials whose lease expired."""
    storage = open_storage(url)
    while not stop.wait(interval):
        try:
            for summary in storage.get_all_studies():
                study = optuna.load_study(study_name=summary.study_name, storage=storage)
                for number in fail_expired_leases(study, grace):
                    logger.warning(
                        "study %s: trial %d failed and queued again: its lease expired", summary.study_name, number
                    )
        except Exception as error:  # the database away for a moment: the next sweep tries again
            logger.warning("lease sweep failed: %s", error)

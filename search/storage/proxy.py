"""Optuna's gRPC storage proxy in front of one database, for clusters of many workers.

Each worker talking to PostgreSQL directly holds its own connection pool (up to 6 connections,
search/storage/studies.py); PostgreSQL allows 100 by default. Workers given `--storage grpc://HOST:PORT` talk to this proxy
instead, and only the proxy holds database connections. The gRPC client sends no heartbeats, so
trials of a killed worker behind the proxy are not failed and retried automatically.
"""

from __future__ import annotations

import logging
import warnings

from optuna.exceptions import ExperimentalWarning
from optuna.storages import get_storage, run_grpc_proxy_server

from search.errors import SearchError
from search.storage.studies import open_storage
from search.storage.urls import direct_database_url

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 13000


def serve_proxy(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
) -> None:
    """Serve the storage named by `storage_url` over gRPC on host:port; blocks until interrupted."""
    if not 1 <= port <= 65535:
        raise SearchError(f"The proxy port must be between 1 and 65535, but got {port=}.")
    url = direct_database_url(storage_url, user="The gRPC proxy, which must sit in front of a database,")
    # Optuna's documentation asks for get_storage's caching wrapper here: a bare RDBStorage is slow behind the proxy.
    storage = get_storage(open_storage(url))
    logger.info("gRPC storage proxy on %s:%d", host, port)
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

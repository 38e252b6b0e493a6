"""optuna-dashboard over the same storage the workers write to.

The dashboard has no authentication: anyone who reaches its port can read every study and edit
notes. It binds to loopback by default; `exposure_warning` says so when another address is asked.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard

from search.errors import SearchError
from search.storage.artifacts import artifact_store
from search.storage.studies import open_storage, resolve_storage_url

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to anything
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to show before binding `host`, or None for a loopback address."""
    if is_loopback(host):
        return None
    return (
        f"The dashboard has no authentication: binding {host} lets anyone who can reach this "
        "machine read every study and edit its notes. Bind 127.0.0.1 and use an SSH tunnel, "
        "or put it behind an authenticating proxy."
    )


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    # A browser fetches the page's scripts and the API in parallel; one thread per request.
    daemon_threads = True


class _ThreadedServerV6(_ThreadedServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (wsgiref's name)
        logger.debug(format, *args)


@dataclass
class DashboardServer:
    """A bound dashboard; `serve_forever` blocks until interrupted."""

    url: str
    storage_url: str
    _server: WSGIServer

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()


def open_dashboard(
    storage_url: str | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> DashboardServer:
    """Bind optuna-dashboard for the storage named by `storage_url` (flag, $SEARCH_STORAGE or default)."""
    if not 0 <= port <= 65535:
        raise SearchError(f"The dashboard port must be between 0 and 65535, but got {port=}.")
    url = resolve_storage_url(storage_url)
    app = optuna_dashboard.wsgi(open_storage(url), artifact_store=artifact_store(url))
    server_class = _ThreadedServerV6 if ":" in host else _ThreadedServer
    try:
        server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as error:
        raise SearchError(
            f"Cannot listen on {host}:{port} for the dashboard ({error.strerror or error}). "
            "Pick another --port or stop what is using it."
        ) from error
    bound_port = server.server_address[1]
    shown_host = f"[{host}]" if ":" in host else host
    return DashboardServer(url=f"http://{shown_host}:{bound_port}/dashboard/", storage_url=url, _server=server)

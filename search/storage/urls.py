"""Storage URLs: which one to use (`--storage`, `SEARCH_STORAGE`, the default), how to show it, and what kind it is."""

from __future__ import annotations

import os
import re

import sqlalchemy
import sqlalchemy.exc

from search.errors import SearchError, StorageError

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENVVAR",
    "direct_database_url",
    "is_grpc_url",
    "mask_url",
    "resolve_storage_url",
]

DEFAULT_STORAGE_URL = "sqlite:///search.db"
STORAGE_ENVVAR = "SEARCH_STORAGE"


def resolve_storage_url(url: str | None) -> str:
    """The storage URL to use: the flag, else $SEARCH_STORAGE, else DEFAULT_STORAGE_URL (a file in the cwd)."""
    for candidate in (url, os.environ.get(STORAGE_ENVVAR)):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return DEFAULT_STORAGE_URL


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, fit to print and log: every URL shown goes through here.

    SQLAlchemy's parser reads the password as the URL will be used (percent-encoded / @ : % # included).
    A password with a raw (unencoded) `@` would leave its end in the parsed host, and text SQLAlchemy
    cannot parse has no password to find: in both, everything between `user:` and the last `@` is masked.
    """
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None or url.count("@") > 1:
        return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def is_grpc_url(url: str) -> bool:
    return url.startswith("grpc://")


def direct_database_url(storage_url: str | None, *, user: str, error: type[SearchError] = StorageError) -> str:
    """The resolved storage URL, refused (as `error`) when it is a gRPC proxy: `user`, e.g. "The evaluations
    table", needs the database itself, where the proxy serves Optuna's tables only."""
    url = resolve_storage_url(storage_url)
    if is_grpc_url(url):
        raise error(
            f"{user} needs a direct database URL, but the storage is the gRPC proxy {mask_url(url)}; pass --storage "
            "with the database URL itself (sqlite:///FILE or postgresql+psycopg://...)."
        )
    return url

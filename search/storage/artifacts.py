"""Optuna's artifact store beside the study database: the saved models and the report's plots, which
optuna-dashboard shows on their trial or study page.

A SQLite study keeps its artifacts in a folder beside its file (`search.db` -> `search.db.artifacts/`);
a database server has no "beside", so there it is `$SEARCH_ARTIFACTS`, else `./search-artifacts`. Every
process that writes or serves them (evaluate-best, report, dashboard) must see the same folder: on
several machines, a shared file system.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from search.storage.studies import open_storage
from search.storage.urls import resolve_storage_url

__all__ = ["ARTIFACTS_ENVVAR", "artifact_dir", "artifact_store", "upload_files"]

ARTIFACTS_ENVVAR = "SEARCH_ARTIFACTS"
SERVER_DEFAULT = Path("search-artifacts")


def artifact_dir(storage_url: str | None) -> Path:
    """Where the artifacts of the studies in `storage_url` live."""
    if os.environ.get(ARTIFACTS_ENVVAR):
        return Path(os.environ[ARTIFACTS_ENVVAR]).expanduser()
    url = resolve_storage_url(storage_url)
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///")).expanduser()
        return database.with_name(database.name + ".artifacts")
    return SERVER_DEFAULT


def artifact_store(storage_url: str | None) -> FileSystemArtifactStore:
    directory = artifact_dir(storage_url)
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(directory))


def upload_files(storage_url: str | None, study_name: str, paths: Sequence[Path]) -> int:
    """Attach `paths` to the study (Optuna attaches artifacts to a trial only while it runs); how many."""
    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    store = artifact_store(storage_url)
    for path in paths:
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study, storage=storage)
    return len(paths)

"""Stores built from the config: the jobflow JobStore and the campaign's own collections.

Both kinds go through the same maggma Store interface:

* ``mongodb``: a URI ``MongoStore`` (maggma 0.77 merged ``MongoURIStore`` into it) for documents
  and a URI ``GridFSStore`` for the ``data`` blobs;
* ``embedded``: ``MontyStore`` on SQLite in a folder on disk, no server needed.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from jobflow import JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MongoStore, MontyStore

from coatflow.launchers.config import CampaignConfig
from coatflow.workflows.errors import CoatflowError

PASSWORD_ENV = "COATFLOW_MONGODB_PASSWORD"
JOBS, BLOBS, CANDIDATES, CACHE, MAPS = "jobs", "blobs", "candidates", "cache", "potential_maps"
_TIMEOUT = {"serverSelectionTimeoutMS": 5000}


def _env_password_kwargs() -> dict:
    password = os.environ.get(PASSWORD_ENV)
    return {"password": password} if password else {}


class _PasswordFromEnv:
    """Mixin: take the password from the environment at connect time.

    The password is never kept as an attribute, so it never reaches ``as_dict`` or a log line.
    """

    def connect(self, force_reset: bool = False):
        self.mongoclient_kwargs = {**_TIMEOUT, **self.mongoclient_kwargs, **_env_password_kwargs()}
        try:
            super().connect(force_reset=force_reset)
        finally:
            self.mongoclient_kwargs.pop("password", None)


class EnvPasswordMongoStore(_PasswordFromEnv, MongoStore):
    """Documents in MongoDB, from a URI without a password."""


class EnvPasswordGridFSStore(_PasswordFromEnv, GridFSStore):
    """Large blobs in MongoDB GridFS, from a URI without a password."""


def make_store(config: CampaignConfig, collection: str, blobs: bool = False) -> Store:
    """One collection of the configured database."""
    sc = config.store
    if sc.kind == "embedded":
        path = config.resolve(sc.path)  # created on first connect, not before
        return MontyStore(collection, database_path=str(path), database_name=sc.database, storage="sqlite")
    cls = EnvPasswordGridFSStore if blobs else EnvPasswordMongoStore
    return cls(uri=sc.uri, database=sc.database, collection_name=collection)


def make_job_store(config: CampaignConfig) -> JobStore:
    """The jobflow JobStore: documents in ``jobs``, large ``data`` blobs in ``blobs``."""
    return JobStore(
        make_store(config, JOBS),
        additional_stores={"data": make_store(config, BLOBS, blobs=True)},
    )


def ensure_index(store: Store, key: str, unique: bool = False) -> bool:
    """Create an index where the backend supports it (MontyStore does not)."""
    try:
        return bool(store.ensure_index(key, unique=unique))
    except NotImplementedError:
        return False


def connect_checked(store: Store | JobStore, config: CampaignConfig) -> None:
    """Connect, turning an unreachable server into a one-line error."""
    try:
        store.connect()
        docs = store.docs_store if isinstance(store, JobStore) else store
        if config.store.kind == "mongodb":
            docs._collection.database.client.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any driver failure means "cannot reach"
        where = urlsplit(config.store.uri).hostname if config.store.uri else config.store.path
        reason = type(exc).__name__
        raise CoatflowError(f"cannot reach the {config.store.kind} store at {where} ({reason})") from None


class CampaignStores:
    """Every store a campaign uses, connected once."""

    def __init__(self, config: CampaignConfig):
        self.config = config
        self.jobs = make_job_store(config)
        self.candidates = make_store(config, CANDIDATES)
        self.cache = make_store(config, CACHE)
        self.maps = make_store(config, MAPS)

    def connect(self) -> CampaignStores:
        for store in (self.jobs, self.candidates, self.cache, self.maps):
            connect_checked(store, self.config)
        ensure_index(self.jobs.docs_store, "metadata.coatflow.key")
        ensure_index(self.jobs.docs_store, "metadata.coatflow.material_id")
        ensure_index(self.candidates, "material_id", unique=True)
        return self

    def close(self) -> None:
        for store in (self.jobs, self.candidates, self.cache, self.maps):
            try:
                store.close()
            except Exception:  # noqa: BLE001
                pass

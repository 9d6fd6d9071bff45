"""Stores built from the config: the jobflow JobStore, the campaign's own collections, the run lock and key claims.

Both kinds go through the same maggma Store interface:

* ``mongodb``: a URI ``MongoStore`` (maggma 0.77 merged ``MongoURIStore`` into it) for documents
  and a URI ``GridFSStore`` for the ``data`` blobs;
* ``embedded``: :class:`~coatflow.launchers.embedded_store.SQLiteStore`, every collection a table of one
  SQLite file ``<store.path>/coatflow.sqlite``, no server needed. Unlike maggma's MontyStore it has real
  indexes, so a write or a lookup does not read the whole collection (issue 14).

:meth:`CampaignStores.connect` creates the indexes jobflow and coatflow query on, on both kinds.

One writer per store: ``coatflow run`` holds a :class:`StoreLock` for the whole run; a second one fails at
once naming the holder (or, with ``wait=True``, waits and says so). Its parallel workers keep apart with
:class:`KeyClaims`: a worker claims the keys of the jobs it is about to run, atomically, so two workers never
compute one key.

Times are aware UTC: the lock's and claims' own, and the jobs' ``completed_at``, which jobflow writes as naive
local time and the jobs collection's store rewrites as UTC on the way in (``workflows/timestamps.py``).
A MongoDB store or LaunchPad URI naming a user needs ``COATFLOW_MONGODB_PASSWORD``; without it, one line says
so before anything connects.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

# the module, not its names: jobflow builds a JobStore of this module from JOBFLOW_CONFIG_FILE while
# launchers/config.py is still importing (config -> stages -> jobflow settings -> here)
from coatflow.launchers import config as campaign_config
from coatflow.launchers.embedded_store import (
    SQLiteStore,
    open_database,
    write_transaction,
)
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.timestamps import now_utc, utc_iso, utc_time
from jobflow import JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MongoStore

if TYPE_CHECKING:
    from coatflow.launchers.config import CampaignConfig

JOBS, BLOBS, CANDIDATES, CACHE, MAPS = "jobs", "blobs", "candidates", "cache", "potential_maps"
LOCKS, CLAIMS = "locks", "claims"  # MongoDB collections of the run lock and the key claims
EMBEDDED_FILE, LOCK_FILE = "coatflow.sqlite", "coatflow.lock"
_CLAIMS_TABLE = "_coatflow_claims"  # embedded: a table beside the collections, not a collection
_TIMEOUT = {"serverSelectionTimeoutMS": 5000}
_HOST = socket.gethostname()

#: Indexes :meth:`CampaignStores.connect` creates: collection -> [(key or compound keys, unique)].
INDEXES: dict[str, list[tuple[str | tuple[str, ...], bool]]] = {
    JOBS: [(("uuid", "index"), True), ("metadata.coatflow.key", False), ("metadata.coatflow.material_id", False),
           ("metadata.coatflow.task", False), ("completed_at", False)],
    BLOBS: [("blob_uuid", False)],
    CANDIDATES: [("material_id", True)],
    CACHE: [("cache_key", False), ("key", False)],
    MAPS: [(("electrolyte", "cathode", "state_of_charge"), False)],
}


def _env_password_kwargs() -> dict:
    password = os.environ.get(campaign_config.PASSWORD_ENV)
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


def _utc_completed_at(doc):
    if isinstance(doc, dict) and isinstance(doc.get("completed_at"), str):
        return {**doc, "completed_at": utc_iso(doc["completed_at"])}
    return doc


class _UTCCompletedAt:
    """Mixin of the jobs collection's store: ``completed_at`` (naive local time from jobflow) is stored as
    aware UTC. The store class travels in the workers' ``jobflow.yaml``, so FireWorks workers do the same."""

    def update(self, docs, key=None, **kwargs):
        docs = [docs] if isinstance(docs, dict) else docs
        return super().update([_utc_completed_at(d) for d in docs], key=key, **kwargs)


class JobsSQLiteStore(_UTCCompletedAt, SQLiteStore):
    """The embedded jobs collection (``completed_at`` stored as aware UTC)."""


class JobsMongoStore(_UTCCompletedAt, EnvPasswordMongoStore):
    """The MongoDB jobs collection (``completed_at`` stored as aware UTC)."""


def embedded_folder(config: CampaignConfig) -> Path:
    """The embedded store's folder (absolute; not created here)."""
    return config.resolve(config.store.path)


def embedded_file(config: CampaignConfig) -> Path:
    """``<store.path>/coatflow.sqlite``; a folder holding an old montydb store instead is a one-line error."""
    folder = embedded_folder(config)
    db = folder / EMBEDDED_FILE
    if not db.exists() and any((folder / f).exists() for f in ("monty.storage.cfg", ".monty.storage")):
        raise CoatflowError(f"the store at {folder} is an old montydb store, which this coatflow no longer reads "
                            f"(coatflow >= 0.1.0 stores in {EMBEDDED_FILE}); delete it or point store.path elsewhere")
    return db


def make_store(config: CampaignConfig, collection: str, blobs: bool = False) -> Store:
    """One collection of the configured database (nothing is created on disk before ``connect``)."""
    sc = config.store
    if sc.kind == "embedded":
        cls = JobsSQLiteStore if collection == JOBS else SQLiteStore
        return cls(str(embedded_folder(config) / EMBEDDED_FILE), collection)
    sc.require_password()  # a user without COATFLOW_MONGODB_PASSWORD: one line, before pymongo's traceback
    cls = EnvPasswordGridFSStore if blobs else JobsMongoStore if collection == JOBS else EnvPasswordMongoStore
    return cls(uri=sc.uri, database=sc.database, collection_name=collection)


def require_store(config: CampaignConfig) -> None:
    """A one-line error if the configured store holds no campaign yet (``coatflow query`` and ``build`` read
    a store; they must not create one where a typo in ``store.path`` points)."""
    sc = config.store
    if sc.kind == "embedded":
        if not embedded_file(config).exists():
            raise CoatflowError(f"no coatflow store at {embedded_folder(config)}: check store.path (relative to "
                                "the config file), or run `coatflow run` first to create it")
        return
    store = make_store(config, JOBS)
    connect_checked(store, config)
    try:
        exists = JOBS in store._collection.database.list_collection_names()
    finally:
        store.close()
    if not exists:
        raise CoatflowError(f"no coatflow store in database '{sc.database}' at {urlsplit(sc.uri).hostname}: check "
                            "store.database, or run `coatflow run` first to create it")


def make_job_store(config: CampaignConfig) -> JobStore:
    """The jobflow JobStore: documents in ``jobs``, large ``data`` blobs in ``blobs``."""
    return JobStore(
        make_store(config, JOBS),
        additional_stores={"data": make_store(config, BLOBS, blobs=True)},
    )


def ensure_index(store: Store | JobStore, key: str | Iterable[str], unique: bool = False) -> bool:
    """Create an index (a list of keys: one compound index); True if it exists afterwards.

    Stores without indexes (NotImplementedError) and a failed creation give False.
    """
    if isinstance(store, JobStore):
        store = store.docs_store
    keys = (key,) if isinstance(key, str) else tuple(key)
    try:
        if len(keys) == 1:
            return bool(store.ensure_index(keys[0], unique=unique))
        if isinstance(store, SQLiteStore):
            return store.ensure_index(keys, unique=unique)
        if isinstance(store, MongoStore):
            store._collection.create_index([(k, 1) for k in keys], unique=unique, background=True)
            return True
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - e.g. a unique index over repeated values
        return False
    return False


def _unreachable(config: CampaignConfig, exc: BaseException) -> CoatflowError:
    where = urlsplit(config.store.uri).hostname if config.store.uri else config.store.path
    return CoatflowError(f"cannot reach the {config.store.kind} store at {where} ({type(exc).__name__})")


def connect_checked(store: Store | JobStore, config: CampaignConfig) -> None:
    """Connect, turning an unreachable server into a one-line error."""
    if config.store.kind == "embedded":
        embedded_file(config)  # an old montydb folder: its own one-line error
    try:
        store.connect()
        docs = store.docs_store if isinstance(store, JobStore) else store
        if config.store.kind == "mongodb":
            docs._collection.database.client.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any driver failure means "cannot reach"
        raise _unreachable(config, exc) from None


# -- one writer per store ------------------------------------------------------------------------------------


def _now():
    return now_utc()  # aware UTC (pymongo stores it as UTC and returns it naive: read with utc_time(naive="utc"))


def _holder_info(command: str) -> dict:
    return {"pid": os.getpid(), "host": _HOST, "command": command or " ".join(sys.argv[:2]) or "coatflow",
            "since": now_utc().isoformat(timespec="seconds")}


def _describe(info: dict) -> str:
    since = utc_time(info.get("since"))  # older holders wrote local time with its offset
    since = since.strftime("%Y-%m-%d %H:%M:%S UTC") if since else "?"
    return f"{info.get('command') or 'coatflow run'} (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {since})"


def _say(message: str) -> None:
    print(f"coatflow: {message}", file=sys.stderr, flush=True)


class StoreLock:
    """One ``coatflow run`` (or ``build``) per store, held for the whole run.

    Embedded: ``fcntl.flock`` on ``<store.path>/coatflow.lock``, which records the holder's pid, host, command
    and start time. The OS drops the lock when its process ends, however it ends (``kill -9`` too), so a lock
    is never stale. MongoDB: the document ``{_id: "run"}`` of the ``locks`` collection, renewed by a heartbeat;
    one not renewed within ``expiry`` seconds (its holder died) is taken over, with a message saying so.

    Without ``wait`` a busy store is a ``CoatflowError`` at once; with it, the lock is awaited (``notify`` says
    so, by default on stderr). Taking the lock drops the key claims a killed run may have left, except those
    of its worker processes still running on this host (``kill -9`` of a run leaves its workers finishing their
    jobs): the new run waits for those keys instead of computing them a second time.

    Use: ``with StoreLock(config, command="coatflow run"): ...``.
    """

    def __init__(self, config: CampaignConfig, command: str = "", wait: bool = False, expiry: float = 120.0,
                 notify: Callable[[str], None] | None = None):
        self.config = config
        self.command = command
        self.wait = wait
        self.expiry = expiry
        self.notify = notify or _say
        self._fd: int | None = None
        self._mongo = None  # (store, token, stop event, heartbeat thread)

    @property
    def where(self) -> str:
        sc = self.config.store
        return str(embedded_folder(self.config)) if sc.kind == "embedded" else f"{urlsplit(sc.uri).hostname}/{sc.database}"

    def _busy(self, info: dict) -> CoatflowError:
        other = "set store.path to another folder" if self.config.store.kind == "embedded" else \
            "set store.database to another database"
        return CoatflowError(f"the store at {self.where} is in use by {_describe(info)}; wait for it to finish or {other}")

    def acquire(self) -> Self:
        if self._fd is not None or self._mongo is not None:
            return self
        if self.config.store.kind == "embedded":
            self._acquire_file()
        else:
            self._acquire_mongo()
        if self.config.store.kind == "mongodb" or embedded_file(self.config).exists():  # else: no claims yet
            claims = KeyClaims(self.config)
            try:
                claims.drop_dead()  # a killed run's claims; those of its still-running orphaned workers stay
            finally:
                claims.close()
        return self

    # embedded ----------------------------------------------------------------------------------------------

    def _acquire_file(self) -> None:
        embedded_file(self.config)
        folder = embedded_folder(self.config)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                error = self._busy(self._read_info(fd))
                if not self.wait:
                    raise error from None
                self.notify(str(error).split(";")[0] + "; waiting for it to finish")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder_info(self.command)).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    @staticmethod
    def _read_info(fd: int) -> dict:
        for _ in range(20):  # the holder writes its record right after locking
            try:
                info = json.loads(os.pread(fd, 65536, 0) or b"null")
                if isinstance(info, dict):
                    return info
            except ValueError:
                pass
            time.sleep(0.025)
        return {}

    def holder(self) -> dict | None:
        """Who holds the lock (pid, host, command, since), or None if it is free."""
        if self.config.store.kind == "mongodb":
            store = self._locks_store()
            try:
                return store._collection.find_one({"_id": "run"}, {"_id": 0, "token": 0})
            finally:
                store.close()
        path = embedded_folder(self.config) / LOCK_FILE
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read_info(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    # MongoDB -----------------------------------------------------------------------------------------------

    def _locks_store(self) -> Store:
        store = make_store(self.config, LOCKS)
        connect_checked(store, self.config)
        return store

    def _acquire_mongo(self) -> None:
        from pymongo.errors import DuplicateKeyError

        store = self._locks_store()
        coll = store._collection
        token = uuid.uuid4().hex
        said = False
        while True:
            now = _now()
            doc = {"_id": "run", **_holder_info(self.command), "token": token, "heartbeat": now,
                   "expires": now + timedelta(seconds=self.expiry)}
            try:
                coll.insert_one(doc)
                break
            except DuplicateKeyError:
                pass
            current = coll.find_one({"_id": "run"})
            if current is None:
                continue  # released meanwhile
            expires = utc_time(current.get("expires"), naive="utc")
            if expires is not None and expires < now:  # its holder stopped beating: dead
                if coll.replace_one({"_id": "run", "token": current.get("token")}, doc).matched_count:
                    self.notify(f"taking over the lock of {self.where} from {_describe(current)}: no heartbeat "
                                f"since {current.get('heartbeat')} UTC")
                    break
                continue
            error = self._busy(current)
            if not self.wait:
                store.close()
                raise error
            if not said:
                self.notify(str(error).split(";")[0] + "; waiting for it to finish")
                said = True
            time.sleep(min(5.0, self.expiry / 4))
        stop = threading.Event()

        def beat():
            while not stop.wait(self.expiry / 3):
                t = _now()
                try:
                    coll.update_one({"_id": "run", "token": token},
                                    {"$set": {"heartbeat": t, "expires": t + timedelta(seconds=self.expiry)}})
                except Exception:  # noqa: BLE001, S110 - a missed beat; the next one retries
                    pass

        thread = threading.Thread(target=beat, name="coatflow-lock-heartbeat", daemon=True)
        thread.start()
        self._mongo = (store, token, stop, thread)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        if self._mongo is not None:
            store, token, stop, thread = self._mongo
            self._mongo = None
            stop.set()
            thread.join(timeout=5)
            try:
                store._collection.delete_one({"_id": "run", "token": token})
            finally:
                store.close()

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- key claims ----------------------------------------------------------------------------------------------


def _alive(pid: int | None, host: str | None) -> bool:
    """False only when we can tell: a process of this host that has ended (or is a zombie)."""
    if not pid or host != _HOST:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _stale(pid: int | None, host: str | None) -> bool:
    """A claim left by an ended process, by this process, or from another host (which cannot be checked)."""
    return host != _HOST or pid == os.getpid() or not _alive(pid, host)


class KeyClaims:
    """Atomic claims on job keys, so two workers never compute one key.

    ``claim(keys, owner)`` takes every key or none: it returns the keys other owners hold (the conflicts) and
    then claims nothing, or ``[]`` when all are now the owner's. A claim whose owner process has ended on this
    host does not count (a killed worker's), and :class:`StoreLock` drops all claims when a run starts.

    Embedded: a table with ``PRIMARY KEY(key)`` in the store's SQLite file, each claim one ``BEGIN IMMEDIATE``
    transaction. MongoDB: the ``claims`` collection with a unique index on ``key``.
    """

    def __init__(self, config: CampaignConfig):
        self.config = config
        self._conn = None
        self._pid = None
        self._store: Store | None = None

    # backends ----------------------------------------------------------------------------------------------

    def _db(self):
        if self._conn is None or self._pid != os.getpid():
            self._conn = open_database(embedded_file(self.config))
            self._pid = os.getpid()
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {_CLAIMS_TABLE} (key TEXT PRIMARY KEY, "
                               "owner TEXT NOT NULL, pid INTEGER, host TEXT, since TEXT)")
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {_CLAIMS_TABLE}_owner ON {_CLAIMS_TABLE} (owner)")
        return self._conn

    def _coll(self):
        if self._store is None:
            store = make_store(self.config, CLAIMS)
            connect_checked(store, self.config)
            store._collection.create_index("key", unique=True)
            self._store = store
        return self._store._collection

    @property
    def _embedded(self) -> bool:
        return self.config.store.kind == "embedded"

    # API ---------------------------------------------------------------------------------------------------

    def claim(self, keys: Iterable[str], owner: str) -> list[str]:
        """Claim all ``keys`` for ``owner``; returns the keys held by other owners (then claims none)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        return self._claim_sqlite(keys, owner) if self._embedded else self._claim_mongo(keys, owner)

    def _claim_sqlite(self, keys: list[str], owner: str) -> list[str]:
        db = self._db()
        with write_transaction(db):
            existing = {}
            for n in range(0, len(keys), 500):
                chunk = keys[n:n + 500]
                for k, o, pid, host in db.execute(f"SELECT key, owner, pid, host FROM {_CLAIMS_TABLE} "
                                                  f"WHERE key IN ({','.join('?' * len(chunk))})", chunk):
                    existing[k] = (o, pid, host)
            dead = [k for k, (o, pid, host) in existing.items() if o != owner and not _alive(pid, host)]
            db.executemany(f"DELETE FROM {_CLAIMS_TABLE} WHERE key = ?", [(k,) for k in dead])
            conflicts = sorted(k for k, (o, _, _) in existing.items() if o != owner and k not in dead)
            if conflicts:
                return conflicts
            since = _now().isoformat()
            db.executemany(f"INSERT OR IGNORE INTO {_CLAIMS_TABLE} (key, owner, pid, host, since) "
                           "VALUES (?, ?, ?, ?, ?)", [(k, owner, os.getpid(), _HOST, since) for k in keys])
        return []

    def _claim_mongo(self, keys: list[str], owner: str) -> list[str]:
        from pymongo.errors import BulkWriteError

        coll = self._coll()
        existing = {d["key"]: d for d in coll.find({"key": {"$in": keys}})}
        dead = [k for k, d in existing.items() if d["owner"] != owner and not _alive(d.get("pid"), d.get("host"))]
        for k in dead:
            coll.delete_one({"key": k, "owner": existing[k]["owner"], "pid": existing[k].get("pid")})
        conflicts = sorted(k for k, d in existing.items() if d["owner"] != owner and k not in dead)
        if conflicts:
            return conflicts
        new = [k for k in keys if k not in existing or k in dead]
        if not new:
            return []
        since = _now()
        try:
            coll.insert_many([{"key": k, "owner": owner, "pid": os.getpid(), "host": _HOST, "since": since}
                              for k in new], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            lost = {new[e["index"]] for e in errors}
            won = [k for k in new if k not in lost]
            coll.delete_many({"key": {"$in": won}, "owner": owner})  # all or nothing: give back what we got
            return sorted(lost)
        return []

    def release(self, owner: str, keys: Iterable[str] | None = None) -> int:
        """Drop ``owner``'s claims (only ``keys`` if given); returns how many."""
        keys = None if keys is None else list(keys)
        if not self._embedded:
            crit = {"owner": owner, **({"key": {"$in": keys}} if keys is not None else {})}
            return self._coll().delete_many(crit).deleted_count
        db = self._db()
        with write_transaction(db):
            if keys is None:
                return db.execute(f"DELETE FROM {_CLAIMS_TABLE} WHERE owner = ?", (owner,)).rowcount
            return sum(db.execute(f"DELETE FROM {_CLAIMS_TABLE} WHERE owner = ? AND key = ?", (owner, k)).rowcount
                       for k in keys)

    def held(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """key -> owner of the claimed ones among ``keys`` (all claims if None)."""
        keys = None if keys is None else list(keys)
        if not self._embedded:
            crit = {} if keys is None else {"key": {"$in": keys}}
            return {d["key"]: d["owner"] for d in self._coll().find(crit)}
        db = self._db()
        if keys is None:
            return dict(db.execute(f"SELECT key, owner FROM {_CLAIMS_TABLE}").fetchall())
        out = {}
        for n in range(0, len(keys), 500):
            chunk = keys[n:n + 500]
            out.update(db.execute(f"SELECT key, owner FROM {_CLAIMS_TABLE} WHERE key IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall())
        return out

    def drop_dead(self) -> int:
        """Drop the claims of ended processes and of this one (what :class:`StoreLock` does when a run starts);
        returns how many.

        A claim from another host is dropped too: under the lock no other run works on this store, and a
        process elsewhere cannot be checked. A live process of this host keeps its claims (an orphaned worker
        of a killed run finishing its job).
        """
        if not self._embedded:
            coll = self._coll()
            dead = [d["_id"] for d in coll.find({}, {"pid": 1, "host": 1})
                    if _stale(d.get("pid"), d.get("host"))]
            return coll.delete_many({"_id": {"$in": dead}}).deleted_count if dead else 0
        db = self._db()
        with write_transaction(db):
            dead = [(k,) for k, pid, host in db.execute(f"SELECT key, pid, host FROM {_CLAIMS_TABLE}")
                    if _stale(pid, host)]
            db.executemany(f"DELETE FROM {_CLAIMS_TABLE} WHERE key = ?", dead)
        return len(dead)

    def clear(self) -> int:
        """Drop every claim."""
        if not self._embedded:
            return self._coll().delete_many({}).deleted_count
        db = self._db()
        with write_transaction(db):
            return db.execute(f"DELETE FROM {_CLAIMS_TABLE}").rowcount

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        if self._store is not None:
            self._store.close()
            self._store = None


# -- everything a campaign uses ------------------------------------------------------------------------------


class CampaignStores:
    """Every store a campaign uses, connected once; ``claims`` keeps parallel workers apart."""

    def __init__(self, config: CampaignConfig):
        self.config = config
        self.jobs = make_job_store(config)
        self.candidates = make_store(config, CANDIDATES)
        self.cache = make_store(config, CACHE)
        self.maps = make_store(config, MAPS)
        self.claims = KeyClaims(config)

    def _stores(self) -> dict[str, Store]:
        return {JOBS: self.jobs.docs_store, BLOBS: self.jobs.additional_stores["data"],
                CANDIDATES: self.candidates, CACHE: self.cache, MAPS: self.maps}

    def connect(self) -> CampaignStores:
        for store in (self.jobs, self.candidates, self.cache, self.maps):
            connect_checked(store, self.config)
        self.ensure_indexes()
        return self

    def ensure_indexes(self) -> dict[str, bool]:
        """Create the :data:`INDEXES` (idempotent); ``"collection:key"`` -> whether it exists."""
        stores = self._stores()
        return {f"{name}:{key if isinstance(key, str) else '+'.join(key)}": ensure_index(stores[name], key, unique)
                for name, indexes in INDEXES.items() for key, unique in indexes}

    def lock(self, command: str = "coatflow run", wait: bool = False) -> StoreLock:
        """The store's :class:`StoreLock` (not yet acquired; use it as a context manager)."""
        return StoreLock(self.config, command=command, wait=wait)

    def close(self) -> None:
        for store in (self.jobs, self.candidates, self.cache, self.maps, self.claims):
            try:
                store.close()
            except Exception:  # noqa: BLE001, S110 - closing what may never have opened
                pass

"""The store layer: both store kinds behind one maggma interface, their indexes, the run lock and key claims.

Contract tests run on the embedded SQLite store and, when COATFLOW_TEST_MONGODB_URI is set, on MongoDB
(``write_config`` is parametrized over the store kinds in conftest.py); the SQL-only checks (query plans)
run on the embedded store. The MongoDB code of the lock and the claims also runs here on mongomock.
"""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import mongomock
import pytest
from coatflow.launchers import stores as stores_module
from coatflow.launchers.config import PASSWORD_ENV, load_config
from coatflow.launchers.embedded_store import SQLiteStore, translate
from coatflow.launchers.stores import (
    BLOBS,
    JOBS,
    CampaignStores,
    KeyClaims,
    StoreLock,
    ensure_index,
    make_job_store,
    make_store,
)
from coatflow.workflows.errors import CoatflowError
from jobflow import Flow, Response, job, run_locally
from maggma.stores import MemoryStore


@job(data="profile")
def _make_profile(n):
    return {"n": n, "profile": list(range(n))}


@job
def _add(a, b):
    return a + b


@job
def _count_up(x, steps):
    """Replaces itself ``steps`` times: one document per index under one uuid."""
    if steps <= 0:
        return x
    return Response(output=x, replace=_count_up(x + 1, steps - 1))


def test_job_store_keeps_large_data_in_the_blob_store(write_config, tmp_path):
    cfg = load_config(write_config())
    stores = CampaignStores(cfg).connect()
    try:
        run_locally(_make_profile(1000), store=stores.jobs, create_folders=True, root_dir=str(tmp_path / "run"),
                    log=False)
        raw = stores.jobs.docs_store.query_one({})
        assert "blob_uuid" in raw["output"]["profile"]  # only a pointer in the document
        loaded = stores.jobs.query_one({}, load=True)
        assert loaded["output"]["profile"] == list(range(1000))
        assert stores.jobs.additional_stores["data"].count() == 1
    finally:
        stores.close()


def _embedded(write_config):
    cfg = load_config(write_config())
    if cfg.store.kind != "embedded":
        pytest.skip("embedded only")
    return cfg


def test_embedded_store_is_on_disk_and_indexed(write_config):
    cfg = _embedded(write_config)
    folder = cfg.resolve(cfg.store.path)
    stores = CampaignStores(cfg)
    assert not folder.exists()  # created on connect, not before
    stores.connect()
    stores.candidates.update([{"material_id": "x", "formula": "Li2O"}], key="material_id")
    stores.close()
    assert cfg.resolve(cfg.store.path).is_absolute() and (folder / "coatflow.sqlite").is_file()
    again = CampaignStores(cfg).connect()
    assert again.candidates.query_one({"material_id": "x"})["formula"] == "Li2O"
    assert ensure_index(again.candidates, "formula") is True  # real indexes now (MontyStore had none)
    again.close()


def test_unreachable_mongodb_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("store: {kind: mongodb, uri: 'mongodb://coatflow@127.0.0.1:9/'}\n")
    monkeypatch.setenv(PASSWORD_ENV, "hunter2")
    cfg = load_config(path)
    with pytest.raises(CoatflowError) as err:
        CampaignStores(cfg).connect()
    msg = str(err.value)
    assert "cannot reach the mongodb store at 127.0.0.1" in msg and "\n" not in msg and "hunter2" not in msg


def test_mongodb_password_never_serialised(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("store: {kind: mongodb, uri: 'mongodb://coatflow@127.0.0.1:9/'}\n")
    monkeypatch.setenv(PASSWORD_ENV, "hunter2")
    store = make_job_store(load_config(path))
    assert "hunter2" not in json.dumps(store.as_dict(), default=str)


# -- query semantics, on every store kind -----------------------------------------------------------------------

DOCS = [
    {"k": "a", "n": 1, "s": "x", "b": True, "f": 1.5, "metadata": {"coatflow": {"key": "k1", "task": "relax"}}},
    {"k": "b", "n": 2, "s": "y", "b": False, "f": math.nan, "metadata": {"coatflow": {"key": "k2", "task": "verdict"}}},
    {"k": "c", "n": "2", "s": "z", "b": 1, "metadata": {"coatflow": {"key": "k3"}}, "opt": None},
    {"k": "d", "n": 3.0, "s": "x", "metadata": {"other": 1}, "tags": ["p", "q"]},
    {"k": "e", "n": None, "s": "ab", "metadata": None},
    {"k": "f", "n": 10, "s": "x", "metadata": {"coatflow": {"key": "k1", "task": "relax"}}, "sub": {"a": 1}},
]

QUERIES = [
    ({}, "abcdef"),
    ({"k": "a"}, "a"),
    ({"n": 2}, "b"),  # the string "2" is another type
    ({"n": "2"}, "c"),
    ({"n": 3}, "d"),  # 3 == 3.0
    ({"b": True}, "a"),  # true is not 1 in MongoDB
    ({"b": 1}, "c"),
    ({"n": None}, "e"),  # null
    ({"opt": None}, "abcdef"),  # null or missing
    ({"metadata.coatflow.key": "k1"}, "af"),
    ({"metadata.coatflow.key": None}, "de"),
    ({"metadata.coatflow.key": {"$in": ["k1", "k3"]}}, "acf"),
    ({"metadata.coatflow.key": {"$nin": ["k1", "k3"]}}, "bde"),
    ({"metadata.coatflow.key": {"$exists": True}}, "abcf"),
    ({"metadata.coatflow.task": {"$exists": False}}, "cde"),
    ({"opt": {"$exists": True}}, "c"),
    ({"n": {"$gt": 1}}, "bdf"),  # numbers only: "2" and null are other types
    ({"n": {"$gte": 2}}, "bdf"),
    ({"n": {"$lt": 3}}, "ab"),
    ({"n": {"$lte": 3}}, "abd"),
    ({"n": {"$gt": 1, "$lt": 10}}, "bd"),
    ({"s": {"$gt": "x"}}, "bc"),
    ({"s": {"$lt": "x"}}, "e"),
    ({"n": {"$ne": 2}}, "acdef"),
    ({"n": {"$ne": None}}, "abcdf"),
    ({"metadata.coatflow.task": {"$ne": "relax"}}, "bcde"),
    ({"n": {"$in": [1, "2", None]}}, "ace"),
    ({"$or": [{"k": "a"}, {"n": {"$gt": 2}}]}, "adf"),
    ({"$and": [{"s": "x"}, {"metadata.coatflow.task": "relax"}]}, "af"),
    ({"$nor": [{"s": "x"}, {"k": "e"}]}, "bc"),
    ({"metadata.coatflow.task": {"$in": []}}, ""),
    # not translated to SQL: matched in Python after SQL narrowed what it could
    ({"s": {"$regex": "^a"}}, "e"),
    ({"s": "x", "k": {"$regex": "[df]"}}, "df"),
    ({"$or": [{"s": {"$regex": "^a"}}, {"k": "a"}]}, "ae"),
    ({"sub": {"a": 1}}, "f"),
    ({"tags": {"$size": 2}}, "d"),
    ({"tags": {"$elemMatch": {"$eq": "q"}}}, "d"),
    ({"metadata.coatflow.key": "k1", "s": {"$not": {"$regex": "y"}}}, "af"),
]


def _keys(docs) -> str:
    return "".join(sorted(d["k"] for d in docs))


@pytest.fixture
def filled(write_config):
    cfg = load_config(write_config())
    store = make_store(cfg, "contract")
    stores_module.connect_checked(store, cfg)
    store.update(DOCS, key="k")
    yield store
    store.close()


@pytest.mark.parametrize("criteria, expected", QUERIES, ids=[json.dumps(q) for q, _ in QUERIES])
def test_query_matches_mongodb_semantics(filled, criteria, expected):
    assert _keys(filled.query(criteria)) == expected
    assert filled.count(criteria) == len(expected)


def test_nan_round_trips_and_queries_still_work(filled):
    doc = filled.query_one({"k": "b"}, properties={"_id": 0})
    assert math.isnan(doc["f"]) and doc["metadata"]["coatflow"]["key"] == "k2"
    assert _keys(filled.query({"f": 1.5})) == "a"


def test_projections_are_nested_like_mongodb(filled):
    docs = list(filled.query({"k": {"$in": ["a", "d", "e"]}}, properties=["k", "metadata.coatflow.key"],
                             sort={"k": 1}))
    assert [{k: v for k, v in d.items() if k != "_id"} for d in docs] == [
        {"k": "a", "metadata": {"coatflow": {"key": "k1"}}}, {"k": "d", "metadata": {}}, {"k": "e"}]  # null: no path
    whole = filled.query_one({"k": "f"}, properties={"_id": 0})
    assert whole == {k: v for k, v in DOCS[5].items()}
    assert filled.query_one({"k": "f"}, properties={"_id": 0, "metadata": 0, "sub": 0}) == {"k": "f", "n": 10, "s": "x"}
    assert filled.query_one({"k": "a"}, properties={"metadata.coatflow.task": 1, "_id": 0}) == {
        "metadata": {"coatflow": {"task": "relax"}}}
    # a projection with a criteria SQL cannot decide (Python-matched) gives the same shape
    doc = filled.query_one({"s": {"$regex": "^a"}}, properties=["k", "metadata.coatflow"])
    assert {k: v for k, v in doc.items() if k != "_id"} == {"k": "e"}


def test_sort_skip_limit(filled):
    def ks(**kw):
        return "".join(d["k"] for d in filled.query({"n": {"$type": "number"}} if kw.pop("py", False) else {}, **kw))

    assert ks(sort={"k": -1}) == "fedcba"
    assert ks(sort={"k": 1}, skip=1, limit=3) == "bcd"
    assert ks(sort={"s": 1, "k": -1}) == "efdabc"
    assert ks(sort={"s": 1, "k": -1}, skip=2, limit=2) == "da"
    assert ks(sort={"k": -1}, limit=2, py=True) == "fd"  # Python-matched: skip/limit after the match
    assert filled.query_one({"s": "x"}, sort={"n": -1})["k"] == "f"
    assert filled.distinct("metadata.coatflow.key", {"s": "x"}) == ["k1"]
    assert sorted(filled.distinct("s")) == ["ab", "x", "y", "z"]


def test_update_upserts_on_a_compound_key(write_config):
    cfg = load_config(write_config())
    store = make_store(cfg, "upserts")
    stores_module.connect_checked(store, cfg)
    try:
        store.update([{"uuid": "u1", "index": 1, "v": 1}, {"uuid": "u1", "index": 2, "v": 2},
                      {"uuid": "u2", "index": 1, "v": 3}], key=["uuid", "index"])
        store.update([{"uuid": "u1", "index": 2, "v": 20}, {"uuid": "u3", "index": 1, "v": 4}], key=["uuid", "index"])
        assert store.count() == 4
        docs = {(d["uuid"], d["index"]): d["v"] for d in store.query({}, properties=["uuid", "index", "v"])}
        assert docs == {("u1", 1): 1, ("u1", 2): 20, ("u2", 1): 3, ("u3", 1): 4}
        assert store.query_one({"uuid": "u1"}, sort={"index": -1})["v"] == 20
        store.remove_docs({"uuid": "u1"})
        assert store.count() == 2 and store.count({"uuid": "u1"}) == 0
        store.remove_docs({"v": {"$not": {"$gt": 3}}})  # Python-matched delete
        assert [d["v"] for d in store.query({})] == [4]
    finally:
        store.close()


def test_jobflow_round_trip_with_blobs_and_replaced_jobs(write_config, tmp_path):
    cfg = load_config(write_config())
    stores = CampaignStores(cfg).connect()
    try:
        prof = _make_profile(5)
        total = _add(prof.output["n"], 2)
        grow = _count_up(total.output, 3)
        responses = run_locally(Flow([prof, total, grow]), store=stores.jobs, create_folders=True,
                                root_dir=str(tmp_path / "run"), log=False, ensure_success=True)
        assert len(responses) == 3 and sorted(responses[grow.uuid]) == [1, 2, 3, 4]  # one uuid, four indexes
        assert stores.jobs.get_output(prof.uuid, load=True) == {"n": 5, "profile": [0, 1, 2, 3, 4]}
        assert stores.jobs.get_output(grow.uuid) == 10
        assert stores.jobs.get_output(grow.uuid, which="all") == [7, 8, 9, 10]
        assert [d["index"] for d in stores.jobs.query({"uuid": grow.uuid}, properties=["index"],
                                                      sort={"index": 1})] == [1, 2, 3, 4]
        raw = stores.jobs.docs_store.query_one({"uuid": prof.uuid})
        assert isinstance(raw["completed_at"], str) and "blob_uuid" in raw["output"]["profile"]
        blobs = stores.jobs.additional_stores["data"]
        assert blobs.count({"blob_uuid": raw["output"]["profile"]["blob_uuid"]}) == 1
    finally:
        stores.close()


# -- embedded only: indexes serve lookups, writes do not scan ---------------------------------------------------


def _plan(store: SQLiteStore, criteria, sort=None) -> str:
    plan = store.explain(criteria, sort)
    assert " SCAN " not in f" {plan} ".replace("USING INDEX", ""), plan  # no full-table scan
    return plan


def test_lookups_and_upserts_use_indexes_not_scans(write_config):
    stores = CampaignStores(_embedded(write_config)).connect()
    jobs, blobs = stores.jobs.docs_store, stores.jobs.additional_stores["data"]
    try:
        for n in (10, 2000):  # the plan does not change with the size: the cost of a lookup does not either
            docs = [{"uuid": f"u{i}", "index": 1, "completed_at": f"2026-01-01T00:{i % 60:02d}",
                     "metadata": {"coatflow": {"key": f"key{i}", "material_id": f"m{i % 50}", "task": "relax"}}}
                    for i in range(n)]
            jobs.update(docs, key=["uuid", "index"])
            assert "USING INDEX" in _plan(jobs, {"metadata.coatflow.key": "key7"})
            assert "USING INDEX" in _plan(jobs, {"metadata.coatflow.material_id": "m3"})
            assert "USING INDEX" in _plan(jobs, {"metadata.coatflow.task": "relax", "completed_at": {"$gt": "x"}})
            plan = _plan(jobs, {"uuid": "u7", "index": 1})  # jobflow's upsert lookup: both index columns
            assert "USING INDEX" in plan and "(<expr>=? AND <expr>=?)" in plan
            assert "USING INDEX" in _plan(jobs, {"uuid": "u7"}, sort={"index": -1})  # get_output("last")
            assert "USING INDEX" in _plan(blobs, {"blob_uuid": {"$in": ["a", "b"]}})
            assert "USING INDEX" in _plan(stores.candidates, {"material_id": "m1"})
            assert jobs.count() == n
        compound = [i for i in jobs.indexes() if '"uuid"' in i["sql"] and '"index"' in i["sql"]]
        assert len(compound) == 1 and compound[0]["unique"]
        assert ensure_index(stores.candidates, "material_id", unique=True)
        _, params, exact = translate({"metadata.coatflow.key": {"$in": ["a", "b"]}, "name": {"$regex": "x"}})
        assert not exact and params == ["a", "b"]  # narrowed by SQL, finished in Python
    finally:
        stores.close()


def test_store_round_trips_as_msonable_without_its_connection(tmp_path):
    store = SQLiteStore(tmp_path / "s" / "coatflow.sqlite", "jobs", key="uuid", last_updated_field="when")
    store.connect()
    store.update({"uuid": "a", "when": datetime(2026, 1, 2, 3, 4, 5)})
    d = store.as_dict()
    assert "_connection" not in json.dumps(d) and d["path"].endswith("coatflow.sqlite")
    again = SQLiteStore.from_dict(json.loads(json.dumps(d)))
    assert again == store and again.key == "uuid" and again.last_updated_field == "when"
    again.connect()
    assert again.query_one({"uuid": "a"})["when"] == "2026-01-02T03:04:05"  # datetimes stored as ISO strings
    assert again.last_updated == datetime(2026, 1, 2, 3, 4, 5)
    assert again.count({"when": {"$gt": datetime(2026, 1, 1)}}) == 1  # datetime criteria compare as stored
    store.close()
    again.close()


def test_old_montydb_folder_is_a_one_line_error(write_config):
    cfg = _embedded(write_config)
    folder = cfg.resolve(cfg.store.path)
    folder.mkdir(parents=True)
    (folder / "monty.storage.cfg").write_text("[sqlite]\n")
    for action in (lambda: CampaignStores(cfg).connect(), lambda: StoreLock(cfg).acquire()):
        with pytest.raises(CoatflowError) as err:
            action()
        msg = str(err.value)
        assert "old montydb store" in msg and "coatflow.sqlite" in msg and "delete it" in msg and "\n" not in msg


# -- several processes on one store ---------------------------------------------------------------------------


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


_HOLD_LOCK = """
    import sys, time
    from coatflow.launchers.config import load_config
    from coatflow.launchers.stores import StoreLock
    lock = StoreLock(load_config(sys.argv[1]), command="coatflow run", expiry=2).acquire()
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
"""


def test_second_run_fails_at_once_naming_the_holder_until_it_is_killed(write_config):
    cfg_path = write_config()
    cfg = load_config(cfg_path)
    holder = _python(_HOLD_LOCK, cfg_path, "60")
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(CoatflowError) as err:
            StoreLock(cfg, command="coatflow run").acquire()
        assert time.monotonic() - t0 < 5  # at once
        msg = str(err.value)
        assert f"is in use by coatflow run (pid {holder.pid} on " in msg and "wait for it to finish" in msg
        assert "\n" not in msg
        assert StoreLock(cfg).holder()["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    notes = []
    with StoreLock(cfg, wait=True, expiry=2, notify=notes.append) as lock:  # embedded: free at once
        assert lock.holder()["pid"] == os.getpid()
    if cfg.store.kind == "embedded":
        assert notes == [] and StoreLock(cfg).holder() is None
    else:  # MongoDB: the dead holder's lock expired without a heartbeat and was taken over
        assert any("taking over" in n for n in notes)


def test_waiting_run_says_so_and_starts_when_the_first_ends(write_config):
    cfg_path = write_config()
    holder = _python(_HOLD_LOCK, cfg_path, "1.5")
    assert holder.stdout.readline().strip() == "locked"
    notes = []
    with StoreLock(load_config(cfg_path), wait=True, notify=notes.append):
        assert holder.poll() is not None or holder.wait(timeout=10) == 0
    assert len(notes) == 1 and "in use by coatflow run" in notes[0] and "waiting" in notes[0]


_CLAIMER = """
    import json, os, sys, time
    from coatflow.launchers.config import load_config
    from coatflow.launchers.stores import KeyClaims
    cfg, owner, go = load_config(sys.argv[1]), sys.argv[2], sys.argv[3]
    claims = KeyClaims(cfg)
    claims.held([])  # open the file before the start signal
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    won = []
    for i in (range(300) if owner == "w1" else range(299, -1, -1)):  # from both ends, meeting in the middle
        group = [f"k{i}", f"k{i + 1}"]  # overlapping groups: where the two meet, both want the same keys
        if not claims.claim(group, owner):
            won.append(group)
    print(json.dumps(won))
"""


def test_two_processes_claiming_overlapping_keys_never_share_one(write_config, tmp_path):
    cfg_path = write_config()
    claims = KeyClaims(load_config(cfg_path))
    claims.clear()
    go = tmp_path / "go"
    procs = {owner: _python(_CLAIMER, cfg_path, owner, str(go)) for owner in ("w1", "w2")}
    assert all(p.stdout.readline().strip() == "ready" for p in procs.values())
    go.write_text("")
    won = {}
    for owner, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        won[owner] = json.loads(out)
    keys = {owner: {k for g in groups for k in g} for owner, groups in won.items()}
    assert won["w1"] or won["w2"]  # (how much each wins depends on how the OS schedules them)
    assert not keys["w1"] & keys["w2"]  # no key claimed by both
    held = claims.held()
    assert {k for k, o in held.items() if o == "w1"} == keys["w1"]  # all or nothing: no stray partial claims
    assert {k for k, o in held.items() if o == "w2"} == keys["w2"]
    claims.close()


def test_claims_are_all_or_nothing_and_a_dead_owner_frees_its_keys(write_config):
    cfg_path = write_config()
    claims = KeyClaims(load_config(cfg_path))
    try:
        assert claims.claim(["a", "b"], "me") == []
        assert claims.claim(["a", "b", "c"], "me") == []  # own claims are no conflict
        assert claims.claim(["c", "b", "d"], "you") == ["b", "c"]
        assert claims.held(["a", "b", "c", "d"]) == {"a": "me", "b": "me", "c": "me"}  # "you" got nothing
        assert claims.release("me", ["c"]) == 1 and claims.claim(["c", "d"], "you") == []
        assert claims.release("me") == 2 and claims.held(["a", "b"]) == {}
        dead = _python("""
            import sys, time
            from coatflow.launchers.config import load_config
            from coatflow.launchers.stores import KeyClaims
            print(KeyClaims(load_config(sys.argv[1])).claim(["x", "y"], "worker"), flush=True)
            time.sleep(60)
        """, cfg_path)
        assert dead.stdout.readline().strip() == "[]"
        assert claims.claim(["x"], "me") == ["x"]
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert claims.claim(["x"], "me") == []  # the killed worker's claim no longer counts
        with StoreLock(load_config(cfg_path)):  # a run starts: claims a killed run left behind are dropped
            assert claims.held(["x"]) == {}
    finally:
        claims.clear()
        claims.close()


_WRITER = """
    import sys
    from coatflow.launchers.embedded_store import SQLiteStore
    store = SQLiteStore(sys.argv[1], "jobs")
    store.connect()
    for i in range(20):
        store.update([{"uuid": f"{sys.argv[2]}-{i}-{j}", "index": 1} for j in range(10)], key=["uuid", "index"])
        store.count({"uuid": f"{sys.argv[2]}-0-0"})
"""


def test_processes_write_one_fresh_file_at_once(tmp_path):
    path = str(tmp_path / "fresh" / "coatflow.sqlite")
    procs = [_python(_WRITER, path, f"w{n}") for n in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = SQLiteStore(path, "jobs")
    store.connect()
    assert store.count() == 600 and len(store.distinct("uuid")) == 600
    store.close()


# -- the MongoDB code of the lock and the claims, on mongomock ----------------------------------------------------


@pytest.fixture
def mongomock_config(tmp_path, monkeypatch):
    """A mongodb config whose collections live in one in-memory mongomock server."""
    client = mongomock.MongoClient()

    class SharedMemoryStore(MemoryStore):
        def connect(self, force_reset=False):
            self._coll = client["coatflow"][self.collection_name]

        def close(self):
            pass

    monkeypatch.setattr(stores_module, "make_store", lambda config, name, blobs=False: SharedMemoryStore(name))
    path = tmp_path / "c.yaml"
    path.write_text("store: {kind: mongodb, uri: 'mongodb://coatflow@127.0.0.1:9/'}\n")
    return load_config(path), client["coatflow"]


def test_mongodb_lock_refuses_a_second_run_and_takes_over_a_dead_one(mongomock_config):
    cfg, db = mongomock_config
    first = StoreLock(cfg, command="coatflow run", expiry=60).acquire()
    with pytest.raises(CoatflowError) as err:
        StoreLock(cfg).acquire()
    assert f"in use by coatflow run (pid {os.getpid()} on " in str(err.value)
    first._mongo[2].set()  # its heartbeat stops, as if the process had been killed
    db[stores_module.LOCKS].update_one({"_id": "run"}, {"$set": {"expires": stores_module._now()}})
    notes = []
    second = StoreLock(cfg, notify=notes.append).acquire()
    assert len(notes) == 1 and "taking over" in notes[0]
    second.release()
    first.release()  # the old holder's release leaves nothing behind: the lock is free
    assert db[stores_module.LOCKS].count_documents({}) == 0


def test_mongodb_claims_are_atomic_under_a_race(mongomock_config):
    cfg, _ = mongomock_config
    claims = KeyClaims(cfg)
    assert claims.claim(["a", "b"], "w1") == []
    assert claims.claim(["b", "c"], "w2") == ["b"] and "c" not in claims.held(["c"])
    real = claims._coll()

    class Blind:  # another worker inserted "b" between our read and our insert: the unique index decides
        def __getattr__(self, name):
            return getattr(real, name)

        def find(self, *a, **kw):
            return iter(())

    claims._coll = lambda: Blind()
    assert claims.claim(["c", "d", "b"], "w2") == ["b"]
    del claims._coll
    assert claims.held(["a", "b", "c", "d"]) == {"a": "w1", "b": "w1"}  # w2's inserts were rolled back
    assert claims.release("w1") == 2


def test_campaign_stores_index_what_jobflow_and_coatflow_query(write_config):
    stores = CampaignStores(load_config(write_config())).connect()
    try:
        made = stores.ensure_indexes()
        assert all(made.values()), made
        assert {f"{JOBS}:uuid+index", f"{JOBS}:metadata.coatflow.key", f"{BLOBS}:blob_uuid",
                "candidates:material_id"} <= set(made)
    finally:
        stores.close()

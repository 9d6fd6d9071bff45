"""Cluster faults of the FireWorks path that need no SLURM (issue 16, items 9-12).

* the worker wrapper writes no secret: SIGTERM to a worker running a job leaves no file holding the password;
* the LaunchPad gets the URI as given (plain, ``+srv``, ``authSource``, ``tls``) and the password in memory;
* two ``submit`` at once add each workflow once;
* a second process on the mongomock LaunchPad file is refused (two workers used to run every job twice).

The workers are real ``python -m coatflow.launchers.fw_worker rlaunch`` processes on FireWorks' mongomock
file LaunchPad; the MongoDB clients are real pymongo clients created with ``connect=False`` (no server).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from jobflow import job

SECRET = "s3cr#t:p@ss/w%rd-4f1c9e"  # characters a URI would need escaped
MOCK_URI = "mongodb://coatflow@localhost:27017/?authSource=admin"  # what the mongomock client gets


def _config(tmp_path: Path, **hpc):
    from coatflow.launchers.config import load_config

    cfg = tmp_path / "coatflow.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"kind": "embedded", "path": str(tmp_path / "store")},
                                   "hpc": {"fw_dir": str(tmp_path / "fw"), **hpc}}))
    return load_config(cfg)


# -- item 10: the URI as given ---------------------------------------------------------------------------


URIS = {
    "plain": "mongodb://coatflow@db.example.org:27017/",
    "srv": "mongodb+srv://coatflow@cluster0.ab1cd.mongodb.net/?retryWrites=true&w=majority",
    "authSource": "mongodb://coatflow@db.example.org:27017/?authSource=admin",
    "tls": "mongodb://coatflow@db1.example.org:27017,db2.example.org:27018/?tls=true&replicaSet=rs0",
}


@pytest.mark.parametrize("kind", list(URIS))
def test_launchpad_gets_the_uri_as_given_and_the_password_in_memory(kind, tmp_path, monkeypatch):
    import pymongo

    import fireworks.core.launchpad as fwlp
    from coatflow.launchers.fireworks import launchpad_settings, write_worker_files
    from coatflow.launchers.fw_worker import env_password_launchpad

    uri = URIS[kind]
    monkeypatch.setenv("COATFLOW_MONGODB_PASSWORD", SECRET)
    calls = []

    def client(*args, **kwargs):  # the real pymongo client, only not connecting
        calls.append((args, kwargs))
        return pymongo.MongoClient(*args, connect=False, **kwargs)

    monkeypatch.setattr(fwlp, "MongoClient", client)
    config = _config(tmp_path, launchpad_uri=uri)
    fw_dir = write_worker_files(config)
    assert SECRET not in (fw_dir / "launchpad.yaml").read_text()

    cls = env_password_launchpad()
    for lp in (cls.from_dict(launchpad_settings(config)),  # coatflow submit/status/resume
               cls.from_file(str(fw_dir / "launchpad.yaml"))):  # the worker wrapper
        (args, kwargs) = calls.pop()
        assert args == (uri,)  # the URI, untouched
        assert kwargs["password"] == SECRET and "username" not in kwargs
        assert lp.db.name == "coatflow_fireworks"
        c = lp.connection
        cred = c.options.pool_options._credentials
        assert (cred.username, cred.password) == ("coatflow", SECRET)
        # old code: authSource = the LaunchPad database, whatever the URI said
        assert cred.source == "admin"
        if kind == "srv":
            assert c._resolve_srv_info["fqdn"] == "cluster0.ab1cd.mongodb.net"  # resolved at connect
            assert c.options.retry_writes is True and c.options.write_concern.document == {"w": "majority"}
        elif kind == "tls":
            assert c.options.pool_options._ssl_context is not None
            assert c.options.replica_set_name == "rs0"
            assert set(c._topology_settings.seeds) == {("db1.example.org", 27017), ("db2.example.org", 27018)}
        else:
            assert c.options.pool_options._ssl_context is None
            assert set(c._topology_settings.seeds) == {("db.example.org", 27017)}


def test_no_user_in_the_uri_or_a_certificate_means_no_password(monkeypatch):
    from coatflow.launchers import config, fw_worker

    assert fw_worker.PASSWORD_ENV == config.PASSWORD_ENV
    monkeypatch.setenv("COATFLOW_MONGODB_PASSWORD", SECRET)
    settings = {"host": "mongodb://db.example.org/", "uri_mode": True, "name": "lp"}
    assert fw_worker.with_env_password(settings) == settings
    x509 = {**settings, "host": "mongodb://CN=coatflow@db.example.org/?authMechanism=MONGODB-X509&tls=true"}
    assert fw_worker.with_env_password(x509) == x509  # a certificate: pymongo refuses a password


def test_a_launchpad_user_without_the_password_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    from coatflow.launchers.fireworks import open_launchpad
    from coatflow.workflows.errors import CoatflowError

    monkeypatch.delenv("COATFLOW_MONGODB_PASSWORD", raising=False)
    with pytest.raises(CoatflowError, match="COATFLOW_MONGODB_PASSWORD|password is required") as err:
        with open_launchpad(_config(tmp_path, launchpad_uri="mongodb://coatflow@db.example.org:27017/")):
            pass
    assert "\n" not in str(err.value)


# -- item 11: concurrent submits ---------------------------------------------------------------------------


@job
def step(x):
    return x


def _plans(n: int):
    plans = []
    for i in range(n):
        a = step(i)
        b = step(a.output)
        for j, task in ((a, "a"), (b, "b")):
            j.metadata = {"coatflow": {"key": f"key-{i}-{task}", "material_id": f"m{i}", "stage": "test",
                                       "task": task, "backend": None}}
        plans.append(SimpleNamespace(jobs=[a, b], candidate=SimpleNamespace(material_id=f"m{i}")))
    return plans


@pytest.fixture
def launchpad_config(tmp_path):
    mongo = os.environ.get("COATFLOW_TEST_MONGODB_URI")
    if not mongo:
        yield _config(tmp_path, mongomock_file=str(tmp_path / "launchpad.json"))
        return
    import uuid

    import pymongo

    db = f"coatflow_test_lp_{uuid.uuid4().hex[:8]}"
    yield _config(tmp_path, launchpad_uri=mongo, launchpad_database=db)
    pymongo.MongoClient(mongo).drop_database(db)


def test_two_concurrent_submits_add_each_workflow_once(launchpad_config):
    from coatflow.launchers.fireworks import SUBMIT_LOCKS, open_launchpad, submit_plans

    config = launchpad_config
    with open_launchpad(config) as lp:
        real_add = lp.add_wf

        def slow_add(wf):  # widen the window between "is it there?" and "add it", as a busy server would
            time.sleep(0.3)
            return real_add(wf)

        lp.add_wf = slow_add
        reports = [None, None]
        go = threading.Barrier(2)

        def submit(i):
            go.wait()
            reports[i] = submit_plans(config, _plans(3), lp)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        keys = [d["spec"]["coatflow"]["key"] for d in lp.fireworks.find({}, {"spec.coatflow.key": 1})]
        assert lp.db[SUBMIT_LOCKS].count_documents({}) == 0  # every lock released
    assert sorted(keys) == sorted(f"key-{i}-{t}" for i in range(3) for t in "ab"), keys  # each job once
    assert reports[0].workflows + reports[1].workflows == 3
    assert sorted(reports[0].in_flight + reports[1].in_flight) == ["m0", "m1", "m2"]


def test_a_lock_left_by_a_dead_submit_is_taken_over_after_its_lease(launchpad_config):
    from coatflow.launchers.fireworks import SUBMIT_LOCKS, open_launchpad, submit_lock

    with open_launchpad(launchpad_config) as lp:
        lp.db[SUBMIT_LOCKS].insert_one({"_id": "key-0-a", "owner": "dead", "expires": time.time() + 0.5})
        t0 = time.time()
        with submit_lock(lp, ["key-0-a", "key-0-b"]):
            waited = time.time() - t0
            assert lp.db[SUBMIT_LOCKS].count_documents({"owner": {"$ne": "dead"}}) == 2
        assert 0.3 < waited < 5
        assert lp.db[SUBMIT_LOCKS].count_documents({}) == 0


# -- items 9 and 12: the worker -----------------------------------------------------------------------------


class Worker:
    """A campaign dir with a mongomock LaunchPad, a URI-mode launchpad.yaml with a user, and FireWorks'
    ``ScriptTask`` jobs; starts ``python -m coatflow.launchers.fw_worker rlaunch`` workers on it."""

    def __init__(self, root: Path):
        self.root = root
        self.config = _config(root, mongomock_file=str(root / "launchpad.json"))
        self.fw = root / "fw"
        self.fw.mkdir()
        (self.fw / "launchpad.yaml").write_text(yaml.safe_dump(
            {"host": MOCK_URI, "uri_mode": True, "name": "coatflow_fireworks", "strm_lvl": "INFO"}))
        (self.fw / "fworker.yaml").write_text(yaml.safe_dump({"name": "w", "category": "", "query": "{}"}))
        for d in ("tmp", "home", "launches"):
            (root / d).mkdir()
        self.env = {**os.environ, "MONGOMOCK_SERVERSTORE_FILE": str(root / "launchpad.json"),
                    "COATFLOW_MONGODB_PASSWORD": SECRET, "COATFLOW_MONGOMOCK_FLUSH_SECS": "0.5",
                    "TMPDIR": str(root / "tmp"), "HOME": str(root / "home")}
        self.env.pop("FW_CONFIG_FILE", None)

    def add(self, *commands: str) -> None:
        from fireworks import Firework, ScriptTask, Workflow

        from coatflow.launchers.fireworks import open_launchpad

        with open_launchpad(self.config) as lp:
            for i, cmd in enumerate(commands):
                lp.add_wf(Workflow([Firework(ScriptTask.from_str(cmd), name=f"job{i}")]))

    def start(self, *rlaunch: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "coatflow.launchers.fw_worker", "rlaunch", "-l", str(self.fw / "launchpad.yaml"),
             "-w", str(self.fw / "fworker.yaml"), *rlaunch], cwd=self.root / "launches", env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def launches(self) -> dict[str, int]:
        from coatflow.launchers.fireworks import open_launchpad

        with open_launchpad(self.config) as lp:
            return {fw["name"]: len(fw.get("launches", [])) for fw in lp.fireworks.find({})}

    def wait_running(self, proc: subprocess.Popen, timeout: float = 300) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if any(self.root.glob("launches/launcher_*/FW.json")):
                return
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        raise AssertionError("the worker started no job")


def _files_holding(secret: bytes, roots, newer_than: float | None = None) -> list[str]:
    hits = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                    if not p.is_file() or st.st_size > 50_000_000 or (newer_than and st.st_mtime < newer_than):
                        continue
                    if secret in p.read_bytes() or secret in str(p).encode():
                        hits.append(str(p))
                except OSError:
                    continue
    return hits


def test_sigterm_to_a_running_worker_leaves_no_password_on_disk(tmp_path):
    w = Worker(tmp_path)
    w.add("sleep 300")
    t0 = time.time() - 1
    proc = w.start("rapidfire", "--nlaunches", "1")
    w.wait_running(proc)
    time.sleep(1.0)  # a ping or two, a flush of the LaunchPad file
    os.killpg(proc.pid, signal.SIGTERM)  # what scancel and the walltime send to the job's processes
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert w.launches() == {"job0": 1}  # the job was checked out: the worker was running it
    secret = SECRET.encode()
    # everything the worker could write: its launch dir, TMPDIR, HOME, the LaunchPad file, the worker files
    assert _files_holding(secret, [tmp_path]) == []
    # and, in case something ignores TMPDIR, anything written to the machine's temp dirs meanwhile
    assert _files_holding(secret, ["/tmp", "/var/tmp", "/dev/shm"], newer_than=t0) == []


def test_a_second_process_on_the_mongomock_launchpad_is_refused(tmp_path):
    from coatflow.launchers.fireworks import status
    from coatflow.workflows.errors import CoatflowError

    w = Worker(tmp_path)
    go = tmp_path / "go"
    wait = f"while [ ! -e {go} ]; do sleep 0.2; done"  # each job runs until the test lets it end
    w.add(wait, wait)
    first = w.start("rapidfire", "--nlaunches", "2")
    w.wait_running(first)
    second = w.start("rapidfire", "--nlaunches", "2")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "is in use by pid" in lines[0] and "one process at a time" in lines[0], err
    with pytest.raises(CoatflowError, match=r"launchpad\.json is in use by pid \d+ on .*hpc\.launchpad_uri"):
        status(w.config)
    go.touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert w.launches() == {"job0": 1, "job1": 1}  # each job ran once (without the lock: twice)
    assert status(w.config)["counts"] == {"(none)": {"COMPLETED": 2}}  # the lock went with the worker


def test_the_lock_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    from coatflow.launchers import fw_worker
    from coatflow.launchers.fireworks import open_launchpad

    config = _config(tmp_path, mongomock_file=str(tmp_path / "launchpad.json"))
    with open_launchpad(config):
        with open_launchpad(config) as lp:  # nested: same process, no refusal
            lp.fireworks.count_documents({})
        assert fw_worker._MONGOMOCK_LOCKS  # still held by the outer block
    assert not fw_worker._MONGOMOCK_LOCKS


# -- the cluster environment -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [
    "import coatflow.launchers.cli",  # coatflow status/resume on a node where the worker settings are exported
    "from jobflow import SETTINGS; SETTINGS.JOB_STORE",  # what a worker does before it runs a job
])
def test_the_worker_jobflow_settings_load_in_a_fresh_process(code, tmp_path):
    from coatflow.launchers.fireworks import write_worker_files

    fw_dir = write_worker_files(_config(tmp_path, mongomock_file=str(tmp_path / "launchpad.json")))
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "JOBFLOW_CONFIG_FILE":
                                                           str(fw_dir / "jobflow.yaml")},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]

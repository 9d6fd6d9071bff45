"""Chaos: a tiny campaign killed with SIGKILL at several moments and rerun each time (issue 16).

Three candidates (Li2O, LiF, LiRhO2) to ``bulk_relax`` on CHGNet: seven jobs. ``coatflow run`` is started
in a harness that kills its own process with SIGKILL at a chosen moment:

* ``in_job:n``: as the n-th job starts (its folder made, nothing computed or stored);
* ``store:n``: when the n-th job has computed its output and is about to store it;
* ``after_job:n``: right after the n-th job's document is stored (between jobs);
* ``table:0``: while the candidates table is written, after its first row.

One more run has two worker processes and is killed from outside (``kill -9`` of the main process only, as a
user would) once the store shows progress; its orphaned worker may still be finishing a job while the next
run starts. After every kill the campaign is run again; at the end the store holds every job key exactly
once, and the ranked table equals the one of an uninterrupted run in another store.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import yaml
from jobflow import JobStore
from jobflow.core.job import Job

from coatflow.launchers.cli import main
from coatflow.launchers.config import load_config
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.builders import CandidateBuilder

_FORK = multiprocessing.get_context("fork")

def _harness(cfg: Path, chaos: str, log: Path) -> None:
    """The forked child: ``coatflow run`` that kills itself with SIGKILL at the moment ``chaos`` names."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    kind, n = chaos.split(":")
    n, started, stored = int(n), [0], [0]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    job_run, store_update, write_table = Job.run, JobStore.update, CandidateBuilder.update_targets

    def run(self, *args, **kwargs):
        started[0] += 1
        if kind == "in_job" and started[0] == n:
            die()
        return job_run(self, *args, **kwargs)

    def update(self, docs, *args, **kwargs):
        stored[0] += 1
        if kind == "store" and stored[0] == n:
            die()
        out = store_update(self, docs, *args, **kwargs)
        if kind == "after_job" and stored[0] == n:
            die()
        return out

    def update_targets(self, items):
        if kind == "table" and len(items) > 1:
            write_table(self, items[:1])
            die()
        return write_table(self, items)

    Job.run, JobStore.update, CandidateBuilder.update_targets = run, update, update_targets
    os._exit(main(["run", "-c", str(cfg)]))


def _config(folder: Path, structures: Path, workers: int) -> Path:
    folder.mkdir(exist_ok=True)
    cfg = folder / "coatflow.yaml"
    cfg.write_text(yaml.safe_dump({"candidates": {"source": "files", "paths": [str(structures)]},
                                   "run": {"stop_after": "bulk_relax", "workers": workers},
                                   "store": {"path": str(folder / "store")}}))
    return cfg


def _start(cfg: Path, chaos: str = "none:0"):
    """``coatflow run`` in a forked process (no second import of torch and coatflow: seconds, not tens)."""
    p = _FORK.Process(target=_harness, args=(cfg, chaos, cfg.parent / "run.log"))
    p.start()
    return p


def _run(cfg: Path, chaos: str = "none:0") -> int:
    p = _start(cfg, chaos)
    p.join(timeout=600)
    return p.exitcode


def _log(cfg: Path) -> str:
    return (cfg.parent / "run.log").read_text()[-2000:]


def _stored_jobs(cfg: Path) -> int:
    """Job documents in the embedded store, read-only (nothing created, no lock taken)."""
    db = cfg.parent / "store" / "coatflow.sqlite"
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute('SELECT count(*) FROM "jobs"').fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _keys(cfg: Path) -> Counter:
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        return Counter(d["metadata"]["coatflow"]["key"] for d in stores.jobs.docs_store.query(
            {"metadata.coatflow.key": {"$exists": True}}, properties=["metadata.coatflow.key"]))
    finally:
        stores.close()


def _table(cfg: Path, capsys) -> list[dict]:
    """The ranked table as `coatflow query --json` prints it, without job ids and times."""
    capsys.readouterr()
    assert main(["query", "--json", "-c", str(cfg)]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        row.pop("fingerprint"), row.pop("last_job_completed_at")
        for stage in row["stages"].values():
            stage.pop("task_uuids", None)
    return rows


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(tmp_path, structure_dir, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ref = _config(tmp_path / "reference", structure_dir, workers=1)
    cfg = _config(tmp_path / "chaos", structure_dir, workers=1)
    orphans: list[int] = []
    try:
        assert _run(ref) == 0, _log(ref)
        total = _stored_jobs(ref)
        assert total == 7  # 3 filter verdicts, 2 relaxations, 2 relaxation verdicts

        progress = [0]
        for chaos in ("in_job:2", "store:2", "after_job:2"):
            assert _run(cfg, chaos) == -signal.SIGKILL, (chaos, _log(cfg))
            progress.append(_stored_jobs(cfg))
        # in_job:2 stores the first job only; store:2 one more (its second is lost); after_job:2 two more
        assert progress == [0, 1, 2, 4]

        # from outside, with two worker processes: kill -9 of the main process once the store moves on
        cfg.write_text(cfg.read_text().replace("workers: 1", "workers: 2"))
        p = _start(cfg)
        deadline = time.monotonic() + 300
        while _stored_jobs(cfg) <= progress[-1] and p.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = _children(p.pid)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        progress.append(_stored_jobs(cfg))
        cfg.write_text(cfg.read_text().replace("workers: 2", "workers: 1"))

        assert _run(cfg, "table:0") == -signal.SIGKILL, _log(cfg)  # dies after the table's first row
        assert _run(cfg) == 0, _log(cfg)

        keys = _keys(cfg)
        assert sorted(keys.values()) == [1] * total, (progress, keys)  # every job key exactly once ...
        assert keys == _keys(ref)  # ... and the same keys as the uninterrupted run
        assert _table(cfg, capsys) == _table(ref, capsys)
    finally:
        for pid in orphans:  # a worker orphaned by the outside kill, should it still be alive
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

"""Campaigns on a FireWorks LaunchPad: ``coatflow submit``, ``coatflow status``, ``coatflow resume``.

* The LaunchPad is MongoDB (``hpc.launchpad_uri``, password from ``COATFLOW_MONGODB_PASSWORD``) or, for
  tests, FireWorks' ``MONGOMOCK_SERVERSTORE_FILE`` mode (``hpc.mongomock_file``): a JSON file loaded when
  a process opens it and written when it closes. Nothing stops two processes from loading it, running the same
  READY job and overwriting each other's file, so coatflow holds an exclusive lock (``<file>.lock``) while it
  has the file open, for the worker's whole life; a second process gets one line naming the holder.
* The LaunchPad is built from the URI as given (FireWorks' ``uri_mode``): ``mongodb+srv://``, ``tls``,
  ``authSource`` and every other option reach pymongo unchanged. The password is added in memory only, as
  pymongo's ``password`` argument next to the URI's user; no file coatflow writes ever holds it.
* Jobs are converted with ``jobflow.managers.fireworks.flow_to_workflow(flow, store=None)``: the JobStore
  is the *worker's* ``JOBFLOW_CONFIG_FILE`` (``<hpc.fw_dir>/jobflow.yaml``), never one serialized per Firework.
* DFT jobs (backend vasp/gpaw) get ``hpc.large_category``, everything else ``hpc.small_category``.
* ``submit`` checks and adds each candidate's work under a lock per job key (documents in the LaunchPad
  database), so two ``coatflow submit`` at once add each job once.
* The worker side (``python -m coatflow.launchers.fw_worker rlaunch|qlaunch|lpad ...``, the mongomock lock,
  the in-memory password) is :mod:`coatflow.launchers.fw_worker`, which imports no planner or store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.fw_worker import (
    lock_mongomock,
    unlock_mongomock,
    use_mongomock,
    env_password_launchpad,
    worker_main,
)
from coatflow.launchers.local import plan_campaign
from coatflow.launchers.stores import CampaignStores, make_job_store
from coatflow.workflows.campaign import leaf_jobs
from coatflow.workflows.errors import CoatflowError

DFT_BACKENDS = ("vasp", "gpaw")
#: LaunchPad states that mean "this job is done or on its way"; a FIZZLED job may be submitted again.
IN_FLIGHT = ("COMPLETED", "RUNNING", "RESERVED", "READY", "WAITING", "PAUSED", "DEFUSED", "ARCHIVED")
#: LaunchPad collection of the per-key submit locks (``_id`` = job key).
SUBMIT_LOCKS = "coatflow_submit_locks"
#: s after which a submit lock left by a crashed ``coatflow submit`` is taken over.
SUBMIT_LOCK_LEASE = 120.0


# -- the LaunchPad -------------------------------------------------------------------------------


def launchpad_settings(config: CampaignConfig) -> dict:
    """``LaunchPad.from_dict`` settings of the configured LaunchPad, without a password (this is what
    ``<hpc.fw_dir>/launchpad.yaml`` holds). A MongoDB LaunchPad is the URI as given, in FireWorks' uri_mode."""
    hpc = config.hpc
    if hpc.mongomock_file:
        return {"host": "localhost", "name": hpc.launchpad_database}
    if not hpc.launchpad_uri:
        raise CoatflowError("no LaunchPad configured: set hpc.launchpad_uri (or hpc.mongomock_file for tests)")
    hpc.require_password()  # a user without COATFLOW_MONGODB_PASSWORD: one line, not pymongo's traceback
    return {"host": hpc.launchpad_uri, "uri_mode": True, "name": hpc.launchpad_database,
            "mongoclient_kwargs": {"serverSelectionTimeoutMS": 5000}}


def _create_ids(lp) -> None:
    """FireWorks' id counters on a new, empty LaunchPad: what ``reset`` creates, but by an upsert of
    FireWorks' own counter document, so two first submits at once cannot wipe each other's work."""
    if lp.fw_id_assigner.count_documents({}) == 0 and lp.fireworks.count_documents({}) == 0:
        lp.fw_id_assigner.update_one({"_id": -1}, {"$setOnInsert": {"next_fw_id": 1, "next_launch_id": 1}},
                                     upsert=True)
        lp.tuneup()


@contextlib.contextmanager
def open_launchpad(config: CampaignConfig):
    """The configured LaunchPad; in mongomock mode the file is locked while the block runs and written
    when it ends."""
    settings = launchpad_settings(config)
    mock = config.resolve(config.hpc.mongomock_file) if config.hpc.mongomock_file else None
    if mock is not None:
        mock.parent.mkdir(parents=True, exist_ok=True)
        lock_mongomock(mock)
    try:
        if mock is not None:
            use_mongomock(mock)
        try:
            lp = env_password_launchpad().from_dict({**settings, "strm_lvl": "ERROR"})
        except Exception as exc:  # noqa: BLE001 - pymongo refused the URI before connecting
            raise CoatflowError(f"cannot use the LaunchPad URI {settings['host']}: {exc} "
                                f"({type(exc).__name__})") from None
        try:
            lp.db.command("ping")
        except Exception as exc:  # noqa: BLE001 - any driver failure means "cannot reach"
            raise CoatflowError(f"cannot reach the LaunchPad at {settings['host']} "
                                f"({type(exc).__name__})") from None
        _create_ids(lp)
        try:
            yield lp
        finally:
            server = getattr(lp.connection, "_store", None)
            if mock is not None and server is not None:
                server._to_file()
                server._finalizer.detach()  # a later garbage collection must not write a stale copy
    finally:
        if mock is not None:
            unlock_mongomock(mock)


def write_worker_files(config: CampaignConfig) -> Path:
    """``<hpc.fw_dir>``: launchpad.yaml (no password), jobflow.yaml (the JobStore), FW_config.yaml."""
    import yaml
    from monty.serialization import dumpfn

    d = config.resolve(config.hpc.fw_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "launchpad.yaml").write_text(yaml.safe_dump({**launchpad_settings(config), "strm_lvl": "INFO"},
                                                     sort_keys=False))
    dumpfn({"JOB_STORE": make_job_store(config).as_dict()}, str(d / "jobflow.yaml"))
    fw = {"PING_TIME_SECS": config.hpc.ping_interval, "RUN_EXPIRATION_SECS": config.hpc.lost_run_expiry,
          "LAUNCHPAD_LOC": str(d / "launchpad.yaml")}
    if config.hpc.mongomock_file:
        fw["MONGOMOCK_SERVERSTORE_FILE"] = str(config.resolve(config.hpc.mongomock_file))
    (d / "FW_config.yaml").write_text(yaml.safe_dump(fw, sort_keys=False))
    return d


# -- submit --------------------------------------------------------------------------------------


def route(job, config: CampaignConfig) -> str:
    """Queue category of a job: DFT to the large queue, MLIP and analysis to the small one."""
    meta = (job.metadata or {}).get("coatflow", {})
    large = meta.get("backend") in DFT_BACKENDS
    category = config.hpc.large_category if large else config.hpc.small_category
    job.update_config({"manager_config": {"_category": category}}, dynamic=True)
    maker = getattr(job, "maker", None)
    if meta.get("backend") == "vasp" and hasattr(maker, "run_vasp_kwargs"):
        # custodian's WalltimeHandler stops VASP cleanly (STOPCAR) before the queue kills it
        maker.run_vasp_kwargs = {**maker.run_vasp_kwargs, "wall_time": config.hpc.large_walltime}
    return category


@dataclass
class SubmitReport:
    workflows: int = 0
    fireworks: int = 0
    categories: Counter = field(default_factory=Counter)
    stored: int = 0
    in_flight: list[str] = field(default_factory=list)


def _keys_in_flight(lp, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    docs = lp.fireworks.find({"spec.coatflow.key": {"$in": keys}, "state": {"$in": list(IN_FLIGHT)}},
                             {"spec.coatflow.key": 1})
    return {d["spec"]["coatflow"]["key"] for d in docs}


@contextlib.contextmanager
def submit_lock(lp, keys, lease: float = SUBMIT_LOCK_LEASE, poll: float = 0.05):
    """Hold the submit lock of every key in ``keys`` while the block runs.

    One document per key (``_id`` = the key, so the database's own unique ``_id`` makes taking it atomic) in
    :data:`SUBMIT_LOCKS` of the LaunchPad database, taken in sorted order (two submits never wait on each
    other in a cycle) and deleted at the end. A second submit of the same keys waits, then finds the work on
    the LaunchPad. A lock left by a submit that died is taken over once its lease (``lease`` s) has run out.
    """
    from pymongo.errors import DuplicateKeyError

    coll = lp.db[SUBMIT_LOCKS]
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    held: list[str] = []
    try:
        for key in sorted(set(keys)):
            while True:
                now = time.time()
                try:
                    coll.insert_one({"_id": key, "owner": owner, "expires": now + lease})
                    break
                except DuplicateKeyError:
                    if coll.find_one_and_update({"_id": key, "expires": {"$lt": now}},
                                                {"$set": {"owner": owner, "expires": now + lease}}):
                        break  # its holder died: taken over
                time.sleep(poll)
            held.append(key)
        yield
    finally:
        if held:
            coll.delete_many({"_id": {"$in": held}, "owner": owner})


def submit_plans(config: CampaignConfig, plans, lp) -> SubmitReport:
    """Add each plan's jobs as one Workflow, unless its work is already on the LaunchPad.

    The check and the add run under :func:`submit_lock` on the plan's job keys, so concurrent submits of the
    same campaign add each job once."""
    from jobflow import Flow
    from jobflow.managers.fireworks import flow_to_workflow

    report = SubmitReport()
    for plan in plans:
        jobs = list(leaf_jobs(plan.jobs))
        if not jobs:
            report.stored += 1
            continue
        keys = [k for j in jobs if (k := (j.metadata or {}).get("coatflow", {}).get("key"))]
        with submit_lock(lp, keys):
            if _keys_in_flight(lp, keys):
                report.in_flight.append(plan.candidate.material_id)
                continue
            for j in jobs:
                report.categories[route(j, config)] += 1
            wf = flow_to_workflow(Flow(plan.jobs, name=plan.candidate.material_id), store=None)
            lp.add_wf(wf)
        report.workflows += 1
        report.fireworks += len(wf.fws)
    return report


def submit(config: CampaignConfig) -> SubmitReport:
    launchpad_settings(config)  # no LaunchPad configured: fail before planning
    stores = CampaignStores(config)
    try:
        plans, _ = plan_campaign(config, stores)
    finally:
        stores.close()
    write_worker_files(config)
    with open_launchpad(config) as lp:
        return submit_plans(config, plans, lp)


# -- status --------------------------------------------------------------------------------------


def _lost_fw_ids(lp, config: CampaignConfig) -> list[int]:
    return list(lp.detect_lostruns(expiration_secs=config.hpc.lost_run_expiry)[1])


def _last_launch(lp, fw: dict) -> dict | None:
    ids = fw.get("launches") or fw.get("archived_launches") or []
    return lp.launches.find_one({"launch_id": ids[-1]}) if ids else None


def last_error_line(launch: dict | None) -> str:
    if not launch:
        return "(no launch recorded)"
    exc = ((launch.get("action") or {}).get("stored_data") or {}).get("_exception") or {}
    trace = exc.get("_stacktrace") or ""
    lines = [ln.strip() for ln in trace.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"(no error recorded; launch state {launch.get('state')})"


def status(config: CampaignConfig, failed: bool = False) -> dict:
    """{"counts": {stage: {state: n}}, "failed": [...]}; a RUNNING job past the expiry counts as lost."""
    with open_launchpad(config) as lp:
        lost = set(_lost_fw_ids(lp, config))
        counts: dict[str, Counter] = defaultdict(Counter)
        rows = []
        for fw in lp.fireworks.find({}, {"fw_id": 1, "state": 1, "name": 1, "spec.coatflow": 1, "launches": 1,
                                         "archived_launches": 1}):
            meta = fw.get("spec", {}).get("coatflow", {})
            state = "lost" if fw["fw_id"] in lost else fw["state"]
            counts[meta.get("stage", "(none)")][state] += 1
            if failed and state in ("FIZZLED", "lost"):
                launch = _last_launch(lp, fw)
                rows.append({"fw_id": fw["fw_id"], "name": fw["name"], "state": state,
                             "material_id": meta.get("material_id"), "stage": meta.get("stage"),
                             "error": last_error_line(launch) if state == "FIZZLED" else
                             "no ping within hpc.lost_run_expiry (killed by walltime, scancel or node failure?)",
                             "launch_dir": (launch or {}).get("launch_dir")})
    return {"counts": {k: dict(v) for k, v in counts.items()}, "failed": rows}


# -- resume --------------------------------------------------------------------------------------


def restart_structure(launch_dir: str | None):
    """(Structure, source file) of the last usable geometry in a DFT launch dir, or (None, None).

    VASP: CONTCAR (written at every ionic step). ASE/GPAW: the last frame of the newest ``*.traj``.
    """
    if not launch_dir or not Path(launch_dir).is_dir():
        return None, None
    d = Path(launch_dir)
    contcars = sorted(d.rglob("CONTCAR*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in contcars:
        try:
            from pymatgen.core import Structure

            if path.stat().st_size:
                return Structure.from_file(str(path)), path
        except Exception:  # noqa: BLE001 - an unreadable file is simply not usable
            continue
    for path in sorted(d.rglob("*.traj"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            from ase.io import read
            from pymatgen.io.ase import AseAtomsAdaptor

            return AseAtomsAdaptor.get_structure(read(str(path), index=-1)), path
        except Exception:  # noqa: BLE001
            continue
    return None, None


def _structure_arg(fw: dict) -> int | None:
    """Index of the job's Structure argument (a Structure or a reference to one), if any."""
    args = fw["spec"]["_tasks"][0].get("job", {}).get("function_args", [])
    for i, a in enumerate(args):
        if isinstance(a, dict) and a.get("@class") in ("Structure", "OutputReference"):
            return i
    return None


def resume(config: CampaignConfig, dry_run: bool = False) -> list[dict]:
    """Rerun FIZZLED and lost jobs (children run when they complete); DFT jobs restart from their
    last geometry when one is usable. Returns one row per job: fw_id, name, why, restart."""
    actions = []
    with open_launchpad(config) as lp:
        lost = _lost_fw_ids(lp, config)
        fizzled = [d["fw_id"] for d in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1})]
        for fw_id in sorted(set(lost) | set(fizzled)):
            fw = lp.fireworks.find_one({"fw_id": fw_id})
            meta = fw["spec"].get("coatflow", {})
            launch = _last_launch(lp, fw)
            row = {"fw_id": fw_id, "name": fw["name"], "why": "lost" if fw_id in lost else "FIZZLED",
                   "launch_dir": (launch or {}).get("launch_dir"), "restart": "from scratch"}
            structure, idx = None, _structure_arg(fw)
            if meta.get("backend") in DFT_BACKENDS and idx is not None:
                structure, source = restart_structure(row["launch_dir"])
                if structure is not None:
                    row["restart"] = f"from last geometry {source}"
            if not dry_run:
                if fw_id in lost:  # mark FIZZLED first: FireWorks only edits specs of jobs not RUNNING
                    lp.detect_lostruns(expiration_secs=config.hpc.lost_run_expiry, fizzle=True,
                                       query={"fw_id": fw_id})
                if structure is not None:
                    lp.update_spec([fw_id], {f"_tasks.0.job.function_args.{idx}": structure.as_dict()})
                lp.rerun_fw(fw_id)
            actions.append(row)
    return actions


# -- the worker side ---------------------------------------------------------------------------


if __name__ == "__main__":  # the old spelling of ``python -m coatflow.launchers.fw_worker``
    sys.exit(worker_main(sys.argv[1:]))

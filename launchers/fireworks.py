"""Campaigns on a FireWorks LaunchPad: ``coatflow submit``, ``coatflow status``, ``coatflow resume``.

* The LaunchPad is MongoDB (``hpc.launchpad_uri``, password from ``COATFLOW_MONGODB_PASSWORD``) or, for
  tests, FireWorks' ``MONGOMOCK_SERVERSTORE_FILE`` mode (``hpc.mongomock_file``): a JSON file loaded when
  a process opens it and written when it closes, with no locking, so only one process may use it at a time.
* Jobs are converted with ``jobflow.managers.fireworks.flow_to_workflow(flow, store=None)``: the JobStore
  is the *worker's* ``JOBFLOW_CONFIG_FILE`` (``<hpc.fw_dir>/jobflow.yaml``), never one serialized per Firework.
* DFT jobs (backend vasp/gpaw) get ``hpc.large_category``, everything else ``hpc.small_category``.
* ``python -m coatflow.launchers.fireworks rlaunch ...`` is ``rlaunch`` for queue scripts: it takes the
  LaunchPad password from the environment and, in mongomock mode, keeps the file current while it runs
  (so a killed job is seen as RUNNING, then lost, as it would be on MongoDB).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.local import plan_campaign
from coatflow.workflows.campaign import leaf_jobs
from coatflow.launchers.stores import PASSWORD_ENV, CampaignStores, make_job_store
from coatflow.workflows.errors import CoatflowError

DFT_BACKENDS = ("vasp", "gpaw")
#: LaunchPad states that mean "this job is done or on its way"; a FIZZLED job may be submitted again.
IN_FLIGHT = ("COMPLETED", "RUNNING", "RESERVED", "READY", "WAITING", "PAUSED", "DEFUSED", "ARCHIVED")


# -- the LaunchPad -------------------------------------------------------------------------------


def _use_mongomock(path: Path) -> None:
    """Make FireWorks' LaunchPad use mongomock-persistence on ``path`` (created empty if missing)."""
    try:
        import mongomock_persistence
    except ImportError:
        raise CoatflowError("hpc.mongomock_file needs the mongomock-persistence package "
                            "(pip install 'coatflow[test]')") from None
    from mongomock.gridfs import enable_gridfs_integration
    from mongomock.store import ServerStore

    import fireworks.core.launchpad as fwlp

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.stat().st_size == 0:
        path.write_text("{}")
    os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(path)
    ServerStore._to_file = _atomic_to_file
    fwlp.MongoClient = mongomock_persistence.MongoClient
    enable_gridfs_integration()


def _atomic_to_file(self) -> None:
    """mongomock-persistence's writer, but never leaving a half-written file behind."""
    import bson.json_util

    tmp = f"{self._filename}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(bson.json_util.dumps(self.to_dict()))
    os.replace(tmp, self._filename)


def _lp_kwargs(config: CampaignConfig, with_password: bool = True) -> dict:
    hpc = config.hpc
    if hpc.mongomock_file:
        return {"host": "localhost", "name": hpc.launchpad_database}
    if not hpc.launchpad_uri:
        raise CoatflowError("no LaunchPad configured: set hpc.launchpad_uri (or hpc.mongomock_file for tests)")
    parts = urlsplit(hpc.launchpad_uri)
    kw = {"host": parts.hostname, "port": parts.port or 27017, "name": hpc.launchpad_database,
          "username": parts.username, "mongoclient_kwargs": {"serverSelectionTimeoutMS": 5000}}
    if with_password and os.environ.get(PASSWORD_ENV):
        kw["password"] = os.environ[PASSWORD_ENV]
    return kw


@contextlib.contextmanager
def open_launchpad(config: CampaignConfig):
    """The configured LaunchPad; in mongomock mode the file is written when the block ends."""
    from fireworks import LaunchPad

    if config.hpc.mongomock_file:
        _use_mongomock(config.resolve(config.hpc.mongomock_file))
    lp = LaunchPad(**_lp_kwargs(config), strm_lvl="ERROR")
    try:
        lp.db.command("ping")
    except Exception as exc:  # noqa: BLE001 - any driver failure means "cannot reach"
        raise CoatflowError(f"cannot reach the LaunchPad at {_lp_kwargs(config)['host']} "
                            f"({type(exc).__name__})") from None
    if lp.fw_id_assigner.count_documents({}) == 0 and lp.fireworks.count_documents({}) == 0:
        lp.reset("", require_password=False)  # a new, empty LaunchPad: create FireWorks' id counters
    try:
        yield lp
    finally:
        server = getattr(lp.connection, "_store", None)
        if config.hpc.mongomock_file and server is not None:
            server._to_file()
            server._finalizer.detach()  # a later garbage collection must not write a stale copy


def write_worker_files(config: CampaignConfig) -> Path:
    """``<hpc.fw_dir>``: launchpad.yaml (no password), jobflow.yaml (the JobStore), FW_config.yaml."""
    import yaml
    from monty.serialization import dumpfn

    d = config.resolve(config.hpc.fw_dir)
    d.mkdir(parents=True, exist_ok=True)
    lp = _lp_kwargs(config, with_password=False)
    lp.pop("mongoclient_kwargs", None)
    (d / "launchpad.yaml").write_text(yaml.safe_dump({**lp, "strm_lvl": "INFO"}, sort_keys=False))
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


def submit_plans(config: CampaignConfig, plans, lp) -> SubmitReport:
    """Add each plan's jobs as one Workflow, unless its work is already on the LaunchPad."""
    from jobflow import Flow
    from jobflow.managers.fireworks import flow_to_workflow

    report = SubmitReport()
    for plan in plans:
        jobs = list(leaf_jobs(plan.jobs))
        if not jobs:
            report.stored += 1
            continue
        keys = [(j.metadata or {}).get("coatflow", {}).get("key") for j in jobs]
        if _keys_in_flight(lp, [k for k in keys if k]):
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
    _lp_kwargs(config)  # no LaunchPad configured: fail before planning
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


def _flush_mongomock_periodically(interval: float) -> None:
    """Write every open mongomock-persistence store to its file every ``interval`` s (daemon thread)."""
    import atexit
    import gc

    from mongomock.store import ServerStore

    ServerStore._to_file = _atomic_to_file
    stop = threading.Event()
    lock = threading.Lock()

    def flush():
        with lock:
            for obj in gc.get_objects():
                if isinstance(obj, ServerStore) and getattr(obj, "_filename", None):
                    with contextlib.suppress(RuntimeError):  # mutated while copied: next tick
                        obj._to_file()

    def loop():
        while not stop.wait(interval):
            flush()

    threading.Thread(target=loop, daemon=True).start()
    atexit.register(lambda: (stop.set(), lock.acquire()))  # runs before the stores' own exit writes


def _with_password(argv: list[str]) -> list[str]:
    """Point ``-l`` at a private copy of the launchpad file with the password from the environment."""
    import tempfile

    import yaml

    if PASSWORD_ENV not in os.environ or "-l" not in argv:
        return argv
    i = argv.index("-l") + 1
    d = yaml.safe_load(Path(argv[i]).read_text())
    d["password"] = os.environ[PASSWORD_ENV]
    fd, tmp = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(d, fh)
    import atexit

    atexit.register(os.unlink, tmp)
    return [*argv[:i], tmp, *argv[i + 1:]]


def worker_main(argv: list[str]) -> int:
    """``python -m coatflow.launchers.fireworks rlaunch <rlaunch args>``."""
    if not argv or argv[0] != "rlaunch":
        print("usage: python -m coatflow.launchers.fireworks rlaunch [rlaunch arguments]", file=sys.stderr)
        return 2
    argv = _with_password(argv[1:])
    if os.environ.get("MONGOMOCK_SERVERSTORE_FILE"):
        _flush_mongomock_periodically(float(os.environ.get("COATFLOW_MONGOMOCK_FLUSH_SECS", "2")))
    from fireworks.scripts.rlaunch_run import rlaunch

    return rlaunch(argv) or 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))

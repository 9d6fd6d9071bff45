"""The worker side of the FireWorks path: ``python -m coatflow.launchers.fw_worker rlaunch|qlaunch|lpad ...``.

FireWorks' own command, with every LaunchPad it loads from a file built in memory with the password from
``COATFLOW_MONGODB_PASSWORD``: nothing is written, so a SIGTERM from ``scancel`` or the walltime leaves no
secret behind. In mongomock mode (``MONGOMOCK_SERVERSTORE_FILE``, tests only) the file is locked for the
life of the process and written every ``COATFLOW_MONGOMOCK_FLUSH_SECS`` s.

The worker's settings: every ``env`` entry of the fworker file (``-w my_fworker.yaml``) named like an
environment variable (``ATOMATE2_VASP_CMD``, ``JOBFLOW_CONFIG_FILE``, ``COATFLOW_GPAW_RANKS``, ...) is exported
to this process's environment (``$VAR`` expanded) when FireWorks loads the file, before any job imports
atomate2 or jobflow, which read them then; atomate v1's lower-case keys (``vasp_cmd``, ``db_file``, ...) are
refused with the setting that replaces them.

This module imports only FireWorks and coatflow's error type (not the config, the planner or the stores),
so a queue job or a login-node ``qlaunch`` starts in about a second; ``coatflow.launchers.fireworks``
(submit, status, resume) builds on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from coatflow.workflows.errors import CoatflowError

PASSWORD_ENV = "COATFLOW_MONGODB_PASSWORD"  # = coatflow.launchers.config.PASSWORD_ENV (tested)
#: pymongo auth mechanisms that take no password
_NO_PASSWORD_AUTH = ("MONGODB-X509", "MONGODB-AWS", "MONGODB-OIDC", "GSSAPI")


# -- the mongomock LaunchPad file (tests) --------------------------------------------------------


#: mongomock files this process holds the lock of: path -> (fd of ``<file>.lock``, holders in this process)
_MONGOMOCK_LOCKS: dict[Path, list[int]] = {}


def lock_mongomock(path: Path) -> None:
    """Take (or re-enter) this process's exclusive lock on the mongomock file ``path``.

    A ``flock`` on ``<file>.lock`` (the data file itself is replaced on every write), so the kernel drops it
    when the process ends, however it ends; a second process is refused with one line naming the holder.
    """
    path = path.resolve()
    if path in _MONGOMOCK_LOCKS:
        _MONGOMOCK_LOCKS[path][1] += 1
        return
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise CoatflowError(f"the mongomock LaunchPad {path} is in use by {holder}; it allows one process at a "
                            "time: wait until that one ends, or use hpc.launchpad_uri (MongoDB) for "
                            "concurrent workers") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    _MONGOMOCK_LOCKS[path] = [fd, 1]


def unlock_mongomock(path: Path) -> None:
    path = path.resolve()
    held = _MONGOMOCK_LOCKS.get(path)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _MONGOMOCK_LOCKS[path]
        os.ftruncate(held[0], 0)
        os.close(held[0])  # closing the only descriptor releases the flock


def use_mongomock(path: Path) -> None:
    """Make FireWorks' LaunchPad use mongomock-persistence on ``path`` (created empty if missing), which
    this process must have locked (:func:`lock_mongomock`)."""
    try:
        import mongomock_persistence
    except ImportError:
        raise CoatflowError("hpc.mongomock_file needs the mongomock-persistence package "
                            "(pip install 'coatflow[test]')") from None
    from mongomock.gridfs import enable_gridfs_integration
    from mongomock.store import ServerStore

    import fireworks.core.launchpad as fwlp

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


# -- the password, in memory only ---------------------------------------------------------------


def with_env_password(settings: dict) -> dict:
    """A copy of LaunchPad ``settings`` with ``COATFLOW_MONGODB_PASSWORD`` as pymongo's ``password`` argument
    (pymongo pairs it with the URI's user, so the URI is never rebuilt and needs no escaping). In memory only:
    for a URI with a user, when the variable is set."""
    password = os.environ.get(PASSWORD_ENV)
    parts = urlsplit(settings["host"]) if settings.get("uri_mode") else None
    if not (password and parts and parts.username) or any(m in parts.query.upper() for m in _NO_PASSWORD_AUTH):
        return dict(settings)  # no user, or an auth mechanism that takes no password
    return {**settings, "mongoclient_kwargs": {**(settings.get("mongoclient_kwargs") or {}), "password": password}}


@functools.cache
def env_password_launchpad():
    """``LaunchPad`` whose ``from_dict``/``from_file`` add the password from the environment (in memory)."""
    from fireworks import LaunchPad

    class EnvPasswordLaunchPad(LaunchPad):
        @classmethod
        def from_dict(cls, d):
            return LaunchPad.from_dict(with_env_password(d))

    return EnvPasswordLaunchPad


# -- the worker's settings ----------------------------------------------------------------------


#: atomate v1 fworker env keys that nothing in coatflow, atomate2 or jobflow reads -> what to use instead
DEAD_ENV_KEYS = {
    "vasp_cmd": "ATOMATE2_VASP_CMD", "gamma_vasp_cmd": "ATOMATE2_VASP_GAMMA_CMD",
    "gpaw_cmd": "COATFLOW_GPAW_RANKS and COATFLOW_GPAW_MPIEXEC", "scratch_dir": "ATOMATE2_CUSTODIAN_SCRATCH_DIR",
    "db_file": "JOBFLOW_CONFIG_FILE", "db_config": "JOBFLOW_CONFIG_FILE",
}


def export_worker_env(env: dict | None, source: str = "the fworker file") -> list[str]:
    """Export the fworker ``env`` entries named like environment variables (upper case) into ``os.environ``,
    ``$VAR``/``~`` expanded; returns their names. Other keys stay FireWorks' ``_fw_env`` only; atomate v1's
    keys (``DEAD_ENV_KEYS``) raise CoatflowError naming their replacement."""
    env = env or {}
    dead = [k for k in env if k in DEAD_ENV_KEYS]
    if dead:
        k = dead[0]
        raise CoatflowError(f"{source}: env key {k!r} is an atomate v1 setting that nothing reads; use "
                            f"{DEAD_ENV_KEYS[k]} instead (docs/hpc.md)")
    exported = []
    for key, value in env.items():
        if isinstance(key, str) and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) and value is not None:
            if isinstance(value, (dict, list)):
                raise CoatflowError(f"{source}: env {key} must be a single value, not {type(value).__name__}")
            os.environ[key] = os.path.expanduser(os.path.expandvars(str(value)))
            exported.append(key)
    return exported


@functools.cache
def env_exporting_fworker():
    """``FWorker`` whose ``from_dict``/``from_file`` exports the worker's settings (:func:`export_worker_env`)."""
    from fireworks import FWorker

    class EnvExportingFWorker(FWorker):
        @classmethod
        def from_dict(cls, d):
            export_worker_env(d.get("env"), f"fworker {d.get('name', '')!r}".replace(" ''", ""))
            return FWorker.from_dict(d)

    return EnvExportingFWorker


# -- the commands ------------------------------------------------------------------------------


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


#: FireWorks commands the wrapper runs: name -> (module, function); each module's ``LaunchPad`` is replaced
#: by :func:`env_password_launchpad` and its ``FWorker`` by :func:`env_exporting_fworker` for the run.
COMMANDS = {"rlaunch": ("fireworks.scripts.rlaunch_run", "rlaunch"),
            "qlaunch": ("fireworks.scripts.qlaunch_run", "qlaunch"),
            "lpad": ("fireworks.scripts.lpad_run", "lpad")}


def worker_main(argv: list[str]) -> int:
    """``python -m coatflow.launchers.fw_worker rlaunch|qlaunch|lpad <their arguments>``.

    FireWorks' command, with every LaunchPad it loads from a file built in memory with the password from
    ``COATFLOW_MONGODB_PASSWORD`` (nothing is written: a SIGTERM from ``scancel`` or the walltime leaves no
    secret behind). In mongomock mode (``MONGOMOCK_SERVERSTORE_FILE``, from the environment or FW_config)
    the file is locked for the life of the process and written every ``COATFLOW_MONGOMOCK_FLUSH_SECS`` s.
    """
    import importlib

    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m coatflow.launchers.fw_worker {{{','.join(COMMANDS)}}} [its arguments]",
              file=sys.stderr)
        return 2
    module, function = COMMANDS[argv[0]]
    import fireworks.fw_config  # noqa: F401 - sets MONGOMOCK_SERVERSTORE_FILE from FW_config.yaml

    mock = os.environ.get("MONGOMOCK_SERVERSTORE_FILE")
    if mock:
        try:
            lock_mongomock(Path(mock))  # held until the process ends
            use_mongomock(Path(mock))
        except CoatflowError as exc:
            print(f"coatflow: {exc}", file=sys.stderr)
            return 2
        _flush_mongomock_periodically(float(os.environ.get("COATFLOW_MONGOMOCK_FLUSH_SECS", "2")))
    mod = importlib.import_module(module)
    mod.LaunchPad = env_password_launchpad()
    if hasattr(mod, "FWorker"):
        mod.FWorker = env_exporting_fworker()
    try:
        return getattr(mod, function)(argv[1:]) or 0
    except CoatflowError as exc:
        print(f"coatflow: {exc}", file=sys.stderr)
        return 2



if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))

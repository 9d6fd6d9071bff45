"""GPAW under MPI: the job's calculator runs in ``mpiexec -n N`` ranks instead of in the job's own process.

``gpaw_calculator`` (makers/gpaw.py) returns an ``MpiGpaw`` when ``gpaw_ranks()`` is above 1, otherwise a
plain GPAW calculator in the job's process, as before. ``N`` is ``COATFLOW_GPAW_RANKS`` when set, else the
allocation's task count ``SLURM_NTASKS``, else 1 (a laptop, CI, ``coatflow run``). The launcher is
``COATFLOW_GPAW_MPIEXEC`` (default ``mpiexec``; ``srun`` works too), run as ``<launcher> -n N python -m
coatflow.makers.gpaw_mpi <socket>``.

``MpiGpaw`` is an ASE calculator in the job's process. At its first calculation it starts the ranks; rank 0
connects back over a Unix socket in a private (0700) temporary folder, and every rank builds the same
``GPAW(**settings)`` with MPI's whole world. Each request from the job (the atoms and the properties to
compute, or a ``get_*`` method such as ``get_eigenvalues``, or a whole function, ``run_under_mpi``) is
broadcast to all ranks, which run it together; rank 0 sends the result back. So the job code (the ASE
optimizer of a relaxation, the NEB, the restart policy, the band edges) runs unchanged in the job's process,
and GPAW keeps its own state between steps as it does serially (wave functions reused after a small move).

Failures: an exception in GPAW that every rank raises (``KohnShamConvergenceError``) comes back to the job
as that exception, so makers/restarts.py handles it as before. A signal in the job's process while the
ranks compute (SIGTERM from ``scancel`` or the walltime, SIGALRM of a restart policy's time limit) stops the
ranks (SIGTERM to mpiexec, which passes it on, SIGKILL 5 s later) and is raised in the job as before. Ranks
that die (a crash, an exception on one rank only: that rank ends its process 60 s later) end the request with
``RanksDied`` and the tail of ``gpaw_mpi.log``, the ranks' output, in the job folder. Idle ranks sleep (no MPI
busy polling), so ranks kept between the steps of a job, or by a calculator after it, use no CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from multiprocessing.connection import Connection
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes

RANKS_ENV = "COATFLOW_GPAW_RANKS"
MPIEXEC_ENV = "COATFLOW_GPAW_MPIEXEC"
LOG = "gpaw_mpi.log"
#: seconds the ranks may take to start and connect (imports on a loaded node are slow)
START_TIMEOUT = 600.0
#: methods of the GPAW calculator that ``MpiGpaw`` forwards to the ranks (besides ``get_*``)
FORWARDED = ("write", "diagonalize_full_hamiltonian")


def gpaw_ranks(environ=None) -> int:
    """MPI ranks for a GPAW calculation: ``COATFLOW_GPAW_RANKS``, else ``SLURM_NTASKS``, else 1."""
    environ = os.environ if environ is None else environ
    for name in (RANKS_ENV, "SLURM_NTASKS"):
        value = environ.get(name, "").strip()
        if value:
            try:
                ranks = int(value)
            except ValueError:
                ranks = 0
            if ranks < 1:
                raise ValueError(f"{name}={value!r} is not a number of MPI ranks (a whole number >= 1)")
            return ranks
    return 1


def mpiexec_command(ranks: int, environ=None) -> list[str]:
    environ = os.environ if environ is None else environ
    launcher = shlex.split(environ.get(MPIEXEC_ENV, "").strip() or "mpiexec")
    if shutil.which(launcher[0]) is None:
        raise FileNotFoundError(f"{MPIEXEC_ENV}: {launcher[0]} is not on PATH (GPAW with {ranks} ranks needs an "
                                f"MPI launcher; set {RANKS_ENV}=1 to run serially)")
    return [*launcher, "-n", str(ranks), sys.executable, "-m", "coatflow.makers.gpaw_mpi"]


# -- the job's side ------------------------------------------------------------------------------


class RanksDied(RuntimeError):
    """The MPI ranks ended in the middle of a request."""


def _stop(proc: subprocess.Popen | None, conn: Connection | None, folder: str | None) -> None:
    """End the ranks: ask politely if idle, else SIGTERM their process group, SIGKILL after 5 s."""
    if conn is not None:
        with contextlib.suppress(OSError, ValueError):
            conn.send(("stop",))
        with contextlib.suppress(OSError):
            conn.close()
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


class MpiGpaw(Calculator):
    """An ASE calculator whose GPAW runs in ``ranks`` MPI processes (see the module docstring).

    ``mpi_info`` after a calculation: ``ranks`` (GPAW's world size), the ranks' ``pids`` and ``host``,
    ``cpu_seconds``, the CPU time each rank has used so far, and ``cpu_seconds_at_init``, when GPAW was built.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "dipole", "magmom", "magmoms"]
    name = "gpaw-mpi"

    def __init__(self, settings: dict | None, ranks: int, command: list[str] | None = None):
        super().__init__()
        self.settings = None if settings is None else dict(settings)  # None: no GPAW (run_under_mpi)
        self.ranks = int(ranks)
        self.command = command or mpiexec_command(self.ranks)
        self.mpi_info: dict = {}
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._folder: str | None = None
        self._finalizer = None
        self._log = Path(LOG)

    # ASE's interface
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = self._request("calculate", self.atoms, list(properties))

    def __getattr__(self, name: str):
        if name.startswith("get_") or name in FORWARDED:
            return lambda *args, **kwargs: self._request("method", name, args, kwargs)
        raise AttributeError(f"{type(self).__name__} has no {name!r}: GPAW runs in {self.ranks} MPI ranks "
                             f"({RANKS_ENV}); only its get_* methods and {', '.join(FORWARDED)} reach it "
                             "(run code that needs GPAW's internals with run_under_mpi)")

    def close(self) -> None:
        """Stop the ranks (a later request starts new ones)."""
        if self._finalizer is not None:
            self._finalizer()
        self._proc = self._conn = self._folder = self._finalizer = None

    # the ranks
    def _start(self) -> None:
        folder = tempfile.mkdtemp(prefix="coatflow-gpaw-")  # 0700: only this user can connect
        path = os.path.join(folder, "s")
        if len(path) > 100:  # AF_UNIX paths are limited to 107 bytes
            shutil.rmtree(folder)
            folder = tempfile.mkdtemp(prefix="coatflow-gpaw-", dir="/tmp")
            path = os.path.join(folder, "s")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(0.5)
        env = {**os.environ, "GPAW_MPI_BACKEND": "cgpaw", RANKS_ENV: "1",  # the ranks' own GPAW: no nesting
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self._log = Path(LOG).resolve()
        with open(self._log, "ab") as log:
            proc = subprocess.Popen([*self.command, path], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._proc, self._folder = proc, folder
        self._finalizer = weakref.finalize(self, _stop, proc, None, folder)
        t0 = time.monotonic()
        try:
            while True:
                try:
                    client, _ = server.accept()
                    break
                except TimeoutError:
                    if proc.poll() is not None:
                        raise RanksDied(f"{shlex.join(self.command)} exited with {proc.returncode} before GPAW "
                                        f"started: {_tail(self._log)}") from None
                    if time.monotonic() - t0 > START_TIMEOUT:
                        raise RanksDied(f"GPAW's MPI ranks did not connect within {START_TIMEOUT:.0f} s") from None
        finally:
            server.close()
        self._conn = Connection(client.detach())
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, proc, self._conn, folder)
        hello = self._receive()
        self.mpi_info = hello
        if hello["ranks"] != self.ranks:
            raise RanksDied(f"{shlex.join(self.command)} started processes that see an MPI world of "
                            f"{hello['ranks']}, not {self.ranks}: is GPAW built with MPI (`gpaw info`) and is "
                            f"{self.command[0]} the launcher of that MPI?")
        if self.settings is not None:
            self._send(("init", self.settings))
            self._reply()
            self.mpi_info["cpu_seconds_at_init"] = list(self.mpi_info["cpu_seconds"])

    def _send(self, message) -> None:
        self._conn.send(message)

    def _receive(self):
        while not self._conn.poll(1.0):
            if self._proc.poll() is not None:
                raise RanksDied(f"GPAW's MPI ranks ended (exit code {self._proc.returncode}): {_tail(self._log)}")
        try:
            return self._conn.recv()
        except EOFError:
            raise RanksDied(f"GPAW's MPI ranks ended: {_tail(self._log)}") from None

    def _reply(self):
        status, value, info = self._receive()
        self.mpi_info.update(info)
        if status == "error":
            raise value
        return value

    def _request(self, *message):
        try:
            if self._conn is None:
                self._start()
            self._send(message)
            return self._reply()
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, (RanksDied, OSError)) or not _from_ranks(exc):
                self.close()  # interrupted (a signal) or cut off: the ranks' state is unknown
            raise


def _from_ranks(exc: BaseException) -> bool:
    return getattr(exc, "_coatflow_from_ranks", False)


def _tail(path: Path, lines: int = 15) -> str:
    """The last lines of the ranks' log, on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no {path})"
    return " | ".join(text[-lines:]) or f"(empty {path})"


@contextlib.contextmanager
def serial_gpaw():
    """GPAW in this process inside the block, whatever ``gpaw_ranks()`` says (code that needs a serial
    calculator itself, e.g. GPAW's response functions)."""
    old = os.environ.get(RANKS_ENV)
    os.environ[RANKS_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(RANKS_ENV, None)
        else:
            os.environ[RANKS_ENV] = old


def run_under_mpi(function, *args, **kwargs):
    """``function(*args, **kwargs)`` on GPAW's MPI ranks (all of them; rank 0's result is returned), or in this
    process when ``gpaw_ranks()`` is 1. ``function`` must be importable by name (a module-level function),
    its arguments and result picklable; inside it ``gpaw_calculator`` builds GPAW on the ranks' world."""
    ranks = gpaw_ranks()
    if ranks == 1:
        return function(*args, **kwargs)
    runner = MpiGpaw(None, ranks)
    try:
        return runner._request("function", f"{function.__module__}:{function.__qualname__}", args, kwargs)
    finally:
        runner.close()


# -- the ranks' side -----------------------------------------------------------------------------


def _gather(world, values: list[float]):
    import numpy as np

    mine = np.asarray(values, dtype=float)
    out = np.empty((world.size, len(values))) if world.rank == 0 else None
    world.gather(mine, 0, out)
    return out


_WAKE_TAG = 7351


def _wake_others(world) -> None:
    """Rank 0: a request came; the other ranks stop waiting (:func:`_wait_for_rank0`)."""
    import numpy as np

    for rank in range(1, world.size):
        world.send(np.ones(1), rank, tag=_WAKE_TAG)


def _wait_for_rank0(world) -> None:
    """Other ranks: wait for rank 0's next request sleeping, not in MPI's busy polling, so that ranks idle
    between the steps of a job, or kept by a calculator after it, use no CPU."""
    import numpy as np

    buf = np.zeros(1)
    request = world.receive(buf, 0, tag=_WAKE_TAG, block=False)
    delay = 1e-4
    while not world.test(request):
        time.sleep(delay)
        delay = min(0.01, 2 * delay)
    world.wait(request)


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        out = exc
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as its text
        out = RuntimeError(f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(AttributeError, TypeError):
        out._coatflow_from_ranks = True
    return out


def _run(calc, request):
    from gpaw import GPAW

    kind = request[0]
    if kind == "init":
        return GPAW(**request[1]), None
    if kind == "calculate":
        atoms, properties = request[1], request[2]
        for name in properties:
            calc.get_property(name, atoms)
        return calc, dict(calc.results)
    if kind == "method":
        _, name, args, kwargs = request
        return calc, getattr(calc, name)(*args, **kwargs)
    if kind == "function":
        module, _, qualname = request[1].partition(":")
        function = importlib.import_module(module)
        for part in qualname.split("."):
            function = getattr(function, part)
        return calc, function(*request[2], **request[3])
    raise ValueError(f"unknown request {kind!r}")


def serve(path: str) -> int:
    """The ranks' loop: rank 0 reads a request from the job, every rank runs it, rank 0 answers."""
    from gpaw.mpi import broadcast, world

    conn = None
    hosts = socket.gethostname()
    if world.rank == 0:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        conn = Connection(sock.detach())
    pids = _gather(world, [os.getpid()])
    if world.rank == 0:
        conn.send({"ranks": world.size, "pids": [int(p) for p in pids[:, 0]], "host": hosts})
    calc = None
    while True:
        request = None
        if world.rank == 0:
            try:
                request = conn.recv()
            except (EOFError, OSError):  # the job's process is gone
                request = ("stop",)
            _wake_others(world)
        else:
            _wait_for_rank0(world)
        request = broadcast(request, 0, comm=world)
        if request[0] == "stop":
            return 0
        error = value = None
        watchdog = None
        try:
            calc, value = _run(calc, request)
        except Exception as exc:  # noqa: BLE001 - sent to the job, which raises it
            error = exc
            traceback.print_exc()
            sys.stdout.flush()
            # a failure on this rank alone leaves the others inside a collective call: end the world
            watchdog = threading.Timer(60.0, os._exit, (3,))
            watchdog.daemon = True
            watchdog.start()
        cpu = _gather(world, [time.process_time()])  # every rank got here: the world is still in step
        if watchdog is not None:
            watchdog.cancel()
        failed = _gather(world, [error is not None])
        if world.rank == 0:
            info = {"cpu_seconds": [float(c) for c in cpu[:, 0]]}
            if error is None and failed.any():
                error = RuntimeError(f"GPAW failed on MPI rank(s) {[i for i, f in enumerate(failed[:, 0]) if f]} "
                                     f"(see {LOG})")
            try:
                conn.send(("error", _picklable(error), info) if error is not None else ("ok", value, info))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a result that cannot travel
                conn.send(("error", _picklable(RuntimeError(f"{request[1]!r} returned what cannot be sent "
                                                           f"back from the MPI ranks: {exc}")), info))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))

"""Restart policy for GPAW and force-field jobs: custodian's error handlers, for the calculators it does not run.

VASP jobs go through custodian. Here each GPAW or force-field attempt runs under a ``RestartPolicy``, in the
spirit of custodian's handlers and AiiDA's ``BaseRestartWorkChain``: when an attempt ends in a known failure,
the matching handler says what to change, the job runs again (from the last geometry the attempt wrote, for
relaxations), up to ``max_restarts`` times. The handlers, first match wins:

* ``scf``: GPAW's ``KohnShamConvergenceError`` -> twice the SCF iterations (``maxiter``), half the density
  mixing (``mixer.beta``, down to 0.01) and a longer mixing history (``nmaxold`` + 3, up to 10).
* ``time_limit``: the attempt outlived ``RestartPolicy.walltime`` seconds (SIGALRM) -> rerun from the last
  geometry of the attempt's ASE trajectory (``relax.<n>.traj`` in the job folder, written at every step).
* ``unconverged``: the optimizer used all its steps -> rerun from its last geometry with the same budget; at
  the cap the unconverged result is returned as before (its document says ``converged: false``).
* ``terminated``: SIGTERM (``scancel``, a SLURM walltime) -> no rerun here: the attempt is recorded and the
  signal is delivered again, so the process ends as it would have; ``coatflow resume`` restarts the job
  from the last trajectory frame (launchers/fireworks.py ``restart_structure``).

Every attempt is recorded, ``{attempt, error, correction, started, ended}`` (UTC ISO times), in the job's
store document: ``metadata.attempts`` and ``metadata.attempts_status`` (ok | restarted | failed) of a job that
finished; a job that gives up writes a document of its own with ``output: null`` and the same metadata, so a
failed job leaves a record. ``coatflow status`` lists them (launchers/attempts.py).

Sub-jobs that dynamic flows create at run time (the NEB hops, the DFT confirmation of adsorption) get keys
too: ``sub_key(parent key, identity)``; ``stored_output`` looks a key up before the sub-job is created, so
a resume reruns only the sub-jobs that did not finish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from jobflow import CURRENT_JOB, Flow, JobConfig, Maker, Response, job
from monty.json import MSONable

#: GPAW's mixer defaults (MSR1: beta 0.05, 5 old densities) and SCF iteration cap, corrected from.
GPAW_MIXER_DEFAULT = {"beta": 0.05, "nmaxold": 5}
GPAW_MAXITER_DEFAULT = 333


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


class JobInterrupted(Exception):
    """An attempt stopped by a signal."""


class TimeLimit(JobInterrupted):
    """The attempt outlived ``RestartPolicy.walltime`` (SIGALRM)."""


class Terminated(JobInterrupted):
    """SIGTERM: the scheduler ends the allocation (``scancel``, walltime)."""


class RestartsExhausted(RuntimeError):
    """Every allowed attempt failed; the message names the last error and how many attempts ran."""


# -- handlers ------------------------------------------------------------------------------------


@dataclass
class Handler:
    """One failure mode: ``applies(error, result)``; ``correct(calculator_kwargs)`` -> the settings to change."""

    name: str
    retry: bool = True
    from_last_geometry: bool = False

    def applies(self, error: BaseException | None, result) -> bool:
        raise NotImplementedError

    def correct(self, calc_kwargs: dict) -> dict:
        return {}


class ScfHandler(Handler):
    def applies(self, error, result) -> bool:
        return error is not None and type(error).__name__ == "KohnShamConvergenceError"

    def correct(self, calc_kwargs: dict) -> dict:
        mixer = calc_kwargs.get("mixer")
        mixer = {**GPAW_MIXER_DEFAULT, **(mixer if isinstance(mixer, dict) else {})}
        return {"maxiter": 2 * int(calc_kwargs.get("maxiter") or GPAW_MAXITER_DEFAULT),
                "mixer": {**mixer, "beta": max(0.01, round(mixer["beta"] / 2, 6)),
                          "nmaxold": min(10, int(mixer["nmaxold"]) + 3)}}


class TimeLimitHandler(Handler):
    def applies(self, error, result) -> bool:
        return isinstance(error, TimeLimit)


class TerminatedHandler(Handler):
    def applies(self, error, result) -> bool:
        return isinstance(error, Terminated)


class UnconvergedHandler(Handler):
    def applies(self, error, result) -> bool:
        return error is None and result is not None and getattr(result, "converged", True) is False


HANDLERS: dict[str, Handler] = {
    "scf": ScfHandler("scf_not_converged"),
    "time_limit": TimeLimitHandler("time_limit", from_last_geometry=True),
    "terminated": TerminatedHandler("terminated", retry=False),
    "unconverged": UnconvergedHandler("optimizer_not_converged", from_last_geometry=True),
}


@dataclass
class RestartPolicy(MSONable):
    """How often and on what a job is run again; not part of any job key (it changes no converged number)."""

    max_restarts: int = 3
    #: seconds per attempt (SIGALRM, main thread only); None: no limit of coatflow's own
    walltime: float | None = None
    handlers: tuple[str, ...] = ("scf", "time_limit", "terminated", "unconverged")

    def __post_init__(self):
        self.handlers = tuple(self.handlers)  # JSON gives a list back
        unknown = set(self.handlers) - set(HANDLERS)
        if unknown:
            raise ValueError(f"unknown restart handler(s) {sorted(unknown)} (known: {', '.join(HANDLERS)})")

    def handler_for(self, error, result) -> Handler | None:
        return next((HANDLERS[h] for h in self.handlers if HANDLERS[h].applies(error, result)), None)


# -- signals -------------------------------------------------------------------------------------


class _Pending:
    """Signals that struck at a moment the attempt must not be stopped at."""

    time_limit: float | None = None  # a soft time limit struck: seconds of grace before a hard stop
    writing: bool = False  # a trajectory frame is being written: a stop now would leave half a frame
    deferred: Exception | None = None  # the stop to raise once the frame is complete


def _stop(exc: Exception) -> None:
    if _Pending.writing:
        _Pending.deferred = exc
        return
    raise exc


def _raise(exc_type):
    def handler(signum, frame):
        _stop(exc_type(f"signal {signal.Signals(signum).name}"))
    return handler


def _soft_alarm(signum, frame):
    if _Pending.time_limit is None:  # first alarm: stop at the next complete frame, or after the grace period
        _Pending.time_limit = grace = max(1.0, signal.getitimer(signal.ITIMER_REAL)[1] or 0.0)
        signal.setitimer(signal.ITIMER_REAL, grace)
        return
    _stop(TimeLimit("signal SIGALRM (no step finished within the grace period)"))


@contextlib.contextmanager
def attempt_signals(walltime: float | None, soft: bool = False):
    """SIGALRM after ``walltime`` s raises TimeLimit, SIGTERM raises Terminated; previous handlers restored.

    ``soft``: the time limit waits for the next complete frame of a ``CheckpointTrajectory`` (so the attempt
    ends on a clean geometry), for at most another ``walltime`` s.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prev_term = signal.signal(signal.SIGTERM, _raise(Terminated))
    prev_alrm = signal.signal(signal.SIGALRM, _soft_alarm if soft else _raise(TimeLimit)) if walltime else None
    _Pending.time_limit = None
    if walltime:
        signal.setitimer(signal.ITIMER_REAL, float(walltime), float(walltime))
    try:
        yield
    finally:
        if walltime:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, prev_alrm)
        signal.signal(signal.SIGTERM, prev_term)
        _Pending.time_limit = _Pending.deferred = None
        _Pending.writing = False


class CheckpointTrajectory:
    """What an ASE optimizer writes each step to (its ``trajectory`` argument): one complete frame appended to
    ``path`` per step; a time limit pending since the last frame stops the attempt right after this one, and
    SIGTERM waits for a frame being written, so the last frame is always whole."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.unlink(missing_ok=True)
        self.description: dict = {}
        self.frames = 0

    def set_description(self, description: dict) -> None:
        self.description = description

    def write(self, atoms=None, **kwargs) -> None:
        from ase.io.trajectory import Trajectory

        _Pending.writing = True  # SIGTERM and a hard time limit wait for the frame (a few ms)
        try:
            with Trajectory(str(self.path), mode="a") as traj:
                traj.set_description(self.description)
                traj.write(atoms, **kwargs)
            self.frames += 1
        finally:
            _Pending.writing = False
        if _Pending.deferred is not None:
            exc, _Pending.deferred = _Pending.deferred, None
            raise exc
        if _Pending.time_limit is not None:
            raise TimeLimit(f"signal SIGALRM (stopped after frame {self.frames} of {self.path.name})")

    def __len__(self) -> int:  # ASE asks whether the trajectory is empty
        return self.frames


def _redeliver_sigterm() -> None:
    """Hand SIGTERM to whatever handled it before (by default: the process ends)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # a Python handler runs here; SIG_DFL has ended the process


# -- the loop ------------------------------------------------------------------------------------


def _error_text(error: BaseException | None, handler: Handler | None) -> str | None:
    if error is None:
        return handler.name if handler else None
    msg = str(error).strip().splitlines()
    return f"{type(error).__name__}: {msg[0]}" if msg else type(error).__name__


def run_with_restarts(attempt: Callable[[object, dict, int], object], structure, policy: RestartPolicy,
                      calc_kwargs: dict | None = None, last_geometry: Callable[[int], object] | None = None,
                      soft: bool = False) -> tuple[object, list[dict]]:
    """Run ``attempt(structure, calculator_kwargs, n)`` until it succeeds or ``policy`` gives up.

    Returns (result, attempts) and records the attempts on the running job (``record_attempts``). Gives up
    with ``RestartsExhausted`` (a handled failure at the cap) or the error itself (no handler), after writing
    the failed job's record (``record_failure``). ``last_geometry(n)``: the last structure attempt ``n``
    wrote, or None. ``soft``: the attempt writes a ``CheckpointTrajectory`` (see ``attempt_signals``).
    """
    kwargs = dict(calc_kwargs or {})
    attempts: list[dict] = []
    n = 0
    while True:
        started, error, result = utc_now(), None, None
        try:
            with attempt_signals(policy.walltime, soft):
                result = attempt(structure, kwargs, n)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised when no handler applies
            error = exc
        handler = policy.handler_for(error, result)
        row = {"attempt": n + 1, "error": _error_text(error, handler), "correction": None, "started": started,
               "ended": utc_now()}
        attempts.append(row)
        if handler is None and error is None:
            record_attempts(attempts)
            return result, attempts
        if handler is None or not handler.retry or n >= policy.max_restarts:
            if error is None:  # unconverged at the cap: the result stands, flagged by its own document
                row["correction"] = {"action": f"none: {policy.max_restarts} restart(s) used"}
                record_attempts(attempts)
                return result, attempts
            if handler is not None and handler.retry:
                final = RestartsExhausted(f"{row['error']} after {n + 1} attempt(s) (restart cap "
                                          f"{policy.max_restarts})")
            else:
                final = error
            row["correction"] = {"action": "give up" if handler is None or handler.retry else
                                 "stop; `coatflow resume` restarts from the last geometry"}
            record_failure(attempts)
            if isinstance(error, Terminated):
                _redeliver_sigterm()
            if final is error:
                raise error
            raise final from error
        correction = handler.correct(kwargs)
        kwargs.update(correction)
        if handler.from_last_geometry:
            last = last_geometry(n) if last_geometry is not None else None
            if last is None and error is None:  # nothing new to start from: a rerun would repeat this one
                row["correction"] = {"action": "none: no geometry to restart from"}
                record_attempts(attempts)
                return result, attempts
            if last is not None:
                structure = last
                correction = {**correction, "restart_from": "last geometry"}
        row["correction"] = correction or {"action": "rerun"}
        n += 1


# -- the record in the store ---------------------------------------------------------------------


def _status(attempts: list[dict], failed: bool) -> str:
    return "failed" if failed else ("restarted" if len(attempts) > 1 else "ok")


def record_attempts(attempts: list[dict]) -> None:
    """Attach the attempts to the running job's metadata (stored with its document)."""
    j = CURRENT_JOB.job
    if j is None:
        return
    j.metadata = j.metadata or {}
    rows = j.metadata.setdefault("attempts", [])
    rows.extend(attempts)
    if j.metadata.get("attempts_status") != "restarted":
        j.metadata["attempts_status"] = _status(attempts, False)


def record_failure(attempts: list[dict]) -> bool:
    """Write the failed job's document (``output: null``, the attempts in ``metadata``); False without a store.

    Its coatflow labels are kept under ``metadata.failed_coatflow``, not ``metadata.coatflow``: no key lookup,
    no builder and no stage query ever reads it as work done.
    """
    j, store = CURRENT_JOB.job, CURRENT_JOB.store
    if j is None or store is None:
        return False
    meta = {k: v for k, v in (j.metadata or {}).items() if k != "coatflow"}
    meta.update({"attempts": [*meta.get("attempts", []), *attempts], "attempts_status": "failed",
                 "failed_coatflow": dict((j.metadata or {}).get("coatflow") or {})})
    doc = {"uuid": j.uuid, "index": j.index, "name": j.name, "output": None, "completed_at": None,
           "failed_at": utc_now(), "hosts": list(j.hosts or []), "metadata": meta}
    try:
        store.docs_store.update([doc], key=["uuid", "index"])
    except Exception:  # noqa: BLE001 - a record that cannot be written must not hide the job's own error
        return False
    return True


# -- the ASE makers (GPAW, force fields) ---------------------------------------------------------


def _trajectory_path(n: int) -> Path:
    return Path.cwd() / f"relax.{n}.traj"


def last_trajectory_frame(path: Path):
    """The last frame of an ASE trajectory as a pymatgen Structure, or None (missing, empty, unreadable)."""
    if not path.is_file() or not path.stat().st_size:
        return None
    try:
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(read(str(path), index=-1))
    except Exception:  # noqa: BLE001 - a trajectory cut mid-frame is simply not usable
        return None


@contextlib.contextmanager
def _swapped(obj, **values):
    old = {k: getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


def settings_without_restarts(maker) -> dict:
    """Every field of a Maker but ``name`` and ``restarts``: its job key as before it had a restart policy."""
    return {f.name: getattr(maker, f.name) for f in fields(maker) if f.init and f.name not in ("name", "restarts")}


@dataclass
class RestartingAseRelax:
    """Mixin for an atomate2 ``AseRelaxMaker`` (GPAW, force fields): ``run_ase`` under a ``RestartPolicy``.

    Put it first among the bases; the subclass's ``make`` is the base's, as a job whose store is exposed (for
    the failure record): ``@job(data=..., config=JobConfig(expose_store=True))`` around ``Base.make.original``
    (written out in each class, so that the job's function serialises by its class for FireWorks).
    ``restarts`` must stay out of the job key: it changes how a result is reached, not the result (a Maker
    keyed by all its fields defines ``key_settings = settings_without_restarts``).
    """

    restarts: RestartPolicy = field(default_factory=RestartPolicy)

    def run_ase(self, mol_or_struct, prev_dir=None):
        relaxing = self.steps > 1

        def attempt(structure, calc_kwargs, n):
            values = {"relax_kwargs": {**self.relax_kwargs, **({"trajectory": CheckpointTrajectory(
                _trajectory_path(n))} if relaxing else {})}}
            if calc_kwargs != self.calculator_kwargs:
                values.update(calculator_kwargs=calc_kwargs, _calculator=None)
            with _swapped(self, **values):
                out = super(RestartingAseRelax, self).run_ase(structure, prev_dir=prev_dir)
            if "_calculator" in values:
                self._calculator = None  # the corrected calculator is not kept for the next job
            return out

        result, _ = run_with_restarts(attempt, mol_or_struct, self.restarts, self.calculator_kwargs,
                                      lambda n: last_trajectory_frame(_trajectory_path(n)) if relaxing else None,
                                      soft=relaxing)
        return result


def scf_with_restarts(atoms, calculator: Callable[[dict], object], calc_kwargs: dict, policy: RestartPolicy,
                      run: Callable[[object], object] | None = None, soft: bool = False) -> tuple[object, dict]:
    """For GPAW jobs outside atomate2's ASE makers: ``atoms.calc = calculator(kwargs)`` then ``run(atoms)``
    (default: the energy) under ``policy``; the atoms keep their last geometry between attempts.
    Returns (``run``'s result, the calculator settings that gave it); the attempts go to the job's metadata.
    ``soft``: ``run`` writes a ``CheckpointTrajectory``, where a time limit stops it."""
    run = run or (lambda a: a.get_potential_energy())
    used = {}

    def attempt(_, kwargs, n):
        used.clear()
        used.update(kwargs)
        atoms.calc = calculator(dict(kwargs))
        return run(atoms)

    result, _ = run_with_restarts(attempt, atoms, policy, calc_kwargs, soft=soft)
    return result, dict(used)


# -- keyed sub-jobs of dynamic flows -------------------------------------------------------------


def sub_key(parent_key: str, *parts) -> str:
    """Key of a sub-job a running job creates: its parent's key and its identity (a hop label, a site)."""
    return hashlib.sha1(json.dumps([parent_key, *parts], sort_keys=True, default=str).encode()).hexdigest()


def parent_key() -> str | None:
    """The coatflow key of the running job (or, for a job inside a keyed flow, the flow's key: the planner
    labels every job of a flow with ``flow``), or None outside a campaign."""
    j = CURRENT_JOB.job
    label = ((j.metadata or {}).get("coatflow") or {}) if j is not None else {}
    return label.get("key") or label.get("flow")


def stored_output(key: str):
    """(True, decoded output, blobs loaded) of the newest finished job with ``key`` in the running job's store,
    or (False, None) (no store exposed, or nothing stored)."""
    store = CURRENT_JOB.store
    if store is None or key is None:
        return False, None
    docs = list(store.docs_store.query({"metadata.coatflow.key": key, "output": {"$ne": None}},
                                       properties=["uuid"], sort={"index": -1}, limit=1))
    if not docs:
        return False, None
    from monty.json import MontyDecoder

    return True, MontyDecoder().process_decoded(store.get_output(docs[0]["uuid"], which="last", load=True))


def label_sub_job(new_job, key: str | None, task: str | None = None) -> None:
    """Give a sub-job its key and the running job's coatflow labels (stage, material); ``key=None``: the labels
    only (a job that hands on a stored result: the key stays on the job that computed it)."""
    j = CURRENT_JOB.job
    label = dict(((j.metadata or {}).get("coatflow") or {}) if j is not None else {})
    label.pop("key", None)
    label.update({**({"key": key} if key else {}), **({"task": task} if task else {})})
    new_job.metadata = {**(new_job.metadata or {}), "coatflow": label}


def structure_fingerprint(structure) -> list:
    """The identity of a sub-job's input cell: species, lattice and fractional coordinates to 1e-6."""
    return [[str(sp) for sp in structure.species], np.round(structure.lattice.matrix, 6).tolist(),
            np.round(structure.frac_coords % 1.0, 6).tolist()]


def _field(obj, name: str):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


@job(name="stored result")
def stored_result(output: dict) -> dict:
    """Hands on what a keyed sub-job stored in an earlier run (``KeyedSubJobMaker``) instead of computing it."""
    return output


@dataclass
class KeyedSubJobMaker(Maker):
    """``maker``'s job under a key of its own, ``sub_key(parent_key(), task, structure_fingerprint(input))``.

    A resume finds a finished sub-job stored and hands its result on (``stored_result``: the structure, the
    folder and the stress and energy of the output, what atomate2's elastic flow reads) instead of computing it
    again. Made while a job runs (atomate2's ``run_elastic_deformations`` making the strained relaxations), the
    store is asked at once; made ahead, in a planned flow (the elastic flow's bulk relaxation), the job
    ``keyed_sub_job`` asks when it runs. Outside a campaign (no parent key) ``maker``'s job runs as it is.
    The planner keys the calculation by the wrapped Makers' settings: wrapping changes no key.
    """

    maker: Maker | None = None
    task: str = "sub-job"
    name: str = "keyed sub-job"

    @property
    def write_additional_data(self) -> dict:
        """The wrapped Maker's extra files (atomate2 writes the deformation's transformations.json there)."""
        return self.maker.write_additional_data

    def make(self, structure, **kwargs):
        if CURRENT_JOB.job is None:
            return keyed_sub_job(self, structure, **kwargs)
        parent = parent_key()
        key = sub_key(parent, self.task, structure_fingerprint(structure)) if parent else None
        found, stored = stored_output(key)
        if not found:
            new = self.maker.make(structure, **kwargs)
            if key:
                label_sub_job(new, key)
            return new
        out = _field(stored, "output")
        new = stored_result({"structure": _field(stored, "structure"), "dir_name": _field(stored, "dir_name"),
                             "output": {"stress": _field(out, "stress"), "energy": _field(out, "energy")}})
        label_sub_job(new, None, task=f"stored {self.task}")
        return new


@job(name="keyed sub-job", config=JobConfig(expose_store=True))
def keyed_sub_job(maker: KeyedSubJobMaker, structure, **kwargs):
    """A ``KeyedSubJobMaker`` job planned ahead: keyed and looked up now that it runs and has its input."""
    new = maker.make(structure, **kwargs)
    return Response(replace=Flow([new], output=new.output))

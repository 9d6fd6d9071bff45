"""Li-vacancy migration: climbing-image NEB per hop, composed from ASE parts, on mlip / gpaw / vasp.

``MigrationMaker.make(structure, summary=...)`` is one job that enumerates the symmetry-distinct Li hops
(workflows/analysis/hops.py), builds and checks the vacancy endpoints, prints how many NEB jobs follow,
and replaces itself with one NEB job per hop plus the job ``summary`` makes of their results (the stage
passes its percolation summary, workflows/stages/migration_barrier.py).

Per hop (``NebHopMaker.make``): both endpoints relaxed at fixed cell, IDPP interpolation, then a
climbing-image NEB (``ase.mep.NEB(climb=True)``) with FIRE. Every image has its own calculator
(GPAW calculators cannot be shared or deep-copied). A run that stops at the step cap is reported
with ``converged=False``. The images go to the ``data`` store (``@job(data="images")``).
"""

from __future__ import annotations

import dataclasses

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jobflow import Flow, JobConfig, Maker, Response, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.makers.gpaw import gpaw_calculator
from coatflow.makers.mlip import CHGNetCalculator
from coatflow.makers.registry import register
from coatflow.makers.restarts import (RestartPolicy, label_sub_job, parent_key, run_with_restarts,
                                      settings_without_restarts, stored_output, sub_key)
from coatflow.workflows.analysis.hops import check_endpoints, check_images, idpp_images, plan_hops
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import MigrationHopResult

logger = logging.getLogger(__name__)


def _max_force(forces: np.ndarray) -> float:
    return float(np.sqrt((forces**2).sum(axis=1).max())) if len(forces) else 0.0


@dataclass
class NebHopMaker(Maker):
    """CI-NEB of one hop between two vacancy supercells (subclasses supply the calculator)."""

    name: str = "neb hop"
    backend: str = "mlip"
    n_images: int = 3  # intermediate images
    fmax: float = 0.1  # eV/Å, NEB and endpoint relaxations
    steps: int = 150  # NEB optimiser cap
    endpoint_steps: int = 100
    climb: bool = True
    optimizer: str = "FIRE"  # FIRE | BFGS

    def calculators(self, n: int) -> list:
        raise NotImplementedError

    def _optimizer(self, obj, logfile=None):
        from ase.optimize import BFGS, FIRE

        opts = {"FIRE": FIRE, "BFGS": BFGS}
        if self.optimizer not in opts:
            raise CoatflowError(f"unknown NEB optimizer '{self.optimizer}' (FIRE or BFGS)")
        return opts[self.optimizer](obj, logfile=logfile)

    @job(data="images", config=JobConfig(expose_store=True))
    def make(self, start: Structure, end: Structure, hop: dict) -> MigrationHopResult:
        threads = getattr(self, "torch_threads", None)
        if not threads:
            return self.run_neb(start, end, hop)
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return self.run_neb(start, end, hop)
        finally:
            torch.set_num_threads(before)

    #: eV: an interior image this far below both endpoints is a minimum of its own (e.g. a split vacancy)
    interior_minimum_tol: float = 0.05

    def _relax_fixed_cell(self, atoms, calc) -> dict:
        atoms.calc = calc
        opt = self._optimizer(atoms)
        opt.run(fmax=self.fmax, steps=self.endpoint_steps)
        f = _max_force(atoms.get_forces())
        return {"energy": float(atoms.get_potential_energy()), "max_force": f, "converged": f <= self.fmax,
                "steps": int(opt.nsteps)}

    def _segment(self, a, b) -> tuple[list, list[float], float, int]:
        """CI-NEB between two relaxed end states: (images, image energies, max NEB force, steps)."""
        from ase.mep import NEB

        calcs = self.calculators(self.n_images)
        images = [a] + [a.copy() for _ in range(self.n_images)] + [b]
        for im, calc in zip(images[1:-1], calcs, strict=True):
            im.calc = calc
        neb = NEB(images, climb=self.climb, method="improvedtangent")
        neb.interpolate("idpp", mic=True)
        check_images([AseAtomsAdaptor.get_structure(im) for im in images])
        opt = self._optimizer(neb)
        opt.run(fmax=self.fmax, steps=self.steps)
        nf = _max_force(neb.get_forces().reshape(-1, 3))
        return images, [float(im.get_potential_energy()) for im in images[1:-1]], nf, int(opt.nsteps)

    def run_neb(self, start: Structure, end: Structure, hop: dict) -> MigrationHopResult:
        t0 = time.perf_counter()
        check_endpoints(start, end, hop)
        a = AseAtomsAdaptor.get_atoms(start)
        b = AseAtomsAdaptor.get_atoms(end)
        ends = [self._relax_fixed_cell(x, c) for x, c in zip((a, b), self.calculators(2), strict=True)]
        images, mid, nf, steps = self._segment(a, b)
        energies = [ends[0]["energy"], *mid, ends[1]["energy"]]
        lowest = int(np.argmin(mid)) + 1 if mid else 0
        if mid and energies[lowest] < min(energies[0], energies[-1]) - self.interior_minimum_tol:
            # the path passes through a lower state: relax it, then one CI-NEB on each side of it
            m = images[lowest].copy()
            inner = self._relax_fixed_cell(m, self.calculators(1)[0])
            inner["interior_minimum"] = True
            ends.insert(1, inner)
            first, e1, f1, s1 = self._segment(a, m)
            second, e2, f2, s2 = self._segment(m, b)
            images = first + second[1:]
            energies = [ends[0]["energy"], *e1, inner["energy"], *e2, ends[-1]["energy"]]
            nf, steps = max(f1, f2), s1 + s2
        e = np.array(energies) - energies[0]
        top = int(np.argmax(e))
        converged = bool(nf <= self.fmax and all(x["converged"] for x in ends) and 0 < top < len(e) - 1)
        # barrier from the lowest state before (forward) or after (reverse) the saddle
        forward, reverse = float(e[top] - e[: top + 1].min()), float(e[top] - e[top:].min())
        return MigrationHopResult(
            hop_label=hop["label"], length=hop["length"], iindex=hop["iindex"], eindex=hop["eindex"],
            backend=self.backend, n_atoms=len(a), n_images=len(images) - 2, climbing=self.climb,
            forward_barrier=forward, reverse_barrier=reverse, energy_profile=e.tolist(),
            reaction_coordinate=_path_length(images), climbing_image=top, max_force=nf, fmax=self.fmax,
            neb_steps=steps, endpoints=ends, converged=converged,
            status="converged" if converged else "unconverged", wall_time=time.perf_counter() - t0,
            images=[AseAtomsAdaptor.get_structure(im) for im in images])


_GPAW_LOGS = itertools.count()  # one log file per GPAW calculator of a job


def _path_length(images) -> list[float]:
    """Cumulative distance (Å) along the path, minimum image."""
    from ase.geometry import find_mic

    s = [0.0]
    for x, y in zip(images[:-1], images[1:], strict=True):
        d, _ = find_mic(y.positions - x.positions, x.cell, x.pbc)
        s.append(s[-1] + float(np.linalg.norm(d)))
    return s


@dataclass
class MLIPNebHopMaker(NebHopMaker):
    """CHGNet CI-NEB; the model is loaded once and shared by per-image calculators."""

    name: str = "mlip neb hop"
    backend: str = "mlip"
    torch_threads: int | None = 1  # on a shared 2-core machine one thread is several times faster

    def calculators(self, n: int) -> list:
        return [CHGNetCalculator() for _ in range(n)]


@dataclass
class GpawNebHopMaker(NebHopMaker):
    """GPAW CI-NEB on a small cell: a separate GPAW calculator (and log) per image."""

    name: str = "gpaw neb hop"
    backend: str = "gpaw"
    n_images: int = 3
    fmax: float = 0.1
    steps: int = 60
    endpoint_steps: int = 40
    calculator_kwargs: dict = field(default_factory=lambda: {"mode": {"name": "pw", "ecut": 350},
                                                             "kpts": {"density": 2.0, "gamma": True}})

    #: SCF failures rerun the hop with corrected settings (makers/restarts.py); a time limit or an unconverged
    #: NEB would only repeat itself from the same images, so they are not retried here
    restarts: RestartPolicy = field(default_factory=lambda: RestartPolicy(handlers=("scf", "terminated")))

    key_settings = settings_without_restarts

    def calculators(self, n: int) -> list:
        return [gpaw_calculator(self.calculator_kwargs, txt=f"gpaw_calc{next(_GPAW_LOGS):03d}.txt") for _ in range(n)]

    def run_neb(self, start: Structure, end: Structure, hop: dict) -> MigrationHopResult:
        def attempt(_, calc_kwargs, n):
            return NebHopMaker.run_neb(dataclasses.replace(self, calculator_kwargs=calc_kwargs), start, end, hop)

        return run_with_restarts(attempt, start, self.restarts, self.calculator_kwargs)[0]


@dataclass
class VaspNebInputMaker(Maker):
    """Writes VASP NEB inputs (00 … NN+1 folders, INCAR, KPOINTS, POTCAR.spec); runs nothing.

    ``vtst=True``: atomate2's ``NebSetGenerator`` climbing-image settings (LCLIMB, IOPT=1, IBRION=3,
    POTIM=0) need a VASP built with the VTST tools. ``vtst=False``: plain VASP NEB (IBRION=1,
    SPRING=-5, no climbing image); its highest image is only an estimate of the saddle point.
    """

    name: str = "vasp neb inputs"
    backend: str = "vasp"
    n_images: int = 5
    vtst: bool = True
    incar_updates: dict = field(default_factory=lambda: {"EDIFFG": -0.05, "NSW": 200})

    def write_inputs(self, start: Structure, end: Structure, directory: str | Path) -> Path:
        from atomate2.vasp.sets.core import NebSetGenerator
        from pymatgen.io.vasp import Poscar

        images = idpp_images(start, end, self.n_images)
        check_images(images)
        gen = NebSetGenerator(num_images=self.n_images, climbing_image=self.vtst,
                              user_incar_settings=dict(self.incar_updates))
        vis = gen.get_input_set(start, potcar_spec=True)
        incar = vis["INCAR"]
        if not self.vtst:
            for k in ("LCLIMB", "IOPT"):
                incar.pop(k, None)
            incar.update({"IBRION": 1, "POTIM": 0.3})
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        incar.write_file(d / "INCAR")
        vis["KPOINTS"].write_file(d / "KPOINTS")
        (d / "POTCAR.spec").write_text(str(vis["POTCAR.spec"]).strip() + "\n")
        for i, im in enumerate(images):
            (d / f"{i:02d}").mkdir(exist_ok=True)
            Poscar(im).write_file(d / f"{i:02d}" / "POSCAR")
        return d

    @job
    def make(self, start: Structure, end: Structure, hop: dict) -> MigrationHopResult:
        check_endpoints(start, end, hop)
        d = self.write_inputs(start, end, Path.cwd() / f"neb_hop{hop['label']}")
        return MigrationHopResult(
            hop_label=hop["label"], length=hop["length"], iindex=hop["iindex"], eindex=hop["eindex"],
            backend="vasp", n_atoms=len(start), n_images=self.n_images, climbing=self.vtst, converged=False,
            status="inputs_written", inputs_dir=str(d))


@dataclass
class MigrationMaker(Maker):
    """The migration_barrier stage's work for one structure: hop enumeration + one NEB job per hop."""

    name: str = "li migration"
    hop_maker: Maker = field(default_factory=MLIPNebHopMaker)
    ion: str = "Li"
    hop_cutoff: float = 4.0  # Å
    rel_cutoff: float | None = 1.3  # hops longer than this x the shortest one are skipped (listed)
    min_size: float = 7.0  # Å, minimum perpendicular width of the vacancy supercell
    max_atoms: int = 160
    max_hops: int = 4  # shortest symmetry-distinct hops kept; the rest are listed as skipped

    def settings(self) -> dict:
        """What the stage document records of how the hops were chosen and computed."""
        return {"ion": self.ion, "hop_cutoff": self.hop_cutoff, "rel_cutoff": self.rel_cutoff,
                "min_size": self.min_size, "backend": getattr(self.hop_maker, "backend", "?"),
                "n_images": getattr(self.hop_maker, "n_images", "?"), "fmax": getattr(self.hop_maker, "fmax", None)}

    @job(name="enumerate li hops", config=JobConfig(expose_store=True))
    def make(self, structure: Structure, label: str = "", summary: Callable | None = None):
        """Enumerate the hops, then replace this job by one NEB job per hop and ``summary(hop outputs, graph,
        skipped, settings)`` (a job function), whose output becomes this job's. Without ``summary`` the output
        is those four inputs (the hop results in full, images included).

        In a campaign each NEB job is keyed by this job's key and its hop (``restarts.sub_key``); a hop whose
        key is stored (the stage was stopped after it) is not run again, its stored result is used."""
        hops, graph, skipped = plan_hops(structure, self.ion, self.hop_cutoff, self.min_size,
                                         self.max_atoms, self.max_hops, self.rel_cutoff)
        settings = self.settings()
        msg = (f"migration_barrier {label or structure.composition.reduced_formula}: {len(hops)} NEB job(s) "
               f"({settings['backend']}, {settings['n_images']} images, supercells of "
               f"{', '.join(str(len(h['start'])) for h in hops) or '-'} atoms); {len(skipped)} hop(s) skipped")
        print(msg, flush=True)
        logger.info(msg)
        jobs, outputs, parent = [], [], parent_key()
        for h in hops:
            key = sub_key(parent, "neb hop", h["hop"]["label"], round(h["hop"]["length"], 4)) if parent else None
            found, stored = stored_output(key)
            if found:
                outputs.append(stored)
                continue
            j = self.hop_maker.make(h["start"], h["end"], h["hop"])
            j.name = f"neb hop {h['hop']['label']} ({h['hop']['length']:.2f} A)"
            if key:
                label_sub_job(j, key)
            jobs.append(j)
            outputs.append(j.output)
        if len(jobs) < len(hops):
            logger.warning("migration_barrier %s: %d of %d NEB job(s) already stored, not run again",
                           label or structure.composition.reduced_formula, len(hops) - len(jobs), len(hops))
        if summary is None:
            return Response(replace=Flow(jobs, output={"hops": outputs, "graph": graph, "skipped": skipped,
                                                       "settings": settings}))
        final = summary(outputs, graph, skipped, settings)
        return Response(replace=Flow([*jobs, final], output=final.output))


@register("neb", "mlip")
def _mlip_neb():
    return MigrationMaker(hop_maker=MLIPNebHopMaker())


@register("neb", "gpaw")
def _gpaw_neb():
    return MigrationMaker(hop_maker=GpawNebHopMaker(), min_size=5.0, max_atoms=40, max_hops=1)


@register("neb", "vasp")
def _vasp_neb():
    return MigrationMaker(hop_maker=VaspNebInputMaker(), min_size=9.0, max_atoms=200)

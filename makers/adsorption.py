"""Li adsorption on the most stable surface: ML pre-screen of every site, DFT confirmation of the lowest k.

Built on atomate2's ``AdsorptionMaker`` (same slab settings and maker slots), with its four
shortfalls fixed: every stoichiometric non-polar termination of every low-index facet is compared
(not one), mu_Li is bulk bcc Li (not an isolated atom), the *relaxed* structures are stored, and
no molecule maker is needed (no NameError when ``mol_relax_maker`` is None).

The ML stage runs the atomate2 force-field relax makers' calculator inline, one job for the surface
choice and one for all sites, so a candidate's adsorption results are two documents that cache and
resume as a unit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ase.constraints import FixAtoms
from atomate2.ase.utils import AseRelaxer
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from atomate2.vasp.flows.adsorption import AdsorptionMaker
from jobflow import Flow, Job, JobConfig, Maker, Response, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.makers.mlip import CHGNET_CALCULATOR, IONIC_STEP_DATA
from coatflow.makers.registry import get_maker, register
from coatflow.makers.restarts import label_sub_job, parent_key, stored_output, sub_key
from coatflow.workflows.analysis.adsorption_sites import (NO_PHYSICAL_SITE, adsorption_energy, adslab, check_outcome,
                                                          coordination, enumerate_sites, lowest_physical_site,
                                                          relaxed_site)
from coatflow.workflows.analysis.slabs import candidate_slabs, fix_layers, surface_area, surface_energy
from coatflow.workflows.analysis.structures import bcc_li, isolated_li
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import AdsorptionSite, LiAdsorptionDoc


def _ff(relax_cell: bool, steps: int = 300, fmax: float = 0.05) -> ForceFieldRelaxMaker:
    return ForceFieldRelaxMaker(force_field_name="CHGNet", calculator_meta=CHGNET_CALCULATOR, relax_cell=relax_cell,
                                steps=steps, relax_kwargs={"fmax": fmax}, ionic_step_data=IONIC_STEP_DATA)


@dataclass
class LiAdsorptionMaker(AdsorptionMaker):
    """Li adsorption energies on the lowest-energy low-index surface of a relaxed bulk."""

    name: str = "li adsorption"
    mol_relax_maker: Maker | None = None  # Li is referenced to bulk bcc Li, not a molecule
    mol_static_maker: Maker | None = None
    bulk_relax_maker: Maker | None = None  # the funnel hands in a relaxed bulk
    slab_relax_maker: Maker | None = field(default_factory=lambda: _ff(relax_cell=False))
    slab_static_maker: Maker | None = None  # energies come from the relaxations themselves
    li_relax_maker: Maker = field(default_factory=lambda: _ff(relax_cell=True))
    min_vacuum: float = 12.0
    min_lw: float = 6.0
    layers: int = 2  # d_hkl planes (pymatgen in_unit_planes)
    max_index: int = 1
    max_atoms: int = 60
    max_surfaces: int = 2  # terminations relaxed: the lowest by unrelaxed (single-point) surface energy
    max_sites: int = 6  # sites relaxed: the lowest by single-point energy of the unrelaxed Li position
    fmax: float = 0.1  # eV/A, slab and site relaxations
    steps: int = 150  # optimizer steps cap, slab and site relaxations (not converged -> flagged)
    fix_fraction: float = 0.5  # bottom half of the slab fixed
    backend: str = "mlip"
    dft_backend: str | None = None
    top_k: int = 3

    def make(self, structure: Structure, slab: Structure | None = None) -> Flow:
        """Flow: bcc Li reference, surface choice (or the given ``slab``), all sites, optional DFT."""
        dft = self.requested_dft()
        ref = self.reference_job()
        surf = self.surface_job(structure, slab)
        sites = self.sites_job(surf.output, ref.output, dft)
        jobs = [ref, surf, sites]
        out = sites.output
        if dft["status"] == "pending":
            conf = self.dft_job(sites.output)
            jobs.append(conf)
            out = conf.output
        return Flow(jobs, output=out, name=self.name)

    # the calculations one at a time, for a planner that caches each under its own key

    def reference_job(self) -> Job:
        """Relaxation of bcc Li, the mu_Li reference."""
        return self.li_relax_maker.make(bcc_li())

    def surface_job(self, structure: Structure, slab: Structure | None = None) -> Job:
        """Surface choice: every candidate termination of ``structure`` (or the given ``slab``) compared."""
        return select_surface(structure, self, slab)

    def sites_job(self, surface, li_reference, dft: dict) -> Job:
        """ML relaxation of Li on every site of the chosen surface; ``dft`` is recorded in the document."""
        return relax_sites(surface, li_reference, self, dft)

    def dft_job(self, doc) -> Job:
        """DFT single points of the ``top_k`` lowest physical sites on ``dft_backend``."""
        return confirm_with_dft(doc, self.dft_backend, self.top_k)

    def requested_dft(self) -> dict:
        """The DFT confirmation ``dft_backend`` asks for: 'pending' (will run), or 'not_run' without a backend.

        Whether that backend can run on this machine is the campaign's check (workflows/stages/li_adsorption.py).
        """
        if not self.dft_backend:
            return {"status": "not_run", "reason": "no DFT backend configured (adsorption.dft_backend)"}
        return {"status": "pending", "backend": self.dft_backend}


@register("adsorption", "mlip")
def _mlip_adsorption():
    return LiAdsorptionMaker()


# --- inline ML calculations -------------------------------------------------------------------


def _relax(maker: ForceFieldRelaxMaker, calc, structure: Structure, fmax: float | None = None,
           steps: int | None = None) -> tuple[Structure, float, float, bool]:
    """(relaxed structure, first energy, final energy, force-converged); fmax/steps override the maker's."""
    kw = {**maker.relax_kwargs, **({"fmax": fmax} if fmax else {})}
    res = AseRelaxer(calc, relax_cell=maker.relax_cell, **maker.optimizer_kwargs).relax(
        structure, steps=steps or maker.steps, final_atoms_object_file=None, **kw)
    traj = res.trajectory
    if hasattr(traj, "frame_properties"):
        e0, e1 = (traj.frame_properties[i]["energy"] for i in (0, -1))
    else:
        e0, e1 = traj.energy[0], traj.energy[-1]
    out = res.final_mol_or_struct
    if "selective_dynamics" in structure.site_properties:  # keep the constraints on the stored structure
        out.add_site_property("selective_dynamics", structure.site_properties["selective_dynamics"])
    return out, float(e0), float(e1), bool(res.is_force_converged)


def _energy(calc, structure: Structure) -> float:
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.set_constraint([FixAtoms([])])
    atoms.calc = calc
    return float(atoms.get_potential_energy())


@job(name="li adsorption: choose surface")
def select_surface(bulk: Structure, maker: LiAdsorptionMaker, slab: Structure | None = None) -> dict:
    """Relax every candidate termination; keep the one with the lowest surface energy.

    ``slab``: a termination chosen elsewhere (the slab Maker's lowest one); then only it is relaxed.
    """
    if maker.max_surfaces < 1 or maker.max_sites < 1 or maker.steps < 1 or maker.fmax <= 0:
        raise CoatflowError("adsorption settings need max_surfaces >= 1, max_sites >= 1, steps >= 1, fmax > 0")
    t0 = time.perf_counter()
    calc = maker.slab_relax_maker.calculator
    e_bulk = _energy(calc, bulk)
    if slab is not None:
        kept, skipped = [{"miller_index": None, "termination": None, "symmetric": None, "nsites": len(slab),
                          "structure": fix_layers(slab, "bottom", maker.fix_fraction)}], []
    else:
        kept, skipped = candidate_slabs(bulk, maker.max_index, maker.layers, maker.min_vacuum, maker.min_lw,
                                        maker.max_atoms, maker.fix_fraction)
    structs = [entry.pop("structure") for entry in kept]

    def gamma(energy: float, s: Structure) -> float:
        return surface_energy(energy, s.composition, e_bulk, bulk.composition, surface_area(s))

    # single-point surface energies rank the terminations; only the lowest max_surfaces are relaxed
    gamma0 = [gamma(_energy(calc, s), s) for s in structs]
    to_relax = sorted(range(len(structs)), key=gamma0.__getitem__)[:maker.max_surfaces]
    surfaces, relaxed = [], []
    for i, (entry, s) in enumerate(zip(kept, structs)):
        surf = {**entry, "area": surface_area(s), "gamma_unrelaxed": gamma0[i], "relaxed": i in to_relax,
                "energy": None, "converged": False, "gamma": None}
        out = None
        if i in to_relax:
            out, _, e, conv = _relax(maker.slab_relax_maker, calc, s, maker.fmax, maker.steps)
            surf.update(energy=e, converged=conv, gamma=gamma(e, s))
        surfaces.append(surf)
        relaxed.append(out)
    ok = [i for i, s in enumerate(surfaces) if s["converged"]]
    chosen = min(ok, key=lambda i: surfaces[i]["gamma"]) if ok else None
    return {
        "surfaces": surfaces, "skipped": skipped, "chosen": chosen, "bulk_energy_per_atom": e_bulk / len(bulk),
        "how": "given slab (slab Maker)" if slab is not None else
        "lowest mean surface energy (J/m2) of stoichiometric non-polar terminations, same calculator "
        f"(the {maker.max_surfaces} lowest by single-point energy relaxed)",
        "slab": None if chosen is None else relaxed[chosen],
        "slab_energy": None if chosen is None else surfaces[chosen]["energy"],
        "reason": None if chosen is not None else ("no converged stoichiometric non-polar slab" if kept else
                                                   "no stoichiometric non-polar termination within max_atoms"),
        "wall_time": time.perf_counter() - t0,
    }


@job(name="li adsorption: relax sites")
def relax_sites(surface: dict, li_ref, maker: LiAdsorptionMaker, dft: dict) -> LiAdsorptionDoc:
    """ML relaxation of Li on every symmetry-distinct site; E_ads vs bulk bcc Li; unphysical ones flagged."""
    t0 = time.perf_counter()
    li = _task_summary(li_ref)
    mu = li["energy"] / len(li["structure"])
    doc = LiAdsorptionDoc(mu_li={maker.backend: mu}, surfaces=surface["surfaces"], ml_backend=maker.backend,
                          dft=dict(dft), surface={k: surface[k] for k in ("chosen", "how", "skipped")})
    if surface["chosen"] is None:
        doc.reason = surface["reason"]
        return doc
    slab = surface["slab"]
    doc.surface.update({k: surface["surfaces"][surface["chosen"]][k] for k in ("miller_index", "termination",
                                                                               "gamma", "symmetric")})
    doc.slab, doc.slab_energy = slab, {maker.backend: surface["slab_energy"]}
    calc = maker.slab_relax_maker.calculator
    doc.isolated_atom_energy = {maker.backend: _energy(calc, isolated_li())}
    sites = enumerate_sites(slab)
    # more sites than max_sites: relax those with the lowest single-point energy of the starting position
    e0 = {s["index"]: _energy(calc, adslab(slab, s)) for s in sites} if len(sites) > maker.max_sites else {}
    chosen = sorted(sites, key=lambda s: e0[s["index"]])[:maker.max_sites] if e0 else sites
    doc.surface["n_sites_enumerated"] = len(sites)
    doc.surface["sites_not_relaxed"] = [
        {"index": s["index"], "site_type": s["site_type"], "site_atoms": s["site_atoms"],
         "e_ads_unrelaxed": adsorption_energy(e0[s["index"]], surface["slab_energy"], mu)}
        for s in sites if s["index"] not in {c["index"] for c in chosen}]
    for s in chosen:
        out, _, e, conv = _relax(maker.slab_relax_maker, calc, adslab(slab, s), maker.fmax, maker.steps)
        flags, geo = check_outcome(slab, out)
        if not conv:
            flags.append("not_converged")
        cn, nbrs = coordination(out, len(out) - 1)
        doc.sites.append(AdsorptionSite(
            index=s["index"], site_type=s["site_type"], site_atoms=s["site_atoms"], coordination=cn,
            neighbours=nbrs, e_ads_ml=adsorption_energy(e, surface["slab_energy"], mu), flags=flags,
            relaxed_to=relaxed_site(sites, out), structure=out, **geo))
    _select_min(doc, "ml")
    doc.surface["wall_time_sites"] = time.perf_counter() - t0
    return doc


def _select_min(doc: LiAdsorptionDoc, which: str) -> None:
    e_ads = {s.index: getattr(s, f"e_ads_{which}") for s in doc.sites}
    best = lowest_physical_site(e_ads, {s.index: s.flags for s in doc.sites})
    if best is None:
        doc.reason = doc.reason or NO_PHYSICAL_SITE
        return
    doc.e_ads_min, doc.min_site = e_ads[best], best
    doc.min_backend = doc.ml_backend if which == "ml" else doc.dft["backend"]
    doc.reason = None


def _task_summary(doc) -> dict:
    """Energy and structure from any task document (atomate2 VASP/force-field, or its dict form)."""
    def get(d, *path):
        for k in path:
            d = d.get(k) if isinstance(d, dict) else getattr(d, k, None)
            if d is None:
                return None
        return d
    energy = get(doc, "output", "energy")
    if energy is None:
        energy = get(doc, "energy")
    s = get(doc, "output", "structure") or get(doc, "structure")
    return {"energy": float(energy), "structure": s if isinstance(s, Structure) else Structure.from_dict(s)}


# --- DFT confirmation -------------------------------------------------------------------------


@job(name="li adsorption: DFT confirmation", config=JobConfig(expose_store=True))
def confirm_with_dft(doc: LiAdsorptionDoc, backend: str, k: int) -> Response:
    """DFT single points on the ML-relaxed clean slab, bcc Li and the k lowest physical sites (AdsorbML ML+SP).

    In a campaign each single point is keyed by this job's key and its role (slab, Li, site index); one whose
    key is stored (a run stopped half-way) is not run again."""
    good = sorted((s for s in doc.sites if not s.flags and s.e_ads_ml is not None), key=lambda s: s.e_ads_ml)[:k]
    if doc.slab is None or not good:
        doc.dft = {"status": "not_run", "backend": backend, "reason": doc.reason or "no physical site to confirm"}
        return Response(output=doc)
    bulk = get_maker("static", backend)
    try:
        slab = get_maker("slab_static", backend)
    except CoatflowError:  # no slab maker for this backend: the bulk static (periodic in 3D) runs the slabs
        slab = bulk
    # bcc Li as built (a = 3.51 Å), not relaxed: see workflows/analysis/structures.py
    todo = [("slab", slab, doc.slab), ("li", bulk, bcc_li())] + [(f"site {s.index}", slab, s.structure)
                                                                 for s in good]
    jobs, outputs, parent = [], [], parent_key()
    for role, maker, structure in todo:
        key = sub_key(parent, "dft", role) if parent else None
        found, stored = stored_output(key)
        if found:
            outputs.append(stored)
            continue
        j = maker.make(structure)
        if key:
            label_sub_job(j, key)
        jobs.append(j)
        outputs.append(j.output)
    combine = combine_dft(doc, backend, [s.index for s in good], outputs)
    return Response(replace=Flow([*jobs, combine], output=combine.output))


@job(name="li adsorption: DFT energies")
def combine_dft(doc: LiAdsorptionDoc, backend: str, site_ids: list[int], outputs: list) -> LiAdsorptionDoc:
    slab_e = _task_summary(outputs[0])["energy"]
    li = _task_summary(outputs[1])
    mu = li["energy"] / len(li["structure"])
    doc.mu_li[backend], doc.slab_energy[backend] = mu, slab_e
    by_id = {s.index: s for s in doc.sites}
    for sid, out in zip(site_ids, outputs[2:]):
        by_id[sid].e_ads_dft = adsorption_energy(_task_summary(out)["energy"], slab_e, mu)
    ml_pick = min(site_ids, key=lambda i: by_id[i].e_ads_ml)
    _select_min(doc, "dft")
    dft_min = doc.e_ads_min
    doc.dft = {"status": "done", "backend": backend, "k": len(site_ids), "method": "single points on ML geometries",
               "ml_selected_site": ml_pick, "dft_min_site": doc.min_site,
               # AdsorbML success: the ML-selected site is within 0.1 eV of the DFT minimum over the confirmed sites
               "ml_within_0.1eV": bool(by_id[ml_pick].e_ads_dft - dft_min <= 0.1)}
    return doc

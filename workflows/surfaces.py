"""Surfaces: slab generation, surface energies, vacuum plateaus, bulk alignment, IP / EA / work function.

Per material: bulk relax (GPAW) -> bulk single point (VBM/CBM vs the cell-average potential) ->
one slab single point per (facet, termination) -> one SlabSurfaceDoc each -> a SurfaceSummaryDoc
for the lowest-energy termination. Alignment: IP = V_vac - (<V>_slab middle + VBM_bulk - <V>_bulk).
The physics (slabs and their flags, plateaus, alignment, surface energy) is in
``coatflow.workflows.analysis.slabs``; this module plans the jobs and assembles the documents.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jobflow import CURRENT_JOB, Flow, Response, job
from pymatgen.core import Composition, Structure

from coatflow.makers.registry import get_maker
from coatflow.workflows.analysis.slabs import (SlabSpec, aligned_band_edges, choose_surface, generate_slabs,
                                               middle_average, slab_at_shift, slab_z, surface_area, surface_energy,
                                               vacuum_plateaus)
from coatflow.workflows.analysis.structures import bcc_li
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, make_key, settings_of
from coatflow.workflows.candidates import Candidate, _example_entries, structure_from_wyckoff
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import PotentialDoc, SlabSurfaceDoc, SurfaceSummaryDoc

RELAX_ECUT = 600  # eV, cell relaxations (stress needs a converged basis)


def analyse_slab_doc(ident: dict, bulk: PotentialDoc, calc: PotentialDoc, spec: dict, settings: dict,
                     calc_uuid: str | None = None) -> SlabSurfaceDoc:
    """IP, EA, work function and surface energy of one slab from its and the bulk's single points."""
    slab = calc.structure
    z = slab_z(slab, calc.height)
    plat = vacuum_plateaus(calc.potential, calc.height, z, settings.get("plateau_distance", 3.5),
                           tol=settings.get("plateau_tol", 0.03))
    v_vac = float(np.mean(list(plat["levels"].values())))
    gap = None if bulk.vbm is None or bulk.cbm is None else bulk.cbm - bulk.vbm
    metallic = bulk.metallic or gap is None
    out = dict(material_id=ident["material_id"], formula=ident["formula"], miller_index=tuple(spec["miller_index"]),
               shift=spec["shift"], termination=spec["termination"], n_sites=len(slab), symmetric=spec["symmetric"],
               polar=spec["polar"], stoichiometric=spec["stoichiometric"], vacuum=spec["vacuum"],
               slab_thickness=float(np.ptp(z)), vacuum_level=v_vac, vacuum_levels=plat["levels"],
               plateau_spread=plat["spread"], plateau_flat=plat["flat"], fermi_level=calc.fermi_level,
               metallic=metallic, calc_uuid=calc_uuid)
    if spec["stoichiometric"]:
        out["surface_energy"] = surface_energy(calc.energy, slab.composition, bulk.energy,
                                               bulk.structure.composition, surface_area(slab))
        if not spec["symmetric"]:
            out["surface_energy_note"] = "asymmetric slab: average of its two surfaces"
    else:
        out["surface_energy_note"] = "non-stoichiometric slab: needs chemical potentials, skipped"
    if metallic:
        out["work_function"] = v_vac - calc.fermi_level
    else:
        middle = middle_average(calc.potential, calc.height, z, spec["period"])
        out.update(aligned_band_edges(v_vac, middle, bulk.mean_potential, bulk.vbm, gap),
                   ionization_potential_slab=None if calc.vbm is None else v_vac - calc.vbm)
    return SlabSurfaceDoc(**out)


# -- jobs -------------------------------------------------------------------------------------------


@job(name="slab surface")
def analyse_slab(ident: dict, bulk: PotentialDoc, calc: PotentialDoc, spec: dict, settings: dict,
                 calc_uuid: str | None = None) -> SlabSurfaceDoc:
    return analyse_slab_doc(ident, _doc(bulk), _doc(calc), spec, settings, calc_uuid)


def _doc(d) -> PotentialDoc:
    if isinstance(d, PotentialDoc):
        return d
    return PotentialDoc(**{k: v for k, v in d.items() if not k.startswith("@")})


@job(name="surface summary")
def summarise(ident: dict, bulk: PotentialDoc, docs: list[SlabSurfaceDoc], skipped: list[str], settings: dict,
              convergence: list | None = None) -> SurfaceSummaryDoc:
    bulk = _doc(bulk)
    docs = [d if isinstance(d, SlabSurfaceDoc) else SlabSurfaceDoc(**d) for d in docs]
    best = choose_surface(docs)
    gap = None if bulk.vbm is None or bulk.cbm is None else bulk.cbm - bulk.vbm
    summary = SurfaceSummaryDoc(material_id=ident["material_id"], formula=ident["formula"],
                                metallic=bool(docs and docs[0].metallic), best=best, surfaces=docs, skipped=skipped,
                                bulk_gap=gap, settings=settings)
    if best is not None:
        summary.ionization_potential = best.ionization_potential
        summary.electron_affinity = best.electron_affinity
        summary.work_function = best.work_function
        summary.surface_energy = best.surface_energy
    if convergence:
        a, b = (SlabSurfaceDoc(**d) if isinstance(d, dict) else d for d in convergence)
        key = "work_function" if a.metallic else "ionization_potential"
        summary.vacuum_convergence = {f"{key} @ {a.vacuum:g} A": getattr(a, key),
                                      f"{key} @ {b.vacuum:g} A": getattr(b, key),
                                      "change": abs(getattr(b, key) - getattr(a, key))}
    return summary


def _spec_dict(spec: SlabSpec, vacuum: float) -> dict:
    return {"miller_index": list(spec.miller_index), "shift": spec.shift, "termination": spec.termination,
            "symmetric": spec.symmetric, "polar": spec.polar, "stoichiometric": spec.stoichiometric,
            "vacuum": vacuum, "period": spec.period}


@job(name="plan slabs")
def slab_flow(ident: dict, bulk: PotentialDoc, settings: dict, meta: dict) -> Response:
    """Generate the slabs of the relaxed bulk and replace this job by their calculations + a summary."""
    bulk = _doc(bulk)
    s = settings
    specs = generate_slabs(bulk.structure, s["max_index"], s.get("facets"), s["slab_thickness"], s["vacuum"],
                           s["max_atoms"])
    run = [p for p in specs if p.preferred] if s.get("only_preferred", True) else specs
    skipped = [f"{p.label}: " + ", ".join(p.flags) for p in specs if p not in run]
    if not run:  # nothing symmetric and non-polar: compute the flagged slabs rather than nothing
        run, skipped = specs, []
    maker = with_basis(get_maker("slab_static", s.get("backend", "gpaw")), s)
    jobs, docs = [], []
    # FunnelPlanner.add's dynamic {"coatflow": label} update would overwrite the task and key set below
    # (summaries then look like "surface_plan" and the builder and reruns miss them): drop it for this flow.
    if CURRENT_JOB.job is not None:
        CURRENT_JOB.job.metadata_updates = [u for u in CURRENT_JOB.job.metadata_updates
                                            if "coatflow" not in u.get("update", {})]

    def add(slab, spec):
        calc = maker.make(slab)
        ana = analyse_slab(ident, bulk, calc.output, spec, s, calc.uuid)
        for j, task in ((calc, "slab_static"), (ana, "surface")):
            key = make_key(meta["key"], task, spec)
            j.metadata = {**(j.metadata or {}), "coatflow": {**meta, "key": key, "task": task}}
            j.name = f"{j.name} {spec['miller_index']} {spec['termination']} [{ident['material_id']}]"
        jobs.extend([calc, ana])
        return ana.output

    for p in run:
        docs.append(add(p.slab, _spec_dict(p, s["vacuum"])))
    convergence = None
    if s.get("vacuum_check"):  # the first computed slab again with more vacuum
        p = run[0]
        wider = s["vacuum"] + s["vacuum_step"]
        thick = slab_at_shift(bulk.structure, p.miller_index, p.shift, s["slab_thickness"], wider)
        convergence = [docs[0], add(thick, _spec_dict(p, wider))]
    summ = summarise(ident, bulk, docs, skipped, s, convergence)
    summ.metadata = {"coatflow": {**meta, "task": "surface_summary"}}
    summ.name = f"surface summary [{ident['material_id']}]"
    return Response(replace=Flow([*jobs, summ], output=summ.output))


def with_basis(maker, settings: dict):
    """``maker`` with the slab config's plane-wave cutoff and k-point density (bulk and slab must agree)."""
    if "ecut" not in settings or not hasattr(maker, "calculator_kwargs"):
        return maker
    return dataclasses.replace(maker, calculator_kwargs={
        **maker.calculator_kwargs, "mode": {"name": "pw", "ecut": settings["ecut"]},
        "kpts": {"density": settings["kpt_density"], "gamma": True}})


# -- bulk structures and planning ---------------------------------------------------------------------

#: Elements an IP can be asked for: bcc Li (workflows/analysis/structures.py); compounds come from the example set.
_ELEMENTS = {"Li": bcc_li}


def bulk_structure(formula: str) -> Structure:
    """Starting bulk structure for an IP request: the example set's entry (primitive cell), or bcc Li."""
    try:
        target = Composition(formula).reduced_formula
    except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
        raise CoatflowError(f"'{formula}' is not a chemical formula") from None
    if target in _ELEMENTS:
        return _ELEMENTS[target]()
    for entry in _example_entries():
        if Composition(entry["formula"]).reduced_formula == target:
            return structure_from_wyckoff(entry).get_primitive_structure()  # 4x cheaper relax for fcc
    raise CoatflowError(f"no starting structure for '{formula}' (known: Li and the example set's formulas)")


def plan_surfaces(config, job_store) -> list:
    """One CandidatePlan per requested IP material: relax -> bulk reference -> slabs -> summary."""
    sc = config.slab
    backend = config.slab.backend
    if backend != "gpaw":
        raise CoatflowError(f"ionization potentials run on the gpaw backend only (backends.slab is '{backend}')")
    settings = {**sc.model_dump(exclude={"ip_materials"}), "backend": backend}
    planner = FunnelPlanner(config, job_store)
    relax, reference = get_maker("relax", backend), with_basis(get_maker("bulk_reference", backend), settings)
    # GPAW's stress at 400 eV carries a Pulay error of 0.25-0.35 eV/Å^3 for Li2O and LiF (Li2O relaxed to
    # a = 4.13 Å instead of 4.61); at 600 eV it is 4e-4 eV/Å^3 at the experimental cell. Only the relax pays.
    relax = dataclasses.replace(relax, calculator_kwargs={**relax.calculator_kwargs,
                                                          "mode": {"name": "pw", "ecut": RELAX_ECUT}})
    get_maker("slab_static", backend)
    plans = []
    for formula in sc.ip_materials:
        structure = bulk_structure(formula)
        mid = f"ip-{structure.composition.reduced_formula}"
        plan = CandidatePlan(Candidate(mid, structure.composition.reduced_formula, "ip_materials", structure))
        ident = plan.ident
        root = make_key(mid, structure.as_dict())
        skey = make_key(root, "surfaces", backend, settings, settings_of(relax), settings_of(reference))
        if planner.stored(skey) is not None:
            plans.append(plan)
            continue
        if sc.relax_bulk:
            rkey = make_key(root, "relax", backend, settings_of(relax))
            r_out, _ = planner.add(plan, rkey, "surfaces", "relax", backend, lambda: relax.make(structure))
            r_struct = r_out.structure if hasattr(r_out, "structure") else r_out["structure"]
        else:
            rkey, r_struct = make_key(root, "unrelaxed"), structure
        bkey = make_key(rkey, "bulk_reference", settings_of(reference))
        b_out, _ = planner.add(plan, bkey, "surfaces", "bulk_reference", backend, lambda: reference.make(r_struct))
        meta = {"key": skey, "material_id": mid, "stage": "surfaces", "backend": backend}
        planner.add(plan, make_key(skey, "plan"), "surfaces", "surface_plan", backend,
                    lambda: slab_flow(ident, b_out, settings, meta))
        plans.append(plan)
    return plans

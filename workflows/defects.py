"""Charged point defects and the equilibrium Fermi level E_F(mu_Li) (issue 5): planning and the analysis job.

Per material (``defects.materials`` in the config), on the ``gpaw`` backend:
primitive relax -> bulk primitive single point (VBM, gap, carrier DOS) -> bulk supercell ->
one supercell per defect and charge state (same lattice, ions relaxed at fixed cell when
``defects.relax_steps`` > 1) -> bcc Li (mu_Li reference) -> CHGNet phase diagram (the stability
window stage's) -> one ``DefectThermoDoc``: Freysoldt-corrected formation energies and
E_F(mu_Li) from charge neutrality with electrons and holes from the bulk eigenvalues.

The static dielectric tensor comes from ``defects.dielectric`` or, for a material without an entry, from
``GpawDielectricMaker`` on the primitive cell (makers/dielectric.py: Born charges, Gamma phonons, RPA eps_inf).

The physics (defect set, supercells, Freysoldt, chemical potentials, charge neutrality) is in
workflows/analysis/defects.py; this module plans the calculations and turns their documents into the
``DefectThermoDoc``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
from jobflow import Flow, OutputReference, Response, job
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.makers.defects import GpawDefectMaker
from coatflow.makers.dielectric import GpawDielectricMaker
from coatflow.makers.gpaw import DEFAULT_GPAW_KWARGS, GpawRelaxMaker
from coatflow.makers.registry import get_maker
from coatflow.workflows.analysis import AnalysisError, thermo
from coatflow.workflows.analysis import defects as ad
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, make_key, settings_of
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import DefectCalcDoc, DefectChargeState, DefectThermoDoc, DielectricDoc, FermiPoint
from coatflow.workflows.surfaces import _ELEMENTS, bulk_structure
from coatflow.workflows.phase_diagrams import LOCAL_SCALE, entries_on_scale, phase_key, phases_for

CONFIG_DIELECTRIC = "config (defects.dielectric)"
GPAW_DIELECTRIC = "gpaw (Berry-phase Born charges + Gamma phonons + RPA eps_inf with local fields)"


# -- inputs of the analysis ------------------------------------------------------------------------------


def dielectric_input(dielectric, source: str) -> tuple[np.ndarray, str, float | None]:
    """(3x3 static tensor, its source, wall time s) from a config value or a computed ``DielectricDoc``."""
    if isinstance(dielectric, DielectricDoc):
        dielectric = dielectric.model_dump(include={"eps_total", "settings", "elapsed_time"})
    if isinstance(dielectric, dict) and "eps_total" in dielectric:  # as stored (data-store fields not needed)
        s = dielectric.get("settings") or {}
        detail = ", ".join(f"{k} {s[k]}" for k in ("ecut", "kpt_density", "eps_kpt_density", "nbands") if k in s)
        return (ad.dielectric_tensor(dielectric["eps_total"]), f"{GPAW_DIELECTRIC}; {detail}",
                dielectric.get("elapsed_time"))
    if dielectric is None:
        raise CoatflowError("no dielectric constant: give defects.dielectric or let the gpaw backend compute it")
    return ad.dielectric_tensor(dielectric), source, None


# -- analysis ------------------------------------------------------------------------------------------


def _calc(d) -> DefectCalcDoc:
    return d if isinstance(d, DefectCalcDoc) else DefectCalcDoc(**{k: v for k, v in d.items() if not k.startswith("@")})


def analyse_defects(ident: dict, prim: Structure, sc_mat, specs: list[dict], calcs: list, bulk_sc, bulk_prim, li_doc,
                    window: dict, pd, dielectric, dielectric_source: str, settings: dict,
                    uuids: list | None = None) -> DefectThermoDoc:
    """Formation energies, corrections and E_F(mu_Li) from finished calculations.

    ``dielectric``: a value from the config (number, diagonal or 3x3) or a computed ``DielectricDoc``."""
    bulk_sc, bulk_prim = _calc(bulk_sc), _calc(bulk_prim)
    eps, dielectric_source, eps_time = dielectric_input(dielectric, dielectric_source)
    host = prim.composition.element_composition
    n_fu = host.get_reduced_composition_and_factor()[1] * len(bulk_sc.structure) / len(prim)
    e_host_fu = bulk_sc.energy / n_fu  # the supercell's k-mesh, so k-point errors cancel in E_f
    host_fu = host.reduced_composition
    e_li = _li_energy(li_doc)
    mu_of, mu_ref = ad.chempot_model(window, pd, host_fu, e_host_fu, e_li)
    dos = ad.BandDos.from_eigenvalues(bulk_prim.eigenvalues, bulk_prim.k_weights, bulk_prim.n_electrons,
                                      prim.volume, bulk_prim.nspins)
    vbm = ad.vbm_of(bulk_prim.eigenvalues, bulk_prim.n_electrons, bulk_prim.nspins)
    temperature = settings["temperature"]
    states, solver = [], []
    mu_rich = mu_of(window["mu_li_max"])
    timings = {"bulk_supercell": bulk_sc.elapsed_time or 0.0, "bulk_primitive": bulk_prim.elapsed_time or 0.0}
    if eps_time is not None:
        timings["dielectric"] = eps_time
    for spec, raw, uuid in zip(specs, calcs, uuids or [None] * len(specs)):
        c = _calc(raw)
        q = spec["charge"]
        corr, md = ad.freysoldt_correction(q, eps, c.planar_potential, bulk_sc.planar_potential, c.structure.lattice,
                                           spec["frac_coords"], bulk_lattice=bulk_sc.structure.lattice,
                                           energy_cutoff=settings.get("energy_cutoff", 520.0))
        e0 = c.energy - bulk_sc.energy + q * vbm + corr
        per_cm3 = spec["multiplicity"] / (prim.volume * ad.A3_TO_CM3)
        d = ad.ChargedDefect(spec["name"], q, e0, spec["dn"], per_cm3)
        solver.append(d)
        timings[f"{spec['name']} {q:+d}"] = c.elapsed_time or 0.0
        states.append(DefectChargeState(name=spec["name"], charge=q, dn=spec["dn"], multiplicity=spec["multiplicity"],
                                        sites_per_cm3=per_cm3, energy_defect=c.energy, energy_bulk=bulk_sc.energy,
                                        correction=corr, correction_metadata=md,
                                        e0_at_li_rich=d.formation_energy(0.0, mu_rich),
                                        max_displacement=c.max_displacement, calc_uuid=uuid))
    grid = np.linspace(window["mu_li_max"], window["mu_li_min"], settings.get("n_mu", 21))
    qmap = {f"{d.name} {d.charge:+d}": d.charge for d in solver} | {"electrons": -1, "holes": 1}
    rows = ad.fermi_vs_mu(solver, mu_of, grid, temperature, dos)
    points = []
    for row in rows:
        conc = dict(row["concentrations"])
        n_e, n_h = conc.pop("electrons"), conc.pop("holes")
        points.append(FermiPoint(mu_li=row["mu_li"], voltage=-row["mu_li"], chempots=row["dmu"],
                                 fermi_level=row["fermi_level"], electrons=n_e, holes=n_h, concentrations=conc,
                                 dominant=ad.dominant_species(row["concentrations"], qmap)))
    warnings = ad.negative_formation_warnings(solver, rows)
    regimes = ad.slope_regimes([p.mu_li for p in points][::-1], [p.fermi_level for p in points][::-1])
    return DefectThermoDoc(
        material_id=ident["material_id"], formula=ident["formula"], backend=settings.get("backend", "gpaw"),
        temperature=temperature, supercell_matrix=np.asarray(sc_mat).tolist(), n_supercell_sites=len(bulk_sc.structure),
        dielectric=eps.tolist(), dielectric_source=dielectric_source, vbm=vbm, band_gap=dos.gap,
        window=window, mu_reference=mu_ref, charge_states=states, fermi=points,
        fermi_level_li_rich=points[0].fermi_level, fermi_level_li_poor=points[-1].fermi_level,
        slope_regimes=regimes, warnings=warnings, timings=timings, settings=settings,
        freysoldt_note=("Freysoldt from GPAW planar averages, bulk and defect on one lattice and grid; "
                        f"Kumagai sign fix of pymatgen-analysis-defects PR #226 present: {ad.kumagai_sign_fixed()}"))


def _li_energy(li) -> float:
    """eV/atom of bcc Li from an atomate2 ASE relax task document (object or dict)."""
    d = li.model_dump() if hasattr(li, "model_dump") else li
    return float(d["output"]["energy"]) / int(d["nsites"])


def stability_limits(cand_doc, phase_docs) -> tuple[dict, object]:
    """The stability-window stage's Li window and phase diagram, from CHGNet-relaxed outputs."""
    cand, entries = entries_on_scale(cand_doc, phase_docs)
    missing = thermo.covers(entries, cand.composition.elements)
    if missing:
        raise CoatflowError(f"no elemental reference for {', '.join(missing)} in the local phase set")
    try:
        w = dataclasses.asdict(thermo.stability_window(cand, entries))
    except AnalysisError as exc:
        raise CoatflowError(f"{cand.composition.reduced_formula}: {exc}") from None
    target, _ = thermo.on_hull(cand, entries)
    pd = thermo.phase_diagram([*thermo.in_chemsys(entries, cand.composition.elements), target])
    window = {**{k: w[k] for k in ("reduction_limit", "oxidation_limit", "reduction_products",
                                   "oxidation_products", "e_above_hull")},
              "mu_li_max": -w["reduction_limit"], "mu_li_min": -w["oxidation_limit"], "energy_scale": LOCAL_SCALE}
    return window, pd


@job(name="defect thermodynamics")
def defect_thermo_job(ident, prim, sc_mat, specs, calcs, bulk_sc, bulk_prim, li_doc, cand_doc, phase_docs,
                      dielectric, dielectric_source, settings, uuids) -> DefectThermoDoc:
    window, pd = stability_limits(cand_doc, phase_docs)
    return analyse_defects(ident, prim, sc_mat, specs, calcs, bulk_sc, bulk_prim, li_doc, window, pd, dielectric,
                           dielectric_source, settings, uuids)


def gpaw_kwargs(settings: dict, density: float) -> dict:
    return {**DEFAULT_GPAW_KWARGS, "mode": {"name": "pw", "ecut": settings["ecut"]},
            "kpts": {"density": density, "gamma": True}}


def _primitive(relaxed) -> Structure:
    """Primitive standard cell of a relax output (task document, its dict, or a Structure)."""
    if isinstance(relaxed, Structure):
        st = relaxed
    else:
        st = relaxed["structure"] if isinstance(relaxed, dict) else relaxed.structure
        st = Structure.from_dict(st) if isinstance(st, dict) else st
    return SpacegroupAnalyzer(st).get_primitive_standard_structure()


def defect_jobs(ident: dict, prim: Structure, li_doc, cand_doc, phase_docs, settings: dict, add) -> None:
    """Bulk, defect and analysis jobs for ``prim``; ``add(factory, task, label, final)`` files each one
    under the key make_key(stage key, task, label) (the analysis under the stage key itself)."""
    s = settings
    if s.get("dielectric") is None:  # no config value: eps_inf + eps_ion of this primitive cell
        eps_maker = GpawDielectricMaker(**s["dielectric_calc"])
        eps_out, _ = add(lambda: eps_maker.make(prim), "dielectric", "primitive", False)
    else:
        eps_out = s["dielectric"]
    sc_mat = ad.defect_supercell_matrix(prim, s["min_length"], s["max_atoms"])
    bulk_sc = prim.copy()
    bulk_sc.make_supercell(sc_mat)
    sc_kw = gpaw_kwargs(s, s["kpt_density"])
    b_sc, _ = add(lambda: GpawDefectMaker(name="gpaw bulk supercell", calculator_kwargs=sc_kw).make(bulk_sc),
                  "defect_bulk", "supercell", False)
    dos_kw = {**gpaw_kwargs(s, s["dos_kpt_density"]), "nbands": "200%"}
    b_prim, _ = add(lambda: GpawDefectMaker(name="gpaw bulk dos", calculator_kwargs=dos_kw).make(prim),
                    "defect_bulk", "primitive", False)
    specs, calcs, uuids = [], [], []
    for name, defect, charges in ad.defect_set(prim, s.get("substitutions"), s.get("include"),
                                            s.get("charge_padding", 0), s.get("charges")):
        struct, frac = ad.defect_supercell(bulk_sc, defect)
        for q in charges:
            maker = GpawDefectMaker(name="gpaw defect", charge=q, steps=s["relax_steps"],
                                    relax_kwargs={"fmax": s["fmax"]}, calculator_kwargs=sc_kw)
            out, uuid = add(lambda maker=maker, struct=struct: maker.make(struct), "defect", f"{name} {q:+d}", False)
            specs.append({"name": name, "charge": q, "dn": ad.dn_of(defect), "multiplicity": float(defect.multiplicity),
                          "frac_coords": [float(x) for x in frac]})
            calcs.append(out)
            uuids.append(uuid)
    add(lambda: defect_thermo_job(ident, prim, sc_mat.tolist(), specs, calcs, b_sc, b_prim, li_doc, cand_doc,
                                  phase_docs, eps_out, s["dielectric_source"], s, uuids),
        "defect_thermo", "summary", True)


@job(name="plan defects")
def defect_flow(ident: dict, relaxed, li_doc, cand_doc, phase_docs, settings: dict, meta: dict) -> Response:
    """After the primitive relax: replace this job by the defect calculations and their analysis."""
    jobs = []

    def add(factory, task, label, final):
        j = factory()
        key = meta["key"] if final else make_key(meta["key"], task, label)
        j.metadata = {**(j.metadata or {}), "coatflow": {**meta, "key": key, "task": task}}
        j.name = f"{j.name} {label} [{ident['material_id']}]"
        jobs.append(j)
        return j.output, j.uuid

    defect_jobs(ident, _primitive(relaxed), li_doc, cand_doc, phase_docs, settings, add)
    return Response(replace=Flow(jobs, output=jobs[-1].output))


def plan_defects(config, job_store) -> list:
    """One CandidatePlan per ``defects.materials`` entry: relaxes, then ``defect_flow``."""
    dc = config.defects
    backend = dc.backend
    get_maker("defect", backend)  # fails early, naming what is missing (VASP, POTCARs)
    if backend != "gpaw":
        raise CoatflowError(f"defect runs are wired for the gpaw backend only (defects.backend is '{backend}'); "
                            "VASP inputs come from makers/defects.py")
    mlip = get_maker("relax", "mlip")
    planner = FunnelPlanner(config, job_store)
    plans = []
    for formula in dc.materials:
        structure = bulk_structure(formula)
        red = structure.composition.reduced_formula
        eps = dc.dielectric.get(red, dc.dielectric.get(formula))
        if eps is not None:  # the settings (and so the job keys) of runs before dielectric_calc existed
            settings = {**dc.model_dump(exclude={"materials", "dielectric", "dielectric_calc"}), "backend": backend,
                        "dielectric": ad.config_dielectric(eps, red), "dielectric_source": CONFIG_DIELECTRIC}
        else:  # computed on the (relaxed) primitive cell by GpawDielectricMaker
            GpawDielectricMaker(**dc.dielectric_calc.model_dump())  # bad settings fail here, at planning
            settings = {**dc.model_dump(exclude={"materials", "dielectric"}), "backend": backend, "dielectric": None,
                        "dielectric_source": GPAW_DIELECTRIC}
        mid = f"defects-{red}"
        plan = CandidatePlan(Candidate(mid, red, "defects", structure))
        ident = plan.ident
        root = make_key(mid, structure.as_dict())
        relax = GpawRelaxMaker(calculator_kwargs=gpaw_kwargs(settings, settings["dos_kpt_density"]))
        li_relax = GpawRelaxMaker(calculator_kwargs=gpaw_kwargs(settings, settings["dos_kpt_density"]))
        skey = make_key(root, "defects", backend, settings, settings_of(relax))
        if planner.stored(skey) is not None:
            plans.append(plan)
            continue
        if dc.relax_bulk:
            rkey = make_key(root, "relax", backend, settings_of(relax))
            r_out, _ = planner.add(plan, rkey, "defects", "relax", backend, lambda: relax.make(structure))
        else:
            r_out = structure
        li_out, _ = planner.add(plan, make_key("Li-bcc", "relax", backend, settings_of(li_relax)), "defects",
                                "li_reference", backend, lambda: li_relax.make(_ELEMENTS["Li"]()))
        c_out, _ = planner.add(plan, make_key(root, "thermo-relax", "mlip", settings_of(mlip)), "defects", "relax",
                               "mlip", lambda: mlip.make(structure))
        phase_outs = {}
        for pid, sd in phases_for(structure.composition.elements).items():
            m = replace(mlip, relax_cell=False) if sd.get("molecule") else mlip  # a dimer in a box
            st = Structure.from_dict(sd)
            phase_outs[pid], _ = planner.add(plan, phase_key(planner, pid, "mlip", m), "defects", "relax", "mlip",
                                             lambda m=m, st=st: m.make(st))
        meta = {"key": skey, "material_id": mid, "stage": "defects", "backend": backend}
        if isinstance(r_out, OutputReference):  # relax still to run: plan the defects after it
            planner.add(plan, make_key(skey, "plan", r_out.uuid), "defects", "defect_plan", backend,
                        lambda: defect_flow(ident, r_out, li_out, c_out, phase_outs, settings, meta))
        else:  # structure known: plan now, so stored calculations are reused on a rerun

            def add(factory, task, label, final, plan=plan):
                def labelled():
                    j = factory()
                    j.name = f"{j.name} {label}"
                    return j

                return planner.add(plan, skey if final else make_key(skey, task, label), "defects", task, backend,
                                   labelled)

            defect_jobs(ident, _primitive(r_out), li_out, c_out, phase_outs, settings, add)
        plans.append(plan)
    return plans

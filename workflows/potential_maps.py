"""Interface potential maps: request the missing ingredients, then assemble each stack from the store.

Ingredients of a Li | electrolyte | cathode stack, each computed by its own stage and found by task name:
- Li work function and the IPs of electrolyte and cathode: ``surface_summary`` (workflows/surfaces.py);
- the electrolyte's window, gap and E_F(mu_Li): ``defect_thermo`` (workflows/defects.py);
- the cathode's OCV at each state of charge: ``cathode_voltages`` (workflows/cathode.py, planned here).
``coatflow run`` adds the surfaces and defects the configured stacks need to ``slab.ip_materials`` and
``defects.materials``; the PotentialMapBuilder (workflows/builders.py) turns stored ingredients into maps.
"""

from __future__ import annotations

from pymatgen.core import Composition

from coatflow.makers.registry import get_maker
from coatflow.workflows.analysis.cathode import DEFAULT_STATES_OF_CHARGE, cathode_kind, delithiated
from coatflow.workflows.analysis.interface_potential import (
    Cathode, Electrolyte, stack_potentials, tabulated_fermi_level)
from coatflow.workflows.analysis.structures import bcc_li
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, make_key, settings_of
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.cathode import cathode_voltages
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import PotentialMapDoc
from coatflow.workflows.surfaces import bulk_structure
from coatflow.workflows.timestamps import newest, utc_iso

SURFACE_TASK, DEFECT_TASK, VOLTAGE_TASK = "surface_summary", "defect_thermo", "cathode_voltages"


def reduced(formula: str) -> str:
    try:
        return Composition(formula).reduced_formula
    except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
        raise CoatflowError(f"'{formula}' is not a chemical formula") from None


def with_map_ingredients(config):
    """The config with the surfaces and defect runs its potential-map stacks need added (no duplicates)."""
    stacks = config.potential_maps.stacks
    if not stacks:
        return config

    def merged(existing, extra):
        seen, out = set(), []
        for f in [*existing, *extra]:
            if reduced(f) not in seen:
                seen.add(reduced(f))
                out.append(f)
        return out

    ses, cathodes = [s.electrolyte for s in stacks], [s.cathode for s in stacks]
    slab = config.slab.model_copy(update={"ip_materials": merged(config.slab.ip_materials, ["Li", *ses, *cathodes])})
    defects = config.defects.model_copy(update={"materials": merged(config.defects.materials, ses)})
    return config.model_copy(update={"slab": slab, "defects": defects})


def plan_cathode_voltages(config, job_store) -> list:
    """One CandidatePlan per stack cathode: relax the (de)lithiated cells and bcc Li, then ``cathode_voltages``."""
    pm = config.potential_maps
    backend = pm.voltage_backend
    maker = get_maker("relax", backend)  # fails early, naming what is missing
    settings = settings_of(maker)
    planner = FunnelPlanner(config, job_store)
    plans = []
    for formula in dict.fromkeys(reduced(s.cathode) for s in pm.stacks):
        structure = bulk_structure(formula)
        kind = cathode_kind(structure)
        socs = sorted(pm.states_of_charge if pm.states_of_charge is not None else DEFAULT_STATES_OF_CHARGE[kind])
        mid = f"cathode-{formula}"
        plan = CandidatePlan(Candidate(mid, formula, "potential_maps", structure))
        root = make_key(mid, structure.as_dict(), backend, settings)
        fractions = sorted({0.0, 1.0, *socs})  # the hull needs both ends
        vkey = make_key(root, "voltages", fractions, socs)
        if planner.stored(vkey) is not None:
            plans.append(plan)
            continue
        li_out, li_uuid = planner.add(plan, make_key("Li-bcc", "relax", backend, settings), "potential_maps",
                                      "li_reference", backend, lambda: maker.make(bcc_li()))
        relaxed, uuids = {}, [li_uuid]
        for frac in fractions:
            relaxed[str(frac)] = []
            for cell in delithiated(structure, frac):  # keyed by the cell itself, not its place in the list
                key = make_key(root, "relax", cell.as_dict())
                out, uuid = planner.add(plan, key, "potential_maps", "relax", backend, lambda cell=cell: maker.make(cell))
                relaxed[str(frac)].append(out)
                uuids.append(uuid)
        planner.add(plan, vkey, "potential_maps", VOLTAGE_TASK, backend,
                    lambda: cathode_voltages({"material_id": mid, "formula": formula}, relaxed, li_out, socs, kind,
                                             backend, uuids))
        plans.append(plan)
    return plans


def _ref(doc: dict, **values) -> dict:
    meta = doc.get("metadata", {}).get("coatflow", {})
    return {**values, "uuid": doc.get("uuid"), "backend": meta.get("backend"), "completed_at": doc.get("completed_at")}


def assemble_maps(li_surface: dict, se_surface: dict, se_defects: dict, cathode_surface: dict, voltages: dict,
                  settings: dict) -> list[PotentialMapDoc]:
    """Every state of charge of one stack, from the stored job documents of its ingredients."""
    li, se_s, se_d, c_s, v = (d["output"] for d in (li_surface, se_surface, se_defects, cathode_surface, voltages))
    psi = li.get("work_function")
    if psi is None:
        raise CoatflowError("the Li surface summary has no work function")
    ip = se_s.get("ionization_potential")
    if ip is None:
        raise CoatflowError(f"{se_s['formula']}: no ionization potential (metallic slab?)")
    if c_s.get("metallic") and c_s.get("work_function") is not None:
        w_c, w_note = c_s["work_function"], "slab work function (metallic)"
    elif c_s.get("ionization_potential") is not None:
        w_c = c_s["ionization_potential"] - settings["cathode_fermi_above_vbm"]
        w_note = f"IP - {settings['cathode_fermi_above_vbm']} eV (Fermi level above the VBM)"
    else:
        raise CoatflowError(f"{c_s['formula']}: no ionization potential or work function")
    win = se_d["window"]
    fermi = tabulated_fermi_level([p["mu_li"] for p in se_d["fermi"]], [p["fermi_level"] for p in se_d["fermi"]],
                                  se_d["formula"])
    se = Electrolyte(se_d["formula"], ip, se_d["band_gap"], win["reduction_limit"], win["oxidation_limit"], fermi)
    inputs = {
        "li_work_function": _ref(li_surface, value=psi, facet=(li.get("best") or {}).get("miller_index")),
        "electrolyte_ip": _ref(se_surface, value=ip, facet=(se_s.get("best") or {}).get("miller_index")),
        "electrolyte_defects": _ref(se_defects, band_gap=se_d["band_gap"], temperature=se_d.get("temperature"),
                                    window=[win["reduction_limit"], win["oxidation_limit"]]),
        "cathode_work_function": _ref(cathode_surface, value=w_c, how=w_note,
                                      facet=(c_s.get("best") or {}).get("miller_index")),
    }
    maps = []
    for state in v["states"]:
        cathode = Cathode(v["formula"], state["state_of_charge"], state["ocv"], w_c)
        res = stack_potentials(psi, se, cathode, settings["n_points"], settings["barrier_low"], settings["barrier_high"])
        maps.append(PotentialMapDoc(
            electrolyte=se.formula, cathode=cathode.formula, state_of_charge=cathode.state_of_charge, ocv=cathode.ocv,
            delta_phi_anode=res["delta_phi_anode"], delta_phi_cathode=res["delta_phi_cathode"],
            barrier_anode=res["barrier_anode"], barrier_cathode=res["barrier_cathode"],
            grey_anode=res["grey_anode"], grey_cathode=res["grey_cathode"],
            mu_li_electrolyte=res["mu_li_electrolyte"],
            phi={"li": res["phi_li"], "electrolyte_anode": res["phi_electrolyte_anode"],
                 "electrolyte_cathode": res["phi_electrolyte_cathode"], "cathode": res["phi_cathode"]},
            band_edges=res["band_edges"], vacuum_level_li=psi, flags=res["flags"], profile=res["profile"],
            inputs={**inputs, "cathode_ocv": _ref(voltages, value=cathode.ocv, x=state["x"])},
            settings=settings,
            completed_at=utc_iso(newest(d.get("completed_at") for d in
                                        (li_surface, se_surface, se_defects, cathode_surface, voltages))),
        ))
    return maps

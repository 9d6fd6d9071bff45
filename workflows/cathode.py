"""The cathode-voltage job: relaxed (de)lithiated cells of one cathode -> voltage steps and the OCV at each
state of charge (physics in workflows/analysis/cathode.py)."""

from __future__ import annotations

from jobflow import job

from coatflow.workflows.analysis.cathode import host_of, host_units, ocv_at, voltage_profile
from coatflow.workflows.schemas import CathodeVoltageDoc
from coatflow.workflows.schemas.thermo import RelaxedEnergy


@job(name="cathode voltages", output_schema=CathodeVoltageDoc)
def cathode_voltages(ident: dict, relaxed: dict, li_relaxed, states_of_charge: list[float], kind: str,
                     backend: str, uuids: list[str]) -> CathodeVoltageDoc:
    """``relaxed``: {fraction removed: [relax outputs]} -> voltage steps and the OCV at each state of charge."""
    li = RelaxedEnergy.from_task_doc(li_relaxed)
    mu_li = li.energy / len(li.structure)
    host, x_max = host_of(RelaxedEnergy.from_task_doc(relaxed["0.0"][0]).structure)
    points, table = [], []
    for frac, outs in relaxed.items():
        for out in outs:
            r = RelaxedEnergy.from_task_doc(out)
            n = host_units(r.structure.composition, host)
            x = r.structure.composition["Li"] / n
            points.append((x, r.energy / n))
            table.append({"fraction_removed": float(frac), "x": x, "energy_per_fu": r.energy / n,
                          "n_sites": len(r.structure), "formula": r.structure.composition.reduced_formula})
    profile = voltage_profile(points, mu_li, host)
    for row, on_hull in zip(table, profile.on_hull):
        row["on_hull"] = on_hull
    states = [{"state_of_charge": s, "x": x_max * (1 - s), "ocv": ocv_at(profile.steps, x_max * (1 - s))}
              for s in states_of_charge]
    xs = {round(x, 6) for x, _ in points}
    avg = profile.average_voltage if {0.0, round(x_max, 6)} <= xs else None
    return CathodeVoltageDoc(material_id=ident["material_id"], formula=ident["formula"], kind=kind, backend=backend,
                             host=host.reduced_formula, x_max=x_max, mu_li=mu_li, points=table, steps=profile.steps,
                             states=states, average_voltage=avg, task_uuids=uuids)

"""Cathode voltages at chosen states of charge, from lithiation energies on one calculator.

Delithiated cells are enumerated in small supercells of the relaxed cathode; each is relaxed, the lowest
energy per host formula unit is kept, and the voltage steps come from the lower convex hull of E(x)
with bcc Li on the same calculator as the reference: V = −[E(x_hi) − E(x_lo) − (x_hi − x_lo)·μ_Li] / (x_hi − x_lo).
"""

from __future__ import annotations

import itertools

import numpy as np
from jobflow import job
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import CathodeVoltageDoc

#: Fractions of Li removed, by cathode family (Swift et al.: layered at 0 and 50 %, spinels also fully charged).
DEFAULT_STATES_OF_CHARGE = {"layered": [0.0, 0.5], "spinel": [0.0, 0.5, 1.0], "other": [0.0, 0.5]}


def cathode_kind(structure: Structure) -> str:
    symbol = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_symbol()
    return {"R-3m": "layered", "Fd-3m": "spinel"}.get(symbol, "other")


def host_units(comp: Composition, host: Composition) -> float:
    """Formula units of the Li-free host (e.g. CoO2) in ``comp``."""
    el = next(e for e in host.elements)
    return comp[el] / host[el]


def host_of(structure: Structure) -> tuple[Composition, float]:
    """(Li-free host formula, Li per host formula unit when fully lithiated)."""
    comp = structure.composition
    if comp["Li"] == 0:
        raise CoatflowError(f"{comp.reduced_formula} has no Li: a cathode needs Li to remove")
    host = Composition({e: a for e, a in comp.items() if e.symbol != "Li"}).reduced_composition
    return host, comp["Li"] / host_units(comp, host)


def delithiated(structure: Structure, fraction: float, max_structures: int = 8) -> list[Structure]:
    """Symmetry-distinct cells with ``fraction`` of the Li removed, in the smallest supercells that allow it."""
    if not 0 <= fraction <= 1:
        raise CoatflowError(f"state of charge {fraction} is not a fraction of Li removed (0 ... 1)")
    prim = SpacegroupAnalyzer(structure).get_primitive_standard_structure()
    if fraction in (0, 1):
        s = prim.copy()
        if fraction == 1:
            s.remove_species(["Li"])
        return [s]
    n_li = int(prim.composition["Li"])
    found: list[Structure] = []
    scalings = list(itertools.product((1, 2), repeat=3))
    for size in (1, 2, 4):
        for scaling in (p for p in scalings if np.prod(p) == size):
            remove = fraction * n_li * size
            if abs(remove - round(remove)) > 1e-6 or round(remove) == 0:
                continue
            sc = prim * list(scaling)
            li = [i for i, site in enumerate(sc) if site.specie.symbol == "Li"]
            for combo in itertools.combinations(li, int(round(remove))):
                cand = sc.copy()
                cand.remove_sites(list(combo))
                if not any(StructureMatcher().fit(cand, f) for f in found):
                    found.append(cand)
                if len(found) >= max_structures:
                    return found
        if found:
            return found
    raise CoatflowError(f"no cell of up to 4 primitive cells removes {fraction:.0%} of the Li in "
                        f"{structure.composition.reduced_formula}")


def lowest_by_x(points: list[tuple[float, float]]) -> dict[float, float]:
    """Lowest energy per host formula unit at each Li content x (rounded to 1e-6)."""
    best: dict[float, float] = {}
    for x, e in points:
        best[round(x, 6)] = min(e, best.get(round(x, 6), np.inf))
    return best


def voltage_steps(points: list[tuple[float, float]], mu_li: float) -> tuple[list[dict], set[float]]:
    """(steps, x on the hull) from (x, energy per host formula unit) points: the lower convex hull in x."""
    best = lowest_by_x(points)
    xs = sorted(best)
    if len(xs) < 2:
        raise CoatflowError("a voltage needs at least two Li contents")
    hull = []
    for x in xs:  # monotone chain, lower hull
        while len(hull) >= 2:
            (x1, e1), (x2, e2) = hull[-2], hull[-1]
            if (e2 - e1) * (x - x1) >= (best[x] - e1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append((x, best[x]))
    steps = [{"x_low": lo[0], "x_high": hi[0], "voltage": -((hi[1] - lo[1]) - (hi[0] - lo[0]) * mu_li) / (hi[0] - lo[0])}
             for lo, hi in zip(hull, hull[1:])]
    return steps, {x for x, _ in hull}


def ocv_at(steps: list[dict], x: float) -> float:
    """Open-circuit voltage when Li content ``x`` is being removed (at x = x_min: the last step's voltage)."""
    for s in steps:
        if s["x_low"] < x <= s["x_high"] + 1e-9:
            return s["voltage"]
    for s in steps:
        if abs(s["x_low"] - x) < 1e-9:
            return s["voltage"]
    raise CoatflowError(f"Li content {x:.3f} lies outside the computed range")


def _energy_structure(out) -> tuple[float, Structure]:
    """(total energy, structure) of a relax task document or its dict."""
    if isinstance(out, dict):
        st = out["structure"]
        st = Structure.from_dict(st) if isinstance(st, dict) else st
        return float(out["output"]["energy"]), st
    return float(out.output.energy), out.structure


@job(name="cathode voltages")
def cathode_voltages(ident: dict, relaxed: dict, li_relaxed, states_of_charge: list[float], kind: str,
                     backend: str, uuids: list[str]) -> CathodeVoltageDoc:
    """``relaxed``: {fraction removed: [relax outputs]} -> voltage steps and the OCV at each state of charge."""
    e_li, li_st = _energy_structure(li_relaxed)
    mu_li = e_li / len(li_st)
    host, x_max = host_of(_energy_structure(relaxed["0.0"][0])[1])
    points, table = [], []
    for frac, outs in relaxed.items():
        for out in outs:
            e, st = _energy_structure(out)
            n = host_units(st.composition, host)
            x = st.composition["Li"] / n
            points.append((x, e / n))
            table.append({"fraction_removed": float(frac), "x": x, "energy_per_fu": e / n, "n_sites": len(st),
                          "formula": st.composition.reduced_formula})
    steps, on_hull = voltage_steps(points, mu_li)
    best = lowest_by_x(points)
    for row in table:
        row["on_hull"] = round(row["x"], 6) in on_hull and row["energy_per_fu"] == best[round(row["x"], 6)]
    states = [{"state_of_charge": s, "x": x_max * (1 - s), "ocv": ocv_at(steps, x_max * (1 - s))}
              for s in states_of_charge]
    full, empty = best.get(round(x_max, 6)), best.get(0.0)
    avg = None if full is None or empty is None else -((full - empty) - x_max * mu_li) / x_max
    return CathodeVoltageDoc(material_id=ident["material_id"], formula=ident["formula"], kind=kind, backend=backend,
                             host=host.reduced_formula, x_max=x_max, mu_li=mu_li, points=table, steps=steps,
                             states=states, average_voltage=avg, task_uuids=uuids)

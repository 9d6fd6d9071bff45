"""Cathode voltages at chosen states of charge, from lithiation energies on one calculator.

Delithiated cells are enumerated in small supercells of the relaxed cathode; the voltage steps are those
of pymatgen's ``InsertionElectrode`` over the relaxed cells (the lower convex hull of E(x)), with bcc Li on
the same calculator as the reference: V = −[E(x_hi) − E(x_lo) − (x_hi − x_lo)·μ_Li] / (x_hi − x_lo).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.thermo import insertion_electrode

#: Fractions of Li removed, by cathode family (Swift et al.: layered at 0 and 50 %, spinels also fully charged).
DEFAULT_STATES_OF_CHARGE = {"layered": [0.0, 0.5], "spinel": [0.0, 0.5, 1.0], "other": [0.0, 0.5]}


def cathode_kind(structure: Structure) -> str:
    """'layered' (R-3m), 'spinel' (Fd-3m) or 'other'."""
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
        raise AnalysisError(f"{comp.reduced_formula} has no Li: a cathode needs Li to remove")
    host = Composition({e: a for e, a in comp.items() if e.symbol != "Li"}).reduced_composition
    return host, comp["Li"] / host_units(comp, host)


def delithiated(structure: Structure, fraction: float, max_structures: int = 8) -> list[Structure]:
    """Symmetry-distinct cells with ``fraction`` of the Li removed, in the smallest supercells that allow it."""
    if not 0 <= fraction <= 1:
        raise AnalysisError(f"state of charge {fraction} is not a fraction of Li removed (0 ... 1)")
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
    raise AnalysisError(f"no cell of up to 4 primitive cells removes {fraction:.0%} of the Li in "
                        f"{structure.composition.reduced_formula}")


@dataclass(frozen=True)
class VoltageProfile:
    """Voltage steps of one host between its relaxed Li contents."""

    steps: list[dict[str, float]]  #: x_low, x_high (Li per host formula unit), voltage (V)
    on_hull: list[bool]  #: per input point: on the lower convex hull of E(x)
    average_voltage: float  #: V, lowest to highest Li content


def voltage_profile(points: list[tuple[float, float]], mu_li: float, host: str | Composition) -> VoltageProfile:
    """Voltage steps from (x, energy per host formula unit) points of ``host`` + x Li, against Li at
    ``mu_li`` (eV/atom), through pymatgen's InsertionElectrode."""
    host = Composition(host)
    if len({round(x, 6) for x, _ in points}) < 2:
        raise AnalysisError("a voltage needs at least two Li contents")
    entries = [ComputedEntry(host + Composition({"Li": x}) if x > 0 else host, e, entry_id=f"point {i}")
               for i, (x, e) in enumerate(points)]
    electrode = insertion_electrode(entries, ComputedEntry("Li", mu_li))

    def x_of(entry) -> float:
        return float(entry.composition["Li"] / host_units(entry.composition, host))

    steps = [{"x_low": x_of(p.entry_charge), "x_high": x_of(p.entry_discharge), "voltage": float(p.voltage)}
             for p in electrode.voltage_pairs]
    stable = {e.entry_id for e in electrode.stable_entries}
    return VoltageProfile(steps=steps, on_hull=[e.entry_id in stable for e in entries],
                          average_voltage=float(electrode.get_average_voltage()))


def ocv_at(steps: list[dict], x: float) -> float:
    """Open-circuit voltage when Li content ``x`` is being removed (at x = x_min: the last step's voltage)."""
    for s in steps:
        if s["x_low"] < x <= s["x_high"] + 1e-9:
            return s["voltage"]
    for s in steps:
        if abs(s["x_low"] - x) < 1e-9:
            return s["voltage"]
    raise AnalysisError(f"Li content {x:.3f} lies outside the computed range")

"""Stage order of the anode-coating funnel, element exclusion lists, and threshold checks."""

from __future__ import annotations

from pymatgen.core import Composition, Element

#: Funnel stages, cheapest first. A candidate that fails one never reaches the next. The two phase-diagram
#: stages (window, interfacial reactions) reuse the phase_stability relaxations, so they run before the
#: elastic tensor; the survivors are the same in any order, only the cost differs.
STAGES: tuple[str, ...] = (
    "database_filter",
    "bulk_relax",
    "phase_stability",  # E_hull: the database filter's hull criterion, on the campaign's own energies
    "stability_window",
    "interfacial_reactions",
    "shear_modulus",
    "li_adsorption",
    "migration_barrier",
)

#: Elements whose compounds are acutely toxic or restricted (RoHS, REACH) in battery manufacture.
TOXIC_ELEMENTS: frozenset[str] = frozenset({"As", "Be", "Cd", "Hg", "Os", "Pb", "Sb", "Se", "Te", "Tl"})

#: Elements with no stable isotope: Tc, Pm and everything from Po (Z = 84) on.
RADIOACTIVE_ELEMENTS: frozenset[str] = frozenset(
    el.symbol for el in Element if el.Z in (43, 61) or el.Z >= 84
)

#: Precious and platinum-group metals: too scarce and costly for a coating.
PRECIOUS_ELEMENTS: frozenset[str] = frozenset({"Ag", "Au", "Ir", "Os", "Pd", "Pt", "Re", "Rh", "Ru"})

EXCLUSION_LISTS: dict[str, frozenset[str]] = {
    "toxic": TOXIC_ELEMENTS,
    "radioactive": RADIOACTIVE_ELEMENTS,
    "precious": PRECIOUS_ELEMENTS,
}


def excluded_elements(composition: Composition | str, groups: list[str]) -> dict[str, list[str]]:
    """Elements of ``composition`` found in each named exclusion list."""
    symbols = {el.symbol for el in Composition(composition).elements}
    found = {g: sorted(symbols & EXCLUSION_LISTS[g]) for g in groups}
    return {g: els for g, els in found.items() if els}

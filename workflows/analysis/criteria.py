"""Element exclusion lists of the database filter: compounds a coating may not contain."""

from __future__ import annotations

from pymatgen.core import Composition, Element

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
    """Elements of ``composition`` found in each named exclusion list (``EXCLUSION_LISTS``)."""
    symbols = {el.symbol for el in Composition(composition).elements}
    found = {g: sorted(symbols & EXCLUSION_LISTS[g]) for g in groups}
    return {g: els for g, els in found.items() if els}

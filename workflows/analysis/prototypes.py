"""Structure types of Li-M-O ternaries, and the substitution of a formula into every type that fits.

The types live in ``workflows/data/prototypes.yaml``: one parent compound per type, built from its space
group, lattice and Wyckoff positions with ``Structure.from_spacegroup`` (the same recipe as the example
set), with the reference of each. ``prototypes_for("LiDyO2")`` returns every type whose Li:M:O ratio equals
the formula's, with M put on the parent's site and the cell rescaled by the change in the cations'
Shannon radii (a starting point: the relaxation finds the volume). A formula that no type fits gets an
empty list; ``coverage`` counts those ("not computed: no prototype"). The funnel relaxes every
substitution and keeps the lowest energy per atom (``workflows/stages/bulk_relax.py``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib.resources import files

import yaml
from pymatgen.core import Composition, Element, Lattice, Species, Structure

from coatflow.workflows.analysis import AnalysisError

#: reason given for a formula that no structure type fits
NO_PROTOTYPE = "no prototype"
O_RADIUS = 1.40  # Shannon O2- (CN 6), Angstrom


@dataclass(frozen=True, eq=False)
class StructureType:
    """One structure type: its parent compound, the parent's element that M replaces, and the source."""

    name: str
    stoichiometry: str
    site: str
    spacegroup: str
    lattice: dict
    species: tuple
    coords: tuple
    positions: str
    reference: str

    def parent(self) -> Structure:
        """The parent compound (a fresh copy; built once per type)."""
        return self._parent.copy()

    @cached_property
    def _parent(self) -> Structure:
        return Structure.from_spacegroup(self.spacegroup, Lattice.from_parameters(**self.lattice),
                                         list(self.species), [list(c) for c in self.coords])

    @cached_property
    def ratio(self) -> tuple[float, float, float]:
        """Li : M : O of the parent, per M."""
        return li_m_o_ratio(Composition(self._parent.composition), self.site)


@lru_cache(maxsize=1)
def structure_types() -> tuple[StructureType, ...]:
    text = files("coatflow.workflows").joinpath("data/prototypes.yaml").read_text()
    return tuple(StructureType(**{**t, "species": tuple(t["species"]), "coords": tuple(map(tuple, t["coords"]))})
                 for t in yaml.safe_load(text)["types"])


def li_m_o_ratio(comp: Composition, m: str) -> tuple[float, float, float]:
    """(Li, M, O) amounts divided by M's amount, rounded to 1e-6 so that ratios compare exactly."""
    n = comp[Element(m)]
    return tuple(round(comp[Element(e)] / n, 6) for e in ("Li", m, "O"))


def ternary_metal(formula: str) -> str:
    """The M of a Li-M-O ternary formula; AnalysisError for anything else."""
    try:
        comp = Composition(formula)
    except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
        raise AnalysisError(f"'{formula}' is not a chemical formula") from None
    others = {el.symbol for el in comp.elements} - {"Li", "O"}
    if Element("Li") not in comp or Element("O") not in comp or len(others) != 1:
        raise AnalysisError(f"{formula} is not a Li-M-O ternary oxide; structure types cover Li, O and one M")
    return others.pop()


def _cation_radius(el: str, charge: float) -> float | None:
    """Shannon radius of ``el`` at the nearest integer charge, or its average ionic radius."""
    try:
        with warnings.catch_warnings():  # "no default ionic radius ... using ls data" is the wanted fallback
            warnings.simplefilter("ignore")
            r = Species(el, round(charge)).ionic_radius
    except Exception:  # noqa: BLE001 - unknown oxidation states raise in pymatgen
        r = None
    return float(r) if r else (float(Element(el).average_ionic_radius) or None)


def _cation_volume(comp: Composition, m: str) -> float | None:
    """Sum of (r_cation + r_O)^3 over the cations: the volume model used to rescale a substituted cell."""
    charge_m = (2 * comp[Element("O")] - comp[Element("Li")]) / comp[Element(m)]
    r_m, r_li = _cation_radius(m, charge_m), _cation_radius("Li", 1)
    if r_m is None or r_li is None:
        return None
    return comp[Element("Li")] * (r_li + O_RADIUS) ** 3 + comp[Element(m)] * (r_m + O_RADIUS) ** 3


def substitute(stype: StructureType, m: str) -> Structure:
    """The type's parent (primitive cell) with ``m`` on its M site, cell scaled by the cation-volume ratio."""
    parent = stype.parent().get_primitive_structure()
    s = parent.copy()
    if m != stype.site:
        s.replace_species({stype.site: m})
        v_old, v_new = _cation_volume(parent.composition, stype.site), _cation_volume(s.composition, m)
        if v_old and v_new:
            s.scale_lattice(s.volume * v_new / v_old)
    return s


def prototypes_for(formula: str) -> list[tuple[str, Structure]]:
    """Every structure type whose Li:M:O ratio is the formula's, as (type name, substituted structure).

    An empty list means no type fits: the candidate is "not computed: no prototype".
    """
    m = ternary_metal(formula)
    target = li_m_o_ratio(Composition(formula), m)
    return [(t.name, substitute(t, m)) for t in structure_types() if t.ratio == target]


def stoichiometry_type(formula: str) -> str:
    """The reduced formula with M for the metal, e.g. Li8HfO6 -> 'Li8MO6', Li4Ti5O12 -> 'Li4M5O12'."""
    m = ternary_metal(formula)
    red = Composition(formula).reduced_composition

    def n(el: str) -> str:
        x = red[Element(el)]
        return "" if x == 1 else f"{x:g}"

    return f"Li{n('Li')}M{n(m)}O{n('O')}"


@dataclass
class Coverage:
    """Which formulas have at least one structure type, and which are "not computed: no prototype"."""

    covered: dict[str, list[str]]
    missing: list[str]

    @property
    def fraction(self) -> float:
        total = len(self.covered) + len(self.missing)
        return len(self.covered) / total if total else 0.0

    def missing_by_stoichiometry(self) -> dict[str, int]:
        """Uncovered formulas counted by stoichiometry type, most frequent first."""
        counts: dict[str, int] = {}
        for f in self.missing:
            k = stoichiometry_type(f)
            counts[k] = counts.get(k, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def coverage(formulas) -> Coverage:
    """Match each Li-M-O formula to the structure types by ratio only (no structures are built)."""
    ratios = [(t.name, t.ratio) for t in structure_types()]
    covered, missing = {}, []
    for f in formulas:
        m = ternary_metal(f)
        target = li_m_o_ratio(Composition(f), m)
        names = [name for name, r in ratios if r == target]
        if names:
            covered[Composition(f).reduced_formula] = names
        else:
            missing.append(Composition(f).reduced_formula)
    return Coverage(covered, missing)

"""Build cathode_phases.json.gz: the cathode-coating programme's bundled structures (issue #18).

Plain script, run once by hand (it is not imported by the package):

    python workflows/data/build_cathode_phases.py

Every structure is built from crystallographic facts (space group, lattice, Wyckoff positions; the source of each
is in ``SOURCES`` and docs/cathode_coating.md) with ``Structure.from_spacegroup``, in the smallest cell that holds
its ordering. Partial occupancies (NMC811's transition-metal layer, Ni/Mn in LiNi0.5Mn1.5O4, Li on the spinel 16d
site of Li4Ti5O12 and Li4Mn5O12) are ordered by the lowest Ewald energy (pymatgen's
``OrderDisorderedStructureTransformation``) in a supercell chosen to have the longest shortest lattice vector.
A charged (delithiated) cathode is its discharged cell with every Li removed. The structures are stored as built,
not relaxed: the campaign relaxes them with the configured backend, like every competing phase.

Three groups: ``cathodes`` (both states of the five cathodes), ``phases`` (their competing phases that
competing_phases.json.gz lacks: Co/Ni/Mn oxides and Li-Mn-O ternaries) and ``coatings`` (known coatings the
formula route cannot build: Li4Ti5O12 here; Li3PO4 and LiTi2(PO4)3 are taken from the example set and the
bundled competing phases).
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Species, Structure

HERE = Path(__file__).resolve().parent
OUT = HERE / "cathode_phases.json.gz"

SOURCES = {
    "LiCoO2": "R-3m, a=2.816, c=14.05 A, Li 3a, Co 3b, O 6c z=0.2396; Orman and Wiseman, Acta Cryst. C 40, 12 (1984)",
    "LiNiO2": "R-3m, a=2.878, c=14.19 A, Li 3a, Ni 3b, O 6c z=0.2414 (O z approximate); the example set's LiNiO2",
    "LiMn2O4": "Fd-3m, a=8.245 A, Li 8a, Mn 16d, O 32e u=0.263 (origin 2); the example set's LiMn2O4",
    "NMC811": "the LiNiO2 cell above, 10 formula units, Ni3+ 7, Ni2+ 1, Mn4+ 1, Co3+ 1 over the 10 3b sites by "
              "lowest Ewald energy (an ordered model; the real material is disordered)",
    "LNMO": "the LiMn2O4 cell above scaled to a=8.17 A (ordered LiNi0.5Mn1.5O4), 4 Ni and 12 Mn over the 16 "
            "16d sites of the 56-atom cubic cell in the P4_332 order (Ni 4b, Mn 12d; the ordered spinel's space "
            "group); the lowest-Ewald order of the same cell is R-3m (Ni (111) layers), not the observed one",
    "charged": "the discharged cell with all Li removed (CoO2 and NiO2 in the O3 frame, lambda-MnO2, "
               "Ni0.5Mn1.5O4 and the NMC811 model's Ni0.8Mn0.1Co0.1O2)",
    "rocksalt": "Fm-3m rock salt, a = 4.445 (MnO), 4.260 (CoO), 4.177 (NiO) A; textbook lattice constants",
    "Co3O4": "normal spinel Fd-3m, a=8.084 A, Co2+ 8a, Co3+ 16d, O 32e u=0.263 (origin 2); textbook",
    "Mn3O4": "hausmannite as a cubic spinel model (Mn2+ 8a, Mn3+ 16d, u=0.263), a=8.56 A from hausmannite's volume "
             "(a=5.765, c=9.442 A, 4 f.u.); the Jahn-Teller tetragonal distortion is not built in, so its energy "
             "is an upper bound",
    "MnO2": "pyrolusite (beta-MnO2) rutile type P4_2/mnm, a=4.399, c=2.874 A, Mn 2a, O 4f x=0.305; "
            "Baur, Acta Cryst. B 32, 2200 (1976)",
    "Mn": "gamma-Mn, fcc a=3.862 A (an element reference; alpha-Mn's 58-atom cell is not built: the reference "
          "shifts every Mn formation energy by a term linear in composition, so no reaction energy between Mn "
          "compounds depends on it)",
    "Li2MnO3": "C2/m honeycomb-ordered layered rock salt; Strobel and Lambert-Andron, J. Solid State Chem. 75, 90 "
               "(1988) (data/prototypes.yaml)",
    "Li4Mn5O12": "spinel Li 8a, [Li1/6 Mn5/6] 16d, O 32e in the LiMn2O4 cell above, Li/Mn on 16d ordered by "
                 "lowest Ewald energy (42 atoms)",
    "Li4Ti5O12": "spinel Fd-3m, a=8.357 A (Ohzuku, Ueda and Yamamoto, J. Electrochem. Soc. 142, 1431 (1995)), "
                 "Li 8a, [Li1/6 Ti5/6] 16d, O 32e u=0.2625 (origin 2; LiTi2O4's), Li/Ti on 16d ordered by lowest "
                 "Ewald energy (42 atoms)",
}

OX = {"Li": 1, "O": -2, "Co": 3, "Mn": 4, "Ti": 4}


def layered(a: float, c: float, z: float, m: str) -> Structure:
    """alpha-NaFeO2-type LiMO2, R-3m hexagonal axes: Li 3a, M 3b, O 6c; the 4-atom primitive cell."""
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(a, c), ["Li", m, "O"], [[0, 0, 0], [0, 0, 0.5], [0, 0, z]])
    return s.get_primitive_structure()


def spinel_conventional(a: float, a_site: str, b_site: str, u2: float = 0.263) -> Structure:
    """AB2O4 normal spinel, Fd-3m origin 1 (pymatgen's default): A 8a, B 16d, O 32e at u2 + 1/8 (u2 in origin 2)."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), [a_site, b_site, "O"],
                                     [[0, 0, 0], [0.625, 0.625, 0.625], [u2 + 0.125] * 3])


def rocksalt(m: str, a: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [m, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]) \
        .get_primitive_structure()


def delithiated(s: Structure) -> Structure:
    out = s.copy()
    out.remove_species(["Li"])
    return out


def compact_supercell(s: Structure, n: int) -> Structure:
    """The n-fold supercell (Hermite normal form) whose shortest lattice vector is longest."""
    best, best_len = None, -1.0
    for a, c, f in ((a, c, n // (a * c)) for a in range(1, n + 1) for c in range(1, n + 1)
                    if n % (a * c) == 0):
        for b, d, e in itertools.product(range(c), range(f), range(f)):
            m = np.array([[a, 0, 0], [b, c, 0], [d, e, f]])
            lat = Lattice(m @ s.lattice.matrix).get_niggli_reduced_lattice()
            shortest = min(lat.abc)
            if shortest > best_len + 1e-6:
                best, best_len = m, shortest
    out = s.copy()
    out.make_supercell(best)
    return out


def ewald_order(s: Structure, occupancy: dict[str, dict[Species, float]]) -> Structure:
    """``s`` with each site of element E replaced by ``occupancy[E]`` (others at their OX state), ordered by the
    lowest Ewald energy."""
    from pymatgen.analysis.ewald import EwaldMinimizer
    from pymatgen.transformations.standard_transformations import OrderDisorderedStructureTransformation

    sites = [occupancy[x.specie.symbol] if x.specie.symbol in occupancy else
             {Species(x.specie.symbol, OX[x.specie.symbol]): 1.0} for x in s]
    dis = Structure(s.lattice, sites, s.frac_coords)
    assert abs(dis.charge) < 1e-6, dis.charge
    out = OrderDisorderedStructureTransformation(algo=EwaldMinimizer.ALGO_FAST).apply_transformation(dis)
    out.remove_oxidation_states()
    return out


def spinel_p4332(s: Structure, minority: str, majority: str, fraction: float) -> Structure:
    """The spinel cell ``s`` with ``fraction`` of its 16d ``majority`` sites taken by ``minority`` in the P4_332
    arrangement (the 1:3 order of LiNi0.5Mn1.5O4): every choice of sites is tried and the first whose space
    group is P4_332 is kept (all such choices are the same structure)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sites = [i for i, x in enumerate(s) if x.specie.symbol == majority]
    for chosen in itertools.combinations(sites, round(fraction * len(sites))):
        t = s.copy()
        for i in chosen:
            t.replace(i, minority)
        if SpacegroupAnalyzer(t, symprec=0.01).get_space_group_symbol() == "P4_332":
            return t
    raise ValueError("no P4_332 ordering")


def spinel_li16d(a: float, m: str, u2: float) -> Structure:
    """Li4M5O12: spinel Li 8a, [Li1/6 M5/6] 16d, O 32e, in a 3-fold primitive supercell (42 atoms)."""
    p = compact_supercell(spinel_conventional(a, "Li", m, u2).get_primitive_structure(), 3)
    return ewald_order(p, {m: {Species("Li", 1): 1 / 6, Species(m, 4): 5 / 6}})


def build() -> dict[str, dict[str, Structure]]:
    lco = layered(2.816, 14.05, 0.2396, "Co")
    lno = layered(2.878, 14.19, 0.2414, "Ni")
    lmo = spinel_conventional(8.245, "Li", "Mn")
    nmc = ewald_order(compact_supercell(lno, 10), {"Ni": {Species("Ni", 3): 0.7, Species("Ni", 2): 0.1,
                                                          Species("Mn", 4): 0.1, Species("Co", 3): 0.1}})
    lnmo_cell = lmo.copy()
    lnmo_cell.scale_lattice(8.17 ** 3)
    lnmo = spinel_p4332(lnmo_cell, "Ni", "Mn", 0.25)
    lmo_p = lmo.get_primitive_structure()
    cathodes = {"LiCoO2": lco, "LiNiO2": lno, "LiMn2O4": lmo_p, "LiNi0.8Mn0.1Co0.1O2": nmc,
                "LiNi0.5Mn1.5O4": lnmo}
    cathodes.update({f"{k}:charged": delithiated(s) for k, s in list(cathodes.items())})
    li2mno3 = Structure.from_spacegroup("C2/m", Lattice.monoclinic(4.937, 8.532, 5.030, 109.46),
                                        ["Li", "Li", "Li", "Mn", "O", "O"],
                                        [[0, 0.5, 0], [0, 0, 0.5], [0, 0.6606, 0.5], [0, 0.16708, 0],
                                         [0.2189, 0, 0.2273], [0.2540, 0.32119, 0.2233]]).get_primitive_structure()
    phases = {
        "Mn": Structure(Lattice.cubic(3.862), ["Mn"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        .get_primitive_structure(),
        "MnO": rocksalt("Mn", 4.445), "CoO": rocksalt("Co", 4.260), "NiO": rocksalt("Ni", 4.177),
        "Co3O4": spinel_conventional(8.084, "Co", "Co").get_primitive_structure(),
        "Mn3O4": spinel_conventional(8.56, "Mn", "Mn").get_primitive_structure(),
        "MnO2": Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.399, 2.874), ["Mn", "O"],
                                          [[0, 0, 0], [0.305, 0.305, 0]]),
        "Li2MnO3": li2mno3,
        "Li4Mn5O12": spinel_li16d(8.245, "Mn", 0.263),
    }
    coatings = {"Li4Ti5O12": spinel_li16d(8.357, "Ti", 0.2625)}
    return {"cathodes": cathodes, "phases": phases, "coatings": coatings}


#: phase id suffix per group: '<reduced formula>:cathode' (both states), '<reduced formula>:cathode-set'
#: (competing phases; beta-MnO2 and the charged lambda-MnO2 share a formula), '<reduced formula>:coating'
TAGS = {"cathodes": "cathode", "phases": "cathode-set", "coatings": "coating"}


def main() -> None:
    built = build()
    doc = {"source": SOURCES, **{group: {f"{s.composition.reduced_formula}:{TAGS[group]}": s.as_dict()
                                         for s in items.values()} for group, items in built.items()}}
    assert all(len(doc[g]) == len(built[g]) for g in built), "two phases of one group share an id"
    with gzip.open(OUT, "wt") as f:
        json.dump(doc, f)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    for group, items in built.items():
        for k, s in items.items():
            sg = SpacegroupAnalyzer(s, symprec=0.01).get_space_group_symbol()
            print(f"{group:9s} {k:28s} {s.composition.reduced_formula:18s} {len(s):3d} atoms  {sg}")


if __name__ == "__main__":
    main()

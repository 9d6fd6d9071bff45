"""Extend competing_phases.json.gz with the solid-electrolyte chemical systems (Ge, S, La, Zr, Cl).

Plain script, run once by hand (it is not imported by the package):

    OMP_NUM_THREADS=1 nice python workflows/data/build_phases.py /path/to/mp-elasticity-2025.1.json.gz

It reads the existing file, keeps every phase already in it unchanged, adds

* elements built with ``Structure.from_spacegroup`` from textbook lattice constants, S8 and Cl2 molecules
  in a box (``"molecule": true``, relaxed at fixed cell like O2/F2);
* binaries taken from the Materials Project structures in materialsvirtuallab/matcalc
  ``benchmark_data/mp-elasticity-2025.1.json.gz`` (commit 90638b72; BSD-3-Clause, MP data CC-BY-4.0);
* the five solid electrolytes and some ternary reaction products, built from published space groups,
  lattice constants and Wyckoff positions (or from pymatgen's MIT-licensed Li10GeP2S12.json), with
  partial occupancies ordered by lowest Ewald energy;

relaxes every candidate with the project's CHGNet relax maker settings (``get_maker("relax", "mlip")``,
cell fixed for molecules), keeps the lowest-energy candidate per formula, and writes the CHGNet-relaxed
structures back.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Species, Structure

HERE = Path(__file__).resolve().parent
OUT = HERE / "competing_phases.json.gz"

SOURCE_ADDED = (
    " Added for the solid-electrolyte systems: elements Ge (diamond), La (dhcp), Zr (hcp) from textbook lattice "
    "constants, S as an S8 crown molecule (S-S 2.05 A, S-S-S 108 deg) in a 12 A box and Cl2 (1.99 A) in a 9 A box; "
    "binaries from materialsvirtuallab/matcalc benchmark_data/mp-elasticity-2025.1.json.gz at commit 90638b72 "
    "(BSD-3-Clause; data from the Materials Project, CC-BY-4.0), lowest CHGNet energy of at most two polymorphs; "
    "NbS2 2H (P6_3/mmc, a=3.31, c=11.89 A; Jellinek et al., Nature 185, 376 (1960)); "
    "Li10GeP2S12 from pymatgen/util/structures/Li10GeP2S12.json (pymatgen, MIT; Kamaya et al., Nat. Mater. 10, "
    "682 (2011)) ordered by lowest Ewald energy; LiNbO3 R3c (Abrahams et al., J. Phys. Chem. Solids 27, 997 "
    "(1966)); LiTi2(PO4)3 NASICON R-3c (a=8.51, c=20.84 A; Li 6b, Ti 12c, P 18e, O 2 x 36f); Li7La3Zr2O12 garnet "
    "framework Ia-3d (Awaka et al., J. Solid State Chem. 182, 2046 (2009); Chem. Lett. 40, 60 (2011)) with all "
    "octahedral and one third of the tetrahedral Li sites filled (the tetragonal I4_1/acd occupancy), ordered by "
    "Ewald energy; Li6PS5Cl argyrodite F-43m (Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008)) with Li "
    "half-ordered over 48h by Ewald energy; La2Zr2O7 pyrochlore Fd-3m (a=10.80 A, O48f x=0.332); "
    "beta-Li3PO4/gamma-Li3PS4-type (Pmn2_1) wurtzite-derived cation orderings by Ewald energy; Li2TiO3 and "
    "Li2ZrO3 as the honeycomb-ordered layered rocksalt (Li2MnO3 type, C2/m; Strobel & Lambert-Andron, J. Solid "
    "State Chem. 75, 90 (1988)) scaled to the experimental volume per formula unit; Li3NbO4 as rocksalt 2x2x1-supercell cation "
    "orderings (not the I-43m Nb4O16-cluster structure); Li5AlO4, Li4GeO4, Li4GeS4 as cation-deficient "
    "antifluorite orderings (2x1x1 supercell; model structures, not the published Pbca/Cmcm/Pnma cells). Cation/Li orderings relaxed with CHGNet 0.3.0; the lowest "
    "energy per formula is kept and stored CHGNet-relaxed.")

# --- elements -----------------------------------------------------------------------------------------


def box_dimer(el: str, d: float, box: float = 9.0) -> Structure:
    return Structure(Lattice.cubic(box), [el, el], [[0, 0, 0], [d, 0, 0]], coords_are_cartesian=True)


def s8_crown(box: float = 12.0, d: float = 2.05, angle: float = 108.0) -> Structure:
    """S8 crown (D4d): two staggered squares of 4 atoms; radius and height from the bond length and angle."""
    d13 = 2 * d * np.sin(np.radians(angle / 2))  # 1-3 distance, on one square
    r = d13 / np.sqrt(2)
    h = np.sqrt(d ** 2 - 2 * r ** 2 * (1 - np.cos(np.radians(45))))
    xyz = [[r * np.cos(np.radians(45 * k)) + box / 2, r * np.sin(np.radians(45 * k)) + box / 2,
            box / 2 + (h / 2 if k % 2 else -h / 2)] for k in range(8)]
    return Structure(Lattice.cubic(box), ["S"] * 8, xyz, coords_are_cartesian=True)


def elements() -> dict[str, Structure]:
    return {
        "Ge": Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.658), ["Ge"], [[0, 0, 0]]).get_primitive_structure(),
        "La": Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.774, 12.171), ["La", "La"],
                                        [[0, 0, 0], [1 / 3, 2 / 3, 1 / 4]]),  # dhcp alpha-La
        "Zr": Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.232, 5.147), ["Zr"], [[1 / 3, 2 / 3, 1 / 4]]),
    }


MOLECULES = {"S": lambda: s8_crown(), "Cl2": lambda: box_dimer("Cl", 1.99)}

# --- binaries: MP ids in the matcalc elasticity set; two ids = relax both, keep the lower -------------------

MP_BINARIES = {
    "Li2S": [1153], "LiCl": [22905], "GeO2": [470, 733], "GeS2": [7582], "GeS": [2242], "La2O3": [1968],
    "ZrO2": [2858, 2574], "Al2S3": [2654], "SiS2": [1602, 7583], "LiP": [9588], "Li3P7": [28336],
    "LiGe": [9918], "Li9Ge4": [2362521], "Li15Ge4": [1777], "La2S3": [7475], "ZrS2": [1186], "TiS2": [2156],
    "LaCl3": [22896], "AlCl3": [25469],
    # Li alloys and phosphides that Li metal or sulfide electrolytes can form with Al, Si, Ge coatings
    "LiSi": [795], "Li13Si4": [672287], "Li15Si4": [569849], "Li7Si2": [27930], "Li9Al4": [568404],
    "Li3Al2": [16506], "AlP": [1550, 8880], "SiP2": [21065], "GeP3": [7542],
}


def nbs2() -> Structure:
    """2H-NbS2, P6_3/mmc: Nb 2b, S 4f z=1/8 (the set's NbS2 entries are a 1H layer and a hypothetical I4/mmm)."""
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.31, 11.89), ["Nb", "S"],
                                     [[0, 0, 0.25], [1 / 3, 2 / 3, 0.125]])


# --- ordering helper ---------------------------------------------------------------------------------------

OX = {"Li": 1, "La": 3, "Zr": 4, "O": -2, "P": 5, "S": -2, "Cl": -1, "Ti": 4, "Nb": 5, "Ge": 4, "Al": 3}


def ewald_orderings(disordered: Structure, k: int, n: int = 100, primitive: bool = False) -> list[Structure]:
    """The k lowest distinct Ewald energies among the orderings of a charge-balanced partly occupied cell."""
    from pymatgen.analysis.ewald import EwaldMinimizer
    from pymatgen.transformations.standard_transformations import OrderDisorderedStructureTransformation

    assert abs(disordered.charge) < 1e-6, disordered.charge
    ranked = OrderDisorderedStructureTransformation(algo=EwaldMinimizer.ALGO_FAST).apply_transformation(
        disordered, return_ranked_list=n)
    out, seen = [], []
    for r in ranked:
        if any(abs(r["energy"] - e) < 1e-4 for e in seen):
            continue
        seen.append(r["energy"])
        s = r["structure"]
        s.remove_oxidation_states()
        out.append(s.get_primitive_structure() if primitive else s)
    return out[:k]


def with_ox(s: Structure, occupancy: dict[int, dict[str, float]] | None = None) -> Structure:
    """Oxidation-state decorated copy; occupancy {site index: {element: fraction}} overrides sites."""
    occupancy = occupancy or {}
    sites = [{Species(el, OX[el]): x for el, x in occupancy.get(i, {site.specie.symbol: 1.0}).items()}
             for i, site in enumerate(s)]
    return Structure(s.lattice, sites, s.frac_coords)


# --- electrolytes ------------------------------------------------------------------------------------------


def lgps(k: int = 2) -> list[Structure]:
    """pymatgen's Li10GeP2S12.json (P4_2/nmc, partial occupancies) ordered to Li20Ge2P4S24."""
    import pymatgen.core

    p = Path(pymatgen.core.__file__).parent.parent / "util" / "structures" / "Li10GeP2S12.json"
    src = Structure.from_file(p)
    # the file's lattice matrix is minus a right-handed one (det < 0), which flips CHGNet's stress sign
    lat = Lattice.from_parameters(*src.lattice.abc, *src.lattice.angles)
    occ = []
    for site in src:
        sp = {str(e): x for e, x in site.species.items()}
        if "Ge" in sp:  # 4d Ge0.515/P0.485 -> Ge0.5/P0.5
            occ.append({Species("Ge", 4): 0.5, Species("P", 5): 0.5})
        elif "Li" in sp:  # 16h 0.691 -> 11/16, 8f 0.643 -> 5/8, 4d 1: 20 Li per cell
            occ.append({Species("Li", 1): {0.691: 11 / 16, 0.643: 5 / 8, 1.0: 1.0}[round(sp["Li"], 3)]})
        else:
            (el, _), = sp.items()
            occ.append({Species(el, OX[el]): 1.0})
    return ewald_orderings(Structure(lat, occ, src.frac_coords), k, n=20)


def linbo3() -> list[Structure]:
    """R3c, a=5.149, c=13.862: Li 6a z=0.2829, Nb 6a z=0, O 18b (0.0492, 0.3446, 0.0647); 10-atom primitive."""
    s = Structure.from_spacegroup("R3c", Lattice.hexagonal(5.149, 13.862), ["Li", "Nb", "O"],
                                  [[0, 0, 0.2829], [0, 0, 0], [0.0492, 0.3446, 0.0647]])
    return [s.get_primitive_structure()]


def ltp() -> list[Structure]:
    """NASICON R-3c, a=8.51, c=20.84: Li 6b, Ti 12c z=0.1421, P 18e x=0.2895, O 36f x2; 36-atom primitive."""
    s = Structure.from_spacegroup("R-3c", Lattice.hexagonal(8.51, 20.84), ["Li", "Ti", "P", "O", "O"],
                                  [[0, 0, 0], [0, 0, 0.1421], [0.2895, 0, 0.25], [0.1846, -0.0052, 0.1906],
                                   [0.1913, 0.1671, 0.0838]])
    return [s.get_primitive_structure()]


def llzo(k: int = 2) -> list[Structure]:
    """Garnet Ia-3d, a=12.97: La 24c, Zr 16a, O 96h (0.2806, 0.1010, 0.1967), Li tetrahedral 24d and octahedral
    48g (1/8, 0.6825, 1/4-y). Tetragonal LLZO fills all octahedral and 1/3 of the tetrahedral sites: that
    occupancy is ordered by Ewald energy in the 96-atom primitive cell."""
    g = Structure.from_spacegroup("Ia-3d", Lattice.cubic(12.97), ["La", "Zr", "O", "Li", "Li"],
                                  [[0.125, 0, 0.25], [0, 0, 0], [0.2806, 0.1010, 0.1967], [0.375, 0, 0.25],
                                   [0.125, 0.6825, 0.25 - 0.6825]])
    p = g.get_primitive_structure()
    tet = [i for i, s in enumerate(p) if s.specie.symbol == "Li"
           and sum(1 for n in p.get_neighbors(s, 2.0) if n.specie.symbol == "O") == 4]
    assert len(tet) == 12, len(tet)
    return ewald_orderings(with_ox(p, {i: {"Li": 1 / 3} for i in tet}), k, n=60)


def argyrodite(k: int = 3) -> list[Structure]:
    """Li6PS5Cl F-43m, a=9.85: Cl 4a, S 4c, P 4b, S 16e x=0.62, Li 48h (0.3135, 0.3135, 0.0228) half filled;
    the 6 Li of the 13-atom primitive cell ordered over its 12 48h sites by Ewald energy."""
    s = Structure.from_spacegroup("F-43m", Lattice.cubic(9.85), ["Cl", "S", "P", "S", "Li"],
                                  [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.62, 0.62, 0.62],
                                   [0.3135, 0.3135, 0.0228]])
    p = s.get_primitive_structure()
    return ewald_orderings(with_ox(p, {i: {"Li": 0.5} for i, x in enumerate(p) if x.specie.symbol == "Li"}), k, n=60)


# --- ternary products --------------------------------------------------------------------------------------


def pyrochlore() -> list[Structure]:
    """La2Zr2O7 Fd-3m (origin 2), a=10.80: La 16d, Zr 16c, O 48f x=0.332, O' 8b; 22-atom primitive."""
    pos = np.array([[0.5, 0.5, 0.5], [0, 0, 0], [0.332, 0.125, 0.125], [0.375, 0.375, 0.375]]) + 0.125  # -> origin 1
    return [Structure.from_spacegroup("Fd-3m", Lattice.cubic(10.80), ["La", "Zr", "O", "O"], pos)
            .get_primitive_structure()]


def wurtzite_ordered(anion: str, cation: str, a: float, k: int = 1) -> list[Structure]:
    """Li3XY4 with all cations in one set of tetrahedral sites of an hcp anion array (beta-Li3PO4 /
    gamma-Li3PS4, enargite type): orthohexagonal 2a x sqrt(3)a x c wurtzite cell, 2 X + 6 Li ordered by Ewald."""
    s = Structure(Lattice.hexagonal(a, 1.62 * a), [anion, anion, "Li", "Li"],
                  [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.375], [2 / 3, 1 / 3, 0.875]])
    s.make_supercell([[2, 0, 0], [1, 2, 0], [0, 0, 1]])
    occ = {i: {cation: 0.25, "Li": 0.75} for i, x in enumerate(s) if x.specie.symbol == "Li"}
    return ewald_orderings(with_ox(s, occ), k)


def li2mno3_type(m: str, vol_per_fu: float) -> list[Structure]:
    """Li2MO3 as honeycomb-ordered layered rocksalt, Li2MnO3 C2/m positions, scaled to vol_per_fu (A^3)."""
    s = Structure.from_spacegroup("C2/m", Lattice.monoclinic(4.937, 8.532, 5.030, 109.46),
                                  ["Li", "Li", "Li", m, "O", "O"],
                                  [[0, 0.5, 0], [0, 0, 0.5], [0, 0.6606, 0.5], [0, 0.16708, 0],
                                   [0.2189, 0, 0.2273], [0.2540, 0.32119, 0.2233]])
    s.scale_lattice(vol_per_fu * len(s) / 6)
    return [s.get_primitive_structure()]


def rocksalt_ordered(m: str, n_m: int, n_li: int, a: float, k: int = 3) -> list[Structure]:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    s.make_supercell((2, 2, 1))
    cat = [i for i, x in enumerate(s) if x.specie.symbol == "Li"]
    assert len(cat) == n_m + n_li
    occ = {i: {m: n_m / len(cat), "Li": n_li / len(cat)} for i in cat}
    return ewald_orderings(with_ox(s, occ), k, primitive=True)


def antifluorite_ordered(anion: str, m: str, n_m: int, n_li: int, a: float, k: int = 2) -> list[Structure]:
    """Li-rich tetrahedral oxides/sulfides as cation-deficient antifluorite: anion fcc 4a, cations over the 8c
    tetrahedral sites of a 2x1x1 conventional supercell (16 sites), M/Li/vacancies ordered by Ewald energy."""
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [anion, "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    s.make_supercell((2, 1, 1))
    cat = [i for i, x in enumerate(s) if x.specie.symbol == "Li"]
    occ = {i: {m: n_m / len(cat), "Li": n_li / len(cat)} for i in cat}
    return ewald_orderings(with_ox(s, occ), k, primitive=True)


#: formula -> builder of (id tag, candidate structures); built only when the formula is missing
BUILT = {
    "NbS2": lambda: ("facts", [nbs2()]),
    "Li10GeP2S12": lambda: ("pymatgen", lgps()),
    "LiNbO3": lambda: ("facts", linbo3()),
    "LiTi2(PO4)3": lambda: ("facts", ltp()),
    "Li7La3Zr2O12": lambda: ("facts", llzo()),
    "Li6PS5Cl": lambda: ("facts", argyrodite()),
    "La2Zr2O7": lambda: ("facts", pyrochlore()),
    "Li3PO4": lambda: ("facts", wurtzite_ordered("O", "P", 3.05)),
    "Li3PS4": lambda: ("facts", wurtzite_ordered("S", "P", 3.80)),
    "Li2TiO3": lambda: ("facts", li2mno3_type("Ti", 53.3)),
    "Li2ZrO3": lambda: ("facts", li2mno3_type("Zr", 61.2)),
    "Li3NbO4": lambda: ("facts", rocksalt_ordered("Nb", 4, 12, 4.205)),
    "Li5AlO4": lambda: ("facts", antifluorite_ordered("O", "Al", 2, 10, 4.61)),
    "Li4GeO4": lambda: ("facts", antifluorite_ordered("O", "Ge", 2, 8, 4.61)),
    "Li4GeS4": lambda: ("facts", antifluorite_ordered("S", "Ge", 2, 8, 5.71)),
}


# --- relaxation --------------------------------------------------------------------------------------------


def relax(s: Structure, molecule: bool = False) -> tuple[Structure, float]:
    """(relaxed structure, total energy) with the project's CHGNet relax maker settings."""
    from atomate2.ase.utils import AseRelaxer

    from coatflow.makers.mlip import CHGNetCalculator
    from coatflow.makers.registry import get_maker

    m = get_maker("relax", "mlip")
    relaxer = AseRelaxer(CHGNetCalculator(), relax_cell=m.relax_cell and not molecule, **m.optimizer_kwargs)
    for _ in range(3):  # restart an unconverged relaxation (fresh optimizer state) at most twice
        res = relaxer.relax(s, steps=m.steps, final_atoms_object_file=None, **m.relax_kwargs)
        s = res.final_mol_or_struct
        if res.is_force_converged:
            break
    traj = res.trajectory
    e = traj.frame_properties[-1]["energy"] if hasattr(traj, "frame_properties") else traj.energy[-1]
    out = s
    return Structure(out.lattice, out.species, out.frac_coords, to_unit_cell=True), float(e)


def lowest(cands: list[tuple[str, Structure]], molecule: bool = False) -> tuple[str, dict]:
    best = None
    for pid, s in cands:
        r, e = relax(s, molecule)
        print(f"  {pid}: {len(s)} atoms, {e / len(s):.4f} eV/atom", flush=True)
        if best is None or e / len(r) < best[2]:
            best = (pid, r, e / len(r))
    d = best[1].as_dict()
    if molecule:
        d = {"molecule": True, **d}
    return best[0], d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mp_elasticity", help="matcalc benchmark_data/mp-elasticity-2025.1.json.gz")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with gzip.open(OUT, "rt") as f:
        data = json.load(f)
    phases = data["phases"]
    have = {pid.split(":")[0] for pid in phases}  # formulas already in the file are left as they are
    new = {}
    for el, s in elements().items():
        if el not in have:
            new.update([lowest([(el, s)])])
    for el, make in MOLECULES.items():
        if el not in have:
            new.update([lowest([(el, make())], molecule=True)])
    with gzip.open(args.mp_elasticity, "rt") as f:
        mp = {e["mp_id"]: e for e in json.load(f)}
    for formula, ids in MP_BINARIES.items():
        if formula not in have:
            new.update([lowest([(f"{formula}:mp-{i}", Structure.from_dict(mp[i]["structure"])) for i in ids])])
    for formula, build in BUILT.items():
        if formula not in have:
            tag, cands = build()
            new.update([lowest([(f"{formula}:{tag}", s) for s in cands])])
    phases.update(new)
    if SOURCE_ADDED not in data["source"]:
        data["source"] += SOURCE_ADDED
    with gzip.open(OUT, "wt") as f:
        json.dump(data, f)
    print(f"{len(new)} phases added, {len(phases)} in {OUT}")


if __name__ == "__main__":
    main()

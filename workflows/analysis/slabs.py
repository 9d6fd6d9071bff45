"""Slab geometry and surface physics: one slab generator with its flags, layer fixing, surface energy,
vacuum plateaus and the bulk alignment of band edges.

Both the surfaces stage (ionization potentials, workflows/surfaces.py) and the Li adsorption stage
(workflows/stages/li_adsorption.py) cut their slabs with :func:`generate_slabs`. They differ only in two
explicit settings: the surfaces stage gives the thickness in Å and cuts the primitive cell (fewer
atoms per slab: Li2O(111), three Li-O-Li trilayers, is 9 atoms instead of 36 from the conventional
cell), the adsorption stage gives the thickness in d_hkl planes and cuts the conventional cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import numpy as np
from pymatgen.core import Composition, Structure
from pymatgen.core.surface import Slab, SlabGenerator, get_symmetrically_distinct_miller_indices
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.constants import angstrom, electron_volt

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.structures import guessed_oxidation_states

#: 1 eV/Å^2 in J/m^2 (exact in the 2019 SI: 1.602176634e-19 J / 1e-20 m^2 = 16.02176634)
EV_PER_A2_TO_J_PER_M2 = electron_volt / angstrom**2
#: |dipole per unit area| (e/Å, pymatgen ``Slab.is_polar``) above which a slab counts as polar
POLAR_TOL = 1e-2
#: Å: atoms this close to a fixing boundary count as inside it (a rumpled layer stays whole)
FIX_TOL = 1e-3
TERMINATION_DEPTH = 0.3  # Å, atoms this close to the outermost one belong to the termination plane

Cell = Literal["primitive", "conventional"]


# --- generation -------------------------------------------------------------------------------------


@dataclass
class SlabSpec:
    """One termination of one facet, with the flags that decide whether it is worth computing."""

    slab: Slab
    miller_index: tuple[int, int, int]
    shift: float
    termination: str
    symmetric: bool
    polar: bool
    stoichiometric: bool
    index: int = 0  # position among the facet's terminations (pymatgen ``get_slabs`` order)

    @property
    def preferred(self) -> bool:
        """Symmetric, non-polar and stoichiometric: a surface energy and an IP without corrections."""
        return self.symmetric and not self.polar and self.stoichiometric

    @property
    def flags(self) -> list[str]:
        """What makes this slab not preferred."""
        return [flag for flag, on in (("asymmetric", not self.symmetric), ("polar", self.polar),
                                      ("non-stoichiometric", not self.stoichiometric)) if on]

    @property
    def label(self) -> str:
        return f"({''.join(map(str, self.miller_index))}) {self.termination} shift {self.shift:.3f}"

    @property
    def period(self) -> float:
        """Å, one bulk period along the surface normal (the oriented unit cell's height)."""
        ouc = self.slab.oriented_unit_cell
        return float(ouc.lattice.volume / surface_area(ouc))


def termination_label(slab: Structure, depth: float = TERMINATION_DEPTH) -> str:
    """Species of the outermost atomic plane on each side, bottom/top, e.g. 'F/Li' or 'F+Li/F+Li'."""
    z = slab.frac_coords[:, 2] * slab.lattice.c
    top = sorted({s.specie.symbol for s, zi in zip(slab, z) if zi > z.max() - depth})
    bot = sorted({s.specie.symbol for s, zi in zip(slab, z) if zi < z.min() + depth})
    return f"{'+'.join(bot)}/{'+'.join(top)}"


def is_polar(slab: Slab, oxidation_states: dict[str, float], tol: float = POLAR_TOL) -> bool:
    """Whether ``slab`` carries a dipole normal to its surface, with ``oxidation_states`` as point charges.

    pymatgen's ``Slab.is_polar`` sums oxidation states: on an undecorated slab every charge is 0 and every
    slab reads non-polar (LiF(111) included). This decorates a copy first.
    """
    charged = slab.copy()
    charged.remove_oxidation_states()
    charged.add_oxidation_state_by_element(oxidation_states)
    return bool(charged.is_polar(tol_dipole_per_unit_area=tol))


def primitive_miller(conv: Structure, prim: Structure, hkl: Sequence[int]) -> tuple[int, int, int]:
    """The same plane's Miller index in the primitive cell's basis (h'_i = a'_i . G)."""
    h = np.linalg.solve(conv.lattice.matrix.T, prim.lattice.matrix.T).T @ np.asarray(hkl, float)
    for scale in range(1, 13):  # clear denominators (conventional centrings: 2, 3, 4)
        if np.allclose(h * scale, np.round(h * scale), atol=1e-4):
            ints = np.round(h * scale).astype(int)
            return tuple(int(i) for i in ints // np.gcd.reduce(np.abs(ints)))
    raise AnalysisError(f"cannot express Miller index {list(hkl)} in the primitive cell")


def _generator(conv: Structure, prim: Structure, hkl, min_size: float, vacuum: float, cell: Cell,
               in_unit_planes: bool, max_normal_search: int | None) -> SlabGenerator:
    if cell == "conventional":
        return SlabGenerator(conv, hkl, min_size, vacuum, center_slab=True, in_unit_planes=in_unit_planes,
                             primitive=True, max_normal_search=max_normal_search, reorient_lattice=True)
    try:
        h = primitive_miller(conv, prim, hkl)
    except AnalysisError:  # rhombohedral standard primitives are rotated against the hexagonal cell
        prim = conv.get_primitive_structure()
        h = primitive_miller(conv, prim, hkl)
    return SlabGenerator(prim, h, min_size, vacuum, center_slab=True, in_unit_planes=in_unit_planes,
                         primitive=True, max_normal_search=max_normal_search, reorient_lattice=True, lll_reduce=True)


def _cells(bulk: Structure) -> tuple[Structure, Structure]:
    plain = bulk.copy()
    plain.remove_oxidation_states()
    sga = SpacegroupAnalyzer(plain)
    return sga.get_conventional_standard_structure(), sga.get_primitive_standard_structure()


def generate_slabs(bulk: Structure, max_index: int = 1, facets: Sequence[Sequence[int]] | None = None,
                   slab_thickness: float = 8.0, vacuum: float = 12.0, max_atoms: int | None = None, *,
                   cell: Cell = "primitive", in_unit_planes: bool = False, max_normal_search: int | None = None,
                   polar_tol: float = POLAR_TOL) -> list[SlabSpec]:
    """Every termination of every facet (Miller index up to ``max_index``, or ``facets``), flagged.

    Args:
        bulk: the bulk crystal (oxidation states not needed: they are guessed for the polarity flag).
        max_index: largest Miller index of the symmetry-distinct facets (of the conventional cell).
        facets: explicit conventional-cell Miller indices instead of ``max_index``.
        slab_thickness: minimum slab thickness, Å (or d_hkl planes with ``in_unit_planes``).
        vacuum: minimum vacuum, Å.
        max_atoms: slabs with more atoms are left out (None: all kept).
        cell: cut the ``primitive`` standard cell (Miller index converted) or the ``conventional`` one.
        in_unit_planes: thickness counted in d_hkl planes instead of Å.
        max_normal_search: pymatgen's search depth for a c vector normal to the surface.
        polar_tol: dipole per area (e/Å) above which a slab is flagged polar.

    Slabs come with c along the surface normal (GPAW's dipole layer and the planar average need it),
    in pymatgen's ``get_slabs`` order, without oxidation states. Raises AnalysisError when none is left.
    """
    if slab_thickness <= 0 or vacuum <= 0:
        raise AnalysisError("slab thickness and vacuum must be positive")
    conv, prim = _cells(bulk)
    millers = [tuple(f) for f in facets] if facets else get_symmetrically_distinct_miller_indices(conv, max_index)
    oxidation = guessed_oxidation_states(bulk)
    bulk_formula = bulk.composition.element_composition.reduced_formula
    specs = []
    for hkl in millers:
        if len(hkl) != 3 or not any(hkl):
            raise AnalysisError(f"invalid Miller index {list(hkl)}")
        gen = _generator(conv, prim, hkl, slab_thickness, vacuum, cell, in_unit_planes, max_normal_search)
        for index, slab in enumerate(gen.get_slabs(symmetrize=False)):
            slab = slab.get_orthogonal_c_slab()
            if max_atoms is not None and len(slab) > max_atoms:
                continue
            specs.append(SlabSpec(slab, tuple(int(i) for i in hkl), float(slab.shift), termination_label(slab),
                                  bool(slab.is_symmetric()), is_polar(slab, oxidation, polar_tol),
                                  slab.composition.element_composition.reduced_formula == bulk_formula, index))
    if not specs:
        raise AnalysisError(f"no slab of {bulk_formula} within {max_atoms} atoms; raise max_atoms")
    return specs


def slab_at_shift(bulk: Structure, miller_index: Sequence[int], shift: float, slab_thickness: float,
                  vacuum: float, *, cell: Cell = "primitive", in_unit_planes: bool = False) -> Slab:
    """The termination at ``shift`` of one facet again, e.g. with more vacuum (c along the normal)."""
    conv, prim = _cells(bulk)
    gen = _generator(conv, prim, tuple(miller_index), slab_thickness, vacuum, cell, in_unit_planes, None)
    return gen.get_slab(shift=shift).get_orthogonal_c_slab()


def in_plane_supercell(slab: Structure, min_length: float) -> Structure:
    """``slab`` repeated in-plane until both surface vectors are at least ``min_length`` Å (in place)."""
    a, b = slab.lattice.abc[:2]
    slab.make_supercell([max(1, int(np.ceil(min_length / a))), max(1, int(np.ceil(min_length / b))), 1])
    return slab


def candidate_slabs(bulk: Structure, max_index: int = 1, layers: int = 2, vacuum: float = 12.0,
                    min_lw: float = 6.0, max_atoms: int = 120,
                    fix_fraction: float = 0.5) -> tuple[list[dict], list[dict]]:
    """All stoichiometric, non-polar terminations of every symmetry-distinct facet up to ``max_index``.

    The adsorption stage's slabs: conventional cell, ``layers`` d_hkl planes (pymatgen ``in_unit_planes``),
    repeated in-plane to ``min_lw`` Å, bottom ``fix_fraction`` of the thickness fixed. Non-stoichiometric
    slabs are left out (their surface energy depends on chemical potentials), and so are polar ones.
    Returns (kept, skipped) entries; a kept entry's ``termination`` is its index among the facet's slabs.
    """
    if max_index < 1 or layers < 1 or vacuum <= 0 or not 0 <= fix_fraction < 1:
        raise AnalysisError("adsorption settings need max_index >= 1, layers >= 1, vacuum > 0, 0 <= fix_fraction < 1")
    kept, skipped = [], []
    for spec in generate_slabs(bulk, max_index, None, layers, vacuum, cell="conventional", in_unit_planes=True,
                               max_normal_search=max_index):
        label = {"miller_index": list(spec.miller_index), "termination": spec.index, "shift": round(spec.shift, 4)}
        if not spec.stoichiometric:
            skipped.append({**label, "reason": "non-stoichiometric"})
            continue
        if spec.polar:
            skipped.append({**label, "reason": "polar"})
            continue
        slab = in_plane_supercell(spec.slab, min_lw)
        if len(slab) > max_atoms:
            skipped.append({**label, "reason": f"{len(slab)} atoms > max_atoms {max_atoms}"})
            continue
        kept.append({**label, "symmetric": spec.symmetric, "nsites": len(slab),
                     "structure": fix_layers(Structure.from_sites(slab), "bottom", fix_fraction)})
    return kept, skipped


# --- geometry ---------------------------------------------------------------------------------------


def normal_heights(structure: Structure) -> np.ndarray:
    """Cartesian height (Å) of every site along the surface normal (the normal of the a-b plane)."""
    n = np.cross(structure.lattice.matrix[0], structure.lattice.matrix[1])
    return structure.cart_coords @ (n / np.linalg.norm(n))


def surface_area(structure: Structure) -> float:
    """Å^2, area of the a-b face of the cell."""
    m = structure.lattice.matrix
    return float(np.linalg.norm(np.cross(m[0], m[1])))


def slab_z(slab: Structure, height: float) -> np.ndarray:
    """Atom positions along the normal (Å), from fractional c and the cell height."""
    return np.asarray(slab.frac_coords[:, 2] % 1.0) * height


def fix_layers(slab: Structure, where: str = "center", fraction: float = 0.5) -> Structure:
    """Copy of ``slab`` with selective_dynamics fixing part of its thickness.

    ``where``: 'center' fixes the central ``fraction`` of the thickness, 'bottom' the lowest ``fraction``
    (the outermost bottom plane even at 0), 'none' nothing. Atoms within ``FIX_TOL`` of a boundary are fixed.
    """
    if where not in ("center", "bottom", "none"):
        raise AnalysisError(f"fix must be 'center', 'bottom' or 'none', not '{where}'")
    z = normal_heights(slab)
    lo, hi = z.min(), z.max()
    if where == "center":
        fixed = np.abs(z - (lo + hi) / 2) <= fraction * (hi - lo) / 2 + FIX_TOL
    elif where == "bottom":
        fixed = z < lo + fraction * (hi - lo) + FIX_TOL
    else:
        fixed = np.zeros(len(slab), bool)
    out = slab.copy()
    out.add_site_property("selective_dynamics", [[not bool(f)] * 3 for f in fixed])
    return out


# --- energies and levels ----------------------------------------------------------------------------


def surface_energy(e_slab: float, slab: Composition, e_bulk: float, bulk: Composition, area: float) -> float:
    """Mean surface energy of the slab's two faces, (E_slab - n E_bulk) / 2A, in J/m^2.

    Args:
        e_slab: total energy of the slab, eV.
        slab: its composition (must be the bulk's stoichiometry).
        e_bulk: total energy of the bulk cell of composition ``bulk``, eV.
        bulk: composition of that bulk cell.
        area: Å^2, one face of the slab.
    """
    slab_el, bulk_el = slab.element_composition, bulk.element_composition
    if slab_el.reduced_formula != bulk_el.reduced_formula:
        raise AnalysisError(f"slab {slab_el.reduced_formula} is not stoichiometric with bulk {bulk_el.reduced_formula}")
    n = slab_el.num_atoms / bulk_el.num_atoms
    return (e_slab - n * e_bulk) / (2 * area) * EV_PER_A2_TO_J_PER_M2


def vacuum_plateaus(profile: Sequence[float], height: float, z_atoms: Sequence[float], min_distance: float = 3.5,
                    edge: float = 0.6, tol: float = 0.03) -> dict:
    """Vacuum level on each side of a slab centred in its cell, and whether both plateaus are flat.

    A plateau is the part of the vacuum at least ``min_distance`` Å from the outermost atoms and
    ``edge`` Å from the cell boundary (where a dipole layer sits); flat means peak-to-peak < ``tol`` eV.
    Returns {'levels': {'bottom', 'top'} eV, 'spread': eV, 'flat': bool}.
    """
    v = np.asarray(profile, dtype=float)
    z = np.arange(len(v)) * height / len(v)
    zmin, zmax = float(np.min(z_atoms)), float(np.max(z_atoms))
    sides = {"bottom": (z >= edge) & (z <= zmin - min_distance),
             "top": (z >= zmax + min_distance) & (z <= height - edge)}
    levels, spread = {}, 0.0
    for side, mask in sides.items():
        if mask.sum() < 3:
            raise AnalysisError(f"vacuum too thin for a {side} plateau: need > {min_distance + edge:.1f} Å "
                                f"of vacuum on each side, have {min(zmin, height - zmax):.1f} Å")
        levels[side] = float(v[mask].mean())
        spread = max(spread, float(np.ptp(v[mask])))
    return {"levels": levels, "spread": spread, "flat": spread < tol}


def middle_average(profile: Sequence[float], height: float, z_atoms: Sequence[float], period: float) -> float:
    """Macroscopic average of the potential over exactly one bulk period at the slab centre.

    Each grid point stands for the cell [z - h/2, z + h/2); points at the window edges get their
    fractional overlap, so the window is exactly ``period`` wide on any grid (a window counted in
    whole points gains or loses one point with the cell height and moved LiF(100) IPs by 0.15 eV).
    """
    v = np.asarray(profile, dtype=float)
    h = height / len(v)
    z = np.arange(len(v)) * h
    mid = (np.min(z_atoms) + np.max(z_atoms)) / 2
    if period > np.ptp(z_atoms) + 1e-6:
        raise AnalysisError(f"slab ({np.ptp(z_atoms):.1f} Å) thinner than one bulk period ({period:.1f} Å)")
    w = np.clip(np.minimum(z + h / 2, mid + period / 2) - np.maximum(z - h / 2, mid - period / 2), 0.0, None)
    return float(w @ v / w.sum())


def aligned_band_edges(vacuum_level: float, slab_middle: float, bulk_mean: float, bulk_vbm: float,
                       bulk_gap: float) -> dict[str, float]:
    """IP and EA of a surface from the bulk band edges aligned through the slab-middle potential.

    IP = V_vac - (VBM_bulk + <V>_slab middle - <V>_bulk); EA = IP - gap. All eV.
    """
    shift = slab_middle - bulk_mean
    vbm = bulk_vbm + shift
    return {"alignment_shift": shift, "ionization_potential": vacuum_level - vbm,
            "electron_affinity": vacuum_level - (vbm + bulk_gap)}


class _Surface(Protocol):
    surface_energy: float | None
    plateau_flat: bool
    symmetric: bool
    polar: bool


S = TypeVar("S", bound=_Surface)


def choose_surface(surfaces: Sequence[S]) -> S | None:
    """Lowest surface energy among symmetric non-polar slabs with flat plateaus (then among any flat one)."""
    ok = [d for d in surfaces if d.surface_energy is not None and d.plateau_flat]
    good = [d for d in ok if d.symmetric and not d.polar] or ok
    return min(good, key=lambda d: d.surface_energy) if good else None

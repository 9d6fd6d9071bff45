"""Li adsorption physics: sites on a slab's top face, unphysical outcomes, E_ads and the stage's decision.

E_ads = E(slab + Li) - E(slab) - mu_Li, with mu_Li the energy per atom of relaxed bcc Li on the same
calculator. Everything here is calculator-agnostic: the adsorption Maker (makers/adsorption.py) feeds
it energies and relaxed structures from the ML (and optionally DFT) backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.analysis.slabs import normal_heights

#: site outcome thresholds (Å)
DESORBED_HEIGHT = 3.5  # Li this far above the top slab atom has left the surface
SUBSURFACE_DEPTH = -1.0  # Li this far below the top slab atom went into the slab
RECONSTRUCTION_DISP = 1.0  # a slab atom moving this far from the clean relaxed slab = reconstruction
BOND_CUTOFF = 2.8  # Li-neighbour distance counted in the coordination number
NO_PHYSICAL_SITE = "every site relaxed to an unphysical outcome (see flags)"


def _in_plane_ops(slab: Structure, symprec: float = 0.3):
    """Symmetry operations (fractional) of the slab that keep the top face on top."""
    ops = SpacegroupAnalyzer(slab, symprec=symprec).get_symmetry_operations(cartesian=False)
    return [op for op in ops if np.allclose(op.rotation_matrix[2], [0, 0, 1]) and abs(op.translation_vector[2]) < 1e-3]


def _min_dist(lattice: Lattice, f1, f2) -> float:
    return float(lattice.get_distance_and_image(f1, f2)[0])


def enumerate_sites(slab: Structure, distance: float = 2.0, tol: float = 0.3) -> list[dict]:
    """Symmetry-distinct on-top, bridge and hollow sites of the top face, ``distance`` Å above it.

    AdsorbateSiteFinder finds the candidate positions; the symmetry reduction is done here with a
    Cartesian tolerance (Å), so the result does not depend on the vacuum size (pymatgen #1643/#2464,
    whose fractional tolerances scale with c). Each site: index, frac, cart, found_as, site_type
    (from the nearest surface atoms: 1 on-top, 2 bridge, >= 3 hollow) and site_atoms.
    """
    from pymatgen.analysis.adsorption import AdsorbateSiteFinder  # 3 s of imports (local_env, graphs): on use only

    clean = slab.copy()
    for prop in list(clean.site_properties):
        clean.remove_site_property(prop)
    asf = AdsorbateSiteFinder(clean)
    found = asf.find_adsorption_sites(distance=distance, positions=["ontop", "bridge", "hollow"],
                                      symm_reduce=0, near_reduce=0)
    ops = _in_plane_ops(clean)
    lat = clean.lattice
    surface_idx = [i for i, s in enumerate(asf.slab) if s.properties.get("surface_properties") == "surface"]
    sites: list[dict] = []
    for kind in ("ontop", "bridge", "hollow"):
        for cart in found.get(kind, []):
            f = lat.get_fractional_coords(cart)
            images = [op.operate(f) for op in ops] or [f]
            if any(_min_dist(lat, img, s["frac"]) < tol for s in sites for img in images):
                continue
            sites.append({"frac": f, "cart": np.asarray(cart), "found_as": kind})
    for s in sites:
        # site type from the surface atoms nearest in the plane: 1 = on-top, 2 = bridge, >= 3 = hollow
        d = sorted((_min_dist(lat, [*s["frac"][:2], 0], [*clean[i].frac_coords[:2], 0]), i) for i in surface_idx)
        near = [i for di, i in d if di < d[0][0] + 0.25]
        s["site_type"] = {1: "ontop", 2: "bridge"}.get(len(near), "hollow")
        s["site_atoms"] = sorted(clean[i].species_string for i in near)
    for i, s in enumerate(sites):
        s["index"] = i
    return sites


def adslab(slab: Structure, site: dict) -> Structure:
    """The slab with one Li at ``site``; Li is appended last and free to move."""
    s = slab.copy()
    props = {"selective_dynamics": [True] * 3} if "selective_dynamics" in s.site_properties else {}
    s.append("Li", site["cart"], coords_are_cartesian=True, properties=props)
    return s


def coordination(structure: Structure, index: int, cutoff: float = BOND_CUTOFF) -> tuple[int, list[str]]:
    """Number and species of the neighbours of site ``index`` within ``cutoff`` Å."""
    nbrs = structure.get_neighbors(structure[index], cutoff)
    return len(nbrs), sorted(n.species_string for n in nbrs)


def check_outcome(clean_slab: Structure, relaxed: Structure) -> tuple[list[str], dict]:
    """Flags for unphysical outcomes of an adslab relaxation (Li is the last site).

    Returns (flags among desorbed / subsurface / reconstructed, {'li_height', 'max_slab_displacement'} in Å).
    """
    z = normal_heights(relaxed)
    top = z[:-1].max()
    height = float(z[-1] - top)
    n = len(clean_slab)
    disp = max(_min_dist(relaxed.lattice, relaxed[i].frac_coords, clean_slab[i].frac_coords) for i in range(n))
    flags = []
    if height > DESORBED_HEIGHT:
        flags.append("desorbed")
    if height < SUBSURFACE_DEPTH:
        flags.append("subsurface")
    if disp > RECONSTRUCTION_DISP:
        flags.append("reconstructed")
    return flags, {"li_height": height, "max_slab_displacement": float(disp)}


def adsorption_energy(e_adslab: float, e_slab: float, mu_li: float) -> float:
    """eV, E(slab + Li) - E(slab) - mu_Li."""
    return e_adslab - e_slab - mu_li


def relaxed_site(sites: Sequence[dict], relaxed: Structure, tol: float = 0.5) -> int | None:
    """Index of the enumerated site the relaxed Li (last site) sits on, by in-plane distance (Å), or None."""
    lat = relaxed.lattice
    li = relaxed[-1].frac_coords
    best = min(((_min_dist(lat, [*li[:2], 0], [*s["frac"][:2], 0]), s["index"]) for s in sites), default=None)
    return best[1] if best and best[0] < tol else None


def lowest_physical_site(e_ads: Mapping[int, float | None], flags: Mapping[int, Sequence[str]]) -> int | None:
    """The site with the lowest E_ads among those without flags and with an energy, or None."""
    good = [i for i, e in e_ads.items() if e is not None and not flags.get(i)]
    return min(good, key=lambda i: e_ads[i]) if good else None


@dataclass(frozen=True)
class AdsorptionDecision:
    """The li_adsorption stage's decision: status, value (eV), the site it came from, and why not computed."""

    status: str  # passed | failed | not_computed
    value: float | None
    site: int | None
    reason: str | None


def adsorption_decision(e_ads: Mapping[int, float | None], flags: Mapping[int, Sequence[str]], e_ads_max: float,
                        reason: str | None = None) -> AdsorptionDecision:
    """Pass when the lowest physical E_ads (eV, vs bulk bcc Li) is at most ``e_ads_max``.

    Args:
        e_ads: E_ads per site index, from the backend that decides (DFT when it confirmed sites, else ML).
        flags: unphysical-outcome flags per site index (a flagged site does not count).
        e_ads_max: eV, the threshold: Li must bind at least this strongly.
        reason: why no site could be computed upstream (no slab, ...); used when there is no physical site.
    """
    site = lowest_physical_site(e_ads, flags)
    if site is None:
        return AdsorptionDecision("not_computed", None, None, reason or NO_PHYSICAL_SITE)
    value = e_ads[site]
    return AdsorptionDecision("passed" if value <= e_ads_max else "failed", value, site, None)

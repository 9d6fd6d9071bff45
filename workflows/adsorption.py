"""Li adsorption physics: surface choice, adsorption sites, E_ads, and checks for unphysical outcomes.

E_ads = E(slab + Li) - E(slab) - mu_Li, with mu_Li the energy per atom of relaxed bcc Li on the same
calculator. All functions here are calculator-agnostic; the jobs in ``coatflow.makers.adsorption``
feed them energies from the ML (and optionally DFT) backend.
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.adsorption import AdsorbateSiteFinder
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator, get_symmetrically_distinct_miller_indices
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.errors import CoatflowError

EV_PER_A2_TO_J_PER_M2 = 16.021766
LI_BCC_A = 3.51  # experimental bcc Li lattice parameter (A), only the starting point of the relaxation

#: site outcome thresholds (Angstrom)
DESORBED_HEIGHT = 3.5  # Li this far above the top slab atom has left the surface
SUBSURFACE_DEPTH = -1.0  # Li this far below the top slab atom went into the slab
RECONSTRUCTION_DISP = 1.0  # a slab atom moving this far from the clean relaxed slab = reconstruction
BOND_CUTOFF = 2.8  # Li-neighbour distance counted in the coordination number


def bcc_li() -> Structure:
    """Conventional 2-atom bcc Li cell: the chemical-potential reference."""
    return Structure(Lattice.cubic(LI_BCC_A), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def isolated_li(box: float = 15.0) -> Structure:
    """One Li atom in a cubic box (optional, labelled isolated-atom reference)."""
    return Structure(Lattice.cubic(box), ["Li"], [[0.5, 0.5, 0.5]])


# --- slabs --------------------------------------------------------------------------------------


def normal_heights(structure: Structure) -> np.ndarray:
    """Cartesian height of every site along the surface normal (c is along the normal)."""
    n = np.cross(structure.lattice.matrix[0], structure.lattice.matrix[1])
    n /= np.linalg.norm(n)
    return structure.cart_coords @ n


def surface_area(structure: Structure) -> float:
    m = structure.lattice.matrix
    return float(np.linalg.norm(np.cross(m[0], m[1])))


def fix_bottom(slab: Structure, fraction: float) -> Structure:
    """Selective dynamics: atoms in the bottom ``fraction`` of the slab thickness are fixed."""
    s = slab.copy()
    z = normal_heights(s)
    cut = z.min() + fraction * (z.max() - z.min()) + 1e-3
    s.add_site_property("selective_dynamics", [[False] * 3 if zi < cut else [True] * 3 for zi in z])
    return s


def _supercell(slab, min_lw: float):
    a, b = slab.lattice.abc[:2]
    na, nb = max(1, int(np.ceil(min_lw / a))), max(1, int(np.ceil(min_lw / b)))
    slab.make_supercell([na, nb, 1])
    return slab


def candidate_slabs(bulk: Structure, max_index: int = 1, layers: int = 2, vacuum: float = 12.0,
                    min_lw: float = 6.0, max_atoms: int = 120, fix_fraction: float = 0.5) -> tuple[list[dict], list[dict]]:
    """All stoichiometric, non-polar terminations of every symmetry-distinct facet up to ``max_index``.

    ``layers`` counts d_hkl planes (pymatgen ``in_unit_planes``). Non-stoichiometric slabs are left out:
    their surface energy depends on chemical potentials. Returns (kept, skipped) entries.
    """
    if max_index < 1 or layers < 1 or vacuum <= 0 or not 0 <= fix_fraction < 1:
        raise CoatflowError("adsorption settings need max_index >= 1, layers >= 1, vacuum > 0, 0 <= fix_fraction < 1")
    conv = SpacegroupAnalyzer(bulk).get_conventional_standard_structure()
    try:  # Slab.is_polar needs oxidation states (without them every slab has zero dipole)
        conv.add_oxidation_state_by_guess()
    except Exception:  # noqa: BLE001 - e.g. intermetallics: no guess, no polarity check
        pass
    kept, skipped = [], []
    for hkl in get_symmetrically_distinct_miller_indices(conv, max_index):
        gen = SlabGenerator(conv, hkl, layers, vacuum, in_unit_planes=True, center_slab=True, primitive=True,
                            max_normal_search=max_index, reorient_lattice=True)
        for term, slab in enumerate(gen.get_slabs(symmetrize=False, tol=0.1)):
            label = {"miller_index": list(hkl), "termination": term, "shift": round(float(slab.shift), 4)}
            if slab.composition.element_composition.reduced_composition != bulk.composition.element_composition.reduced_composition:
                skipped.append({**label, "reason": "non-stoichiometric"})
                continue
            if slab.is_polar(tol_dipole_per_unit_area=1e-2):
                skipped.append({**label, "reason": "polar"})
                continue
            slab = _supercell(slab.get_orthogonal_c_slab(), min_lw)
            slab.remove_oxidation_states()
            if len(slab) > max_atoms:
                skipped.append({**label, "reason": f"{len(slab)} atoms > max_atoms {max_atoms}"})
                continue
            kept.append({**label, "symmetric": slab.is_symmetric(), "nsites": len(slab),
                         "structure": fix_bottom(Structure.from_sites(slab), fix_fraction)})
    return kept, skipped


def surface_energy(e_slab: float, n_atoms: int, e_bulk_per_atom: float, area: float) -> float:
    """Mean surface energy of the two faces (J/m2): (E_slab - N e_bulk) / 2A."""
    return (e_slab - n_atoms * e_bulk_per_atom) / (2 * area) * EV_PER_A2_TO_J_PER_M2


# --- sites --------------------------------------------------------------------------------------


def _in_plane_ops(slab: Structure, symprec: float = 0.3):
    """Symmetry operations (fractional) of the slab that keep the top face on top."""
    ops = SpacegroupAnalyzer(slab, symprec=symprec).get_symmetry_operations(cartesian=False)
    return [op for op in ops if np.allclose(op.rotation_matrix[2], [0, 0, 1]) and abs(op.translation_vector[2]) < 1e-3]


def _min_dist(lattice: Lattice, f1, f2) -> float:
    return float(lattice.get_distance_and_image(f1, f2)[0])


def enumerate_sites(slab: Structure, distance: float = 2.0, tol: float = 0.3) -> list[dict]:
    """Symmetry-distinct on-top, bridge and hollow sites of the top face.

    AdsorbateSiteFinder finds the candidate positions; the symmetry reduction is done here with a
    Cartesian tolerance (A), so the result does not depend on the vacuum size (pymatgen #1643/#2464,
    whose fractional tolerances scale with c).
    """
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
    nbrs = structure.get_neighbors(structure[index], cutoff)
    return len(nbrs), sorted(n.species_string for n in nbrs)


def check_outcome(clean_slab: Structure, relaxed: Structure) -> tuple[list[str], dict]:
    """Flags for unphysical outcomes of an adslab relaxation (Li is the last site)."""
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
    return e_adslab - e_slab - mu_li


def relaxed_site(sites: list[dict], relaxed: Structure, tol: float = 0.5) -> int | None:
    """Index of the enumerated site the relaxed Li sits on (in-plane distance), or None."""
    lat = relaxed.lattice
    li = relaxed[-1].frac_coords
    best = min(((_min_dist(lat, [*li[:2], 0], [*s["frac"][:2], 0]), s["index"]) for s in sites), default=None)
    # in-plane distance only: compare projections onto the surface plane
    return best[1] if best and best[0] < tol else None



# --- the funnel stage ---------------------------------------------------------------------------


def plan_li_adsorption(planner, plan, upstream_key: str, verdict):
    """Plan the li_adsorption stage: bcc Li reference, surface choice, site relaxations, DFT, verdict."""
    import dataclasses

    from coatflow.makers import adsorption as mk
    from coatflow.makers.registry import get_maker
    from coatflow.workflows.campaign import make_key, settings_of

    cfg = planner.config
    a = cfg.adsorption
    backend = cfg.backends.adsorption
    maker = dataclasses.replace(get_maker("adsorption", backend), top_k=a.top_k, dft_backend=a.dft_backend,
                                layers=a.layers, min_vacuum=a.vacuum, min_lw=a.min_lw, max_index=a.max_index,
                                max_atoms=a.max_atoms, max_surfaces=a.max_surfaces, max_sites=a.max_sites,
                                fmax=a.fmax, steps=a.steps)
    settings = settings_of(maker)
    relax_settings = settings_of(get_maker("relax", cfg.backends.relax))
    base = make_key(upstream_key, "li_adsorption", cfg.backends.relax, relax_settings, backend, settings)
    # the bcc Li reference depends only on the calculator: shared by every candidate
    ref, ref_uuid = planner.add(plan, make_key("bcc_li_reference", settings_of(maker.li_relax_maker)),
                                "li_adsorption", "li_reference", backend,
                                lambda: maker.li_relax_maker.make(bcc_li()))
    surf, surf_uuid = planner.add(plan, make_key(base, "surface"), "li_adsorption", "adsorption_surface", backend,
                                  lambda: mk.select_surface(verdict.structure, maker))
    dft = mk.dft_status(maker.dft_backend)
    doc, uuid = planner.add(plan, make_key(base, "sites", dft), "li_adsorption", "adsorption", backend,
                            lambda: mk.relax_sites(surf, ref, maker, dft))
    uuids = [ref_uuid, surf_uuid, uuid]
    if dft["status"] == "pending":
        dkey = make_key(base, "dft", maker.dft_backend, maker.top_k)
        stored = planner.stored(dkey)
        if stored is None:
            doc, uuid = planner.add(plan, dkey, "li_adsorption", "adsorption_dft", maker.dft_backend,
                                    lambda: mk.confirm_with_dft(doc, maker.dft_backend, maker.top_k))
        else:
            doc, uuid = stored
        uuids.append(uuid)
    vkey = make_key(base, "verdict", dft, planner.thresholds["e_ads_max"])
    return planner.gate(plan, vkey, "li_adsorption", backend,
                        lambda: mk.adsorption_verdict(plan.ident, doc, verdict.structure,
                                                      planner.thresholds["e_ads_max"], uuids))

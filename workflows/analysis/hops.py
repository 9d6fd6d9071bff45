"""Li migration geometry and percolation: hop enumeration, vacancy endpoints (with atom-count checks),
IDPP paths, the percolating barrier and the migration_barrier verdict's decision.

* ``plan_hops``: symmetry-distinct Li hops up to a cutoff (pymatgen-analysis-diffusion
  ``MigrationGraph``), each with a start/end vacancy supercell built here and checked
  (pymatgen-analysis-diffusion #436/#245: supercells that gain an atom or lose the moving ion).
* ``percolation``: the smallest E such that hops with barrier <= E connect the Li sites into an
  infinite network, and that network's dimensionality (1D/2D/3D). An asymmetric hop counts with
  its larger direction.
* ``summarize`` and ``migration_decision``: the stage document from the per-hop results, and the verdict
  E_m < threshold from it.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Structure

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.supercells import diagonal_supercell, supercell_matrix

DIMS = {0: "0D", 1: "1D", 2: "2D", 3: "3D"}

#: the columns of a hop's row in the verdict's table
HOP_COLUMNS = ("hop_label", "length", "forward_barrier", "reverse_barrier", "barrier", "status", "n_atoms",
               "max_force", "neb_steps", "wall_time")


# -- supercells and endpoints -------------------------------------------------------------------

def host_cell(structure: Structure, min_size: float, max_atoms: int = 10**6) -> tuple[Structure, list]:
    """(cell, supercell matrix): the smallest near-cubic supercell of the primitive cell whose perpendicular
    widths are all >= min_size (ASE ``find_optimal_cell_shape``), or a diagonal one if that is smaller."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        prim = SpacegroupAnalyzer(structure, symprec=0.01).get_primitive_standard_structure()
    except Exception:  # noqa: BLE001 - symmetry search failed: keep the given cell
        prim = structure
    diag = diagonal_supercell(prim.lattice, min_size)
    shaped = supercell_matrix(prim.lattice, min_size, min(int(np.prod(diag)) - 1, max_atoms // len(prim)),
                              measure="width", targets=("sc",))
    return prim, (np.diag(diag) if shaped is None else shaped).tolist()


def _find_site(sc: Structure, cart, ion: str, tol: float = 0.3) -> int:
    frac = sc.lattice.get_fractional_coords(cart)
    idx = [i for i, s in enumerate(sc) if s.species_string == ion]
    d = sc.lattice.get_all_distances([frac], sc.frac_coords[idx])[0]
    k = int(np.argmin(d))
    if d[k] > tol:
        raise AnalysisError(f"hop endpoint not found on a {ion} site of the supercell (nearest {d[k]:.2f} Å)")
    return idx[k]


def vacancy_endpoints(cell: Structure, hop: dict, scaling, ion: str = "Li") -> tuple[Structure, Structure]:
    """Start and end supercells: the ion on the initial site, a vacancy on the final site, and vice versa.

    Adds ``moving_index``, ``n_host`` and ``n_ion_host`` to ``hop`` (what ``check_endpoints`` needs)."""
    sc = cell * scaling
    icart = cell.lattice.get_cartesian_coords(hop["ipos"])
    ecart = cell.lattice.get_cartesian_coords(hop["epos"])
    i, e = _find_site(sc, icart, ion), _find_site(sc, ecart, ion)
    if i == e:
        raise AnalysisError(f"supercell {scaling} too small: hop {hop['label']} maps onto its own image")
    start = sc.copy()
    start.remove_sites([e])
    moving = i - (1 if e < i else 0)
    end = start.copy()
    end.replace(moving, ion, coords=ecart, coords_are_cartesian=True)
    hop.update(moving_index=moving, n_host=len(sc), n_ion_host=sum(s.species_string == ion for s in sc))
    check_endpoints(start, end, hop)
    return start, end


def check_endpoints(start: Structure, end: Structure, hop: dict) -> None:
    """Fail loudly unless both endpoints are the host supercell minus exactly one ion, moved by the hop length."""
    ion = hop.get("ion", "Li")
    n, n_ion = hop["n_host"], hop["n_ion_host"]
    for tag, s in (("start", start), ("end", end)):
        got = sum(x.species_string == ion for x in s)
        if len(s) != n - 1 or got != n_ion - 1:
            raise AnalysisError(f"hop {hop['label']}: {tag} supercell has {len(s)} atoms ({got} {ion}); "
                                f"expected {n - 1} ({n_ion - 1} {ion})")
    if [x.species_string for x in start] != [x.species_string for x in end]:
        raise AnalysisError(f"hop {hop['label']}: start and end supercells list different species")
    k = hop["moving_index"]
    if start[k].species_string != ion:
        raise AnalysisError(f"hop {hop['label']}: moving atom {k} is {start[k].species_string}, not {ion}")
    d = start[k].distance(end[k])
    if abs(d - hop["length"]) > 0.05:
        raise AnalysisError(f"hop {hop['label']}: moving {ion} travels {d:.2f} Å, "
                            f"hop length is {hop['length']:.2f} Å")
    moved = [j for j in range(len(start)) if j != k and start[j].distance(end[j]) > 1e-3]
    if moved:
        raise AnalysisError(f"hop {hop['label']}: {len(moved)} atoms besides the moving {ion} differ between endpoints")


def check_images(images: list[Structure], min_dist: float = 0.6) -> None:
    """Interpolated images must keep the atom count and not put two atoms on top of each other."""
    n = len(images[0])
    for k, s in enumerate(images):
        if len(s) != n:
            raise AnalysisError(f"NEB image {k} has {len(s)} atoms, expected {n}")
        dm = s.distance_matrix + np.eye(n) * 1e9
        if dm.min() < min_dist:
            raise AnalysisError(f"NEB image {k}: atoms {dm.min():.2f} Å apart after interpolation")


def idpp_images(start: Structure, end: Structure, n_images: int) -> list[Structure]:
    """Endpoints plus ``n_images`` IDPP-interpolated images (ASE, minimum image)."""
    from ase.mep import NEB
    from pymatgen.io.ase import AseAtomsAdaptor

    a, b = AseAtomsAdaptor.get_atoms(start), AseAtomsAdaptor.get_atoms(end)
    images = [a] + [a.copy() for _ in range(n_images)] + [b]
    NEB(images).interpolate("idpp", mic=True)
    return [AseAtomsAdaptor.get_structure(im) for im in images]


# -- hop enumeration ----------------------------------------------------------------------------

def plan_hops(structure: Structure, ion: str = "Li", cutoff: float = 4.0, min_size: float = 7.0,
              max_atoms: int = 160, max_hops: int = 4, rel_cutoff: float | None = None
              ) -> tuple[list[dict], dict, list[dict]]:
    """(hops to compute, Li-site graph, skipped hops). Each hop: {"hop", "start", "end"}.

    Hops longer than ``cutoff`` are not enumerated; hops longer than ``rel_cutoff`` x the shortest hop,
    beyond ``max_hops``, or needing more than ``max_atoms`` are listed as skipped."""
    from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph

    if not isinstance(structure, Structure):
        raise AnalysisError(f"migration needs a pymatgen Structure, got {type(structure).__name__}")
    if ion not in {el.symbol for el in structure.composition.elements}:
        raise AnalysisError(f"{structure.composition.reduced_formula} has no {ion} to migrate")
    if cutoff <= 0 or min_size <= 0:
        raise AnalysisError("migration_barrier.hop_cutoff and migration_barrier.min_size must be positive")
    cell, scaling = host_cell(structure, min_size, max_atoms)
    mg = MigrationGraph.with_distance(cell, ion, max_distance=cutoff)
    graph = {"n_sites": len(mg.only_sites),
             "edges": [[int(u), int(v), [int(x) for x in d["to_jimage"]], int(d["hop_label"])]
                       for u, v, d in mg.m_graph.graph.edges(data=True)]}
    uniq = sorted(mg.unique_hops.values(), key=lambda h: h["hop_distance"])
    hops, skipped = [], []
    n_sc = len(cell) * abs(round(np.linalg.det(np.array(scaling, dtype=float))))
    longest = rel_cutoff * uniq[0]["hop_distance"] if (rel_cutoff and uniq) else math.inf
    for h in uniq:
        hop = {"label": int(h["hop_label"]), "length": float(h["hop_distance"]), "iindex": int(h["iindex"]),
               "eindex": int(h["eindex"]), "ipos": [float(x) for x in h["ipos"]],
               "epos": [float(x) for x in h["epos"]], "ion": ion, "scaling": scaling,
               "multiplicity": sum(e[3] == h["hop_label"] for e in graph["edges"])}
        if hop["length"] > longest + 1e-6:
            skipped.append({**hop, "reason": f"longer than migration_barrier.rel_cutoff = {rel_cutoff} x the "
                                             "shortest hop"})
            continue
        if len(hops) >= max_hops:
            skipped.append({**hop, "reason": f"beyond migration_barrier.max_hops = {max_hops}"})
            continue
        if n_sc - 1 > max_atoms:
            skipped.append({**hop, "reason": f"supercell of {n_sc - 1} atoms > migration_barrier.max_atoms = "
                                             f"{max_atoms}"})
            continue
        start, end = vacancy_endpoints(cell, hop, scaling, ion)
        hops.append({"hop": hop, "start": start, "end": end})
    return hops, graph, skipped


# -- percolation --------------------------------------------------------------------------------

def periodic_dimensionality(n_sites: int, edges) -> int:
    """Largest dimensionality (0-3) of a connected component of a periodic graph.

    ``edges``: (u, v, to_jimage) with v in cell ``to_jimage`` seen from u. Each component is walked
    once, giving every site a cell offset; each edge then closes a loop whose lattice translation is
    off[u] + jimage - off[v]. The rank of those translations is the component's dimensionality.
    """
    adj: dict[int, list] = {i: [] for i in range(n_sites)}
    for u, v, j in edges:
        j = np.asarray(j, dtype=int)
        adj[u].append((v, j))
        adj[v].append((u, -j))
    off: dict[int, np.ndarray] = {}
    best = 0
    for root in range(n_sites):
        if root in off:
            continue
        off[root] = np.zeros(3, dtype=int)
        stack, comp = [root], []
        while stack:
            u = stack.pop()
            comp.append(u)
            for v, j in adj[u]:
                if v not in off:
                    off[v] = off[u] + j
                    stack.append(v)
        loops = [off[u] + j - off[v] for u in comp for v, j in adj[u]]
        loops = [x for x in loops if x.any()]
        if loops:
            best = max(best, int(np.linalg.matrix_rank(np.array(loops, dtype=float))))
    return best


def percolation(n_sites: int, edges, barriers: dict) -> dict:
    """Smallest barrier E at which hops with barrier <= E percolate, and the dimensionality there.

    ``edges``: (u, v, to_jimage, hop_label); ``barriers``: hop_label -> barrier, or -> (forward, reverse)
    (an asymmetric hop counts with its larger direction). Labels without a barrier are blocked.
    Returns e_m (None if nothing percolates), dimensionality, limiting_hop and the onset of each dimension.
    """
    eff = {k: (max(v) if isinstance(v, (list, tuple)) else v) for k, v in barriers.items() if v is not None}
    eff = {k: float(v) for k, v in eff.items() if not (isinstance(v, float) and math.isnan(v))}
    out = {"e_m": None, "dimensionality": "0D", "limiting_hop": None, "onsets": []}
    seen = 0
    for e in sorted(set(eff.values())):
        open_ = [(u, v, j) for u, v, j, lab in edges if lab in eff and eff[lab] <= e]
        d = periodic_dimensionality(n_sites, open_)
        if d > seen:
            out["onsets"].append({"barrier": e, "dimensionality": DIMS[d],
                                  "hops": sorted(k for k, v in eff.items() if v <= e)})
            if seen == 0:
                out.update(e_m=e, dimensionality=DIMS[d], limiting_hop=min(k for k, v in eff.items() if v == e))
            seen = d
    return out


def hops_to_confirm(rows: list[dict], e_m: float | None, threshold: float, margin: float = 0.1) -> list[int]:
    """Hop labels a DFT backend should confirm: those at or below E_m (the percolating path) and any within
    ``margin`` eV of the threshold."""
    out = set()
    for r in rows:
        b = r.get("barrier")
        if b is None:
            continue
        if (e_m is not None and b <= e_m + 1e-9) or abs(b - threshold) <= margin:
            out.add(r["hop_label"])
    return sorted(out)


# -- the stage document and its verdict -----------------------------------------------------------

def summarize(hops: list[dict], graph: dict, skipped: list, settings: dict) -> dict:
    """The stage document: per-hop table and the percolating barrier, from converged hops and from all hops.

    ``hops``: one dict per NEB run (the fields of a hop result, images left out)."""
    rows = []
    for h in hops:
        d = {k: v for k, v in h.items() if k != "images"}
        d["barrier"] = (max(d["forward_barrier"], d["reverse_barrier"])
                        if d.get("forward_barrier") is not None else None)
        rows.append(d)
    conv = {r["hop_label"]: r["barrier"] for r in rows if r["converged"]}
    every = {r["hop_label"]: r["barrier"] for r in rows if r["barrier"] is not None}
    return {"hops": rows, "skipped": skipped, "graph": graph, "settings": settings,
            "percolation": percolation(graph["n_sites"], graph["edges"], conv),
            "percolation_all_hops": percolation(graph["n_sites"], graph["edges"], every),
            "unconverged": sorted(r["hop_label"] for r in rows if not r["converged"])}


def migration_decision(summary: dict | None, e_max: float, margin: float = 0.1) -> dict:
    """The migration_barrier verdict E_m < ``e_max`` from a ``summarize`` document.

    E_m uses converged hops only: an unconverged hop could only lower it, so a pass stands; a fail (or no
    percolation) with unconverged hops is not_computed. Returns ``status``, ``value`` (eV, rounded),
    ``unit``, ``reason`` and ``details`` (dimensionality, limiting hop, onsets, hop table, skipped hops,
    unconverged hops, E_m over all hops, settings and the hops to confirm with DFT).
    """
    if summary is None:
        return {"status": "not_computed", "value": None, "unit": None, "reason": "no migration result", "details": {}}
    p = summary["percolation"]
    rows = summary["hops"]
    e_m, unconverged = p["e_m"], summary["unconverged"]
    details = {"dimensionality": p["dimensionality"], "limiting_hop": p["limiting_hop"], "onsets": p["onsets"],
               "hops": [{k: r.get(k) for k in HOP_COLUMNS} for r in rows],
               "skipped": [{k: s[k] for k in ("label", "length", "reason")} for s in summary["skipped"]],
               "unconverged": unconverged, "e_m_all_hops": summary["percolation_all_hops"]["e_m"],
               "settings": summary["settings"], "confirm_with_dft": hops_to_confirm(rows, e_m, e_max, margin)}
    out = {"status": "not_computed", "value": None, "unit": None, "reason": None, "details": details}
    if any(r["status"] == "inputs_written" for r in rows):
        dirs = sorted({r.get("inputs_dir") for r in rows})
        return {**out, "reason": f"VASP NEB inputs written ({', '.join(dirs)}); run them with VASP"}
    value = None if e_m is None else round(e_m, 3)
    if e_m is not None and e_m < e_max:
        return {**out, "status": "passed", "value": value, "unit": "eV"}
    if unconverged:
        found = "no percolating path" if e_m is None else f"E_m = {e_m:.2f} eV"
        return {**out, "value": value, "unit": "eV", "reason": f"CI-NEB unconverged for hop(s) "
                f"{', '.join(map(str, unconverged))} and the converged hops give {found}"}
    if e_m is None:
        some = "(some skipped) " if summary["skipped"] else ""
        return {**out, "reason": f"hops up to {summary['settings']['hop_cutoff']} Å {some}do not percolate; "
                                 "raise migration_barrier.hop_cutoff / max_hops"}
    return {**out, "status": "failed", "value": value, "unit": "eV", "reason": f"E_m = {e_m:.2f} eV >= {e_max} eV"}

"""Li migration: hop enumeration, vacancy endpoints (with atom-count checks), IDPP paths, percolation.

* ``plan_hops``: symmetry-distinct Li hops up to a cutoff (pymatgen-analysis-diffusion
  ``MigrationGraph``), each with a start/end vacancy supercell built here and checked
  (pymatgen-analysis-diffusion #436/#245: supercells that gain an atom or lose the moving ion).
* ``percolation``: the smallest E such that hops with barrier <= E connect the Li sites into an
  infinite network, and that network's dimensionality (1D/2D/3D). An asymmetric hop counts with
  its larger direction.
* ``plan_migration_barrier``: the funnel planner of the last stage, ``migration_barrier``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from jobflow import Response, job
from pymatgen.core import Structure

from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import StageResult

logger = logging.getLogger(__name__)

STAGE = "migration_barrier"
DIMS = {0: "0D", 1: "1D", 2: "2D", 3: "3D"}


# -- supercells and endpoints -------------------------------------------------------------------

def perpendicular_widths(matrix) -> list[float]:
    """Distances between opposite faces of the cell spanned by the rows of ``matrix``."""
    m = np.asarray(matrix, dtype=float)
    vol = abs(np.linalg.det(m))
    return [float(vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3]))) for i in range(3)]


def supercell_diagonal(structure: Structure, min_size: float) -> list[int]:
    """Repeats per axis so that every perpendicular width of the supercell is >= min_size."""
    return [max(1, math.ceil(min_size / w - 1e-6)) for w in perpendicular_widths(structure.lattice.matrix)]


def host_cell(structure: Structure, min_size: float, max_atoms: int = 10**6) -> tuple[Structure, list]:
    """(cell, supercell matrix): the smallest near-cubic supercell of the primitive cell whose perpendicular
    widths are all >= min_size (ASE ``find_optimal_cell_shape``), or a diagonal one if that is smaller."""
    from ase.build import find_optimal_cell_shape
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        prim = SpacegroupAnalyzer(structure, symprec=0.01).get_primitive_standard_structure()
    except Exception:  # noqa: BLE001 - symmetry search failed: keep the given cell
        prim = structure
    diag = supercell_diagonal(prim, min_size)
    best = (int(np.prod(diag)), np.diag(diag).tolist())
    m = prim.lattice.matrix
    # any cell with all widths >= min_size has volume >= min_size**3
    n0 = max(1, math.ceil(min_size**3 / prim.volume - 1e-6))
    for n in range(n0, min(best[0], max(n0, max_atoms // len(prim) + 1))):
        try:
            p = np.asarray(find_optimal_cell_shape(m, n, "sc", verbose=False), dtype=int)
        except Exception:  # noqa: BLE001 - no shape found for this n
            continue
        if abs(round(np.linalg.det(p))) == n and min(perpendicular_widths(p @ m)) >= min_size - 1e-6:
            best = (n, p.tolist())
            break
    return prim, best[1]


def _find_site(sc: Structure, cart, ion: str, tol: float = 0.3) -> int:
    frac = sc.lattice.get_fractional_coords(cart)
    idx = [i for i, s in enumerate(sc) if s.species_string == ion]
    d = sc.lattice.get_all_distances([frac], sc.frac_coords[idx])[0]
    k = int(np.argmin(d))
    if d[k] > tol:
        raise CoatflowError(f"hop endpoint not found on a {ion} site of the supercell (nearest {d[k]:.2f} Å)")
    return idx[k]


def vacancy_endpoints(cell: Structure, hop: dict, scaling, ion: str = "Li") -> tuple[Structure, Structure]:
    """Start and end supercells: the ion on the initial site, a vacancy on the final site, and vice versa."""
    sc = cell * scaling
    icart = cell.lattice.get_cartesian_coords(hop["ipos"])
    ecart = cell.lattice.get_cartesian_coords(hop["epos"])
    i, e = _find_site(sc, icart, ion), _find_site(sc, ecart, ion)
    if i == e:
        raise CoatflowError(f"supercell {scaling} too small: hop {hop['label']} maps onto its own image")
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
            raise CoatflowError(f"hop {hop['label']}: {tag} supercell has {len(s)} atoms ({got} {ion}); "
                                f"expected {n - 1} ({n_ion - 1} {ion})")
    if [x.species_string for x in start] != [x.species_string for x in end]:
        raise CoatflowError(f"hop {hop['label']}: start and end supercells list different species")
    k = hop["moving_index"]
    if start[k].species_string != ion:
        raise CoatflowError(f"hop {hop['label']}: moving atom {k} is {start[k].species_string}, not {ion}")
    d = start[k].distance(end[k])
    if abs(d - hop["length"]) > 0.05:
        raise CoatflowError(f"hop {hop['label']}: moving {ion} travels {d:.2f} Å, hop length is {hop['length']:.2f} Å")
    moved = [j for j in range(len(start)) if j != k and start[j].distance(end[j]) > 1e-3]
    if moved:
        raise CoatflowError(f"hop {hop['label']}: {len(moved)} atoms besides the moving {ion} differ between endpoints")


def check_images(images: list[Structure], min_dist: float = 0.6) -> None:
    """Interpolated images must keep the atom count and not put two atoms on top of each other."""
    n = len(images[0])
    for k, s in enumerate(images):
        if len(s) != n:
            raise CoatflowError(f"NEB image {k} has {len(s)} atoms, expected {n}")
        dm = s.distance_matrix + np.eye(n) * 1e9
        if dm.min() < min_dist:
            raise CoatflowError(f"NEB image {k}: atoms {dm.min():.2f} Å apart after interpolation")


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
        raise CoatflowError(f"migration needs a pymatgen Structure, got {type(structure).__name__}")
    if ion not in {el.symbol for el in structure.composition.elements}:
        raise CoatflowError(f"{structure.composition.reduced_formula} has no {ion} to migrate")
    if cutoff <= 0 or min_size <= 0:
        raise CoatflowError("migration.hop_cutoff and migration.min_size must be positive")
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
            skipped.append({**hop, "reason": f"longer than migration.rel_cutoff = {rel_cutoff} x the shortest hop"})
            continue
        if len(hops) >= max_hops:
            skipped.append({**hop, "reason": f"beyond migration.max_hops = {max_hops}"})
            continue
        if n_sc - 1 > max_atoms:
            skipped.append({**hop, "reason": f"supercell of {n_sc - 1} atoms > migration.max_atoms = {max_atoms}"})
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


def summarize(hops: list, graph: dict, skipped: list, settings: dict) -> dict:
    """The stage document: per-hop table and the percolating barrier, from converged hops and from all hops."""
    rows = []
    for h in hops:
        d = h.model_dump(exclude={"images"}) if hasattr(h, "model_dump") else {k: v for k, v in h.items()
                                                                                 if k != "images"}
        d["barrier"] = (max(d["forward_barrier"], d["reverse_barrier"])
                        if d.get("forward_barrier") is not None else None)
        rows.append(d)
    conv = {r["hop_label"]: r["barrier"] for r in rows if r["converged"]}
    every = {r["hop_label"]: r["barrier"] for r in rows if r["barrier"] is not None}
    return {"hops": rows, "skipped": skipped, "graph": graph, "settings": settings,
            "percolation": percolation(graph["n_sites"], graph["edges"], conv),
            "percolation_all_hops": percolation(graph["n_sites"], graph["edges"], every),
            "unconverged": sorted(r["hop_label"] for r in rows if not r["converged"])}


# -- verdict and planner ------------------------------------------------------------------------

@job(name="migration barrier verdict")
def migration_verdict(ident: dict, doc: dict, structure, e_max: float, backend: str, uuids: list,
                      margin: float = 0.1) -> Response:
    """E_m < e_max. E_m uses converged hops only: an unconverged hop could only lower it, so a pass stands;
    a fail (or no percolation) with unconverged hops is ``not_computed``."""
    crit = f"E_m < {e_max} eV"
    base = {**ident, "stage": STAGE, "criterion": crit, "backend": backend, "task_uuids": uuids,
            "structure": structure}
    if doc is None:
        r = StageResult(**base, status="not_computed", reason="not computed: no migration result")
        return Response(output=r)
    p = doc["percolation"]
    rows = doc["hops"]
    table = [{k: r.get(k) for k in ("hop_label", "length", "forward_barrier", "reverse_barrier", "barrier",
                                     "status", "n_atoms", "max_force", "neb_steps", "wall_time")} for r in rows]
    details = {"dimensionality": p["dimensionality"], "limiting_hop": p["limiting_hop"], "onsets": p["onsets"],
               "hops": table, "skipped": [{k: s[k] for k in ("label", "length", "reason")} for s in doc["skipped"]],
               "unconverged": doc["unconverged"], "e_m_all_hops": doc["percolation_all_hops"]["e_m"],
               "settings": doc["settings"],
               "confirm_with_dft": hops_to_confirm(rows, p["e_m"], e_max, margin)}
    if any(r["status"] == "inputs_written" for r in rows):
        dirs = sorted({r.get("inputs_dir") for r in rows})
        r = StageResult(**base, status="not_computed", details=details,
                        reason=f"not computed: VASP NEB inputs written ({', '.join(dirs)}); run them with VASP")
        return Response(output=r)
    e_m = p["e_m"]
    if e_m is not None and e_m < e_max:
        r = StageResult(**base, status="passed", value=round(e_m, 3), unit="eV", details=details)
        return Response(output=r)
    if doc["unconverged"]:
        r = StageResult(**base, status="not_computed", value=None if e_m is None else round(e_m, 3), unit="eV",
                        details=details, reason=f"not computed: CI-NEB unconverged for hop(s) "
                        f"{', '.join(map(str, doc['unconverged']))} and the converged hops give "
                        f"{'no percolating path' if e_m is None else f'E_m = {e_m:.2f} eV'}")
        return Response(output=r)
    if e_m is None:
        r = StageResult(**base, status="not_computed", details=details,
                        reason=f"not computed: hops up to {doc['settings']['hop_cutoff']} Å "
                               f"{'(some skipped) ' if doc['skipped'] else ''}do not percolate; "
                               "raise migration.hop_cutoff / max_hops")
        return Response(output=r)
    r = StageResult(**base, status="failed", value=round(e_m, 3), unit="eV", details=details,
                    reason=f"E_m = {e_m:.2f} eV >= {e_max} eV")
    return Response(output=r, stop_children=True)


def _add_new(planner, plan, key: str, backend: str, new):
    """planner.add without its store lookup: a half-finished (replaced) stage is planned again."""
    meta = {"key": key, "material_id": plan.candidate.material_id, "stage": STAGE, "task": "neb", "backend": backend}
    new.metadata = {**(new.metadata or {}), "coatflow": meta}
    new.name = f"{new.name} [{plan.candidate.material_id}]"
    plan.jobs.append(new)
    return new.output, new.uuid


def migration_maker(config):
    """The configured MigrationMaker (config.backends.neb + config.migration)."""
    import dataclasses

    from coatflow.makers.registry import get_maker

    m = config.migration
    maker = get_maker("neb", config.backends.neb)
    hop = maker.hop_maker
    if hasattr(hop, "fmax"):
        hop = dataclasses.replace(hop, n_images=m.n_images, fmax=m.fmax, steps=m.steps)
    else:
        hop = dataclasses.replace(hop, n_images=m.n_images)
    return dataclasses.replace(maker, hop_maker=hop, hop_cutoff=m.hop_cutoff, rel_cutoff=m.rel_cutoff,
                               min_size=m.min_size, max_atoms=m.max_atoms, max_hops=m.max_hops)


def plan_migration_barrier(planner, plan, upstream_key: str, verdict):
    """Last funnel stage: CI-NEB of every symmetry-distinct Li hop, then E_m < migration_barrier_max."""
    from coatflow.workflows.campaign import make_key, settings_of

    backend = planner.config.backends.neb
    maker = migration_maker(planner.config)
    key = make_key(upstream_key, "migration", backend, settings_of(maker))
    stored = planner.stored(key)
    if stored is not None:
        doc, uuid = stored
    else:
        if isinstance(verdict, StageResult) and isinstance(verdict.structure, Structure):
            # structure known now: say how many NEB jobs this candidate will cost
            hops, _, skipped = plan_hops(verdict.structure, maker.ion, maker.hop_cutoff, maker.min_size,
                                         maker.max_atoms, maker.max_hops, maker.rel_cutoff)
            logger.warning("%s: migration_barrier plans %d NEB job(s) (%d hop(s) skipped)",
                           plan.candidate.material_id, len(hops), len(skipped))
        doc, uuid = _add_new(planner, plan, key, backend, maker.make(verdict.structure, plan.candidate.material_id))
    e_max = planner.thresholds["migration_barrier_max"]
    vkey = make_key(key, "verdict", e_max)
    return planner.gate(plan, vkey, STAGE, backend,
                        lambda: migration_verdict(plan.ident, doc, verdict.structure, e_max, backend, [uuid],
                                                  planner.config.migration.dft_margin))

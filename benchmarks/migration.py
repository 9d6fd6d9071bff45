"""Li migration barriers (CI-NEB, CHGNet) of the example set: E_m, dimensionality and wall time.

    python benchmarks/migration.py --store DIR          # read a campaign store (after `coatflow run`)
    python benchmarks/migration.py --direct [ID ...]    # run the stage directly on example structures
    python benchmarks/migration.py --direct mps-Li8HfO6 --store /tmp/paper_funnel/store --all-hops

``--store`` alone reports every candidate that reached the migration_barrier stage, from the stored job
documents. ``--direct`` relaxes the given example candidates with CHGNet (predicted ones: the
lowest-energy prototype) and runs the stage's MigrationMaker with the default ``migration`` config,
whatever the earlier stages say (with ``--store``, on the structures that campaign relaxed); by default the published references pred-LiTbO2 and pred-LiDyO2
(0.370 / 0.375 eV) plus ex-Li2O. ``--all-hops`` computes every symmetry-distinct hop up to ``hop_cutoff``
(``max_hops`` and ``rel_cutoff`` off); an id relaxed in ``--store`` need not be an example candidate.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import warnings
from pathlib import Path

PUBLISHED = {"LiTbO2": 0.370, "LiDyO2": 0.375}


def _row(mid, formula, e_m, dim, wall, hops, status=""):
    ref = PUBLISHED.get(formula)
    e = "-" if e_m is None else f"{e_m:.3f}"
    hop_txt = "; ".join(f"{h['hop_label']}:{h['length']:.2f}A "
                        f"{'-' if h.get('forward_barrier') is None else format(h['forward_barrier'], '.3f')}/"
                        f"{'-' if h.get('reverse_barrier') is None else format(h['reverse_barrier'], '.3f')}"
                        f"{'' if h.get('status') == 'converged' else ' ' + str(h.get('status'))}" for h in hops)
    print(f"{mid:14s} {formula:9s} {e:>7s} {dim:>4s} {wall:8.1f} {status:13s} "
          f"{'' if ref is None else f'{ref:.3f}':>6s}  {hop_txt}")


def _header():
    print(f"{'candidate':14s} {'formula':9s} {'E_m/eV':>7s} {'dim':>4s} {'wall/s':>8s} {'verdict':13s} "
          f"{'publ.':>6s}  hops (label:length fwd/rev eV)")


def from_store(path: str) -> None:
    from coatflow.launchers.config import CampaignConfig
    from coatflow.launchers.stores import CampaignStores

    config = CampaignConfig(store={"path": str(Path(path).resolve())})
    stores = CampaignStores(config).connect()
    try:
        docs = stores.jobs.docs_store
        _header()
        for v in docs.query({"metadata.coatflow.task": "verdict", "metadata.coatflow.stage": "migration_barrier"}):
            out = v["output"]
            stage = docs.query_one({"uuid": out["task_uuids"][0]}, sort={"index": -1})
            hops = (stage or {}).get("output", {}).get("hops", []) if stage and stage.get("output") else []
            wall = sum(h.get("wall_time") or 0 for h in hops)
            _row(out["material_id"], out["formula"], out.get("value"), out["details"].get("dimensionality", "-"),
                 wall, hops, out["status"])
    finally:
        stores.close()


def _relaxed_from_store(path: str) -> dict:
    """material_id -> structure handed on by its bulk_relax verdict in a campaign store."""
    from pymatgen.core import Structure

    from coatflow.launchers.config import CampaignConfig
    from coatflow.launchers.stores import CampaignStores

    stores = CampaignStores(CampaignConfig(store={"path": str(Path(path).resolve())})).connect()
    try:
        return {d["output"]["material_id"]: Structure.from_dict(d["output"]["structure"])
                for d in stores.jobs.docs_store.query({"metadata.coatflow.task": "verdict",
                                                       "metadata.coatflow.stage": "bulk_relax"})
                if d["output"].get("structure")}
    finally:
        stores.close()


def direct(ids: list[str], store: str | None = None, prototypes: list[str] | None = None,
           all_hops: bool = False) -> None:
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from coatflow.launchers.config import CampaignConfig
    from coatflow.makers.relax import MLIPBulkRelaxMaker
    from coatflow.workflows.candidates import load_candidates
    from coatflow.makers.registry import get_maker
    from coatflow.workflows.stages.migration_barrier import migration_summary

    config = CampaignConfig()
    stage = config.stage("migration_barrier")
    if all_hops:  # every symmetry-distinct hop up to hop_cutoff, not only the shortest max_hops
        stage = dataclasses.replace(stage, max_hops=10**6, rel_cutoff=None)
    maker = stage.neb_maker(get_maker("neb", stage.backend))
    cands = {c.material_id: c for c in load_candidates(config, None)}
    relaxed = _relaxed_from_store(store) if store else {}
    work = Path(tempfile.mkdtemp(prefix="coatflow-neb-"))
    _header()
    for mid in ids:
        c = cands.get(mid)
        if c is None and mid not in relaxed:
            raise SystemExit(f"{mid} is neither an example candidate nor relaxed in {store}")
        jstore = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        relax = MLIPBulkRelaxMaker()
        options = [] if c is None else [c.structure] if c.structure is not None else [s for p, s in c.prototypes
                                                                  if not prototypes or p in prototypes]
        best = (0.0, relaxed[mid].as_dict()) if mid in relaxed else None  # the campaign's relaxed structure
        for s in options if best is None else []:  # lowest energy per atom, as the funnel's polymorph selection
            j = relax.make(s)
            run_locally(j, store=jstore, root_dir=str(work), create_folders=True, log=False)
            doc = jstore.get_output(j.uuid)
            e = doc["output"]["energy"] / len(doc["structure"]["sites"])
            if best is None or e < best[0]:
                best = (e, doc["structure"])
        from pymatgen.core import Structure

        structure = Structure.from_dict(best[1])
        t0 = time.perf_counter()
        j = maker.make(structure, mid, summary=migration_summary)
        run_locally(j, store=jstore, root_dir=str(work), create_folders=True, log=False)
        wall = time.perf_counter() - t0
        doc = jstore.get_output(j.uuid, which="last")
        p = doc["percolation"]
        _row(mid, structure.composition.reduced_formula, p["e_m"], p["dimensionality"], wall, doc["hops"],
             f"{structure.get_space_group_info()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="campaign store folder to read")
    parser.add_argument("--direct", nargs="*", help="example candidate ids to run directly")
    parser.add_argument("--prototypes", nargs="*", help="--direct: only these prototypes of predicted candidates")
    parser.add_argument("--all-hops", action="store_true",
                        help="--direct: every symmetry-distinct hop within hop_cutoff (max_hops and rel_cutoff off)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)  # shared 2-core machine: one thread is much faster
    if args.store and args.direct is None:
        from_store(args.store)
    if args.direct is not None:
        direct(args.direct or ["ex-Li2O", "pred-LiTbO2", "pred-LiDyO2"], args.store, args.prototypes, args.all_hops)
    if not args.store and args.direct is None:
        parser.print_help()


if __name__ == "__main__":
    main()

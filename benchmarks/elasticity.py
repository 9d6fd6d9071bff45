"""CHGNet (mlip backend) G_VRH against the shipped MP DFT reference set: MAE and Spearman rank correlation.

Usage: python benchmarks/elasticity.py [N]   (N: only the first N materials)

``reference_materials`` and ``model_moduli`` are imported by ``benchmarks/shear_models.py`` (both models,
calibration, confusion at the threshold).
"""

import gzip
import json
import sys
import tempfile
import time
import warnings
from importlib.resources import files

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure
from scipy.stats import spearmanr

from coatflow.makers.elastic import MLIPElasticMaker
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.elastic import VRHModuli, vrh_moduli


def reference_materials(n: int | None = None) -> list[dict]:
    """The shipped reference set (``workflows/data/elastic_reference.json.gz``): MP id, formula, structure,
    PBE K_VRH and G_VRH (GPa); the first ``n`` only when given."""
    with gzip.open(files("coatflow.workflows").joinpath("data/elastic_reference.json.gz").open("rb"), "rt") as f:
        ref = json.load(f)["materials"]
    return ref[:n] if n else ref


def model_moduli(structure: Structure, maker=None) -> VRHModuli:
    """Run ``maker`` (default: the mlip backend's ``MLIPElasticMaker``) on ``structure`` in memory and return the
    VRH moduli of its tensor (raises AnalysisError, KeyError or TypeError when the fit gave none)."""
    flow = (maker or MLIPElasticMaker()).make(structure)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with tempfile.TemporaryDirectory() as d:
        run_locally(flow, store=store, root_dir=d, create_folders=True, log=False)
    doc = store.get_output(flow.output.uuid, load=True)
    return vrh_moduli(doc["elastic_tensor"]["ieee_format"])


def main() -> None:
    warnings.filterwarnings("ignore")
    ref = reference_materials(int(sys.argv[1]) if len(sys.argv) > 1 else None)
    dft, ml, unstable = [], [], 0
    t0 = time.perf_counter()
    for r in ref:
        try:
            m = model_moduli(Structure.from_dict(r["structure"]))
        except (AnalysisError, KeyError, TypeError) as exc:
            print(f"{r['material_id']:12s} {r['formula']:8s} failed: {exc or type(exc).__name__}")
            continue
        dft.append(r["g_vrh"])
        ml.append(m.g_vrh)
        unstable += not m.positive_definite
        print(f"{r['material_id']:12s} {r['formula']:8s} DFT {r['g_vrh']:7.1f}  CHGNet {m.g_vrh:7.1f} GPa"
              f"{'' if m.positive_definite else '  (not positive definite)'}", flush=True)
    mae = sum(abs(a - b) for a, b in zip(dft, ml)) / len(dft)
    print(f"\n{len(dft)}/{len(ref)} materials ({unstable} tensors not positive definite); MAE {mae:.1f} GPa; "
          f"Spearman rho {spearmanr(dft, ml).statistic:.3f}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

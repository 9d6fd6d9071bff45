"""G_VRH of the mlip backend's models (CHGNet, SevenNet-0) against Materials Project DFT, at the 35 GPa threshold.

Usage:
    nice -n 10 python benchmarks/shear_models.py [--set reference|mp|both] [--models chgnet,sevennet]
                                                 [--n N] [--only ID,...] [--k 5] [--threshold 35] [--results STEM]

Sets: ``reference``, the 38 bundled reference materials (``workflows/data/elastic_reference.json.gz``, MP
structures and PBE moduli); ``mp``, every Li-M-O formula of the shipped MP snapshot with an MP G_VRH, on the
lowest-energy structure of the prototype library (needs ``workflows/data/mp_snapshot.json.gz`` and
``workflows/analysis/prototypes.py``). For each model: MAE, Spearman rho, median signed error (model - DFT),
the confusion matrix of ``G_VRH >= threshold`` (model verdict against DFT verdict), and a linear calibration
``G_DFT ~ a G_model + b`` judged by k-fold cross-validation (out-of-fold MAE and confusion matrix); wall time
per model. Each material's result is saved in ``--results``'s folder as ``<name>.<model>.json`` as soon as it
is computed, so a killed run resumes where it stopped, and two runs with one model each can go side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from elasticity import model_moduli, reference_materials  # noqa: E402

from coatflow.makers.registry import get_maker  # noqa: E402
from coatflow.workflows.analysis import AnalysisError  # noqa: E402
from coatflow.workflows.analysis.shear_calibration import (  # noqa: E402
    cross_validated, linear_fit, shear_metrics)

LABELS = {"chgnet": "CHGNet", "sevennet": "SevenNet-0"}


def mp_materials() -> list[dict]:
    """Li-M-O formulas of the MP snapshot with an MP G_VRH (``stages.shear_modulus.mp_g_vrh``), each with the
    structures of every prototype that fits it (``analysis.prototypes.prototypes_for``; none: not computed)."""
    from coatflow.workflows.analysis.prototypes import prototypes_for
    from coatflow.workflows.reference_data import snapshot_ternaries
    from coatflow.workflows.stages.shear_modulus import mp_g_vrh

    out = []
    for f in snapshot_ternaries():
        if dft := mp_g_vrh(f):
            out.append({"set": "mp", "material_id": f, "formula": f, "g_vrh": dft["g_vrh_dft"],
                        "prototypes": [(name, s.as_dict()) for name, s in prototypes_for(f)]})
    return out


def lowest_polymorph(prototypes: list, model: str) -> tuple[str, Structure]:
    """The prototype whose relaxation on ``model`` ends lowest in energy per atom, and its relaxed structure."""
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    best = None
    for name, sd in prototypes:
        flow = get_maker("relax", f"mlip:{model}").make(Structure.from_dict(sd))
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        run_locally(flow, store=store, log=False)
        doc = store.get_output(flow.output.uuid)
        relaxed = Structure.from_dict(doc["structure"])
        e = doc["output"]["energy"] / len(relaxed)
        if best is None or e < best[0]:
            best = (e, name, relaxed)
    return best[1], best[2]


def compute(materials: list[dict], model: str, results: dict, path: Path) -> None:
    """G_VRH of every material on ``model`` not yet in ``results`` (saved after each one)."""
    maker = get_maker("elastic", f"mlip:{model}")
    done = results.setdefault(model, {})
    for r in materials:
        key = f"{r['set']}:{r['material_id']}"
        if key in done:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            if "prototypes" in r and not r["prototypes"]:
                raise ValueError("not computed: no prototype")
            polymorph, structure = (lowest_polymorph(r["prototypes"], model) if "prototypes" in r
                                    else (None, Structure.from_dict(r["structure"])))
            m = model_moduli(structure, maker)
            row = {"g_vrh": m.g_vrh, "k_vrh": m.k_vrh, "positive_definite": m.positive_definite,
                   **({"polymorph": polymorph} if polymorph else {})}
        except (AnalysisError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            row = {"error": str(exc) or type(exc).__name__}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row["cpu_seconds"] = round(time.process_time() - c0, 1)  # this process's CPU time: what a busy machine hides
        done[key] = row
        path.with_suffix(f".{model}.json").write_text(json.dumps(done, indent=1))
        g = f"{row['g_vrh']:7.1f}" if "g_vrh" in row else "   fail"
        print(f"{LABELS[model]:10s} {r['material_id']:12s} {r['formula']:10s} DFT {r['g_vrh']:7.1f}  model {g} GPa "
              f"{'' if row.get('positive_definite', True) else '(not positive definite) '}{row['seconds']:.0f} s",
              flush=True)


def report(materials: list[dict], models: list[str], results: dict, threshold: float, k: int, title: str) -> None:
    """Per-material table and each model's metrics over the materials every model computed."""
    def usable(model, r):
        row = results.get(model, {}).get(f"{r['set']}:{r['material_id']}", {})
        return row.get("positive_definite") and row.get("g_vrh") is not None

    common = [r for r in materials if all(usable(m, r) for m in models)]
    print(f"\n## {title}: {len(common)} of {len(materials)} materials with a positive-definite tensor from "
          f"every model ({', '.join(LABELS[m] for m in models)}); threshold {threshold} GPa")
    print(f"{'material':12s} {'formula':10s} {'DFT':>7s} " + " ".join(f"{LABELS[m]:>10s}" for m in models))
    for r in materials:
        cells = []
        for m in models:
            row = results.get(m, {}).get(f"{r['set']}:{r['material_id']}", {})
            bad = "not PD" if "g_vrh" in row else "no proto" if "no prototype" in row.get("error", "") else "fail"
            cells.append(f"{row['g_vrh']:10.1f}" if row.get("g_vrh") is not None and row.get("positive_definite")
                         else f"{bad:>10s}")
        print(f"{r['material_id']:12s} {r['formula']:10s} {r['g_vrh']:7.1f} " + " ".join(cells))
    if len(common) < max(k, 3):
        print("too few materials for metrics")
        return
    dft = np.array([r["g_vrh"] for r in common])
    for m in models:
        rows = results[m]
        g = np.array([rows[f"{r['set']}:{r['material_id']}"]["g_vrh"] for r in common])
        mine = [rows[f"{r['set']}:{r['material_id']}"] for r in materials if f"{r['set']}:{r['material_id']}" in rows]
        seconds, cpu = sum(x["seconds"] for x in mine), sum(x.get("cpu_seconds", np.nan) for x in mine)
        raw = shear_metrics(dft, g, threshold)
        a, b = linear_fit(g, dft)
        cv = shear_metrics(dft, cross_validated(dft, g, k=k), threshold)
        print(f"\n{LABELS[m]} (wall time {seconds:.0f} s, CPU time {cpu:.0f} s, over {len(mine)} materials)")
        print(f"  raw:        MAE {raw.mae:5.1f} GPa, Spearman {raw.spearman:.3f}, median signed error "
              f"{raw.median_signed_error:+.1f} GPa; {raw.confusion.text()}")
        print(f"  calibrated: G_DFT = {a:.3f} G + {b:+.1f} GPa (fit on all); {k}-fold CV: MAE {cv.mae:5.1f} GPa, "
              f"median signed error {cv.median_signed_error:+.1f} GPa; {cv.confusion.text()}")


def main() -> None:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=["reference", "mp", "both"], default="reference")
    p.add_argument("--models", default="chgnet,sevennet")
    p.add_argument("--n", type=int, default=None, help="only the first N materials of each set")
    p.add_argument("--only", default=None, help="only these material ids / formulas (comma-separated)")
    p.add_argument("--k", type=int, default=5, help="folds of the cross-validation")
    p.add_argument("--threshold", type=float, default=35.0, help="GPa")
    p.add_argument("--results", type=Path, default=Path("shear_models"), help="stem of the per-model result files")
    args = p.parse_args()
    models = [m.strip() for m in args.models.split(",")]
    results = {m: json.loads(f.read_text()) for m in models if (f := args.results.with_suffix(f".{m}.json")).exists()}
    sets = []
    if args.set in ("reference", "both"):
        sets.append(("38 reference materials (bundled, MP PBE)",
                     [{**r, "set": "reference"} for r in reference_materials(args.n)]))
    if args.set in ("mp", "both"):
        mp = mp_materials()
        built = sum(1 for r in mp if r["prototypes"])
        print(f"MP snapshot: {len(mp)} Li-M-O formulas with an MP G_VRH; {built} can be built from the prototype "
              f"library, {len(mp) - built} are not computed (no prototype)", flush=True)
        sets.append(("Li-M-O formulas of the MP snapshot with an MP G_VRH", mp[: args.n]))
    if args.only:
        keep = set(args.only.split(","))
        sets = [(t, [r for r in mats if r["material_id"] in keep or r["formula"] in keep]) for t, mats in sets]
    for _, materials in sets:
        for m in models:
            compute(materials, m, results, args.results)
    for title, materials in sets:
        report(materials, models, results, args.threshold, args.k, title)


if __name__ == "__main__":
    main()

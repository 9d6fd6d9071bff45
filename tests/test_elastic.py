"""Shear-modulus stage: CHGNet G_VRH of Li2O against the shipped MP reference value."""

import gzip
import json
from importlib.resources import files

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure

from coatflow.makers.elastic import MLIPElasticMaker
from coatflow.workflows.elastic import g_vrh_from_doc, shear_modulus_verdict


def test_li2o_shear_modulus_close_to_dft(tmp_path):
    with gzip.open(files("coatflow.workflows").joinpath("data/elastic_reference.json.gz").open("rb"), "rt") as f:
        ref = {r["material_id"]: r for r in json.load(f)["materials"]}["mp-1960"]
    flow = MLIPElasticMaker().make(Structure.from_dict(ref["structure"]))
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, root_dir=str(tmp_path), create_folders=True, log=False)
    doc = store.get_output(flow.output.uuid, load=True)
    g, k, lowest = g_vrh_from_doc(doc)
    assert lowest > 0
    assert abs(g - ref["g_vrh"]) / ref["g_vrh"] < 0.4  # CHGNet softens Li2O; DFT 68 GPa
    ident = {"material_id": "t", "formula": "Li2O"}
    r = shear_modulus_verdict.original(ident, doc, None, 35.0, "mlip", "u")
    assert r.output.status == ("passed" if g >= 35 else "failed") and r.output.value == round(g, 2)


def test_unstable_tensor_is_not_computed_rather_than_a_shear_modulus():
    import numpy as np
    from jobflow import run_locally

    voigt = np.diag([100.0, 100.0, 100.0, -5.0, 40.0, 40.0])  # one negative shear eigenvalue
    doc = {"elastic_tensor": {"ieee_format": voigt.tolist()}}
    g, k, lowest = g_vrh_from_doc(doc)
    assert lowest == -5.0
    ident = {"material_id": "x", "formula": "LiX", "source": "test", "predicted": False}
    out = run_locally(shear_modulus_verdict(ident, doc, None, 35.0, "mlip", "u"), log=False, ensure_success=True)
    result = next(iter(out.values()))[1].output
    assert result.status == "not_computed" and "not positive definite" in result.reason

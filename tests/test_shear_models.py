"""The mlip backend's two shear-modulus models, the calibration statistics, and MP's DFT G_VRH beside the model's.

SevenNet-0 loads from the checkpoint inside the sevenn wheel (a download attempt fails the test) and gives its
own G_VRH for MgO (MP reference cell, 2 atoms); the calibration code runs on rows of the bundled reference file;
the shear verdict carries the snapshot's G_VRH and the table cell shows it.
"""

import gzip
import json
from importlib.resources import files

import numpy as np
import pytest
from pymatgen.core import Structure
from scipy.stats import linregress, spearmanr

from coatflow.makers.registry import backend_problems, get_maker
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.elastic import vrh_moduli
from coatflow.workflows.analysis.shear_calibration import (
    confusion, cross_validated, fold_indices, linear_fit, shear_metrics)
from coatflow.workflows.reference_data import snapshot_row
from coatflow.workflows.schemas.stage import StageSummary
from coatflow.workflows.stages.shear_modulus import ShearModulusStage, mp_g_vrh, shear_modulus_verdict


def _reference() -> dict[str, dict]:
    with gzip.open(files("coatflow.workflows").joinpath("data/elastic_reference.json.gz").open("rb"), "rt") as f:
        return {r["material_id"]: r for r in json.load(f)["materials"]}


def _elastic_doc(backend: str, structure: Structure, tmp_path) -> dict:
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    flow = get_maker("elastic", backend).make(structure)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, root_dir=str(tmp_path), create_folders=True, log=False)
    return store.get_output(flow.output.uuid, load=True)


@pytest.fixture(scope="module")
def mgo_docs(tmp_path_factory):
    """Elastic documents of MgO (mp-1265) from CHGNet and SevenNet-0, SevenNet loaded with downloads forbidden."""
    import sevenn.util

    def no_download(*args, **kwargs):
        raise AssertionError("SevenNet tried to download its weights")

    mp = pytest.MonkeyPatch()
    mp.setattr(sevenn.util, "download_checkpoint", no_download)
    try:
        mgo = Structure.from_dict(_reference()["mp-1265"]["structure"])
        return {b: _elastic_doc(b, mgo, tmp_path_factory.mktemp(b.replace(":", "_"))) for b in ("mlip", "mlip:sevennet")}
    finally:
        mp.undo()


def test_sevennet_backend_is_checked_and_named():
    assert backend_problems("mlip:sevennet") == []
    assert "known: chgnet, sevennet" in backend_problems("mlip:mace")[0]
    assert backend_problems("vasp:sevennet")  # only mlip has models
    maker = get_maker("elastic", "mlip:sevennet")
    assert "SevenNet" in str(maker.bulk_relax_maker.force_field_name)
    assert maker.elastic_relax_maker.calculator_meta == "coatflow.makers.mlip.SevenNetCalculator"


def test_sevennet_gives_its_own_physical_g_vrh(mgo_docs):
    chgnet, seven = (vrh_moduli(mgo_docs[b]["elastic_tensor"]["ieee_format"]) for b in ("mlip", "mlip:sevennet"))
    assert seven.positive_definite and chgnet.positive_definite
    dft = _reference()["mp-1265"]["g_vrh"]
    assert 30 < seven.g_vrh < 200 and 50 < seven.k_vrh < 300  # GPa; MP PBE: G 119, K 151
    assert abs(seven.g_vrh - dft) / dft < 0.5
    assert abs(seven.g_vrh - chgnet.g_vrh) > 0.5  # a different model, not CHGNet under another name


def test_verdict_and_table_cell_show_the_mp_dft_value(mgo_docs):
    """The verdict keeps the model's value as its value and the snapshot's beside it; the note shows it."""
    doc = mgo_docs["mlip:sevennet"]
    row = snapshot_row("LiNbO3")
    dft = mp_g_vrh("LiNbO3")  # two polymorphs in MP
    assert dft == {"g_vrh_dft": row["g_vrh_crabnet"], "g_vrh_dft_polymorphs": sorted(row["g_vrh"])}
    assert len(row["g_vrh"]) > 1
    ident = {"material_id": "t", "formula": "LiNbO3"}
    r = shear_modulus_verdict.original(ident, doc, None, 35.0, "mlip:sevennet", "u", dft).output
    g = vrh_moduli(doc["elastic_tensor"]["ieee_format"]).g_vrh
    assert r.value == round(g, 2) and r.status == ("passed" if g >= 35 else "failed")
    assert r.details.g_vrh_dft == dft["g_vrh_dft"] and r.backend == "mlip:sevennet"
    summary = StageSummary(**r.model_dump(include=set(StageSummary.model_fields)))
    lo, hi = min(row["g_vrh"]), max(row["g_vrh"])
    assert ShearModulusStage.note(summary.details) == f" (DFT {row['g_vrh_crabnet']:.0f} [{lo:.0f}-{hi:.0f}])"
    # one MP value: shown as it is; no MP value: nothing shown, nothing invented
    one = next(f for f in ("Li3TaO4", "LiGaO2", "LiRuO2") if snapshot_row(f).get("g_vrh_crabnet") is None
               and len(snapshot_row(f).get("g_vrh") or []) == 1)
    assert mp_g_vrh(one) == {"g_vrh_dft": snapshot_row(one)["g_vrh"][0]}
    r1 = shear_modulus_verdict.original({**ident, "formula": one}, doc, None, 35.0, "mlip", "u", mp_g_vrh(one)).output
    assert ShearModulusStage.note(r1.details.model_dump()) == f" (DFT {snapshot_row(one)['g_vrh'][0]:.0f})"
    assert "g_vrh" not in snapshot_row("LiTbO2") and mp_g_vrh("LiTbO2") == {}
    none = shear_modulus_verdict.original(ident, doc, None, 35.0, "mlip", "u", {}).output
    assert none.details.g_vrh_dft is None and ShearModulusStage.note(none.details.model_dump()) == ""


def test_stage_names_the_model_it_runs():
    assert ShearModulusStage().calculators() == [("elastic", f"mlip:{ShearModulusStage().mlip_model}")]
    assert ShearModulusStage(mlip_model="sevennet").calculator == "mlip:sevennet"
    assert ShearModulusStage(backend="vasp", mlip_model="sevennet").calculators() == [("elastic", "vasp")]


def test_calibration_statistics_on_reference_rows():
    """Metrics, line and out-of-fold predictions on real rows: G_VRH against K_VRH of 12 reference materials."""
    rows = list(_reference().values())[:12]
    g, k = np.array([r["g_vrh"] for r in rows]), np.array([r["k_vrh"] for r in rows])
    fit = linregress(k, g)
    a, b = linear_fit(k, g)
    assert a == pytest.approx(fit.slope) and b == pytest.approx(fit.intercept)
    m = shear_metrics(g, k, 35.0)
    assert m.n == 12 and m.mae == pytest.approx(np.mean(np.abs(k - g)))
    assert m.spearman == pytest.approx(spearmanr(g, k).statistic)
    assert m.median_signed_error == pytest.approx(np.median(k - g))
    c = confusion(g, k, 35.0)
    assert c == m.confusion and c.total == 12
    assert c.both_pass == sum(x >= 35 and y >= 35 for x, y in zip(g, k))
    assert c.false_pass == sum(x < 35 <= y for x, y in zip(g, k))
    folds = fold_indices(12, 4)
    assert sorted(np.concatenate(folds)) == list(range(12)) and {len(f) for f in folds} == {3}
    cv = cross_validated(g, k, k=4)
    held = folds[0]
    rest = np.setdiff1d(np.arange(12), held)
    a0, b0 = linear_fit(k[rest], g[rest])
    assert cv[held] == pytest.approx(a0 * k[held] + b0)  # predicted by a line that never saw them
    assert not np.allclose(cv, a * k + b)
    with pytest.raises(AnalysisError):
        cross_validated(g[:3], k[:3], k=5)

"""Every stage's verdict job, called on typed inputs with no store, no planner and no calculator.

Each verdict is the job's own function (``.original``) applied to the documents a calculation would hand
it; the test checks the typed document it returns, and that a failure stops the candidate's later jobs.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Composition

from coatflow.workflows import reference_data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.schemas import (
    AdsorptionSite, BulkRelaxResult, DatabaseFilterResult, InterfacialReactionsResult, LiAdsorptionDoc,
    LiAdsorptionResult, MigrationBarrierResult, PhaseStabilityResult, ShearModulusResult, StabilityWindowResult)
from coatflow.workflows.schemas.thermo import InterfacialReactions, PairReaction
from coatflow.workflows.stages import STAGE_NAMES, STAGES
from coatflow.workflows.stages.bulk_relax import record_relaxation
from coatflow.workflows.stages.database_filter import database_filter
from coatflow.workflows.stages.interfacial_reactions import interfacial_verdict
from coatflow.workflows.stages.li_adsorption import adsorption_verdict
from coatflow.workflows.stages.migration_barrier import migration_verdict
from coatflow.workflows.stages.phase_stability import phase_stability_verdict
from coatflow.workflows.stages.shear_modulus import shear_modulus_verdict
from coatflow.workflows.stages.stability_window import stability_window_verdict

from conftest import li2o

IDENT = {"material_id": "test-Li2O", "formula": "Li2O", "source": "test", "predicted": False}
FILTER = {"band_gap_min": 0.5, "e_hull_max": 0.005, "exclude": ["toxic", "radioactive", "precious"]}


def _mp_source() -> dict:
    """MP2020 entries of Li-O (the shipped matterviz set), with Li2O's own entry as the candidate."""
    entries = thermo.in_chemsys(reference_data.matterviz_entries(), ["Li", "O"])
    li2o_entry = min((e for e in entries if e.composition.reduced_formula == "Li2O"), key=lambda e: e.energy_per_atom)
    li2o_entry.data["material_id"] = "test-Li2O"
    return {"kind": "mp", "backend": "mlip", "material_id": "test-Li2O", "entries": [e.as_dict() for e in entries]}


def test_every_stage_has_a_verdict_document_here():
    assert len(STAGES) == 9 and STAGE_NAMES[0] == "database_filter" and STAGE_NAMES[-1] == "migration_barrier"


def test_database_filter():
    s = li2o()
    ok = database_filter.original(IDENT, s.as_dict(), {}, {"band_gap": 5.0, "energy_above_hull": 0.0}, FILTER)
    assert isinstance(ok.output, DatabaseFilterResult) and ok.output.status == "passed" and not ok.stop_children
    assert ok.output.structure == s
    metal = database_filter.original(IDENT, s.as_dict(), {}, {"band_gap": 0.1, "energy_above_hull": 0.0}, FILTER)
    assert metal.output.status == "failed" and metal.stop_children
    assert metal.output.details.checks["band_gap"].status == "failed"
    toxic = database_filter.original({**IDENT, "formula": "Li2Se"}, None, {}, {}, FILTER)
    assert toxic.output.status == "failed" and "toxic Se" in toxic.output.reason


def test_bulk_relax():
    s = li2o()
    r = record_relaxation.original(IDENT, {"output": {"structure": s, "energy": -14.4}, "is_force_converged": True},
                                   "mlip", "u1")
    assert isinstance(r.output, BulkRelaxResult) and r.output.status == "passed"
    assert r.output.value == pytest.approx(-14.4 / 3) and r.output.details.nsites == 3
    bad = record_relaxation.original(IDENT, {"output": {"structure": s, "energy": -14.4},
                                             "is_force_converged": False}, "mlip", "u1")
    assert bad.output.status == "failed" and bad.stop_children


def test_phase_stability_and_window_on_mp_entries():
    src = _mp_source()
    ps = phase_stability_verdict.original(IDENT, None, {}, li2o(), 0.005, [], src)
    assert isinstance(ps.output, PhaseStabilityResult) and ps.output.status == "passed" and ps.output.value == 0
    w = stability_window_verdict.original(IDENT, None, {}, li2o(), 0.5, 2.0, src)
    assert isinstance(w.output, StabilityWindowResult)
    # Li2O is stable down to Li metal (0 V) and oxidizes to Li2O2 near 2.9 V (MP2020)
    assert w.output.details.reduction_limit == pytest.approx(0.0, abs=0.01)
    assert 2.0 < w.output.details.oxidation_limit < 3.5 and w.output.status == "passed"
    narrow = stability_window_verdict.original(IDENT, None, {}, li2o(), 0.5, 4.0, src)
    assert narrow.output.status == "failed" and narrow.stop_children
    missing = phase_stability_verdict.original(IDENT, None, {}, li2o(), 0.005, [], {**src, "error": "no MP_API_KEY"})
    assert missing.output.status == "not_computed" and missing.output.reason == "no MP_API_KEY"
    assert not missing.stop_children  # a stage that cannot be computed does not stop the funnel


def test_interfacial_reactions():
    insulating = PairReaction(status="computed", pair="Li2O | Li3PS4", reaction_energy=-0.05, products=["Li2S"],
                              product_class={"Li2S": "insulating"}, product_gaps={"Li2S": 3.4})
    metallic = PairReaction(status="computed", pair="Li2O | LiX", reaction_energy=-0.2, products=["Li9Al4"],
                            product_class={"Li9Al4": "conducting"}, product_gaps={"Li9Al4": 0.0})
    ok = interfacial_verdict.original(IDENT, InterfacialReactions(pairs={"Li2O | Li3PS4": insulating}), li2o(), 0.5)
    assert isinstance(ok.output, InterfacialReactionsResult) and ok.output.status == "passed"
    bad = interfacial_verdict.original(IDENT, InterfacialReactions(
        pairs={"Li2O | Li3PS4": insulating, "Li2O | LiX": metallic}).model_dump(), li2o(), 0.5)
    assert bad.output.status == "failed" and "Li9Al4" in bad.output.reason and bad.stop_children


def _cubic_tensor(c11, c12, c44) -> list:
    return ElasticTensor.from_voigt(np.array([[c11, c12, c12, 0, 0, 0], [c12, c11, c12, 0, 0, 0],
                                              [c12, c12, c11, 0, 0, 0], [0, 0, 0, c44, 0, 0],
                                              [0, 0, 0, 0, c44, 0], [0, 0, 0, 0, 0, c44]])).voigt.tolist()


def test_shear_modulus():
    stiff = {"elastic_tensor": {"ieee_format": _cubic_tensor(200, 40, 80)}}
    r = shear_modulus_verdict.original(IDENT, stiff, li2o(), 35.0, "mlip", "u")
    assert isinstance(r.output, ShearModulusResult) and r.output.status == "passed" and r.output.value > 35
    soft = {"elastic_tensor": {"ieee_format": _cubic_tensor(30, 10, 8)}}
    assert shear_modulus_verdict.original(IDENT, soft, li2o(), 35.0, "mlip", "u").output.status == "failed"
    unstable = {"elastic_tensor": {"ieee_format": _cubic_tensor(30, 40, 8)}}  # C11 < C12: not positive definite
    out = shear_modulus_verdict.original(IDENT, unstable, li2o(), 35.0, "mlip", "u").output
    assert out.status == "not_computed" and "positive definite" in out.reason


def test_li_adsorption():
    doc = LiAdsorptionDoc(sites=[AdsorptionSite(index=0, site_type="hollow", e_ads_ml=-1.2),
                                 AdsorptionSite(index=1, site_type="ontop", e_ads_ml=0.4)])
    r = adsorption_verdict.original(IDENT, doc, li2o(), 0.0, ["u"])
    assert isinstance(r.output, LiAdsorptionResult) and r.output.status == "passed"
    assert r.output.value == pytest.approx(-1.2) and r.output.details.site.site_type == "hollow"
    weak = LiAdsorptionDoc(sites=[AdsorptionSite(index=0, site_type="ontop", e_ads_ml=0.4)])
    assert adsorption_verdict.original(IDENT, weak, li2o(), 0.0, ["u"]).output.status == "failed"


def test_migration_barrier():
    from coatflow.workflows.analysis.hops import summarize

    graph = {"n_sites": 1, "edges": [[0, 0, [1, 0, 0], 0], [0, 0, [0, 1, 0], 0], [0, 0, [0, 0, 1], 0]]}
    hop = {"hop_label": 0, "length": 2.3, "forward_barrier": 0.9, "reverse_barrier": 0.9, "converged": True,
           "status": "converged", "n_atoms": 11}
    doc = summarize([hop], graph, [], {"hop_cutoff": 2.5})
    r = migration_verdict.original(IDENT, doc, li2o(), 0.7, "mlip", ["u"])
    assert isinstance(r.output, MigrationBarrierResult) and r.output.status == "failed" and r.stop_children
    assert r.output.value == pytest.approx(0.9) and r.output.details.dimensionality == "3D"


def test_a_verdict_document_reads_back_from_its_stored_form():
    """What the store holds (jsanitized) validates back into the typed document of its stage."""
    from monty.json import MontyDecoder, jsanitize

    r = shear_modulus_verdict.original(IDENT, {"elastic_tensor": {"ieee_format": _cubic_tensor(200, 40, 80)}},
                                       li2o(), 35.0, "mlip", "u").output
    stored = jsanitize(r, strict=True, enum_values=True)
    back = MontyDecoder().process_decoded(stored)
    assert isinstance(back, ShearModulusResult) and back.value == r.value
    assert Composition(back.formula).reduced_formula == "Li2O"

"""Charged defects and E_F(mu_Li): VASP inputs and GPAW end to end (the physics without a calculator:
tests/test_analysis_defects.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer


@pytest.fixture(scope="module")
def lif_prim():
    from coatflow.workflows.surfaces import bulk_structure

    return SpacegroupAnalyzer(bulk_structure("LiF")).get_primitive_standard_structure()


# -- VASP inputs (no VASP run) -------------------------------------------------------------------------


def test_vasp_defect_inputs(lif_prim, monkeypatch):
    """atomate2's charge-state relax: NELECT from the structure charge, ISIF=2, LVHAR; dielectric: LEPSILON.

    POTCARs are absent here, so the POTCAR object is replaced by the valence counts of MP's choices
    (Li_sv: 3 electrons, F: 7); the input set's own NELECT arithmetic is what is checked."""
    from types import SimpleNamespace

    from pymatgen.io.vasp.sets import VaspInputSet

    from coatflow.makers.defects import vasp_dielectric_maker, vasp_formation_energy_maker
    from coatflow.workflows.analysis.defects import defect_set, defect_supercell

    zval = {"Li_sv": 3, "F": 7}
    monkeypatch.setattr(VaspInputSet, "potcar", property(lambda self: [
        SimpleNamespace(element=sym.split("_")[0], nelectrons=zval[sym], symbol=sym) for sym in self.potcar_symbols]))
    gen = vasp_formation_energy_maker().defect_relax_maker.input_set_generator
    sc = lif_prim.copy()
    sc.make_supercell(2)
    for name, d, charges in defect_set(lif_prim, include=["v_Li", "Li_i"]):
        s, _ = defect_supercell(sc, d)
        for q in charges:
            s.set_charge(q)
            vis = gen.get_input_set(s, potcar_spec=True)
            incar = vis.incar
            assert sorted(str(vis["POTCAR.spec"]).split()) == ["F", "Li_sv"]
            n_li, n_f = s.composition["Li"], s.composition["F"]
            assert incar["NELECT"] == pytest.approx(3 * n_li + 7 * n_f - q), (name, q)
            assert incar["ISIF"] == 2 and incar["LVHAR"] is True
    diel = vasp_dielectric_maker().input_set_generator.get_input_set(lif_prim, potcar_spec=True).incar
    assert diel["LEPSILON"] is True and diel["IBRION"] == 8


# -- GPAW end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lif_defects_end_to_end(lif_stack):
    """coatflow run on LiF (16-atom cell, V_Li and Li_i in two charge states) and coatflow query."""
    from conftest import run_cli

    from coatflow.launchers.config import load_config
    from coatflow.launchers.stores import CampaignStores

    cfg, _ = lif_stack
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        doc = stores.jobs.query_one({"metadata.coatflow.task": "defect_thermo"}, properties=["output"])["output"]
    finally:
        stores.close()
    names = {(c["name"], c["charge"]) for c in doc["charge_states"]}
    assert names == {("v_Li", -1), ("v_Li", 0), ("Li_i", 0), ("Li_i", 1)}
    for c in doc["charge_states"]:
        assert (c["correction"] == 0) == (c["charge"] == 0)
        if c["charge"]:
            assert c["correction_metadata"]["electrostatic"] > 0
    assert doc["band_gap"] > 4  # LiF, PBE
    assert doc["dielectric_source"].startswith("gpaw")  # computed, not taken from the config
    assert 5 < np.trace(doc["dielectric"]) / 3 < 15  # LiF: exp. 9.0
    ef = [p["fermi_level"] for p in doc["fermi"]]
    mu = [p["mu_li"] for p in doc["fermi"]]
    assert mu[0] > mu[-1]  # Li-rich first
    assert ef[0] > ef[-1]  # more Li, higher E_F
    assert doc["slope_regimes"]
    q = run_cli("query", "-c", str(cfg), timeout=300)
    assert q.returncode == 0 and "LiF: E_F =" in q.stdout

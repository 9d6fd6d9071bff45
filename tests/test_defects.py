"""Charged defects and E_F(mu_Li): analytic solver cases, defect set, corrections, VASP inputs, GPAW end to end."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows import defect_thermo as dt
from coatflow.workflows.errors import CoatflowError

T = 300.0
MU = np.linspace(-3.0, 0.0, 13)


def _slopes(defects, mu_of, dos=None):
    rows = dt.fermi_vs_mu(defects, mu_of, MU, T, dos)
    return dt.slope_regimes(MU, [r["fermi_level"] for r in rows]), rows


# -- analytic solver cases -------------------------------------------------------------------------


def test_two_opposite_li_defects_slope_one():
    """V_Li^- against Li_i^+: E_F follows mu_Li one to one (dE_F/dV = -1 vs Li/Li+)."""
    v = dt.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    i = dt.ChargedDefect("Li_i", +1, 1.6, {"Li": +1})
    regimes, rows = _slopes([v, i], lambda m: {"Li": m})
    assert len(regimes) == 1 and regimes[0]["slope"] == pytest.approx(1.0, abs=1e-6)
    # at equal multiplicity the crossing of the two lines: 1 + mu - E_F = 1.6 - mu + E_F
    assert rows[-1]["fermi_level"] == pytest.approx((1.0 - 1.6) / 2 + 0.0, abs=1e-6)


def test_li_defect_against_non_li_defect_slope_half():
    """V_Li^- against F_i^+... a singly charged defect whose energy does not involve mu_Li: slope 1/2."""
    v = dt.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    o = dt.ChargedDefect("X_i", +1, 0.5, {"X": +1})
    regimes, _ = _slopes([v, o], lambda m: {"Li": m, "X": -0.2})
    assert len(regimes) == 1 and regimes[0]["slope"] == pytest.approx(0.5, abs=1e-6)


def test_li_defect_against_holes_slope_half_in_gap_one_in_band():
    """V_Li^- balanced by holes from a two-level DOS: slope 1/2 while E_F is in the gap (Boltzmann holes),
    slope 1 once E_F is below the VBM (the valence level saturates and V_Li alone follows mu_Li)."""
    dos = dt.BandDos(valence=np.array([0.0]), conduction=np.array([5.0]), weights_v=np.array([1e22]),
                     weights_c=np.array([1e22]))
    v = dt.ChargedDefect("v_Li", -1, 2.0, {"Li": -1}, 1e22)
    regimes, rows = _slopes([v], lambda m: {"Li": m}, dos)
    # holes = 1e22 exp(-E_F/kT), V_Li = 1e22 exp(-(2 + mu - E_F)/kT) -> E_F = (2 + mu)/2
    ef = np.array([r["fermi_level"] for r in rows])
    local = np.diff(ef) / np.diff(MU)
    assert local[-1] == pytest.approx(0.5, abs=1e-3) and local[0] == pytest.approx(1.0, abs=1e-3)
    assert [r["slope"] for r in regimes] == sorted([r["slope"] for r in regimes], reverse=True)
    assert rows[-1]["fermi_level"] == pytest.approx(1.0, abs=1e-4)


def test_solver_rejects_one_sided_charge_and_bad_temperature():
    v = dt.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    with pytest.raises(CoatflowError):
        dt.solve_fermi_level([v], {"Li": 0.0}, T)
    with pytest.raises(CoatflowError):
        dt.solve_fermi_level([v, dt.ChargedDefect("Li_i", 1, 1.0, {"Li": 1})], {"Li": 0.0}, -5)


def test_band_dos_needs_closed_shell():
    with pytest.raises(CoatflowError):
        dt.BandDos.from_eigenvalues([[[0.0, 1.0]]], [1.0], n_electrons=3, volume=10.0)


def test_host_dmu_binary_is_fixed_by_the_host():
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    pd = PhaseDiagram([PDEntry("Li", -1.9), PDEntry("F2", -3.6), PDEntry("LiF", -1.9 - 1.8 - 6.0)])
    d = dt.host_dmu_at(pd, Composition("LiF"), -2.0)
    assert d["Li"] + d["F"] == pytest.approx(-6.0, abs=1e-8)
    with pytest.raises(CoatflowError):
        dt.host_dmu_at(pd, Composition("LiF"), -7.0)  # dmu_F would be > 0


# -- defect set, supercells, Freysoldt ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lif_prim():
    from coatflow.workflows.surfaces import bulk_structure

    return SpacegroupAnalyzer(bulk_structure("LiF")).get_primitive_standard_structure()


def test_defect_set_charge_states(lif_prim):
    from coatflow.workflows.defects import defect_set

    got = {n: q for n, _, q in defect_set(lif_prim)}
    assert got["v_Li"] == [-1, 0] and got["Li_i"] == [0, 1] and got["v_F"] == [0, 1]
    assert got["F_Li"] == [-2, -1, 0]
    assert max(len(q) for q in got.values()) <= 3  # not -2..+2 for everything
    sub = {n for n, _, _ in defect_set(lif_prim, substitutions={"F": ["O"]})}
    assert "O_F" in sub
    with pytest.raises(CoatflowError):
        defect_set(lif_prim, include=["v_X"])
    with pytest.raises(CoatflowError):
        defect_set(lif_prim, substitutions={"O": ["N"]})


def test_supercell_same_lattice_and_frame(lif_prim):
    from coatflow.workflows.defects import defect_set, defect_supercell, image_distance, supercell_matrix

    m = supercell_matrix(lif_prim, 5.0, 16)
    sc = lif_prim.copy()
    sc.make_supercell(m)
    assert len(sc) == 16 and image_distance(sc.lattice) >= 5.0
    for name, d, _ in defect_set(lif_prim, include=["v_Li", "Li_i"]):
        s, frac = defect_supercell(sc, d)
        assert np.allclose(s.lattice.matrix, sc.lattice.matrix)
        assert len(s) == (15 if name == "v_Li" else 17)
    with pytest.raises(CoatflowError):
        supercell_matrix(lif_prim, 20.0, 16)


def test_kumagai_sign_fix_installed():
    """pymatgen-analysis-defects PR #226: EFNV defect potentials come from the defect structure."""
    from coatflow.workflows.defects import kumagai_sign_fixed

    assert kumagai_sign_fixed()


def test_freysoldt_sign_on_a_known_case():
    """A point charge in a cubic cell: the electrostatic term is the positive Madelung-type correction
    q^2 alpha / (2 eps L) (Makov-Payne leading term, 1.4 eV for q=1, eps=1, L=10 Å, alpha=2.8373),
    identical for +q and -q; with flat potentials the alignment term vanishes."""
    from pymatgen.core import Lattice, Structure

    from coatflow.workflows.defects import freysoldt
    from coatflow.workflows.schemas import DefectCalcDoc

    s = Structure(Lattice.cubic(10.0), ["Li"], [[0, 0, 0]])
    flat = {str(a): [0.0] * 40 for a in range(3)}
    doc = DefectCalcDoc(structure=s, energy=0.0, planar_potential=flat)
    mp = 2.8373 * 14.39964 / (2 * 10.0)
    for q in (1, -1):
        e, md = freysoldt(q, 1.0, doc, doc, [0, 0, 0])
        assert md["electrostatic"] == pytest.approx(mp, rel=0.05)
        assert e > 0
    other = DefectCalcDoc(structure=Structure(Lattice.cubic(10.1), ["Li"], [[0, 0, 0]]), energy=0.0,
                          planar_potential=flat)
    with pytest.raises(CoatflowError):
        freysoldt(1, 1.0, doc, other, [0, 0, 0])


# -- VASP inputs (no VASP run) -------------------------------------------------------------------------


def test_vasp_defect_inputs(lif_prim, monkeypatch):
    """atomate2's charge-state relax: NELECT from the structure charge, ISIF=2, LVHAR; dielectric: LEPSILON.

    POTCARs are absent here, so the POTCAR object is replaced by the valence counts of MP's choices
    (Li_sv: 3 electrons, F: 7); the input set's own NELECT arithmetic is what is checked."""
    from types import SimpleNamespace

    from pymatgen.io.vasp.sets import VaspInputSet

    from coatflow.makers.defects import vasp_dielectric_maker, vasp_formation_energy_maker
    from coatflow.workflows.defects import defect_set, defect_supercell

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

"""Defect thermodynamics without a calculator (workflows/analysis/defects.py): analytic charge-neutrality cases,
chemical potentials, the defect set, defect supercells, the Freysoldt correction, the dielectric input."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import defects as ad
from coatflow.workflows.analysis.supercells import image_distance

T = 300.0
MU = np.linspace(-3.0, 0.0, 13)


def _slopes(defects, mu_of, dos=None):
    rows = ad.fermi_vs_mu(defects, mu_of, MU, T, dos)
    return ad.slope_regimes(MU, [r["fermi_level"] for r in rows]), rows


# -- analytic solver cases -------------------------------------------------------------------------


def test_two_opposite_li_defects_slope_one():
    """V_Li^- against Li_i^+: E_F follows mu_Li one to one (dE_F/dV = -1 vs Li/Li+)."""
    v = ad.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    i = ad.ChargedDefect("Li_i", +1, 1.6, {"Li": +1})
    regimes, rows = _slopes([v, i], lambda m: {"Li": m})
    assert len(regimes) == 1 and regimes[0]["slope"] == pytest.approx(1.0, abs=1e-6)
    # at equal multiplicity the crossing of the two lines: 1 + mu - E_F = 1.6 - mu + E_F
    assert rows[-1]["fermi_level"] == pytest.approx((1.0 - 1.6) / 2 + 0.0, abs=1e-6)


def test_li_defect_against_non_li_defect_slope_half():
    """V_Li^- against F_i^+... a singly charged defect whose energy does not involve mu_Li: slope 1/2."""
    v = ad.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    o = ad.ChargedDefect("X_i", +1, 0.5, {"X": +1})
    regimes, _ = _slopes([v, o], lambda m: {"Li": m, "X": -0.2})
    assert len(regimes) == 1 and regimes[0]["slope"] == pytest.approx(0.5, abs=1e-6)


def test_li_defect_against_holes_slope_half_in_gap_one_in_band():
    """V_Li^- balanced by holes from a two-level DOS: slope 1/2 while E_F is in the gap (Boltzmann holes),
    slope 1 once E_F is below the VBM (the valence level saturates and V_Li alone follows mu_Li)."""
    dos = ad.BandDos(valence=np.array([0.0]), conduction=np.array([5.0]), weights_v=np.array([1e22]),
                     weights_c=np.array([1e22]))
    v = ad.ChargedDefect("v_Li", -1, 2.0, {"Li": -1}, 1e22)
    regimes, rows = _slopes([v], lambda m: {"Li": m}, dos)
    # holes = 1e22 exp(-E_F/kT), V_Li = 1e22 exp(-(2 + mu - E_F)/kT) -> E_F = (2 + mu)/2
    ef = np.array([r["fermi_level"] for r in rows])
    local = np.diff(ef) / np.diff(MU)
    assert local[-1] == pytest.approx(0.5, abs=1e-3) and local[0] == pytest.approx(1.0, abs=1e-3)
    assert [r["slope"] for r in regimes] == sorted([r["slope"] for r in regimes], reverse=True)
    assert rows[-1]["fermi_level"] == pytest.approx(1.0, abs=1e-4)


def test_solver_rejects_one_sided_charge_and_bad_temperature():
    v = ad.ChargedDefect("v_Li", -1, 1.0, {"Li": -1})
    with pytest.raises(AnalysisError):
        ad.solve_fermi_level([v], {"Li": 0.0}, T)
    with pytest.raises(AnalysisError):
        ad.solve_fermi_level([v, ad.ChargedDefect("Li_i", 1, 1.0, {"Li": 1})], {"Li": 0.0}, -5)


def test_band_dos_needs_closed_shell():
    with pytest.raises(AnalysisError):
        ad.BandDos.from_eigenvalues([[[0.0, 1.0]]], [1.0], n_electrons=3, volume=10.0)


def test_host_dmu_binary_is_fixed_by_the_host():
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    pd = PhaseDiagram([PDEntry("Li", -1.9), PDEntry("F2", -3.6), PDEntry("LiF", -1.9 - 1.8 - 6.0)])
    d = ad.host_dmu_at(pd, Composition("LiF"), -2.0)
    assert d["Li"] + d["F"] == pytest.approx(-6.0, abs=1e-8)
    with pytest.raises(AnalysisError):
        ad.host_dmu_at(pd, Composition("LiF"), -7.0)  # dmu_F would be > 0


# -- defect set, supercells, Freysoldt ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lif_prim():
    """Rock-salt LiF (a = 4.027 Å, the campaign's bulk structure), primitive standard cell."""
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.027), ["Li", "F"], [[0, 0, 0], [0.5] * 3])
    return SpacegroupAnalyzer(conv).get_primitive_standard_structure()


def test_defect_set_charge_states(lif_prim):
    got = {n: q for n, _, q in ad.defect_set(lif_prim)}
    assert got["v_Li"] == [-1, 0] and got["Li_i"] == [0, 1] and got["v_F"] == [0, 1]
    assert got["F_Li"] == [-2, -1, 0]
    assert max(len(q) for q in got.values()) <= 3  # not -2..+2 for everything
    sub = {n for n, _, _ in ad.defect_set(lif_prim, substitutions={"F": ["O"]})}
    assert "O_F" in sub
    with pytest.raises(AnalysisError):
        ad.defect_set(lif_prim, include=["v_X"])
    with pytest.raises(AnalysisError):
        ad.defect_set(lif_prim, substitutions={"O": ["N"]})


def test_supercell_same_lattice_and_frame(lif_prim):
    m = ad.defect_supercell_matrix(lif_prim, 5.0, 16)
    sc = lif_prim.copy()
    sc.make_supercell(m)
    assert len(sc) == 16 and image_distance(sc.lattice) >= 5.0
    for name, d, _ in ad.defect_set(lif_prim, include=["v_Li", "Li_i"]):
        s, frac = ad.defect_supercell(sc, d)
        assert np.allclose(s.lattice.matrix, sc.lattice.matrix)
        assert len(s) == (15 if name == "v_Li" else 17)
    with pytest.raises(AnalysisError):
        ad.defect_supercell_matrix(lif_prim, 20.0, 16)


def test_kumagai_sign_fix_installed():
    """pymatgen-analysis-defects PR #226: EFNV defect potentials come from the defect structure."""
    assert ad.kumagai_sign_fixed()


def test_freysoldt_sign_on_a_known_case():
    """A point charge in a cubic cell: the electrostatic term is the positive Madelung-type correction
    q^2 alpha / (2 eps L) (Makov-Payne leading term, 1.4 eV for q=1, eps=1, L=10 Å, alpha=2.8373),
    identical for +q and -q; with flat potentials the alignment term vanishes."""
    lattice = Lattice.cubic(10.0)
    flat = {str(a): [0.0] * 40 for a in range(3)}
    mp = 2.8373 * 14.39964 / (2 * 10.0)
    for q in (1, -1):
        e, md = ad.freysoldt_correction(q, 1.0, flat, flat, lattice, [0, 0, 0], bulk_lattice=lattice)
        assert md["electrostatic"] == pytest.approx(mp, rel=0.05)
        assert e > 0
    assert ad.freysoldt_correction(0, 1.0, flat, flat, lattice, [0, 0, 0]) == (0.0, {"electrostatic": 0.0,
                                                                                    "potential": 0.0})
    with pytest.raises(AnalysisError):
        ad.freysoldt_correction(1, 1.0, flat, flat, lattice, [0, 0, 0], bulk_lattice=Lattice.cubic(10.1))
    with pytest.raises(AnalysisError, match="grids"):
        ad.freysoldt_correction(1, 1.0, flat, {**flat, "2": [0.0] * 41}, lattice, [0, 0, 0])


# -- the dielectric input and small helpers ----------------------------------------------------------------


def test_dielectric_tensor_from_a_number_a_diagonal_or_a_tensor():
    assert np.allclose(ad.dielectric_tensor(9.0), 9.0 * np.eye(3))
    assert np.allclose(ad.dielectric_tensor([1.0, 2.0, 3.0]), np.diag([1.0, 2.0, 3.0]))
    eps = [[2.0, 0.1, 0.0], [0.1, 2.0, 0.0], [0.0, 0.0, 3.0]]
    assert np.allclose(ad.dielectric_tensor(eps), eps)
    assert ad.config_dielectric(eps, "LiF") == eps
    with pytest.raises(AnalysisError, match="positive"):
        ad.config_dielectric([1.0, -2.0, 3.0], "LiF")


def test_vbm_dn_and_negative_formation_warnings(lif_prim):
    eig = [[[-5.0, -1.0, 4.0], [-4.0, -0.5, 5.0]]]  # one spin, two k-points, 2 filled bands of 4 electrons
    assert ad.vbm_of(eig, 4.0, 1) == -0.5
    got = {n: ad.dn_of(d) for n, d, _ in ad.defect_set(lif_prim, include=["v_Li", "Li_i", "F_Li"])}
    assert got == {"v_Li": {"Li": -1}, "Li_i": {"Li": 1}, "F_Li": {"F": 1, "Li": -1}}
    v = ad.ChargedDefect("v_Li", -1, 0.2, {"Li": -1})
    rows = [{"mu_li": m, "fermi_level": 1.0, "dmu": {"Li": m}} for m in (-2.0, -1.0, 0.0)]
    # E_f = 0.2 - E_F + mu_Li: negative at mu_Li = -2, -1 (0.2 - 1 - 2, 0.2 - 1 - 1) and at 0 (-0.8)
    assert ad.negative_formation_warnings([v], rows) == [
        "E_f(v_Li -1) < 0 at the solved E_F for mu_Li in [-2.00, 0.00] eV: dilute limit broken "
        "(unconverged settings or unstable host)"]
    assert ad.negative_formation_warnings([v], rows[:0]) == []

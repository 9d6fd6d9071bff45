"""workflows/analysis/slabs.py and band_edges.py on plain pymatgen objects: slabs and their flags, layer fixing,
surface energy units, plateaus, alignment, and band edges from eigenvalues."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.core.surface import SlabGenerator

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.band_edges import band_edges
from coatflow.workflows.analysis.slabs import (EV_PER_A2_TO_J_PER_M2, aligned_band_edges, candidate_slabs,
                                               choose_surface, fix_layers, generate_slabs, in_plane_supercell,
                                               is_polar, middle_average, normal_heights, primitive_miller,
                                               slab_at_shift, surface_area, surface_energy, termination_label,
                                               vacuum_plateaus, _cells)
from coatflow.workflows.analysis.structures import guessed_oxidation_states

warnings.filterwarnings("ignore")

LIF = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.07), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _lif_slab(hkl) -> object:
    return SlabGenerator(LIF, hkl, 6.0, 10.0, center_slab=True).get_slabs()[0]


# --- polarity (the bug: Slab.is_polar on undecorated slabs is always False) ----------------------------


def test_lif_111_polar_100_not():
    oxi = guessed_oxidation_states(LIF)
    assert oxi == {"Li": 1.0, "F": -1.0}
    s111, s100 = _lif_slab((1, 1, 1)), _lif_slab((1, 0, 0))
    assert not s111.is_polar()  # pymatgen without oxidation states: every slab has zero dipole
    assert is_polar(s111, oxi) and not is_polar(s100, oxi)
    assert not s111.site_properties.get("oxidation_state") and s111[0].species_string == s111[0].specie.symbol


def test_generate_slabs_flags_lif():
    specs = generate_slabs(LIF, max_index=1, slab_thickness=6, vacuum=10)
    by_hkl = {}
    for s in specs:
        by_hkl.setdefault(s.miller_index, []).append(s)
    assert set(by_hkl) == {(1, 0, 0), (1, 1, 0), (1, 1, 1)}
    assert all(s.polar and not s.preferred and "polar" in s.flags for s in by_hkl[(1, 1, 1)])
    assert all(not s.symmetric for s in by_hkl[(1, 1, 1)]) and {s.termination for s in by_hkl[(1, 1, 1)]} == {"F/Li"}
    assert all(s.preferred and not s.flags for s in by_hkl[(1, 0, 0)] + by_hkl[(1, 1, 0)])
    for s in specs:  # c along the normal, no oxidation states on the slabs handed on
        assert np.allclose(s.slab.lattice.matrix[2][:2], 0, atol=1e-8)
        assert all(not hasattr(sp, "oxi_state") or sp.oxi_state is None for sp in s.slab.species)
    assert by_hkl[(1, 0, 0)][0].period == pytest.approx(4.07 / 2)  # one (200) plane of rock salt
    assert by_hkl[(1, 0, 0)][0].label.startswith("(100) F+Li/F+Li")


def test_generate_slabs_limits_and_errors():
    with pytest.raises(AnalysisError, match="max_atoms"):
        generate_slabs(LIF, facets=[[1, 1, 1]], slab_thickness=6, vacuum=10, max_atoms=2)
    with pytest.raises(AnalysisError, match="Miller"):
        generate_slabs(LIF, facets=[[0, 0, 0]])
    with pytest.raises(AnalysisError):
        generate_slabs(LIF, slab_thickness=0)


def test_rhombohedral_primitive_fallback():
    bi = Structure.from_spacegroup("R-3m", Lattice.hexagonal(4.54, 11.86), ["Bi"], [[0, 0, 0.2339]])
    conv, prim = _cells(bi)
    with pytest.raises(AnalysisError):  # the standard rhombohedral primitive is rotated against the hexagonal cell
        primitive_miller(conv, prim, (0, 0, 1))
    specs = generate_slabs(bi, facets=[[0, 0, 1]], slab_thickness=6, vacuum=10)
    assert specs and all(s.miller_index == (0, 0, 1) and s.stoichiometric for s in specs)


def test_primitive_miller_keeps_the_plane():
    conv, prim = _cells(LIF)
    for hkl in [(1, 0, 0), (1, 1, 0), (1, 1, 1)]:
        h = primitive_miller(conv, prim, hkl)
        n_conv = np.asarray(hkl, float) @ conv.lattice.reciprocal_lattice.matrix
        n_prim = np.asarray(h, float) @ prim.lattice.reciprocal_lattice.matrix
        assert abs(abs(n_conv @ n_prim) / np.linalg.norm(n_conv) / np.linalg.norm(n_prim) - 1) < 1e-8


def test_slab_at_shift_reproduces_a_termination_with_more_vacuum():
    spec = generate_slabs(LIF, facets=[[1, 0, 0]], slab_thickness=6, vacuum=10)[0]
    wider = slab_at_shift(LIF, spec.miller_index, spec.shift, 6, 14)
    assert len(wider) == len(spec.slab) and wider.lattice.c > spec.slab.lattice.c + 3
    assert surface_area(wider) == pytest.approx(surface_area(spec.slab))


def test_candidate_slabs_lif_and_bad_settings():
    kept, skipped = candidate_slabs(LIF, layers=1, vacuum=10.0, min_lw=4.0, max_atoms=40)
    assert {tuple(k["miller_index"]) for k in kept} == {(1, 0, 0), (1, 1, 0)}
    assert [s["reason"] for s in skipped if s["miller_index"] == [1, 1, 1]] == ["polar"]
    for k in kept:
        s = k["structure"]
        assert min(s.lattice.abc[:2]) >= 4.0 and k["nsites"] == len(s)
        free = [sd[0] for sd in s.site_properties["selective_dynamics"]]
        z = normal_heights(s)
        assert not free[int(np.argmin(z))] and free[int(np.argmax(z))]  # bottom fixed, top free
    with pytest.raises(AnalysisError):
        candidate_slabs(LIF, layers=0)
    with pytest.raises(AnalysisError):
        candidate_slabs(LIF, fix_fraction=1.0)


def test_in_plane_supercell():
    slab = _lif_slab((1, 0, 0))
    a, b = slab.lattice.abc[:2]
    n = len(slab)
    in_plane_supercell(slab, 2.5 * a)
    assert len(slab) == 9 * n if abs(a - b) < 1e-6 else len(slab) >= 3 * n


def test_termination_label():
    assert termination_label(_lif_slab((1, 0, 0))) == "F+Li/F+Li"
    assert termination_label(_lif_slab((1, 1, 1))) in ("F/Li", "Li/F")


# --- layer fixing ---------------------------------------------------------------------------------------


def test_fix_layers():
    slab = generate_slabs(LIF, facets=[[1, 0, 0]], slab_thickness=10, vacuum=10)[0].slab
    z = normal_heights(slab)
    lo, hi = int(np.argmin(z)), int(np.argmax(z))

    def free(where, fraction):
        return [sd[0] for sd in fix_layers(slab, where, fraction).site_properties["selective_dynamics"]]

    center = free("center", 0.3)
    assert not all(center) and any(center) and center[lo] and center[hi]  # surfaces stay free
    bottom = free("bottom", 0.5)
    assert not bottom[lo] and bottom[hi]
    assert sum(not f for f in bottom) == sum(zi < z.min() + 0.5 * np.ptp(z) + 1e-3 for zi in z)
    assert free("bottom", 0.0).count(False) == sum(abs(z - z.min()) < 1e-3)  # the bottom plane, even at 0
    assert all(free("none", 0.5))
    assert "selective_dynamics" not in slab.site_properties  # a copy
    with pytest.raises(AnalysisError):
        fix_layers(slab, "top")


# --- surface energy: one unit conversion ----------------------------------------------------------------


def test_surface_energy_units():
    assert EV_PER_A2_TO_J_PER_M2 == pytest.approx(16.02176634, abs=1e-12)  # 1.602176634e-19 J / 1e-20 m^2
    # 4 formula units of slab vs a 2-formula-unit bulk cell: E_slab - 2 E_bulk = 1 eV over 2 x 1 Å^2
    gamma = surface_energy(-9.0, Composition("Li4F4"), -5.0, Composition("Li2F2"), 1.0)
    assert gamma == pytest.approx(0.5 * 16.02176634)
    with pytest.raises(AnalysisError, match="stoichiometric"):
        surface_energy(-9.0, Composition("Li4F3"), -5.0, Composition("Li2F2"), 1.0)


# --- vacuum levels and alignment ------------------------------------------------------------------------


def test_plateau_detection_on_a_profile():
    height, n = 30.0, 300
    z = np.arange(n) * height / n
    profile = np.where(np.abs(z - 15) < 5, -8.0, 2.0) + 0.5 * np.exp(-np.abs(np.abs(z - 15) - 5))
    res = vacuum_plateaus(profile, height, [10.0, 20.0], min_distance=3.5)
    assert res["flat"] and res["spread"] < 0.03
    assert abs(res["levels"]["top"] - 2.0) < 0.02 and abs(res["levels"]["bottom"] - 2.0) < 0.02
    with pytest.raises(AnalysisError, match="vacuum too thin"):
        vacuum_plateaus(profile, height, [2.0, 28.0])
    assert not vacuum_plateaus(profile + 0.02 * z, height, [10.0, 20.0], tol=0.03)["flat"]  # a field in the vacuum


def test_middle_average_is_one_exact_period():
    height, period = 20.0, 2.0
    for n in (200, 203, 217):  # the window must not depend on the grid
        z = (np.arange(n) + 0.0) * height / n
        profile = np.cos(2 * np.pi * z / period) + 3.0
        assert middle_average(profile, height, [6.0, 14.0], period) == pytest.approx(3.0, abs=2e-3)
    with pytest.raises(AnalysisError, match="thinner"):
        middle_average(np.zeros(100), height, [9.5, 10.5], period)


def test_aligned_band_edges():
    out = aligned_band_edges(vacuum_level=4.0, slab_middle=-1.0, bulk_mean=-0.5, bulk_vbm=1.0, bulk_gap=6.0)
    assert out["alignment_shift"] == pytest.approx(-0.5)
    assert out["ionization_potential"] == pytest.approx(4.0 - (1.0 - 0.5))
    assert out["electron_affinity"] == pytest.approx(out["ionization_potential"] - 6.0)


def test_choose_surface():
    def doc(gamma, flat=True, symmetric=True, polar=False):
        return SimpleNamespace(surface_energy=gamma, plateau_flat=flat, symmetric=symmetric, polar=polar)

    a, b, c, d = doc(0.5), doc(0.3, symmetric=False), doc(0.1, flat=False), doc(0.2, polar=True)
    assert choose_surface([a, b, c, d]) is a  # symmetric non-polar with flat plateaus first
    assert choose_surface([b, c, d]) is d  # then any flat one
    assert choose_surface([c, doc(None)]) is None


# --- band edges -----------------------------------------------------------------------------------------


def test_band_edges_insulator_metal_and_spin():
    ins = [[[-5.0, -1.0, 2.0, 3.0], [-4.5, -1.2, 2.5, 3.5]]]  # 1 spin, 2 k-points, 2 filled bands
    e = band_edges(ins, fermi_level=0.5, n_electrons=4)
    assert (e.vbm, e.cbm, e.metallic) == (-1.0, 2.0, False) and e.gap == pytest.approx(3.0)
    metal = [[[-5.0, -0.2, 2.0], [-4.5, 0.3, 2.5]]]  # a band crosses E_F = 0: 2 below at k1, 1 at k2
    m = band_edges(metal, fermi_level=0.0, n_electrons=3)
    assert m.metallic and m.gap == 0.0 and m.vbm == -0.2 and m.cbm == 0.3
    assert band_edges(ins, 0.5, n_electrons=6).metallic  # filled bands that do not hold every electron
    spin = [[[-5.0, -1.0, 2.0]], [[-5.0, 1.5, 2.0]]]  # ferromagnetic insulator: 2 up + 1 down electrons
    s = band_edges(spin, fermi_level=1.0, n_electrons=3)
    assert not s.metallic and s.vbm == -1.0 and s.cbm == 1.5
    with pytest.raises(AnalysisError):
        band_edges([], 0.0)

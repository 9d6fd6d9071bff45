"""workflows/analysis/elastic.py on hand-made tensors and cells (plain pymatgen, no calculator)."""

import numpy as np
import pytest
from pymatgen.analysis.elasticity import Strain
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.spatial.transform import Rotation

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.elastic import shear_modulus, symmetrized_standard_cell, vrh_moduli

C11, C12, C44 = 93.0, 41.0, 32.0  # GPa, roughly CHGNet's LiF


def cubic(c11=C11, c12=C12, c44=C44) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    np.fill_diagonal(c[:3, :3], c11)
    c[3:, 3:] = np.diag([c44] * 3)
    return c


def test_vrh_moduli_of_a_cubic_tensor():
    m = vrh_moduli(cubic())
    g_v = (C11 - C12 + 3 * C44) / 5
    g_r = 5 * (C11 - C12) * C44 / (4 * C44 + 3 * (C11 - C12))
    assert m.k_vrh == pytest.approx((C11 + 2 * C12) / 3)
    assert m.g_vrh == pytest.approx((g_v + g_r) / 2)
    assert m.lowest_eigenvalue == pytest.approx(C44) and m.positive_definite
    assert shear_modulus(cubic().tolist()) == pytest.approx(m.g_vrh)


def test_a_tensor_that_is_not_positive_definite_has_no_shear_modulus():
    bad = cubic(c11=40.0, c12=41.0)  # C11 < C12: unstable against a tetragonal shear
    m = vrh_moduli(bad)
    assert not m.positive_definite and m.lowest_eigenvalue == pytest.approx(-1.0)
    with pytest.raises(AnalysisError, match="not positive definite"):
        shear_modulus(bad)
    with pytest.raises(AnalysisError, match="6x6"):
        vrh_moduli(np.eye(3))


def _lif(lattice: Lattice) -> Structure:
    return Structure(lattice, ["Li"] * 4 + ["F"] * 4,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0], [0.5, 0, 0]])


def _off_axis(structure: Structure) -> float:
    """Largest spurious component of the images of uniaxial strains under the cell's Cartesian symmetry
    operations, as atomate2's elastic fit builds them."""
    ops = SpacegroupAnalyzer(structure, symprec=0.1).get_symmetry_operations(cartesian=True)
    worst = 0.0
    for strain in (Strain.from_voigt(0.01 * np.eye(6)[i]) for i in range(6)):
        for op in ops:
            v = np.abs(strain.transform(op).voigt)
            if (v > 1e-3).sum() == 1:
                worst = max(worst, v[v < 1e-3].max())
    return worst


def test_a_rotated_cell_is_put_back_on_the_axes_with_exact_symmetry():
    """A relaxation without symmetry constraints leaves LiF ~6e-9 rad off the axes: the images of the strains
    then carry components above pymatgen's strain-state tolerance (1e-10); after the fix none are left."""
    rot = Rotation.from_rotvec([2e-9, -5e-9, 4e-9]).as_matrix()
    rotated = _lif(Lattice(Lattice.cubic(4.09).matrix @ rot.T))
    assert _off_axis(rotated) > 1e-10
    fixed = symmetrized_standard_cell(rotated)
    assert _off_axis(fixed) < 1e-15
    assert np.allclose(fixed.lattice.matrix, 4.09 * np.eye(3), rtol=0, atol=1e-12)
    assert fixed.composition == rotated.composition and len(fixed) == len(rotated)
    assert fixed.volume == pytest.approx(rotated.volume, rel=1e-12)


def test_symmetrized_cell_keeps_a_low_symmetry_cell_and_its_atoms():
    """A slightly distorted hexagonal LiCoO2-like cell: symmetry refined within symprec, same cell and sites."""
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                  [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]]).get_primitive_structure()
    noisy = Structure(Lattice(s.lattice.matrix + 1e-4 * np.arange(9).reshape(3, 3) / 9), s.species, s.frac_coords)
    fixed = symmetrized_standard_cell(noisy)
    assert len(fixed) == len(s) and fixed.composition == s.composition
    assert fixed.lattice.abc == pytest.approx(noisy.lattice.abc, abs=1e-3)
    assert SpacegroupAnalyzer(fixed, symprec=1e-5).get_space_group_symbol() == "R-3m"
    m = fixed.lattice.matrix
    assert m[0, 1] == 0 and m[2, 0] == 0 and m[2, 1] == 0  # c along z, a in the xz plane

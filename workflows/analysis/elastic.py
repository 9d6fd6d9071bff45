"""Elastic moduli from a stiffness tensor, and the cell an elastic fit needs.

Moduli are Voigt-Reuss-Hill averages (pymatgen ``ElasticTensor``), in the tensor's units (GPa for
atomate2's ``ElasticDocument``). A tensor that is not positive definite describes a mechanically unstable
crystal or a failed fit: its averages mean nothing, so :func:`vrh_moduli` reports the lowest eigenvalue
and :func:`shear_modulus` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.spacegroup.symmetrize import refine_symmetry
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.workflows.analysis import AnalysisError


@dataclass(frozen=True)
class VRHModuli:
    """Voigt-Reuss-Hill moduli of one elastic tensor (GPa)."""

    g_vrh: float  #: shear modulus, Hill average
    k_vrh: float  #: bulk modulus, Hill average
    lowest_eigenvalue: float  #: of the 6x6 Voigt matrix; <= 0: not positive definite

    @property
    def positive_definite(self) -> bool:
        return self.lowest_eigenvalue > 0


def vrh_moduli(voigt) -> VRHModuli:
    """G_VRH, K_VRH and the lowest eigenvalue of the Voigt matrix of a 6x6 stiffness tensor.

    Args:
        voigt: the 6x6 stiffness matrix in Voigt notation (e.g. an ElasticDocument's
            ``elastic_tensor.ieee_format``), or an ``ElasticTensor``.
    """
    try:
        et = voigt if isinstance(voigt, ElasticTensor) else ElasticTensor.from_voigt(np.asarray(voigt, float))
    except (ValueError, TypeError) as exc:
        raise AnalysisError(f"not a 6x6 elastic tensor ({exc})") from None
    lowest = float(np.linalg.eigvalsh(et.voigt).min())
    return VRHModuli(g_vrh=float(et.g_vrh), k_vrh=float(et.k_vrh), lowest_eigenvalue=lowest)


def shear_modulus(voigt) -> float:
    """G_VRH (GPa) of a positive-definite stiffness tensor; AnalysisError otherwise."""
    m = vrh_moduli(voigt)
    if not m.positive_definite:
        raise AnalysisError(f"elastic tensor not positive definite (lowest eigenvalue {m.lowest_eigenvalue:.3g} GPa)")
    return m.g_vrh


def symmetrized_standard_cell(structure: Structure, symprec: float = 0.1) -> Structure:
    """The same cell, with its symmetry made exact and its lattice in pymatgen's standard orientation
    (c along z, a in the xz plane), before an elastic fit.

    atomate2's elastic flow computes a few strains and adds their images under the crystal's Cartesian
    symmetry operations; pymatgen's fit then sorts strains into strain states with an absolute tolerance
    of 1e-10. A cell rotated by an angle theta off the Cartesian axes (a relaxation without symmetry
    constraints leaves one, e.g. theta ~ 6e-9 rad for CHGNet-relaxed LiF) gives the images off-axis
    components of about 2 theta * strain ~ 1e-10: they become spurious strain states, and the fit returns
    a meaningless tensor (C11 = -3.9e7 GPa). Refining the symmetry (spglib, as ASE's FixSymmetry does, which
    keeps the rotation) and then rebuilding the lattice from its parameters removes the rotation: the
    Cartesian symmetry operations are then exact and so are the images. The atoms, the cell and its
    shape are unchanged; only the orientation in space is.
    """
    atoms = AseAtomsAdaptor.get_atoms(structure)
    try:
        refine_symmetry(atoms, symprec=symprec)
    except Exception as exc:  # noqa: BLE001 - spglib finds no consistent symmetry
        raise AnalysisError(f"cannot refine the symmetry of {structure.composition.reduced_formula} ({exc})") from None
    refined = AseAtomsAdaptor.get_structure(atoms)
    lattice = Lattice.from_parameters(*refined.lattice.parameters)
    return Structure(lattice, structure.species, refined.frac_coords, site_properties=structure.site_properties)

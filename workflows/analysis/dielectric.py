"""Static dielectric tensor from its ingredients: acoustic-sum-rule fixes, the ionic part from Born charges and
Gamma force constants, and the electronic tensor from longitudinal values along six directions.

Pure numpy, unit-tested on analytic cases (tests/test_analysis_dielectric.py); the GPAW runs that produce the
ingredients are in makers/dielectric.py.
"""

from __future__ import annotations

import numpy as np

from coatflow.workflows.analysis import AnalysisError

#: e^2 in Gaussian units, eV Å (= Hartree * Bohr). With Born charges in e, masses in amu, omega^2 in
#: eV/(Å^2 amu) (force constants / mass) and the volume in Å^3, the ionic dielectric tensor is
#:   eps_ion_ab = 4 pi E2 / Omega * sum_m Zm_a Zm_b / omega_m^2
#: dimensionless (the amu cancels between Zm^2 and omega^2): 4 pi E2 = 180.95 eV Å.
E2 = 14.399645351950548
#: hbar * sqrt(eV / (Å^2 amu)) in eV; divide by ase.units.invcm for cm^-1 (= 521.47 cm^-1 per unit).
HBAR_OMEGA = 1.0545718001391127e-34 * 1e10 / np.sqrt(1.6021766208e-19 * 1.66053904e-27)
INVCM = 0.0001239841973964072  # eV


def asr_born_charges(born: np.ndarray) -> tuple[np.ndarray, float]:
    """Born charges (N, 3, 3) with the acoustic sum rule imposed (mean over atoms removed), and the
    largest violation |sum_k Z_k,ab| before the correction (e)."""
    born = np.asarray(born, float)
    total = born.sum(axis=0)
    return born - total / len(born), float(np.abs(total).max())


def asr_force_constants(fc: np.ndarray) -> np.ndarray:
    """Symmetric force constants (3N x 3N) with rigid translations projected out (exact ASR)."""
    fc = np.asarray(fc, float)
    n = len(fc) // 3
    translations = np.tile(np.eye(3), (n, 1)) / np.sqrt(n)  # orthonormal columns
    proj = np.eye(3 * n) - translations @ translations.T
    sym = 0.5 * (fc + fc.T)
    return proj @ sym @ proj


def ionic_dielectric(born: np.ndarray, force_constants: np.ndarray, masses, volume: float) -> dict:
    """Ionic dielectric tensor from Born charges (N, 3, 3; Z[k, a, b] = Omega dP_a/du_kb, e), Gamma force
    constants (3N x 3N, eV/Å^2, ASR imposed), masses (amu) and the cell volume (Å^3).

    Returns eps_ionic (3x3), omega2 (eV/(Å^2 amu), all 3N modes), frequencies (cm^-1, negative for
    imaginary), the acoustic mode indices and the mode effective charges (e/sqrt(amu)).
    """
    born = np.asarray(born, float)
    fc = np.asarray(force_constants, float)
    masses = np.asarray(masses, float)
    n = len(masses)
    if born.shape != (n, 3, 3) or fc.shape != (3 * n, 3 * n):
        raise AnalysisError(f"Born charges {born.shape} and force constants {fc.shape} do not fit {n} atoms")
    if volume <= 0 or np.any(masses <= 0):
        raise AnalysisError("cell volume and masses must be positive")
    inv_sqrt_m = np.repeat(masses ** -0.5, 3)
    dyn = fc * np.outer(inv_sqrt_m, inv_sqrt_m)
    omega2, vecs = np.linalg.eigh(0.5 * (dyn + dyn.T))
    # acoustic modes: the three with the largest weight on mass-weighted rigid translations
    trans = np.tile(np.eye(3), (n, 1)) * np.repeat(np.sqrt(masses), 3)[:, None]
    trans /= np.linalg.norm(trans, axis=0)
    weight = ((trans.T @ vecs) ** 2).sum(axis=0)
    acoustic = sorted(int(i) for i in np.argsort(weight)[-3:])
    optic = [m for m in range(3 * n) if m not in acoustic]
    # mode effective charge Zm_a = sum_kb Z[k, a, b] e_m(kb) / sqrt(m_k)
    z_flat = born.transpose(1, 0, 2).reshape(3, 3 * n)  # [a, (k, b)]
    zmode = (z_flat * inv_sqrt_m[None, :]) @ vecs  # [a, m]
    unstable = [m for m in optic if omega2[m] <= 1e-8]
    if unstable:
        raise AnalysisError(f"{len(unstable)} optical Gamma mode(s) with omega^2 <= 0: the cell is not at a "
                            "minimum (relax it first) or the force constants are too noisy")
    eps = sum(np.outer(zmode[:, m], zmode[:, m]) / omega2[m] for m in optic) * 4 * np.pi * E2 / volume
    freqs = np.sign(omega2) * HBAR_OMEGA * np.sqrt(np.abs(omega2)) / INVCM
    return {"eps_ionic": np.asarray(eps), "omega2": omega2, "frequencies": freqs, "acoustic": acoustic,
            "mode_charges": zmode.T}


def electronic_tensor_from_directions(eps_of) -> np.ndarray:
    """3x3 tensor from the longitudinal eps(d) = d.eps.d along x, y, z and the three face diagonals."""
    eps = np.diag([eps_of(v) for v in np.eye(3)])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        d = np.zeros(3)
        d[[a, b]] = 1.0
        eps[a, b] = eps[b, a] = eps_of(d) - 0.5 * (eps[a, a] + eps[b, b])
    return eps

"""Band edges and metal detection from Kohn-Sham eigenvalues, independent of the calculator.

A state counts as occupied when its eigenvalue lies at or below the Fermi level (within ``TOL``). The
system is an insulator when, for each spin, every k-point holds the same number of occupied states and
these hold all the electrons; a band crossing the Fermi level leaves different counts at different
k-points. GPAW's slab/bulk single points (makers/slab.py) and band gaps (makers/band_gap.py) use this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coatflow.workflows.analysis import AnalysisError

TOL = 1e-6  # eV: an eigenvalue this close above the Fermi level still counts as occupied


@dataclass(frozen=True)
class BandEdges:
    """VBM and CBM (eV, absolute), and whether bands cross the Fermi level."""

    vbm: float | None
    cbm: float | None
    metallic: bool

    @property
    def gap(self) -> float:
        """eV, CBM - VBM; 0 for a metal or when an edge is missing."""
        if self.metallic or self.vbm is None or self.cbm is None:
            return 0.0
        return self.cbm - self.vbm


def band_edges(eigenvalues, fermi_level: float, n_electrons: float | None = None) -> BandEdges:
    """Band edges from the eigenvalues of every spin and k-point.

    Args:
        eigenvalues: band energies (eV), nested as [spin][k-point][band] (one or two spins).
        fermi_level: eV, same zero as the eigenvalues.
        n_electrons: valence electrons in the cell; with it, occupied bands that do not hold them all also mark
            a metal (None: only the counts per k-point are compared).

    VBM is the highest eigenvalue at or below the Fermi level, CBM the lowest above it, over all k and spins.
    Each state holds 2 electrons without spin polarisation and 1 with it.
    """
    spins = [[np.asarray(e, dtype=float).ravel() for e in kpts] for kpts in eigenvalues]
    if not spins or not all(spins):
        raise AnalysisError("no eigenvalues")
    every = np.concatenate([k for kpts in spins for k in kpts])
    below, above = every[every <= fermi_level + TOL], every[every > fermi_level + TOL]
    counts = [{int((k <= fermi_level + TOL).sum()) for k in kpts} for kpts in spins]
    filled = all(len(c) == 1 for c in counts)
    if filled and n_electrons is not None:
        filled = abs(sum(next(iter(c)) for c in counts) * 2 / len(spins) - n_electrons) < 1e-6
    return BandEdges(vbm=float(below.max()) if below.size else None, cbm=float(above.min()) if above.size else None,
                     metallic=not filled)

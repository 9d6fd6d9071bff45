"""Supercell sizing: the one search both the defect and the migration stages use.

A supercell is judged by one of two sizes of its lattice:

* ``"image"``: the shortest distance between a point and its periodic images (defect cells: how far a
  charged defect sits from its images);
* ``"width"``: the smallest perpendicular width, the distance between opposite faces (migration cells: a
  hop of length d fits without meeting its own image when every width exceeds it).

``supercell_matrix`` tries ASE's ``find_optimal_cell_shape`` (near-cubic shapes) for growing numbers of
primitive cells and returns the smallest that reaches the target size; ``diagonal_supercell`` is the plain
repeat along each axis.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pymatgen.core import Lattice

from coatflow.workflows.analysis import AnalysisError

Measure = Literal["image", "width"]


def perpendicular_widths(matrix) -> list[float]:
    """Distances (Å) between opposite faces of the cell spanned by the rows of ``matrix``."""
    m = np.asarray(matrix, dtype=float)
    vol = abs(np.linalg.det(m))
    return [float(vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3]))) for i in range(3)]


def image_distance(lattice: Lattice) -> float:
    """Shortest distance (Å) between a point and its periodic images."""
    m = lattice.get_lll_reduced_lattice().matrix
    r = range(-1, 2)
    return float(min(np.linalg.norm(np.array([i, j, k]) @ m) for i in r for j in r for k in r if any((i, j, k))))


def cell_size(matrix, measure: Measure) -> float:
    """The size (Å) of the cell spanned by the rows of ``matrix``: its image distance or smallest width."""
    if measure == "image":
        return image_distance(Lattice(matrix))
    if measure == "width":
        return min(perpendicular_widths(matrix))
    raise AnalysisError(f"unknown supercell measure '{measure}' (image or width)")


def diagonal_supercell(lattice: Lattice, min_size: float) -> list[int]:
    """Repeats per axis so that every perpendicular width of the supercell is >= ``min_size`` Å."""
    return [max(1, math.ceil(min_size / w - 1e-6)) for w in perpendicular_widths(lattice.matrix)]


def supercell_matrix(lattice: Lattice, min_size: float, max_cells: int, measure: Measure = "image",
                     targets: tuple[str, ...] = ("sc", "fcc")) -> np.ndarray | None:
    """Integer matrix of the smallest near-cubic supercell of ``lattice`` whose ``measure`` is >= ``min_size`` Å,
    with at most ``max_cells`` primitive cells; None when none fits.

    For each number of cells, every ``targets`` shape of ASE's ``find_optimal_cell_shape`` is tried; among those
    of the smallest size that fit, the one with the largest ``measure`` is taken.
    """
    from ase.build import find_optimal_cell_shape

    if min_size <= 0:
        raise AnalysisError(f"the minimum supercell size must be positive, got {min_size} Å")
    m = lattice.matrix
    # no lattice reaches the size below this volume: width w needs V >= w^3; image distance d needs
    # V >= d^3 / sqrt(2) (fcc, the densest lattice packing)
    bound = (min_size - 1e-6) ** 3 / (1.0 if measure == "width" else math.sqrt(2.0))
    n0 = max(1, math.ceil(bound / lattice.volume - 1e-6))
    for n in range(n0, max_cells + 1):
        best = None
        for target in targets:
            try:
                p = np.rint(find_optimal_cell_shape(m, n, target, verbose=False)).astype(int)
            except Exception:  # noqa: BLE001 - ASE found no shape of this size
                continue
            if round(abs(np.linalg.det(p))) != n:
                continue
            size = cell_size(p @ m, measure)
            if size >= min_size - 1e-6 and (best is None or size > best[0]):
                best = (size, p)
        if best is not None:
            return best[1]
    return None

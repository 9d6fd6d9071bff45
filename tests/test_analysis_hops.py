"""Li migration geometry and percolation (workflows/analysis/hops.py, analysis/supercells.py): hand-built hop
graphs, Li2O hops and endpoint checks, the stage document and the verdict's decision, on plain pymatgen objects."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import hops as hp
from coatflow.workflows.analysis.supercells import (diagonal_supercell, image_distance, perpendicular_widths,
                                                     supercell_matrix)

X, Y, Z = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def li2o_cubic(a: float = 4.65) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])


# -- percolation --------------------------------------------------------------------------------

def test_percolation_1d_channel():
    # one site; a cheap hop along z only, an expensive one along x
    edges = [(0, 0, Z, 0), (0, 0, X, 1)]
    p = hp.percolation(1, edges, {0: 0.3, 1: 0.9})
    assert p["e_m"] == 0.3 and p["dimensionality"] == "1D" and p["limiting_hop"] == 0
    assert [(o["barrier"], o["dimensionality"]) for o in p["onsets"]] == [(0.3, "1D"), (0.9, "2D")]


def test_percolation_3d_network():
    edges = [(0, 0, X, 0), (0, 0, Y, 0), (0, 0, Z, 0)]
    p = hp.percolation(1, edges, {0: 0.25})
    assert p["e_m"] == 0.25 and p["dimensionality"] == "3D"


def test_percolation_blocked_until_high_hop_opens():
    # two sites joined inside the cell by a low hop (a closed dimer, 0D); only the high inter-cell hop
    # connects dimers, so transport starts at the high barrier
    edges = [(0, 1, (0, 0, 0), 0), (1, 0, X, 1), (1, 0, Y, 1), (1, 0, Z, 1)]
    p = hp.percolation(2, edges, {0: 0.1, 1: 0.55})
    assert p["e_m"] == 0.55 and p["dimensionality"] == "3D" and p["limiting_hop"] == 1
    assert hp.periodic_dimensionality(2, [(0, 1, (0, 0, 0))]) == 0


def test_percolation_asymmetric_hop_counts_with_larger_direction():
    edges = [(0, 1, (0, 0, 0), 0), (1, 0, Z, 0)]  # A-B-A'-B' chain along z
    p = hp.percolation(2, edges, {0: (0.2, 0.45)})
    assert p["e_m"] == 0.45 and p["dimensionality"] == "1D"


def test_percolation_2d_and_unknown_barriers():
    edges = [(0, 0, X, 0), (0, 0, Y, 0), (0, 0, Z, 1)]
    assert hp.percolation(1, edges, {0: 0.4})["dimensionality"] == "2D"
    # hop 0 without a barrier (e.g. unconverged) is blocked: only the z channel remains
    p = hp.percolation(1, edges, {0: None, 1: 0.6})
    assert p["e_m"] == 0.6 and p["dimensionality"] == "1D"
    assert hp.percolation(1, edges, {})["e_m"] is None


def test_hops_to_confirm():
    rows = [{"hop_label": 0, "barrier": 0.3}, {"hop_label": 1, "barrier": 0.65}, {"hop_label": 2, "barrier": 1.2},
            {"hop_label": 3, "barrier": None}]
    assert hp.hops_to_confirm(rows, 0.3, 0.7, margin=0.1) == [0, 1]


# -- hop enumeration and endpoints ----------------------------------------------------------------

def test_li2o_hops_and_endpoint_checks():
    hops, graph, skipped = hp.plan_hops(li2o_cubic(), "Li", cutoff=3.5, min_size=8.0, max_atoms=200, max_hops=4)
    assert [round(h["hop"]["length"], 2) for h in hops] == [2.33, 3.29]  # a/2 and a/sqrt(2)
    assert not skipped and graph["n_sites"] == 2
    for h in hops:
        start, end, hop = h["start"], h["end"], h["hop"]
        assert len(start) == len(end) == hop["n_host"] - 1
        assert min(perpendicular_widths(start.lattice.matrix)) >= 8.0
        k = hop["moving_index"]
        assert start[k].species_string == "Li"
        assert start[k].distance(end[k]) == pytest.approx(hop["length"], abs=1e-3)
    # percolation graph: the a/2 hop alone connects the simple-cubic Li sublattice in 3D
    short = hops[0]["hop"]["label"]
    assert hp.percolation(graph["n_sites"], graph["edges"], {short: 0.3})["dimensionality"] == "3D"
    # rel_cutoff keeps the a/2 hop and lists the a/sqrt(2) one as skipped
    hops, _, skipped = hp.plan_hops(li2o_cubic(), "Li", cutoff=3.5, min_size=4.5, rel_cutoff=1.3)
    assert len(hops) == 1 and [round(s["length"], 2) for s in skipped] == [3.29]
    assert "rel_cutoff" in skipped[0]["reason"]


def test_endpoint_checks_catch_extra_atom_and_lost_ion():
    hops, _, _ = hp.plan_hops(li2o_cubic(), "Li", cutoff=2.5, min_size=4.5)
    h = hops[0]
    start, end, hop = h["start"], h["end"], h["hop"]
    extra = end.copy()
    extra.append("Li", [0.51, 0.49, 0.02])  # pymatgen-analysis-diffusion #436: an extra atom
    with pytest.raises(AnalysisError, match="atoms"):
        hp.check_endpoints(start, extra, hop)
    lost = start.copy()
    lost.replace(hop["moving_index"], "O")  # the moving ion is gone
    with pytest.raises(AnalysisError):
        hp.check_endpoints(lost, end, hop)


def test_bad_inputs():
    with pytest.raises(AnalysisError, match="no Li"):
        hp.plan_hops(Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]))
    with pytest.raises(AnalysisError, match="Structure"):
        hp.plan_hops("Li2O")
    with pytest.raises(AnalysisError, match="too small"):
        hp.vacancy_endpoints(li2o_cubic(), {"label": 0, "ipos": [0.25] * 3, "epos": [1.25, 0.25, 0.25],
                                             "length": 4.65}, [1, 1, 1])


# -- supercell sizing ----------------------------------------------------------------------------------

def test_supercell_sizes_by_width_and_by_image_distance():
    fcc = Lattice.from_parameters(3.0, 3.0, 3.0, 60, 60, 60)  # primitive fcc, a_conv = 4.24 Å
    assert perpendicular_widths(np.eye(3) * 2.0) == pytest.approx([2.0, 2.0, 2.0])
    assert image_distance(fcc) == pytest.approx(3.0)
    # the conventional cube (4 cells) has widths 4.24 Å: the smallest cell with every width >= 4 Å
    m = supercell_matrix(fcc, 4.0, 10, measure="width", targets=("sc",))
    assert round(abs(np.linalg.det(m))) == 4 and min(perpendicular_widths(m @ fcc.matrix)) >= 4.0
    # by image distance (primitive cell: images 3 Å apart) 4 Å needs more cells; no 3-cell shape reaches it
    big = supercell_matrix(fcc, 4.0, 10, targets=("sc",))
    assert round(abs(np.linalg.det(big))) == 4 and image_distance(Lattice(big @ fcc.matrix)) >= 4.0
    assert supercell_matrix(fcc, 20.0, 10) is None
    assert diagonal_supercell(Lattice.cubic(4.65), 8.0) == [2, 2, 2]
    with pytest.raises(AnalysisError):
        supercell_matrix(fcc, 0.0, 10)


def test_host_cell_prefers_a_near_cubic_shape_to_the_diagonal_repeat():
    prim, m = hp.host_cell(li2o_cubic(), 4.5)
    assert len(prim) == 3 and round(abs(np.linalg.det(m))) == 4  # the 12-atom conventional cube, not 2x2x2
    assert min(perpendicular_widths(np.array(m) @ prim.lattice.matrix)) >= 4.5


# -- the stage document and the verdict ----------------------------------------------------------------

CUBE = {"n_sites": 1, "edges": [[0, 0, list(X), 0], [0, 0, list(Y), 0], [0, 0, list(Z), 1]]}


def _hop(label, fwd, rev=None, converged=True, **extra):
    return {"hop_label": label, "length": 2.3 + label, "forward_barrier": fwd,
            "reverse_barrier": fwd if rev is None else rev, "converged": converged,
            "status": "converged" if converged else "unconverged", "n_atoms": 11, "images": ["dropped"], **extra}


def _summary(rows, skipped=()):
    return hp.summarize(rows, CUBE, list(skipped), {"hop_cutoff": 4.0})


def test_summary_uses_converged_hops_and_the_larger_direction():
    s = _summary([_hop(0, 0.2, 0.35), _hop(1, 0.3, converged=False)])
    assert [r["barrier"] for r in s["hops"]] == [0.35, 0.3] and "images" not in s["hops"][0]
    assert s["percolation"]["e_m"] == 0.35 and s["percolation"]["dimensionality"] == "2D"
    # counting the unconverged z hop too, a 1D channel opens lower
    assert s["percolation_all_hops"]["e_m"] == 0.3 and s["percolation_all_hops"]["dimensionality"] == "1D"
    assert s["unconverged"] == [1]


def test_decision_pass_fail_and_not_computed():
    passed = hp.migration_decision(_summary([_hop(0, 0.3), _hop(1, 0.65)]), 0.7)
    assert (passed["status"], passed["value"], passed["unit"]) == ("passed", 0.3, "eV")
    assert passed["details"]["dimensionality"] == "2D" and passed["details"]["confirm_with_dft"] == [0, 1]
    assert passed["reason"] is None
    failed = hp.migration_decision(_summary([_hop(0, 0.9), _hop(1, 0.9)]), 0.7)
    assert failed["status"] == "failed" and failed["reason"] == "E_m = 0.90 eV >= 0.7 eV"
    # a fail while a hop is unconverged is not a fail: that hop could open a lower path
    open_ = hp.migration_decision(_summary([_hop(0, 0.9), _hop(1, None, converged=False)]), 0.7)
    assert open_["status"] == "not_computed" and open_["reason"].startswith("CI-NEB unconverged for hop(s) 1")
    none = hp.migration_decision(_summary([], skipped=[{"label": 0, "length": 3.3, "reason": "x"}]), 0.7)
    assert none["status"] == "not_computed" and none["value"] is None
    assert none["reason"] == ("hops up to 4.0 Å (some skipped) do not percolate; "
                              "raise migration_barrier.hop_cutoff / max_hops")
    vasp = hp.migration_decision(_summary([_hop(0, None, converged=False, status="inputs_written",
                                                   inputs_dir="/w/neb_hop0")]), 0.7)
    assert vasp["status"] == "not_computed" and vasp["reason"].startswith("VASP NEB inputs written (/w/neb_hop0)")
    assert hp.migration_decision(None, 0.7) == {"status": "not_computed", "value": None, "unit": None,
                                                  "reason": "no migration result", "details": {}}
    for d in (failed, open_, none, vasp):
        assert not d["reason"].startswith("not computed")

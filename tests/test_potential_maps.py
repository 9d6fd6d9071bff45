"""Interface potential model (workflows/analysis/interface_potential.py) and cathode voltages
(workflows/analysis/cathode.py) on hand-made inputs with known answers; the Li | LiF | LiCoO2 stack end to end."""

import numpy as np
import pytest
from conftest import run_cli
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from coatflow.launchers.config import load_config
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.cathode import cathode_kind, delithiated, host_of, ocv_at, voltage_profile
from coatflow.workflows.analysis.interface_potential import (
    Cathode, Electrolyte, classify_barrier, stack_potentials, tabulated_fermi_level)
from coatflow.workflows.cathode import cathode_voltages
from coatflow.workflows.surfaces import bulk_structure

PSI_LI = 2.9  # eV, Li work function


def _se(slope, window=(0.0, 5.0), e0=3.0, ip=6.0, gap=6.0, formula="SE"):
    """E_F = e0 + slope * mu_Li; slope +1 in mu_Li is slope -1 against the voltage U = -mu_Li/e."""
    return Electrolyte(formula, ip, gap, window[0], window[1], lambda mu: e0 + slope * mu)


def _inside(result, key):
    return np.array([v for v, r in zip(result["profile"][key], result["profile"]["region"]) if r == "electrolyte"])


def test_flat_band_case_keeps_phi_and_vbm_constant_across_the_electrolyte():
    res = stack_potentials(PSI_LI, _se(slope=1.0), Cathode("C", 0.0, ocv=4.0, work_function=5.5))
    phi, vbm, mu = _inside(res, "phi"), _inside(res, "vbm"), _inside(res, "mu_li")
    assert mu.max() == pytest.approx(0.0) and mu.min() == pytest.approx(-4.0)  # whole drop inside the window
    assert np.ptp(phi) == pytest.approx(0.0, abs=1e-12) and np.ptp(vbm) == pytest.approx(0.0, abs=1e-12)
    assert phi[0] == pytest.approx(3.0 - 6.0 + PSI_LI)  # E_F - IP + psi_a - mu_Li at mu_Li = 0
    assert vbm[0] == pytest.approx(-3.0)
    assert res["delta_phi_anode"] == pytest.approx(-0.1)
    # cathode: phi_c = psi_a - W_c + OCV = 1.4 V
    assert res["phi_cathode"] == pytest.approx(PSI_LI - 5.5 + 4.0)
    assert res["delta_phi_cathode"] == pytest.approx(1.4 - (-0.1))
    assert res["grey_anode"] == 0 and res["grey_cathode"] == 0


def test_sloped_case_half_slope_tilts_phi_and_bands():
    res = stack_potentials(PSI_LI, _se(slope=0.5), Cathode("C", 0.0, ocv=4.0, work_function=5.5))
    phi, vbm, mu = _inside(res, "phi"), _inside(res, "vbm"), _inside(res, "mu_li")
    assert np.polyfit(mu, phi, 1)[0] == pytest.approx(-0.5)  # d(e phi)/d mu_Li = dE_F/dmu - 1
    assert np.polyfit(mu, vbm, 1)[0] == pytest.approx(0.5)  # dVBM/dmu_Li = 1 - dE_F/dmu
    assert res["phi_electrolyte_cathode"] - res["phi_electrolyte_anode"] == pytest.approx(2.0)
    assert np.allclose(_inside(res, "cbm") - vbm, 6.0)


def test_sign_conventions_for_charge_and_discharge():
    assert classify_barrier(0.05) == "barrier-less"
    assert classify_barrier(-0.05) == "barrier-less"
    assert classify_barrier(0.3) == "low barrier to discharge"
    assert classify_barrier(-0.3) == "low barrier to charge"
    assert classify_barrier(0.9) == "high barrier to discharge"
    assert classify_barrier(-0.9, low=0.1, high=1.0) == "low barrier to charge"
    # a higher cathode work function lowers phi_cathode: Li+ entering the cathode then runs downhill on discharge
    lo = stack_potentials(PSI_LI, _se(1.0), Cathode("C", 0.0, 4.0, work_function=5.0))
    hi = stack_potentials(PSI_LI, _se(1.0), Cathode("C", 0.0, 4.0, work_function=7.5))
    assert lo["delta_phi_cathode"] - hi["delta_phi_cathode"] == pytest.approx(2.5)
    assert hi["delta_phi_cathode"] < 0 and hi["barrier_cathode"].endswith("charge")


# Swift et al.'s stability windows (V vs Li/Li+) and a 4.0 V cathode
SWIFT_WINDOWS = {"LiPON": (0.68, 2.64), "Li3PO4": (0.69, 4.21), "LLZO": (0.00, 2.91), "Li3PS4": (1.74, 2.32)}


@pytest.mark.parametrize("name", SWIFT_WINDOWS)
def test_out_of_window_drop_lies_at_the_interfaces(name):
    red, ox = SWIFT_WINDOWS[name]
    ocv = 4.0
    res = stack_potentials(PSI_LI, _se(1.0, (red, ox), formula=name), Cathode("C", 0.0, ocv, 5.5), n_points=401)
    assert res["grey_anode"] == pytest.approx(red)
    assert res["grey_cathode"] == pytest.approx(max(0.0, ocv - ox))
    assert res["grey_anode"] + res["grey_cathode"] + (res["mu_li_electrolyte"][0] - res["mu_li_electrolyte"][1]) \
        == pytest.approx(ocv)
    prof = res["profile"]
    anode = [-m for m, r in zip(prof["mu_li"], prof["region"]) if r == "anode interface"]
    cathode = [-m for m, r in zip(prof["mu_li"], prof["region"]) if r == "cathode interface"]
    if red > 0:  # grey band on the map spans 0 ... red (V), exclusive of the window edge
        assert min(anode) == pytest.approx(0.0) and max(anode) < red <= max(anode) + 4.0 / 400 + 1e-9
    else:
        assert anode == []
    if ocv > ox:
        assert max(cathode) == pytest.approx(ocv) and min(cathode) > ox
    window = [-m for m, r in zip(prof["mu_li"], prof["region"]) if r == "electrolyte"]
    assert min(window) == pytest.approx(red) and max(window) == pytest.approx(min(ox, ocv))


def test_li3ps4_like_electrolyte_is_flagged_as_reduced_by_li():
    # window 1.74-2.32 V; E_F pinned near the CBM (n-type when Li-rich): CBM ends up below the Li Fermi level
    se = _se(1.0, SWIFT_WINDOWS["Li3PS4"], e0=4.0, gap=2.5, formula="Li3PS4")
    res = stack_potentials(PSI_LI, se, Cathode("C", 0.0, 4.0, 5.5))
    assert res["band_edges"]["anode_side"]["cbm"] < 0
    assert any("reduced by Li" in f for f in res["flags"])
    ok = stack_potentials(PSI_LI, _se(1.0, (0.0, 5.0), e0=2.0, gap=6.0), Cathode("C", 0.0, 4.0, 5.5))
    assert not any("reduced" in f for f in ok["flags"])


def test_tabulated_fermi_level_interpolates_and_refuses_to_extrapolate():
    ef = tabulated_fermi_level([0.0, -1.0, -2.0], [3.0, 2.0, 1.5], "X")
    assert ef(-0.5) == pytest.approx(2.5) and ef(-1.5) == pytest.approx(1.75)
    with pytest.raises(AnalysisError, match="computed for mu_Li"):
        ef(-3.0)
    with pytest.raises(AnalysisError, match="window"):
        _se(1.0, (3.0, 1.0))


# -- cathode voltages (workflows/analysis/cathode.py) ------------------------------------------------------


def test_voltage_hull_steps_and_ocv_by_state_of_charge():
    mu_li = -2.0
    # E(x) per host unit: x = 0, 0.5, 1 on the hull; a second x = 0.5 ordering above it
    points = [(0.0, 0.0), (0.5, -3.0), (0.5, -2.5), (1.0, -5.0)]
    profile = voltage_profile(points, mu_li, "CoO2")
    steps = profile.steps
    assert profile.on_hull == [True, True, False, True]
    assert [(s["x_low"], s["x_high"]) for s in steps] == [(0.0, 0.5), (0.5, 1.0)]
    # V = -[E(hi) - E(lo) - (hi - lo) mu_Li] / (hi - lo)
    assert steps[0]["voltage"] == pytest.approx(-(-3.0 - 0.0 + 0.5 * 2.0) / 0.5)  # 0 -> 0.5: 4.0 V
    assert steps[1]["voltage"] == pytest.approx(-(-5.0 + 3.0 + 0.5 * 2.0) / 0.5)  # 0.5 -> 1: 2.0 V
    assert ocv_at(steps, 1.0) == pytest.approx(2.0)  # 0 % charged: the Li-rich step is being emptied
    assert ocv_at(steps, 0.5) == pytest.approx(4.0)  # 50 %
    assert ocv_at(steps, 0.0) == pytest.approx(4.0)  # fully charged: the last step
    # an intermediate above the hull is skipped: one step 0 -> 1 at the average voltage
    profile = voltage_profile([(0.0, 0.0), (0.5, -1.0), (1.0, -5.0)], mu_li, "CoO2")
    assert profile.on_hull == [True, False, True] and len(profile.steps) == 1
    assert profile.steps[0]["voltage"] == pytest.approx(3.0) and profile.average_voltage == pytest.approx(3.0)
    with pytest.raises(AnalysisError, match="two Li contents"):
        voltage_profile([(1.0, -5.0)], mu_li, "CoO2")


def test_delithiated_cells_of_a_layered_cathode():
    lco = bulk_structure("LiCoO2")
    assert cathode_kind(lco) == "layered"
    assert cathode_kind(bulk_structure("LiMn2O4")) == "spinel"
    host, x_max = host_of(lco)
    assert host.reduced_formula == "CoO2" and x_max == 1
    half = delithiated(lco, 0.5)
    assert half and all(s.composition.reduced_formula == "Li(CoO2)2" for s in half)
    assert not any(StructureMatcher().fit(a, b) for i, a in enumerate(half) for b in half[i + 1:])
    empty = delithiated(lco, 1.0)
    assert empty[0].composition.reduced_formula == "CoO2"
    with pytest.raises(AnalysisError, match="fraction"):
        delithiated(lco, 1.5)


def test_cathode_voltages_job_from_stored_relax_documents():
    """The job on stored (dict) relax outputs: energies per host formula unit E(x) = -5x (x = 1), -3 (x = 1/2),
    0 (x = 0) and bcc Li at -2 eV/atom give steps of 2 V (1 -> 1/2) and 4 V (1/2 -> 0), average 3 V."""
    lco = bulk_structure("LiCoO2")
    energy_per_fu = {0.0: 0.0, 0.5: -3.0, 1.0: -5.0}

    def doc(structure, energy):
        return {"structure": structure.as_dict(), "output": {"energy": energy}}

    relaxed = {}
    for frac in (0.0, 0.5, 1.0):
        cells = delithiated(lco, frac, max_structures=1)
        relaxed[str(frac)] = [doc(c, energy_per_fu[1 - frac] * c.composition["Co"]) for c in cells]
    li = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.44), ["Li"], [[0, 0, 0]])
    out = cathode_voltages.original({"material_id": "c", "formula": "LiCoO2"}, relaxed, doc(li, -2.0 * len(li)),
                                    [0.0, 0.5], "layered", "mlip", [])
    assert out.host == "CoO2" and out.x_max == 1 and out.mu_li == pytest.approx(-2.0)
    assert [s["voltage"] for s in out.steps] == pytest.approx([4.0, 2.0])
    assert [s["ocv"] for s in out.states] == pytest.approx([2.0, 4.0])
    assert out.average_voltage == pytest.approx(3.0) and all(p["on_hull"] for p in out.points)


# -- end to end: Li | LiF | LiCoO2 on GPAW (slabs, defects) and CHGNet (voltages) ---------------------------


@pytest.mark.slow
def test_lif_licoo2_stack_end_to_end(lif_stack):
    cfg, run = lif_stack
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        maps = list(stores.maps.query({}))
        n_jobs = stores.jobs.docs_store.count()
        surfaces = {d["output"]["formula"]: d for d in stores.jobs.query(
            {"metadata.coatflow.task": "surface_summary"}, properties=["output", "uuid"])}
        defects = stores.jobs.query_one({"metadata.coatflow.task": "defect_thermo"}, properties=["output", "uuid"])
    finally:
        stores.close()
    assert {(m["electrolyte"], m["cathode"], m["state_of_charge"]) for m in maps} == \
        {("LiF", "LiCoO2", 0.0), ("LiF", "LiCoO2", 0.5)}  # layered: 0 and 50 % delithiated
    assert 2.5 < surfaces["Li"]["output"]["work_function"] < 4.0  # 2-atom CI slab (converged: docs/slab.md)
    for m in maps:
        # every input is the stored number, traceable to its job
        assert m["inputs"]["li_work_function"]["uuid"] == surfaces["Li"]["uuid"]
        assert m["inputs"]["electrolyte_ip"]["value"] == surfaces["LiF"]["output"]["ionization_potential"]
        assert m["inputs"]["electrolyte_defects"]["uuid"] == defects["uuid"]
        assert 2.5 < m["ocv"] < 5.0  # LiCoO2 vs Li
        # LiF's window (0 to > 5 V) holds the whole mu_Li drop: no grey region, no reduction by Li
        assert m["grey_anode"] == pytest.approx(0.0) and m["grey_cathode"] == pytest.approx(0.0)
        assert not any("reduced by Li" in f for f in m["flags"])
        assert m["delta_phi_anode"] == pytest.approx(m["phi"]["electrolyte_anode"])
        assert m["delta_phi_cathode"] == pytest.approx(m["phi"]["cathode"] - m["phi"]["electrolyte_cathode"])
        prof = m["profile"]
        assert prof["mu_li"][0] == 0 and prof["mu_li"][-1] == pytest.approx(-m["ocv"])
        assert all(r == "electrolyte" for r in prof["region"])
    q = run_cli("query", "--maps", "-c", str(cfg), timeout=300)
    assert q.returncode == 0 and "LiF" in q.stdout and "LiCoO2" in q.stdout and "dphi_a" in q.stdout
    again = run_cli("run", "-c", str(cfg))  # everything stored: no job runs, no document is added
    assert again.returncode == 0 and "ran 0 jobs" in again.stderr
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        assert stores.jobs.docs_store.count() == n_jobs and stores.maps.count() == 2
    finally:
        stores.close()

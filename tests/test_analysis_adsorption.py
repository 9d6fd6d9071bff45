"""workflows/analysis/adsorption_sites.py and structures.py on plain pymatgen objects: sites, outcome checks,
E_ads and the li_adsorption decision, without a calculator or a store."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.workflows.analysis.adsorption_sites import (NO_PHYSICAL_SITE, adsorption_decision, adsorption_energy,
                                                          adslab, check_outcome, coordination, enumerate_sites,
                                                          lowest_physical_site, relaxed_site)
from coatflow.workflows.analysis.slabs import candidate_slabs, normal_heights
from coatflow.workflows.analysis.structures import LI_BCC_A, bcc_li, guessed_oxidation_states, isolated_li

warnings.filterwarnings("ignore")

LIF = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.07), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def lif100():
    kept, _ = candidate_slabs(LIF, layers=1, vacuum=10.0, min_lw=4.0, max_atoms=40)
    return next(k["structure"] for k in kept if k["miller_index"] == [1, 0, 0])


def test_reference_structures():
    li = bcc_li()
    assert LI_BCC_A == 3.51 and li.lattice.abc == pytest.approx((3.51, 3.51, 3.51)) and len(li) == 2
    assert SpacegroupAnalyzer(li).get_space_group_symbol() == "Im-3m"
    atom = isolated_li(12.0)
    assert len(atom) == 1 and atom.lattice.a == 12.0
    assert guessed_oxidation_states(LIF) == {"Li": 1.0, "F": -1.0}
    li_tl = Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.4), ["Li", "Tl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert guessed_oxidation_states(li_tl) == {"Li": 0.0, "Tl": 0.0}  # intermetallic: no guess, no charges


def test_sites_on_lif100(lif100):
    sites = enumerate_sites(lif100)
    types = sorted(s["site_type"] for s in sites)
    # rock-salt (100): on top of Li, on top of F, the Li-F bridge, the hollow
    assert types.count("ontop") == 2 and "bridge" in types and "hollow" in types
    assert {tuple(s["site_atoms"]) for s in sites if s["site_type"] == "ontop"} == {("F",), ("Li",)}
    assert [s["index"] for s in sites] == list(range(len(sites)))
    top = normal_heights(lif100).max()
    for s in sites:
        assert s["cart"][2] == pytest.approx(top + 2.0, abs=0.05)
    # the same sites with more vacuum (a Cartesian tolerance, not a fractional one)
    thick_vac, _ = candidate_slabs(LIF, layers=1, vacuum=20.0, min_lw=4.0, max_atoms=40)
    other = next(k["structure"] for k in thick_vac if k["miller_index"] == [1, 0, 0])
    assert sorted(s["site_type"] for s in enumerate_sites(other)) == types


def test_adslab_and_outcomes(lif100):
    sites = enumerate_sites(lif100)
    on_f = next(s for s in sites if s["site_atoms"] == ["F"])
    ads = adslab(lif100, on_f)
    assert len(ads) == len(lif100) + 1 and ads[-1].species_string == "Li"
    assert ads.site_properties["selective_dynamics"][-1] == [True] * 3
    flags, geo = check_outcome(lif100, ads)
    assert flags == [] and geo["li_height"] == pytest.approx(2.0, abs=0.05) and geo["max_slab_displacement"] < 1e-6
    cn, nbrs = coordination(ads, len(ads) - 1)
    assert cn >= 1 and "F" in nbrs
    assert relaxed_site(sites, ads) == on_f["index"]

    def moved(dz=0.0, slab_shift=0.0):
        s = ads.copy()
        s.translate_sites([len(s) - 1], [0, 0, dz], frac_coords=False)
        if slab_shift:
            s.translate_sites([0], [slab_shift, 0, 0], frac_coords=False)
        return s

    assert check_outcome(lif100, moved(dz=3.0))[0] == ["desorbed"]
    assert check_outcome(lif100, moved(dz=-3.5))[0] == ["subsurface"]
    assert check_outcome(lif100, moved(slab_shift=1.2))[0] == ["reconstructed"]
    between = moved()
    between.translate_sites([len(between) - 1], [0.7, 0.7, 0], frac_coords=False)
    assert relaxed_site(sites, between, tol=0.1) is None


def test_adsorption_energy_and_decision():
    assert adsorption_energy(-101.0, -99.0, -1.9) == pytest.approx(-0.1)
    e = {0: -0.3, 1: -0.8, 2: None, 3: -1.2}
    flags = {0: [], 1: [], 2: [], 3: ["subsurface"]}
    assert lowest_physical_site(e, flags) == 1  # 3 is lower but went into the slab
    passed = adsorption_decision(e, flags, e_ads_max=0.0)
    assert (passed.status, passed.value, passed.site, passed.reason) == ("passed", -0.8, 1, None)
    failed = adsorption_decision(e, flags, e_ads_max=-1.0)
    assert (failed.status, failed.value, failed.site) == ("failed", -0.8, 1)
    assert adsorption_decision(e, flags, e_ads_max=-0.8).status == "passed"  # at the threshold
    none = adsorption_decision({0: -1.0}, {0: ["desorbed"]}, 0.0)
    assert (none.status, none.value, none.site, none.reason) == ("not_computed", None, None, NO_PHYSICAL_SITE)
    upstream = adsorption_decision({}, {}, 0.0, reason="no converged stoichiometric non-polar slab")
    assert upstream.status == "not_computed" and upstream.reason == "no converged stoichiometric non-polar slab"
    assert not upstream.reason.startswith("not computed")
    assert np.isfinite(passed.value)

"""thermo.entries: mp — the funnel's phase diagrams from cached Materials Project entries (no network).

The cache holds what a first online run would have stored: MP's Li-Co-O entries (shipped by
janosh/matterviz) and one summary row for LiCoO2 (mp-22526, structure from crystallographic facts).
"""

import hashlib
import json

import pytest
from pymatgen.core import Lattice, Structure

from coatflow.launchers.config import load_config
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.candidates import mp_query
from conftest import run_cli

LICOO2_ID = "mp-22526"


def _fill_cache(cfg_path):
    config = load_config(cfg_path)
    stores = CampaignStores(config).connect()
    li_co_o = [e for e in thermo.in_chemsys(data.matterviz_entries(), ["Li", "Co", "O"])]
    data.cache_put(stores.cache, "mp-entries:Co-Li-O", [e.as_dict() for e in li_co_o])
    mp_row = next(e for e in li_co_o if e.data["material_id"] == LICOO2_ID)
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                  [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]]).get_primitive_structure()
    key = "mp-summary-" + hashlib.sha1(json.dumps(mp_query(config), sort_keys=True).encode()).hexdigest()[:16]
    stores.cache.update([{"cache_key": key, "query": mp_query(config), "results": [
        {"material_id": LICOO2_ID, "structure": s.as_dict(), "band_gap": None,
         "energy_above_hull": mp_row.data["mp_e_above_hull"]}]}], key="cache_key")
    stores.close()


@pytest.fixture
def mp_campaign(tmp_path, write_config, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    cfg = write_config(candidates={"source": "materials_project", "mp": {"elements": ["Li", "Co", "O"]}},
                       thermo={"entries": "mp"}, interfacial_reactions={"electrolytes": []},
                       run={"stop_after": "interfacial_reactions"}, database_filter={"exclude": []})
    _fill_cache(cfg)
    return cfg


def test_mp_entries_give_mp_hull_and_window_for_an_mp_candidate(mp_campaign):
    run = run_cli("run", "-c", mp_campaign)
    assert run.returncode == 0, run.stderr[-3000:]
    (doc,) = json.loads(run_cli("query", "-c", mp_campaign, "--json").stdout)
    st = doc["stages"]
    # the candidate is MP's own entry: E_hull and window are MP's, whatever CHGNet thinks of it
    assert st["phase_stability"]["value"] == 0.0 and st["phase_stability"]["details"]["energy_scale"] == "MP2020"
    w = st["stability_window"]["details"]
    gs = thermo.ground_states(data.matterviz_entries())
    expected = thermo.stability_window(gs["LiCoO2"], data.matterviz_entries())
    assert (w["reduction_limit"], w["oxidation_limit"]) == (expected.reduction_limit, expected.oxidation_limit)
    # LiCoO2 fails the window (reduced at 1.8 V); with a loose window Li would reduce it to metallic Co
    assert st["stability_window"]["status"] == "failed" and "Co" in w["reduction_products"]


def test_mp_entries_refuse_a_chgnet_candidate(tmp_path, write_config, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    d = tmp_path / "structures"
    d.mkdir()
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0, 0, 0]]) \
        .get_primitive_structure().to(filename=str(d / "Li2O.json"))
    cfg = write_config(candidates={"source": "files", "paths": [str(d)]}, thermo={"entries": "mp"},
                       run={"stop_after": "phase_stability"})
    _fill_cache(cfg)  # Li-O entries are not cached and there is no key: refused up front, nothing run
    run = run_cli("run", "-c", cfg)
    assert run.returncode == 2 and "MP_API_KEY is not set and no MP entries are cached for Li-O" in run.stderr

    # once the Li-O entries are cached, the verdict is computed: a CHGNet energy is not on the MP2020 scale
    stores = CampaignStores(load_config(cfg)).connect()
    li_o = thermo.in_chemsys(data.matterviz_entries(), ["Li", "O"])
    data.cache_put(stores.cache, "mp-entries:Li-O", [e.as_dict() for e in li_o])
    stores.close()
    assert run_cli("run", "-c", cfg).returncode == 0
    (doc,) = json.loads(run_cli("query", "-c", cfg, "--json").stdout)
    ps = doc["stages"]["phase_stability"]
    assert ps["status"] == "not_computed" and "not a Materials Project material" in ps["reason"]
    assert "bulk_relax.backend: vasp" in ps["reason"]

"""The shipped MP snapshot (workflows/data/mp_snapshot.json.gz, docs/mp_snapshot.md): the mp_snapshot candidate
source, the database filter on its values, and ``thermo.entries: mp_snapshot`` (formation energies by formula)."""

import gzip
import json
import re

import pytest
from pymatgen.core import Composition

from coatflow.launchers.config import CampaignConfig
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.candidates import load_candidates
from coatflow.workflows.stages.database_filter import database_filter, database_properties
from coatflow.workflows.stages.interfacial_reactions import interfacial_reactions, interfacial_verdict
from coatflow.workflows.stages.phase_stability import phase_stability_verdict
from coatflow.workflows.stages.stability_window import stability_window_verdict
from conftest import run_cli

FILTER = {"band_gap_min": 0.5, "e_hull_max": 0.005, "exclude": ["toxic", "radioactive", "precious"]}
ELECTROLYTES = ["Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "LiTi2(PO4)3", "LiNbO3"]
#: Published windows (V vs Li): Richards et al., Chem. Mater. 28, 266 (2016); Zhu, He, Mo, ACS AMI 7, 23685 (2015)
PUBLISHED = {"Li7La3Zr2O12": (0.00, 2.91), "Li3PO4": (0.69, 4.21), "Li2PO2N": (0.68, 2.64), "Li3PS4": (1.74, 2.32)}
#: The same windows measured on the snapshot (docs/mp_snapshot.md)
MEASURED = {"Li7La3Zr2O12": (0.049, 2.914), "Li3PO4": (0.689, 4.210), "Li2PO2N": (0.677, 2.638),
            "Li3PS4": (1.721, 2.363)}


def _ident(formula):
    return {"material_id": f"t-{formula}", "formula": formula, "source": "test", "predicted": True}


def _source(formula, partners=()):
    """What ``phase_diagrams.database_source`` plans for a candidate on the snapshot scale."""
    els = {"Li", *(el.symbol for f in (formula, *partners) for el in Composition(f).elements)}
    return {"kind": "mp_snapshot", "backend": "mlip", "material_id": data.snapshot_id(formula),
            "elements": sorted(els), "state": data.snapshot_version()}


def test_the_mp_snapshot_source_lists_every_li_m_o_ternary_of_the_shipped_file():
    with gzip.open(data.data_path("mp_snapshot.json.gz").open("rb"), "rt") as f:
        raw = json.load(f)
    assert "CC-BY-4.0" in raw["source"]["licence"] and raw["source"]["package"] == "crabnet==2.0.8"
    # independent rule: the element symbols written in the formula are exactly Li, O and one other
    expected = {f for f in raw["formulas"] if len(set(re.findall(r"[A-Z][a-z]?", f)) - {"Li", "O"}) == 1
                and {"Li", "O"} <= set(re.findall(r"[A-Z][a-z]?", f))}
    cands = load_candidates(CampaignConfig(candidates={"source": "mp_snapshot"}))
    assert {c.formula for c in cands} == expected and len(cands) == raw["li_m_o_ternaries"] == len(expected)
    assert all(c.source == "mp_snapshot" and c.structure is None for c in cands)
    # a formula the filter fails gets no structure; the picks get the prototypes that fit them
    by = {c.formula: c for c in cands}
    assert by["LiTi2O4"].prototypes == [] and by["LiTbO2"].prototypes


def test_filter_uses_snapshot_values_offline():
    metal = database_filter.original(_ident("LiTi2O4"), None, {}, database_properties("LiTi2O4"), FILTER)
    gap = metal.output.details.checks["band_gap"]
    assert metal.output.status == "failed" and gap.status == "failed" and gap.value == 0.0
    assert "band_gap = 0 outside 0.5" in metal.output.reason and data.SNAPSHOT_NAME in metal.output.reason

    ok = database_filter.original(_ident("LiTbO2"), None, {}, database_properties("LiTbO2"), FILTER)
    assert ok.output.status == "passed" and ok.output.value == pytest.approx(4.5467)
    assert ok.output.details.checks["e_hull"].value == 0.0

    # not in the snapshot: both values missing, said so; the verdict is not_computed, never passed
    absent = database_filter.original(_ident("Li7TbO9"), None, {}, database_properties("Li7TbO9"), FILTER)
    assert absent.output.status == "not_computed" and not absent.stop_children
    assert absent.output.reason == ("band_gap missing: Li7TbO9 is not in the MP snapshot (crabnet 2.0.8); "
                                    "e_hull missing: Li7TbO9 is not in the MP snapshot (crabnet 2.0.8)")
    # polymorph gaps on both sides of the threshold: which one is the ground state is unknown
    amb = database_filter.original(_ident("LiCoO2"), None, {}, database_properties("LiCoO2"), FILTER)
    assert amb.output.status == "not_computed" and "on both sides of 0.5 eV" in amb.output.reason
    # live MP values (source: materials_project) are used as given
    live = database_properties("LiTi2O4", {"band_gap": 1.2, "energy_above_hull": 0.0})
    assert database_filter.original(_ident("LiTi2O4"), None, {}, live, FILTER).output.status == "passed"


@pytest.mark.parametrize("formula", sorted(PUBLISHED))
def test_published_windows_hold_on_the_snapshot(formula):
    f = Composition(formula).reduced_formula
    w = stability_window_verdict.original(_ident(f), None, {}, None, 0.5, 2.0, _source(f)).output
    assert w.details.energy_scale == data.MP_SNAPSHOT_SCALE
    red, ox = PUBLISHED[formula]
    assert w.details.reduction_limit == pytest.approx(red, abs=0.1)
    assert w.details.oxidation_limit == pytest.approx(ox, abs=0.1)
    assert (w.details.reduction_limit, w.details.oxidation_limit) == pytest.approx(MEASURED[formula], abs=0.001)


def test_picks_on_the_snapshot_scale():
    for f, e_prec, oxide in (("LiTbO2", -8.4, "Tb2O3"), ("LiDyO2", -12.0, "Dy2O3")):
        ps = phase_stability_verdict.original(_ident(f), None, {}, None, 0.005, [], _source(f)).output
        assert ps.status == "passed" and ps.value == 0.0 and ps.details.energy_scale == data.MP_SNAPSHOT_SCALE
        # published: -17 (LiTbO2) and -25 (LiDyO2) meV/atom (docs/mp_snapshot.md on the difference)
        assert ps.details.formation_from_precursors.precursors[oxide].meV_per_atom == pytest.approx(e_prec, abs=0.05)
    # the same formation energy by hand: 1/2 Li2O + 1/2 Tb2O3 -> LiTbO2, per atom of LiTbO2
    row = {f: data.snapshot_row(f)["e_form"] for f in ("LiTbO2", "Li2O", "Tb2O3")}
    by_hand = row["LiTbO2"] - (1.5 * row["Li2O"] + 2.5 * row["Tb2O3"]) / 4
    assert 1000 * by_hand == pytest.approx(-8.4, abs=0.05)


def test_tb2o3_and_dy2o3_are_classified_with_snapshot_gaps():
    for f, oxide in (("LiTbO2", "Tb2O3"), ("LiDyO2", "Dy2O3")):
        assert thermo.has_open_4f(oxide)  # the local path leaves these unknown
        r = interfacial_reactions.original(None, {}, ELECTROLYTES, 0.5, {}, None, source=_source(f, ELECTROLYTES))
        pair = r.pairs[f"{f} | LiNbO3"]
        assert oxide in pair.products and pair.product_class[oxide] == "insulating"
        assert r.band_gaps[oxide].band_gap > 3.5 and r.band_gaps[oxide].source == data.SNAPSHOT_NAME
        assert interfacial_verdict.original(_ident(f), r, None, 0.5).output.status == "passed"


def test_a_formula_without_snapshot_energy_is_not_computed():
    ps = phase_stability_verdict.original(_ident("Li7TbO9"), None, {}, None, 0.005, [], _source("Li7TbO9")).output
    assert ps.status == "not_computed" and "Li7TbO9 has no formation energy in the MP snapshot" in ps.reason


def test_campaign_on_snapshot_entries(write_config, structure_dir):
    """Files (Li2O, LiF, LiRhO2) through filter, relaxation and the three phase-diagram stages on the snapshot:
    no competing-phase relaxation, no band-gap job."""
    cfg = write_config(candidates={"source": "files", "paths": [str(structure_dir)]}, thermo={"entries": "mp_snapshot"},
                       run={"stop_after": "interfacial_reactions", "workers": 1})
    run = run_cli("run", "-c", cfg)
    assert run.returncode == 0, run.stderr[-3000:]
    docs = {d["formula"]: d for d in json.loads(run_cli("query", "-c", cfg, "--json").stdout)}
    st = docs["Li2O"]["stages"]
    assert st["database_filter"]["status"] == "passed" and st["database_filter"]["value"] == pytest.approx(4.8986)
    assert docs["LiRhO2"]["failed_stage"] == "database_filter"
    assert st["phase_stability"]["value"] == 0.0 and st["phase_stability"]["details"]["energy_scale"] == "MP-snapshot"
    assert st["stability_window"]["details"]["reduction_limit"] == 0.0
    ir = st["interfacial_reactions"]
    assert ir["status"] == "passed", ir.get("reason")
    assert {p["status"] for p in ir["details"]["pairs"].values()} == {"computed"}

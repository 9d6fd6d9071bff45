"""``coatflow report`` (launchers/report.py): every figure plots the stored numbers, a figure without data is left out
with its reason, and the page opens in a real headless browser (Debian's chromium) with every image loaded."""

import html
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import li2o, lif, lirho2, run_cli

from coatflow.launchers.config import load_config
from coatflow.launchers.report import build_report, cathode_map_data, render_html
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.candidates import example_candidates

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
#: the small settings of tests/test_adsorption.py and tests/test_migration.py
ADSORPTION = {"layers": 1, "min_lw": 4.0, "vacuum": 10.0, "max_atoms": 30, "max_sites": 4, "max_surfaces": 1,
              "fmax": 0.1, "steps": 100}
MIGRATION = {"hop_cutoff": 2.5, "min_size": 4.5, "n_images": 3, "fmax": 0.1, "steps": 150}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A three-candidate CHGNet campaign through every stage on small settings (LiRhO2 fails the element filter,
    LiF the shear modulus, Li2O gets through adsorption and migration), one electrolyte partner;
    (config path, the report folder written by `coatflow report`, its stdout). About 3 min on 2 cores."""
    root = tmp_path_factory.mktemp("report")
    d = root / "structures"
    d.mkdir()
    li2o().to(filename=str(d / "Li2O.cif"))
    lif().to(filename=str(d / "POSCAR_LiF"))
    lirho2().to(filename=str(d / "LiRhO2.json"))
    cfg = root / "coatflow.yaml"
    cfg.write_text(yaml.safe_dump({
        "candidates": {"source": "files", "paths": [str(d)]}, "run": {"workers": 1},
        "interfacial_reactions": {"electrolytes": ["LiF"]}, "store": {"kind": "embedded", "path": "store"},
        "li_adsorption": ADSORPTION, "migration_barrier": MIGRATION}))
    run = run_cli("run", "-c", str(cfg))
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"coatflow report -c {cfg}" in run.stdout  # `run` names the command that draws the figures
    out = root / "report"
    rep = run_cli("report", "-c", str(cfg), "--out", str(out), timeout=900)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return cfg, out, rep.stdout


@pytest.fixture(scope="module")
def drawn(small, tmp_path_factory):
    """(figures by name, the candidates collection, the report): the report built in-process, figures kept."""
    cfg, _, _ = small
    config = load_config(cfg)
    rep = build_report(config, tmp_path_factory.mktemp("again"), keep_figures=True)
    stores = CampaignStores(config).connect()
    try:
        rows = {d["material_id"]: d for d in stores.candidates.query({}, properties={"_id": 0})}
    finally:
        stores.close()
    return {f.name: f for f in rep.figures}, rows, rep


def test_every_figure_is_written_as_png_and_svg_and_linked_from_the_page(small, drawn):
    _, out, stdout = small
    figs, rows, rep = drawn
    page = (out / "index.html").read_text()
    for name in figs:
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
        assert f'src="figures/{name}.png"' in page
    assert {"funnel", "shear_modulus", "windows", "interfacial_file-Li2O", "phase_diagram_file-Li2O",
            "adsorption_file-Li2O", "migration_file-Li2O"} <= set(figs)
    for mid, row in rows.items():  # the ranked table: one row per candidate, links to its figures
        assert f'id="row-{mid}"' in page
        for f in (f for f in figs.values() if f.material_id == mid):
            assert f'href="#{f.name}"' in page
    assert f"wrote {out / 'index.html'} ({len(figs)} figures)" in stdout
    assert "left out" not in stdout  # every figure of the funnel has its data


def test_funnel_bars_are_the_counts_of_the_candidates_collection(drawn):
    figs, rows, _ = drawn
    f = figs["funnel"]
    stages = f.data["labels"][1:]
    expected = [len(rows)] + [sum(1 for r in rows.values() if s in r["stages"] and r["stages"][s]["status"] != "failed")
                              for s in stages]
    heights = [p.get_height() for p in f.figure.axes[0].patches]
    assert heights == expected == f.data["counts"]
    assert f.data["failed"]["database_filter"] == ["file-LiRhO2"]  # precious Rh
    assert stages[0] == "database_filter" and heights[1] == len(rows) - 1


def test_shear_bars_are_the_stored_g_vrh_with_the_threshold_and_bundled_pbe_values(drawn):
    figs, rows, _ = drawn
    f = figs["shear_modulus"]
    stored = {m: r["stages"]["shear_modulus"]["value"] for m, r in rows.items() if "shear_modulus" in r["stages"]}
    ax = f.figure.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [stored[m] for m in f.data["material_ids"]] == sorted(stored.values())
    crit = next(iter(rows[m]["stages"]["shear_modulus"]["criterion"] for m in stored))
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith("threshold")]
    assert f"{f.data['threshold']:g}" in crit and line.get_xdata()[0] == f.data["threshold"]
    i = f.data["material_ids"].index("file-Li2O")
    assert f.data["dft"][i] == pytest.approx(68.452)  # Li2O, mp-1960, data/elastic_reference.json.gz
    lo, hi = f.data["references"]["Li"]  # Li metal: MP's bcc/fcc/hcp... polymorphs, data/mp_snapshot.json.gz
    assert 0 < lo <= hi < 10


def test_window_points_are_the_stored_limits(drawn):
    figs, rows, _ = drawn
    f = figs["windows"]
    pts = f.figure.axes[0].collections[0].get_offsets()
    for (x, y), mid in zip(pts, f.data["material_ids"]):
        det = rows[mid]["stages"]["stability_window"]["details"]
        assert (x, y) == (det["reduction_limit"], det["oxidation_limit"])
    assert len(pts) == sum("stability_window" in r["stages"] for r in rows.values())


def test_interfacial_curves_reach_the_stored_minimum_of_every_pair(drawn):
    figs, rows, _ = drawn
    f = figs["interfacial_file-Li2O"]
    pairs = rows["file-Li2O"]["stages"]["interfacial_reactions"]["details"]["pairs"]
    computed = {k for k, v in pairs.items() if v["status"] == "computed"}
    assert set(f.data["pairs"]) == computed and computed
    for name, p in f.data["pairs"].items():
        # the curve is rebuilt from the stored relaxed energies the stage used: its lowest kink is the stored one
        assert min(p["curve"]["energy"]) == pytest.approx(pairs[name]["reaction_energy"], abs=1e-4)
        assert p["mixing_ratio"] == pairs[name]["mixing_ratio"]
        for prod, cls in p["classes"].items():
            assert (cls == "insulating") == (pairs[name]["product_class"][prod] == "insulating")


def test_phase_diagram_is_built_from_the_stored_energies_of_the_stage(drawn):
    figs, rows, _ = drawn
    for mid in ("file-Li2O", "file-POSCAR_LiF"):
        d = figs[f"phase_diagram_{mid}"].data
        assert round(1000 * d["e_above_hull"], 1) == pytest.approx(rows[mid]["stages"]["phase_stability"]["value"])
        assert d["entries"] == len(rows[mid]["stages"]["phase_stability"]["details"]["competing_phases"]) + 1


def test_adsorption_bars_are_the_stored_site_energies_and_the_chosen_site_is_marked(drawn):
    figs, rows, _ = drawn
    f = figs["adsorption_file-Li2O"]
    st = rows["file-Li2O"]["stages"]["li_adsorption"]
    sites = st["details"]["e_ads"]
    ax = f.figure.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [sites[str(i)]["ml"] for i in f.data["sites"]] and len(heights) == len(sites)
    star = [c for c in ax.collections if c.get_label().startswith("chosen site")][0]
    assert star.get_offsets()[0][1] == st["value"] and f.data["chosen"] == st["details"]["site"]["index"]


def test_migration_profiles_are_the_stored_neb_hops(small, drawn):
    figs, rows, _ = drawn
    f = figs["migration_file-Li2O"]
    stores = CampaignStores(load_config(small[0])).connect()
    try:
        hops = {d["output"]["hop_label"]: d["output"] for d in stores.jobs.query(
            {"metadata.coatflow.material_id": "file-Li2O", "output.energy_profile": {"$exists": True}},
            properties=["output.hop_label", "output.energy_profile", "output.reaction_coordinate"])}
    finally:
        stores.close()
    lines = f.figure.axes[0].lines
    for line, h in zip(lines, f.data["hops"]):
        assert list(line.get_ydata()) == hops[h]["energy_profile"]
        assert list(line.get_xdata()) == hops[h]["reaction_coordinate"]
    st = rows["file-Li2O"]["stages"]["migration_barrier"]
    assert f"E_m = {st['value']:.2f} eV" in f.figure.axes[0].get_title()
    assert st["details"]["dimensionality"] in f.figure.axes[0].get_title()


def test_a_figure_without_stored_data_is_left_out_with_one_line(tmp_path):
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"kind": "embedded", "path": "store"}}))
    rep = run_cli("report", "-c", str(cfg), "--out", str(tmp_path / "out"), timeout=600)
    assert rep.returncode == 0, rep.stderr[-2000:]
    line = "left out: 1. Screening funnel: the candidates collection is empty (run `coatflow run`)"
    assert line in rep.stdout.splitlines()
    page = (tmp_path / "out" / "index.html").read_text()
    assert "the candidates collection is empty" in page and "<img" not in page


def _browser(user_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={user_dir}", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


def test_the_page_opens_in_headless_chromium_with_every_image_loaded(small, tmp_path):
    assert CHROMIUM and CHROMEDRIVER, "Debian's chromium and chromium-driver are missing: run `bash .ci/install`"
    _, out, _ = small
    driver = _browser(tmp_path / "chromium")
    try:
        driver.get((out / "index.html").resolve().as_uri())
        driver.execute_async_script(  # wait until every image has finished (loaded or failed)
            "const done = arguments[0]; Promise.all([...document.images].map(i => i.complete ? 1 :"
            " new Promise(r => { i.onload = i.onerror = r; }))).then(done);")
        images = driver.execute_script(
            "return [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        title = driver.title
    finally:
        driver.quit()
    assert title == "coatflow report"
    assert len(images) >= 5
    assert all(ok and width > 0 for _, ok, width in images), images
    assert errors == [], json.dumps(errors)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_report_of_the_lif_licoo2_stack_draws_slabs_defects_and_potential_maps(lif_stack, tmp_path):
    cfg, _ = lif_stack
    config = load_config(cfg)
    rep = build_report(config, tmp_path, keep_figures=True)
    figs = {f.name: f for f in rep.figures}
    stores = CampaignStores(config).connect()
    try:
        maps = list(stores.maps.query({}))
        surfaces = {d["output"]["formula"]: d["output"] for d in stores.jobs.query(
            {"metadata.coatflow.task": "surface_summary"}, properties=["output"])}
        defects = stores.jobs.query_one({"metadata.coatflow.task": "defect_thermo"}, properties=["output"])["output"]
        lif_slab = stores.jobs.get_output(surfaces["LiF"]["best"]["calc_uuid"], load=True)
    finally:
        stores.close()
    # slabs: the stored planar-average potential and plateaus; IP = vacuum - VBM
    s = figs[f"slab_{surfaces['LiF']['material_id']}"]
    assert np.allclose(s.figure.axes[0].lines[0].get_ydata(), lif_slab["potential"])
    best = surfaces["LiF"]["best"]
    assert s.data["vacuum_levels"] == best["vacuum_levels"]
    assert s.data["vacuum_level"] - s.data["vbm"] == pytest.approx(best["ionization_potential"])
    assert {f"slab_{o['material_id']}" for o in surfaces.values() if o.get("best")} <= set(figs)
    # defects: E_F(voltage) is the stored E_F(mu_Li); the Li-rich lines at E_F = 0 are the stored e0
    d = figs[f"defects_{defects['material_id']}"]
    ax_ef = d.figure.axes[2]
    assert np.allclose(ax_ef.lines[0].get_ydata(), [p["fermi_level"] for p in defects["fermi"]])
    assert np.allclose(ax_ef.lines[0].get_xdata(), [p["voltage"] for p in defects["fermi"]])
    for cs in defects["charge_states"]:
        assert d.data["lines"][f"{cs['name']} {cs['charge']:+d}"]["li_rich"][0] == pytest.approx(cs["e0_at_li_rich"])
    # potential maps: one panel per state of charge, phi and band edges from the stored profile
    m = figs["potential_map_LiF_LiCoO2"]
    by_soc = {x["state_of_charge"]: x for x in maps}
    assert [st["soc"] for st in m.data["states"]] == sorted(by_soc)
    for ax, st in zip(m.figure.axes, m.data["states"]):
        prof = by_soc[st["soc"]]["profile"]
        phi = [ln for ln in ax.lines if ln.get_label() == "φ (V)"][0]
        assert np.allclose(phi.get_ydata(), [np.nan if v is None else v for v in prof["phi"]], equal_nan=True)
        assert np.allclose(phi.get_xdata(), prof["voltage"])
        assert f"{by_soc[st['soc']]['delta_phi_anode']:+.2f}" in ax.get_title()


# --- 11. the cathode-coating reaction map (docs/cathode_coating.md) --------------------------------------------


def _cathode_campaign(root: Path, reaction_energy_min: float = -0.1, store: Path | None = None):
    """tests/test_cathode_coating.py's CI case as a `coatflow run` on the MP snapshot: LiNbO3 and LiAlO2 (the
    example set's structures) against LiCoO2 in both states and Li3PS4, the window opened so that both reach the
    pair stages; (config, run stdout). ``store``: start from a copy of that store (its relaxations are reused)."""
    from test_cathode_coating import LCO

    d = root / "structures"
    d.mkdir()
    for c in example_candidates():
        if c.formula in ("LiNbO3", "LiAlO2") and not c.predicted:
            c.structure.get_primitive_structure().to(filename=str(d / f"{c.formula}.json"))
    if store is not None:
        shutil.copytree(store, root / "store")
    cfg = root / "coatflow.yaml"
    cfg.write_text(yaml.safe_dump({
        "programme": "cathode_coating", "candidates": {"source": "files", "paths": [str(d)]},
        "thermo": {"entries": "mp_snapshot"}, "run": {"workers": 1, "stop_after": "interfacial_reactions"},
        "store": {"kind": "embedded", "path": "store"},
        "stability_window": {"oxidation_limit_min": 0.0, "reduction_limit_max": 5.0},
        "cathode_compatibility": {"cathodes": list(LCO), "reaction_energy_min": reaction_energy_min},
        "interfacial_reactions": {"electrolytes": ["Li3PS4"]}}))
    run = run_cli("run", "-c", str(cfg))
    assert run.returncode == 0, run.stderr[-3000:]
    return cfg


def _stored_rows(cfg) -> dict[str, dict]:
    stores = CampaignStores(load_config(cfg)).connect()
    try:
        return {d["formula"]: d for d in stores.candidates.query({}, properties={"_id": 0})}
    finally:
        stores.close()


@pytest.fixture(scope="module")
def cathode_store(tmp_path_factory):
    """(config, the folder `coatflow report` wrote, its stdout) of the CI-sized cathode campaign."""
    root = tmp_path_factory.mktemp("cathode")
    cfg = _cathode_campaign(root)
    rep = run_cli("report", "-c", str(cfg), "--out", str(root / "report"), timeout=900)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return cfg, root / "report", rep.stdout


def _pair_of(row: dict, column: str) -> dict:
    """The stored pair of a map column: a cathode state of the cathode verdict, or an electrolyte."""
    for stage in ("cathode_compatibility", "interfacial_reactions"):
        for k, v in ((row["stages"].get(stage) or {}).get("details") or {}).get("pairs", {}).items():
            if k.split(" | ", 1)[1] == column and not k.startswith("Li |"):
                return v
    raise KeyError(column)


def test_cathode_map_cells_are_the_stored_pair_energies_and_the_table_their_products(cathode_store, tmp_path):
    cfg, out, stdout = cathode_store
    assert (out / "figures" / "cathode_map.png").stat().st_size > 1000
    assert "cathode_map" not in "".join(ln for ln in stdout.splitlines() if ln.startswith("left out"))
    rows = _stored_rows(cfg)
    rep = build_report(load_config(cfg), tmp_path, keep_figures=True)
    f = {x.name: x for x in rep.figures}["cathode_map"]
    d, ax = f.data, f.figure.axes[0]
    assert sorted(d["formulas"]) == ["LiAlO2", "LiNbO3"]
    assert d["columns"] == ["LiCoO2 discharged (LiCoO2)", "LiCoO2 charged (CoO2)", "Li3PS4"]
    assert d["kinds"] == ["cathode", "cathode", "electrolyte"]
    drawn = ax.images[0].get_array()
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts}
    page = (out / "index.html").read_text()
    table = page[page.index('<table class="cathode-map">'):]
    table = table[:table.index("</table>")]
    boxes = {(round(p.get_x() + 0.46), round(p.get_y() + 0.46)) for p in ax.patches if not p.get_fill()}
    for i, formula in enumerate(d["formulas"]):
        for j, column in enumerate(d["columns"]):
            stored = _pair_of(rows[formula], column)
            assert stored["status"] == "computed"
            e = stored["reaction_energy"]
            assert drawn[i, j] == e == d["energy"][i][j] and texts[(j, i)].startswith(f"{e:.3f}")
            assert f"<td>{html.escape(formula)}</td><td>{html.escape(column)}</td><td>{e:.4f}</td>" in table
            classes = stored.get("product_conduction") or {}
            for p in stored["products"]:
                assert f"{html.escape(p)} ({classes.get(p, 'unknown')}" in table
            bad = {c for c in classes.values() if c in ("metallic", "mixed-conducting")}
            assert ((j, i) in boxes) == bool(bad) and all(
                ("mixed-c." if c == "mixed-conducting" else c) in texts[(j, i)] for c in bad)
    # LiNbO3 | Li3PS4 forms conducting Nb sulfides (test_cathode_coating.py): that cell is boxed
    assert (d["columns"].index("Li3PS4"), d["formulas"].index("LiNbO3")) in boxes


def test_cathode_map_greys_a_pair_the_coating_never_reached_with_its_reason(cathode_store, tmp_path):
    """The threshold set between the two coatings' stored cathode values: the more reactive one fails the cathode
    stage, so its electrolyte cell is grey and the table says why."""
    cfg, _, _ = cathode_store
    first = {f: r["stages"]["cathode_compatibility"]["value"] for f, r in _stored_rows(cfg).items()}
    worse, better = sorted(first, key=first.get)
    assert first[worse] < first[better] < 0
    tight = _cathode_campaign(tmp_path, (first[worse] + first[better]) / 2, store=cfg.parent / "store")
    rows = _stored_rows(tight)
    assert rows[worse]["failed_stage"] == "cathode_compatibility" and "interfacial_reactions" in rows[better]["stages"]
    rep = build_report(load_config(tight), tmp_path / "report", keep_figures=True)
    (f,) = [x for x in rep.figures if x.name == "cathode_map"]
    i, j = f.data["formulas"].index(worse), f.data["columns"].index("Li3PS4")
    assert np.isnan(f.data["energy"][i][j]) and f.figure.axes[0].images[0].get_array().mask[i, j]
    reason = "no interfacial_reactions verdict: failed at cathode_compatibility"
    assert f.data["cells"][i][j]["reason"] == reason
    page = render_html(rep)
    assert f'<tr class="not_computed"><td>{worse}</td><td>Li3PS4</td><td>n/c</td><td></td><td></td><td>{reason}' in page
    assert not np.isnan(f.data["energy"][f.data["formulas"].index(better)][j])
    # the configured electrolyte is a column even when no coating reached its stage
    alone = cathode_map_data([rows[worse]], ["Li3PS4"])
    assert alone["columns"][-1] == "Li3PS4" and alone["cells"][0][-1]["reason"] == reason
    assert cathode_map_data([rows[worse]])["kinds"] == ["cathode", "cathode"]


def test_cathode_map_is_left_out_with_its_reason_when_no_verdict_is_stored(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"programme": "cathode_coating", "store": {"kind": "embedded", "path": "store"}}))
    rep = build_report(load_config(cfg), tmp_path / "out")
    why = "no cathode_compatibility verdict stored (no candidate reached the stage)"
    assert ("11. Cathode-coating reaction map", why) in rep.skipped
    assert not any(f.name == "cathode_map" for f in rep.figures)

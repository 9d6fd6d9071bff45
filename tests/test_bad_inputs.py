"""Issue 16, inputs 1-8: each bad input is rc 2, one line naming the problem and the fix, and writes nothing.

"Nothing" is checked on the whole folder: every file's path, size and modification time are the same before
and after (no store, no ``coatflow_runs``, no lock file); where a store exists, it is byte-for-byte unchanged.
"""

from __future__ import annotations

import pytest

from coatflow.launchers.cli import main
from coatflow.workflows.stages import STAGES
from coatflow.workflows.stages.config_fields import config_fields

LP_USER = 'hpc: {launchpad_uri: "mongodb://coatflow@db.example.org:27017/"}'
MONGO_USER = 'store: {kind: mongodb, uri: "mongodb://coatflow@db.example.org:27017/"}'


def _listing(root) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def refused(tmp_path, monkeypatch, capsys):
    """``refused(yaml_text, command)`` -> the one error line, after asserting rc 2 and nothing written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("COATFLOW_MONGODB_PASSWORD", raising=False)

    def _run(text: str, command: str = "run") -> str:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text + "\n")
        before = _listing(tmp_path)
        capsys.readouterr()
        code = main([command, "-c", str(cfg)])
        out = capsys.readouterr()
        err = out.err.strip()
        assert code == 2, out.err[-2000:]
        assert err.startswith("coatflow: error: ") and "\n" not in err and "Traceback" not in err, err
        assert _listing(tmp_path) == before  # nothing written: no store, no job folders, no lock file
        return err

    return _run


def _float_settings():
    """(section, key) of every float setting of every stage (thresholds and numeric settings)."""
    for stage in STAGES:
        for name, (hint, _) in config_fields(stage).items():
            origin = hint.__origin__  # Annotated[float | None, Field(...)] -> float | None
            if origin is float or float in getattr(origin, "__args__", ()):
                yield stage.stage, name


FLOATS = list(_float_settings())


def test_every_stage_threshold_is_covered():
    keys = {k for _, k in FLOATS}
    assert {"reduction_limit_max", "oxidation_limit_min", "e_hull_max", "g_vrh_min", "band_gap_min",
            "insulator_gap_min", "e_ads_max", "migration_barrier_max"} <= keys


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400"])
@pytest.mark.parametrize("section,key", FLOATS)
def test_input1_non_finite_thresholds(refused, section, key, value):
    err = refused(f"{section}: {{{key}: {value}}}")
    assert f"{section}.{key}: Input should be a finite number" in err


@pytest.mark.parametrize("section,key,value,bound", [
    ("stability_window", "reduction_limit_max", -100, "greater than or equal to 0"),
    ("stability_window", "oxidation_limit_min", 1000, "less than or equal to 10"),
    ("phase_stability", "e_hull_max", -0.1, "greater than or equal to 0"),
    ("shear_modulus", "g_vrh_min", -5, "greater than or equal to 0"),
    ("database_filter", "band_gap_min", 100, "less than or equal to 20"),
    ("migration_barrier", "migration_barrier_max", -1, "greater than 0"),
    ("li_adsorption", "e_ads_max", 1e3, "less than or equal to 20"),
])
def test_input1_physically_absurd_thresholds(refused, section, key, value, bound):
    err = refused(f"{section}: {{{key}: {value}}}")
    assert f"{section}.{key}: Input should be {bound}" in err


def test_input1_non_finite_side_settings(refused):
    assert "slab.ecut: Input should be a finite number" in refused("slab: {ecut: .inf}")
    assert "defects.temperature: Input should be a finite number" in refused("defects: {temperature: 1e400}")


def test_input2_unknown_element_in_a_formula(refused):
    err = refused("candidates: {source: formulas, formulas: [LiAlO2, LiXqO2]}")
    assert "candidates.formulas: 'LiXqO2' is not a chemical formula: Xq is not an element symbol" in err
    err = refused("candidates: {source: formulas, formulas: ['Li(O']}")
    assert "'Li(O' is not a chemical formula; write it with element symbols" in err


@pytest.mark.parametrize("command", ["status", "resume", "submit"])
def test_input3_launchpad_user_without_password(refused, command):
    err = refused(LP_USER, command)
    assert err.endswith("hpc.launchpad_uri names the user 'coatflow' but COATFLOW_MONGODB_PASSWORD is not set; "
                        "export COATFLOW_MONGODB_PASSWORD=<password> (the password never goes in the config)")


def test_input3_a_passwordless_mechanism_needs_no_password(monkeypatch):
    from coatflow.launchers.config import require_password

    monkeypatch.delenv("COATFLOW_MONGODB_PASSWORD", raising=False)
    require_password("mongodb://CN=me@db.example.org/?authMechanism=MONGODB-X509", "hpc.launchpad_uri")
    require_password("mongodb://db.example.org/", "hpc.launchpad_uri")  # no user: nothing to check


@pytest.mark.parametrize("text,key,source", [
    ("candidates: {paths: [Li2O.cif]}", "paths", "files"),
    ("candidates: {formulas: [LiAlO2]}", "formulas", "formulas"),
    ("candidates: {source: files, paths: [x.cif], formulas: [LiAlO2]}", "formulas", "formulas"),
    ("candidates: {mp: {elements: [Li, Ti, O]}}", "mp", "materials_project"),
])
def test_input4_candidate_inputs_without_their_source(refused, text, key, source):
    err = refused(text)
    assert f"candidates.{key} is set but candidates.source is" in err and f"add 'source: {source}'" in err


def test_input4_init_file_still_loads(tmp_path):
    from coatflow.launchers.config import load_config, write_default_config

    assert load_config(write_default_config(tmp_path / "c.yaml")).candidates.source == "example"


@pytest.mark.parametrize("text,key,line", [
    ("run: {stop_after: bulk_relax}\nrun: {workers: 1}", "run", 2),
    ("stability_window:\n  reduction_limit_max: 0.5\n  reduction_limit_max: 1.0", "reduction_limit_max", 3),
])
def test_input5_duplicate_keys(refused, text, key, line):
    err = refused(text)
    assert f"key '{key}' appears twice in one mapping (line {line}); merge the two blocks into one" in err


def test_input6_mp_entries_without_a_key(refused):
    err = refused("thermo: {entries: mp}\ncandidates: {source: formulas, formulas: [LiAlO2]}\n"
                  "run: {stop_after: phase_stability}")
    assert err.endswith("thermo.entries is 'mp' but MP_API_KEY is not set and no MP entries are cached for "
                        "Al-Li-O; export MP_API_KEY=<your key>, or set thermo.entries: local")


def test_input6_no_key_needed_before_the_thermodynamic_stages(tmp_path, monkeypatch):
    from coatflow.launchers.config import load_config
    from coatflow.workflows.errors import CoatflowError
    from coatflow.launchers.local import require_mp_entries
    from coatflow.launchers.stores import CampaignStores
    from coatflow.workflows.candidates import load_candidates

    monkeypatch.delenv("MP_API_KEY", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("thermo: {entries: mp}\ncandidates: {source: formulas, formulas: [LiAlO2]}\n"
                   "run: {stop_after: database_filter}\n")
    config = load_config(cfg)
    require_mp_entries(config, load_candidates(config), CampaignStores(config))  # nothing to look up: no error
    assert not (tmp_path / "coatflow_store").exists()
    # on MP's scale the phase-diagram stages run before the bulk relaxation, so stopping there needs the key
    config = config.model_copy(update={"run": config.run.model_copy(update={"stop_after": "bulk_relax"})})
    with pytest.raises(CoatflowError, match="MP_API_KEY is not set and no MP entries are cached for .*Al-Li-O"):
        require_mp_entries(config, load_candidates(config), CampaignStores(config))


@pytest.mark.parametrize("command", ["query", "build"])
def test_input7_a_store_that_does_not_exist(refused, command):
    err = refused("store: {path: stroe}", command)
    assert "no coatflow store at" in err and err.endswith("stroe: check store.path (relative to the config file), "
                                                          "or run `coatflow run` first to create it")


@pytest.mark.parametrize("command", ["run", "query", "build"])
def test_input8_mongodb_user_without_password(refused, command):
    err = refused(MONGO_USER, command)
    assert "store.uri names the user 'coatflow' but COATFLOW_MONGODB_PASSWORD is not set" in err
    assert "cannot reach" not in err

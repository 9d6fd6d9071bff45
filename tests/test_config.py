import pytest
import yaml
from pydantic import BaseModel

from coatflow.launchers.config import CampaignConfig, default_config_text, load_config, write_default_config
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.stages import STAGE_NAMES, STAGES


def test_default_config_text_matches_the_model(tmp_path):
    path = write_default_config(tmp_path / "c.yaml")
    loaded = load_config(path)
    assert loaded.model_dump(exclude={"base_dir"}) == CampaignConfig().model_dump(exclude={"base_dir"})
    assert loaded.shear_modulus.g_vrh_min == 35.0 and loaded.phase_stability.e_hull_max == 0.005


def _fields(model):
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _fields(sub)
        elif not info.exclude and name not in ("electrolyte", "cathode"):
            yield name, info


def test_every_setting_is_documented_in_the_file_init_writes():
    text = default_config_text()
    undocumented = [n for n, info in _fields(CampaignConfig) if not info.description]
    assert undocumented == []
    for name, _ in _fields(CampaignConfig):
        assert f"{name}:" in text
    # one section per stage, in funnel order, generated from the stage Makers' fields
    positions = [text.index(f"\n{s}:") for s in STAGE_NAMES]
    assert positions == sorted(positions)


def test_a_stage_section_is_applied_in_one_step_to_its_maker():
    cfg = CampaignConfig(shear_modulus={"g_vrh_min": 50, "backend": "vasp"}, li_adsorption={"top_k": 1})
    stages = {s.stage: s for s in cfg.stages()}
    assert [type(s) for s in cfg.stages()] == list(STAGES)
    assert stages["shear_modulus"].g_vrh_min == 50 and stages["shear_modulus"].backend == "vasp"
    assert stages["li_adsorption"].top_k == 1 and stages["li_adsorption"].max_sites == 6
    assert stages["shear_modulus"].settings() == {"g_vrh_min": 50, "backend": "vasp", "mlip_model": "sevennet"}


def test_init_refuses_to_overwrite(tmp_path):
    path = write_default_config(tmp_path / "c.yaml")
    with pytest.raises(CoatflowError, match="already exists"):
        write_default_config(path)


@pytest.mark.parametrize(
    "sections, needle",
    [
        ({"shear_modulus": {"g_vrh_mn": 30}}, "shear_modulus.g_vrh_mn: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"database_filter": {"band_gap_min": "wide"}}, "database_filter.band_gap_min"),
        ({"bulk_relax": {"backend": "quantum"}}, "bulk_relax.backend"),
        ({"stability_window": {"reduction_limit_max": float("nan")}}, "stability_window.reduction_limit_max"),
        ({"shear_modulus": {"g_vrh_min": -100}}, "shear_modulus.g_vrh_min"),
        ({"thresholds": {"g_vrh_min": 30}}, "thresholds.g_vrh_min is now shear_modulus.g_vrh_min"),
        ({"backends": {"relax": "vasp"}}, "backends.relax is now bulk_relax.backend"),
        ({"migration": {"n_images": 5}}, "section 'migration' is now 'migration_barrier'"),
        ({"store": {"kind": "mongodb"}}, "store.uri is required"),
        ({"store": {"kind": "mongodb", "uri": "mongodb://u:secret@h/"}}, "must not contain a password"),
        ({"candidates": {"source": "files"}}, "candidates.paths"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, sections, needle):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(sections))
    with pytest.raises(CoatflowError) as err:
        load_config(path)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
    assert "secret" not in str(err.value)


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text("store: {path: mystore}\n")
    cfg = load_config(path)
    assert cfg.resolve(cfg.store.path) == (tmp_path / "sub" / "mystore").resolve()


def test_unknown_element_in_electrolytes_is_rejected():
    with pytest.raises(Exception, match="'Li3XqCl6' is not a chemical formula"):
        CampaignConfig(interfacial_reactions={"electrolytes": ["Li3XqCl6"]})

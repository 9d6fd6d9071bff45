import pytest
import yaml

from coatflow.launchers.config import DEFAULT_CONFIG_TEXT, CampaignConfig, load_config, write_default_config
from coatflow.workflows.errors import CoatflowError


def test_default_config_text_matches_the_model(tmp_path):
    path = write_default_config(tmp_path / "c.yaml")
    loaded = load_config(path)
    assert loaded.model_dump(exclude={"base_dir"}) == CampaignConfig().model_dump(exclude={"base_dir"})
    assert "#" in DEFAULT_CONFIG_TEXT  # commented
    assert loaded.thresholds.g_vrh_min == 35.0 and loaded.thresholds.e_hull_max == 0.005


def test_init_refuses_to_overwrite(tmp_path):
    path = write_default_config(tmp_path / "c.yaml")
    with pytest.raises(CoatflowError, match="already exists"):
        write_default_config(path)


@pytest.mark.parametrize(
    "sections, needle",
    [
        ({"thresholds": {"g_vrh_mn": 30}}, "thresholds.g_vrh_mn: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"thresholds": {"band_gap_min": "wide"}}, "thresholds.band_gap_min"),
        ({"backends": {"relax": "quantum"}}, "backends.relax"),
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
    from coatflow.launchers.config import CampaignConfig

    with pytest.raises(Exception, match="'Li3XqCl6' is not a chemical formula"):
        CampaignConfig(interfacial={"electrolytes": ["Li3XqCl6"]})

import json

import pytest
from jobflow import job, run_locally

from coatflow.launchers.config import load_config
from coatflow.launchers.stores import PASSWORD_ENV, CampaignStores, ensure_index, make_job_store
from coatflow.workflows.errors import CoatflowError


@job(data="profile")
def _make_profile(n):
    return {"n": n, "profile": list(range(n))}


def test_job_store_keeps_large_data_in_the_blob_store(write_config, tmp_path):
    cfg = load_config(write_config())
    stores = CampaignStores(cfg).connect()
    try:
        run_locally(_make_profile(1000), store=stores.jobs, create_folders=True, root_dir=str(tmp_path / "run"),
                    log=False)
        raw = stores.jobs.docs_store.query_one({})
        assert "blob_uuid" in raw["output"]["profile"]  # only a pointer in the document
        loaded = stores.jobs.query_one({}, load=True)
        assert loaded["output"]["profile"] == list(range(1000))
        assert stores.jobs.additional_stores["data"].count() == 1
    finally:
        stores.close()


def test_embedded_store_is_on_disk_and_indexes_are_optional(write_config):
    cfg = load_config(write_config())
    if cfg.store.kind != "embedded":
        pytest.skip("embedded only")
    stores = CampaignStores(cfg).connect()
    stores.candidates.update([{"material_id": "x", "formula": "Li2O"}], key="material_id")
    stores.close()
    assert cfg.resolve(cfg.store.path).is_absolute()
    again = CampaignStores(cfg).connect()
    assert again.candidates.query_one({"material_id": "x"})["formula"] == "Li2O"
    assert ensure_index(again.candidates, "formula") is False  # MontyStore: NotImplementedError handled
    again.close()


def test_unreachable_mongodb_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("store: {kind: mongodb, uri: 'mongodb://coatflow@127.0.0.1:9/'}\n")
    monkeypatch.setenv(PASSWORD_ENV, "hunter2")
    cfg = load_config(path)
    with pytest.raises(CoatflowError) as err:
        CampaignStores(cfg).connect()
    msg = str(err.value)
    assert "cannot reach the mongodb store at 127.0.0.1" in msg and "\n" not in msg and "hunter2" not in msg


def test_mongodb_password_never_serialised(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("store: {kind: mongodb, uri: 'mongodb://coatflow@127.0.0.1:9/'}\n")
    monkeypatch.setenv(PASSWORD_ENV, "hunter2")
    store = make_job_store(load_config(path))
    assert "hunter2" not in json.dumps(store.as_dict(), default=str)
